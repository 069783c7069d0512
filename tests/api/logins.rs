//! #9.16: password guessing is throttled. An account takes a few wrong passwords per window
//! from one client (then even the right one waits, from that client), a few more from all
//! clients together (then every client waits, until the window ends or the operator unlocks
//! it); a client a few more across accounts; the counts live in the database, so every
//! server enforces them; a request checks one password however many `login` fields or
//! batched operations it holds.

use std::time::Instant;

use chrono::Utc;
use entity::enums::Role;
use sea_orm::{ActiveModelTrait, NotSet, Set};
use serde_json::{Value, json};
use switchyard::domain::users::hash_password;

use crate::helpers::{TestApp, spawn, spawn_app_with};

const RIGHT: &str = "correct horse battery staple";
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

async fn user(app: &TestApp, email: &str) {
    let now = Utc::now();
    entity::user::ActiveModel {
        id: NotSet,
        email: Set(email.into()),
        display_name: Set(email.into()),
        password_hash: Set(hash_password(RIGHT).unwrap()),
        role: Set(Role::Operator),
        organization_id: Set(None),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
}

/// Logs in, as the client `forwarded_for` says when given; the response body.
async fn login_from(app: &TestApp, forwarded_for: Option<&str>, email: &str, password: &str) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({"query": LOGIN, "variables": {"e": email, "p": password}}));
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// The outcome of a login: "OK" with a token, else its error code.
fn outcome(body: &Value) -> String {
    if body["data"]["login"]["token"].is_string() {
        return "OK".into();
    }
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

/// The outcome of a login from the client `client` (through the trusted proxy).
async fn from(app: &TestApp, client: &str, email: &str, password: &str) -> String {
    outcome(&login_from(app, Some(client), email, password).await)
}

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    outcome(&login_from(app, None, email, password).await)
}

