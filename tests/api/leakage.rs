//! #10, matching: a December statement written by `statement_generator` from the database's
//! own subscriptions, with a discrepancy of every category planted in a known amount, is
//! matched; every planted one is found with its exact category and amount, and nothing else
//! is flagged. The amounts expected are computed here from DOMAIN.md (the vendor's
//! ROUNDDOWN, our proration half away from zero), not read from the engine.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use switchyard::domain::ids::{OfferId, ResellerId, VendorId};
use switchyard::domain::reconciliation::import::import_statement;
use switchyard::domain::reconciliation::matcher::match_import;
use switchyard::domain::reconciliation::partner_center::PartnerCenter;
use switchyard::domain::reconciliation::resolution::{explain_finding, recover_finding};
use switchyard::domain::resellers::{self, NewWholesalePrice, WholesaleTarget};
use switchyard::domain::{Actor, Role};

use crate::helpers::{ExtraOffer, Fixture, TestApp, dec, spawn_app};
use crate::orders::{order_input, place};
use crate::statement_generator::{Billing, Row, file, month_rows};

const USD_TO_EUR: &str = "0.9234";

/// Our proration (DOMAIN.md): round(unit / days in period × days used) half away from zero,
/// then × quantity.
fn ours(unit: &str, days_used: i64, days: i64, quantity: i64) -> Decimal {
    (dec(unit) / Decimal::from(days) * Decimal::from(days_used))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        * Decimal::from(quantity)
}

