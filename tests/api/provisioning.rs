//! The provisioning engine against a real vendor HTTP server started in the test, which
//! counts calls per request id and deduplicates on it like a real vendor: transient
//! failures retry with the same request id, permanent ones fail the job with the vendor's
//! message, timeouts and 429 retry, a dead worker's lease expires, and the vendor sees one
//! effective provisioning per action.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use switchyard::domain::Role;
use switchyard::domain::fulfilment::complete_job;
use switchyard::domain::jobs::{Outcome, ProvisioningSubject, claim_next_job};
use switchyard::vendors::connectors::{VendorRequest, connector_for, execute, signature};

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};

pub const SECRET: &str = "vendor-shared-secret";

/// How the fake vendor answers a request id's first calls.
#[derive(Clone)]
pub enum Script {
    /// `n` failures with this status (and Retry-After, if any), then success.
    FailFirst(usize, u16, Option<u64>),
    /// Always this status and message.
    Always(u16, &'static str),
    /// The first call takes this long (past the client's timeout), then success.
    SlowFirst(Duration),
}

#[derive(Default)]
struct VendorState {
    calls: HashMap<String, usize>,
    /// Per subscription: answer every call with this status instead of the script's.
    answers: HashMap<i64, u16>,
    /// Per subscription: answer every call this much later.
    delays: HashMap<i64, Duration>,
    provisioned: HashMap<String, String>,
    bad_signatures: usize,
    /// Every call's action and body, in the order they arrived.
    received: Vec<(String, Value)>,
}

pub struct FakeVendor {
    url: String,
    state: Arc<Mutex<VendorState>>,
    script: Arc<Mutex<Script>>,
    _server: actix_web::dev::ServerHandle,
}

impl FakeVendor {
    pub async fn start(script: Script) -> Self {
        let state = Arc::new(Mutex::new(VendorState::default()));
        let script = Arc::new(Mutex::new(script));
        let (s, sc) = (state.clone(), script.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new((s.clone(), sc.clone())))
                .route("/{action}", web::post().to(vendor_endpoint))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, state, script, _server: handle }
    }

    pub fn calls(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Every call's action (`purchase`, `quantity`…) and body, in the order they arrived.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().received.clone()
    }

    fn provisioned(&self) -> usize {
        self.state.lock().unwrap().provisioned.len()
    }

