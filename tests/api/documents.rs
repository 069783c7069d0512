//! Invoices a reseller can send (issue #8, §3): the printable HTML names the parties with
//! their legal names, addresses and tax ids, the number, issue and due dates, and for each
//! line the product, service period, quantity, undiscounted price per cycle, days and
//! amount, then subtotal, tax at its rate and total, every amount at minor units; a credit
//! note names the invoice it credits; the CSV rows carry their invoice's header and totals.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
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
        "<span class=d>2026-11-02</span> – <span class=d>2026-11-30</span>".into(),
        // The line's description names the same last day.
        "purchase: +5 × 2026-11-02 – 2026-11-30".into(),
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

#[tokio::test]
async fn a_reseller_keeps_its_own_legal_details_and_payment_terms_but_nothing_else() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let update = "mutation($id: ID!, $input: UpdateResellerInput!) { updateReseller(id: $id, input: $input) { legalName address taxId paymentTermsDays } }";
    let own = json!({"id": f.reseller_a.to_string(),
                     "input": {"legalName": "Reseller A GmbH", "address": "Hauptstr. 1", "taxId": "DE123456789", "paymentTermsDays": 10}});
    let updated = app.data(&reseller, update, own).await;
    assert_eq!(
        updated["updateReseller"],
        json!({"legalName": "Reseller A GmbH", "address": "Hauptstr. 1", "taxId": "DE123456789", "paymentTermsDays": 10})
    );
    // Its name, tier, prefix, partner id and status stay the operator's to change.
    for input in [
        json!({"name": "Renamed"}),
        json!({"tierId": f.tier_gold.to_string()}),
        json!({"invoicePrefix": "ZZ"}),
        json!({"externalPartnerId": "x"}),
        json!({"status": "INACTIVE"}),
        json!({"legalName": "Mixed", "name": "Renamed"}),
    ] {
        let code =
            app.error_code(Some(&reseller), update, json!({"id": f.reseller_a.to_string(), "input": input})).await;
        assert_eq!(code, "FORBIDDEN", "{input}");
    }
    // Another reseller is not found, as if it did not exist; a customer may not.
    let other = json!({"id": f.reseller_b.to_string(), "input": {"legalName": "Mine now"}});
    assert_eq!(app.error_code(Some(&reseller), update, other).await, "NOT_FOUND");
    let as_other = json!({"id": f.reseller_a.to_string(), "input": {"legalName": "Mine now"}});
    for token in [app.token(Role::Customer, Some(f.customer_a)), app.token(Role::Vendor, Some(f.vendor_a))] {
        assert_eq!(app.error_code(Some(&token), update, as_other.clone()).await, "FORBIDDEN");
    }
    // Its payment terms stay within bounds.
    for days in [0, 366] {
        let terms = json!({"id": f.reseller_a.to_string(), "input": {"paymentTermsDays": days}});
        assert_eq!(app.error_code(Some(&reseller), update, terms).await, "BAD_USER_INPUT", "{days} days");
    }
    // The audit log says what changed, from what to what, and who changed it.
    let audit = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::Action.eq("updateReseller"))
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor_organization_id, Some(f.reseller_a));
    assert_eq!(audit[0].details["taxId"], json!({"from": null, "to": "DE123456789"}));
    assert_eq!(audit[0].details["paymentTermsDays"], json!({"from": 30, "to": 10}));
    assert!(audit[0].details.get("name").is_none(), "{}", audit[0].details);
    let stored = app
        .data(
            &app.operator(),
            "query($id: ID!) { reseller(id: $id) { name legalName } }",
            json!({"id": f.reseller_a.to_string()}),
        )
        .await;
    assert_eq!(stored["reseller"], json!({"name": "Reseller A", "legalName": "Reseller A GmbH"}));
}

/// The page's printable width in CSS pixels (96 per inch) for paper of this width in inches
/// with the invoice's 15 mm margins.
fn printable_pixels(paper_inches: f64) -> f64 {
    (paper_inches * 25.4 - 30.0) / 25.4 * 96.0
}