fn usd_in_eur(amount: Decimal) -> Decimal {
    (amount * dec(USD_TO_EUR)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn at(text: &str) -> chrono::DateTime<Utc> {
    text.parse().unwrap()
}

async fn buy(app: &TestApp, customer: i64, reseller: i64, offer: i64, seats: i32, key: &str) -> i64 {
    let token = app.token(Role::Reseller, Some(reseller));
    let placed = place(app, &token, order_input(customer, &[(offer, seats)]), key).await;
    placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().parse().unwrap()
}

async fn mutate(app: &TestApp, reseller: i64, query: &str, subscription: i64) {
    let token = app.token(Role::Reseller, Some(reseller));
    let data = app.data(&token, query, json!({"id": subscription.to_string()})).await;
    assert!(data.is_object(), "{data}");
}

async fn reference(app: &TestApp, subscription: i64) -> String {
    entity::subscription::Entity::find_by_id(subscription)
        .one(&app.domain.db)
        .await
        .unwrap()
        .unwrap()
        .vendor_reference
        .expect("provisioned")
}

/// Forgets the vendor's id of a subscription (our record lost it, or never had it).
async fn forget_reference(app: &TestApp, subscription: i64) {
    let model = entity::subscription::Entity::find_by_id(subscription).one(&app.domain.db).await.unwrap().unwrap();
    let mut active: entity::subscription::ActiveModel = model.into();
    active.vendor_reference = Set(None);
    active.update(&app.domain.db).await.unwrap();
}

fn stranger(reference: &str, tenant: &str, product: &str, unit_price: &str, quantity: i64) -> Row {
    Row {
        subscription_id: None,
        tenant: tenant.into(),
        customer_name: "Nobody we know".into(),
        reference: reference.into(),
        product: product.into(),
        sku_id: "0007".into(),
        charge_type: "cycleCharge",
        unit_price: dec(unit_price),
        quantity: Decimal::from(quantity),
        start: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        days_in_cycle: 31,
        pricing_currency: "USD".into(),
        currency: "EUR".into(),
        rate: dec(USD_TO_EUR),
    }
}

/// December as the scenario leaves it: the import, the subscriptions by name, and the
/// findings expected, by vendor reference (or `#subscription` for a cycle only we charged).
struct December {
    import_id: i64,
    subscriptions: HashMap<&'static str, i64>,
    expected: BTreeMap<(String, &'static str), (&'static str, Decimal)>,
}

/// Found: the import's findings, keyed as `December::expected` is.
async fn found(
    app: &TestApp,
    import_id: i64,
) -> (BTreeMap<(String, &'static str), (&'static str, Decimal)>, Vec<entity::reconciliation_finding::Model>) {
    let findings = entity::reconciliation_finding::Entity::find()
        .filter(entity::reconciliation_finding::Column::ImportId.eq(import_id))
        .all(&app.domain.db)
        .await
        .unwrap();
    let found = findings
        .iter()
        .map(|f| {
            let key = if f.vendor_rows == 0 {
                format!("#{}", f.subscription_id.unwrap())
            } else {
                f.subscription_reference.clone()
            };
            (
                (key, if f.unit_kind == "USAGE" { "USAGE" } else { "SEATS" }),
                (category(&f.category), f.amount.0.normalize()),
            )
        })
        .collect();
    (found, findings)
}

#[tokio::test]
async fn every_planted_discrepancy_is_found_with_its_amount_and_nothing_else() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let december = december(&app, &f).await;
    let (found, findings) = found(&app, december.import_id).await;
    let rules: Vec<String> = findings.iter().map(|f| format!("{} {}: {}", f.category, f.amount.0, f.rule)).collect();
    assert_eq!(found, december.expected, "{rules:#?}");
    // The rule that decided each is on it, with its numbers.
    let s5 = december.subscriptions["s5"];
    let s5_finding = findings.iter().find(|f| f.subscription_id == Some(s5)).unwrap();
    assert!(s5_finding.rule.contains("wholesale"), "{}", s5_finding.rule);
    assert_eq!(s5_finding.wholesale_billed.0, dec("10.00"));
}

async fn december(app: &TestApp, f: &Fixture) -> December {
    let (bytes, subscriptions, expected) = december_file(app, f).await;
    static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("switchyard-leakage-{}-{n}.csv", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let op = Actor::system();
    let outcome = import_statement(
        &app.domain,
        &op,
        VendorId::new(f.vendor_a),
        "december.csv",
        Some("2026-12"),
        &PartnerCenter,
        &path,
    )
    .await;
    let _ = std::fs::remove_file(&path);
    let outcome = outcome.unwrap();
    assert!(outcome.import.matched_at.is_some());
    December { import_id: outcome.import.id, subscriptions, expected }
}

/// Findings expected, by vendor reference (or `#subscription`) and kind of unit.
pub type Expected = BTreeMap<(String, &'static str), (&'static str, Decimal)>;

/// The December statement of the scenario, the subscriptions by name, and what matching it
/// must find.
pub async fn december_file(app: &TestApp, f: &Fixture) -> (Vec<u8>, HashMap<&'static str, i64>, Expected) {
    let op = Actor::system();
    let extra = |sku, cost, list| ExtraOffer {
        sku,
        term: entity::enums::Term::P1y,
        frequency: entity::enums::BillingFrequency::Monthly,
        max_quantity: 100,
        cost,
        list,
        usage: None,
    };
    // $4.00 a month: the vendor's truncated proration differs from our rounded one.
    let four = f.offer(app, extra("CFQ7TTC0LH18:0004", "4.00", "5.00")).await;
    // Sold to reseller A below its cost.
    let below = f.offer(app, extra("CFQ7TTC0LH18:0006", "6.00", "7.00")).await;
    resellers::set_wholesale_price(
        &app.domain,
        &op,
        NewWholesalePrice {
            offer_id: OfferId::new(below),
            target: WholesaleTarget::Reseller(ResellerId::new(f.reseller_a)),
            currency: "USD".into(),
            price: dec("5.00"),
            effective_from: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
        },
    )
    .await
    .unwrap();
    // Matched by tenant and SKU only.
    let by_tenant = f.offer(app, extra("CFQ7TTC0LF8Q:0001", "12.00", "15.00")).await;

    let (a, ra, b, rb) = (f.customer_a, f.reseller_a, f.customer_b, f.reseller_b);
    let main = f.offers_a[0];
    app.clock.set(at("2026-11-02T10:00:00Z"));
    let s1 = buy(app, a, ra, four, 2, "s1").await;
    let s3 = buy(app, a, ra, main, 3, "s3").await;
    let s5 = buy(app, a, ra, below, 2, "s5").await;
    let s7 = buy(app, a, ra, by_tenant, 1, "s7").await;
    let s8 = buy(app, a, ra, main, 1, "s8").await;
    let s11 = buy(app, b, rb, main, 1, "s11").await;
    let s12 = buy(app, a, ra, four, 1, "s12").await;
    app.run_jobs().await;
    // Cancelled at once on our side; the vendor never took the cancellation and charges on.
    app.clock.set(at("2026-11-03T09:00:00Z"));
    mutate(app, ra, "mutation($id: ID!) { cancelSubscription(id: $id, idempotencyKey: \"c12\") { replayed } }", s12)
        .await;
    app.run_jobs().await;
    crate::billing::run(app, "2026-11").await;

    app.clock.set(at("2026-12-03T09:00:00Z"));
    let up =
        "mutation($id: ID!) { changeSubscriptionQuantity(id: $id, quantity: 5, idempotencyKey: \"up\") { replayed } }";
    mutate(app, ra, up, s1).await;
    app.clock.set(at("2026-12-05T10:00:00Z"));
    let s10 = buy(app, a, ra, four, 1, "s10").await;
    app.run_jobs().await;
    app.clock.set(at("2026-12-06T09:00:00Z"));
    mutate(app, ra, "mutation($id: ID!) { cancelSubscription(id: $id, idempotencyKey: \"c\") { replayed } }", s10)
        .await;
    app.clock.set(at("2026-12-10T10:00:00Z"));
    let s2 = buy(app, a, ra, main, 1, "s2").await;
    app.clock.set(at("2026-12-15T10:00:00Z"));
    let s9 = buy(app, a, ra, main, 1, "s9").await;
    app.run_jobs().await;
    app.clock.set(at("2026-12-20T10:00:00Z"));
    crate::billing::run(app, "2026-12").await;
    // Bought after December's run: the vendor charges it, and January's run will bill it —
    // lag, not leakage.
    app.clock.set(at("2026-12-21T10:00:00Z"));
    let s4 = buy(app, a, ra, four, 1, "s4").await;
    app.run_jobs().await;

    // The vendor's December, from the database; s8's charge is missing at the vendor (drift)
    // and s9 the vendor never had (our record of its id is gone).
    let billing = Billing { currency: "EUR", rates: HashMap::from([("USD", dec(USD_TO_EUR)), ("EUR", Decimal::ONE)]) };
    let omit = HashSet::from([s8, s9]);
    let mut rows = month_rows(&app.domain.db, f.vendor_a, (2026, 12), &billing, &omit).await;
    let true_amount = |rows: &[Row], s: i64| -> Decimal {
        rows.iter().filter(|r| r.subscription_id == Some(s)).map(Row::subtotal).sum()
    };
    // s12: the vendor's December cycle of the subscription we cancelled in November.
    let mut kept =
        rows.iter().find(|r| r.subscription_id == Some(s1) && r.charge_type == "cycleCharge").unwrap().clone();
    kept.subscription_id = Some(s12);
    kept.reference = reference(app, s12).await;
    kept.quantity = Decimal::ONE;
    rows.push(kept);
    let truth: HashMap<i64, Decimal> =
        [s1, s2, s3, s4, s5, s7, s10, s11, s12].iter().map(|&s| (s, true_amount(&rows, s))).collect();
    // Planted: s2 at the vendor's own (higher) price; one seat too many on s3's cycle.
    for row in rows.iter_mut() {
        if row.subscription_id == Some(s2) {
            row.unit_price = dec("8.50");
        }
        if row.subscription_id == Some(s3) && row.charge_type == "cycleCharge" {
            row.quantity = Decimal::from(4);
        }
    }
    // Charges for a subscription and a customer we do not know, and for a known customer's
    // SKU we do not sell.
    rows.push(stranger("ffffffff-0000-0000-0000-000000000001", "tenant-nobody", "DZH318Z0BQ3Q", "20.00", 3));
    rows.push(stranger("ffffffff-0000-0000-0000-000000000001", "tenant-nobody", "DZH318Z0BQ3Q", "20.00", 1));
    rows.push(stranger("ffffffff-0000-0000-0000-000000000002", "tenant-Customer-A", "DZH318Z0BQ3R", "3.33", 7));
    let planted = |s: i64| true_amount(&rows, s);
    let s7_reference = reference(app, s7).await;
    forget_reference(app, s7).await;
    forget_reference(app, s9).await;

    // What must be found, computed here.
    let eur = |s: i64| (reference_or(&rows, s), "SEATS");
    let mut expected: BTreeMap<(String, &'static str), (&'static str, Decimal)> = BTreeMap::new();
    for s in [s1, s4, s10, s11] {
        expected.insert(eur(s), ("MATCHED", truth[&s]));
    }
    expected.insert((s7_reference, "SEATS"), ("MATCHED", truth[&s7]));
    expected.insert(eur(s2), ("PRICE_MISMATCH", planted(s2) - truth[&s2]));
    expected.insert(eur(s3), ("QUANTITY_MISMATCH", planted(s3) - truth[&s3]));
    expected.insert(eur(s12), ("UNBILLED", truth[&s12]));
    // 2 seats at a $5.00 wholesale, converted, for a vendor charge of 2 × ROUNDDOWN(6.00 × rate).
    expected.insert(eur(s5), ("UNDERBILLED", truth[&s5] - usd_in_eur(ours("5.00", 31, 31, 2))));
    let unknown: Decimal = rows.iter().filter(|r| r.subscription_id.is_none()).take(2).map(Row::subtotal).sum();
    expected.insert(("ffffffff-0000-0000-0000-000000000001".into(), "SEATS"), ("UNKNOWN_SUBSCRIPTION", unknown));
    let other = rows.last().unwrap().subtotal();
    expected.insert(("ffffffff-0000-0000-0000-000000000002".into(), "SEATS"), ("UNKNOWN_SUBSCRIPTION", other));
    // s8: the vendor should have charged one seat of $8.00 for December (in our currency).
    expected.insert((format!("#{s8}"), "SEATS"), ("MISSING_VENDOR_CHARGE", dec("8.00")));
    // s9: billed at $9.20 wholesale from 15 December (17 of 31 days), unknown to the vendor.
    expected.insert((format!("#{s9}"), "SEATS"), ("OVERBILLED", ours("9.20", 17, 31, 1)));

    let expected = expected.into_iter().map(|(k, (c, a))| (k, (c, a.normalize()))).collect();
    let subscriptions = HashMap::from([
        ("s1", s1),
        ("s2", s2),
        ("s3", s3),
        ("s4", s4),
        ("s5", s5),
        ("s7", s7),
        ("s8", s8),
        ("s9", s9),
        ("s10", s10),
        ("s11", s11),
        ("s12", s12),
    ]);
    (file(&rows), subscriptions, expected)
}

fn reference_or(rows: &[Row], s: i64) -> String {
    rows.iter().find(|r| r.subscription_id == Some(s)).map(|r| r.reference.clone()).unwrap()
}

fn category(name: &str) -> &'static str {
    [
        "MATCHED",
        "UNBILLED",
        "UNDERBILLED",
        "OVERBILLED",
        "QUANTITY_MISMATCH",
        "PRICE_MISMATCH",
        "UNKNOWN_SUBSCRIPTION",
        "MISSING_VENDOR_CHARGE",
    ]
    .into_iter()
    .find(|c| *c == name)
    .unwrap_or("?")
}

/// Invoice lines that bill recoveries: (recipient reseller, recipient customer, amount).
async fn recovery_lines(app: &TestApp) -> Vec<(Option<i64>, Option<i64>, Decimal)> {
    let lines = entity::invoice_line::Entity::find()
        .filter(entity::invoice_line::Column::Description.starts_with("Recovered"))
        .all(&app.domain.db)
        .await
        .unwrap();
    let mut out = Vec::new();
    for line in lines {
        let invoice = entity::invoice::Entity::find_by_id(line.invoice_id).one(&app.domain.db).await.unwrap().unwrap();
        out.push((invoice.recipient_reseller_id, invoice.recipient_customer_id, line.amount.0.normalize()));
    }
    out.sort();
    out
}

#[tokio::test]
async fn recovered_leakage_is_billed_by_the_next_run_exactly_once() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let december = december(&app, &f).await;
    let (_, findings) = found(&app, december.import_id).await;
    let of = |name: &str| {
        findings.iter().find(|x| x.subscription_id == Some(december.subscriptions[name]) && x.vendor_rows > 0).unwrap()
    };
    let (unbilled, under, matched, quantity) = (of("s12"), of("s5"), of("s1"), of("s3"));
    // Bought after December's run: billed by January's, not leakage (recovering it would
    // bill it twice).
    let lag = of("s4");
    assert_eq!(lag.category, "MATCHED", "{}", lag.rule);
    assert!(lag.rule.contains("the next billing run bills"), "{}", lag.rule);
    assert_eq!((unbilled.category.as_str(), under.category.as_str()), ("UNBILLED", "UNDERBILLED"));
    let op = Actor::system();
    let code = |e: switchyard::domain::Error| match e {
        switchyard::domain::Error::Conflict { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    app.clock.set(at("2027-01-02T08:00:00Z"));
    // A reseller cannot resolve anything.
    let reseller = Actor::from_role(None, Role::Reseller, Some(f.reseller_a)).unwrap();
    assert!(matches!(
        recover_finding(&app.domain, &reseller, unbilled.id, true, None).await,
        Err(switchyard::domain::Error::Forbidden(_))
    ));
    let recovered =
        recover_finding(&app.domain, &op, unbilled.id, true, Some("the 21 December purchase")).await.unwrap();
    assert_eq!((recovered.status.as_str(), recovered.recovery_customer_charge), ("RECOVERED", true));
    assert_eq!(code(recover_finding(&app.domain, &op, unbilled.id, true, None).await.unwrap_err()), "ALREADY_RESOLVED");
    // Two operators at once: one recovery.
    let (x, y) = tokio::join!(
        recover_finding(&app.domain, &op, under.id, false, None),
        recover_finding(&app.domain, &op, under.id, false, None)
    );
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "{x:?} {y:?}");
    assert_eq!(code(x.err().or(y.err()).unwrap()), "ALREADY_RESOLVED");
    // Only leakage is recovered; an explained finding is resolved.
    assert_eq!(code(recover_finding(&app.domain, &op, matched.id, true, None).await.unwrap_err()), "NOT_RECOVERABLE");
    assert!(matches!(
        explain_finding(&app.domain, &op, quantity.id, "  ").await,
        Err(switchyard::domain::Error::Validation { .. })
    ));
    let explained =
        explain_finding(&app.domain, &op, quantity.id, "the vendor credits the seat in January").await.unwrap();
    assert_eq!(
        (explained.status.as_str(), explained.note.as_deref()),
        ("EXPLAINED", Some("the vendor credits the seat in January"))
    );
    assert_eq!(code(explain_finding(&app.domain, &op, quantity.id, "again").await.unwrap_err()), "ALREADY_RESOLVED");
    assert_eq!(code(recover_finding(&app.domain, &op, quantity.id, true, None).await.unwrap_err()), "ALREADY_RESOLVED");
    // Matching again would lose what was resolved: refused.
    assert_eq!(code(match_import(&app.domain, &op, december.import_id, None).await.unwrap_err()), "FINDINGS_RESOLVED");

    assert_eq!(code(recover_finding(&app.domain, &op, lag.id, true, None).await.unwrap_err()), "NOT_RECOVERABLE");

    // January's run bills the recoveries, in the subscriptions' currency (the findings are in
    // the statement's EUR, at its rate): s12 to the reseller and its customer, s5 to the
    // reseller only — the customer's preview shows s12's alone.
    let s12_usd =
        (unbilled.amount.0 / dec(USD_TO_EUR)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let reseller_token = app.token(Role::Reseller, Some(f.reseller_a));
    let preview = app
        .data(
            &reseller_token,
            "query($c: ID!) { previewBilling(customerId: $c, period: \"2027-01\") { lines { description amount { amount } } } }",
            json!({"c": f.customer_a.to_string()}),
        )
        .await;
    let recovered_lines: Vec<String> = preview["previewBilling"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["description"].as_str().unwrap().starts_with("Recovered"))
        .map(|l| l["amount"]["amount"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovered_lines, vec![format!("{s12_usd:.2}")]);
    let s5_usd = (under.amount.0 / dec(USD_TO_EUR)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    crate::billing::run(&app, "2027-01").await;
    let mut want = vec![
        (Some(f.reseller_a), None, s12_usd.normalize()),
        (Some(f.reseller_a), None, s5_usd.normalize()),
        (None, Some(f.customer_a), s12_usd.normalize()),
    ];
    want.sort();
    assert_eq!(recovery_lines(&app).await, want);
    // s4, bought on 21 December after December's run, is billed once, by January's: 11 of 31
    // days at the $4.60 wholesale, and January.
    let s4 = december.subscriptions["s4"];
    let mut s4_lines: Vec<Decimal> = Vec::new();
    for line in entity::invoice_line::Entity::find()
        .filter(entity::invoice_line::Column::SubscriptionId.eq(s4))
        .all(&app.domain.db)
        .await
        .unwrap()
    {
        let invoice = entity::invoice::Entity::find_by_id(line.invoice_id).one(&app.domain.db).await.unwrap().unwrap();
        if invoice.recipient_reseller_id.is_some() {
            s4_lines.push(line.amount.0.normalize());
        }
    }
    s4_lines.sort();
    assert_eq!(s4_lines, vec![ours("4.60", 11, 31, 1).normalize(), dec("4.60").normalize()]);
    // And never again.
    crate::billing::run(&app, "2027-01").await;
    app.clock.set(at("2027-02-02T08:00:00Z"));
    crate::billing::run(&app, "2027-02").await;
    assert_eq!(recovery_lines(&app).await, want);
    // The audit log has each resolution.
    let audited = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.is_in([
            "recoverFinding",
            "explainFinding",
            "matchStatement",
            "importStatement",
        ]))
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 5, "{audited:?}");
}

#[tokio::test]
async fn a_three_year_upfront_cycle_is_matched_however_far_it_ends_from_the_statements_month() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f
        .offer(
            &app,
            ExtraOffer {
                sku: "CFQ7TTC0LH1G:0003",
                term: entity::enums::Term::P3y,
                frequency: entity::enums::BillingFrequency::Upfront,
                max_quantity: 100,
                cost: "300.00",
                list: "400.00",
                usage: None,
            },
        )
        .await;
    app.clock.set(at("2026-11-02T10:00:00Z"));
    let s = buy(&app, f.customer_a, f.reseller_a, offer, 2, "upfront").await;
    app.run_jobs().await;
    crate::billing::run(&app, "2026-11").await;
    // The vendor bills the whole term in November: one row whose cycle ends in 2029.
    let charge = entity::charge::Entity::find()
        .filter(entity::charge::Column::SubscriptionId.eq(s))
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("November's run charged the term");
    let (start, end) = (charge.service_start.date_naive(), charge.service_end.date_naive().pred_opt().unwrap());
    assert!(end.signed_duration_since(start).num_days() > 1_000, "{start} – {end}");
    let row = Row {
        subscription_id: Some(s),
        tenant: "tenant-Customer-A".into(),
        customer_name: "Customer A".into(),
        reference: reference(&app, s).await,
        product: "CFQ7TTC0LH1G".into(),
        sku_id: "0003".into(),
        charge_type: "new",
        unit_price: charge.cycle_unit_cost.unwrap().0,
        quantity: Decimal::from(2),
        start,
        end,
        days_in_cycle: (end - start).num_days() + 1,
        pricing_currency: "USD".into(),
        currency: "USD".into(),
        rate: Decimal::ONE,
    };
    let path = std::env::temp_dir().join(format!("switchyard-leakage-upfront-{}.csv", std::process::id()));
    std::fs::write(&path, file(std::slice::from_ref(&row))).unwrap();
    let op = Actor::system();
    let outcome = import_statement(
        &app.domain,
        &op,
        VendorId::new(f.vendor_a),
        "november.csv",
        Some("2026-11"),
        &PartnerCenter,
        &path,
    )
    .await;
    let _ = std::fs::remove_file(&path);
    let (_, findings) = found(&app, outcome.unwrap().import.id).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].category, "MATCHED", "{}", findings[0].rule);
    assert_eq!(findings[0].amount.0, row.subtotal());
}

