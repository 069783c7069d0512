//! Billing defects found from outside (issue #8), each reproduced by the test named after
//! the behaviour that was wrong.

use chrono::Duration;
use serde_json::{Value, json};
use switchyard::domain::{Role, subscriptions};

use crate::billing::{invoices, run};
use crate::helpers::{ExtraOffer, Fixture, TestApp, count_rows, dec, spawn_app};
use crate::orders::{order_input, place};
use crate::provisioning::{FakeVendor, Script, order_from_http_vendor};

/// Places and provisions `quantity` seats of `offer` for customer A at the clock's time.
async fn bought(app: &TestApp, f: &Fixture, offer: i64, quantity: i32, key: &str) -> String {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = place(app, &reseller, order_input(f.customer_a, &[(offer, quantity)]), key).await;
    app.run_jobs().await;
    placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned()
}

async fn auto_renew_off(app: &TestApp, f: &Fixture, subscription: &str) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!) { setAutoRenew(id: $id, autoRenew: false, idempotencyKey: \"off\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
}

/// Sets a subscription of reseller A to `seats`.
async fn set_seats(app: &TestApp, f: &Fixture, subscription: &str, seats: i32) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!, $q: Int!) { changeSubscriptionQuantity(id: $id, quantity: $q, idempotencyKey: \"up\") { replayed } }",
        json!({"id": subscription, "q": seats}),
    )
    .await;
    app.run_jobs().await;
}

fn amounts(invoice: &Value) -> Vec<String> {
    invoice["lines"].as_array().unwrap().iter().map(|l| l["amount"]["amount"].as_str().unwrap().to_owned()).collect()
}

/// #8.1: the term end, not the status at run time, bounds what is billed.
#[tokio::test]
async fn a_subscription_that_does_not_renew_is_not_billed_after_its_term_ends() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // A P1M bought 25 November with auto-renew off: its term ends 25 December.
    app.clock.set("2026-11-25T10:00:00Z".parse().unwrap());
    let monthly = bought(&app, &f, f.offers_a[1], 3, "m").await;
    auto_renew_off(&app, &f, &monthly).await;
    // A P1M bought 1 December 00:00: its term ends on the 1st of January exactly.
    app.clock.set("2026-12-01T00:00:00Z".parse().unwrap());
    let on_the_first = bought(&app, &f, f.offers_a[1], 1, "first").await;
    auto_renew_off(&app, &f, &on_the_first).await;
    run(&app, "2026-11").await;
    run(&app, "2026-12").await;
    // January's run comes before the scheduler has expired either of them.
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    let january = run(&app, "2027-01").await;
    assert_eq!(january["chargesCreated"], 0, "nothing is in force in January: {january}");
    // Nor after it did.
    assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (0, 2));
    app.run_jobs().await;
    assert_eq!(run(&app, "2027-01").await["chargesCreated"], 0);
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let december = invoices(&app, &reseller, json!({"period": "2026-12"})).await;
    // 3 seats for 24 of 31 days: round(10 / 31 × 24) = 7.74 × 3; 1 seat for all 31 days.
    assert_eq!(amounts(&december[0]), vec!["23.22", "10.00"], "{december:?}");
}

async fn term_end(app: &TestApp, token: &str, subscription: &str) -> Value {
    let query = "query($id: ID!) { subscription(id: $id) { termEnd } }";
    app.data(token, query, json!({"id": subscription})).await["subscription"]["termEnd"].clone()
}

/// #8.10: a term bought on the 31st renews on the last day of shorter months and returns
/// to the 31st.
#[tokio::test]
async fn month_end_anchors_do_not_drift_on_renewal() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    app.clock.set("2027-01-31T10:00:00Z".parse().unwrap());
    let subscription = bought(&app, &f, f.offers_a[1], 1, "eom").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    assert_eq!(term_end(&app, &reseller, &subscription).await, "2027-02-28T10:00:00+00:00");
    let mut ends = Vec::new();
    for _ in 0..4 {
        let end: chrono::DateTime<chrono::Utc> =
            term_end(&app, &reseller, &subscription).await.as_str().unwrap().parse().unwrap();
        app.clock.set(end + Duration::minutes(5));
        assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (1, 0));
        app.run_jobs().await;
        ends.push(term_end(&app, &reseller, &subscription).await.as_str().unwrap().to_owned());
    }
    assert_eq!(
        ends,
        vec![
            "2027-03-31T10:00:00+00:00",
            "2027-04-30T10:00:00+00:00",
            "2027-05-31T10:00:00+00:00",
            "2027-06-30T10:00:00+00:00"
        ]
    );
}

const VOID: &str = "mutation($id: ID!) { voidInvoice(id: $id) { status } }";
const ISSUE: &str = "mutation($id: ID!) { issueInvoice(id: $id) { number } }";
const CREDIT: &str = "mutation($id: ID!) { creditInvoice(id: $id) { id kind total { amount } } }";

/// #8.7: an issued invoice is never voided; corrections are credit notes.
#[tokio::test]
async fn an_issued_invoice_cannot_be_voided_and_a_credit_note_cannot_be_credited() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = json!({"id": invoice["id"]});
    app.data(&reseller, ISSUE, id.clone()).await;
    assert_eq!(app.error_code(Some(&reseller), VOID, id.clone()).await, "BAD_USER_INPUT", "issued: credit it instead");
    let note = app.data(&reseller, CREDIT, id).await["creditInvoice"].clone();
    app.data(&reseller, ISSUE, json!({"id": note["id"]})).await;
    let code = app.error_code(Some(&reseller), CREDIT, json!({"id": note["id"]})).await;
    assert_eq!(code, "BAD_USER_INPUT", "a credit note is not itself credited");
}

/// #8.7: voiding a DRAFT releases its charges to the next run, on both sides.
#[tokio::test]
async fn voiding_a_draft_releases_its_charges_to_the_next_run() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let to_customer = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let data = app.data(&reseller, VOID, json!({"id": to_customer["id"]})).await;
    assert_eq!(data["voidInvoice"]["status"], "VOID");
    let again = run(&app, "2026-11").await;
    assert_eq!(again["chargesCreated"], 0, "the charge exists already");
    let drafts = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "status": "DRAFT"})).await;
    assert_eq!(drafts.len(), 1, "the released charge is on a new draft: {drafts:?}");
    assert_eq!(amounts(&drafts[0]), vec!["48.35"]);
    assert_eq!(count_rows(&app, "charges").await, 1);
}

