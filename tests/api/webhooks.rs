//! #11, outbound webhooks, against a real receiving HTTP server that verifies each
//! delivery's Standard Webhooks signature itself (HMAC-SHA256 of `id.timestamp.body` under
//! the secret's key, written here, not the server's code): a reseller's endpoint receives
//! its own events of the types it asked for, the operator's every one; failures are tried
//! again on the schedule (Retry-After honoured), 4xx answers are not; every try is logged;
//! an endpoint failing too long is disabled and its owner told; a rotation signs with both
//! secrets for its overlap; a redelivery repeats the id and body; a tenant cannot point an
//! endpoint into the operator's network.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app_with};
use crate::orders::{order_input, place};

/// One delivery as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signatures: Vec<String>,
    body: Value,
    raw: String,
}

#[derive(Default)]
struct Inbox {
    received: HashMap<String, Vec<Received>>,
    /// Answers to give per path, in order (then 200).
    script: HashMap<String, VecDeque<(u16, Option<u64>)>>,
}

struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
    _server: actix_web::dev::ServerHandle,
}

async fn receive(
    inbox: web::Data<Arc<Mutex<Inbox>>>,
    path: web::Path<String>,
    request: HttpRequest,
    body: String,
) -> HttpResponse {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let received = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signatures: header("webhook-signature").split(' ').map(str::to_owned).collect(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        raw: body,
    };
    let mut inbox = inbox.lock().unwrap();
    inbox.received.entry(path.clone()).or_default().push(received);
    let (status, retry_after) =
        inbox.script.get_mut(path.as_str()).and_then(VecDeque::pop_front).unwrap_or((200, None));
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(seconds) = retry_after {
        answer.insert_header(("Retry-After", seconds.to_string()));
    }
    answer.body(if status < 300 { "ok" } else { "not now" })
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let shared = inbox.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(shared.clone())).route("/{path}", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, inbox, _server: handle }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.url)
    }

    fn got(&self, path: &str) -> Vec<Received> {
        self.inbox.lock().unwrap().received.get(path).cloned().unwrap_or_default()
    }

    fn answer(&self, path: &str, answers: &[(u16, Option<u64>)]) {
        self.inbox.lock().unwrap().script.insert(path.to_owned(), answers.iter().copied().collect());
    }
}

/// Whether `signature` (`v1,<base64>`) signs `received` under `secret` (`whsec_<base64 key>`).
fn signs(secret: &str, received: &Received, signature: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.raw).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signature == expected
}

fn verified_by(secret: &str, received: &Received) -> bool {
    received.signatures.iter().any(|s| signs(secret, received, s))
}

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id resellerId eventTypes enabled } } }";
const LOG: &str = "query($e: ID!) { webhookDeliveries(endpointId: $e) { id eventId eventType status attemptCount lastStatusCode lastError attempts { attempt statusCode latencyMs responseExcerpt error } } }";

/// Makes an endpoint at `url` for `token`'s organisation: (id, secret).
async fn endpoint(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (String, String) {
    let made = app.data(token, CREATE, json!({"i": {"url": url, "eventTypes": types}})).await;
    let made = &made["createWebhookEndpoint"];
    (made["endpoint"]["id"].as_str().unwrap().to_owned(), made["secret"].as_str().unwrap().to_owned())
}

async fn log(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    app.data(token, LOG, json!({"e": endpoint})).await["webhookDeliveries"].as_array().unwrap().clone()
}

fn types(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| r.body["type"].as_str().unwrap().to_owned()).collect()
}

async fn local_app(adjust: impl FnOnce(&mut switchyard::config::ServerConfig)) -> TestApp {
    spawn_app_with(|c| {
        c.webhook_allow_local = true;
        adjust(c);
    })
    .await
}

