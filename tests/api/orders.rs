//! Ordering through the API: pricing, provisioning to ACTIVE, idempotency under
//! concurrency, all-or-nothing writes, and quotes.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, count_rows, is_postgres, spawn_app, spawn_app_with_workers};

pub const PLACE_ORDER: &str = "mutation($input: PlaceOrderInput!, $key: String!) {
  placeOrder(input: $input, idempotencyKey: $key) { replayed order { id status currency
    totalWholesale { amount } totalRetail { amount }
    lines { lineNumber quantity status unitCost { amount } unitWholesale { amount } unitRetail { amount }
            subscription { id status } } } } }";

pub fn order_input(customer: i64, lines: &[(i64, i32)]) -> Value {
    json!({"customerId": customer.to_string(),
           "lines": lines.iter().map(|(offer, quantity)| json!({"offerId": offer.to_string(), "quantity": quantity})).collect::<Vec<_>>()})
}

pub async fn place(app: &TestApp, token: &str, input: Value, key: &str) -> Value {
    app.data(token, PLACE_ORDER, json!({"input": input, "key": key})).await["placeOrder"].clone()
}

/// Row counts of every table an order writes to.
async fn order_table_counts(app: &TestApp) -> Vec<i64> {
    let tables = [
        "orders",
        "order_lines",
        "subscriptions",
        "seat_batches",
        "subscription_changes",
        "jobs",
        "domain_events",
        "audit_log",
    ];
    futures_util::future::join_all(tables.map(|t| count_rows(app, t))).await
}

const ORDER: &str =
    "query($id: ID!) { order(id: $id) { status lines { status subscription { status vendorReference } } } }";

#[tokio::test]
async fn an_order_provisions_every_line_to_active() {
    let app = spawn_app_with_workers(2).await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed =
        place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 5), (f.offers_a[2], 2)]), "k-1").await;
    assert_eq!(placed["replayed"], false);
    let order = &placed["order"];
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["lines"][0]["unitWholesale"]["amount"], "9.20");
    assert_eq!(order["lines"][0]["unitRetail"]["amount"], "10.00");
    assert_eq!(order["lines"][0]["unitCost"], Value::Null, "cost is the operator's");
    assert_eq!(order["totalWholesale"]["amount"], "64.40");
    assert_eq!(order["totalRetail"]["amount"], "70.00");
    let id = order["id"].as_str().unwrap().to_owned();
    let data = app.wait_for(&reseller, ORDER, json!({"id": id}), |d| d["order"]["status"] == "COMPLETED").await;
    for line in data["order"]["lines"].as_array().unwrap() {
        assert_eq!(line["status"], "SUCCEEDED");
        assert_eq!(line["subscription"]["status"], "ACTIVE");
        assert!(line["subscription"]["vendorReference"].as_str().unwrap().starts_with("sandbox-"));
    }
    // The operator sees the costs the order locked.
    let data = app
        .data(
            &app.operator(),
            "query($id: ID!) { order(id: $id) { totalCost { amount } lines { unitCost { amount } } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["order"]["totalCost"]["amount"], "56.00");
    // The customer sees its order but not wholesale prices.
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let data = app
        .data(
            &customer,
            "query($id: ID!) { order(id: $id) { totalWholesale { amount } totalRetail { amount } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["order"]["totalWholesale"], Value::Null);
    // Another reseller does not see it.
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    assert_eq!(app.error_code(Some(&other), ORDER, json!({"id": id})).await, "NOT_FOUND");
}

#[tokio::test]
async fn the_same_key_replays_and_a_different_input_conflicts() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let input = order_input(f.customer_a, &[(f.offers_a[0], 3)]);
    let first = place(&app, &reseller, input.clone(), "same-key").await;
    let again = place(&app, &reseller, input.clone(), "same-key").await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["order"]["id"], first["order"]["id"]);
    let changed = order_input(f.customer_a, &[(f.offers_a[0], 4)]);
    let (_, body) = app.post(Some(&reseller), PLACE_ORDER, json!({"input": changed, "key": "same-key"})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "IDEMPOTENCY_KEY_REUSED");
    // Another reseller's identical key is unrelated.
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    let theirs = place(&app, &other, order_input(f.customer_b, &[(f.offers_a[0], 3)]), "same-key").await;
    assert_eq!(theirs["replayed"], false);
    assert_ne!(theirs["order"]["id"], first["order"]["id"]);
    assert_eq!(count_rows(&app, "orders").await, 2);
    assert_eq!(count_rows(&app, "jobs").await, 2);
}

#[tokio::test]
async fn two_hundred_concurrent_identical_orders_make_one() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let input = order_input(f.customer_a, &[(f.offers_a[0], 3), (f.offers_a[1], 1)]);
    let requests = (0..200).map(|_| app.post(Some(&reseller), PLACE_ORDER, json!({"input": input, "key": "burst"})));
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut originals = 0;
    for (status, body) in responses {
        assert_eq!(status, 200);
        let payload = &body["data"]["placeOrder"];
        assert!(payload.is_object(), "{body}");
        ids.insert(payload["order"]["id"].as_str().unwrap().to_owned());
        originals += usize::from(payload["replayed"] == false);
    }
    assert_eq!(ids.len(), 1, "one order id for all");
    assert_eq!(originals, 1, "exactly one call created it");
    assert_eq!(count_rows(&app, "orders").await, 1);
    assert_eq!(count_rows(&app, "order_lines").await, 2);
    assert_eq!(count_rows(&app, "subscriptions").await, 2);
    assert_eq!(count_rows(&app, "jobs").await, 2);
}

