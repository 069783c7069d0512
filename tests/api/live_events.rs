//! `liveEvents`, the dashboard's feed (#12): every event the caller may see and nothing of
//! another tenant's, of the kinds asked for, resumable after a cursor with nothing lost or
//! repeated; an API key receives only the kinds its scopes open and is refused a kind it
//! asks for by name without them.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::api_keys::{create, user_token};
use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::live::WsClient;
use crate::orders::{order_input, place};

const FEED: &str = "subscription($k: [LiveEventKind!], $a: String) { liveEvents(kinds: $k, after: $a) { eventId cursor kind status orderId } }";

/// Every event that arrives until none has for 400 ms.
async fn drain(client: &mut WsClient, id: &str) -> Vec<Value> {
    let mut events = Vec::new();
    while let Ok(Some(message)) = client.next_within(Duration::from_millis(400)).await {
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id);
        events.push(message["payload"]["data"]["liveEvents"].clone());
    }
    events
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["kind"].as_str()).collect()
}

async fn watch(app: &TestApp, token: &str, variables: Value) -> WsClient {
    let mut client = WsClient::init(app, token).await;
    client.subscribe("feed", FEED, variables).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
}

#[tokio::test]
async fn live_events_bring_everything_the_caller_may_see_of_the_kinds_asked_and_resume_after_a_cursor() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller_a = app.token(Role::Reseller, Some(f.reseller_a));
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    let mut a = watch(&app, &reseller_a, json!({})).await;
    let mut b = watch(&app, &reseller_b, json!({})).await;
    let mut operator = watch(&app, &app.operator(), json!({})).await;
    let mut placed_only = watch(&app, &reseller_a, json!({"k": ["ORDER_PLACED"]})).await;

    let placed = place(&app, &reseller_a, order_input(f.customer_a, &[(f.offers_a[0], 2)]), "feed").await;
    let order = placed["order"]["id"].clone();
    app.run_jobs().await;

    let seen = drain(&mut a, "feed").await;
    assert_eq!(
        kinds(&seen),
        [
            "ORDER_PLACED",
            "PROVISIONING_STATUS_CHANGED",
            "SUBSCRIPTION_CHANGED",
            "PROVISIONING_STATUS_CHANGED",
            "SUBSCRIPTION_CHANGED",
            "PROVISIONING_STATUS_CHANGED",
            "ORDER_STATUS_CHANGED"
        ],
        "{seen:?}"
    );
    assert!(seen.iter().all(|e| e["orderId"] == order), "{seen:?}");
    let cursors: Vec<i64> = seen.iter().filter_map(|e| e["cursor"].as_str()?.parse().ok()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors increase: {cursors:?}");
    assert_eq!(drain(&mut b, "feed").await, Vec::<Value>::new(), "another reseller sees nothing of A's");
    assert_eq!(drain(&mut operator, "feed").await, seen, "the operator sees the same events");
    let only = drain(&mut placed_only, "feed").await;
    assert_eq!(kinds(&only), ["ORDER_PLACED"]);

    // Resumed after the second event: the rest again, exactly, and then live.
    let mut resumed = watch(&app, &reseller_a, json!({"a": seen[1]["cursor"]})).await;
    assert_eq!(drain(&mut resumed, "feed").await, seen[2..].to_vec());
    // A cursor past the last event is refused rather than skipping what comes.
    let mut ahead = WsClient::init(&app, &reseller_a).await;
    ahead.subscribe("x", FEED, json!({"a": "999999"})).await;
    let refused = ahead.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_api_key_receives_only_the_event_kinds_its_scopes_open() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let rita = user_token(&app, "rita@a.test", Role::Reseller, Some(f.reseller_a)).await;
    let (provisioning_only, _) = create(&app, &rita, &["subscriptions:write"]).await;
    let (no_feed, _) = create(&app, &rita, &["orders:write"]).await;

    let mut key = watch(&app, &provisioning_only, json!({})).await;
    // Asking by name for a kind the key's scopes do not open is refused.
    let mut asks = WsClient::init(&app, &provisioning_only).await;
    asks.subscribe("o", FEED, json!({"k": ["ORDER_PLACED"]})).await;
    let refused = asks.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    // Without subscriptions:write there is no feed at all.
    let mut none = WsClient::init(&app, &no_feed).await;
    none.subscribe("n", FEED, json!({})).await;
    let refused = none.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");

    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "scoped").await;
    app.run_jobs().await;
    let seen = drain(&mut key, "feed").await;
    assert!(!seen.is_empty(), "the key sees the provisioning");
    assert!(
        seen.iter().all(|e| matches!(e["kind"].as_str(), Some("PROVISIONING_STATUS_CHANGED" | "SUBSCRIPTION_CHANGED"))),
        "no order event reaches a key without orders:write: {seen:?}"
    );
}
