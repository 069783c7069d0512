//! #9.5: local state and billing follow what the vendor did. A change the vendor refused is
//! reverted and never billed; one whose outcome is unknown (DEAD after every attempt) marks
//! the subscription out of sync for operators and is held from billing until an operator's
//! retry confirms it or the operator abandons it. Each refused or abandoned subscription is
//! compared with a control subscription, bought at the same time, on which the change was
//! never made: they must be billed exactly alike.

use serde_json::{Value, json};
use switchyard::domain::{Role, subscriptions};

use crate::billing::run;
use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};
use crate::provisioning::{FakeVendor, Script, order_from_http_vendor};

const CHANGE_QUANTITY: &str = "mutation($id: ID!, $q: Int!, $k: String!) {
    changeSubscriptionQuantity(id: $id, quantity: $q, idempotencyKey: $k) { subscription { quantity } } }";
const SUSPEND: &str =
    "mutation($id: ID!, $k: String!) { suspendSubscription(id: $id, idempotencyKey: $k) { subscription { status } } }";
const CANCEL: &str =
    "mutation($id: ID!, $k: String!) { cancelSubscription(id: $id, idempotencyKey: $k) { subscription { status } } }";
const STATE: &str = "query($id: ID!) { subscription(id: $id) { status quantity termEnd outOfSync syncIssue
    history { kind quantityAfter statusAfter vendorOutcome } } }";
const RETRY: &str = "mutation($id: ID!) { retryProvisioning(jobId: $id) { status } }";
const JOBS: &str = "query($s: ID!) { provisioningJobs(subscriptionId: $s) { edges { node { id status action } } } }";

/// Vendor B (an HTTP vendor started here) with two subscriptions of two seats of its P1Y
/// monthly offer bought on 2 November: the one the test changes and a control.
async fn two_subscriptions(app: &TestApp, f: &Fixture) -> (FakeVendor, String, String) {
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let (_, subject) = order_from_http_vendor(app, f, &vendor).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    let placed = place(app, &reseller, order_input(f.customer_b, &[(f.offer_b, 2)]), "control").await;
    let control = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    (vendor, subject, control)
}

fn reseller(app: &TestApp, f: &Fixture) -> String {
    app.token(Role::Reseller, Some(f.reseller_b))
}

async fn state(app: &TestApp, token: &str, subscription: &str) -> Value {
    app.data(token, STATE, json!({"id": subscription})).await["subscription"].clone()
}