#[tokio::test]
async fn each_endpoint_receives_the_events_it_may_see_of_the_types_it_asked_for_signed() {
    let app = local_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let f = Fixture::build(&app).await;
    let reseller_a = app.token(Role::Reseller, Some(f.reseller_a));
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    let operator = app.operator();
    let (a, secret_a) =
        endpoint(&app, &reseller_a, &receiver.url("a"), &["order.placed", "order.status_changed"]).await;
    let (_, _) = endpoint(&app, &reseller_b, &receiver.url("b"), &[]).await;
    let (_, secret_op) = endpoint(&app, &operator, &receiver.url("op"), &["order.placed"]).await;

    let order = place(&app, &reseller_a, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "hooked").await;
    app.run_jobs().await;

    let got_a = receiver.got("a");
    assert_eq!(types(&got_a), ["order.placed", "order.status_changed"], "{got_a:?}");
    for received in &got_a {
        assert!(verified_by(&secret_a, received), "{received:?}");
        assert!(!verified_by(&secret_op, received), "another endpoint's secret must not verify it");
        // The webhook-id is the event's id, for deduplication.
        assert_eq!(received.body["data"]["id"], received.id.as_str());
        assert_eq!(
            received.body["data"]["orderId"],
            json!(order["order"]["id"].as_str().unwrap().parse::<i64>().unwrap())
        );
        assert_eq!(received.body["data"]["resellerId"], f.reseller_a);
    }
    assert!(receiver.got("b").is_empty(), "reseller B's endpoint got reseller A's events: {:?}", receiver.got("b"));
    let got_op = receiver.got("op");
    assert_eq!(types(&got_op), ["order.placed"]);
    assert!(verified_by(&secret_op, &got_op[0]));

    // The log: one try each, 200, with the answer's start.
    let logged = log(&app, &reseller_a, &a).await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    for delivery in &logged {
        assert_eq!((delivery["status"].as_str(), delivery["attemptCount"].as_i64()), (Some("DELIVERED"), Some(1)));
        assert_eq!(delivery["attempts"][0]["statusCode"], 200);
        assert_eq!(delivery["attempts"][0]["responseExcerpt"], "ok");
        assert!(delivery["attempts"][0]["latencyMs"].as_i64().unwrap() >= 0);
    }
    // Another reseller cannot read it, nor touch the endpoint, nor learn it exists.
    let (_, body) = app.post(Some(&reseller_b), LOG, json!({"e": a})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    let disable = "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { enabled } }";
    let (_, body) = app.post(Some(&reseller_b), disable, json!({"id": a})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    let listed = app.data(&reseller_b, "{ webhookEndpoints { id } }", json!({})).await;
    assert_eq!(listed["webhookEndpoints"].as_array().unwrap().len(), 1);
    // The operator sees every endpoint.
    let listed = app.data(&operator, "{ webhookEndpoints { id resellerId } }", json!({})).await;
    assert_eq!(listed["webhookEndpoints"].as_array().unwrap().len(), 3);

    // Counted in the metrics.
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("webhook_deliveries_total{outcome=\"delivered\"}"), "{metrics}");
}

#[tokio::test]
async fn failed_tries_follow_the_schedule_and_retry_after_and_a_4xx_is_not_tried_again() {
    let app = local_app(|c| c.webhook_schedule = vec![std::time::Duration::from_secs(60); 4]).await;
    let receiver = Receiver::start().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let (busy, _) = endpoint(&app, &reseller, &receiver.url("busy"), &["order.placed"]).await;
    let (gone, _) = endpoint(&app, &reseller, &receiver.url("gone"), &["order.placed"]).await;
    receiver.answer("busy", &[(503, Some(300)), (429, None)]);
    receiver.answer("gone", &[(410, None)]);

    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "retry").await;
    app.run_jobs().await;
    assert_eq!((receiver.got("busy").len(), receiver.got("gone").len()), (1, 1));
    // The receiver asked for 300 s, more than the schedule's 60: nothing before.
    app.advance(chrono::Duration::seconds(299));
    app.run_jobs().await;
    assert_eq!(receiver.got("busy").len(), 1);
    app.advance(chrono::Duration::seconds(2));
    app.run_jobs().await;
    assert_eq!(receiver.got("busy").len(), 2);
    // Then the schedule: 60 s.
    app.advance(chrono::Duration::seconds(61));
    app.run_jobs().await;
    let tries = receiver.got("busy");
    assert_eq!(tries.len(), 3);
    assert!(tries.iter().all(|t| t.id == tries[0].id), "the same webhook-id on every try");

    let logged = log(&app, &reseller, &busy).await;
    let codes: Vec<i64> =
        logged[0]["attempts"].as_array().unwrap().iter().map(|a| a["statusCode"].as_i64().unwrap()).collect();
    assert_eq!(codes, [503, 429, 200]);
    assert_eq!(logged[0]["status"], "DELIVERED");
    // 410 Gone: failed at once, never tried again.
    app.advance(chrono::Duration::days(2));
    app.run_jobs().await;
    assert_eq!(receiver.got("gone").len(), 1);
    let logged = log(&app, &reseller, &gone).await;
    assert_eq!((logged[0]["status"].as_str(), logged[0]["lastStatusCode"].as_i64()), (Some("FAILED"), Some(410)));
}

