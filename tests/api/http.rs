//! GraphQL over HTTP: methods, content types, status codes, limits and probes.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn get_runs_queries_but_refuses_mutations() {
    let app = spawn_app().await;
    let token = app.token(Role::Operator, None);
    let url = format!("{}/graphql", app.address);
    let response =
        app.client.get(&url).query(&[("query", "{ me { role } }")]).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["role"], "OPERATOR");

    let mutation = r#"mutation { createTier(input: {name: "x", markup: "0.1"}) { id } }"#;
    let response = app.client.get(&url).query(&[("query", mutation)]).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    // Nothing was written.
    let data = app.data(&token, "{ tiers { name } }", json!({})).await;
    assert_eq!(data["tiers"], json!([]));
    // A named mutation inside a multi-operation document is refused too.
    let document = "query Q { me { role } } mutation M { createTier(input: {name: \"y\", markup: \"0.1\"}) { id } }";
    let response = app
        .client
        .get(&url)
        .query(&[("query", document), ("operationName", "M")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn only_json_bodies_are_accepted() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let token = app.operator();
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let response = app
            .client
            .post(&url)
            .header("content-type", content_type)
            .bearer_auth(&token)
            .body(r#"{"query":"mutation { createTier(input: {name: \"f\", markup: \"0.1\"}) { id } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
    }
    let response =
        app.client.post(&url).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    // Multipart is for uploads (the GraphQL multipart request spec): a form a browser could
    // send cross-site carries no bearer token and is refused before anything runs, and a JSON
    // body dressed as multipart runs nothing either.
    let mutation = r#"{"query":"mutation { createTier(input: {name: \"f\", markup: \"0.1\"}) { id } }"}"#;
    let anonymous = app
        .client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .body(mutation)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let dressed = app
        .client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .bearer_auth(&token)
        .body(mutation)
        .send()
        .await
        .unwrap();
    assert_eq!(dressed.status(), 400);
    let tiers = app.data(&token, "{ tiers { name } }", serde_json::json!({})).await;
    assert!(!tiers.to_string().contains("\"f\""), "{tiers}");
}

#[tokio::test]
async fn status_codes_follow_the_accepted_media_type() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let token = app.operator();
    let invalid = json!({"query": "{ noSuchField }"});
    let response = app
        .client
        .post(&url)
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&token)
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/graphql-response+json");
    let body: Value = response.json().await.unwrap();
    assert!(body.get("data").is_none(), "a request error has no data entry: {body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(!body["errors"][0]["message"].as_str().unwrap().contains("Did you mean"), "suggestions are off");

    let response = app
        .client
        .post(&url)
        .header("accept", "application/json")
        .bearer_auth(&token)
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");

    // A field error is still 200 with graphql-response+json: the request was valid.
    let response = app
        .client
        .post(&url)
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&token)
        .json(&json!({"query": "{ customer(id: \"12345\") { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_request_without_a_query_parameter_is_400_whatever_the_media_type() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    for accept in ["application/json", "application/graphql-response+json"] {
        for body in [
            json!({"qeury": "{ __typename }"}),
            json!({}),
            json!({"query": null}),
            json!([{"query": "{ __typename }"}, {"qeury": "{ __typename }"}]),
        ] {
            let response = app.client.post(&url).header("accept", accept).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 400, "{accept} {body}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
        }
        let response = app.client.get(format!("{url}?qeury=%7B__typename%7D")).header("accept", accept).send().await;
        assert_eq!(response.unwrap().status(), 400, "{accept} GET");
    }
    // A query that does not parse is a GraphQL request error: 200 with application/json.
    let response = app.client.post(&url).header("accept", "application/json").json(&json!({"query": "{"})).send();
    assert_eq!(response.await.unwrap().status(), 200);
    let response = app.client.post(&url).json(&json!({"query": "{ __typename }"})).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn abuse_limits_refuse_oversized_requests() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let token = app.operator();

    let big = "x".repeat(129 * 1024);
    let response = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"query": format!("{{ me {{ role }} }} # {big}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let deep = "{ products { edges { node { vendor { products { edges { node { vendor { products { edges { node { vendor { name } } } } } } } } } } } } }";
    let (_, body) = app.post(Some(&token), deep, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nested too deep"), "{body}");

    let aliases: String = (0..31).map(|i| format!("a{i}: me {{ role }} ")).collect();
    let (_, body) = app.post(Some(&token), &format!("{{ {aliases} }}"), json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("too many aliases"), "{body}");

    let complex = "{ products(first: 100) { edges { node { offers { product { offers { prices { listPrice { amount } retail { amount } wholesale { amount } cost { amount } } } } } } } } }";
    let (_, body) = app.post(Some(&token), complex, json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("too complex"), "{body}");

    let directives =
        "{ me @include(if: true) @include(if: true) @skip(if: false) @skip(if: false) @include(if: true) { role } }";
    let (_, body) = app.post(Some(&token), directives, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");

    let batch: Vec<Value> = (0..11).map(|_| json!({"query": "{ me { role } }"})).collect();
    let response = app.client.post(&url).bearer_auth(&token).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let batch: Vec<Value> = (0..3).map(|_| json!({"query": "{ me { role } }"})).collect();
    let response = app.client.post(&url).bearer_auth(&token).json(&batch).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let query = "{ __schema { queryType { name } } }";
    let app = spawn_app().await;
    let data = app.data(&app.operator(), query, json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let closed = spawn_app_with(|config| config.introspection = false).await;
    let (_, body) = closed.post(Some(&closed.operator()), query, json!({})).await;
    assert_eq!(body["data"]["__schema"], Value::Null, "{body}");
}

#[tokio::test]
async fn probes_and_graphiql_answer() {
    let app = spawn_app().await;
    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), expected);
    }
    let page = app.client.get(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    let closed = spawn_app_with(|config| {
        config.graphiql = false;
        config.dashboard = false;
    })
    .await;
    for path in ["/", "/dashboard"] {
        let page = closed.client.get(format!("{}{path}", closed.address)).send().await.unwrap();
        assert_eq!(page.status(), 404, "{path}");
    }
}

/// The pages' files are served from the binary under content-hashed names, cached a year
/// and compressed on request; the pages themselves are never cached and allow only this
/// origin; any other name under /assets is 404.
#[tokio::test]
async fn the_pages_files_are_hashed_cached_and_same_origin_only() {
    let app = spawn_app().await;
    let page = app.client.get(format!("{}/dashboard", app.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    let script = html.split("src=\"").filter_map(|s| s.split('"').next()).find(|s| s.contains("dashboard.")).unwrap();
    assert!(script.starts_with("/assets/dashboard.") && script.ends_with(".js"), "{script}");
    let file =
        app.client.get(format!("{}{script}", app.address)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(file.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(file.headers()["content-encoding"], "gzip");
    for wrong in ["/assets/dashboard.js", "/assets/dashboard.000000000000.js", "/assets/..%2Fassets.rs"] {
        let response = app.client.get(format!("{}{wrong}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{wrong}");
    }
}

#[tokio::test]
async fn schema_graphql_is_current() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap_or_default();
    assert!(
        committed == switchyard::graphql::sdl(),
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

/// A document whose fragments each spread the previous one twice: `levels` doublings of
/// `leaf`.
fn fragment_bomb(levels: usize, leaf: &str) -> String {
    let mut query = format!("query {{ ...F0 }}\nfragment F0 on Query {{ {leaf} }}\n");
    for level in 1..=levels {
        let previous = level - 1;
        query.push_str(&format!("fragment F{level} on Query {{ ...F{previous} ...F{previous} }}\n"));
    }
    query.replace("query { ...F0 }", &format!("query {{ ...F{levels} }}"))
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_before_validation_while_health_checks_answer() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    // 30 doublings (within async-graphql's recursion depth of 32, so only the selection
    // limit refuses it) in 1.2 KB, sent without a token, twice at once.
    let bomb = fragment_bomb(30, "__typename");
    assert!(bomb.len() < 1300, "{}", bomb.len());
    let send = || {
        let client = app.client.clone();
        let url = url.clone();
        let bomb = bomb.clone();
        async move {
            let started = std::time::Instant::now();
            let body: Value =
                client.post(&url).json(&json!({"query": bomb})).send().await.unwrap().json().await.unwrap();
            (body, started.elapsed())
        }
    };
    let health = async {
        let mut slowest = std::time::Duration::ZERO;
        for _ in 0..10 {
            let started = std::time::Instant::now();
            let response = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
            assert_eq!(response.status(), 200);
            slowest = slowest.max(started.elapsed());
        }
        slowest
    };
    let ((first, first_took), (second, second_took), slowest_health) = tokio::join!(send(), send(), health);
    for body in [&first, &second] {
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("document too large"), "{body}");
    }
    println!("fragment bomb refused in {first_took:?} and {second_took:?}; slowest health check {slowest_health:?}");
    // Generous bounds for a debug build on a loaded machine: without the limit these take
    // hours, and health checks stop answering.
    assert!(first_took.max(second_took) < std::time::Duration::from_secs(5));
    assert!(slowest_health < std::time::Duration::from_secs(5));
    // A document just within the limit (about 3,000 selections) still runs.
    let started = std::time::Instant::now();
    let (_, body) = app.post(Some(&app.operator()), &fragment_bomb(8, "me { role }"), json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "OPERATOR", "{body}");
    println!("a document of about 3,000 selections answered in {:?}", started.elapsed());
}

/// A response keeps its fields in the order the query asked for them (GraphQL's "ordered
/// map"), at every level, in a single answer and in a batch.
#[tokio::test]
async fn response_fields_come_in_the_order_the_query_asked() {
    let app = spawn_app().await;
    let query = "{ zebra: __typename apple: __typename tiers_count: __typename }";
    let single = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |body: &str, key: &str| body.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} in {body}"));
    assert!(
        at(&single, "zebra") < at(&single, "apple") && at(&single, "apple") < at(&single, "tiers_count"),
        "{single}"
    );
    let batch = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&serde_json::json!([{ "query": query }, { "query": "{ b: __typename a: __typename }" }]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(at(&batch, "zebra") < at(&batch, "apple"), "{batch}");
    assert!(at(&batch, "b") < at(&batch, "a"), "{batch}");
}
