//! The reliability suite (#9): real `switchyard` processes killed with SIGKILL while they
//! take orders or run jobs, and PostgreSQL restarted under load, each checked against a
//! ledger of what was acknowledged. Every acknowledged order exists once, whole (its lines,
//! subscriptions and jobs); an order whose answer was lost is neither lost nor doubled when
//! the client retries its key; every job ends SUCCEEDED and the vendor provisions each
//! subscription once; while the database is away, requests are answered UNAVAILABLE (try
//! again), never INTERNAL. Bounded: a few seconds of load each.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{PLACE_ORDER, order_input};
use crate::processes::Process;
use crate::provisioning::{FakeVendor, SECRET, Script};

/// Settings of the processes: short leases, so a killed process's jobs are taken over soon.
const FAST: &[(&str, &str)] = &[
    ("SWITCHYARD_WORKERS", "1"),
    ("SWITCHYARD_WORKER_POLL", "100ms"),
    ("SWITCHYARD_VENDOR_TIMEOUT", "1s"),
    ("SWITCHYARD_JOB_LEASE", "2s"),
    ("SWITCHYARD_JOB_BACKOFF", "100ms"),
    ("SWITCHYARD_JOB_BACKOFF_MAX", "1s"),
    ("SWITCHYARD_JOB_MAX_ATTEMPTS", "30"),
];

/// What clients were told: per idempotency key, the input sent and the order id
/// acknowledged (`None`: no answer, or an error — it may or may not have been committed).
#[derive(Default)]
struct Ledger {
    sent: BTreeMap<String, (Value, Option<String>)>,
    answers: HashMap<String, usize>,
    /// Requests in flight while the fault lasted: sent before it ended, answered (or
    /// failed) after it began.
    met_the_fault: usize,
}

impl Ledger {
    fn acknowledged(&self) -> usize {
        self.sent.values().filter(|(_, id)| id.is_some()).count()
    }
}

/// The input of a client's `n`th order: one or two lines of customer A's offers.
fn input_for(f: &Fixture, n: usize) -> Value {
    let offers = &f.offers_a;
    let mut lines = vec![(offers[n % offers.len()], 1 + (n % 5) as i32)];
    if n % 2 == 1 {
        lines.push((offers[(n + 1) % offers.len()], 2));
    }
    order_input(f.customer_a, &lines)
}

/// Sends one order; the order id (and whether it was a replay) when acknowledged, else how
/// it failed.
async fn send(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    input: &Value,
    key: &str,
) -> Result<(String, bool), String> {
    let response = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": PLACE_ORDER, "variables": {"input": input, "key": key}}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|_| "no answer".to_owned())?;
    let body: Value = response.json().await.map_err(|_| "no answer".to_owned())?;
    match body["data"]["placeOrder"]["order"]["id"].as_str() {
        Some(id) => Ok((id.to_owned(), body["data"]["placeOrder"]["replayed"] == true)),
        None => {
            let code = body["errors"][0]["extensions"]["code"].as_str();
            Err(code.map_or_else(|| format!("uncoded: {body}"), |c| format!("error {c}")))
        }
    }
}

/// Before a fault, during it, after it (`order_load`'s `phase`).
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// Clients ordering against whatever address is current until `stop`; `phase` tells
/// whether a fault is yet to come, lasting or over.
async fn order_load(
    f: &Fixture,
    token: &str,
    address: &Arc<RwLock<String>>,
    clients: usize,
    stop: &Arc<AtomicBool>,
    phase: &Arc<AtomicU8>,
) -> Ledger {
    let runs = (0..clients).map(|c| {
        let (address, stop, phase) = (Arc::clone(address), Arc::clone(stop), Arc::clone(phase));
        async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            let mut ledger = Ledger::default();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("client{c}-{n}");
                let input = input_for(f, n);
                let current = address.read().unwrap().clone();
                let sent_in = phase.load(Ordering::SeqCst);
                let answer = send(&http, &current, token, &input, &key).await;
                if sent_in <= DURING && phase.load(Ordering::SeqCst) >= DURING {
                    ledger.met_the_fault += 1;
                }
                let outcome = answer.as_ref().map_or_else(Clone::clone, |_| "acknowledged".to_owned());
                *ledger.answers.entry(outcome).or_default() += 1;
                if answer.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ledger.sent.insert(key, (input, answer.ok().map(|(id, _)| id)));
                n += 1;
            }
            ledger
        }
    });
    let mut all = Ledger::default();
    for ledger in futures_util::future::join_all(runs).await {
        all.sent.extend(ledger.sent);
        all.met_the_fault += ledger.met_the_fault;
        for (outcome, count) in ledger.answers {
            *all.answers.entry(outcome).or_default() += count;
        }
    }
    all
}