/// The subscription's jobs, newest first.
async fn jobs(app: &TestApp, subscription: &str) -> Vec<Value> {
    let data = app.data(&app.operator(), JOBS, json!({"s": subscription})).await;
    let mut jobs: Vec<Value> =
        data["provisioningJobs"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    jobs.reverse();
    jobs
}

/// Every charge of a subscription at the three prices, in order: what billing made of it.
async fn charges(app: &TestApp, subscription: &str) -> Vec<(String, String, String, String)> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .order_by_asc(entity::charge::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
        .iter()
        .map(|c| {
            (c.service_start.date_naive().to_string(), c.amount_cost.0.to_string(), c.amount_wholesale.0.to_string(), {
                c.amount_retail.0.to_string()
            })
        })
        .collect()
}

/// Sums of what the subscription was charged at cost, wholesale and retail.
async fn totals(
    app: &TestApp,
    subscription: &str,
) -> (rust_decimal::Decimal, rust_decimal::Decimal, rust_decimal::Decimal) {
    let mut sums = (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO);
    for (_, cost, wholesale, retail) in charges(app, subscription).await {
        sums.0 += cost.parse::<rust_decimal::Decimal>().unwrap();
        sums.1 += wholesale.parse::<rust_decimal::Decimal>().unwrap();
        sums.2 += retail.parse::<rust_decimal::Decimal>().unwrap();
    }
    sums
}

/// Runs billing for November to February: the change's month and three after.
async fn bill_four_months(app: &TestApp) {
    for (at, period) in [
        ("2026-11-30T23:00:00Z", "2026-11"),
        ("2026-12-01T00:30:00Z", "2026-12"),
        ("2027-01-01T00:30:00Z", "2027-01"),
        ("2027-02-01T00:30:00Z", "2027-02"),
    ] {
        app.clock.set(at.parse().unwrap());
        run(app, period).await;
    }
}

fn subscription_id(subscription: &str) -> i64 {
    subscription.parse().unwrap()
}

#[tokio::test]
async fn a_quantity_increase_the_vendor_refused_is_reverted_and_never_billed() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-10T10:00:00Z".parse().unwrap());
    let changed = app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 5, "k": "up"})).await;
    assert_eq!(changed["changeSubscriptionQuantity"]["subscription"]["quantity"], 5);
    vendor.answer(subscription_id(&subject), Some(422));
    app.run_jobs().await;
    assert_eq!(jobs(&app, &subject).await[0]["status"], "FAILED");

    let after = state(&app, &reseller, &subject).await;
    assert_eq!(after["quantity"], 2, "the vendor kept two seats: {after}");
    assert_eq!(after["status"], "ACTIVE");
    assert_eq!(after["outOfSync"], false, "a refusal is known, not out of sync: {after}");
    let refused = after["history"].as_array().unwrap().iter().find(|c| c["kind"] == "QUANTITY_INCREASE").unwrap();
    assert_eq!(refused["vendorOutcome"], "REFUSED");
    // The three seats never existed: none of them can be removed.
    vendor.answer(subscription_id(&subject), None);
    let code = app.error_code(Some(&reseller), CHANGE_QUANTITY, json!({"id": subject, "q": 1, "k": "down"})).await;
    assert_eq!(code, "BAD_USER_INPUT");

    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await, "billed like the control");
    assert_eq!(charges(&app, &subject).await.len(), charges(&app, &control).await.len());
}

