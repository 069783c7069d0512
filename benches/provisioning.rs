//! Ordering and provisioning throughput: orders placed per second through real HTTP, and
//! provisioning jobs completed per second by the workers through the sandbox connector
//! with zero latency. SQLite (a temporary file) and PostgreSQL (a temporary database on
//! `BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; skipped if
//! unreachable). Run with `cargo bench --bench provisioning`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use switchyard::demo;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

const ORDERS: usize = 2_000;
const CLIENTS: usize = 8;
const WORKERS: usize = 4;

fn main() {
    // Errors behind an INTERNAL response are logged, so a failing run says why.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("error")).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("orders", |backend, url| async move { run(backend, &url).await }));
}

async fn run(backend: &str, url: &str) {
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(url.to_owned());
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    settings.server.http_workers = 1;
    settings.provisioning.workers = WORKERS;
    settings.provisioning.worker_poll = Duration::from_millis(50);
    let mut app = Application::build(settings, Overrides::default()).await.unwrap();
    let domain = Arc::clone(app.domain());
    demo::seed_if_empty(&domain).await.unwrap();
    // Zero latency and no failures: measure the engine, not the simulated vendor.
    domain
        .db
        .execute_unprepared("UPDATE vendors SET connector_settings = '{\"latencyMs\": 0, \"failureRate\": \"0\"}'")
        .await
        .unwrap();
    domain.catalog.invalidate();
    let token = app
        .state
        .auth
        .issue(&Actor::from_role(None, Role::Reseller, Some(1)).unwrap(), Duration::from_secs(3600))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let running = app.serve(listener).unwrap();
    let handle = running.handle();
    tokio::spawn(running);

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0..ORDERS / CLIENTS {
                let body = json!({
                    "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
                    "variables": {"key": format!("bench-{worker}-{index}"),
                                  "input": {"customerId": "1", "lines": [{"offerId": "2", "quantity": 5}]}}
                });
                let response: serde_json::Value = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().json().await.unwrap();
                assert!(response["data"]["placeOrder"]["order"]["id"].is_string(), "{response}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ordering = started.elapsed();
    println!(
        "{backend:<10} placeOrder: {ORDERS} orders in {:.2} s = {:.0} orders/s ({CLIENTS} concurrent clients)",
        ordering.as_secs_f64(),
        ORDERS as f64 / ordering.as_secs_f64()
    );

    let started = Instant::now();
    app.start_workers();
    loop {
        let left = entity::job::Entity::find()
            .filter(entity::job::Column::Status.ne(entity::enums::JobStatus::Succeeded))
            .count(&domain.db)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let provisioning_time = started.elapsed();
    drop(app.workers.take());
    println!(
        "{backend:<10} provisioning: {ORDERS} jobs in {:.2} s = {:.0} jobs/s ({WORKERS} workers, sandbox, zero latency)",
        provisioning_time.as_secs_f64(),
        ORDERS as f64 / provisioning_time.as_secs_f64()
    );
    handle.stop(true).await;
}
