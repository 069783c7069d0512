//! #11, rate limits: token buckets per user, per API key and per anonymous client address;
//! every answer carries the IETF `RateLimit-Policy` / `RateLimit` headers, an exhausted
//! bucket is 429 with `Retry-After`, and an operation costs its complexity, not one request.

use serde_json::{Value, json};
use switchyard::rate_limit::Limit;

use switchyard::domain::Role;

use crate::api_keys::{create as create_key, user_token};
use crate::helpers::{Fixture, TestApp, spawn_app_with};
use crate::live::WsClient;

struct Answer {
    status: u16,
    policy: String,
    limit: String,
    retry_after: Option<u64>,
    body: Value,
}

async fn ask(app: &TestApp, token: Option<&str>, query: &str) -> Answer {
    let mut request = app.client.post(format!("{}/graphql", app.address)).json(&json!({"query": query}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status: response.status().as_u16(),
        policy: header("ratelimit-policy").unwrap_or_default(),
        limit: header("ratelimit").unwrap_or_default(),
        retry_after: header("retry-after").map(|v| v.parse().unwrap()),
        body: response.json().await.unwrap(),
    }
}

/// `r` of a `RateLimit` header: the tokens left.
fn remaining(limit: &str) -> u32 {
    limit.split(';').find_map(|p| p.strip_prefix("r=")).unwrap_or_else(|| panic!("{limit}")).parse().unwrap()
}

#[tokio::test]
async fn a_user_past_the_limit_gets_429_with_retry_after_and_the_ratelimit_headers() {
    let app = spawn_app_with(|c| c.rate_limit_user = Limit::parse("4/3600").unwrap()).await;
    let operator = app.operator();
    for left in (0..4).rev() {
        let answer = ask(&app, Some(&operator), "{ me { role } }").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.policy, "\"user\";q=4;w=3600");
        assert_eq!(remaining(&answer.limit), left, "{}", answer.limit);
    }
    let refused = ask(&app, Some(&operator), "{ me { role } }").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // One token comes back every 900 s.
    assert!(matches!(refused.retry_after, Some(1..=900)), "{:?}", refused.retry_after);
    assert_eq!(remaining(&refused.limit), 0);
    // Another user has a bucket of its own.
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    assert_eq!(ask(&app, Some(&reseller), "{ __typename }").await.status, 200);
}

#[tokio::test]
async fn an_operation_costs_its_complexity_and_one_past_the_bucket_is_refused_before_it_runs() {
    // Without the response cache: a page served from it costs only the admission's token.
    let app = spawn_app_with(|c| {
        // A token an hour comes back: nothing refills while the test runs, however slow.
        c.rate_limit_user = Limit::parse("12/3600").unwrap();
        c.response_cache = false;
    })
    .await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let cheap = ask(&app, Some(&reseller), "{ me { role } }").await;
    assert_eq!(remaining(&cheap.limit), 11);
    // A page of 100 products is a complexity of some hundreds: several tokens, not one.
    let page = "{ products(first: 100) { edges { node { name id } } } }";
    let costly = ask(&app, Some(&reseller), page).await;
    assert_eq!(costly.status, 200, "{}", costly.body);
    let cost = 11 - remaining(&costly.limit);
    assert!(cost >= 3, "a page cost {cost}: {}", costly.limit);
    let mut left = remaining(&costly.limit);
    while left >= cost {
        let again = ask(&app, Some(&reseller), page).await;
        assert_eq!((again.status, remaining(&again.limit)), (200, left - cost));
        left -= cost;
    }
    // More tokens wanted than left: refused before it runs; only the admission's is spent.
    let refused = ask(&app, Some(&reseller), page).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{}", refused.body);
    assert!(refused.body["data"].is_null(), "{}", refused.body);
    assert!(refused.retry_after.is_some());
    assert_eq!(remaining(&refused.limit), left - 1, "{}", refused.limit);
}

