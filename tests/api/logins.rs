//! #9.16: password guessing is throttled. An account takes a few wrong passwords per window
//! (then even the right one waits), a client a few more across accounts; the counts live in
//! the database, so every server enforces them; a request checks one password however many
//! `login` fields or batched operations it holds.

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

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    outcome(&login_from(app, None, email, password).await)
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_on_every_server_until_the_window_ends() {
    let limits = |s: &mut switchyard::config::ServerConfig| s.login_account_failures = 5;
    let app = spawn_app_with(limits).await;
    let other = spawn(limits, 0, Some(&app)).await;
    user(&app, "rita@reseller.test").await;
    user(&app, "bob@reseller.test").await;
    // 100 wrong passwords, alternating between the two servers.
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for n in 0..100 {
        let server = if n % 2 == 0 { &app } else { &other };
        outcomes.push(login(server, "rita@reseller.test", &format!("guess {n}")).await);
    }
    let elapsed = started.elapsed();
    let checked = outcomes.iter().filter(|o| *o == "UNAUTHENTICATED").count();
    eprintln!("100 wrong passwords in {elapsed:?}: {checked} checked, the rest refused unchecked");
    assert!(outcomes[..5].iter().all(|o| o == "UNAUTHENTICATED"), "{outcomes:?}");
    assert!(outcomes[5..].iter().all(|o| o == "RATE_LIMITED"), "{outcomes:?}");
    // The right password waits too, and is told how long.
    let body = login_from(&other, None, "Rita@Reseller.test", RIGHT).await;
    assert_eq!(outcome(&body), "RATE_LIMITED", "{body}");
    let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_i64().unwrap_or_else(|| panic!("{body}"));
    assert!((1..=900).contains(&retry_after), "{body}");
    // Another account, from the same client, is not locked.
    assert_eq!(login(&app, "bob@reseller.test", RIGHT).await, "OK");
    // When the window ends, the right password works, and clears the count: the next
    // wrong passwords start again from none.
    for server in [&app, &other] {
        server.advance(chrono::Duration::minutes(15));
    }
    assert_eq!(login(&app, "rita@reseller.test", RIGHT).await, "OK");
    for n in 0..4 {
        assert_eq!(login(&other, "rita@reseller.test", &format!("again {n}")).await, "UNAUTHENTICATED");
    }
    assert_eq!(login(&other, "rita@reseller.test", RIGHT).await, "OK");
    // An unknown address is throttled alike, so throttling does not tell which exist.
    let unknown: Vec<String> =
        futures_util::future::join_all((0..7).map(|_| login(&app, "nobody@reseller.test", RIGHT))).await;
    assert_eq!(unknown.iter().filter(|o| *o == "UNAUTHENTICATED").count(), 5, "{unknown:?}");
    assert_eq!(unknown.iter().filter(|o| *o == "RATE_LIMITED").count(), 2, "{unknown:?}");
    // Counts whose window ended are dropped by the scheduler's pruning; current ones stay.
    let pruned = switchyard::domain::logins::prune(&app.domain).await.unwrap();
    assert_eq!(pruned, 0, "every count is of the current window");
    app.advance(chrono::Duration::minutes(15));
    let pruned = switchyard::domain::logins::prune(&app.domain).await.unwrap();
    assert!(pruned >= 2, "the unknown address's and the client's counts: {pruned}");
    assert_eq!(login(&app, "nobody@reseller.test", RIGHT).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_client_guessing_across_accounts_is_throttled_and_other_clients_are_not() {
    let app = spawn_app_with(|s| {
        s.login_client_failures = 20;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
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
    for forwarded in ["203.0.113.7", "198.51.100.9, 203.0.113.7"] {
        let body = login_from(&app, Some(forwarded), "rita@reseller.test", RIGHT).await;
        assert_eq!(outcome(&body), "RATE_LIMITED", "{forwarded}: {body}");
    }
    // Another client is not.
    assert_eq!(outcome(&login_from(&app, Some("198.51.100.9"), "rita@reseller.test", RIGHT).await), "OK");
    // IPv6 clients are counted by their /64: one host has all of them.
    for n in 0..20 {
        let client = format!("2001:db8:0:1::{:x}", n + 1);
        let body = login_from(&app, Some(&client), &format!("v6guess{n}@reseller.test"), RIGHT).await;
        assert_eq!(outcome(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login_from(&app, Some("2001:db8:0:1::ffff"), "rita@reseller.test", RIGHT).await;
    assert_eq!(outcome(&body), "RATE_LIMITED", "{body}");
    assert_eq!(outcome(&login_from(&app, Some("2001:db8:0:2::1"), "rita@reseller.test", RIGHT).await), "OK");
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
