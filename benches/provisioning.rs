//! Ordering and provisioning throughput: orders placed per second through real HTTP from 32
//! concurrent clients with their p50/p99 latency (on PostgreSQL beside `pgbench`'s TPC-B on
//! the same server, the reference of #13), and provisioning jobs completed per second by
//! the workers through the sandbox connector with zero latency. SQLite (a temporary file)
//! and PostgreSQL (a temporary database on `BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; skipped if unreachable). Run with
//! `cargo bench --bench provisioning`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

const ORDERS: usize = 4_000;
const CLIENTS: usize = 32;
const WORKERS: usize = 4;

fn main() {
    // Errors behind an INTERNAL response are logged, so a failing run says why.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("error")).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("orders", |backend, url| async move { run(backend, &url).await }));
}

async fn run(backend: &str, database_url: &str) {
    let url = database_url;
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(url.to_owned());
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    settings.server.http_workers = 1;
    // The engine's speed, not the limiter's refusals.
    settings.server.rate_limit_user = switchyard::rate_limit::Limit::parse("off").unwrap();
    settings.provisioning.workers = WORKERS;
    settings.provisioning.worker_poll = Duration::from_millis(50);
    let mut app = Application::build(settings, Overrides::default()).await.unwrap();
    let domain = Arc::clone(app.domain());
    common::seed_with_instant_vendors(&domain).await;
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
            let mut latencies = Vec::with_capacity(ORDERS / CLIENTS);
            for index in 0..ORDERS / CLIENTS {
                let body = json!({
                    "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
                    "variables": {"key": format!("bench-{worker}-{index}"),
                                  "input": {"customerId": "1", "lines": [{"offerId": "2", "quantity": 5}]}}
                });
                let sent = Instant::now();
                let response: serde_json::Value = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().json().await.unwrap();
                latencies.push(sent.elapsed());
                assert!(response["data"]["placeOrder"]["order"]["id"].is_string(), "{response}");
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(ORDERS);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let ordering = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{backend:<10} placeOrder: {ORDERS} orders in {:.2} s = {:.0} orders/s, p50 {:.1} ms, p99 {:.1} ms ({CLIENTS} concurrent clients)",
        ordering.as_secs_f64(),
        ORDERS as f64 / ordering.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
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
    // Last, so its load and checkpoints fall in no figure of ours.
    if backend == "PostgreSQL" {
        pgbench_reference(database_url).await;
    }
}

/// The reference for placeOrder on PostgreSQL: `pgbench`'s TPC-B-like transaction (five
/// statements: three updates, a select and an insert) from as many clients, on a scratch
/// database of the same server initialised at scale 32 (one branch per client, so clients
/// do not queue on one row). Printed beside placeOrder; skipped with a message without
/// `pgbench` on the PATH.
async fn pgbench_reference(database_url: &str) {
    let Some((base, _)) = database_url.rsplit_once('/') else { return };
    let scratch = format!("switchyard_bench_pgbench_{}", std::process::id());
    let admin = switchyard::db::connect(&format!("{base}/postgres"), 1).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {scratch}")).await.unwrap();
    let target = format!("{base}/{scratch}");
    let run = |args: &[&str]| std::process::Command::new("pgbench").args(args).arg(&target).output();
    match run(&["-i", "-q", "-s", "32"]) {
        Ok(init) if init.status.success() => {
            let clients = CLIENTS.to_string();
            let out = run(&["-n", "-c", &clients, "-j", "1", "-T", "10"]).unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let tps = text.lines().find(|l| l.starts_with("tps")).unwrap_or("tps: not reported");
            let latency = text.lines().find(|l| l.starts_with("latency average")).unwrap_or("");
            println!("PostgreSQL pgbench TPC-B (scale 32, {CLIENTS} clients, 1 thread): {tps}; {latency}");
        }
        Ok(init) => println!("pgbench reference skipped: {}", String::from_utf8_lossy(&init.stderr).trim()),
        Err(error) => println!("pgbench reference skipped: pgbench not runnable ({error})"),
    }
    admin.execute_unprepared(&format!("DROP DATABASE {scratch} WITH (FORCE)")).await.unwrap();
}
