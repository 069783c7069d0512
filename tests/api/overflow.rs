//! Money at the edges (issue #9, item 14): prices and quantities have documented bounds
//! (a unit price at most 1,000,000,000; a quantity at most 1,000,000), beyond which input
//! is BAD_USER_INPUT; within them no arithmetic can overflow, and a total too large to
//! store is a clear error, never a panic; a run bills everyone else and reports what it
//! could not bill.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{PLACE_ORDER, order_input};

const CREATE_OFFER: &str = "mutation($i: CreateOfferInput!) { createOffer(input: $i) { id } }";
const ADD_PRICE: &str = "mutation($i: AddPricePointInput!) { addPricePoint(input: $i) { id } }";

fn offer_input(f: &Fixture, sku: &str, max_quantity: i64) -> Value {
    json!({"productId": f.product_a.to_string(), "sku": sku, "name": sku, "unit": "seat", "term": "P1M",
           "billingFrequency": "MONTHLY", "minQuantity": 1, "maxQuantity": max_quantity})
}

fn price_input(offer: &str, price: &str) -> Value {
    json!({"offerId": offer, "currency": "USD", "cost": price, "listPrice": price, "effectiveFrom": "2026-01-01T00:00:00Z"})
}

/// An offer of the largest quantity (10^6) at the largest unit price (10^9).
async fn largest_offer(app: &TestApp, f: &Fixture) -> i64 {
    let offer = app.data(&app.operator(), CREATE_OFFER, json!({"i": offer_input(f, "MAX", 1_000_000)})).await;
    let offer: i64 = offer["createOffer"]["id"].as_str().unwrap().parse().unwrap();
    app.data(&app.operator(), ADD_PRICE, json!({"i": price_input(&offer.to_string(), "1000000000")})).await;
    offer
}

/// The largest markups for reseller A: its tier (gold) 10, its own retail markup 10.
async fn tenfold_markups(app: &TestApp, f: &Fixture) {
    let op = switchyard::domain::Actor::system();
    let tier = switchyard::domain::ids::TierId::new(f.tier_gold);
    switchyard::domain::resellers::update_tier(&app.domain, &op, tier, None, Some(crate::helpers::dec("10")))
        .await
        .unwrap();
    let actor = switchyard::domain::Actor::from_role(None, Role::Reseller, Some(f.reseller_a)).unwrap();
    switchyard::domain::customers::set_retail_markup(&app.domain, &actor, Some(crate::helpers::dec("10")))
        .await
        .unwrap();
}

/// An ordinary order of reseller B's customer, beside whatever a test makes too large.
async fn ordinary_order(app: &TestApp, f: &Fixture) {
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    let input = json!({"input": order_input(f.customer_b, &[(f.offer_b, 3)]), "key": "ordinary"});
    let placed = app.data(&reseller_b, PLACE_ORDER, input).await;
    assert!(placed["placeOrder"]["order"]["id"].is_string());
}

/// The ordinary customer was invoiced by the run.
async fn assert_ordinary_invoiced(app: &TestApp, f: &Fixture) {
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    let invoices = crate::billing::invoices(app, &reseller_b, json!({"customerId": f.customer_b.to_string()})).await;
    assert_eq!(invoices.len(), 1, "the other customer is invoiced");
}

async fn code(app: &TestApp, query: &str, variables: Value) -> String {
    app.error_code(Some(&app.operator()), query, variables).await
}

#[tokio::test]
async fn prices_and_quantities_past_their_bounds_are_refused() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    assert_eq!(
        code(&app, CREATE_OFFER, json!({"i": offer_input(&f, "HUGE-Q", 2_147_483_647)})).await,
        "BAD_USER_INPUT"
    );
    let offer = app.data(&app.operator(), CREATE_OFFER, json!({"i": offer_input(&f, "BIG", 1_000_000)})).await;
    let offer = offer["createOffer"]["id"].as_str().unwrap().to_owned();
    for price in ["1000000000000000000", "1000000000.01"] {
        assert_eq!(code(&app, ADD_PRICE, json!({"i": price_input(&offer, price)})).await, "BAD_USER_INPUT", "{price}");
    }
    app.data(&app.operator(), ADD_PRICE, json!({"i": price_input(&offer, "1000000000")})).await;
}

#[tokio::test]
async fn an_order_too_large_to_store_is_refused_and_the_largest_lines_bill() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = largest_offer(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    // The largest markups: wholesale is 11 × cost, retail 11 × wholesale.
    tenfold_markups(&app, &f).await;
    // A hundred lines of a million seats at 121 billion each: more than any amount can hold.
    let lines: Vec<(i64, i32)> = (0..100).map(|_| (offer, 1_000_000)).collect();
    let (status, body) = app
        .post(Some(&reseller), PLACE_ORDER, json!({"input": order_input(f.customer_a, &lines), "key": "huge"}))
        .await;
    let shown: String = body.to_string().chars().take(400).collect();
    assert_eq!(status, 200, "the connection is answered: {shown}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{shown}");
    // One such line is an order, and a run bills it.
    let placed = app
        .data(&reseller, PLACE_ORDER, json!({"input": order_input(f.customer_a, &[(offer, 1_000_000)]), "key": "one"}))
        .await;
    assert_eq!(placed["placeOrder"]["order"]["totalRetail"]["amount"], "121000000000000000.00");
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    let run = crate::billing::run(&app, "2026-11").await;
    assert!(run["chargesCreated"].as_i64().unwrap() >= 1, "{run}");
}

