//! The live part (#13 item 7): `BENCH_LIVE_CONNECTIONS` WebSocket dashboards (default 10,000)
//! follow `liveEvents` as the operator while resellers place orders and the workers
//! provision them; every event goes to every dashboard. Printed: events and messages, the
//! messages lost (each dashboard must receive every event any dashboard received), the
//! latency from an event's write (`occurredAt`) to its arrival (p50/p99/max), the server's
//! CPU per message delivered, and its resident memory per connection.
//!
//! The server runs in a process of its own (`common::ServerProcess`), pinned to core 0
//! (`taskset`, when the machine has it); the dashboards run in this process, pinned to core
//! 1: the server's memory and CPU are its own. `BENCH_LIVE_ORDERS` (default 12) orders are
//! placed `BENCH_LIVE_ORDER_GAP_MS` (default 500) apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{self, Goal, ServerProcess, figure, pin, usage};

/// The operations dashboard's own subscription (`assets/dashboard.js`), resumed after a cursor.
const QUERY: &str = "subscription($after: String) { liveEvents(after: $after) { eventId cursor kind status orderId subscriptionId jobId customerId quantity detail occurredAt } }";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("error")).init();
    // The dashboards on core 1 (threads made from here on inherit it); the server on core 0.
    pin(std::process::id(), "1");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("live", |backend, url| async move { run(backend, &url).await }));
}

use sea_orm::ConnectionTrait as _;

/// Posts `body` to the server at `address` as `token`; the JSON answer.
fn post(http: &reqwest::Client, address: &str, token: &str, body: Value) -> impl Future<Output = Value> + use<> {
    let request = http.post(format!("http://{address}/graphql")).bearer_auth(token).json(&body);
    async move { request.send().await.unwrap().json().await.unwrap() }
}

/// What one dashboard received: (cursor, microseconds from the event's write to arrival,
/// for a sampled dashboard reading as events came).
type Received = Vec<(i64, Option<i64>)>;

/// One dashboard in this many reads its events as they come, and its latencies are measured;
/// the others read their first event, then what waited in their socket once the run is over.
/// The server writes to every connection all the same, and this process is not the bottleneck.
const SAMPLE_EVERY: usize = 50;

struct Dashboards {
    received: AtomicUsize,
    /// The dashboards that received an event.
    streaming: AtomicUsize,
    /// Once every dashboard is connected, how many may subscribe: they do in waves of 500,
    /// as clients reconnecting with a backoff do, and the server's memory then is what it
    /// holds, not the peak of 10,000 subscriptions being checked at once.
    subscribe: tokio::sync::watch::Sender<usize>,
    /// The cursor they subscribe after (read before: no event is missed however late the
    /// server registers a stream).
    after: tokio::sync::watch::Sender<i64>,
    /// The newest cursor any dashboard received.
    last_cursor: AtomicI64,
    /// The run's last cursor, once it is over.
    stop: tokio::sync::watch::Sender<Option<i64>>,
}

async fn dashboard(
    address: String,
    token: String,
    shared: Arc<Dashboards>,
    ready: tokio::sync::mpsc::Sender<()>,
    permit: tokio::sync::OwnedSemaphorePermit,
    index: usize,
) -> Received {
    let sampled = index.is_multiple_of(SAMPLE_EVERY);
    let mut request = format!("ws://{address}/graphql").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    socket.send(Message::Text(init.to_string().into())).await.unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    drop(permit);
    let _ = ready.send(()).await;
    // Subscribed once every dashboard is connected: the connections' memory apart.
    let mut go = shared.subscribe.subscribe();
    go.wait_for(|allowed| *allowed > index).await.unwrap();
    let after = shared.after.borrow().to_string();
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": {"after": after}}});
    socket.send(Message::Text(subscribe.to_string().into())).await.unwrap();
    let mut received = Vec::new();
    let mut stop = shared.stop.subscribe();
    // The run's last cursor, once it is over.
    let mut last: Option<i64> = None;
    loop {
        if last.is_none() && !sampled && !received.is_empty() {
            // The rest waits in the socket (a few KiB) until the run is over.
            last = *stop.wait_for(Option::is_some).await.unwrap();
        }
        if let Some(last) = last
            && received.last().is_some_and(|(cursor, _)| *cursor >= last)
        {
            break;
        }
        let message = if last.is_some() {
            match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                Ok(message) => message,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                message = socket.next() => message,
                over = stop.wait_for(Option::is_some) => {
                    last = *over.unwrap();
                    continue;
                }
            }
        };
        let Some(Ok(Message::Text(text))) = message else {
            if matches!(message, Some(Ok(Message::Ping(_) | Message::Pong(_)))) {
                continue;
            }
            panic!("a dashboard's connection ended: {message:?}");
        };
        let arrived = chrono::Utc::now();
        // Read without parsing the whole message.
        let field = |name: &str| {
            let start =
                text.find(&format!("\"{name}\":\"")).unwrap_or_else(|| panic!("{name} in {text}")) + name.len() + 4;
            let end = start + text[start..].find('"').unwrap();
            text[start..end].to_owned()
        };
        assert!(text.starts_with("{\"type\":\"next\""), "{text}");
        let written: chrono::DateTime<chrono::Utc> = field("occurredAt").parse().unwrap();
        let cursor: i64 = field("cursor").parse().unwrap();
        if received.is_empty() {
            shared.streaming.fetch_add(1, Ordering::Relaxed);
        }
        shared.last_cursor.fetch_max(cursor, Ordering::Relaxed);
        // Only what a sampled dashboard read as it came is a latency.
        let latency = (sampled && last.is_none()).then(|| (arrived - written).num_microseconds().unwrap_or(i64::MAX));
        received.push((cursor, latency));
        shared.received.fetch_add(1, Ordering::Relaxed);
    }
    let _ = socket.close(None).await;
    received
}

