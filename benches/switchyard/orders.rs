//! The orders part (#13 items 3, 4 and 5): orders placed per second through real HTTP from
//! 32 concurrent clients with their p50/p99 latency, against a server in a process of its
//! own pinned to core 0 while the clients run here on core 1 (on PostgreSQL beside
//! `pgbench`'s TPC-B on the same server, the reference of item 4); then provisioning jobs
//! completed per second by 4 workers through the sandbox connector with zero latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use switchyard::startup::{Application, Overrides, Settings};

use crate::common::{self, Goal, ServerProcess, figure};

const ORDERS: usize = 4_000;
const CLIENTS: usize = 32;
const WORKERS: usize = 4;

pub fn main() {
    // Errors behind an INTERNAL response are logged, so a failing run says why.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("error")).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("orders", |backend, url| async move { run(backend, &url).await }));
}

async fn run(backend: &str, database_url: &str) {
    // The server on core 0 (it seeds the demo data with instant vendors), the clients on 1.
    let server = ServerProcess::start(database_url, 0, &std::env::var(common::SERVER_WRAP).unwrap_or_default());
    let cpus = common::affinity(std::process::id());
    common::pin(std::process::id(), "1");
    let url = format!("http://{}/graphql", server.address);
    let client = reqwest::Client::new();
    let place = |key: String| {
        let body = json!({
            "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
            "variables": {"key": key, "input": {"customerId": "1", "lines": [{"offerId": "2", "quantity": 5}]}}
        });
        let request = client.post(&url).bearer_auth(&server.reseller).json(&body);
        async move {
            let response: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert!(response["data"]["placeOrder"]["order"]["id"].is_string(), "{response}");
        }
    };
    // The catalog snapshot and the pools, warm before the measure.
    place("warm-up".into()).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let orders: Vec<_> = (0..ORDERS / CLIENTS).map(|index| place(format!("bench-{worker}-{index}"))).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(orders.len());
            for order in orders {
                let sent = Instant::now();
                order.await;
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(ORDERS);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let ordering = started.elapsed();
    server.stop();
    // The workers below run on every core again, as a server's do.
    if let Some(cpus) = cpus {
        common::pin(std::process::id(), &cpus);
    }
    latencies.sort_unstable();
    let rate = ORDERS as f64 / ordering.as_secs_f64();
    let (p50, p99) = (common::quantile(&latencies, 0.50), common::quantile(&latencies, 0.99));
    println!(
        "{backend:<10} placeOrder: {ORDERS} orders in {:.2} s = {rate:.0} orders/s, p50 {:.1} ms, p99 {:.1} ms ({CLIENTS} concurrent clients, server on core 0)",
        ordering.as_secs_f64(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
    );
    let p99 = p99.as_secs_f64() * 1000.0;
    if backend == "SQLite" {
        figure("3", backend, "placeOrder, 32 clients", rate, "orders/s", Goal::AtLeast(1181.0));
        figure("3", backend, "placeOrder p99, 32 clients", p99, "ms", Goal::Below(50.0));
    } else {
        figure("4", backend, "placeOrder, 32 clients", rate, "orders/s", Goal::Shown);
        figure("4", backend, "placeOrder p99, 32 clients", p99, "ms", Goal::Shown);
    }
    provisioning(backend, database_url).await;
    // Last, so its load and checkpoints fall in no figure of ours.
    if backend == "PostgreSQL"
        && let Some(tps) = pgbench_reference(database_url).await
    {
        figure("4", backend, "reference: pgbench TPC-B, 32 clients", tps, "tps", Goal::Shown);
        figure("4", backend, "placeOrder / pgbench", rate / tps * 100.0, "%", Goal::AtLeast(50.0));
    }
}

/// Every job the orders queued, run by [`WORKERS`] workers in this process.
async fn provisioning(backend: &str, database_url: &str) {
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(database_url.to_owned());
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    settings.provisioning.workers = WORKERS;
    settings.provisioning.worker_poll = Duration::from_millis(50);
    let mut app = Application::build(settings, Overrides::default()).await.unwrap();
    let domain = Arc::clone(app.domain());
    let jobs = entity::job::Entity::find().count(&domain.db).await.unwrap();
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
    let rate = jobs as f64 / provisioning_time.as_secs_f64();
    println!(
        "{backend:<10} provisioning: {jobs} jobs in {:.2} s = {rate:.0} jobs/s ({WORKERS} workers, sandbox, zero latency)",
        provisioning_time.as_secs_f64(),
    );
    figure("5", backend, "provisioning jobs, 4 workers, instant vendor", rate, "jobs/s", Goal::AtLeast(2000.0));
}

/// The reference for placeOrder on PostgreSQL: `pgbench`'s TPC-B-like transaction (five
/// statements: three updates, a select and an insert) from as many clients, on a scratch
/// database of the same server initialised at scale 32 (one branch per client, so clients
/// do not queue on one row). Printed beside placeOrder; skipped with a message without
/// `pgbench` on the PATH.
async fn pgbench_reference(database_url: &str) -> Option<f64> {
    let (base, _) = database_url.rsplit_once('/')?;
    let scratch = format!("switchyard_bench_pgbench_{}", std::process::id());
    let admin = switchyard::db::connect(&format!("{base}/postgres"), 1).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {scratch}")).await.unwrap();
    let target = format!("{base}/{scratch}");
    let run = |args: &[&str]| std::process::Command::new("pgbench").args(args).arg(&target).output();
    let tps = match run(&["-i", "-q", "-s", "32"]) {
        Ok(init) if init.status.success() => {
            let clients = CLIENTS.to_string();
            let out = run(&["-n", "-c", &clients, "-j", "1", "-T", "10"]).unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let tps = text.lines().find(|l| l.starts_with("tps")).unwrap_or("tps: not reported");
            let latency = text.lines().find(|l| l.starts_with("latency average")).unwrap_or("");
            println!("PostgreSQL pgbench TPC-B (scale 32, {CLIENTS} clients, 1 thread): {tps}; {latency}");
            // "tps = 2888.123456 (without initial connection time)"
            tps.strip_prefix("tps = ").and_then(|rest| rest.split_whitespace().next()).and_then(|v| v.parse().ok())
        }
        Ok(init) => {
            println!("** pgbench reference skipped: {} **", String::from_utf8_lossy(&init.stderr).trim());
            None
        }
        Err(error) => {
            println!("** pgbench reference skipped: pgbench not runnable ({error}) **");
            None
        }
    };
    admin.execute_unprepared(&format!("DROP DATABASE {scratch} WITH (FORCE)")).await.unwrap();
    tps
}