/// #8.2: charges whose period's invoice was issued go onto a new draft, not nowhere.
#[tokio::test]
async fn charges_for_a_period_whose_invoice_was_issued_go_onto_a_new_draft() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    let operator = app.operator();
    let to_reseller = invoices(&app, &operator, json!({"resellerId": f.reseller_a.to_string(), "period": "2026-11"}))
        .await
        .into_iter()
        .find(|i| i["recipientResellerId"] == json!(f.reseller_a.to_string()))
        .unwrap();
    app.data(&operator, ISSUE, json!({"id": to_reseller["id"]})).await;
    // +3 seats on 25 November, billed by a second November run.
    app.clock.set("2026-11-25T12:00:00Z".parse().unwrap());
    set_seats(&app, &f, &subscription, 8).await;
    assert_eq!(run(&app, "2026-11").await["chargesCreated"], 1);
    let operator_invoices =
        invoices(&app, &operator, json!({"resellerId": f.reseller_a.to_string(), "period": "2026-11"})).await;
    let to_reseller: Vec<&Value> =
        operator_invoices.iter().filter(|i| i["recipientResellerId"] == json!(f.reseller_a.to_string())).collect();
    assert_eq!(to_reseller.len(), 2, "the issued one and a new draft: {to_reseller:?}");
    let draft = to_reseller.iter().find(|i| i["status"] == "DRAFT").unwrap();
    // 6 days of 30 at wholesale: round(9.20 / 30 × 6) = 1.84 × 3.
    assert_eq!(amounts(draft), vec!["5.52"]);
    // The customer's draft carries the same change at retail.
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let to_customer = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    assert_eq!(amounts(&to_customer), vec!["48.35", "6.00"]);
}

/// Retail charged so far for a subscription, in the order the charges were made.
async fn retail_charged(app: &TestApp, subscription: &str) -> Vec<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .order_by_asc(entity::charge::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
        .iter()
        .map(|c| c.amount_retail.0.normalize().to_string())
        .collect()
}

/// Found by the simulator: an UPFRONT (or ANNUAL) renewal later in a month than that
/// month's run was never billed, because cycles were computed from the row's current term.
#[tokio::test]
async fn a_renewal_later_in_the_month_than_its_run_is_billed_in_advance() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f
        .offer(
            &app,
            ExtraOffer {
                sku: "A-P1Y-U",
                term: entity::enums::Term::P1y,
                frequency: entity::enums::BillingFrequency::Upfront,
                max_quantity: 100,
                cost: "100",
                list: "120",
                usage: None,
            },
        )
        .await;
    app.clock.set("2026-11-20T10:00:00Z".parse().unwrap());
    let subscription = bought(&app, &f, offer, 2, "u").await;
    run(&app, "2026-11").await;
    // November 2027's run, on the 1st, bills the term renewing on the 20th in advance.
    app.clock.set("2027-11-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-11").await;
    app.clock.set("2027-11-21T00:10:00Z".parse().unwrap());
    assert_eq!(subscriptions::renew_due(&app.domain).await.unwrap(), (1, 0));
    app.run_jobs().await;
    app.clock.set("2027-12-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-12").await;
    assert_eq!(retail_charged(&app, &subscription).await, vec!["240", "240"]);
}

/// Found by the simulator's model: seats added before an anniversary that was billed in
/// advance count for the new cycle too.
#[tokio::test]
async fn seats_added_before_an_anniversary_billed_in_advance_are_billed_for_the_new_cycle() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // P3Y billed annually at 10.00 a year, 2 seats bought 20 November 2026.
    app.clock.set("2026-11-20T10:00:00Z".parse().unwrap());
    let subscription = bought(&app, &f, f.offers_a[2], 2, "a").await;
    run(&app, "2026-11").await;
    app.clock.set("2027-11-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-11").await;
    // Three more seats on 10 November, ten days before the second year starts.
    app.clock.set("2027-11-10T10:00:00Z".parse().unwrap());
    set_seats(&app, &f, &subscription, 5).await;
    app.clock.set("2027-12-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-12").await;
    // 3 × round(10 × 10 / 365) = 3 × 0.27 for the first year's last days; 3 × 10.00 for the second.
    assert_eq!(retail_charged(&app, &subscription).await, vec!["20", "20", "0.81", "30"]);
}

async fn set_auto_renew(app: &TestApp, f: &Fixture, subscription: &str, on: bool, key: &str) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!, $on: Boolean!, $key: String!) { setAutoRenew(id: $id, autoRenew: $on, idempotencyKey: $key) { replayed } }",
        json!({"id": subscription, "on": on, "key": key}),
    )
    .await;
}

/// The sum of a subscription's retail charges so far.
async fn retail_total(app: &TestApp, subscription: &str) -> rust_decimal::Decimal {
    retail_charged(app, subscription).await.iter().map(|a| a.parse::<rust_decimal::Decimal>().unwrap()).sum()
}

/// A P1M (10.00 a month at retail) bought 15 November 10:00: November's run bills
/// round(10 × 16/30) = 5.33; December's run comes on the 1st, before the term ends on the
/// 15th; the scheduler renews or expires it at 10:05 on the 15th.
async fn renewing_mid_december(app: &TestApp, f: &Fixture) -> String {
    app.clock.set("2026-11-15T10:00:00Z".parse().unwrap());
    let subscription = bought(app, f, f.offers_a[1], 1, "p1m").await;
    run(app, "2026-11").await;
    subscription
}

async fn december_then_january(app: &TestApp, between: impl std::future::Future<Output = ()>) {
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    run(app, "2026-12").await;
    between.await;
    app.clock.set("2026-12-15T10:05:00Z".parse().unwrap());
    subscriptions::renew_due(&app.domain).await.unwrap();
    app.run_jobs().await;
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    run(app, "2027-01").await;
}

