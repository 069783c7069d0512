//! The subscription lifecycle through the API: transitions, the 168-hour windows measured
//! with the test clock, idempotent changes, history, and renewal at term end.

use chrono::Duration;
use serde_json::{Value, json};
use switchyard::domain::{Role, subscriptions};

use crate::helpers::{Fixture, TestApp, count_rows, spawn_app};
use crate::orders::{order_input, place};

/// Places an order for `quantity` seats of `offer` and provisions it; the subscription id.
async fn active_subscription(app: &TestApp, f: &Fixture, offer: i64, quantity: i32, key: &str) -> String {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = place(app, &reseller, order_input(f.customer_a, &[(offer, quantity)]), key).await;
    app.run_jobs().await;
    let id = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    let data = app.data(&reseller, "query($id: ID!) { subscription(id: $id) { status } }", json!({"id": id})).await;
    assert_eq!(data["subscription"]["status"], "ACTIVE");
    id
}

const QUANTITY: &str = "mutation($id: ID!, $q: Int!, $key: String!) {
  changeSubscriptionQuantity(id: $id, quantity: $q, idempotencyKey: $key) { replayed subscription { quantity updateCount } } }";

async fn change(app: &TestApp, token: &str, mutation: &str, id: &str, key: &str) -> Value {
    let document = format!(
        "mutation($id: ID!, $key: String!) {{ {mutation}(id: $id, idempotencyKey: $key) {{ replayed subscription {{ status }} }} }}"
    );
    let (_, body) = app.post(Some(token), &document, json!({"id": id, "key": key})).await;
    body
}

#[tokio::test]
async fn suspend_resume_and_illegal_transitions() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let id = active_subscription(&app, &f, f.offers_a[0], 5, "o1").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let body = change(&app, &reseller, "suspendSubscription", &id, "s1").await;
    assert_eq!(body["data"]["suspendSubscription"]["subscription"]["status"], "SUSPENDED", "{body}");
    let body = change(&app, &reseller, "suspendSubscription", &id, "s2").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("SUSPENDED"), "{body}");
    let (_, body) = app.post(Some(&reseller), QUANTITY, json!({"id": id, "q": 6, "key": "q-suspended"})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("SUSPENDED"), "{body}");
    let body = change(&app, &reseller, "resumeSubscription", &id, "r1").await;
    assert_eq!(body["data"]["resumeSubscription"]["subscription"]["status"], "ACTIVE");
    let body = change(&app, &reseller, "resumeSubscription", &id, "r2").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("ACTIVE"), "{body}");
    let data = app
        .data(&reseller, "mutation($id: ID!) { setAutoRenew(id: $id, autoRenew: false, idempotencyKey: \"ar\") { subscription { autoRenew } } }", json!({"id": id}))
        .await;
    assert_eq!(data["setAutoRenew"]["subscription"]["autoRenew"], false);

    // Suspend and resume went to the vendor as jobs; auto-renew did not.
    let jobs = app
        .data(
            &app.operator(),
            "query($id: ID!) { provisioningJobs(subscriptionId: $id) { edges { node { action } } } }",
            json!({"id": id}),
        )
        .await;
    let actions: Vec<&str> = jobs["provisioningJobs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["PURCHASE", "SUSPEND", "RESUME"]);
    let history = app.data(&reseller, "query($id: ID!) { subscription(id: $id) { updateCount history { kind actorRole statusBefore statusAfter } } }", json!({"id": id})).await;
    let kinds: Vec<&str> =
        history["subscription"]["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PURCHASE", "PROVISIONED", "SUSPEND", "RESUME", "AUTO_RENEW_CHANGED"]);
    assert_eq!(history["subscription"]["updateCount"], 3);

    // Another reseller cannot touch it; a vendor may not change it.
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    assert_eq!(
        change(&app, &other, "suspendSubscription", &id, "x").await["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    assert_eq!(
        change(&app, &vendor, "suspendSubscription", &id, "x").await["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn seats_can_be_removed_only_within_168_hours_of_being_added() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let id = active_subscription(&app, &f, f.offers_a[0], 10, "o1").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let set = |q: i32, key: &'static str| json!({"id": id, "q": q, "key": key});

    app.advance(Duration::hours(167) + Duration::minutes(59));
    let data = app.data(&reseller, QUANTITY, set(8, "d1")).await;
    assert_eq!(data["changeSubscriptionQuantity"]["subscription"]["quantity"], 8);

    app.advance(Duration::minutes(1) + Duration::seconds(1));
    let (_, body) = app.post(Some(&reseller), QUANTITY, set(7, "d2")).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "168 h 0 m 1 s after purchase: {body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("168 hours"));

    // Seats added now have their own window.
    app.data(&reseller, QUANTITY, set(13, "i1")).await;
    app.advance(Duration::hours(100));
    let data = app.data(&reseller, QUANTITY, set(8, "d3")).await;
    assert_eq!(data["changeSubscriptionQuantity"]["subscription"]["quantity"], 8);
    let (_, body) = app.post(Some(&reseller), QUANTITY, set(7, "d4")).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "the added batch is used up: {body}");
    // Out of the offer's range.
    let (_, body) = app.post(Some(&reseller), QUANTITY, set(301, "big")).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "quantity");
}