/// A usage subscription of customer A (Azure at 0.057 cost, 0.067 list), provisioned: its
/// id and the vendor's id of it.
async fn azure(app: &TestApp, f: &Fixture) -> (i64, String) {
    let offer = f
        .offer(
            app,
            ExtraOffer {
                sku: "A-AZURE",
                term: entity::enums::Term::P1m,
                frequency: entity::enums::BillingFrequency::Monthly,
                max_quantity: 1,
                cost: "0",
                list: "0",
                usage: Some(("azure", "0.057", "0.067")),
            },
        )
        .await;
    let s = buy(app, f.customer_a, f.reseller_a, offer, 1, "azure").await;
    app.run_jobs().await;
    (s, reference(app, s).await)
}

/// Imports a statement of one usage row: 55 hours at 0.057 (ROUNDDOWN(3.135, 2) = 3.13) from
/// `first` to `last`, for `period`; the import's id.
async fn import_usage(app: &TestApp, f: &Fixture, vendor_id: &str, period: &str, (first, last): (&str, &str)) -> i64 {
    let usage = format!(
        "p1,tenant-azure,Azure user,a.test,DE,G9,1,5555,o9,{first},DZH318Z0BQ3Q,0001,DZH318Z0BQ3Q,Azure,Azure,\
         usage,0.057,55,3.13,0,3.13,USD,{vendor_id},{first},{last},,0.057,1 Hour,55,Monthly,USD,1"
    );
    let path = std::env::temp_dir().join(format!("switchyard-usage-{}-{period}.csv", std::process::id()));
    std::fs::write(&path, format!("{}\n{usage}\n", crate::statement_generator::HEADER)).unwrap();
    let imported = import_statement(
        &app.domain,
        &Actor::system(),
        VendorId::new(f.vendor_a),
        "usage.csv",
        Some(period),
        &PartnerCenter,
        &path,
    )
    .await;
    let _ = std::fs::remove_file(&path);
    imported.unwrap().import.id
}

