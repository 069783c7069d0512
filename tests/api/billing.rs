//! Billing end to end through the API: order → provision → run → two tiers of invoices at
//! the cascade's prices; idempotent and concurrent runs; proration of changes; preview ==
//! actual; gapless numbering under concurrency with rollbacks; usage deduplicated forever.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{ExtraOffer, Fixture, TestApp, count_rows, is_postgres, spawn_app};
use crate::orders::{order_input, place};

pub const RUN: &str =
    "mutation($p: String!) { runBilling(period: $p) { subscriptions chargesCreated invoicesTouched } }";
pub const INVOICES: &str = "query($f: InvoiceFilterInput) { invoices(first: 50, filter: $f) { totalCount edges { node {
    id kind status number period recipientCustomerId recipientResellerId subtotal { amount } tax { amount } total { amount }
    lines { description customerId quantity unitPrice { amount } daysUsed daysInPeriod amount { amount } } } } } }";

pub async fn run(app: &TestApp, period: &str) -> Value {
    app.data(&app.operator(), RUN, json!({"p": period})).await["runBilling"].clone()
}

pub async fn invoices(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let data = app.data(token, INVOICES, json!({"f": filter})).await;
    data["invoices"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

/// Five seats of the $10 (retail) / $9.20 (wholesale) monthly offer, bought on 2 November.
async fn five_seats(app: &TestApp, f: &Fixture) -> String {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = place(app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 5)]), "bill").await;
    app.run_jobs().await;
    placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_order_is_billed_to_the_customer_and_to_the_reseller_at_cascade_prices() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    five_seats(&app, &f).await;
    let first = run(&app, "2026-11").await;
    assert_eq!(first["chargesCreated"], 1);
    assert_eq!(first["invoicesTouched"], 2);

    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let to_customer = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await;
    assert_eq!(to_customer.len(), 1);
    let invoice = &to_customer[0];
    assert_eq!(invoice["status"], "DRAFT");
    let line = &invoice["lines"][0];
    // 29 of 30 November days: round(10.00 / 30 × 29) = 9.67, × 5 seats.
    assert_eq!((line["daysUsed"].clone(), line["daysInPeriod"].clone()), (json!(29), json!(30)));
    assert_eq!(line["unitPrice"]["amount"], "9.67");
    assert_eq!(line["amount"]["amount"], "48.35");
    assert_eq!(invoice["subtotal"]["amount"], "48.35");
    assert_eq!(invoice["tax"]["amount"], "9.19", "19 % of the rounded subtotal");
    assert_eq!(invoice["total"]["amount"], "57.54");

    // The operator's invoice to the reseller, at wholesale, itemised by customer.
    let to_reseller =
        invoices(&app, &app.operator(), json!({"resellerId": f.reseller_a.to_string(), "period": "2026-11"})).await;
    let operator_invoice =
        to_reseller.iter().find(|i| i["recipientResellerId"] == json!(f.reseller_a.to_string())).unwrap();
    assert_eq!(operator_invoice["lines"][0]["unitPrice"]["amount"], "8.89", "round(9.20 / 30 × 29)");
    assert_eq!(operator_invoice["lines"][0]["amount"]["amount"], "44.45");
    assert_eq!(operator_invoice["lines"][0]["customerId"], json!(f.customer_a.to_string()));
    assert_eq!(operator_invoice["total"]["amount"], "44.45");

    // Billing the same period again adds nothing.
    let again = run(&app, "2026-11").await;
    assert_eq!((&again["chargesCreated"], &again["invoicesTouched"]), (&json!(0), &json!(0)), "{again}");
    assert_eq!(count_rows(&app, "invoice_lines").await, 2);

    // The customer sees its invoice only once issued, and never the operator's.
    let customer = app.token(Role::Customer, Some(f.customer_a));
    assert!(invoices(&app, &customer, json!({})).await.is_empty(), "drafts are the reseller's");
    let issued = app
        .data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number status } }", json!({"id": invoice["id"]}))
        .await;
    assert_eq!(issued["issueInvoice"]["number"], "RSLA-2026-000001");
    let seen = invoices(&app, &customer, json!({})).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["total"]["amount"], "57.54");
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    assert!(invoices(&app, &other, json!({})).await.is_empty());
    assert_eq!(
        app.error_code(Some(&other), "query($id: ID!) { invoice(id: $id) { id } }", json!({"id": invoice["id"]})).await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn changes_are_prorated_and_late_ones_become_adjustments() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = five_seats(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    run(&app, "2026-11").await;
    // +3 seats on 25 November: 6 days of 30 → round(10 / 30 × 6) = 2.00 × 3.
    app.clock.set("2026-11-25T12:00:00Z".parse().unwrap());
    app.data(
        &reseller,
        "mutation($id: ID!) { changeSubscriptionQuantity(id: $id, quantity: 8, idempotencyKey: \"up\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
    app.run_jobs().await;
    let preview = app
        .data(&reseller, "query($c: ID!) { previewBilling(customerId: $c, period: \"2026-11\") { lines { kind amount { amount } } subtotal { amount } total { amount } } }", json!({"c": f.customer_a.to_string()}))
        .await["previewBilling"]
        .clone();
    assert_eq!(run(&app, "2026-11").await["chargesCreated"], 1);
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    assert_eq!(invoice["lines"][1]["amount"]["amount"], "6.00");
    assert_eq!(invoice["subtotal"]["amount"], "54.35");
    assert_eq!(preview["subtotal"], invoice["subtotal"], "the preview is what the run produced");
    assert_eq!(preview["total"], invoice["total"]);
    assert_eq!(preview["lines"].as_array().unwrap().len(), 2);

    // Issue November; a change after that lands on December as an adjustment.
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": invoice["id"]})).await;
    app.data(&reseller, "mutation($id: ID!) { changeSubscriptionQuantity(id: $id, quantity: 6, idempotencyKey: \"down\") { replayed } }", json!({"id": subscription})).await;
    app.run_jobs().await;
    assert_eq!(run(&app, "2026-11").await["chargesCreated"], 0, "an issued invoice never changes");
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    let preview = app
        .data(&reseller, "query($c: ID!) { previewBilling(customerId: $c, period: \"2026-12\") { lines { kind description amount { amount } } total { amount } } }", json!({"c": f.customer_a.to_string()}))
        .await["previewBilling"]
        .clone();
    run(&app, "2026-12").await;
    let december =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2026-12"})).await.remove(0);
    let amounts: Vec<&str> =
        december["lines"].as_array().unwrap().iter().map(|l| l["amount"]["amount"].as_str().unwrap()).collect();
    // The refund of 2 seats for 6 November days (-2 × 2.00), then December's 6 seats in advance.
    assert!(amounts.contains(&"-4.00"), "{december}");
    assert!(amounts.contains(&"60.00"), "{december}");
    assert_eq!(preview["total"], december["total"]);
    let kinds: Vec<&str> = preview["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"RECURRING") && kinds.contains(&"REFUND"), "{kinds:?}");
}

#[tokio::test]
async fn two_runs_at_once_make_one_set_of_invoices() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    five_seats(&app, &f).await;
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    place(&app, &reseller_b, order_input(f.customer_b, &[(f.offers_a[2], 2)]), "b").await;
    app.run_jobs().await;
    let operator = app.operator();
    let (a, b) = tokio::join!(
        app.post(Some(&operator), RUN, json!({"p": "2026-11"})),
        app.post(Some(&operator), RUN, json!({"p": "2026-11"}))
    );
    assert!(a.1.get("errors").is_none() && b.1.get("errors").is_none(), "{a:?} {b:?}");
    assert_eq!(count_rows(&app, "charges").await, 2);
    assert_eq!(count_rows(&app, "invoices").await, 4, "two customers and two resellers");
    assert_eq!(count_rows(&app, "invoice_lines").await, 4);
}

#[tokio::test]
async fn issued_numbers_are_gapless_under_concurrency_and_rollbacks() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let n = if is_postgres() { 500 } else { 120 };
    let now = "2026-11-02 09:00:00+00:00";
    for index in 0..n {
        let recipient = if index % 10 == 7 { format!("FAIL{index}") } else { format!("X{index}") };
        app.domain
            .db
            .execute_unprepared(&format!(
                "INSERT INTO invoices (kind, issuer_key, issuer_reseller_id, recipient_key, period, currency, status, tax_rate, subtotal, tax, total, created_at, updated_at) \
                 VALUES ('INVOICE', 'RSL{r}', {r}, '{recipient}', '2026-11', 'USD', 'DRAFT', '0', '1', '0', '1', '{now}', '{now}')",
                r = f.reseller_a
            ))
            .await
            .unwrap();
    }
    // Every tenth issue fails after its number was drawn: the rollback must leave no gap.
    let trigger = if is_postgres() {
        vec![
            "CREATE FUNCTION fail_issue() RETURNS trigger AS $$ BEGIN IF NEW.status = 'ISSUED' AND NEW.recipient_key LIKE 'FAIL%' \
             THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_issue BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION fail_issue()",
        ]
    } else {
        vec![
            "CREATE TRIGGER fail_issue BEFORE UPDATE ON invoices WHEN NEW.status = 'ISSUED' AND NEW.recipient_key LIKE 'FAIL%' \
              BEGIN SELECT RAISE(ABORT, 'injected'); END",
        ]
    };
    for statement in trigger {
        app.domain.db.execute_unprepared(statement).await.unwrap();
    }
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let ids: Vec<i64> = (1..=n as i64).collect();
    let issues = ids.iter().map(|id| {
        app.post(
            Some(&reseller),
            "mutation($id: ID!) { issueInvoice(id: $id) { number } }",
            json!({"id": id.to_string()}),
        )
    });
    let results = futures_util::future::join_all(issues).await;
    let mut numbers: Vec<u32> = Vec::new();
    let mut failed = 0;
    for (_, body) in results {
        match body["data"]["issueInvoice"]["number"].as_str() {
            Some(number) => numbers.push(number.rsplit('-').next().unwrap().parse().unwrap()),
            None => failed += 1,
        }
    }
    numbers.sort_unstable();
    assert_eq!(failed, n / 10);
    let expected: Vec<u32> = (1..=(n - n / 10) as u32).collect();
    assert_eq!(numbers, expected, "numbers 1..N, no gap, no duplicate");
}

#[tokio::test]
async fn usage_is_deduplicated_forever_and_billed_in_arrears() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f
        .offer(
            &app,
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
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = place(&app, &reseller, order_input(f.customer_a, &[(offer, 1)]), "azure").await;
    app.run_jobs().await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].clone();
    let record = |id: &str, quantity: &str, at: &str| json!({"subscriptionId": subscription, "externalId": id, "meter": "azure", "quantity": quantity, "occurredAt": at});
    const RECORD: &str = "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { externalId status } }";
    app.clock.set("2026-11-30T00:00:00Z".parse().unwrap());
    let first = app.data(&reseller, RECORD, json!({"r": [record("u-1", "55", "2026-11-10T00:00:00Z")]})).await;
    assert_eq!(first["recordUsage"][0]["status"], "ACCEPTED");
    let retry = app.data(&reseller, RECORD, json!({"r": [record("u-1", "55", "2026-11-10T00:00:00Z")]})).await;
    assert_eq!(retry["recordUsage"][0]["status"], "DUPLICATE");
    let (_, body) = app.post(Some(&reseller), RECORD, json!({"r": [{"subscriptionId": subscription, "externalId": "x", "meter": "other", "quantity": "1", "occurredAt": "2026-11-10T00:00:00Z"}]})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "records[0].meter");

    // In arrears: November's usage is December's run's.
    app.clock.set("2026-12-01T06:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    run(&app, "2026-12").await;
    let invoice =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2026-12"})).await.remove(0);
    let usage = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["description"].as_str().unwrap().starts_with("usage"))
        .unwrap()
        .clone();
    assert_eq!(usage["amount"]["amount"], "3.69", "0.067 × 55 = 3.685 → 3.69");
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": invoice["id"]})).await;

    // A retry after billing is still a duplicate; late usage for November lands on January.
    let late = app
        .data(
            &reseller,
            RECORD,
            json!({"r": [record("u-1", "55", "2026-11-10T00:00:00Z"), record("u-2", "10", "2026-11-29T00:00:00Z")]}),
        )
        .await;
    assert_eq!(late["recordUsage"][0]["status"], "DUPLICATE");
    assert_eq!(late["recordUsage"][1]["status"], "ACCEPTED");
    app.clock.set("2027-01-01T06:00:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    let january =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2027-01"})).await.remove(0);
    let late_line = january["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["description"].as_str().unwrap().contains("2026-11"))
        .unwrap()
        .clone();
    assert_eq!(late_line["amount"]["amount"], "0.67");
    assert_eq!(count_rows(&app, "usage_records").await, 2);
}

