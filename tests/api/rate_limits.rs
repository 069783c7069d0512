//! #11, rate limits: token buckets per user, per API key and per anonymous client address;
//! every answer carries the IETF `RateLimit-Policy` / `RateLimit` headers, an exhausted
//! bucket is 429 with `Retry-After`, and an operation costs its complexity, not one request.

use serde_json::{Value, json};
use switchyard::rate_limit::Limit;

use crate::helpers::{Fixture, TestApp, spawn_app_with};

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
    let app = spawn_app_with(|c| c.rate_limit_user = Limit::parse("4/60").unwrap()).await;
    let operator = app.operator();
    for left in (0..4).rev() {
        let answer = ask(&app, Some(&operator), "{ me { role } }").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.policy, "\"user\";q=4;w=60");
        assert_eq!(remaining(&answer.limit), left, "{}", answer.limit);
    }
    let refused = ask(&app, Some(&operator), "{ me { role } }").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // One token comes back every 15 s.
    assert!(matches!(refused.retry_after, Some(1..=15)), "{:?}", refused.retry_after);
    assert_eq!(remaining(&refused.limit), 0);
    // Another user has a bucket of its own.
    let f = Fixture::build(&app).await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
    assert_eq!(ask(&app, Some(&reseller), "{ __typename }").await.status, 200);
}

#[tokio::test]
async fn an_operation_costs_its_complexity_and_one_past_the_bucket_is_refused_before_it_runs() {
    // Without the response cache: a page served from it costs only the admission's token.
    let app = spawn_app_with(|c| {
        c.rate_limit_user = Limit::parse("12/60").unwrap();
        c.response_cache = false;
    })
    .await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
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
        c.rate_limit_anonymous = Limit::parse("2/60").unwrap();
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
    // Credentials are not anonymous: the user's bucket (off here) applies.
    let operator = app.operator();
    assert_eq!(ask(&app, Some(&operator), "{ __typename }").await.status, 200);
}