async fn record_usage(app: &TestApp, f: &Fixture, s: i64, id: &str, at: &str) {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let record = json!({"r": [{"subscriptionId": s.to_string(), "externalId": id, "meter": "azure", "quantity": "55", "occurredAt": at}]});
    let recorded =
        app.data(&reseller, "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { status } }", record).await;
    assert_eq!(recorded["recordUsage"][0]["status"], "ACCEPTED");
}

#[tokio::test]
async fn late_usage_recorded_after_matching_is_left_to_the_next_run_not_recovered() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (s, vendor_id) = azure(&app, &f).await;
    // November and December billed before any November usage reached us.
    app.clock.set(at("2026-12-01T06:00:00Z"));
    crate::billing::run(&app, "2026-11").await;
    crate::billing::run(&app, "2026-12").await;
    app.clock.set(at("2026-12-02T08:00:00Z"));
    let import_id = import_usage(&app, &f, &vendor_id, "2026-11", ("2026-11-01", "2026-11-30")).await;
    let op = Actor::system();
    let (_, findings) = found(&app, import_id).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    let unbilled = &findings[0];
    assert_eq!((unbilled.category.as_str(), unbilled.amount.0), ("UNBILLED", dec("3.13")), "{}", unbilled.rule);
    // The usage reaches us late; the next run bills it. Recovering it too would bill it twice.
    record_usage(&app, &f, s, "u-1", "2026-11-10T00:00:00Z").await;
    match recover_finding(&app.domain, &op, unbilled.id, false, None).await {
        Err(switchyard::domain::Error::Conflict { reason: "BILLED_BY_NEXT_RUN", .. }) => {}
        other => panic!("recovered what the next run bills: {other:?}"),
    }
    // That run bills it once. The finding, from before it, is stale: recovering it now would
    // bill the usage twice.
    crate::billing::run(&app, "2026-12").await;
    match recover_finding(&app.domain, &op, unbilled.id, false, None).await {
        Err(switchyard::domain::Error::Conflict { reason: "STALE_FINDING", .. }) => {}
        other => panic!("recovered what a run billed since matching: {other:?}"),
    }
    // Matched again, the statement agrees.
    let again = match_import(&app.domain, &op, import_id, None).await.unwrap();
    let (_, findings) = found(&app, again.id).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].category, "MATCHED", "{}", findings[0].rule);
}

