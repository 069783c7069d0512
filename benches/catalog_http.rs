//! Catalog read throughput through real HTTP: a 50-offer page with a reseller's prices.
//!
//! Run with `cargo bench --bench catalog_http`. It starts the server in this process on
//! the demo data set (one HTTP worker, so the figure is per core; the load generator runs
//! on the other core), then sends the same GraphQL page request from concurrent clients
//! and prints requests per second and p50/p99 latency. It measures SQLite (a temporary
//! file) and PostgreSQL (a temporary database on `BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; skipped if unreachable), each with the
//! caches on (the default), with only the catalog snapshot cached, and with no cache; the
//! cached modes with the rate limiter on (a bucket so large it never refuses, so every
//! request pays for the limiter's bookkeeping and headers) and off.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::demo;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

const QUERY: &str = "{ offers(first: 50) { totalCount edges { node { id sku name term billingFrequency \
    prices { currency listPrice { amount } wholesale { amount } retail { amount } } } } } }";
const CLIENTS: usize = 16;
const WARMUP: usize = 500;
const REQUESTS: usize = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("catalog", |backend, url| async move {
        if let Some(seconds) = std::env::var("BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()) {
            SOAK.set(Duration::from_secs(seconds)).unwrap();
            let responses = std::env::var("BENCH_SOAK_CACHE").is_ok_and(|c| c == "responses");
            return run(backend, &url, if responses { Cache::Responses } else { Cache::Snapshot }, true).await;
        }
        for cache in [Cache::Responses, Cache::Snapshot] {
            for limited in [true, false] {
                run(backend, &url, cache, limited).await;
            }
        }
        run(backend, &url, Cache::Off, true).await;
    }));
}

/// Which caches are on.
#[derive(Clone, Copy, PartialEq)]
enum Cache {
    /// The defaults: catalog snapshot and whole-response cache.
    Responses,
    /// The catalog snapshot only: every request executes GraphQL.
    Snapshot,
    /// Nothing cached: every request reads the catalog from the database.
    Off,
}

async fn run(backend: &str, url: &str, cache: Cache, limited: bool) {
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(url.to_owned());
    settings.database.db_max_connections = 8;
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    settings.server.http_workers = 1;
    settings.server.response_cache = cache == Cache::Responses;
    let limit = if limited { "4000000000/1" } else { "off" };
    settings.server.rate_limit_user = switchyard::rate_limit::Limit::parse(limit).unwrap();
    if cache == Cache::Off {
        settings.server.catalog_cache_ttl = Duration::ZERO;
    }
    let app = Application::build(settings, Overrides::default()).await.unwrap();
    demo::seed_if_empty(app.domain()).await.unwrap();
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
    let body = serde_json::to_vec(&json!({"query": QUERY})).unwrap();
    let check: serde_json::Value = client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let edges = check["data"]["offers"]["edges"].as_array().map_or(0, Vec::len);
    assert_eq!(edges, 50, "{check}");
    assert!(check["data"]["offers"]["edges"][0]["node"]["prices"][0]["wholesale"]["amount"].is_string());

    let expected_length = serde_json::to_vec(&check).unwrap().len();
    let requests = match cache {
        Cache::Responses => REQUESTS * 5,
        Cache::Snapshot => REQUESTS,
        Cache::Off => REQUESTS / 10,
    };
    load(&client, &url, &token, &body, WARMUP, expected_length).await;
    if let Some(soak) = SOAK.get() {
        return soak_for(*soak, backend, &client, &url, &token, &body, expected_length).await;
    }
    let started = Instant::now();
    let mut latencies = load(&client, &url, &token, &body, requests, expected_length).await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{backend:<10} {:<22} {:<11} {:>6} requests  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({expected_length} bytes each)",
        match cache {
            Cache::Responses => "response+catalog cache",
            Cache::Snapshot => "catalog cache only",
            Cache::Off => "no cache",
        },
        if limited { "limits on" } else { "limits off" },
        requests,
        requests as f64 / elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
    );
    handle.stop(true).await;
}

/// `BENCH_SOAK_SECS`: instead of the table, keep the catalog-cache-only load (with
/// `BENCH_SOAK_CACHE=responses`, the default caches) going that long and print the
/// process's resident memory every tenth of it (a growing figure is a leak or
/// fragmentation; a flat one after the first tenth is the working set).
static SOAK: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

async fn soak_for(
    soak: Duration,
    backend: &str,
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &[u8],
    expected_length: usize,
) {
    let started = Instant::now();
    let mut next = Duration::ZERO;
    let mut sent = 0;
    while started.elapsed() < soak {
        if started.elapsed() >= next {
            println!(
                "{backend:<10} soak {:>4} s  {sent:>8} requests  RSS {:>6.1} MiB",
                started.elapsed().as_secs(),
                resident_mib()
            );
            next += soak / 10;
        }
        sent += load(client, url, token, body, CLIENTS * 50, expected_length).await.len();
    }
    println!("{backend:<10} soak {:>4} s  {sent:>8} requests  RSS {:>6.1} MiB", soak.as_secs(), resident_mib());
}

/// This process's resident set (`VmRSS`), in MiB.
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Sends `total` requests from [`CLIENTS`] concurrent clients; returns each latency.
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &[u8],
    total: usize,
    expected_length: usize,
) -> Vec<Duration> {
    let per_client = total / CLIENTS;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, token, body) = (client.clone(), url.to_owned(), token.to_owned(), body.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                assert_eq!(response.bytes().await.unwrap().len(), expected_length);
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}