#[tokio::test]
async fn a_quantity_decrease_the_vendor_refused_keeps_the_seats_removable_and_billed() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-04T10:00:00Z".parse().unwrap());
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 1, "k": "down"})).await;
    vendor.answer(subscription_id(&subject), Some(422));
    app.run_jobs().await;
    let after = state(&app, &reseller, &subject).await;
    assert_eq!(after["quantity"], 2, "{after}");
    // Still within the purchase's 168 hours: the seat is removable again.
    vendor.answer(subscription_id(&subject), None);
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 1, "k": "down again"})).await;
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": control, "q": 1, "k": "down"})).await;
    app.run_jobs().await;
    assert_eq!(state(&app, &reseller, &subject).await["quantity"], 1);
    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn a_cancel_or_suspend_the_vendor_refused_is_reverted_and_billing_goes_on() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-05T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(409));
    app.data(&reseller, SUSPEND, json!({"id": subject, "k": "suspend"})).await;
    app.run_jobs().await;
    assert_eq!(state(&app, &reseller, &subject).await["status"], "ACTIVE");
    app.data(&reseller, CANCEL, json!({"id": subject, "k": "cancel"})).await;
    app.run_jobs().await;
    let after = state(&app, &reseller, &subject).await;
    assert_eq!(after["status"], "ACTIVE", "the vendor kept it: {after}");
    let outcomes: Vec<&Value> = after["history"].as_array().unwrap().iter().map(|c| &c["vendorOutcome"]).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "REFUSED").count(), 2, "{after}");
    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn a_renewal_the_vendor_refused_expires_the_subscription_at_its_term_end() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    let before = state(&app, &reseller, &subject).await["termEnd"].clone();
    // The control does not renew.
    app.data(
        &reseller,
        "mutation($id: ID!) { setAutoRenew(id: $id, autoRenew: false, idempotencyKey: \"off\") { replayed } }",
        json!({"id": control}),
    )
    .await;
    let mut periods = vec![];
    let mut month = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    while month <= chrono::NaiveDate::from_ymd_opt(2027, 12, 1).unwrap() {
        periods.push(month);
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    vendor.answer(subscription_id(&subject), Some(422));
    for month in periods {
        app.clock.set(month.and_hms_opt(0, 30, 0).unwrap().and_utc());
        if month == chrono::NaiveDate::from_ymd_opt(2027, 11, 1).unwrap() {
            // Billed in advance on the 1st, renewed (locally) on the 2nd, refused by the vendor.
            run(&app, "2027-11").await;
            app.clock.set("2027-11-02T09:30:00Z".parse().unwrap());
            subscriptions::renew_due(&app.domain).await.unwrap();
            app.run_jobs().await;
            continue;
        }
        app.clock.set(month.and_hms_opt(0, 30, 0).unwrap().and_utc());
        subscriptions::renew_due(&app.domain).await.unwrap();
        run(&app, &month.format("%Y-%m").to_string()).await;
    }
    let after = state(&app, &app.operator(), &subject).await;
    assert_eq!(after["status"], "EXPIRED", "{after}");
    assert_eq!(after["termEnd"], before, "the term the vendor kept: {after}");
    assert_eq!(state(&app, &app.operator(), &control).await["status"], "EXPIRED");
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn a_change_the_vendor_never_confirmed_is_out_of_sync_and_held_until_an_operator_settles_it() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-10T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(503));
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 5, "k": "up"})).await;
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": control, "q": 5, "k": "up"})).await;
    app.run_jobs().await;
    let job = jobs(&app, &subject).await[0].clone();
    assert_eq!(job["status"], "DEAD");

    // Out of sync: the operator finds it and reads why; the reseller sees that it is, not the vendor's words.
    let operator = app.operator();
    let listed = app
        .data(&operator, "{ subscriptions(filter: {outOfSync: true}) { edges { node { id syncIssue } } } }", json!({}))
        .await;
    let listed = listed["subscriptions"]["edges"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["node"]["id"], subject.as_str());
    let seen = state(&app, &reseller, &subject).await;
    assert_eq!(seen["outOfSync"], true);
    assert_eq!(seen["quantity"], 5, "the intent stays until the outcome is known");
    assert!(!seen["syncIssue"].as_str().unwrap().contains("127.0.0.1"), "{seen}");

    // Held from billing while nobody knows, over three runs: nothing for the three seats.
    for (at, period) in
        [("2026-11-30T23:00:00Z", "2026-11"), ("2026-12-01T00:30:00Z", "2026-12"), ("2027-01-01T00:30:00Z", "2027-01")]
    {
        app.clock.set(at.parse().unwrap());
        run(&app, period).await;
    }
    let held = totals(&app, &subject).await;
    assert!(held.0 < totals(&app, &control).await.0, "the unconfirmed seats were billed: {held:?}");

    // The operator retries on 20 January and the vendor confirms: billed from the change,
    // for every month billed meanwhile, like the control.
    app.clock.set("2027-01-20T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), None);
    app.data(&operator, RETRY, json!({"id": job["id"]})).await;
    app.run_jobs().await;
    let settled = state(&app, &reseller, &subject).await;
    assert_eq!(settled["outOfSync"], false, "{settled}");
    assert_eq!(settled["syncIssue"], Value::Null);
    for (at, period) in [("2027-02-01T00:30:00Z", "2027-02"), ("2027-03-01T00:30:00Z", "2027-03")] {
        app.clock.set(at.parse().unwrap());
        run(&app, period).await;
    }
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

/// Another two seats of vendor B's offer for customer B, provisioned.
async fn another(app: &TestApp, f: &Fixture, key: &str) -> String {
    let placed = place(app, &reseller(app, f), order_input(f.customer_b, &[(f.offer_b, 2)]), key).await;
    app.run_jobs().await;
    placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned()
}

async fn retry_last_job(app: &TestApp, subscription: &str) {
    let job = jobs(app, subscription).await[0].clone();
    assert_eq!(job["status"], "DEAD", "{job}");
    app.data(&app.operator(), RETRY, json!({"id": job["id"]})).await;
    app.run_jobs().await;
}

#[tokio::test]
async fn a_cancellation_confirmed_months_later_refunds_every_month_billed_meanwhile() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, _) = two_subscriptions(&app, &f).await;
    let control = another(&app, &f, "cancelled control").await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-05T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(503));
    app.data(&reseller, CANCEL, json!({"id": subject, "k": "cancel"})).await;
    app.data(&reseller, CANCEL, json!({"id": control, "k": "cancel"})).await;
    app.run_jobs().await;
    bill_four_months(&app).await;
    app.clock.set("2027-02-10T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), None);
    retry_last_job(&app, &subject).await;
    for (at, period) in [("2027-03-01T00:30:00Z", "2027-03"), ("2027-04-01T00:30:00Z", "2027-04")] {
        app.clock.set(at.parse().unwrap());
        run(&app, period).await;
    }
    assert_eq!(state(&app, &reseller, &subject).await["status"], "CANCELLED");
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn a_renewal_confirmed_after_its_runs_is_billed_at_the_renewed_prices_like_one_confirmed_at_once() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    // New prices from October 2027: the renewed terms take them.
    app.data(
        &app.operator(),
        "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"EUR\", cost: \"9.00\", listPrice: \"12.00\", effectiveFrom: \"2027-10-01T00:00:00Z\"}) { id } }",
        json!({"o": f.offer_b.to_string()}),
    )
    .await;
    // Seats added in the term before, while the renewal's outcome is unknown for months.
    let mut month = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    while month <= chrono::NaiveDate::from_ymd_opt(2028, 3, 1).unwrap() {
        app.clock.set(month.and_hms_opt(0, 30, 0).unwrap().and_utc());
        run(&app, &month.format("%Y-%m").to_string()).await;
        if month == chrono::NaiveDate::from_ymd_opt(2027, 11, 1).unwrap() {
            app.clock.set("2027-11-02T09:30:00Z".parse().unwrap());
            vendor.answer(subscription_id(&subject), Some(503));
            subscriptions::renew_due(&app.domain).await.unwrap();
            app.run_jobs().await;
            assert_eq!(state(&app, &reseller, &subject).await["outOfSync"], true);
            vendor.answer(subscription_id(&subject), None);
            app.clock.set("2027-11-20T10:00:00Z".parse().unwrap());
            app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 4, "k": "more"})).await;
            app.data(&reseller, CHANGE_QUANTITY, json!({"id": control, "q": 4, "k": "more"})).await;
            app.run_jobs().await;
        }
        if month == chrono::NaiveDate::from_ymd_opt(2028, 1, 1).unwrap() {
            app.clock.set("2028-01-15T10:00:00Z".parse().unwrap());
            let renewal = jobs(&app, &subject).await.into_iter().find(|j| j["action"] == "RENEW").unwrap();
            app.data(&app.operator(), RETRY, json!({"id": renewal["id"]})).await;
            app.run_jobs().await;
            assert_eq!(state(&app, &reseller, &subject).await["outOfSync"], false);
        }
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn an_abandoned_unconfirmed_change_is_reverted_and_never_billed() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-10T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(503));
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 5, "k": "up"})).await;
    app.run_jobs().await;
    let job = jobs(&app, &subject).await[0].clone();
    assert_eq!(job["status"], "DEAD");
    const ABANDON: &str = "mutation($id: ID!) { abandonProvisioningJob(jobId: $id) { status } }";
    // Only the operator may declare what the vendor did.
    let code = app.error_code(Some(&reseller), ABANDON, json!({"id": job["id"]})).await;
    assert_eq!(code, "FORBIDDEN");
    app.data(&app.operator(), ABANDON, json!({"id": job["id"]})).await;
    let after = state(&app, &reseller, &subject).await;
    assert_eq!((after["quantity"].clone(), after["outOfSync"].clone()), (json!(2), json!(false)), "{after}");
    // A reverted change cannot be sent again by a retry: it would be made behind everyone's back.
    let code = app.error_code(Some(&app.operator()), RETRY, json!({"id": job["id"]})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

#[tokio::test]
async fn a_cancel_queued_behind_a_refused_renewal_leaves_the_subscription_expired() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, _control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    let before = state(&app, &reseller, &subject).await["termEnd"].clone();
    app.clock.set("2027-11-02T09:30:00Z".parse().unwrap());
    subscriptions::renew_due(&app.domain).await.unwrap();
    // Cancelled within 168 hours of the (local) renewal, before the RENEW job ran.
    let cancelled = app.data(&reseller, CANCEL, json!({"id": subject, "k": "cancel"})).await;
    assert_eq!(cancelled["cancelSubscription"]["subscription"]["status"], "CANCELLED");
    vendor.answer(subscription_id(&subject), Some(422));
    app.run_jobs().await;
    let after = state(&app, &reseller, &subject).await;
    assert_eq!(after["status"], "EXPIRED", "the vendor renewed nothing and cancelled nothing: {after}");
    assert_eq!(after["termEnd"], before);
    // Nothing is due again: the scheduler does not renew it a second time.
    assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (0, 0));
}

