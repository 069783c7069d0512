//! #9.7: SIGTERM stops a real `switchyard serve` process in order: WebSocket connections
//! close with 1001, workers stop claiming, the job whose vendor call is in flight finishes
//! (or, past the grace period, is released to the queue instead of staying RUNNING for a
//! whole lease), HTTP requests in flight are answered while new connections are refused, and
//! the process exits 0; `switchyard worker` likewise.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::live::WsClient;
use crate::processes::Process;
use crate::provisioning::{FakeVendor, SECRET, Script};

/// Vendor B answers its first call after `delay`; the data lives in an app without workers,
/// whose database the process under test serves.
async fn slow_vendor(delay: Duration) -> (TestApp, Fixture, FakeVendor) {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::SlowFirst(delay)).await;
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": vendor.url(), "secret": SECRET}}),
    )
    .await;
    (app, f, vendor)
}

/// Places two one-line orders of vendor B through the process; waits until the vendor has
/// the first one's call (the second waits for the one worker).
async fn two_orders_one_in_flight(process: &Process, f: &Fixture, token: &str, vendor: &FakeVendor) {
    let client = reqwest::Client::new();
    // The second order once the first's call is in flight: a worker claims a batch of the
    // jobs due, and the second must wait in the queue.
    for key in ["first", "second"] {
        let body = json!({
            "query": "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) { order { id } } }",
            "variables": {"key": key, "input": {"customerId": f.customer_b.to_string(), "lines": [{"offerId": f.offer_b.to_string(), "quantity": 1}]}}
        });
        let response = client.post(format!("{}/graphql", process.address)).bearer_auth(token).json(&body).send().await;
        let answer: serde_json::Value = response.unwrap().json().await.unwrap();
        assert!(answer.get("errors").is_none(), "{answer}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while vendor.received().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the vendor was never called");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn jobs(app: &TestApp) -> Vec<entity::job::Model> {
    entity::job::Entity::find()
        .filter(entity::job::Column::Kind.eq(entity::enums::JobKind::Provisioning))
        .order_by_asc(entity::job::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
}

fn settings(grace: &str) -> Vec<(&str, &str)> {
    vec![
        ("SWITCHYARD_WORKERS", "1"),
        ("SWITCHYARD_WORKER_POLL", "50ms"),
        ("SWITCHYARD_VENDOR_TIMEOUT", "15s"),
        ("SWITCHYARD_JOB_LEASE", "60s"),
        ("SWITCHYARD_SHUTDOWN_GRACE", grace),
    ]
}

#[tokio::test]
async fn sigterm_finishes_the_job_in_flight_claims_no_other_and_closes_websockets_with_1001() {
    let (app, f, vendor) = slow_vendor(Duration::from_secs(2)).await;
    let mut process = Process::start("serve", app.database_url(), &settings("20s")).await;
    let token = app.token(Role::Reseller, Some(f.reseller_b));
    let mut live = WsClient::init_at(&process.address, &token).await;
    live.subscribe("1", "subscription { provisioningStatus { status } }", json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    two_orders_one_in_flight(&process, &f, &token, &vendor).await;

    process.signal("TERM");
    let code = live.close_code().await;
    assert_eq!(code, 1001, "WebSockets close with 'going away'");
    let (status, took) = process.wait_exit(Duration::from_secs(20)).await.expect("the process did not exit");
    assert!(status.success(), "exit status {status}");
    let jobs = jobs(&app).await;
    let seen: Vec<_> = jobs.iter().map(|j| (j.status, j.attempts)).collect();
    use entity::enums::JobStatus as J;
    assert_eq!(seen, [(J::Succeeded, 1), (J::Queued, 0)], "the call in flight finished, nothing else was claimed");
    assert_eq!(vendor.received().len(), 1);
    println!("SIGTERM → exit in {took:?} with a 2 s vendor call in flight");
}

#[tokio::test]
async fn a_job_still_running_after_the_grace_period_is_released_to_the_queue() {
    let (app, f, vendor) = slow_vendor(Duration::from_secs(10)).await;
    let mut process = Process::start("serve", app.database_url(), &settings("1s")).await;
    let token = app.token(Role::Reseller, Some(f.reseller_b));
    two_orders_one_in_flight(&process, &f, &token, &vendor).await;

    process.signal("TERM");
    let (status, took) = process.wait_exit(Duration::from_secs(8)).await.expect("the process did not exit");
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(5), "the grace period is 1 s; it took {took:?}");
    let first = jobs(&app).await.remove(0);
    assert_eq!(first.status, entity::enums::JobStatus::Queued, "released, not RUNNING until its lease ends");
    // The interrupted attempt is given back: a job on its last attempt must not go DEAD for a shutdown.
    assert_eq!((first.attempts, first.locked_by.clone(), first.lease_token.clone()), (0, None, None));
    // Another process takes it over at once, under the same request id.
    let request_id = first.request_id.clone();
    let _next = Process::start("serve", app.database_url(), &settings("1s")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let first = jobs(&app).await.remove(0);
        if first.status == entity::enums::JobStatus::Succeeded {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not taken over: {first:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(vendor.calls().get(&request_id), Some(&2), "{:?}", vendor.calls());
}

/// HTTP drains: a request whose body is still arriving when SIGTERM comes is answered in
/// full, while new connections are no longer accepted.
#[tokio::test]
async fn sigterm_answers_the_http_request_in_flight_and_accepts_no_new_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut process = Process::start("serve", app.database_url(), &settings("10s")).await;
    let token = app.token(Role::Operator, None);
    let body = json!({"query": "{ me { role } }"}).to_string();
    let port = process.address.rsplit(':').next().unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    process.signal("TERM");
    // The listener closes soon after the signal; the request in flight goes on meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "new connections were still accepted 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""role":"OPERATOR""#), "{answer}");
    let (status, _) = process.wait_exit(Duration::from_secs(10)).await.expect("the process did not exit");
    assert!(status.success(), "exit status {status}");
}

/// `switchyard worker` stops the same way: the vendor call in flight finishes, nothing else
/// is claimed (a job queued while the call runs stays queued: the worker's batch was claimed
/// before it), exit 0.
#[tokio::test]
async fn sigterm_stops_a_worker_process_after_the_job_in_flight() {
    let (app, f, vendor) = slow_vendor(Duration::from_secs(2)).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    let place = |key: &'static str| {
        let input = crate::orders::order_input(f.customer_b, &[(f.offer_b, 1)]);
        crate::orders::place(&app, &reseller, input, key)
    };
    place("first").await;
    let mut worker = Process::start("worker", app.database_url(), &settings("20s")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while vendor.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the vendor was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    place("second").await;
    worker.signal("TERM");
    let (status, took) = worker.wait_exit(Duration::from_secs(20)).await.expect("the worker did not exit");
    assert!(status.success(), "exit status {status}");
    let seen: Vec<_> = jobs(&app).await.iter().map(|j| (j.status, j.attempts)).collect();
    use entity::enums::JobStatus as J;
    assert_eq!(seen, [(J::Succeeded, 1), (J::Queued, 0)], "the call in flight finished, nothing else was claimed");
    println!("SIGTERM → worker exit in {took:?} with a 2 s vendor call in flight");
}