#[tokio::test]
async fn usage_of_the_current_month_that_we_recorded_is_lag_not_leakage() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (s, vendor_id) = azure(&app, &f).await;
    // Mid-December: December's usage is billed by January's run, in arrears. The vendor's
    // export of it, matched now, is lag, not leakage (recovering it would bill it twice).
    app.clock.set(at("2026-12-20T08:00:00Z"));
    record_usage(&app, &f, s, "u-dec", "2026-12-05T00:00:00Z").await;
    let import_id = import_usage(&app, &f, &vendor_id, "2026-12", ("2026-12-01", "2026-12-31")).await;
    let (_, findings) = found(&app, import_id).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].category, "MATCHED", "{}", findings[0].rule);
    assert!(findings[0].rule.contains("the next billing run bills"), "{}", findings[0].rule);
}

#[tokio::test]
async fn usage_of_the_current_month_recorded_after_matching_is_not_recovered() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (s, vendor_id) = azure(&app, &f).await;
    app.clock.set(at("2026-12-20T08:00:00Z"));
    let import_id = import_usage(&app, &f, &vendor_id, "2026-12", ("2026-12-01", "2026-12-31")).await;
    let (_, findings) = found(&app, import_id).await;
    assert_eq!(findings[0].category, "UNBILLED", "{}", findings[0].rule);
    // While December is open its usage may still come: not recovered yet.
    match recover_finding(&app.domain, &Actor::system(), findings[0].id, false, None).await {
        Err(switchyard::domain::Error::Conflict { reason: "CYCLE_OPEN", .. }) => {}
        other => panic!("recovered usage of a month still open: {other:?}"),
    }
    // Recorded after matching: January's run bills it, so it is not recovered as well.
    app.clock.set(at("2026-12-28T08:00:00Z"));
    record_usage(&app, &f, s, "u-dec", "2026-12-05T00:00:00Z").await;
    app.clock.set(at("2027-01-01T00:30:00Z"));
    match recover_finding(&app.domain, &Actor::system(), findings[0].id, false, None).await {
        Err(switchyard::domain::Error::Conflict { reason: "BILLED_BY_NEXT_RUN", .. }) => {}
        other => panic!("recovered what January's run bills: {other:?}"),
    }
}