/// A 401 (or 403, 404…) says the call never reached the vendor's decision: the change is
/// unconfirmed, not refused, so fixing the connector and retrying can still make it.
#[tokio::test]
async fn an_endpoint_error_is_not_a_refusal_the_change_is_unconfirmed_until_retried() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-05T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(401));
    app.data(&reseller, CANCEL, json!({"id": subject, "k": "cancel"})).await;
    app.data(&reseller, CANCEL, json!({"id": control, "k": "cancel"})).await;
    app.run_jobs().await;
    let after = state(&app, &app.operator(), &subject).await;
    assert_eq!((after["status"].clone(), after["outOfSync"].clone()), (json!("CANCELLED"), json!(true)), "{after}");
    vendor.answer(subscription_id(&subject), None);
    retry_last_job(&app, &subject).await;
    assert_eq!(state(&app, &reseller, &subject).await["outOfSync"], false);
    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}

/// A refused decrease gives its seats back to the batch it took them from, not to a newer
/// one whose window runs later.
#[tokio::test]
async fn a_refused_decrease_gives_back_the_seats_it_took_where_it_took_them() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, _) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    vendor.answer(subscription_id(&subject), Some(422));
    app.clock.set("2026-11-03T10:00:00Z".parse().unwrap());
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 5, "k": "up"})).await;
    app.run_jobs().await;
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 1, "k": "down"})).await;
    app.run_jobs().await;
    let batches: Vec<(i32, i32)> = entity::seat_batch::Entity::find()
        .filter(entity::seat_batch::Column::SubscriptionId.eq(subscription_id(&subject)))
        .order_by_asc(entity::seat_batch::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
        .iter()
        .map(|b| (b.quantity, b.remaining))
        .collect();
    assert_eq!(batches, [(2, 2), (0, 0)], "the purchase's two seats back; the refused three never existed");
}