const RUN_REPORT: &str = "mutation($p: String!) { runBilling(period: $p) { chargesCreated unbillable } }";

#[tokio::test]
async fn a_run_bills_everyone_else_and_reports_what_it_cannot_bill() {
    use sea_orm::{ConnectionTrait, Statement};

    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller_a = app.token(Role::Reseller, Some(f.reseller_a));
    // An ordinary subscription of another customer.
    ordinary_order(&app, &f).await;
    // A subscription from before prices were bounded: its stored prices are the largest
    // amount a column holds.
    let legacy = app
        .data(
            &reseller_a,
            PLACE_ORDER,
            json!({"input": order_input(f.customer_a, &[(f.offers_a[1], 2)]), "key": "legacy"}),
        )
        .await;
    let legacy_id = legacy["placeOrder"]["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    let huge = "999999999999999999";
    for sql in [
        format!(
            "UPDATE subscriptions SET unit_cost = {huge}, unit_wholesale = {huge}, unit_retail = {huge} WHERE id = {legacy_id}"
        ),
        format!(
            "UPDATE subscription_changes SET unit_cost = {huge}, unit_wholesale = {huge}, unit_retail = {huge} WHERE subscription_id = {legacy_id}"
        ),
    ] {
        let backend = app.domain.db.get_database_backend();
        app.domain.db.execute_raw(Statement::from_string(backend, sql)).await.unwrap();
    }
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    let (status, body) = app.post(Some(&app.operator()), RUN_REPORT, json!({"p": "2026-11"})).await;
    assert_eq!(status, 200);
    let run = &body["data"]["runBilling"];
    assert!(run["chargesCreated"].as_i64().unwrap_or(0) >= 1, "everyone else is billed: {body}");
    let report = run["unbillable"].to_string();
    assert!(report.contains(&format!("subscription {legacy_id}")), "{report}");
    // The ordinary customer has its invoice.
    assert_ordinary_invoiced(&app, &f).await;
}

#[tokio::test]
async fn an_invoice_that_would_pass_the_largest_amount_waits_and_is_reported() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = largest_offer(&app, &f).await;
    tenfold_markups(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    // Nine orders of the largest line: each is an order, together more than an invoice holds.
    for index in 0..9 {
        let input = order_input(f.customer_a, &[(offer, 1_000_000)]);
        let placed = app.data(&reseller, PLACE_ORDER, json!({"input": input, "key": format!("max-{index}")})).await;
        assert!(placed["placeOrder"]["order"]["id"].is_string());
    }
    // And an ordinary one of another reseller's customer.
    ordinary_order(&app, &f).await;
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    let (status, body) = app.post(Some(&app.operator()), RUN_REPORT, json!({"p": "2026-11"})).await;
    assert_eq!(status, 200);
    let report = body["data"]["runBilling"]["unbillable"].to_string();
    assert!(report.contains(&format!("customer {}", f.customer_a)), "{body}");
    assert_ordinary_invoiced(&app, &f).await;
}

#[tokio::test]
async fn a_conversion_past_the_largest_amount_waits_and_is_reported() {
    use switchyard::domain::ids::{ResellerId, TierId, VendorId};
    use switchyard::domain::{Actor, customers, exchange_rates, resellers};

    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let op = Actor::system();
    let offer = largest_offer(&app, &f).await;
    // A reseller keeping its books in JPY, on a tier marking cost up 10 times, with a USD
    // customer: one line of the largest order is 1.1e16 USD wholesale, 1.65e18 JPY.
    let tier = resellers::create_tier(&app.domain, &op, "Tenfold", crate::helpers::dec("10")).await.unwrap().id;
    let input = resellers::NewReseller {
        name: "Yen Reseller".into(),
        tier_id: TierId::new(tier),
        currency: "JPY".into(),
        external_partner_id: None,
        invoice_prefix: "YEN".into(),
    };
    let reseller = resellers::create_reseller(&app.domain, &op, input).await.unwrap().id;
    let customer = customers::create_customer(
        &app.domain,
        &op,
        customers::NewCustomer {
            reseller_id: Some(ResellerId::new(reseller)),
            name: "Dollar Customer".into(),
            country: "US".into(),
            currency: "USD".into(),
            tax_rate: crate::helpers::dec("0"),
            vendor_accounts: vec![customers::VendorAccount {
                vendor_id: VendorId::new(f.vendor_a),
                external_id: "usd-1".into(),
            }],
        },
    )
    .await
    .unwrap()
    .id;
    let rate = exchange_rates::NewExchangeRate {
        from: "USD".into(),
        to: "JPY".into(),
        rate: crate::helpers::dec("150"),
        effective_from: Some("2026-01-01T00:00:00Z".parse().unwrap()),
    };
    exchange_rates::set_exchange_rate(&app.domain, &op, rate).await.unwrap();
    let token = app.token(Role::Reseller, Some(reseller));
    let placed = app
        .data(&token, PLACE_ORDER, json!({"input": order_input(customer, &[(offer, 1_000_000)]), "key": "yen"}))
        .await;
    assert!(placed["placeOrder"]["order"]["id"].is_string());
    ordinary_order(&app, &f).await;
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    let (status, body) = app.post(Some(&app.operator()), RUN_REPORT, json!({"p": "2026-11"})).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "the run goes on: {body}");
    let report = body["data"]["runBilling"]["unbillable"].to_string();
    assert!(report.contains(&format!("reseller {reseller}")), "{body}");
    assert_ordinary_invoiced(&app, &f).await;
}