#[tokio::test]
async fn the_invoice_lifecycle_refuses_changes_to_issued_invoices() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    five_seats(&app, &f).await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = json!({"id": invoice["id"]});
    let paid = "mutation($id: ID!) { markInvoicePaid(id: $id) { status } }";
    assert_eq!(app.error_code(Some(&reseller), paid, id.clone()).await, "BAD_USER_INPUT", "a draft cannot be paid");
    let customer = app.token(Role::Customer, Some(f.customer_a));
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { status } }", id.clone()).await;
    assert_eq!(app.error_code(Some(&customer), paid, id.clone()).await, "FORBIDDEN", "only the issuer");
    assert_eq!(
        app.error_code(Some(&reseller), "mutation($id: ID!) { issueInvoice(id: $id) { status } }", id.clone()).await,
        "BAD_USER_INPUT"
    );
    let note = app
        .data(
            &reseller,
            "mutation($id: ID!) { creditInvoice(id: $id) { id kind total { amount } creditedInvoiceId } }",
            id.clone(),
        )
        .await;
    assert_eq!(note["creditInvoice"]["kind"], "CREDIT_NOTE");
    assert_eq!(note["creditInvoice"]["total"]["amount"], "-57.54");
    let issued_note = app
        .data(
            &reseller,
            "mutation($id: ID!) { issueInvoice(id: $id) { number } }",
            json!({"id": note["creditInvoice"]["id"]}),
        )
        .await;
    assert_eq!(issued_note["issueInvoice"]["number"], "RSLA-2026-000002");
    let data = app.data(&reseller, paid, id.clone()).await;
    assert_eq!(data["markInvoicePaid"]["status"], "PAID");
    assert_eq!(
        app.error_code(Some(&reseller), "mutation($id: ID!) { voidInvoice(id: $id) { status } }", id).await,
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn invoices_export_as_html_and_csv_for_authorized_callers_only() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    five_seats(&app, &f).await;
    run(&app, "2026-11").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = invoice["id"].as_str().unwrap();
    let get = |path: String, token: Option<String>| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let page = get(format!("/invoices/{id}"), Some(reseller.clone())).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Draft invoice") && html.contains("48.35") && html.contains("57.54"), "{html}");
    let csv = get(format!("/invoices/{id}/lines.csv"), Some(reseller.clone())).await.unwrap().text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains(",29,30,48.35,"), "{csv}");
    let period = get("/invoices.csv?period=2026-11".into(), Some(app.operator())).await.unwrap().text().await.unwrap();
    assert_eq!(period.lines().count(), 3, "both tiers' lines: {period}");
    assert_eq!(get(format!("/invoices/{id}"), None).await.unwrap().status(), 401);
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    assert_eq!(get(format!("/invoices/{id}"), Some(other)).await.unwrap().status(), 404);
}

