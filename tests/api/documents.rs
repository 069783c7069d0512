//! Invoices a reseller can send (issue #8, §3): the printable HTML names the parties with
//! their legal names, addresses and tax ids, the number, issue and due dates, and for each
//! line the product, service period, quantity, undiscounted price per cycle, days and
//! amount, then subtotal, tax at its rate and total, every amount at minor units; a credit
//! note names the invoice it credits; the CSV rows carry their invoice's header and totals.

use serde_json::json;
use switchyard::domain::Role;

use crate::billing::{invoices, run};
use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};

async fn get(app: &TestApp, path: &str, token: &str) -> String {
    let response = app.client.get(format!("{}{path}", app.address)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn an_issued_invoice_is_a_document_a_reseller_can_send() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    app.data(
        &operator,
        "mutation($id: ID!) { updateReseller(id: $id, input: {legalName: \"Reseller A GmbH\", address: \"Hauptstr. 1\\n10115 Berlin\", taxId: \"DE123456789\", paymentTermsDays: 14}) { paymentTermsDays } }",
        json!({"id": f.reseller_a.to_string()}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &reseller,
        "mutation($id: ID!) { updateCustomer(id: $id, input: {legalName: \"Customer A SARL\", address: \"1 rue de la Paix\\n75002 Paris\", taxId: \"FR99999999999\"}) { legalName } }",
        json!({"id": f.customer_a.to_string()}),
    )
    .await;
    // Five seats at 10.00 a month bought 2 November: 29 of 30 days, 5 × 9.67 = 48.35.
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 5)]), "doc").await;
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = invoice["id"].as_str().unwrap().to_owned();
    let issued = app
        .data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number dueAt } }", json!({"id": id}))
        .await["issueInvoice"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let html = get(&app, &format!("/invoices/{id}"), &reseller).await;
    for required in [
        format!("Invoice {issued}"),
        "Reseller A GmbH".into(),
        "Hauptstr. 1".into(),
        "10115 Berlin".into(),
        "Tax id DE123456789".into(),
        "Customer A SARL".into(),
        "75002 Paris".into(),
        "Tax id FR99999999999".into(),
        "<td>Issue date</td><td>2026-12-01</td>".into(),
        "<td>Due date</td><td>2026-12-15</td>".into(),
        "Offer A-P1Y-M".into(),
        "2026-11-02 – 2026-11-30".into(),
        "<td class=n>5</td><td class=n>10</td><td class=n>29/30</td><td class=n>48.35</td>".into(),
        "Subtotal</td><td class=n>48.35 USD".into(),
        "Tax at 19 %</td><td class=n>9.19 USD".into(),
        "<b>57.54 USD</b>".into(),
        "@page{margin:15mm}".into(),
    ] {
        assert!(html.contains(&required), "the invoice lacks {required:?}:\n{html}");
    }
    // A credit note names the invoice it credits.
    let note = app.data(&reseller, "mutation($id: ID!) { creditInvoice(id: $id) { id } }", json!({"id": id})).await;
    let note_id = note["creditInvoice"]["id"].as_str().unwrap().to_owned();
    let note_html = get(&app, &format!("/invoices/{note_id}"), &reseller).await;
    assert!(note_html.contains(&format!("Credits invoice {issued}")), "{note_html}");
    // CSV: each row with its invoice's header and totals, amounts at minor units.
    let csv = get(&app, &format!("/invoices/{id}/lines.csv"), &reseller).await;
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with(
        "invoice_id,invoice_number,kind,status,side,issuer,recipient,issuer_name,recipient_name,issue_date,due_date,"
    ));
    assert!(rows[1].contains(",Reseller A GmbH,Customer A SARL,"), "{csv}");
    assert!(rows[0].ends_with(",invoice_subtotal,invoice_tax,invoice_total"), "{}", rows[0]);
    assert!(rows[1].contains(&format!(",{issued},INVOICE,ISSUED,sale,")), "{csv}");
    assert!(rows[1].contains(",2026-12-01,2026-12-15,2026-11,USD,"), "{csv}");
    assert!(rows[1].ends_with(",48.35,9.19,57.54"), "{csv}");
    // The period export tells the reseller's sales from its purchases (the operator's invoice).
    let period = get(&app, "/invoices.csv?period=2026-11", &reseller).await;
    assert!(
        period.lines().any(|l| l.contains(",sale,")) && period.lines().any(|l| l.contains(",purchase,")),
        "{period}"
    );
    // The operator's invoice to the reseller: the operator as issuer, reverse-charged.
    let to_reseller = invoices(&app, &operator, json!({"resellerId": f.reseller_a.to_string()}))
        .await
        .into_iter()
        .find(|i| !i["recipientResellerId"].is_null())
        .unwrap();
    let operator_html = get(&app, &format!("/invoices/{}", to_reseller["id"].as_str().unwrap()), &operator).await;
    assert!(
        operator_html.contains("Switchyard Distribution") && operator_html.contains("(reverse charge)"),
        "{operator_html}"
    );
    assert!(operator_html.contains("Reseller A GmbH"), "{operator_html}");
    // An issued invoice never changes: the parties are as they were at issue.
    app.data(
        &operator,
        "mutation($id: ID!) { updateReseller(id: $id, input: {legalName: \"Renamed AG\", taxId: \"\"}) { legalName } }",
        json!({"id": f.reseller_a.to_string()}),
    )
    .await;
    let again = get(&app, &format!("/invoices/{id}"), &reseller).await;
    assert!(
        again.contains("Reseller A GmbH") && again.contains("Tax id DE123456789") && !again.contains("Renamed AG"),
        "{again}"
    );
}