/// Settings of the account tests: 5 wrong passwords per account and client, 8 per account
/// in all; the test's own address is a trusted proxy, so `X-Forwarded-For` names clients.
fn account_limits(s: &mut switchyard::config::ServerConfig) {
    s.login_account_failures = 5;
    s.login_account_failures_total = 8;
    s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_for_their_client_on_every_server_until_the_window_ends() {
    let app = spawn_app_with(account_limits).await;
    let other = spawn(account_limits, 0, Some(&app)).await;
    user(&app, "rita@reseller.test").await;
    user(&app, "bob@reseller.test").await;
    // 100 wrong passwords from one client, alternating between the two servers.
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for n in 0..100 {
        let server = if n % 2 == 0 { &app } else { &other };
        outcomes.push(from(server, "203.0.113.1", "rita@reseller.test", &format!("guess {n}")).await);
    }
    let elapsed = started.elapsed();
    let checked = outcomes.iter().filter(|o| *o == "UNAUTHENTICATED").count();
    eprintln!("100 wrong passwords in {elapsed:?}: {checked} checked, the rest refused unchecked");
    assert!(outcomes[..5].iter().all(|o| o == "UNAUTHENTICATED"), "{outcomes:?}");
    assert!(outcomes[5..].iter().all(|o| o == "RATE_LIMITED"), "{outcomes:?}");
    // Both servers remember the refusal: more attempts at the locked account from that
    // client cost no statement at all.
    app.statements.store(0, std::sync::atomic::Ordering::SeqCst);
    for n in 0..20 {
        assert_eq!(from(&app, "203.0.113.1", "rita@reseller.test", &format!("flood {n}")).await, "RATE_LIMITED");
    }
    assert_eq!(app.statements.load(std::sync::atomic::Ordering::SeqCst), 0, "statements for refused attempts");
    // From that client the right password waits too, and is told how long.
    let body = login_from(&other, Some("203.0.113.1"), "Rita@Reseller.test", RIGHT).await;
    assert_eq!(outcome(&body), "RATE_LIMITED", "{body}");
    let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_i64().unwrap_or_else(|| panic!("{body}"));
    assert!((1..=900).contains(&retry_after), "{body}");
    // Rita, from her own client, is not locked out by the guesser; nor is Bob from the
    // guesser's client.
    assert_eq!(from(&app, "198.51.100.1", "rita@reseller.test", RIGHT).await, "OK");
    assert_eq!(from(&app, "203.0.113.1", "bob@reseller.test", RIGHT).await, "OK");
    // Guessing spread over clients: 5 wrong so far, 3 more from a second client reach the
    // account's total, and then every client waits, the right password too.
    for n in 0..3 {
        assert_eq!(from(&other, "203.0.113.2", "rita@reseller.test", &format!("spread {n}")).await, "UNAUTHENTICATED");
    }
    assert_eq!(from(&app, "203.0.113.3", "rita@reseller.test", "one more").await, "RATE_LIMITED");
    assert_eq!(from(&app, "198.51.100.1", "rita@reseller.test", RIGHT).await, "RATE_LIMITED");
    // The operator clears the account's counts: Rita logs in from anywhere again.
    let unlock = "mutation($e: String!) { unlockLogin(email: $e) }";
    let f = crate::helpers::Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    assert_eq!(app.error_code(Some(&reseller), unlock, json!({"e": "rita@reseller.test"})).await, "FORBIDDEN");
    let cleared = app.data(&app.operator(), unlock, json!({"e": " RITA@reseller.test"})).await;
    assert_eq!(cleared["unlockLogin"], true);
    assert_eq!(from(&app, "198.51.100.1", "rita@reseller.test", RIGHT).await, "OK");
    assert_eq!(from(&app, "203.0.113.1", "rita@reseller.test", RIGHT).await, "OK");
    // The other server still remembers its refusal of the guesser's client for 30 s.
    assert_eq!(from(&other, "203.0.113.1", "rita@reseller.test", RIGHT).await, "RATE_LIMITED");
    other.advance(chrono::Duration::seconds(31));
    assert_eq!(from(&other, "203.0.113.1", "rita@reseller.test", RIGHT).await, "OK");
    // A window's counts end with it: after 15 minutes, 4 wrong passwords from one client and
    // the right one still work, which then clears that client's count.
    user(&app, "carl@reseller.test").await;
    for n in 0..5 {
        assert_eq!(from(&app, "203.0.113.9", "carl@reseller.test", &format!("x{n}")).await, "UNAUTHENTICATED");
    }
    assert_eq!(from(&app, "203.0.113.9", "carl@reseller.test", RIGHT).await, "RATE_LIMITED");
    for server in [&app, &other] {
        server.advance(chrono::Duration::minutes(15));
    }
    assert_eq!(from(&app, "203.0.113.9", "carl@reseller.test", RIGHT).await, "OK");
    for n in 0..4 {
        assert_eq!(from(&other, "203.0.113.9", "carl@reseller.test", &format!("again {n}")).await, "UNAUTHENTICATED");
    }
    assert_eq!(from(&other, "203.0.113.9", "carl@reseller.test", RIGHT).await, "OK");
    // An unknown address is throttled alike, so throttling does not tell which exist.
    let unknown: Vec<String> =
        futures_util::future::join_all((0..7).map(|_| from(&app, "203.0.113.5", "nobody@reseller.test", RIGHT))).await;
    assert_eq!(unknown.iter().filter(|o| *o == "UNAUTHENTICATED").count(), 5, "{unknown:?}");
    assert_eq!(unknown.iter().filter(|o| *o == "RATE_LIMITED").count(), 2, "{unknown:?}");
    // Counts whose window ended are dropped by the scheduler's pruning; current ones stay.
    switchyard::domain::logins::prune(&app.domain).await.unwrap();
    let pruned = switchyard::domain::logins::prune(&app.domain).await.unwrap();
    assert_eq!(pruned, 0, "what is left is of the current window");
    assert!(crate::helpers::count_rows(&app, "login_attempts").await >= 2);
    app.advance(chrono::Duration::minutes(15));
    let pruned = switchyard::domain::logins::prune(&app.domain).await.unwrap();
    assert!(pruned >= 2, "the unknown address's and the client's counts: {pruned}");
    assert_eq!(from(&app, "203.0.113.5", "nobody@reseller.test", RIGHT).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_client_guessing_across_accounts_is_throttled_and_other_clients_are_not() {
    let app = spawn_app_with(|s| {
        s.login_client_failures = 20;
        // A network of proxies; this test's own address is in it.
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    user(&app, "rita@reseller.test").await;
    for n in 0..20 {
        let body = login_from(&app, Some("203.0.113.7"), &format!("guess{n}@reseller.test"), RIGHT).await;
        assert_eq!(outcome(&body), "UNAUTHENTICATED", "{body}");
    }
    // That client now waits, even with the right password for a real account; the proxy
    // appends the address it saw last, and whatever the client wrote before it is not
    // believed.
    for forwarded in ["203.0.113.7", "198.51.100.9, 203.0.113.7", "unknown, 203.0.113.7", "203.0.113.7:5555"] {
        let body = login_from(&app, Some(forwarded), "rita@reseller.test", RIGHT).await;
        assert_eq!(outcome(&body), "RATE_LIMITED", "{forwarded}: {body}");
    }
    // Another client is not.
    assert_eq!(outcome(&login_from(&app, Some("198.51.100.9"), "rita@reseller.test", RIGHT).await), "OK");
    // IPv6 clients are counted by their /56: one subscriber's line has all of them.
    for n in 0..20 {
        let client = format!("2001:db8:0:{:x}::1", n + 1);
        let body = login_from(&app, Some(&client), &format!("v6guess{n}@reseller.test"), RIGHT).await;
        assert_eq!(outcome(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login_from(&app, Some("[2001:db8:0:1::ffff]:443, 127.0.0.9"), "rita@reseller.test", RIGHT).await;
    assert_eq!(outcome(&body), "RATE_LIMITED", "{body}");
    assert_eq!(outcome(&login_from(&app, Some("2001:db8:0:100::1"), "rita@reseller.test", RIGHT).await), "OK");
}

#[tokio::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(|s| s.login_client_failures = 20).await;
    user(&app, "rita@reseller.test").await;
    for n in 0..20 {
        let claimed = format!("203.0.113.{n}");
        let body = login_from(&app, Some(&claimed), &format!("guess{n}@reseller.test"), RIGHT).await;
        assert_eq!(outcome(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login_from(&app, Some("198.51.100.200"), "rita@reseller.test", RIGHT).await;
    assert_eq!(outcome(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn a_request_checks_one_password_however_many_logins_it_holds() {
    let app = spawn_app_with(|s| s.login_account_failures = 5).await;
    user(&app, "rita@reseller.test").await;
    // Thirty aliases in one document: the first is checked, the others refused unchecked.
    let fields: String = (0..30)
        .map(|n| {
            format!(
                "a{n}: login(email: \"rita@reseller.test\", password: \"{}\") {{ token }} ",
                if n == 29 { RIGHT } else { "wrong" }
            )
        })
        .collect();
    let (_, body) = app.post(None, &format!("mutation {{ {fields} }}"), json!({})).await;
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(errors.len(), 30, "{body}");
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert_eq!(errors[0]["path"][0], "a0", "{body}");
    assert!(errors[1..].iter().all(|e| e["extensions"]["code"] == "BAD_USER_INPUT"), "{body}");
    assert!(errors[1].to_string().contains("one login per request"), "{body}");
    // A batch of ten operations, a login each: the first is checked.
    let batch: Vec<Value> = (0..10)
        .map(|n| json!({"query": LOGIN, "variables": {"e": "rita@reseller.test", "p": format!("wrong {n}")}}))
        .collect();
    let response = app.client.post(format!("{}/graphql", app.address)).json(&batch).send().await.unwrap();
    let bodies: Vec<Value> = response.json().await.unwrap();
    let outcomes: Vec<String> = bodies.iter().map(outcome).collect();
    assert_eq!(outcomes[0], "UNAUTHENTICATED", "{bodies:?}");
    assert!(outcomes[1..].iter().all(|o| o == "BAD_USER_INPUT"), "{bodies:?}");
    // So two passwords were checked: three more wrong ones lock the account.
    for n in 0..3 {
        assert_eq!(login(&app, "rita@reseller.test", &format!("more {n}")).await, "UNAUTHENTICATED");
    }
    assert_eq!(login(&app, "rita@reseller.test", "one more").await, "RATE_LIMITED");
}