/// A three-year subscription keeps its price for its whole term, whatever the price list does.
#[tokio::test]
async fn a_p3y_subscription_keeps_its_price_across_a_price_change() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[2], 3)]), "p3y").await; // P3Y, ANNUAL
    app.run_jobs().await;
    app.data(
        &app.operator(),
        "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"16.00\", listPrice: \"20.00\", effectiveFrom: \"2027-01-01T00:00:00Z\"}) { id } }",
        json!({"o": f.offers_a[2].to_string()}),
    )
    .await;
    app.clock.set("2027-11-03T00:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    run(&app, "2027-11").await;
    let second_year =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2027-11"})).await.remove(0);
    let line = &second_year["lines"][0];
    assert_eq!(line["unitPrice"]["amount"], "10.00", "the locked price, not the new 20.00");
    assert_eq!(
        (line["daysUsed"].clone(), line["daysInPeriod"].clone()),
        (json!(366), json!(366)),
        "the year to November 2028 has 29 February"
    );
    assert_eq!(line["amount"]["amount"], "30.00");
}

/// A run that dies half-way (here: the database refuses one invoice) completes when run
/// again, without duplicating anything it had already written.
#[tokio::test]
async fn a_crashed_run_resumes_without_duplicates() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    five_seats(&app, &f).await;
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    place(&app, &reseller_b, order_input(f.customer_b, &[(f.offers_a[2], 2)]), "b").await;
    app.run_jobs().await;
    let recipient = format!("CUS{}", f.customer_b);
    let trigger = if is_postgres() {
        vec![
            format!(
                "CREATE FUNCTION fail_invoice() RETURNS trigger AS $$ BEGIN IF NEW.recipient_key = '{recipient}' THEN RAISE EXCEPTION 'crash'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER fail_invoice BEFORE INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION fail_invoice()"
                .to_owned(),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER fail_invoice BEFORE INSERT ON invoices WHEN NEW.recipient_key = '{recipient}' BEGIN SELECT RAISE(ABORT, 'crash'); END"
        )]
    };
    for statement in &trigger {
        app.domain.db.execute_unprepared(statement).await.unwrap();
    }
    let (_, body) = app.post(Some(&app.operator()), RUN, json!({"p": "2026-11"})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL", "{body}");
    assert_eq!(count_rows(&app, "charges").await, 2, "charges were written before the crash");
    let failed = count_rows(&app, "billing_runs WHERE status = 'FAILED'").await;
    assert_eq!(failed, 1);
    let drop = if is_postgres() { "DROP TRIGGER fail_invoice ON invoices" } else { "DROP TRIGGER fail_invoice" };
    app.domain.db.execute_unprepared(drop).await.unwrap();
    let resumed = run(&app, "2026-11").await;
    assert_eq!(resumed["chargesCreated"], 0);
    assert_eq!(count_rows(&app, "charges").await, 2);
    assert_eq!(count_rows(&app, "invoices").await, 4);
    assert_eq!(count_rows(&app, "invoice_lines").await, 4);
    assert_eq!(count_rows(&app, "billing_runs WHERE status = 'COMPLETED'").await, 1);
}