#[tokio::test]
async fn a_failure_inside_the_order_transaction_leaves_no_rows() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // A real database failure after the order, its first line, subscription and job were
    // written: the second job insert raises.
    let trigger = if is_postgres() {
        vec![
            "CREATE FUNCTION fail_second_job() RETURNS trigger AS $$ BEGIN \
               IF (SELECT COUNT(*) FROM jobs WHERE order_id = NEW.order_id) >= 1 THEN \
                 RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_second_job BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION fail_second_job()",
        ]
    } else {
        vec![
            "CREATE TRIGGER fail_second_job BEFORE INSERT ON jobs \
             WHEN (SELECT COUNT(*) FROM jobs WHERE order_id = NEW.order_id) >= 1 \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ]
    };
    for statement in trigger {
        sea_orm::ConnectionTrait::execute_unprepared(&app.domain.db, statement).await.unwrap();
    }
    let before: Vec<i64> = order_table_counts(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let input = order_input(f.customer_a, &[(f.offers_a[0], 3), (f.offers_a[1], 1)]);
    let (_, body) = app.post(Some(&reseller), PLACE_ORDER, json!({"input": input, "key": "boom"})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL", "{body}");
    assert_eq!(body["errors"][0]["message"], "internal error", "no SQL is leaked");
    let after: Vec<i64> = order_table_counts(&app).await;
    assert_eq!(before, after);
    // With one line the trigger does not fire, and the order goes through.
    let input = order_input(f.customer_a, &[(f.offers_a[0], 3)]);
    place(&app, &reseller, input, "fine").await;
    assert_eq!(count_rows(&app, "orders").await, 1);
}

#[tokio::test]
async fn orders_are_validated_and_scoped() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let cases = [
        (order_input(f.customer_a, &[]), "input.lines"),
        (order_input(f.customer_a, &[(f.offers_a[0], 0)]), "input.lines[0].quantity"),
        (order_input(f.customer_a, &[(f.offers_a[0], 301)]), "input.lines[0].quantity"),
        (order_input(f.customer_a, &[(f.offers_a[0], 1), (f.retired_offer, 1)]), "input.lines[1].offerId"),
        (order_input(f.customer_a, &[(999_999, 1)]), "input.lines[0].offerId"),
    ];
    for (input, field) in cases {
        let (_, body) = app.post(Some(&reseller), PLACE_ORDER, json!({"input": input, "key": "v"})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let (_, body) = app
        .post(
            Some(&reseller),
            PLACE_ORDER,
            json!({"input": order_input(f.customer_b, &[(f.offers_a[0], 1)]), "key": "x"}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "another reseller's customer: {body}");
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let own = place(&app, &customer, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "self").await;
    assert_eq!(own["replayed"], false);
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let (_, body) = app
        .post(
            Some(&vendor),
            PLACE_ORDER,
            json!({"input": order_input(f.customer_a, &[(f.offers_a[0], 1)]), "key": "v"}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(count_rows(&app, "orders").await, 1);
}

#[tokio::test]
async fn a_quote_prices_like_an_order_and_writes_nothing() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let query = "query($input: PlaceOrderInput!) { quoteOrder(input: $input) { currency totalWholesale { amount } totalRetail { amount }
        lines { sku quantity unitCost { amount } unitWholesale { amount } unitRetail { amount } amountRetail { amount } } } }";
    let input = order_input(f.customer_a, &[(f.offers_a[0], 7)]);
    let quote = app.data(&reseller, query, json!({"input": input})).await["quoteOrder"].clone();
    assert_eq!(quote["lines"][0]["amountRetail"]["amount"], "70.00");
    assert_eq!(quote["totalWholesale"]["amount"], "64.40");
    assert_eq!(quote["lines"][0]["unitCost"], Value::Null);
    assert_eq!(count_rows(&app, "orders").await, 0);
    let placed = place(&app, &reseller, input, "q").await;
    assert_eq!(placed["order"]["totalRetail"], quote["totalRetail"]);
    assert_eq!(placed["order"]["totalWholesale"], quote["totalWholesale"]);
}

/// Placing an order costs a fixed number of statements per line and reads back nothing it
/// wrote: the answer is made of the rows just written, the customer's vendor accounts are
/// read once, and a write's events go to the outbox in one statement (#13, item 4). The caller's standing and the catalog are
/// warmed first, as they are cached for seconds.
#[tokio::test]
async fn an_order_takes_a_few_statements_a_line_and_reads_back_nothing_it_wrote() {
    // Cached long enough that a slow machine does not reload them between the orders.
    let app = crate::helpers::spawn_app_with(|s| {
        s.standing_ttl = std::time::Duration::from_secs(600);
        s.catalog_cache_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "warm").await;
    let mut counts = Vec::new();
    for (key, lines) in
        [("one", vec![(f.offers_a[0], 5)]), ("three", vec![(f.offers_a[0], 5), (f.offers_a[1], 1), (f.offers_a[2], 2)])]
    {
        app.reset_statements();
        let placed = place(&app, &reseller, order_input(f.customer_a, &lines), key).await;
        assert_eq!(placed["order"]["lines"].as_array().map(Vec::len), Some(lines.len()), "{placed}");
        assert_eq!(placed["order"]["lines"][0]["subscription"]["status"], "PENDING", "{placed}");
        counts.push(app.statement_count());
    }
    println!("statements to place an order of one line and of three: {counts:?}");
    // One line: 13 on SQLite, and on PostgreSQL the outbox's advisory lock and the relay's
    // notification (18 and 20 before); each further line its subscription, line, seat
    // batch, change record and job (7 before).
    let one_line = if is_postgres() { 15 } else { 13 };
    assert!(counts[0] <= one_line, "one line took {} statements", counts[0]);
    assert_eq!(counts[1] - counts[0], 2 * 5, "two more lines took {} more", counts[1] - counts[0]);
}