/// Retries every key that got no acknowledgement until it gets one (the same input: a
/// replay of the order if it was committed, a new order if not); how many were retried, and
/// how many of those had been committed (their answer was lost).
async fn settle_unknown(ledger: &mut Ledger, address: &str, token: &str) -> (usize, usize) {
    let http = reqwest::Client::new();
    let (mut settled, mut replayed) = (0, 0);
    for (key, (input, id)) in ledger.sent.iter_mut().filter(|(_, (_, id))| id.is_none()) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match send(&http, address, token, input, key).await {
                Ok((order, replay)) => {
                    *id = Some(order);
                    settled += 1;
                    replayed += usize::from(replay);
                    break;
                }
                Err(error) => {
                    assert!(Instant::now() < deadline, "{key} never got an answer: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    (settled, replayed)
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap()
}

/// The database holds exactly the ledger's orders, each once and whole.
async fn assert_ledger_matches(db: &DatabaseConnection, ledger: &Ledger) {
    let stored: BTreeMap<String, (String, i64, i64, i64)> = rows(
        db,
        "SELECT o.idempotency_key AS k, o.id AS id,
                (SELECT COUNT(*) FROM order_lines l WHERE l.order_id = o.id) AS lines,
                (SELECT COUNT(*) FROM subscriptions s WHERE s.order_id = o.id) AS subscriptions,
                (SELECT COUNT(*) FROM jobs j WHERE j.order_id = o.id) AS jobs
         FROM orders o",
    )
    .await
    .iter()
    .map(|r| {
        let get = |c: &str| r.try_get::<i64>("", c).unwrap();
        (
            r.try_get::<String>("", "k").unwrap(),
            (get("id").to_string(), get("lines"), get("subscriptions"), get("jobs")),
        )
    })
    .collect();
    assert_eq!(stored.len(), ledger.sent.len(), "one order per key sent, no more, no fewer");
    for (key, (input, id)) in &ledger.sent {
        let (stored_id, lines, subscriptions, jobs) = stored.get(key).unwrap_or_else(|| panic!("{key} was lost"));
        assert_eq!(Some(stored_id), id.as_ref(), "{key}: acknowledged as another order");
        let expected = input["lines"].as_array().unwrap().len() as i64;
        assert_eq!((*lines, *subscriptions, *jobs), (expected, expected, expected), "{key} is partial");
    }
}

/// Waits until every job SUCCEEDED (or `limit` passes); how many are not.
async fn unfinished_jobs(db: &DatabaseConnection, limit: Duration) -> i64 {
    let deadline = Instant::now() + limit;
    loop {
        let left = rows(db, "SELECT COUNT(*) AS n FROM jobs WHERE status <> 'SUCCEEDED'").await[0]
            .try_get::<i64>("", "n")
            .unwrap();
        if left == 0 || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn serving_processes_killed_mid_order_lose_no_acknowledged_order() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let token = app.token(Role::Reseller, Some(f.reseller_a));
    let mut process = Process::start("serve", app.database_url(), FAST).await;
    let address = Arc::new(RwLock::new(process.address.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let load = order_load(&f, &token, &address, 6, &stop, &phase);
    let kills = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(800)).await;
            process.signal("KILL");
            process.wait_exit(Duration::from_secs(5)).await.expect("killed");
            process = Process::start("serve", app.database_url(), FAST).await;
            *address.write().unwrap() = process.address.clone();
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        stop.store(true, Ordering::SeqCst);
    };
    let (mut ledger, ()) = tokio::join!(load, kills);
    let acknowledged = ledger.acknowledged();
    let (settled, replayed) = settle_unknown(&mut ledger, &process.address, &token).await;
    eprintln!(
        "3 × kill -9 during {} orders: {acknowledged} acknowledged, {settled} retried to an answer ({replayed} of them \
         committed before the kill: replayed, not doubled); answers {:?}",
        ledger.sent.len(),
        ledger.answers
    );
    assert!(acknowledged >= 20, "too little load to mean anything: {:?}", ledger.answers);
    assert!(settled > 0, "no kill was noticed by a client: {:?}", ledger.answers);
    assert!(ledger.answers.keys().all(|a| !a.starts_with("uncoded")), "{:?}", ledger.answers);
    assert_ledger_matches(&app.domain.db, &ledger).await;
    // And every order provisions: the killed processes' jobs are taken over.
    assert_eq!(unfinished_jobs(&app.domain.db, Duration::from_secs(60)).await, 0, "jobs left unfinished");
    let inactive = rows(&app.domain.db, "SELECT COUNT(*) AS n FROM subscriptions WHERE status <> 'ACTIVE'").await;
    assert_eq!(inactive[0].try_get::<i64>("", "n").unwrap(), 0);
}

#[tokio::test]
async fn worker_processes_killed_mid_job_provision_every_subscription_once() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Each request id's first call takes 400 ms: kills land in the middle of vendor calls.
    let vendor = FakeVendor::start(Script::SlowFirst(Duration::from_millis(400))).await;
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": vendor.url(), "secret": SECRET}}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    const ORDERS: usize = 30;
    for n in 0..ORDERS {
        crate::orders::place(&app, &reseller, order_input(f.customer_b, &[(f.offer_b, 1)]), &format!("w{n}")).await;
    }
    let mut workers = [
        Process::start("worker", app.database_url(), FAST).await,
        Process::start("worker", app.database_url(), FAST).await,
    ];
    for kill in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = &mut workers[kill % 2];
        victim.signal("KILL");
        victim.wait_exit(Duration::from_secs(5)).await.expect("killed");
        workers[kill % 2] = Process::start("worker", app.database_url(), FAST).await;
    }
    let left = unfinished_jobs(&app.domain.db, Duration::from_secs(90)).await;
    assert_eq!(left, 0, "jobs left unfinished");
    let calls = vendor.calls();
    let repeated = calls.values().filter(|&&n| n > 1).count();
    eprintln!(
        "4 × kill -9 of worker processes over {ORDERS} jobs: {} vendor calls, {repeated} request ids called again",
        calls.values().sum::<usize>()
    );
    // One request id per job, and the vendor provisioned each once, with the reference the
    // subscription holds.
    let references = vendor.references();
    assert_eq!(references.len(), ORDERS, "one provisioning per subscription");
    let held = rows(
        &app.domain.db,
        "SELECT j.request_id AS r, s.vendor_reference AS v FROM jobs j JOIN subscriptions s ON s.id = j.subscription_id",
    )
    .await;
    assert_eq!(held.len(), ORDERS);
    for row in held {
        let request: String = row.try_get("", "r").unwrap();
        let reference: Option<String> = row.try_get("", "v").unwrap();
        assert_eq!(references.get(&request), reference.as_ref(), "{request}");
    }
}

#[tokio::test]
async fn a_postgresql_restart_mid_load_loses_nothing_acknowledged() {
    // A throwaway cluster, whichever backend the suite runs on: it is stopped (as in a
    // crash: immediate mode) and started again while a real process takes orders.
    let cluster = crate::pg_cluster::Cluster::start();
    let admin = switchyard::db::connect(&cluster.url("postgres"), 1).await.unwrap();
    admin.execute_unprepared("CREATE DATABASE restarted").await.unwrap();
    let url = cluster.url("restarted");
    let app: TestApp = crate::helpers::spawn_on(&url, |_| {}).await;
    let f = Fixture::build(&app).await;
    let token = app.token(Role::Reseller, Some(f.reseller_a));
    let mut process = Process::start("serve", &url, FAST).await;
    let address = Arc::new(RwLock::new(process.address.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let load = order_load(&f, &token, &address, 6, &stop, &phase);
    let restart = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.stop();
        phase.store(DURING, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.resume();
        phase.store(AFTER, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, Ordering::SeqCst);
    };
    let (mut ledger, ()) = tokio::join!(load, restart);
    assert!(process.wait_exit(Duration::ZERO).await.is_none(), "the process died with its database");
    let acknowledged = ledger.acknowledged();
    let (settled, replayed) = settle_unknown(&mut ledger, &process.address, &token).await;
    eprintln!(
        "PostgreSQL restarted during {} orders: {} in flight while it was down, {acknowledged} acknowledged, {settled} \
         retried to an answer ({replayed} replayed); answers {:?}",
        ledger.sent.len(),
        ledger.met_the_fault,
        ledger.answers
    );
    // Requests met the outage: they waited for the database to return, or were told to try again.
    assert!(ledger.met_the_fault > 0, "no request met the outage");
    // What the outage answered is UNAVAILABLE (try again), never INTERNAL; and every
    // request was answered (within the clients' 10 s), the process never hung.
    let outage = ["acknowledged", "error UNAVAILABLE"];
    assert!(ledger.answers.keys().all(|a| outage.contains(&a.as_str())), "{:?}", ledger.answers);
    let db = switchyard::db::connect(&url, 2).await.unwrap();
    assert_ledger_matches(&db, &ledger).await;
    assert_eq!(unfinished_jobs(&db, Duration::from_secs(60)).await, 0, "jobs left unfinished");
    let ready = reqwest::get(format!("{}/readyz", process.address)).await.unwrap();
    assert!(ready.status().is_success(), "/readyz after the restart: {}", ready.status());
}
