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
    // Written behind the catalog's version: drop what the seeding cached.
    domain.catalog.invalidate();
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

/// Two servers and a worker started together on an empty database: one migrates, the
/// others wait for it, and all three come up (issue #9, item 8).
#[tokio::test]
async fn processes_starting_together_on_an_empty_database_migrate_it_once() {
    let database = TestDatabase::create().await;
    let mut settings = Settings::from_environment().expect("default settings");
    settings.database.database_url = Some(database.url.clone());
    settings.auth = auth_config();
    settings.provisioning = provisioning_config(0);
    let starts = (0..3).map(|index| {
        let settings = settings.clone();
        async move {
            if index == 2 {
                switchyard::startup::build_domain(&settings, Overrides::default()).await.map(|_| ())
            } else {
                Application::build(settings, Overrides::default()).await.map(|_| ())
            }
        }
    });
    for (index, started) in futures_util::future::join_all(starts).await.into_iter().enumerate() {
        assert!(started.is_ok(), "process {index} failed to start: {:?}", started.err());
    }
}

/// With its database down, `/readyz` answers "not ready" within about a second instead of
/// waiting out the pool's 30 s acquire timeout; once the database is back, "ready" again
/// (issue #9, item 9). On a throwaway PostgreSQL cluster the test makes and stops.
#[tokio::test]
async fn readyz_answers_within_a_second_while_the_database_is_down() {
    let cluster = crate::pg_cluster::Cluster::start();
    let mut settings = Settings::from_environment().expect("default settings");
    settings.database.database_url = Some(cluster.url("postgres"));
    settings.auth = auth_config();
    settings.provisioning = provisioning_config(0);
    let app = Application::build(settings, Overrides::default()).await.expect("build");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}/readyz", listener.local_addr().unwrap());
    tokio::spawn(app.serve(listener).unwrap());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    assert_eq!(client.get(&address).send().await.unwrap().status(), 200);
    cluster.stop();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let status = client.get(&address).send().await.unwrap().status();
        let took = started.elapsed();
        assert_eq!(status, 503);
        assert!(took < Duration::from_millis(2500), "not ready after {took:?}");
    }
    cluster.resume();
    let mut ready = false;
    for _ in 0..50 {
        if client.get(&address).send().await.unwrap().status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "ready again once the database is back");
}
