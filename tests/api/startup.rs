//! The application as `main` and the benchmarks build it: from settings alone, opening and
//! migrating its own pool, with the real clock and its own workers.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::json;
use switchyard::demo;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

use crate::helpers::{TestDatabase, auth_config, provisioning_config};

#[tokio::test]
async fn an_app_built_from_settings_alone_migrates_its_own_pool_and_provisions_orders() {
    let database = TestDatabase::create().await;
    let mut settings = Settings::from_environment().expect("default settings");
    settings.database.database_url = Some(database.url.clone());
    settings.database.db_max_connections = 16;
    settings.auth = auth_config();
    settings.server.http_workers = 1;
    settings.provisioning = provisioning_config(2);
    let mut app = Application::build(settings, Overrides::default()).await.expect("build from settings");
    let domain = Arc::clone(app.domain());
    assert!(demo::seed_if_empty(&domain).await.expect("seed"), "a fresh database gets the demo data");
    // The demo's sandbox vendors answer slowly and fail now and then; here they must not.
    domain
        .db
        .execute_unprepared("UPDATE vendors SET connector_settings = '{\"latencyMs\": 0, \"failureRate\": \"0\"}'")
        .await
        .expect("instant vendors");
    app.start_workers();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let running = app.serve(listener).expect("serve");
    let handle = running.handle();
    tokio::spawn(running);
    let token = app
        .state
        .auth
        .issue(&Actor::from_role(None, Role::Reseller, Some(1)).unwrap(), Duration::from_secs(600))
        .unwrap();
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let response = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }
    };

    // More concurrent orders than the pool has connections, so every connection is used.
    let orders = (0..24).map(|index| {
        post(json!({
            "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
            "variables": {"key": format!("startup-{index}"), "input": {"customerId": "1", "lines": [{"offerId": "2", "quantity": 5}]}}
        }))
    });
    for response in futures_util::future::join_all(orders).await {
        assert!(response["data"]["placeOrder"]["order"]["id"].is_string(), "{response}");
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response =
            post(json!({"query": "{ subscriptions(first: 100, filter: {status: ACTIVE}) { totalCount } }"})).await;
        let active = response["data"]["subscriptions"]["totalCount"].as_i64().unwrap_or_else(|| panic!("{response}"));
        if active >= 24 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {active} of 24 subscriptions became active");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop(true).await;
}