    /// The vendor's reference for each request id it provisioned.
    pub fn references(&self) -> HashMap<String, String> {
        self.state.lock().unwrap().provisioned.clone()
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    /// Answers every call about `subscription` with `status` (None: follow the script again).
    pub fn answer(&self, subscription: i64, status: Option<u16>) {
        let mut state = self.state.lock().unwrap();
        match status {
            Some(status) => state.answers.insert(subscription, status),
            None => state.answers.remove(&subscription),
        };
    }

    /// Answers every call about `subscription` `delay` later.
    pub fn delay(&self, subscription: i64, delay: Duration) {
        self.state.lock().unwrap().delays.insert(subscription, delay);
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

type Shared = (Arc<Mutex<VendorState>>, Arc<Mutex<Script>>);

async fn vendor_endpoint(data: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (state, script) = data.get_ref();
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signed =
        request.headers().get("x-switchyard-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let call = {
        let mut state = state.lock().unwrap();
        if signed != signature(SECRET, &body) {
            state.bad_signatures += 1;
        }
        let action = request.match_info().get("action").unwrap_or_default().to_owned();
        state.received.push((action, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        let count = state.calls.entry(request_id.clone()).or_default();
        *count += 1;
        let call = *count;
        let subscription = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b["subscriptionId"].as_i64());
        if let Some(status) = subscription.and_then(|id| state.answers.get(&id).copied()) {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .json(json!({"error": "refused for this subscription"}));
        }
        (call, subscription.and_then(|id| state.delays.get(&id).copied()))
    };
    let (call, delay) = call;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let script = script.lock().unwrap().clone();
    let succeed = |state: &Arc<Mutex<VendorState>>| {
        // Deduplicate like a vendor: a repeated request id gets the first answer again.
        let mut state = state.lock().unwrap();
        let reference = state
            .provisioned
            .entry(request_id.clone())
            .or_insert_with(|| format!("V-{}", request_id.len() + call))
            .clone();
        HttpResponse::Ok().json(json!({"reference": reference}))
    };
    match script {
        Script::FailFirst(n, status, retry_after) if call <= n => {
            let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(seconds) = retry_after {
                response.insert_header(("retry-after", seconds.to_string()));
            }
            response.body("vendor busy")
        }
        Script::Always(status, message) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({"error": message}))
        }
        Script::SlowFirst(delay) if call == 1 => {
            tokio::time::sleep(delay).await;
            succeed(state)
        }
        _ => succeed(state),
    }
}

/// Points vendor B at the fake vendor and orders one line of its offer.
pub async fn order_from_http_vendor(app: &TestApp, f: &Fixture, vendor: &FakeVendor) -> (String, String) {
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": vendor.url, "secret": SECRET}}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    let placed = place(app, &reseller, order_input(f.customer_b, &[(f.offer_b, 2)]), "http-order").await;
    let order = placed["order"]["id"].as_str().unwrap().to_owned();
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    (order, subscription)
}

pub async fn job(app: &TestApp, subscription: &str) -> Value {
    let data = app
        .data(
            &app.operator(),
            "query($s: ID!) { provisioningJobs(subscriptionId: $s) { edges { node { id status attempts lastError requestId } } }
              subscription(id: $s) { status vendorReference } }",
            json!({"s": subscription}),
        )
        .await;
    json!({"job": data["provisioningJobs"]["edges"][0]["node"], "subscription": data["subscription"]})
}

#[tokio::test]
async fn server_errors_retry_with_the_same_request_id() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(2, 503, None)).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    assert_eq!(app.run_jobs().await, 3);
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED");
    assert_eq!(state["job"]["attempts"], 3);
    assert_eq!(state["subscription"]["status"], "ACTIVE");
    let calls = vendor.calls();
    assert_eq!(calls.len(), 1, "one request id for every retry: {calls:?}");
    assert_eq!(calls.get(state["job"]["requestId"].as_str().unwrap()), Some(&3));
    assert_eq!(vendor.provisioned(), 1);
    assert_eq!(vendor.state.lock().unwrap().bad_signatures, 0, "every call is signed with the shared secret");
    assert_eq!(
        state["subscription"]["vendorReference"],
        vendor.state.lock().unwrap().provisioned.values().next().unwrap().as_str()
    );
}

#[tokio::test]
async fn a_client_error_fails_the_job_with_the_vendors_message_and_an_operator_can_retry() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::Always(400, "unknown SKU B-P1Y-M")).await;
    let (order, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    assert_eq!(app.run_jobs().await, 1, "a permanent failure is not retried");
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "FAILED");
    assert!(state["job"]["lastError"].as_str().unwrap().contains("unknown SKU B-P1Y-M"), "{state}");
    assert_eq!(state["subscription"]["status"], "FAILED");
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    let data = app.data(&reseller, "query($id: ID!) { order(id: $id) { status } }", json!({"id": order})).await;
    assert_eq!(data["order"]["status"], "FAILED");

    // Only the operator may retry; after the vendor is fixed the same request id succeeds.
    let retry = "mutation($id: ID!) { retryProvisioning(jobId: $id) { status attempts requestId } }";
    let job_id = state["job"]["id"].clone();
    assert_eq!(app.error_code(Some(&reseller), retry, json!({"id": job_id})).await, "FORBIDDEN");
    vendor.set_script(Script::FailFirst(0, 200, None));
    let retried = app.data(&app.operator(), retry, json!({"id": job_id})).await;
    assert_eq!(retried["retryProvisioning"]["status"], "QUEUED");
    assert_eq!(retried["retryProvisioning"]["requestId"], state["job"]["requestId"]);
    app.run_jobs().await;
    assert_eq!(job(&app, &subscription).await["subscription"]["status"], "ACTIVE");
    let data = app.data(&reseller, "query($id: ID!) { order(id: $id) { status } }", json!({"id": order})).await;
    assert_eq!(data["order"]["status"], "COMPLETED");
    assert_eq!(vendor.calls().values().sum::<usize>(), 2);
    assert_eq!(vendor.provisioned(), 1);
}