#[tokio::test]
async fn cancellation_is_allowed_until_168_hours_after_purchase() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let early = active_subscription(&app, &f, f.offers_a[0], 1, "o1").await;
    let late = active_subscription(&app, &f, f.offers_a[0], 1, "o2").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.advance(Duration::hours(167) + Duration::minutes(59));
    let body = change(&app, &reseller, "cancelSubscription", &early, "c1").await;
    assert_eq!(body["data"]["cancelSubscription"]["subscription"]["status"], "CANCELLED", "{body}");
    app.advance(Duration::minutes(1) + Duration::seconds(1));
    let body = change(&app, &reseller, "cancelSubscription", &late, "c2").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    let body = change(&app, &reseller, "resumeSubscription", &early, "r").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("CANCELLED"), "{body}");
}

#[tokio::test]
async fn a_repeated_change_key_is_a_replay() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let id = active_subscription(&app, &f, f.offers_a[0], 4, "o1").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let jobs_before = count_rows(&app, "jobs").await;
    let first = app.data(&reseller, QUANTITY, json!({"id": id, "q": 6, "key": "up"})).await;
    let again = app.data(&reseller, QUANTITY, json!({"id": id, "q": 6, "key": "up"})).await;
    assert_eq!(first["changeSubscriptionQuantity"]["replayed"], false);
    assert_eq!(again["changeSubscriptionQuantity"]["replayed"], true);
    assert_eq!(again["changeSubscriptionQuantity"]["subscription"]["updateCount"], 1);
    assert_eq!(count_rows(&app, "jobs").await, jobs_before + 1);
}

#[tokio::test]
async fn term_end_renews_at_new_prices_or_expires() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let renewing = active_subscription(&app, &f, f.offers_a[1], 2, "o1").await; // P1M
    let expiring = active_subscription(&app, &f, f.offers_a[1], 2, "o2").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!) { setAutoRenew(id: $id, autoRenew: false, idempotencyKey: \"off\") { replayed } }",
        json!({"id": expiring}),
    )
    .await;
    // The vendor raises the price from next month.
    app.data(
        &app.operator(),
        "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"9.00\", listPrice: \"11.00\", effectiveFrom: \"2026-12-01T00:00:00Z\"}) { id } }",
        json!({"o": f.offers_a[1].to_string()}),
    )
    .await;
    // Still locked before the term ends.
    assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (0, 0));
    app.clock.set("2026-12-02T09:00:00Z".parse().unwrap());
    assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (1, 1));
    let query = "query($id: ID!) { subscription(id: $id) { status termStart termEnd unitWholesale { amount } unitRetail { amount } } }";
    let renewed = app.data(&reseller, query, json!({"id": renewing})).await["subscription"].clone();
    assert_eq!(renewed["status"], "ACTIVE");
    assert_eq!(renewed["termStart"], "2026-12-02T09:00:00+00:00");
    assert_eq!(renewed["termEnd"], "2027-01-02T09:00:00+00:00");
    assert_eq!(renewed["unitWholesale"]["amount"], "10.35", "re-read at renewal: 9.00 × 1.15");
    assert_eq!(renewed["unitRetail"]["amount"], "11.00");
    let expired = app.data(&reseller, query, json!({"id": expiring})).await["subscription"].clone();
    assert_eq!(expired["status"], "EXPIRED");
    // A renewal opens a new 168 h window for cancellation.
    app.advance(Duration::hours(100));
    let body = change(&app, &reseller, "cancelSubscription", &renewing, "c").await;
    assert_eq!(body["data"]["cancelSubscription"]["subscription"]["status"], "CANCELLED", "{body}");
}

#[tokio::test]
async fn the_vendor_update_limit_warns_then_refuses() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let id = active_subscription(&app, &f, f.offers_a[0], 4, "o1").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.domain
        .db
        .execute_unprepared(&format!("UPDATE subscriptions SET update_count = 1150 WHERE id = {id}"))
        .await
        .unwrap();
    let mutation = "mutation($id: ID!, $key: String!) { setAutoRenew(id: $id, autoRenew: false, idempotencyKey: $key) { warnings subscription { updateCount } } }";
    let data = app.data(&reseller, mutation, json!({"id": id, "key": "w"})).await;
    assert_eq!(data["setAutoRenew"]["subscription"]["updateCount"], 1151);
    assert!(data["setAutoRenew"]["warnings"][0].as_str().unwrap().contains("1151"), "{data}");
    app.domain
        .db
        .execute_unprepared(&format!("UPDATE subscriptions SET update_count = 1200 WHERE id = {id}"))
        .await
        .unwrap();
    let (_, body) = app.post(Some(&reseller), mutation, json!({"id": id, "key": "refused"})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("1200"));
}