#[tokio::test]
async fn an_endpoint_failing_past_the_limit_is_disabled_and_its_owner_told() {
    let app = local_app(|c| {
        c.webhook_schedule = vec![std::time::Duration::from_secs(60)];
        c.webhook_disable_after = std::time::Duration::from_secs(86_400);
    })
    .await;
    let receiver = Receiver::start().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let (broken, _) = endpoint(&app, &reseller, &receiver.url("broken"), &["order.placed"]).await;
    let (_, secret) = endpoint(&app, &reseller, &receiver.url("ops"), &["webhook_endpoint.disabled"]).await;
    receiver.answer("broken", &[(500, None); 10]);

    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "first").await;
    app.run_jobs().await;
    app.advance(chrono::Duration::seconds(61));
    app.run_jobs().await;
    assert_eq!(receiver.got("broken").len(), 2, "two tries, both failed");
    let state = "{ webhookEndpoints { id enabled failingSince disabledReason } }";
    let listed = app.data(&reseller, state, json!({})).await;
    assert!(listed["webhookEndpoints"][0]["failingSince"].is_string(), "{listed}");
    assert_eq!(listed["webhookEndpoints"][0]["enabled"], true);

    // A day later it still fails: disabled, and the owner's other endpoint is told.
    app.advance(chrono::Duration::days(1));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "second").await;
    app.run_jobs().await;
    let listed = app.data(&reseller, state, json!({})).await;
    assert_eq!(listed["webhookEndpoints"][0]["enabled"], false, "{listed}");
    assert!(listed["webhookEndpoints"][0]["disabledReason"].as_str().unwrap().contains("failed since"));
    let told = receiver.got("ops");
    assert_eq!(types(&told), ["webhook_endpoint.disabled"]);
    assert!(verified_by(&secret, &told[0]));
    assert_eq!(told[0].body["data"]["webhookEndpointId"].as_i64().map(|id| id.to_string()), Some(broken.clone()));
    // Nothing more goes to it; enabled again, it receives again.
    let tries = receiver.got("broken").len();
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "third").await;
    app.run_jobs().await;
    assert_eq!(receiver.got("broken").len(), tries);
    let enable =
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: true}) { enabled failingSince } }";
    let enabled = app.data(&reseller, enable, json!({"id": broken})).await;
    assert_eq!(enabled["updateWebhookEndpoint"], json!({"enabled": true, "failingSince": null}));
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_the_overlap_and_a_redelivery_repeats_the_message() {
    let app = local_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let (id, old) = endpoint(&app, &reseller, &receiver.url("r"), &["order.placed"]).await;
    let rotate = "mutation($id: ID!) { rotateWebhookSecret(id: $id, overlapHours: 1) { secret endpoint { previousSecretValidUntil } } }";
    let rotated = app.data(&reseller, rotate, json!({"id": id})).await;
    let new = rotated["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["rotateWebhookSecret"]["endpoint"]["previousSecretValidUntil"].is_string());

    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "during").await;
    app.run_jobs().await;
    let during = receiver.got("r");
    assert_eq!(during[0].signatures.len(), 2, "{:?}", during[0]);
    assert!(verified_by(&old, &during[0]) && verified_by(&new, &during[0]));

    app.advance(chrono::Duration::hours(2));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "after").await;
    app.run_jobs().await;
    let after = receiver.got("r")[1].clone();
    assert_eq!(after.signatures.len(), 1);
    assert!(verified_by(&new, &after) && !verified_by(&old, &after));

    // Sent again: the same id and body, a second try in its log.
    let logged = log(&app, &reseller, &id).await;
    let first = logged.last().unwrap()["id"].as_str().unwrap().to_owned();
    let again =
        app.data(&reseller, "mutation($id: ID!) { redeliverWebhook(id: $id) { status } }", json!({"id": first})).await;
    assert_eq!(again["redeliverWebhook"]["status"], "PENDING");
    let (_, body) = app
        .post(Some(&reseller), "mutation($id: ID!) { redeliverWebhook(id: $id) { status } }", json!({"id": first}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "already waiting: {body}");
    app.run_jobs().await;
    let all = receiver.got("r");
    assert_eq!(all.len(), 3);
    assert_eq!((all[2].id.as_str(), all[2].raw.as_str()), (all[0].id.as_str(), all[0].raw.as_str()));
    assert!(verified_by(&new, &all[2]));
    let logged = log(&app, &reseller, &id).await;
    assert_eq!(logged.last().unwrap()["attemptCount"], 2);

    // The log keeps what is no longer pending for its retention.
    app.advance(chrono::Duration::days(31));
    let pruned =
        switchyard::domain::webhooks::deliveries::prune(&app.domain, std::time::Duration::from_secs(30 * 86_400))
            .await
            .unwrap();
    assert_eq!(pruned, 2);
    assert!(log(&app, &reseller, &id).await.is_empty());
}