async fn run(backend: &str, database_url: &str) {
    let connections = setting("BENCH_LIVE_CONNECTIONS", 10_000);
    let orders = setting("BENCH_LIVE_ORDERS", 12);
    let gap = Duration::from_millis(setting("BENCH_LIVE_ORDER_GAP_MS", 500) as u64);
    let wrapper = std::env::var(common::SERVER_WRAP).unwrap_or_default();
    let server = ServerProcess::start(database_url, 2, &wrapper);
    if !wrapper.is_empty() {
        println!("(the server runs under {wrapper}: its CPU and memory below are the wrapper's)");
    }
    let (pid, address, operator, reseller) =
        (server.pid, server.address.clone(), server.operator.clone(), server.reseller.clone());
    let http = reqwest::Client::new();
    let place = |key: String| {
        let body = json!({
            "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
            "variables": {"key": key, "input": {"customerId": "1", "lines": [{"offerId": "2", "quantity": 1}]}}
        });
        let posted = post(&http, &address, &reseller, body);
        async move {
            let response = posted.await;
            assert!(response["data"]["placeOrder"]["order"]["id"].is_string(), "{response}");
        }
    };
    let live_cursor = || {
        let posted = post(&http, &address, &operator, json!({"query": "{ liveCursor }"}));
        async move { posted.await["data"]["liveCursor"].as_str().unwrap().parse::<i64>().unwrap() }
    };
    // Warm the server (the catalog snapshot, the pools) before it is measured.
    place("warm-up".into()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_kib, _) = usage(pid);

    let shared = Arc::new(Dashboards {
        received: AtomicUsize::new(0),
        streaming: AtomicUsize::new(0),
        subscribe: tokio::sync::watch::channel(0).0,
        after: tokio::sync::watch::channel(0).0,
        last_cursor: AtomicI64::new(0),
        stop: tokio::sync::watch::channel(None).0,
    });
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(connections.max(1));
    let connecting = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    for index in 0..connections {
        let (address, token, shared, ready) =
            (address.clone(), operator.clone(), Arc::clone(&shared), ready_tx.clone());
        // At most 200 handshakes at a time; a dashboard lets the next one in once subscribed.
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(dashboard(address, token, shared, ready, permit, index)));
    }
    for _ in 0..connections {
        ready_rx.recv().await.unwrap();
    }
    let connected_in = connecting.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (connected_kib, _) = usage(pid);
    shared.after.send_replace(live_cursor().await);
    for wave in (0..connections).step_by(500) {
        shared.subscribe.send_replace(wave + 500);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The streams are registered once a first event reaches every dashboard.
    place("first".into()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared.streaming.load(Ordering::Relaxed) < connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shared.streaming.load(Ordering::Relaxed), connections, "every dashboard hears the first order in 60 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (subscribed_kib, cpu_before) = usage(pid);
    let (_, client_cpu_before) = usage(std::process::id());
    let received_before = shared.received.load(Ordering::Relaxed);
    let first_cursor_measured = live_cursor().await;
    let started = Instant::now();
    for index in 0..orders {
        place(format!("order-{index}")).await;
        tokio::time::sleep(gap).await;
    }
    // Quiet: nothing more arrives for 3 s.
    let mut last = shared.received.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = shared.received.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let (after_kib, cpu_after) = usage(pid);
    let (_, client_cpu) = usage(std::process::id());
    shared.stop.send_replace(Some(shared.last_cursor.load(Ordering::Relaxed)));
    let mut all: Vec<Received> = Vec::with_capacity(connections);
    for task in tasks {
        all.push(task.await.unwrap());
    }
    // What the server rendered, and every event committed since the measure began: what
    // each dashboard should have received (the operator sees everything).
    let metrics = http.get(format!("http://{address}/metrics")).send().await.unwrap().text().await.unwrap();
    let rendered = metrics
        .lines()
        .find_map(|line| line.strip_prefix("websocket_payloads_rendered_total "))
        .map_or_else(|| "none".to_owned(), |value| value.trim().to_owned());
    let database = switchyard::db::connect(database_url, 1).await.unwrap();
    let rows = database
        .query_all_raw(sea_orm::Statement::from_string(
            database.get_database_backend(),
            format!("SELECT id FROM domain_events WHERE id > {first_cursor_measured} ORDER BY id"),
        ))
        .await
        .unwrap();
    let events: Vec<i64> = rows.iter().map(|row| row.try_get::<i64>("", "id").unwrap()).collect();
    drop(database);
    server.stop();

    let mut latencies: Vec<i64> = Vec::new();
    let mut lost = 0usize;
    let mut duplicated = 0usize;
    let mut messages = 0usize;
    for received in &all {
        let mut mine: Vec<i64> = received.iter().map(|(c, _)| *c).filter(|c| *c > first_cursor_measured).collect();
        let count = mine.len();
        mine.sort_unstable();
        mine.dedup();
        messages += count;
        duplicated += count - mine.len();
        lost += events.iter().filter(|event| mine.binary_search(event).is_err()).count();
        latencies.extend(received.iter().filter(|(c, _)| *c > first_cursor_measured).filter_map(|(_, l)| *l));
    }
    latencies.sort_unstable();
    let at = |q: f64| common::quantile(&latencies, q);
    let cpu = cpu_after.saturating_sub(cpu_before);
    println!(
        "{backend}: {connections} dashboards connected in {:.1} s; {} events in {:.1} s, {messages} messages ({} before the measured events), {lost} lost, {duplicated} repeated; payloads rendered since the server started: {rendered}",
        connected_in.as_secs_f64(),
        events.len(),
        started.elapsed().as_secs_f64(),
        received_before,
    );
    println!(
        "{backend}:   from write to dashboard ({} sampled messages, one dashboard in {SAMPLE_EVERY}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.50) as f64 / 1e3,
        at(0.99) as f64 / 1e3,
        at(1.0) as f64 / 1e3
    );
    println!(
        "{backend}:   server process CPU {:.2} s while the measured events came (placing and provisioning the orders too, and on SQLite the database): {:.1} µs per message delivered (the dashboards' process: {:.2} s)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / messages.max(1) as f64,
        client_cpu.saturating_sub(client_cpu_before).as_secs_f64()
    );
    // Signed: a resident set below the idle one is a figure to see, not a zero.
    let per = |kib: u64| (kib as f64 - idle_kib as f64) / connections.max(1) as f64;
    println!(
        "{backend}:   server memory: idle {:.1} MiB; connected {:.1} MiB ({:.1} KiB per connection); subscribed {:.1} MiB ({:.1} KiB per connection); after the events {:.1} MiB ({:.1} KiB per connection)",
        idle_kib as f64 / 1024.0,
        connected_kib as f64 / 1024.0,
        per(connected_kib),
        subscribed_kib as f64 / 1024.0,
        per(subscribed_kib),
        after_kib as f64 / 1024.0,
        per(after_kib)
    );
    figure(
        "7",
        backend,
        "live: events lost of those committed, over every dashboard",
        lost as f64,
        "events",
        Goal::AtMost(0.0),
    );
    figure(
        "7",
        backend,
        "live: p99 from an event's write to a dashboard",
        at(0.99) as f64 / 1e3,
        "ms",
        Goal::Below(100.0),
    );
    figure(
        "7",
        backend,
        "live: server memory per connection, connected",
        per(connected_kib),
        "KiB",
        Goal::AtMost(16.0),
    );
    figure(
        "7",
        backend,
        "live: server memory per connection, subscribed, after the events",
        per(after_kib),
        "KiB",
        Goal::AtMost(16.0),
    );
}