/// #8.4: time after a renewal is charged at the renewed term's prices, even when it was
/// billed in advance before the renewal re-read them.
#[tokio::test]
async fn a_renewal_at_new_prices_charges_the_renewed_time_at_them() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = renewing_mid_december(&app, &f).await;
    // The list price doubles from 1 December: the term renewing on the 15th takes it.
    app.data(
        &app.operator(),
        "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"16.00\", listPrice: \"20.00\", effectiveFrom: \"2026-12-01T00:00:00Z\"}) { id } }",
        json!({"o": f.offers_a[1].to_string()}),
    )
    .await;
    december_then_january(&app, async {}).await;
    // December: 1–14 at 10.00 (round(10 × 14/31) = 4.52), 15–31 at 20.00 (round(20 × 17/31)
    // = 10.97); January the same at 20.00: 9.03 + 10.97.
    assert_eq!(
        retail_total(&app, &subscription).await,
        dec("5.33") + dec("4.52") + dec("10.97") + dec("9.03") + dec("10.97")
    );
}

/// #8.4: auto-renew turned off after the month was billed in advance: the days after the
/// term's end are refunded.
#[tokio::test]
async fn auto_renew_turned_off_after_the_month_was_billed_refunds_the_days_after_the_term_end() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = renewing_mid_december(&app, &f).await;
    december_then_january(&app, async {
        app.clock.set("2026-12-05T10:00:00Z".parse().unwrap());
        set_auto_renew(&app, &f, &subscription, false, "off").await;
    })
    .await;
    // November 5.33, December 1–14 (4.52); nothing after the 15th.
    assert_eq!(retail_total(&app, &subscription).await, dec("5.33") + dec("4.52"));
}

/// #8.4: auto-renew turned back on after the month was billed up to the term's end: the
/// renewed days are billed.
#[tokio::test]
async fn auto_renew_turned_back_on_bills_the_renewed_term() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = renewing_mid_december(&app, &f).await;
    set_auto_renew(&app, &f, &subscription, false, "off").await;
    december_then_january(&app, async {
        app.clock.set("2026-12-05T10:00:00Z".parse().unwrap());
        set_auto_renew(&app, &f, &subscription, true, "on").await;
    })
    .await;
    // November 5.33; December 4.52 + 5.48; January the same.
    assert_eq!(retail_total(&app, &subscription).await, dec("5.33") + dec("10.00") + dec("10.00"));
}

async fn set_tax_rate(app: &TestApp, f: &Fixture, rate: &str) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!, $rate: Decimal!) { updateCustomer(id: $id, input: {taxRate: $rate}) { id } }",
        json!({"id": f.customer_a.to_string(), "rate": rate}),
    )
    .await;
}

/// #8.8: a DRAFT follows the customer's tax rate until it is issued: its rate, its tax and
/// its total agree with each other.
#[tokio::test]
async fn a_draft_follows_the_customers_tax_rate_until_it_is_issued() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    set_tax_rate(&app, &f, "0.23").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let query = "query($f: InvoiceFilterInput) { invoices(first: 5, filter: $f) { edges { node { id taxRate subtotal { amount } tax { amount } total { amount } } } } }";
    let filter = json!({"f": {"customerId": f.customer_a.to_string()}});
    let id = app.data(&reseller, query, filter.clone()).await["invoices"]["edges"][0]["node"]["id"].clone();
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": id})).await;
    let invoice = app.data(&reseller, query, filter).await["invoices"]["edges"][0]["node"].clone();
    // 48.35 at 23 % = 11.12 (at the draft's first rate, 19 %, it was 9.19).
    assert_eq!(invoice["taxRate"], "0.23", "{invoice}");
    assert_eq!(invoice["tax"]["amount"], "11.12", "{invoice}");
    assert_eq!(invoice["total"]["amount"], "59.47", "{invoice}");
}

/// #8.8: the preview of a period already issued is what was issued, whatever the
/// customer's tax rate is now.
#[tokio::test]
async fn the_preview_of_an_issued_period_is_its_invoice_after_a_tax_rate_change() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": invoice["id"]})).await;
    set_tax_rate(&app, &f, "0.07").await;
    let preview = app
        .data(
            &reseller,
            "query($c: ID!) { previewBilling(customerId: $c, period: \"2026-11\") { subtotal { amount } tax { amount } total { amount } } }",
            json!({"c": f.customer_a.to_string()}),
        )
        .await["previewBilling"]
        .clone();
    assert_eq!(preview["tax"], invoice["tax"], "{preview} vs {invoice}");
    assert_eq!(preview["total"], invoice["total"]);
}

/// #8.13: a run bills more unbilled usage records than a statement may bind parameters
/// (65,535 on PostgreSQL, 32,766 on SQLite).
#[tokio::test]
async fn a_run_bills_more_usage_records_than_a_statement_can_bind() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f
        .offer(
            &app,
            ExtraOffer {
                sku: "A-METERED",
                term: entity::enums::Term::P1m,
                frequency: entity::enums::BillingFrequency::Monthly,
                max_quantity: 1,
                cost: "0",
                list: "0",
                usage: Some(("calls", "0.057", "0.067")),
            },
        )
        .await;
    let subscription = bought(&app, &f, offer, 1, "metered").await;
    let records = 70_000;
    let (quantity, at) = if crate::helpers::is_postgres() {
        ("CAST('1' AS NUMERIC)", "CAST('2026-11-10 00:00:00+00:00' AS TIMESTAMPTZ)")
    } else {
        ("'1'", "'2026-11-10 00:00:00+00:00'")
    };
    app.domain
        .db
        .execute_unprepared(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {records}) \
             INSERT INTO usage_records (reseller_id, customer_id, subscription_id, external_id, meter, quantity, occurred_at, received_at) \
             SELECT {r}, {c}, {subscription}, 'bulk-' || CAST(i AS VARCHAR(10)), 'calls', {quantity}, {at}, {at} FROM n",
            r = f.reseller_a,
            c = f.customer_a,
        ))
        .await
        .unwrap();
    app.clock.set("2026-12-01T06:00:00Z".parse().unwrap());
    let (_, body) = app.post(Some(&app.operator()), crate::billing::RUN, json!({"p": "2026-12"})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // 70,000 calls × 0.067 = 4,690.00, billed once; every record marked billed.
    let charged = retail_charged(&app, &subscription).await;
    assert!(charged.contains(&"4690".to_owned()), "{charged:?}");
    let unbilled = app
        .domain
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.domain.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM usage_records WHERE billed_period IS NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(unbilled, 0);
}

const CREDIT_LINES: &str = "mutation($id: ID!, $lines: [CreditLineInput!]) {
  creditInvoice(id: $id, lines: $lines) { id kind subtotal { amount } tax { amount } total { amount }
    lines { lineNumber quantity amount { amount } } } }";