/// A retried quantity change sends the count a later change set: the change it was made for,
/// never confirmed, is billed as never made.
#[tokio::test]
async fn a_retry_that_sends_a_later_count_bills_the_unconfirmed_change_as_never_made() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subject, control) = two_subscriptions(&app, &f).await;
    let reseller = reseller(&app, &f);
    app.clock.set("2026-11-10T10:00:00Z".parse().unwrap());
    vendor.answer(subscription_id(&subject), Some(503));
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 5, "k": "to 5"})).await;
    app.run_jobs().await;
    let unconfirmed = jobs(&app, &subject).await[0].clone();
    vendor.answer(subscription_id(&subject), None);
    app.clock.set("2026-11-20T10:00:00Z".parse().unwrap());
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": subject, "q": 7, "k": "to 7"})).await;
    app.data(&reseller, CHANGE_QUANTITY, json!({"id": control, "q": 7, "k": "to 7"})).await;
    app.run_jobs().await;
    app.data(&app.operator(), RETRY, json!({"id": unconfirmed["id"]})).await;
    app.run_jobs().await;
    let after = state(&app, &reseller, &subject).await;
    assert_eq!((after["quantity"].clone(), after["outOfSync"].clone()), (json!(7), json!(false)), "{after}");
    bill_four_months(&app).await;
    assert_eq!(totals(&app, &subject).await, totals(&app, &control).await);
}