#[tokio::test]
async fn an_invoice_prints_on_a4_and_letter_in_a_real_browser() {
    let Some(mut browser) =
        crate::browser::Browser::launch("an_invoice_prints_on_a4_and_letter_in_a_real_browser").await
    else {
        return;
    };
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    app.data(
        &app.operator(),
        "mutation($id: ID!) { updateReseller(id: $id, input: {legalName: \"Reseller A Gesellschaft mit beschränkter Haftung & Co. Kommanditgesellschaft\", address: \"Hauptstraße 1\\n10115 Berlin\", taxId: \"DE123456789\"}) { legalName } }",
        json!({"id": f.reseller_a.to_string()}),
    )
    .await;
    // Forty subscriptions: forty lines, more than one page holds.
    for index in 0..40 {
        place(
            &app,
            &reseller,
            order_input(f.customer_a, &[(f.offers_a[index % 3], 1 + index as i32)]),
            &format!("print-{index}"),
        )
        .await;
    }
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    run(&app, "2026-11").await;
    let invoice = invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = invoice["id"].as_str().unwrap().to_owned();
    let number = app
        .data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": id}))
        .await["issueInvoice"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    browser
        .open(&format!("{}/invoices/{id}", app.address), json!({"Authorization": format!("Bearer {reseller}")}))
        .await;
    assert_eq!(browser.eval("document.title").await, json!(format!("Invoice {number}")));
    for (paper, width, height, points) in [("A4", 8.27, 11.69, (595.0, 842.0)), ("Letter", 8.5, 11.0, (612.0, 792.0))] {
        // Laid out for print at the paper's printable width, nothing sticks out on the right
        // and every part of the invoice is there.
        browser.call("Emulation.setEmulatedMedia", json!({"media": "print"})).await;
        let pixels = printable_pixels(width).floor();
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": pixels as i64, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        let layout = browser
            .eval(
                "(() => { const w = document.documentElement.clientWidth; \
                 const over = [...document.querySelectorAll('body *')] \
                   .filter(e => e.getBoundingClientRect().right > w + 0.5) \
                   .map(e => e.tagName + ': ' + e.textContent.slice(0, 40)).slice(0, 10); \
                 return {width: w, scroll: document.documentElement.scrollWidth, over, \
                         text: document.body.innerText, rows: document.querySelectorAll('tbody tr').length}; })()",
            )
            .await;
        assert_eq!(layout["over"], json!([]), "{paper}: elements past the printable width {pixels}px");
        assert!(layout["scroll"].as_f64() <= layout["width"].as_f64(), "{paper}: {layout}");
        let text = layout["text"].as_str().unwrap();
        for required in [
            format!("Invoice {number}"),
            "Kommanditgesellschaft".into(),
            "Tax id DE123456789".into(),
            "Due date".into(),
            "Offer A-P1Y-M".into(),
            "Subtotal".into(),
            "Total".into(),
        ] {
            assert!(text.contains(&required), "{paper}: the printed invoice lacks {required:?}");
        }
        assert!(layout["rows"].as_u64().unwrap() >= 40, "{paper}: {}", layout["rows"]);
        // Printed: several pages, each of the paper's size.
        let pdf = browser.print_pdf(width, height).await;
        if let Some(dir) = std::env::var_os("SWITCHYARD_PRINT_DIR") {
            std::fs::write(std::path::Path::new(&dir).join(format!("invoice-{paper}.pdf")), &pdf).unwrap();
        }
        let pages = crate::browser::pdf_pages(&pdf);
        assert!(pages.len() >= 2, "{paper}: forty lines print on {} page(s)", pages.len());
        for (w, h) in pages {
            assert!((w - points.0).abs() < 2.0 && (h - points.1).abs() < 2.0, "{paper}: a page of {w} × {h} pt");
        }
    }
}