/// #8.7: a credit note may credit chosen lines and quantities, never more than is left of
/// the invoice; crediting "in full" credits what is left.
#[tokio::test]
async fn an_issued_invoice_is_credited_in_part_and_never_beyond_what_is_left() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = invoice["id"].clone();
    app.data(&reseller, ISSUE, json!({"id": id})).await;
    // 2 of the 5 seats at 9.67: 19.34, tax round(19.34 × 19 %) = 3.67.
    let part = app
        .data(&reseller, CREDIT_LINES, json!({"id": id, "lines": [{"lineNumber": 1, "quantity": "2"}]}))
        .await["creditInvoice"]
        .clone();
    assert_eq!(part["kind"], "CREDIT_NOTE");
    assert_eq!((&part["subtotal"]["amount"], &part["tax"]["amount"]), (&json!("-19.34"), &json!("-3.67")), "{part}");
    assert_eq!(part["lines"][0]["quantity"], "-2");
    let too_much = json!({"id": id, "lines": [{"lineNumber": 1, "quantity": "4"}]});
    assert_eq!(app.error_code(Some(&reseller), CREDIT_LINES, too_much).await, "BAD_USER_INPUT", "only 3 are left");
    let no_line = json!({"id": id, "lines": [{"lineNumber": 9}]});
    assert_eq!(app.error_code(Some(&reseller), CREDIT_LINES, no_line).await, "BAD_USER_INPUT");
    // In full: what is left, 48.35 − 19.34.
    let rest = app.data(&reseller, CREDIT_LINES, json!({"id": id})).await["creditInvoice"].clone();
    assert_eq!(rest["subtotal"]["amount"], "-29.01", "{rest}");
    assert_eq!(rest["lines"][0]["quantity"], "-3");
    let code = app.error_code(Some(&reseller), CREDIT_LINES, json!({"id": id})).await;
    assert_eq!(code, "CONFLICT", "nothing is left to credit");
}

/// #8.9: a change is charged once, even by runs of two periods at once: a charge's key is
/// unique per subscription, whatever the period it lands on.
#[tokio::test]
async fn a_change_is_charged_once_even_by_runs_of_two_periods_at_once() {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = bought(&app, &f, f.offers_a[0], 5, "o").await;
    run(&app, "2026-11").await;
    app.clock.set("2026-11-25T12:00:00Z".parse().unwrap());
    set_seats(&app, &f, &subscription, 8).await;
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    let operator = app.operator();
    let run_doc = crate::billing::RUN;
    let (a, b) = tokio::join!(
        app.post(Some(&operator), run_doc, json!({"p": "2026-11"})),
        app.post(Some(&operator), run_doc, json!({"p": "2026-12"}))
    );
    assert!(a.1.get("errors").is_none() && b.1.get("errors").is_none(), "{a:?} {b:?}");
    let id: i64 = subscription.parse().unwrap();
    let charges = entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(id))
        .all(&app.domain.db)
        .await
        .unwrap();
    let increase: Vec<_> = charges.iter().filter(|c| c.description.starts_with("seats added")).collect();
    assert_eq!(increase.len(), 1, "{charges:?}");
    // And the database refuses the same key under another period, whatever the race.
    let mut duplicate: entity::charge::ActiveModel = increase[0].clone().into();
    duplicate.id = NotSet;
    duplicate.period = Set(if increase[0].period == "2026-11" { "2026-12".into() } else { "2026-11".into() });
    duplicate.customer_invoice_id = Set(None);
    duplicate.reseller_invoice_id = Set(None);
    assert!(duplicate.insert(&app.domain.db).await.is_err(), "a second charge under the same key was accepted");
}

static NUMBER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// An ISSUED invoice from reseller A to customer A with `lines` of (quantity, amount), taxed
/// per invoice at `rate`; its id.
async fn issued_invoice(app: &TestApp, f: &Fixture, rate: &str, lines: &[(&str, &str)]) -> String {
    use entity::DbDecimal;
    use sea_orm::{ActiveModelTrait, NotSet, Set};
    let dec = crate::helpers::dec;
    let now = app.domain.clock.now();
    let subtotal: rust_decimal::Decimal = lines.iter().map(|(_, a)| dec(a)).sum();
    let tax = (subtotal * dec(rate)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let invoice = entity::invoice::ActiveModel {
        id: NotSet,
        kind: Set(entity::enums::InvoiceKind::Invoice),
        issuer_key: Set(format!("RSL{}", f.reseller_a)),
        issuer_reseller_id: Set(Some(f.reseller_a)),
        recipient_key: Set(format!("CUS{}", f.customer_a)),
        recipient_reseller_id: Set(None),
        recipient_customer_id: Set(Some(f.customer_a)),
        credited_invoice_id: Set(None),
        billing_run_id: Set(None),
        period: Set("2026-10".into()),
        currency: Set("USD".into()),
        status: Set(entity::enums::InvoiceStatus::Issued),
        number: Set(Some(format!("RSLA-2026-9{:05}", NUMBER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)))),
        number_year: Set(Some(2026)),
        tax_rate: Set(DbDecimal(dec(rate))),
        subtotal: Set(DbDecimal(subtotal)),
        tax: Set(DbDecimal(tax)),
        total: Set(DbDecimal(subtotal + tax)),
        issued_at: Set(Some(now)),
        paid_at: Set(None),
        voided_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        due_at: Set(None),
        parties: Set(None),
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    for (index, (quantity, amount)) in lines.iter().enumerate() {
        entity::invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(invoice.id),
            line_number: Set(index as i32 + 1),
            charge_id: Set(None),
            customer_id: Set(Some(f.customer_a)),
            subscription_id: Set(None),
            description: Set(format!("line {index}")),
            quantity: Set(DbDecimal(dec(quantity))),
            unit_price: Set(DbDecimal(dec(amount) / dec(quantity))),
            days_used: Set(None),
            days_in_period: Set(None),
            amount: Set(DbDecimal(dec(amount))),
            tax: Set(DbDecimal(dec("0"))),
            unit_cost: Set(DbDecimal(dec("0"))),
            unit_wholesale: Set(DbDecimal(dec("0"))),
            unit_retail: Set(DbDecimal(dec(amount) / dec(quantity))),
            source_currency: Set(None),
            source_amount: Set(None),
            exchange_rate: Set(None),
            service_start: Set(None),
            service_end: Set(None),
            product_name: Set(None),
            cycle_unit_price: Set(None),
        }
        .insert(&app.domain.db)
        .await
        .unwrap();
    }
    invoice.id.to_string()
}

