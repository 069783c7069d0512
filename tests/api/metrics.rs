//! #11, metrics: `/metrics` answers in Prometheus's text format — parsed here by a
//! Prometheus text parser (`prometheus-parse`) — with GraphQL operations by name and
//! outcome and their latency histogram, errors by code, HTTP requests by route, jobs by kind
//! and status, job outcomes, live WebSocket connections and the database pool.

use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::json;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::live::WsClient;
use crate::orders::{order_input, place};

async fn scrape(app: &TestApp) -> Scrape {
    let response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"))
}

/// The value of the sample of `name` with every label of `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matches = |s: &&Sample| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
    scrape.samples.iter().find(matches).map(|s| match &s.value {
        Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
        Metric::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        Metric::Summary(_) => f64::NAN,
    })
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    // Three outcomes: ok, an error in a field, and a request refused before it ran.
    let query = |document: &'static str| {
        let app = &app;
        let operator = operator.clone();
        async move {
            app.client
                .post(format!("{}/graphql", app.address))
                .bearer_auth(operator)
                .json(&json!({"query": document}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        query("query MetricsCatalog { products(first: 1) { edges { node { name } } } }").await;
    }
    query("query MetricsMissing { customer(id: \"999999\") { name } }").await;
    let rejected_before =
        value(&scrape(&app).await, "graphql_operations_total", &[("operation", "anonymous"), ("outcome", "rejected")])
            .unwrap_or(0.0);
    query("query MetricsRefused { noSuchField }").await;
    // A name the document has no operation of is not the client's to label with either.
    app.client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&operator)
        .json(&json!({"query": "query MetricsKnown { __typename }", "operationName": "MetricsJunk"}))
        .send()
        .await
        .unwrap();
    // A job that runs, and a live WebSocket.
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "metrics").await;
    app.run_jobs().await;
    let live = WsClient::init(&app, &reseller).await;

    let scrape = scrape(&app).await;
    let ops = |operation, outcome| {
        value(&scrape, "graphql_operations_total", &[("operation", operation), ("outcome", outcome)]).unwrap_or(0.0)
    };
    assert_eq!(ops("MetricsCatalog", "ok"), 3.0);
    assert_eq!(ops("MetricsMissing", "error"), 1.0);
    // A document that does not validate is not named by the client's say-so.
    assert_eq!(ops("MetricsRefused", "rejected"), 0.0);
    assert_eq!(ops("MetricsJunk", "rejected"), 0.0);
    // Counted, unnamed (other tests in this process may add theirs meanwhile).
    assert!(ops("anonymous", "rejected") >= rejected_before + 1.0);
    let latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "graphql_operation_duration_seconds" && s.labels.get("operation") == Some("MetricsCatalog")
        })
        .expect("a latency histogram");
    match &latency.value {
        Metric::Histogram(buckets) => {
            assert!(buckets.len() > 5, "{buckets:?}");
            assert_eq!(buckets.last().unwrap().count, 3.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(value(&scrape, "graphql_errors_total", &[("code", "NOT_FOUND")]).unwrap_or(0.0) >= 1.0);
    assert!(value(&scrape, "graphql_errors_total", &[("code", "BAD_USER_INPUT")]).unwrap_or(0.0) >= 1.0);
    let posts = value(&scrape, "http_requests_total", &[("route", "/graphql"), ("method", "POST"), ("status", "200")]);
    assert!(posts.unwrap_or(0.0) >= 6.0, "{posts:?}");
    // State, read at the scrape from this app's database.
    assert_eq!(value(&scrape, "jobs", &[("kind", "PROVISIONING"), ("status", "SUCCEEDED")]), Some(1.0));
    assert_eq!(value(&scrape, "jobs", &[("kind", "PROVISIONING"), ("status", "QUEUED")]), Some(0.0));
    assert!(
        value(&scrape, "job_outcomes_total", &[("kind", "provisioning"), ("outcome", "succeeded")]).unwrap_or(0.0)
            >= 1.0
    );
    assert!(value(&scrape, "websocket_connections", &[]).unwrap_or(0.0) >= 1.0);
    assert!(value(&scrape, "db_pool_connections", &[("state", "idle")]).is_some());
    drop(live);
}

#[tokio::test]
async fn metrics_need_the_scrape_token_when_one_is_set() {
    let app = crate::helpers::spawn_app_with(|c| c.metrics_token = Some("scrape-secret".into())).await;
    let scrape = |token: Option<&'static str>| {
        let mut request = app.client.get(format!("{}/metrics", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(scrape(None).await, 403);
    assert_eq!(scrape(Some("scrape-secreT")).await, 403);
    assert_eq!(scrape(Some("scrape-secret")).await, 200);
}
