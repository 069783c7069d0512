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
mod reference;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::demo;
use switchyard::domain::catalog_cache::CatalogSnapshot;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

const QUERY: &str = "{ offers(first: 50) { totalCount edges { node { id sku name term billingFrequency \
    prices { currency listPrice { amount } wholesale { amount } retail { amount } } } } } }";
/// The same page without `totalCount`, which costs a count of every visible offer when the
/// page is read from the database.
const QUERY_WITHOUT_TOTAL: &str = "{ offers(first: 50) { edges { node { id sku name term billingFrequency \
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
        if let Ok(sizes) = std::env::var("BENCH_OFFERS") {
            let sizes: Vec<usize> =
                sizes.split(',').map(|n| n.trim().parse().expect("BENCH_OFFERS: a list of counts")).collect();
            return scale(backend, &url, &sizes).await;
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

/// `BENCH_OFFERS=1000,20000,200000`: instead of the table, grow the catalog to each size
/// in turn (generated offers on top of the demo's) and measure the page with no cache and
/// with the catalog cache, and what the whole-catalog snapshot costs: its load time and
/// the resident memory it holds.
async fn scale(backend: &str, url: &str, sizes: &[usize]) {
    let mut generated = 0;
    for &size in sizes {
        let app = application(url, Cache::Off, false).await;
        demo::seed_if_empty(app.domain()).await.unwrap();
        common::generate_catalog(&app.domain().db, generated..size).await;
        generated = size;
        // Resident memory mixes what a snapshot holds with what the allocator keeps of the
        // load's transient work; a second snapshot loaded while the first is held reuses
        // that, so what it adds is about what one snapshot holds.
        let resident_before = resident_mib();
        let started = Instant::now();
        let snapshot = CatalogSnapshot::load(&app.domain().db).await.unwrap();
        let load = started.elapsed();
        let first = resident_mib();
        let second = CatalogSnapshot::load(&app.domain().db).await.unwrap();
        let held = resident_mib() - first;
        println!(
            "{backend:<10} {:>7} offers  snapshot load {:>8.1} ms  holds about {held:.1} MiB ({:.1} MiB per 100,000 offers; the first load +{:.1} MiB resident)",
            snapshot.offers.len(),
            load.as_secs_f64() * 1000.0,
            held * 100_000.0 / snapshot.offers.len() as f64,
            first - resident_before,
        );
        drop(second);
        drop(snapshot);
        drop(app);
        for cache in [Cache::Off, Cache::Snapshot] {
            run(backend, url, cache, false).await;
        }
        run_query(backend, url, Cache::Off, false, QUERY_WITHOUT_TOTAL).await;
    }
}

async fn application(url: &str, cache: Cache, limited: bool) -> Application {
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
    Application::build(settings, Overrides::default()).await.unwrap()
}

async fn run(backend: &str, url: &str, cache: Cache, limited: bool) {
    run_query(backend, url, cache, limited, QUERY).await;
}

async fn run_query(backend: &str, url: &str, cache: Cache, limited: bool, query: &str) {
    let app = application(url, cache, limited).await;
    demo::seed_if_empty(app.domain()).await.unwrap();
    if cache != Cache::Off {
        // The steady state: the snapshot loaded (pages meanwhile read the database).
        app.domain().catalog.snapshot(&app.domain().db).await.unwrap();
    }
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
    let body = serde_json::to_vec(&json!({"query": query})).unwrap();
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
    let mut requests = match cache {
        Cache::Responses => REQUESTS * 5,
        Cache::Snapshot => REQUESTS,
        Cache::Off => REQUESTS / 10,
    };
    // A large catalog without its cache is slow: a probe sizes the warm-up (5 s at most)
    // and the measurement (about 20 s at most).
    let probe = Instant::now();
    load(&client, &url, &token, &body, CLIENTS, expected_length).await;
    let estimate = probe.elapsed().as_secs_f64() / CLIENTS as f64;
    load(&client, &url, &token, &body, WARMUP.min((5.0 / estimate) as usize), expected_length).await;
    requests = requests.min(((20.0 / estimate) as usize).max(CLIENTS * 4));
    if let Some(soak) = SOAK.get() {
        return soak_for(*soak, backend, &client, &url, &token, &body, expected_length).await;
    }
    let ours = measure(&client, &url, &token, &body, requests, expected_length).await;
    let label = match cache {
        Cache::Responses => "response+catalog cache",
        Cache::Snapshot => "catalog cache only",
        Cache::Off if query == QUERY => "no cache",
        Cache::Off => "no cache, no totalCount",
    };
    report(backend, label, if limited { "limits on" } else { "limits off" }, requests, ours, expected_length);
    if cache == Cache::Snapshot && query == QUERY && !limited {
        // The same page from the minimal in-memory reference server, same load.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reference_url = format!("http://{}/graphql", listener.local_addr().unwrap());
        let reference = reference::serve(listener, &check["data"]);
        load(&client, &reference_url, &token, &body, WARMUP, expected_length).await;
        let limit = measure(&client, &reference_url, &token, &body, requests, expected_length).await;
        report(backend, "reference, in memory", "", requests, limit, expected_length);
        println!("{backend:<10} catalog cache only at {:.0} % of the reference", ours.0 / limit.0 * 100.0);
        reference.stop(true).await;
    }
    handle.stop(true).await;
}

/// Sends `requests` requests; returns requests per second, p50 and p99.
async fn measure(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &[u8],
    requests: usize,
    expected_length: usize,
) -> (f64, Duration, Duration) {
    let started = Instant::now();
    let mut latencies = load(client, url, token, body, requests, expected_length).await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    (requests as f64 / elapsed.as_secs_f64(), percentile(0.50), percentile(0.99))
}

fn report(backend: &str, label: &str, limits: &str, requests: usize, figures: (f64, Duration, Duration), bytes: usize) {
    let (rate, p50, p99) = figures;
    println!(
        "{backend:<10} {label:<23} {limits:<11} {requests:>6} requests  {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({bytes} bytes each)",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
    );
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