/// Credit notes of an invoice, summed: (subtotal, tax, total).
async fn credited(app: &TestApp, invoice: &str) -> (String, String, String) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let notes = entity::invoice::Entity::find()
        .filter(entity::invoice::Column::CreditedInvoiceId.eq(invoice.parse::<i64>().unwrap()))
        .all(&app.domain.db)
        .await
        .unwrap();
    let sum = |f: fn(&entity::invoice::Model) -> rust_decimal::Decimal| {
        notes.iter().map(f).sum::<rust_decimal::Decimal>().normalize().to_string()
    };
    (sum(|n| n.subtotal.0), sum(|n| n.tax.0), sum(|n| n.total.0))
}

/// Found by review: credit notes never credit more tax, more than a mixed invoice's
/// subtotal, or more than a line piece by piece, than the invoice holds.
#[tokio::test]
async fn credit_notes_never_credit_more_than_the_invoice_in_tax_in_total_or_piece_by_piece() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let credit = |id: &str, lines: Value| json!({"id": id, "lines": lines});
    // DOMAIN.md's example: 55.55 and 11.11 at 23 %: tax 15.33, total 81.99. Line by line,
    // the tax credited is still 15.33.
    let taxed = issued_invoice(&app, &f, "0.23", &[("1", "55.55"), ("1", "11.11")]).await;
    app.data(&reseller, CREDIT_LINES, credit(&taxed, json!([{"lineNumber": 1}]))).await;
    app.data(&reseller, CREDIT_LINES, credit(&taxed, json!([{"lineNumber": 2}]))).await;
    assert_eq!(credited(&app, &taxed).await, ("-66.66".into(), "-15.33".into(), "-81.99".into()));
    // A charge of 100 and a refund of 80: the charge alone would credit five times the
    // invoice; the refund alone would charge the customer.
    let mixed = issued_invoice(&app, &f, "0", &[("1", "100"), ("-1", "-80")]).await;
    for line in [1, 2] {
        let code = app.error_code(Some(&reseller), CREDIT_LINES, credit(&mixed, json!([{"lineNumber": line}]))).await;
        assert_eq!(code, "BAD_USER_INPUT", "line {line}");
    }
    app.data(&reseller, CREDIT_LINES, json!({"id": mixed})).await;
    assert_eq!(credited(&app, &mixed).await, ("-20".into(), "0".into(), "-20".into()));
    // 55 units for 3.69 (0.067 each), credited one unit at a time: 3.69 in all, never more.
    let usage = issued_invoice(&app, &f, "0", &[("55", "3.69")]).await;
    for _ in 0..55 {
        app.data(&reseller, CREDIT_LINES, credit(&usage, json!([{"lineNumber": 1, "quantity": "1"}]))).await;
    }
    assert_eq!(credited(&app, &usage).await, ("-3.69".into(), "0".into(), "-3.69".into()));
}

/// What the vendor charges us (cost) for a subscription so far, in all.
async fn cost_total(app: &TestApp, subscription: &str) -> rust_decimal::Decimal {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .all(&app.domain.db)
        .await
        .unwrap()
        .iter()
        .map(|c| c.amount_cost.0)
        .sum()
}

/// Two seats of vendor B's P1Y monthly offer (cost 7.40 a month) ordered 20 November from a
/// vendor that refuses them; November's and December's runs bill them while PENDING
/// (2 × round(7.40 × 11/30) = 5.42, then 14.80 in advance); the purchase fails on 2 December.
async fn refused_purchase(app: &TestApp, f: &Fixture) -> (FakeVendor, String, Value) {
    let vendor = FakeVendor::start(Script::Always(400, "customer not eligible")).await;
    app.clock.set("2026-11-20T10:00:00Z".parse().unwrap());
    let (_, subscription) = order_from_http_vendor(app, f, &vendor).await;
    run(app, "2026-11").await;
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    run(app, "2026-12").await;
    assert_eq!(cost_total(app, &subscription).await, dec("5.42") + dec("14.80"));
    app.clock.set("2026-12-02T10:00:00Z".parse().unwrap());
    app.run_jobs().await;
    let jobs = app
        .data(
            &app.operator(),
            "query($s: ID!) { provisioningJobs(subscriptionId: $s) { edges { node { id status } } } }",
            json!({"s": subscription}),
        )
        .await;
    let job = jobs["provisioningJobs"]["edges"][0]["node"].clone();
    assert_eq!(job["status"], "FAILED");
    (vendor, subscription, job["id"].clone())
}

const RETRY: &str = "mutation($id: ID!) { retryProvisioning(jobId: $id) { status } }";

/// #8.3: a purchase the vendor refused is billed nothing: what was billed while it was
/// pending is reversed, once, however often a retry fails again.
#[tokio::test]
async fn a_purchase_the_vendor_refused_is_billed_nothing_however_often_it_fails() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (_vendor, subscription, job) = refused_purchase(&app, &f).await;
    app.clock.set("2026-12-10T10:00:00Z".parse().unwrap());
    app.data(&app.operator(), RETRY, json!({"id": job})).await;
    app.run_jobs().await;
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    run(&app, "2027-01").await;
    assert_eq!(cost_total(&app, &subscription).await, dec("0"));
}

/// #8.3: a failed purchase that an operator retries successfully is billed from the day
/// the vendor provisioned it.
#[tokio::test]
async fn a_failed_purchase_retried_successfully_is_billed_from_its_provisioning() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (vendor, subscription, job) = refused_purchase(&app, &f).await;
    app.clock.set("2026-12-10T10:00:00Z".parse().unwrap());
    vendor.set_script(Script::FailFirst(0, 200, None));
    app.data(&app.operator(), RETRY, json!({"id": job})).await;
    app.run_jobs().await;
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    // 10–31 December: 2 × round(7.40 × 22/31) = 2 × 5.25; January 2 × 7.40.
    assert_eq!(cost_total(&app, &subscription).await, dec("10.50") + dec("14.80"));
}

const RECORD_USAGE: &str = "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { externalId status } }";