/// An invoice whose refunds outweigh its charges is a credit note, never a negative invoice.
#[tokio::test]
async fn a_period_of_refunds_becomes_a_credit_note() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Bought on 30 November, so December's cycle is billed in advance on 1 December.
    app.clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 5)]), "late").await;
    app.run_jobs().await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].clone();
    app.clock.set("2026-12-01T01:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    run(&app, "2026-12").await;
    let december =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2026-12"})).await.remove(0);
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": december["id"]})).await;
    // Cancelled on 3 December, inside the window: the refund lands on January with no charge.
    app.clock.set("2026-12-03T09:00:00Z".parse().unwrap());
    app.data(
        &reseller,
        "mutation($id: ID!) { cancelSubscription(id: $id, idempotencyKey: \"c\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
    app.run_jobs().await;
    app.clock.set("2027-01-01T01:00:00Z".parse().unwrap());
    run(&app, "2027-01").await;
    let january =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2027-01"})).await.remove(0);
    assert_eq!(january["kind"], "CREDIT_NOTE", "{january}");
    // 29 of December's 31 days refunded: round(10 / 31 × 29) = 9.35 × 5.
    assert_eq!(january["subtotal"]["amount"], "-46.75");
    assert_eq!(january["total"]["amount"], "-55.63");
}

/// A purchase the vendor refused is never billed.
#[tokio::test]
async fn a_failed_purchase_is_not_billed() {
    use crate::provisioning::{FakeVendor, Script, order_from_http_vendor};
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::Always(400, "tenant not found")).await;
    order_from_http_vendor(&app, &f, &vendor).await;
    app.run_jobs().await;
    let summary = run(&app, "2026-11").await;
    assert_eq!(summary["chargesCreated"], 0, "{summary}");
    assert_eq!(count_rows(&app, "invoices").await, 0);
}

/// Billing continues while a subscription is suspended.
#[tokio::test]
async fn a_suspended_subscription_is_still_billed() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let subscription = five_seats(&app, &f).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!) { suspendSubscription(id: $id, idempotencyKey: \"s\") { subscription { status } } }",
        json!({"id": subscription}),
    )
    .await;
    app.run_jobs().await;
    app.clock.set("2026-12-01T01:00:00Z".parse().unwrap());
    run(&app, "2026-12").await;
    let december =
        invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string(), "period": "2026-12"})).await.remove(0);
    let amounts: Vec<&str> =
        december["lines"].as_array().unwrap().iter().map(|l| l["amount"]["amount"].as_str().unwrap()).collect();
    assert!(amounts.contains(&"50.00"), "December in advance for 5 suspended seats: {december}");
}