#[tokio::test]
async fn endpoints_must_be_public_https_and_managed_with_the_webhooks_scope() {
    let app = spawn_app_with(|_| {}).await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:192.168.0.1]/x",
        "https://localhost/x",
        "https://user:pass@hooks.example.com/x",
        "not a url",
    ] {
        let (_, body) = app.post(Some(&reseller), CREATE, json!({"i": {"url": url}})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{url}: {body}");
    }
    let (_, body) = app
        .post(
            Some(&reseller),
            CREATE,
            json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["order.shipped"]}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    let (id, secret) = endpoint(&app, &reseller, "https://hooks.example.com/x", &[]).await;
    assert!(secret.starts_with("whsec_") && !id.is_empty());
    // Customers do not manage webhooks.
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let (_, body) = app.post(Some(&customer), "{ webhookEndpoints { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    // A key needs webhooks:manage.
    let user = crate::api_keys::user_token(&app, "hooks@a.example", Role::Reseller, Some(f.reseller_a)).await;
    let (without, _) = crate::api_keys::create(&app, &user, &["catalog:read"]).await;
    let (_, body) = app.post(Some(&without), "{ webhookEndpoints { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let (with, _) = crate::api_keys::create(&app, &user, &["webhooks:manage"]).await;
    let listed = app.data(&with, "{ webhookEndpoints { id url } }", json!({})).await;
    assert_eq!(listed["webhookEndpoints"][0]["url"], "https://hooks.example.com/x");
    // Deleted, with its log.
    let deleted =
        app.data(&with, "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(deleted["deleteWebhookEndpoint"]["id"], id.as_str());
    assert_eq!(app.data(&with, "{ webhookEndpoints { id } }", json!({})).await["webhookEndpoints"], json!([]));
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `node --version` runs.
fn node_runs() -> bool {
    std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The README's receiver (the JavaScript a reseller would copy), run by Node.js against real
/// deliveries: it verifies each one, and refuses one signed with a secret it does not hold.
#[tokio::test]
async fn the_readmes_node_receiver_verifies_real_deliveries() {
    if !node_runs() {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_NODE").is_none(),
            "SWITCHYARD_REQUIRE_NODE is set but node does not run"
        );
        eprintln!("\n*** SKIPPED the README's webhook receiver: no Node.js (CI requires it) ***\n");
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("// receiver.mjs").expect("the README's receiver");
    let script = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("receiver.mjs"), script).unwrap();

    let app = local_app(|_| {}).await;
    // The receiver checks the timestamp against its own clock: the test clock is set to now.
    app.advance(chrono::Utc::now() - app.domain.clock.now());
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (id, secret) = endpoint(&app, &reseller, &format!("http://127.0.0.1:{port}/hooks"), &["order.placed"]).await;
    let node = std::process::Command::new("node")
        .arg("receiver.mjs")
        .current_dir(dir.path())
        .env("WHSEC", &secret)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut node = KillOnDrop(Some(node));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "node").await;
    app.run_jobs().await;
    // Signed with a secret the receiver does not hold (rotated, no overlap): refused, 400.
    let rotate = "mutation($id: ID!) { rotateWebhookSecret(id: $id, overlapHours: 0) { secret } }";
    app.data(&reseller, rotate, json!({"id": id})).await;
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "node-2").await;
    app.run_jobs().await;
    let mut child = node.0.take().unwrap();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    assert!(lines[0].contains(" order.placed "), "{printed}");
    let logged = log(&app, &reseller, &id).await;
    let statuses: Vec<(&str, i64)> =
        logged.iter().map(|d| (d["status"].as_str().unwrap(), d["lastStatusCode"].as_i64().unwrap())).collect();
    assert_eq!(statuses, [("FAILED", 400), ("DELIVERED", 200)]);
}

#[tokio::test]
async fn a_send_never_reaches_a_local_address_even_when_the_stored_url_names_one() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = spawn_app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let (literal, _) = endpoint(&app, &reseller, "https://hooks.example.com/a", &["order.placed"]).await;
    let (named, _) = endpoint(&app, &reseller, "https://hooks.example.com/b", &["order.placed"]).await;
    // As if validation had been passed by (an older rule, a name that now points home).
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    for (id, url) in
        [(&literal, format!("http://127.0.0.1:{port}/literal")), (&named, format!("http://localhost:{port}/named"))]
    {
        let row = entity::webhook_endpoint::Entity::find_by_id(id.parse::<i64>().unwrap())
            .one(&app.domain.db)
            .await
            .unwrap()
            .unwrap();
        let mut row: entity::webhook_endpoint::ActiveModel = row.into();
        row.url = Set(url);
        row.update(&app.domain.db).await.unwrap();
    }
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "inside").await;
    app.run_jobs().await;
    assert!(receiver.got("literal").is_empty() && receiver.got("named").is_empty(), "a local address was called");
    let literal = log(&app, &reseller, &literal).await;
    assert_eq!(
        (literal[0]["status"].as_str(), literal[0]["lastError"].as_str()),
        (Some("FAILED"), Some("the endpoint's address is not public"))
    );
    // The name resolves to this machine only: no address to call, said without naming why.
    let named = log(&app, &reseller, &named).await;
    assert_eq!(named[0]["status"], "PENDING", "{named:?}");
    let error = named[0]["lastError"].as_str().unwrap();
    assert!(error.contains("could not be reached") && !error.contains("localhost"), "{error}");
}