/// A P1M offer metered in GB (usage cost 0.80, list 0.92; no seat price), one seat bought
/// 2 November for customer A of reseller A (Gold tier: wholesale = cost × 1.15).
async fn metered(app: &TestApp, f: &Fixture) -> String {
    let offer = f
        .offer(
            app,
            ExtraOffer {
                sku: "A-STORAGE",
                term: entity::enums::Term::P1m,
                frequency: entity::enums::BillingFrequency::Monthly,
                max_quantity: 1,
                cost: "0",
                list: "0",
                usage: Some(("GB", "0.80", "0.92")),
            },
        )
        .await;
    app.clock.set("2026-11-02T10:00:00Z".parse().unwrap());
    bought(app, f, offer, 1, "storage").await
}

fn usage(subscription: &str, id: &str, quantity: &str, at: &str) -> Value {
    json!({"subscriptionId": subscription, "externalId": id, "meter": "GB", "quantity": quantity, "occurredAt": at})
}

/// Usage charges so far: (period, retail amount), in order.
async fn usage_charged(app: &TestApp, subscription: &str) -> Vec<(String, String)> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .filter(entity::charge::Column::ChargeKey.starts_with("usage:"))
        .order_by_asc(entity::charge::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.period.clone(), c.amount_retail.0.to_string()))
        .collect()
}

/// #8.5 (a–c): usage is billed in arrears by the next month's run, each record at the
/// price in force when it occurred, at retail by the reseller's default markup; each
/// record links to the charge that billed it; a backdated price point reprices nothing
/// already billed.
#[tokio::test]
async fn usage_is_billed_in_arrears_at_the_price_of_its_time_with_the_resellers_markup() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = metered(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(&reseller, "mutation { setRetailMarkup(markup: \"0.2\") { id } }", json!({})).await;
    let price_point = "mutation($o: ID!, $from: DateTime!, $cost: Decimal!, $list: Decimal!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"0\", listPrice: \"0\", usageUnitCost: $cost, usageUnitListPrice: $list, effectiveFrom: $from}) { id } }";
    let offer = {
        use sea_orm::EntityTrait;
        entity::subscription::Entity::find_by_id(subscription.parse::<i64>().unwrap())
            .one(&app.domain.db)
            .await
            .unwrap()
            .unwrap()
            .offer_id
    };
    app.data(
        &app.operator(),
        price_point,
        json!({"o": offer.to_string(), "from": "2026-11-15T00:00:00Z", "cost": "1.00", "list": "1.10"}),
    )
    .await;
    app.clock.set("2026-11-25T10:00:00Z".parse().unwrap());
    let records = json!({"r": [usage(&subscription, "a", "20", "2026-11-10T08:00:00Z"), usage(&subscription, "b", "17.5", "2026-11-20T08:00:00Z")]});
    app.data(&reseller, RECORD_USAGE, records).await;
    // November's run (late in the month) bills no November usage: that is December's.
    app.clock.set("2026-11-30T12:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    assert_eq!(usage_charged(&app, &subscription).await, vec![]);
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    run(&app, "2026-12").await;
    // 20 GB at 0.80 × 1.15 × 1.2 = 1.104 → 22.08; 17.5 GB at 1.00 × 1.15 × 1.2 = 1.38 → 24.15.
    let mut charged = usage_charged(&app, &subscription).await;
    charged.sort();
    assert_eq!(charged, vec![("2026-12".to_owned(), "22.08".to_owned()), ("2026-12".to_owned(), "24.15".to_owned())]);
    // Each record names the charge that billed it.
    {
        use sea_orm::EntityTrait;
        let records = entity::usage_record::Entity::find().all(&app.domain.db).await.unwrap();
        for record in records {
            let charge =
                entity::charge::Entity::find_by_id(record.charge_id.expect("linked")).one(&app.domain.db).await;
            assert!(charge.unwrap().unwrap().charge_key.starts_with("usage:2026-11:"));
        }
    }
    // A price point backdated to 1 November reprices nothing already billed.
    app.data(
        &app.operator(),
        price_point,
        json!({"o": offer.to_string(), "from": "2026-11-01T00:00:00Z", "cost": "5.00", "list": "9.00"}),
    )
    .await;
    run(&app, "2026-12").await;
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    assert_eq!(usage_charged(&app, &subscription).await.len(), 2);
}

/// #8.5 (d): usage before the subscription existed, in the future or after it ended is
/// refused with BAD_USER_INPUT naming the record.
#[tokio::test]
async fn usage_outside_the_subscriptions_life_is_refused() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = metered(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.clock.set("2026-11-03T10:00:00Z".parse().unwrap());
    for (at, why) in [("2026-11-01T10:00:00Z", "before the purchase"), ("2026-11-03T10:05:00Z", "in the future")] {
        let (_, body) =
            app.post(Some(&reseller), RECORD_USAGE, json!({"r": [usage(&subscription, "x", "1", at)]})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{why}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "records[0].occurredAt", "{why}");
    }
    // More than a billion units in one record; usage of a purchase the vendor has not
    // provisioned (yet, or ever).
    let (_, body) = app
        .post(
            Some(&reseller),
            RECORD_USAGE,
            json!({"r": [usage(&subscription, "x", "1000000001", "2026-11-03T09:00:00Z")]}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "records[0].quantity", "{body}");
    let offer = {
        use sea_orm::EntityTrait;
        let id = subscription.parse::<i64>().unwrap();
        entity::subscription::Entity::find_by_id(id).one(&app.domain.db).await.unwrap().unwrap().offer_id
    };
    let placed = place(&app, &reseller, order_input(f.customer_a, &[(offer, 1)]), "pending").await;
    let pending = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    let (_, body) = app
        .post(Some(&reseller), RECORD_USAGE, json!({"r": [usage(&pending, "p", "1", "2026-11-03T10:00:00Z")]}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "records[0].occurredAt", "pending: {body}");
    app.data(
        &reseller,
        "mutation($id: ID!) { cancelSubscription(id: $id, idempotencyKey: \"c\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
    app.run_jobs().await;
    app.clock.set("2026-11-04T10:00:00Z".parse().unwrap());
    let ok =
        app.data(&reseller, RECORD_USAGE, json!({"r": [usage(&subscription, "y", "1", "2026-11-03T09:00:00Z")]})).await;
    assert_eq!(ok["recordUsage"][0]["status"], "ACCEPTED", "before the cancellation");
    let (_, body) = app
        .post(Some(&reseller), RECORD_USAGE, json!({"r": [usage(&subscription, "z", "1", "2026-11-03T11:00:00Z")]}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "after the cancellation: {body}");
}

/// #8.6: a quote and the invoice of a full month agree to the cent: one rounding rule
/// (the proration rule for a whole cycle) for both.
#[tokio::test]
async fn a_quote_and_the_invoice_of_a_full_month_agree() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Wholesale 5.03 × 1.15 = 5.7845 a month: round(5.7845) × 3 = 17.34, not round(17.3535) = 17.35.
    let offer = f
        .offer(
            &app,
            ExtraOffer {
                sku: "A-ODD",
                term: entity::enums::Term::P1m,
                frequency: entity::enums::BillingFrequency::Monthly,
                max_quantity: 10,
                cost: "5.03",
                list: "7.00",
                usage: None,
            },
        )
        .await;
    app.clock.set("2026-12-01T00:00:00Z".parse().unwrap());
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let query =
        "query($input: PlaceOrderInput!) { quoteOrder(input: $input) { lines { amountWholesale { amount } } } }";
    let quote = app.data(&reseller, query, json!({"input": order_input(f.customer_a, &[(offer, 3)])})).await;
    let subscription = bought(&app, &f, offer, 3, "odd").await;
    run(&app, "2026-12").await;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let charges = entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(charges.len(), 1, "the purchase, for all of December");
    assert_eq!(quote["quoteOrder"]["lines"][0]["amountWholesale"]["amount"], charges[0].amount_wholesale.0.to_string());
}

/// An app whose distributor refunds cancellations in full within 24 hours, then by the hour.
async fn hourly_refunds() -> TestApp {
    crate::helpers::spawn_app_with(|server| {
        server.cancellation_refund = switchyard::config::CancellationRefundPolicy::FullWithin24hThenHourly;
    })
    .await
}

async fn cancel(app: &TestApp, f: &Fixture, subscription: &str) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!) { cancelSubscription(id: $id, idempotencyKey: \"cancel\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
    app.run_jobs().await;
}

/// #8.11: within 24 hours the refund is everything billed for the term, also across a
/// month boundary (bought 30 November 10:00, cancelled 1 December 09:00).
#[tokio::test]
async fn a_cancellation_within_24_hours_refunds_everything_billed_across_a_month_boundary() {
    let app = hourly_refunds().await;
    let f = Fixture::build(&app).await;
    app.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let subscription = bought(&app, &f, f.offers_a[1], 3, "late-nov").await;
    run(&app, "2026-11").await;
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    run(&app, "2026-12").await;
    assert!(retail_total(&app, &subscription).await > dec("30"));
    app.clock.set("2026-12-01T09:00:00Z".parse().unwrap());
    cancel(&app, &f, &subscription).await;
    run(&app, "2026-12").await;
    assert_eq!(retail_total(&app, &subscription).await, dec("0"));
}

/// #8.11: after 24 hours the refund is by the hour, and the hours used are counted from the
/// purchase, not from the midnight before it.
#[tokio::test]
async fn an_hourly_refund_counts_the_hours_used_from_the_purchase() {
    let app = hourly_refunds().await;
    let f = Fixture::build(&app).await;
    // 3 seats at 10.00 a month bought 10 November 18:00: 21 of 30 days billed (3 × 7.00).
    app.clock.set("2026-11-10T18:00:00Z".parse().unwrap());
    let subscription = bought(&app, &f, f.offers_a[1], 3, "hourly").await;
    run(&app, "2026-11").await;
    // Cancelled 48 hours later: of the 504 hours billed, 456 were not used:
    // 3 × round(10 × 456 / 720) = 3 × 6.33.
    app.clock.set("2026-11-12T18:00:00Z".parse().unwrap());
    cancel(&app, &f, &subscription).await;
    run(&app, "2026-11").await;
    assert_eq!(retail_total(&app, &subscription).await, dec("21.00") - dec("18.99"));
}

const OPERATOR_INVOICES: &str = "query($f: InvoiceFilterInput) { invoices(first: 50, filter: $f) { edges { node {
    currency recipientResellerId lines { amount { amount } sourceCurrency sourceAmount { amount } exchangeRate } } } } }";

