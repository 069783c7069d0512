//! What the operator sees of margins (issue #8, §3): every charged line at cost, wholesale
//! and retail, and a period's margin report by reseller, customer, vendor and offer, in
//! GraphQL and as CSV, for the operator only.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::billing::run;
use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};

const REPORT: &str = "query($p: String!, $by: MarginGroupBy!) { marginReport(period: $p, groupBy: $by) {
    id name currency lines cost { amount } wholesale { amount } retail { amount } operatorMargin { amount } resellerMargin { amount } } }";

/// Reseller A: 5 seats of A-P1Y-M (cost 8.00, wholesale 9.20, retail 10.00 a month) bought
/// 2 November, 29 of 30 days: 5 × 7.73 = 38.65, 5 × 8.89 = 44.45, 5 × 9.67 = 48.35.
/// Reseller B (EUR): 2 seats of B-P1Y-M.
async fn november(app: &TestApp, f: &Fixture) {
    let a = app.token(Role::Reseller, Some(f.reseller_a));
    place(app, &a, order_input(f.customer_a, &[(f.offers_a[0], 5)]), "a").await;
    let b = app.token(Role::Reseller, Some(f.reseller_b));
    place(app, &b, order_input(f.customer_b, &[(f.offer_b, 2)]), "b").await;
    app.run_jobs().await;
    run(app, "2026-11").await;
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} in {rows}"))
}

#[tokio::test]
async fn the_margin_report_sums_each_group_at_three_prices_for_the_operator_only() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    november(&app, &f).await;
    let operator = app.operator();
    let by_reseller = app.data(&operator, REPORT, json!({"p": "2026-11", "by": "RESELLER"})).await;
    let rows = &by_reseller["marginReport"];
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    let a = row(rows, "Reseller A");
    assert_eq!(a["currency"], "USD");
    let amounts: Vec<&str> = ["cost", "wholesale", "retail", "operatorMargin", "resellerMargin"]
        .iter()
        .map(|k| a[*k]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["38.65", "44.45", "48.35", "5.80", "3.90"]);
    assert_eq!(row(rows, "Reseller B")["currency"], "EUR");
    // Every charged line at the three prices; the report's groups add up to them.
    let charges = app
        .data(
            &operator,
            "query { charges(period: \"2026-11\", first: 100) { totalCount edges { node { resellerId cost { amount } wholesale { amount } retail { amount } } } } }",
            json!({}),
        )
        .await;
    let mine: Vec<&Value> = charges["charges"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["resellerId"].as_str().and_then(|id| id.parse::<i64>().ok()) == Some(f.reseller_a))
        .collect();
    let sum = |k: &str| -> rust_decimal::Decimal {
        mine.iter().map(|n| n[k]["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap()).sum()
    };
    assert_eq!([sum("cost"), sum("wholesale"), sum("retail")].map(|d| d.to_string()), ["38.65", "44.45", "48.35"]);
    for by in ["CUSTOMER", "VENDOR", "OFFER"] {
        let data = app.data(&operator, REPORT, json!({"p": "2026-11", "by": by})).await;
        assert_eq!(data["marginReport"].as_array().unwrap().len(), 2, "{by}: {data}");
    }
    // As CSV, amounts at the currency's minor units.
    let csv = app
        .client
        .get(format!("{}/reports/margin.csv?period=2026-11&groupBy=offer", app.address))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("period,group_by,id,name,currency,lines,cost,wholesale,retail"), "{csv}");
    assert!(lines.iter().any(|l| l.ends_with(",USD,1,38.65,44.45,48.35,5.80,3.90")), "{csv}");
    // Resellers see neither.
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    assert_eq!(app.error_code(Some(&reseller), REPORT, json!({"p": "2026-11", "by": "RESELLER"})).await, "FORBIDDEN");
    let status = app
        .client
        .get(format!("{}/reports/margin.csv?period=2026-11&groupBy=reseller", app.address))
        .bearer_auth(&reseller)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
}
