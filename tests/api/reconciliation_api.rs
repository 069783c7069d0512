//! #10 through HTTP, as an operator's tools would use it: the statement uploaded as a
//! GraphQL multipart request (the spec Apollo's and urql's upload clients speak, built here
//! by hand), the report and the findings, resolution, the CSV exports, and the margin from
//! the vendors' actual charges — and who may not.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, dec, spawn_app, spawn_app_with};
use crate::leakage::december_file;

const BOUNDARY: &str = "----switchyard-test-7MA4YWxkTrZu0gW";

const IMPORT: &str =
    "mutation($v: ID!, $file: Upload!) { importStatement(vendorId: $v, file: $file, period: \"2026-12\") {
    replayed import { id status rowCount sourceName period report { leakage { amount currency } } } } }";

/// A GraphQL multipart request: `operations`, `map`, then the file as part "0".
fn multipart(query: &str, mut variables: Value, name: &str, bytes: &[u8]) -> Vec<u8> {
    variables["file"] = Value::Null;
    let operations = json!({"query": query, "variables": variables});
    let mut body = Vec::new();
    let mut part = |headers: &str, content: &[u8]| {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part("Content-Disposition: form-data; name=\"operations\"", operations.to_string().as_bytes());
    part("Content-Disposition: form-data; name=\"map\"", br#"{"0": ["variables.file"]}"#);
    part(&format!("Content-Disposition: form-data; name=\"0\"; filename=\"{name}\"\r\nContent-Type: text/csv"), bytes);
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, token: Option<&str>, vendor: i64, name: &str, bytes: &[u8]) -> (u16, Value) {
    let body = multipart(IMPORT, json!({"v": vendor.to_string()}), name, bytes);
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn csv(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let response = app.client.get(format!("{}{path}", app.address)).bearer_auth(token).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn an_operator_uploads_a_statement_reads_the_leakage_and_recovers_it() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let (bytes, subscriptions, expected) = december_file(&app, &f).await;
    let operator = app.operator();

    // Anonymous uploads are refused before the body is read; a reseller may not import.
    assert_eq!(upload(&app, None, f.vendor_a, "december.csv", &bytes).await.0, 401);
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let (_, refused) = upload(&app, Some(&reseller), f.vendor_a, "december.csv", &bytes).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    // A wrong row: every error by row and column, nothing written.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let second_row = text.lines().nth(2).unwrap();
    let broken = text.replacen(second_row, &second_row.replacen(",USD,", ",XXX,", 1), 1);
    let (_, rejected) = upload(&app, Some(&operator), f.vendor_a, "broken.csv", broken.as_bytes()).await;
    assert_eq!(rejected["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{rejected}");
    assert_eq!(rejected["errors"][0]["extensions"]["errors"][0]["row"], 3, "{rejected}");
    assert_eq!(rejected["errors"][0]["extensions"]["errors"][0]["column"], "PricingCurrency", "{rejected}");
    assert_eq!(crate::helpers::count_rows(&app, "reconciliation_imports").await, 0);

    let (status, first) = upload(&app, Some(&operator), f.vendor_a, "december.csv", &bytes).await;
    assert_eq!(status, 200, "{first}");
    let import = &first["data"]["importStatement"]["import"];
    assert_eq!(first["data"]["importStatement"]["replayed"], false, "{first}");
    assert_eq!((import["status"].as_str(), import["sourceName"].as_str()), (Some("MATCHED"), Some("december.csv")));
    assert_eq!(import["rowCount"], bytes.iter().filter(|b| **b == b'\n').count() - 1);
    let (_, again) = upload(&app, Some(&operator), f.vendor_a, "december-again.csv", &bytes).await;
    assert_eq!(again["data"]["importStatement"]["replayed"], true);
    assert_eq!(again["data"]["importStatement"]["import"]["id"], import["id"]);
    let import_id = import["id"].as_str().unwrap().to_owned();

    // The report: per category and currency, what the planted discrepancies add up to.
    let mut want: BTreeMap<(String, String), (u64, rust_decimal::Decimal)> = BTreeMap::new();
    for ((key, _), (category, amount)) in &expected {
        let currency = if key.starts_with('#') { "USD" } else { "EUR" };
        let entry = want.entry(((*category).to_owned(), currency.to_owned())).or_default();
        entry.0 += 1;
        entry.1 += *amount;
    }
    let report = app
        .data(
            &operator,
            "query($f: FindingFilterInput!) { reconciliationReport(filter: $f) {
                categories { category findings amount { amount currency } }
                resellers { id name flagged leakage { amount } }
                leakage { amount currency } recovered { amount currency } } }",
            json!({"f": {"importId": import_id}}),
        )
        .await["reconciliationReport"]
        .clone();
    let got: BTreeMap<(String, String), (u64, rust_decimal::Decimal)> = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key =
                (c["category"].as_str().unwrap().to_owned(), c["amount"]["currency"].as_str().unwrap().to_owned());
            (key, (c["findings"].as_u64().unwrap(), dec(c["amount"]["amount"].as_str().unwrap())))
        })
        .collect();
    assert_eq!(got, want);
    let leakage: rust_decimal::Decimal = expected
        .values()
        .filter(|(category, _)| matches!(*category, "UNBILLED" | "UNDERBILLED"))
        .map(|(_, amount)| *amount)
        .sum();
    assert_eq!(report["leakage"], json!([{"amount": leakage.round_dp(2).to_string(), "currency": "EUR"}]));

    // Findings, filtered; the statement rows behind one.
    let findings = |filter: Value| {
        let app = &app;
        let operator = operator.clone();
        async move {
            app.data(
                &operator,
                "query($f: FindingFilterInput!) { reconciliationFindings(filter: $f, first: 50) { totalCount
                    edges { node { id category subscriptionId amount { amount } rule rows { rowNumber chargeType } } } } }",
                json!({"f": filter}),
            )
            .await["reconciliationFindings"]
                .clone()
        }
    };
    let unbilled = findings(json!({"importId": import_id, "category": "UNBILLED"})).await;
    assert_eq!(unbilled["totalCount"], 1);
    let node = &unbilled["edges"][0]["node"];
    assert_eq!(node["subscriptionId"], subscriptions["s12"].to_string());
    assert_eq!(node["rows"][0]["chargeType"], "cycleCharge");
    let of_b = findings(json!({"importId": import_id, "customerId": f.customer_b.to_string()})).await;
    assert_eq!(of_b["totalCount"], 1);
    assert_eq!(of_b["edges"][0]["node"]["subscriptionId"], subscriptions["s11"].to_string());
    // Operator only, and a reseller does not learn that an import exists.
    let hidden = app
        .error_code(Some(&reseller), "query($id: ID!) { statementImport(id: $id) { id } }", json!({"id": import_id}))
        .await;
    assert_eq!(hidden, "FORBIDDEN");

    // CSV of the findings.
    let (status, body) =
        csv(&app, &operator, &format!("/reports/reconciliation.csv?importId={import_id}&category=underbilled")).await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert!(lines[0].starts_with("finding_id,import_id,category,status,amount"));
    assert!(
        lines[1].contains(",UNDERBILLED,OPEN,") && lines[1].contains(&format!(",{},", subscriptions["s5"])),
        "{body}"
    );
    assert_eq!(csv(&app, &reseller, &format!("/reports/reconciliation.csv?importId={import_id}")).await.0, 403);
    let everything = csv(&app, &operator, &format!("/reports/reconciliation.csv?importId={import_id}")).await.1;
    assert_eq!(everything.lines().count(), expected.len() + 1);

    // Recovering the unbilled one shows in the report.
    let id = node["id"].clone();
    let recovered = app
        .data(
            &operator,
            "mutation($id: ID!) { recoverFinding(id: $id, billCustomer: true, note: \"the vendor never took the cancellation\") { status recoveryChargeId recoveryBillsCustomer } }",
            json!({"id": id}),
        )
        .await["recoverFinding"]
        .clone();
    assert_eq!(
        (recovered["status"].as_str(), recovered["recoveryBillsCustomer"].as_bool()),
        (Some("RECOVERED"), Some(true))
    );
    let again = app
        .error_code(
            Some(&operator),
            "mutation($id: ID!) { recoverFinding(id: $id, billCustomer: true) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(again, "CONFLICT");
    let after = app
        .data(
            &operator,
            "query($f: FindingFilterInput!) { reconciliationReport(filter: $f) { recovered { amount } } }",
            json!({"f": {"importId": import_id}}),
        )
        .await;
    assert_eq!(after["reconciliationReport"]["recovered"][0]["amount"], node["amount"]["amount"]);

    // The margin from the vendor's actual charges: reseller B's one EUR seat cost 7.40 at the
    // vendor, 8.51 at wholesale (15 % tier) and 9.20 at retail (list).
    let margin = app
        .data(
            &operator,
            "{ vendorMarginReport(period: \"2026-12\", groupBy: RESELLER) { id currency cost { amount } wholesale { amount } retail { amount } operatorMargin { amount } } }",
            json!({}),
        )
        .await["vendorMarginReport"]
        .clone();
    let b = margin
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"].as_str() == Some(f.reseller_b.to_string().as_str()))
        .unwrap();
    assert_eq!(
        (
            b["currency"].as_str(),
            b["cost"]["amount"].as_str(),
            b["wholesale"]["amount"].as_str(),
            b["retail"]["amount"].as_str()
        ),
        (Some("EUR"), Some("7.40"), Some("8.51"), Some("9.20")),
        "{margin}"
    );
    assert_eq!(b["operatorMargin"]["amount"], "1.11");
    let (status, margin_csv) =
        csv(&app, &operator, "/reports/margin.csv?period=2026-12&groupBy=reseller&cost=vendor").await;
    assert_eq!(status, 200);
    assert!(margin_csv.contains("Reseller B,EUR,1,7.40,8.51,9.20,1.11,0.69"), "{margin_csv}");
}

#[tokio::test]
async fn an_upload_past_the_limit_is_413_and_a_request_that_is_not_multipart_is_400() {
    let app = spawn_app_with(|config| config.max_upload_bytes = 2_000).await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let big = vec![b'x'; 4_000];
    assert_eq!(upload(&app, Some(&operator), f.vendor_a, "big.csv", &big).await.0, 413);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .bearer_auth(&operator)
        .body("not multipart at all")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
}