/// #8.12: the operator invoices a reseller in the reseller's currency: a charge in another
/// currency is converted at the rate in force on the day it starts, stored on the line and
/// rounded at the reseller currency's minor units; with no rate in force the run says so
/// and guesses nothing.
#[tokio::test]
async fn the_operator_invoices_a_reseller_in_its_currency_at_the_rate_of_the_charge_date() {
    use switchyard::domain::Actor;
    use switchyard::domain::customers::{self, NewCustomer};
    use switchyard::domain::ids::ResellerId;
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Reseller B keeps its books in EUR; this customer of it pays in USD.
    let customer = customers::create_customer(
        &app.domain,
        &Actor::system(),
        NewCustomer {
            reseller_id: Some(ResellerId::new(f.reseller_b)),
            name: "Customer B (USD)".into(),
            country: "US".into(),
            currency: "USD".into(),
            tax_rate: dec("0"),
            vendor_accounts: vec![],
        },
    )
    .await
    .unwrap()
    .id;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    app.clock.set("2026-11-02T10:00:00Z".parse().unwrap());
    place(&app, &reseller, order_input(customer, &[(f.offer_b, 2)]), "usd").await;
    app.run_jobs().await;
    let operator = app.operator();
    let run = "mutation { runBilling(period: \"2026-11\") { chargesCreated missingExchangeRates } }";
    let first = app.data(&operator, run, json!({})).await;
    assert_eq!(first["runBilling"]["missingExchangeRates"], json!(["USD→EUR on 2026-11-02"]), "{first}");
    let filter = json!({"f": {"resellerId": f.reseller_b.to_string()}});
    let to_reseller = |data: Value| -> Vec<Value> {
        data["invoices"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .filter(|n| !n["recipientResellerId"].is_null())
            .collect()
    };
    assert!(to_reseller(app.data(&operator, OPERATOR_INVOICES, filter.clone()).await).is_empty(), "no USD invoice");
    // The operator maintains dated rates; the one in force on 2 November converts.
    let set = "mutation($i: ExchangeRateInput!) { setExchangeRate(input: $i) { from to rate effectiveFrom } }";
    for (rate, from) in [("0.9", "2026-10-01T00:00:00Z"), ("0.95", "2026-11-05T00:00:00Z")] {
        app.data(&operator, set, json!({"i": {"from": "USD", "to": "EUR", "rate": rate, "effectiveFrom": from}})).await;
    }
    let listed = app.data(&operator, "query { exchangeRates(from: \"USD\", to: \"EUR\") { rate } }", json!({})).await;
    assert_eq!(listed["exchangeRates"].as_array().unwrap().len(), 2);
    let again = app.data(&operator, run, json!({})).await;
    assert_eq!(again["runBilling"]["missingExchangeRates"], json!([]));
    let invoices = to_reseller(app.data(&operator, OPERATOR_INVOICES, filter).await);
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["currency"], "EUR");
    let line = &invoices[0]["lines"][0];
    assert_eq!((line["sourceCurrency"].as_str(), line["exchangeRate"].as_str()), (Some("USD"), Some("0.9")));
    let source = dec(line["sourceAmount"]["amount"].as_str().unwrap());
    let expected =
        (source * dec("0.9")).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(dec(line["amount"]["amount"].as_str().unwrap()), expected);
    // Bad rates are refused.
    for bad in [json!({"from": "USD", "to": "USD", "rate": "1"}), json!({"from": "USD", "to": "EUR", "rate": "0"})] {
        assert_eq!(app.error_code(Some(&operator), set, json!({"i": bad})).await, "BAD_USER_INPUT");
    }
    let rate = json!({"i": {"from": "USD", "to": "EUR", "rate": "1"}});
    assert_eq!(app.error_code(Some(&reseller), set, rate).await, "FORBIDDEN");
}