#[tokio::test]
async fn anonymous_calls_are_limited_per_client_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit_anonymous = Limit::parse("2/3600").unwrap();
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = |client: &'static str| {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("X-Forwarded-For", client)
            .json(&json!({"query": "{ __typename }"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((from("192.0.2.1").await, from("192.0.2.1").await, from("192.0.2.1").await), (200, 200, 429));
    assert_eq!(from("192.0.2.2").await, 200, "another client has its own bucket");
    // Valid credentials from the exhausted address (a NAT's other users) still get in.
    let operator = app.operator();
    let keyed = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("X-Forwarded-For", "192.0.2.1")
        .bearer_auth(&operator)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    // Credentials are not anonymous: the user's bucket (off here) applies.
    let operator = app.operator();
    assert_eq!(ask(&app, Some(&operator), "{ __typename }").await.status, 200);
}

#[tokio::test]
async fn keys_of_one_user_share_a_bucket_so_making_more_keys_does_not_raise_the_limit() {
    let app = spawn_app_with(|c| c.rate_limit_key = Limit::parse("3/3600").unwrap()).await;
    let f = Fixture::build(&app).await;
    let user = user_token(&app, "shop@a.example", Role::Reseller, Some(f.reseller_a)).await;
    let (first, _) = create_key(&app, &user, &["catalog:read"]).await;
    let (second, _) = create_key(&app, &user, &["catalog:read"]).await;
    for left in (0..3).rev() {
        let answer = ask(&app, Some(&first), "{ __typename }").await;
        assert_eq!((answer.status, remaining(&answer.limit)), (200, left), "{}", answer.body);
        assert_eq!(answer.policy, "\"key\";q=3;w=3600");
    }
    let other_key = ask(&app, Some(&second), "{ __typename }").await;
    assert_eq!(other_key.status, 429, "a second key of the same user is the same bucket: {}", other_key.body);
    // Another user's key has its own.
    let someone = user_token(&app, "back-office@a.example", Role::Reseller, Some(f.reseller_a)).await;
    let (theirs, _) = create_key(&app, &someone, &["catalog:read"]).await;
    assert_eq!(ask(&app, Some(&theirs), "{ __typename }").await.status, 200);
}

const PAGE: &str = "{ products(first: 100) { edges { node { name id } } } }";

#[tokio::test]
async fn a_batch_with_a_refused_operation_answers_200_with_the_ones_that_ran() {
    let app = spawn_app_with(|c| {
        // A page costs 4: the first one runs (the admission's token and 3), the second not.
        c.rate_limit_user = Limit::parse("5/3600").unwrap();
        c.response_cache = false;
    })
    .await;
    let operator = app.operator();
    let batch = json!([{"query": PAGE}, {"query": PAGE}]);
    let response =
        app.client.post(format!("{}/graphql", app.address)).bearer_auth(&operator).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 200, "one operation ran: not a 429");
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert!(body[0]["data"]["products"]["edges"].is_array(), "{body}");
    assert_eq!(body[1]["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
    // A batch whose every operation is refused is a 429.
    let response =
        app.client.post(format!("{}/graphql", app.address)).bearer_auth(&operator).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn each_operation_of_a_batch_costs_a_token_even_when_it_is_invalid() {
    let app = spawn_app_with(|c| c.rate_limit_user = Limit::parse("10/3600").unwrap()).await;
    let operator = app.operator();
    let invalid: Vec<Value> = (0..4).map(|_| json!({"query": "{ noSuchField }"})).collect();
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&operator)
        .json(&Value::Array(invalid))
        .send()
        .await
        .unwrap();
    let limit = response.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert_eq!(remaining(&limit), 6, "four invalid operations cost four tokens: {limit}");
}

#[tokio::test]
async fn an_operation_dearer_than_the_whole_bucket_is_refused_for_good_not_told_to_retry() {
    let app = spawn_app_with(|c| {
        c.rate_limit_user = Limit::parse("2/3600").unwrap();
        c.response_cache = false;
    })
    .await;
    let answer = ask(&app, Some(&app.operator()), PAGE).await;
    assert_ne!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.retry_after, None);
    assert_eq!(answer.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", answer.body);
    let message = answer.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("more than the limit"), "{message}");
}

#[tokio::test]
async fn exports_take_from_the_callers_bucket() {
    let app = spawn_app_with(|c| c.rate_limit_user = Limit::parse("6/3600").unwrap()).await;
    let operator = app.operator();
    let export = || {
        app.client
            .get(format!("{}/reports/margin.csv?period=2026-01&groupBy=reseller", app.address))
            .bearer_auth(&operator)
            .send()
    };
    let first = export().await.unwrap();
    assert_eq!(first.status(), 200);
    let limit = first.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert_eq!(remaining(&limit), 6 - switchyard::rate_limit::EXPORT_COST, "{limit}");
    let second = export().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn refused_credentials_are_charged_to_the_client_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit_anonymous = Limit::parse("2/3600").unwrap();
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let attempt = |client: &'static str| {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("X-Forwarded-For", client)
            .bearer_auth("sy_guessing0000000000000000000000000000")
            .json(&json!({"query": "{ __typename }"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((attempt("192.0.2.7").await, attempt("192.0.2.7").await), (401, 401));
    assert_eq!(attempt("192.0.2.7").await, 429, "guessing keys is not free");
    assert_eq!(attempt("192.0.2.8").await, 401);
    // Valid credentials from the same address (a NAT's other users) are not held back.
    let valid = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("X-Forwarded-For", "192.0.2.7")
        .bearer_auth(app.operator())
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(valid.status(), 200);
    // Nor is guessing free over a WebSocket: past the limit the connection is closed 4429.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = (app.address.replace("http://", "ws://") + "/graphql").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("x-forwarded-for", "192.0.2.7".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"authorization": "Bearer sy_guessing0000000000000000000000000000"}});
    socket.send(Message::Text(init.to_string().into())).await.unwrap();
    let mut code = 0;
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Close(Some(frame)) = message {
            code = u16::from(frame.code);
        }
    }
    assert_eq!(code, 4429);
}

#[tokio::test]
async fn every_get_answer_but_a_cacheable_catalog_page_is_no_store() {
    let app = spawn_app_with(|c| c.rate_limit_user = Limit::parse("3/3600").unwrap()).await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let get = |query: &'static str, tag: Option<String>| {
        let mut request =
            app.client.get(format!("{}/graphql", app.address)).bearer_auth(&reseller).query(&[("query", query)]);
        if let Some(tag) = tag {
            request = request.header("If-None-Match", tag);
        }
        request.send()
    };
    let catalog = "{ products(first: 1) { totalCount } }";
    let page = get(catalog, None).await.unwrap();
    assert_eq!(page.status(), 200);
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    // A 304 still says what is left of the bucket.
    let not_modified = get(catalog, Some(etag)).await.unwrap();
    assert_eq!(not_modified.status(), 304);
    assert!(not_modified.headers().get("ratelimit").is_some(), "{:?}", not_modified.headers());
    let invalid = get("{ noSuchField }", None).await.unwrap();
    assert_eq!(invalid.headers()["cache-control"], "no-store");
    let refused = get(catalog, None).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["cache-control"], "no-store");
    let bad = app.client.get(format!("{}/graphql?variables=nope&query=x", app.address)).send().await.unwrap();
    assert_eq!((bad.status().as_u16(), bad.headers()["cache-control"].to_str().unwrap()), (400, "no-store"));
}

#[tokio::test]
async fn websocket_subscribes_are_charged_even_when_refused_for_too_many() {
    let app = spawn_app_with(|c| {
        c.rate_limit_user = Limit::parse("3/3600").unwrap();
        c.ws_max_subscriptions = 1;
    })
    .await;
    let mut ws = WsClient::init(&app, &app.operator()).await;
    let query = "subscription { provisioningStatus { status } }";
    let mut codes = Vec::new();
    for id in ["1", "2", "3", "4"] {
        ws.subscribe(id, query, json!({})).await;
        if id != "1" {
            let message = ws.next().await.unwrap();
            assert_eq!(message["type"], "error", "{message}");
            codes.push(message["payload"][0]["extensions"]["code"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(codes, ["BAD_USER_INPUT", "BAD_USER_INPUT", "RATE_LIMITED"]);
}
