//! The catalog part (#13 items 1 and 2): a 50-offer page with a reseller's prices, through
//! real HTTP.
//!
//! It starts the server in this process on the demo data set (one HTTP worker, so the figure
//! is per core; the load generator runs on the other core), then sends the same GraphQL page
//! request from concurrent clients and reports requests per second and p50/p99 latency:
//! with the caches on (the default), with only the catalog snapshot cached, and with no
//! cache; the cached modes with the rate limiter on (a bucket so large it never refuses, so
//! every request pays for the limiter's bookkeeping and headers) and off. The catalog-cache
//! page is followed by the same page from the minimal in-memory reference server.
//!
//! Then the catalog grows to each of `BENCH_OFFERS` offers (default `1000,20000,200000`;
//! empty for none): the snapshot's load time and memory, the page from the database (with
//! and without `totalCount`) and from the snapshot. `BENCH_SOAK_SECS=120` instead keeps the
//! catalog-cache load going that long and prints the resident memory every tenth of it.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::demo;

use crate::common::{self, Goal, figure};
use crate::reference;
use switchyard::domain::catalog_cache::CatalogSnapshot;
use switchyard::domain::catalog_delta::{CatalogChange, Refreshed, refreshed};
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

pub fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("catalog", |backend, url| async move {
        if let Some(seconds) = std::env::var("BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()) {
            SOAK.set(Duration::from_secs(seconds)).unwrap();
            let cache = match std::env::var("BENCH_SOAK_CACHE").as_deref() {
                Ok("responses") => Cache::Responses,
                Ok("off") => Cache::Off,
                _ => Cache::Snapshot,
            };
            run(backend, &url, cache, true).await;
            return;
        }
        for cache in [Cache::Responses, Cache::Snapshot] {
            for limited in [true, false] {
                run(backend, &url, cache, limited).await;
            }
        }
        run(backend, &url, Cache::Off, true).await;
        let sizes = std::env::var("BENCH_OFFERS").unwrap_or_else(|_| "1000,20000,200000".into());
        let sizes: Vec<usize> = sizes
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().parse().expect("BENCH_OFFERS: a list of counts"))
            .collect();
        scale(backend, &url, &sizes).await;
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

/// Grows the catalog to each of `sizes` in turn (generated offers on top of the demo's) and
/// measures the page with no cache and with the catalog cache, and what the whole-catalog
/// snapshot costs: its load time and the resident memory it holds.
async fn scale(backend: &str, url: &str, sizes: &[usize]) {
    // The reference is measured on the demo catalog only (item 2's figure).
    let _ = SCALING.set(true);
    let mut generated = 0;
    for &size in sizes {
        let app = application(url, Cache::Off, false).await;
        demo::seed_if_empty(app.domain()).await.unwrap();
        common::generate_catalog(&app.domain().db, generated..size).await;
        generated = size;
        drop(app);
        let offers = snapshot_in_a_process_of_its_own(backend, url);
        if let Some((rate, _, p99)) = run(backend, url, Cache::Off, false).await {
            let what = format!("page from the database, {offers} offers");
            figure("1", backend, &what, rate, "req/s", Goal::AtLeast(1000.0));
            let p99 = p99.as_secs_f64() * 1000.0;
            figure("1", backend, &format!("page p99 from the database, {offers} offers"), p99, "ms", Goal::Below(20.0));
        }
        if let Some((_, _, p99)) = run(backend, url, Cache::Snapshot, false).await {
            let p99 = p99.as_secs_f64() * 1000.0;
            figure("1", backend, &format!("page p99 from the snapshot, {offers} offers"), p99, "ms", Goal::Below(20.0));
        }
        if let Some((rate, _, _)) = run_query(backend, url, Cache::Off, false, QUERY_WITHOUT_TOTAL).await {
            let what = format!("page from the database, no totalCount, {offers} offers");
            figure("1", backend, &what, rate, "req/s", Goal::AtLeast(1000.0));
        }
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

/// Measures the page (`run_query` with [`QUERY`]).
async fn run(backend: &str, url: &str, cache: Cache, limited: bool) -> Option<(f64, Duration, Duration)> {
    run_query(backend, url, cache, limited, QUERY).await
}

/// Measures `query`'s page on a server with `cache`; its requests per second, p50 and p99
/// (none in a soak).
async fn run_query(
    backend: &str,
    url: &str,
    cache: Cache,
    limited: bool,
    query: &str,
) -> Option<(f64, Duration, Duration)> {
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
        soak_for(*soak, backend, &client, &url, &token, &body, expected_length).await;
        return None;
    }
    let ours = measure(&client, &url, &token, &body, requests, expected_length).await;
    let label = match cache {
        Cache::Responses => "response+catalog cache",
        Cache::Snapshot => "catalog cache only",
        Cache::Off if query == QUERY => "no cache",
        Cache::Off => "no cache, no totalCount",
    };
    report(backend, label, if limited { "limits on" } else { "limits off" }, requests, ours, expected_length);
    if cache == Cache::Snapshot && query == QUERY && !limited && !SCALING.get().is_some_and(|s| *s) {
        // The same page from the minimal in-memory reference server, same load.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reference_url = format!("http://{}/graphql", listener.local_addr().unwrap());
        let reference = reference::serve(listener, &check["data"]);
        load(&client, &reference_url, &token, &body, WARMUP, expected_length).await;
        let limit = measure(&client, &reference_url, &token, &body, requests, expected_length).await;
        report(backend, "reference, in memory", "", requests, limit, expected_length);
        let ratio = ours.0 / limit.0 * 100.0;
        println!("{backend:<10} catalog cache only at {ratio:.0} % of the reference");
        figure("2", backend, "page from the snapshot, demo catalog", ours.0, "req/s", Goal::Shown);
        figure("2", backend, "reference: the same page from memory, minimal server", limit.0, "req/s", Goal::Shown);
        figure("2", backend, "page from the snapshot / the reference", ratio, "%", Goal::AtLeast(80.0));
        reference.stop(true).await;
    }
    handle.stop(true).await;
    Some(ours)
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
    (requests as f64 / elapsed.as_secs_f64(), common::quantile(&latencies, 0.50), common::quantile(&latencies, 0.99))
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
/// `BENCH_SOAK_CACHE=responses`, the default caches; with `off`, none: pages read from the
/// database, to profile that path) going that long and print the
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

/// Set while the catalog grows: the catalog-cache page is not compared with the reference.
static SCALING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Set in the environment of a process that measures the snapshot's memory: the database.
pub const SNAPSHOT: &str = "BENCH_SNAPSHOT";

/// Measures the snapshot of the catalog at `url` in a process of its own (this binary
/// started again with [`SNAPSHOT`]), where neither the pages served before nor the
/// database's cache weigh on the figure; reports it, and returns the offers.
fn snapshot_in_a_process_of_its_own(backend: &str, url: &str) -> usize {
    let output = std::process::Command::new(std::env::current_exe().unwrap()).env(SNAPSHOT, url).output().unwrap();
    assert!(output.status.success(), "the snapshot's process failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<f64> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let [offers, load_ms, held, first_load, refresh_one, refresh_many] = numbers[..] else {
        panic!("the snapshot's process said {text}")
    };
    let per_100k = held * 100_000.0 / offers;
    println!(
        "{backend:<10} {offers:>7} offers  snapshot load {load_ms:>8.1} ms  holds about {held:.1} MiB ({per_100k:.1} MiB per 100,000 offers; the first load +{first_load:.1} MiB resident, in a process of its own)",
    );
    // Below 100,000 offers the allocator's own granularity (mimalloc reserves whole
    // segments) is a large part of the difference: the figure is the held memory itself.
    figure("1", backend, &format!("snapshot memory, {offers} offers"), held, "MiB", Goal::Shown);
    if offers >= 100_000.0 {
        figure("1", backend, &format!("snapshot memory per 100,000 offers, at {offers}"), per_100k, "MiB", Goal::Shown);
    }
    figure("1", backend, &format!("snapshot load, {offers} offers"), load_ms, "ms", Goal::Shown);
    println!(
        "{backend:<10} {offers:>7} offers  snapshot refresh from recorded changes: one offer and its prices {refresh_one:.1} ms, {REFRESHED} offers {refresh_many:.1} ms",
    );
    let what = format!("snapshot refresh after one offer's prices changed, {offers} offers");
    figure("1", backend, &what, refresh_one, "ms", Goal::Shown);
    let what = format!("snapshot refresh after {REFRESHED} offers' prices changed, {offers} offers");
    figure("1", backend, &what, refresh_many, "ms", Goal::Shown);
    offers as usize
}

/// Offers changed at once by the second refresh figure (a vendor's price list, say).
const REFRESHED: usize = 1_000;

/// The body of [`snapshot_in_a_process_of_its_own`]: loads the snapshot twice and prints the
/// offers, the first load's milliseconds, what the second adds to the resident set in MiB
/// (about what one snapshot holds: the second reuses what the allocator kept of the first
/// load's transient work) and what the first added; then the milliseconds of a refresh from
/// the recorded changes after one offer and after [`REFRESHED`] offers changed (offer row and
/// price points: the changes are recorded as a write records them, the rows stay as they are).
pub fn snapshot_memory(url: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let db = switchyard::db::connect(url, 1).await.unwrap();
        let before = resident_mib();
        let started = Instant::now();
        let snapshot = CatalogSnapshot::load(&db).await.unwrap();
        let load = started.elapsed();
        let first = resident_mib();
        let second = CatalogSnapshot::load(&db).await.unwrap();
        let held = resident_mib() - first;
        let mut refreshes = Vec::new();
        for changed in [1, REFRESHED] {
            let step = (second.offers.len() / changed).max(1);
            let offers: Vec<i64> = second.offers.keys().copied().step_by(step).take(changed).collect();
            let version = record_changes(&db, &offers).await;
            let started = Instant::now();
            let refreshed = refreshed(&second, &db, version - 1, version).await.unwrap();
            refreshes.push(started.elapsed().as_secs_f64() * 1000.0);
            let Some(Refreshed::Changed(refreshed)) = refreshed else { panic!("the changes were not applied") };
            assert_eq!(refreshed.offers.len(), second.offers.len());
        }
        let loaded = load.as_secs_f64() * 1000.0;
        println!("{} {loaded} {held} {} {} {}", snapshot.offers.len(), first - before, refreshes[0], refreshes[1]);
        drop((snapshot, second));
    });
}

/// Records, as one catalog write would, that `offers` and their price points changed; returns
/// the new catalog version.
async fn record_changes(db: &sea_orm::DatabaseConnection, offers: &[i64]) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let bump = "UPDATE catalog_version SET version = version + 1 WHERE id = 1 RETURNING version";
    let row = db.query_one_raw(Statement::from_string(backend, bump)).await.unwrap().unwrap();
    let version: i64 = row.try_get("", "version").unwrap();
    let mut rows = Vec::new();
    for &offer in offers {
        for change in [CatalogChange::Offer(offer), CatalogChange::PricePoints(offer)] {
            let (kind, id) = change.row();
            rows.push(format!("({version}, '{kind}', {id})"));
        }
    }
    let insert = format!("INSERT INTO catalog_changes (version, kind, row_id) VALUES {}", rows.join(", "));
    db.execute_unprepared(&insert).await.unwrap();
    version
}

/// This process's resident set (`VmRSS`), in MiB.
fn resident_mib() -> f64 {
    common::memory_kib("VmRSS:") as f64 / 1024.0
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