/// #8.13: a run skips subscriptions that can no longer produce charges (ended, fully
/// billed, no usage waiting), and plans them again when late usage arrives.
#[tokio::test]
async fn a_run_skips_subscriptions_that_can_no_longer_produce_charges() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = metered(&app, &f).await;
    let other = bought(&app, &f, f.offers_a[0], 1, "other").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.clock.set("2026-11-03T10:00:00Z".parse().unwrap());
    cancel(&app, &f, &subscription).await;
    app.clock.set("2026-12-01T00:30:00Z".parse().unwrap());
    assert_eq!(run(&app, "2026-11").await["subscriptions"], 2);
    // December: the cancelled subscription was billed through its end; only the other is planned.
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    assert_eq!(run(&app, "2026-12").await["subscriptions"], 1);
    assert_eq!(run(&app, "2027-01").await["subscriptions"], 1);
    // Usage from before the cancellation arrives late: planned and billed again.
    app.data(&reseller, RECORD_USAGE, json!({"r": [usage(&subscription, "late", "10", "2026-11-03T09:00:00Z")]})).await;
    assert_eq!(run(&app, "2027-01").await["subscriptions"], 2);
    assert_eq!(usage_charged(&app, &subscription).await.len(), 1);
    assert_eq!(run(&app, "2027-01").await["subscriptions"], 1);
    let _ = other;
}

/// #8.3 (found by review): a purchase refused before the month's run is billed nothing for
/// that month either, and once an operator's retry succeeds it is billed from then on
/// (the refusal settled it; the retry brings it back to the runs).
#[tokio::test]
async fn a_purchase_refused_before_the_months_run_is_billed_nothing_for_that_month() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::Always(400, "customer not eligible")).await;
    app.clock.set("2026-11-20T10:00:00Z".parse().unwrap());
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    run(&app, "2026-11").await;
    // Refused on 2 December; December's run comes a day late.
    app.clock.set("2026-12-02T10:00:00Z".parse().unwrap());
    app.run_jobs().await;
    app.clock.set("2026-12-03T00:30:00Z".parse().unwrap());
    run(&app, "2026-12").await;
    assert_eq!(cost_total(&app, &subscription).await, dec("0"));
    app.clock.set("2027-01-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    assert_eq!(cost_total(&app, &subscription).await, dec("0"));
    // Retried successfully on 10 January: 2 × round(7.40 × 22/31) for January, then February.
    let jobs = app
        .data(
            &app.operator(),
            "query($s: ID!) { provisioningJobs(subscriptionId: $s) { edges { node { id } } } }",
            json!({"s": subscription}),
        )
        .await;
    app.clock.set("2027-01-10T10:00:00Z".parse().unwrap());
    vendor.set_script(Script::FailFirst(0, 200, None));
    app.data(&app.operator(), RETRY, json!({"id": jobs["provisioningJobs"]["edges"][0]["node"]["id"]})).await;
    app.run_jobs().await;
    app.clock.set("2027-02-01T00:30:00Z".parse().unwrap());
    run(&app, "2027-02").await;
    assert_eq!(cost_total(&app, &subscription).await, dec("10.50") + dec("14.80"));
}

/// #8.4 under the per-line rounding policy: a renewal at new prices reverses what was billed
/// in advance line by line as it was billed (the segment's own line, each seat change
/// applied to it, also when both are billed by the same run), so not a cent of the old
/// prices stays: 1 seat billed for 15–31 December in advance, 6 more on 5 December.
#[tokio::test]
async fn a_renewal_at_new_prices_reverses_what_was_billed_in_advance_line_by_line() {
    let app = crate::helpers::spawn_app_with(|server| {
        server.proration_rounding = switchyard::config::ProrationRoundingPolicy::PerLine;
    })
    .await;
    let f = Fixture::build(&app).await;
    let subscription = renewing_mid_december(&app, &f).await;
    app.data(
        &app.operator(),
        "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"16.00\", listPrice: \"20.00\", effectiveFrom: \"2026-12-01T00:00:00Z\"}) { id } }",
        json!({"o": f.offers_a[1].to_string()}),
    )
    .await;
    december_then_january(&app, async {
        app.clock.set("2026-12-05T10:00:00Z".parse().unwrap());
        set_seats(&app, &f, &subscription, 7).await;
    })
    .await;
    // November 5.33; December 1–14: 4.52 (1 seat) + 19.35 (6 seats from the 5th); 15–31 at
    // 20.00 for 7 seats: round(20 × 17 × 7 / 31) = 76.77; January 63.23 + 76.77. (Reversing
    // the 1 + 6 seats billed at 10.00 as one line, round(10 × 17 × 7 / 31) = 38.39, would
    // leave a cent: they were billed as 5.48 + 32.90.)
    let expected = dec("5.33") + dec("4.52") + dec("19.35") + dec("76.77") + dec("63.23") + dec("76.77");
    assert_eq!(retail_total(&app, &subscription).await, expected);
}