#[tokio::test]
async fn a_timeout_retries_and_the_vendor_provisions_once() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::SlowFirst(Duration::from_millis(1000))).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    app.run_jobs().await;
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
    assert_eq!(state["job"]["attempts"], 2);
    // Give the slow first call time to finish on the vendor's side: it answers the same.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(vendor.calls().values().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(vendor.provisioned(), 1);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(1, 429, Some(30))).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    assert_eq!(app.run_jobs().await, 1);
    assert_eq!(job(&app, &subscription).await["job"]["status"], "QUEUED");
    app.advance(chrono::Duration::seconds(29));
    assert_eq!(app.run_jobs().await, 0, "not before Retry-After");
    app.advance(chrono::Duration::seconds(2));
    assert_eq!(app.run_jobs().await, 1);
    assert_eq!(job(&app, &subscription).await["job"]["status"], "SUCCEEDED");
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_dead_and_visible_to_operators() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::Always(502, "bad gateway")).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    assert_eq!(app.run_jobs().await, 4, "max attempts in tests");
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "DEAD");
    assert_eq!(state["subscription"]["status"], "FAILED");
    let dead = app.data(&app.operator(), "{ provisioningJobs(status: DEAD) { totalCount } }", json!({})).await;
    assert_eq!(dead["provisioningJobs"]["totalCount"], 1);
}

#[tokio::test]
async fn a_dead_workers_job_is_taken_over_when_its_lease_expires() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    // A worker claims the job, calls the vendor, and dies before recording the outcome.
    let claimed = claim_next_job(&app.domain, "doomed-worker").await.unwrap().unwrap();
    let snapshot = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let connector = connector_for(&snapshot.vendors[&f.vendor_b], &reqwest::Client::new(), Duration::from_secs(2));
    let subject = ProvisioningSubject::of(&claimed.job).unwrap();
    let outcome = execute(connector.as_ref(), &VendorRequest::for_job(&claimed.job, &subject)).await;
    assert!(matches!(outcome, Outcome::Succeeded { .. }));
    // While the lease holds, nobody else takes the job.
    assert_eq!(app.run_jobs().await, 0);
    app.advance(chrono::Duration::seconds(61));
    assert_eq!(app.run_jobs().await, 1, "the expired lease is claimed again");
    // The dead worker comes back: its lease is gone, its outcome is ignored.
    assert!(!complete_job(&app.domain, &claimed, Outcome::Permanent { error: "late".into() }).await.unwrap());
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED");
    assert_eq!(state["job"]["attempts"], 2);
    assert_eq!(vendor.calls().values().copied().collect::<Vec<_>>(), [2], "same request id both times");
    assert_eq!(vendor.provisioned(), 1, "one effective provisioning");
}

/// A provisioning row that names nothing to provision (written by hand, say) is FAILED with
/// its reason at the first claim, instead of being claimed again after every lease.
#[tokio::test]
async fn a_job_without_a_subject_fails_instead_of_looping() {
    use sea_orm::{ActiveModelTrait, EntityTrait};
    use switchyard::domain::clock::Clock;

    let app = spawn_app().await;
    let now = app.clock.now();
    let row = crate::helpers::subjectless_job("hand-written", 4, now).insert(&app.domain.db).await.unwrap();
    assert_eq!(app.run_jobs().await, 1);
    app.advance(chrono::Duration::minutes(10));
    assert_eq!(app.run_jobs().await, 0, "it is not claimed again");
    let job = entity::job::Entity::find_by_id(row.id).one(&app.domain.db).await.unwrap().unwrap();
    assert_eq!(job.status, entity::enums::JobStatus::Failed);
    assert_eq!((job.attempts, job.lease_token), (1, None));
    assert!(job.last_error.is_some_and(|e| e.contains("no subscription")), "the reason is kept");
}
