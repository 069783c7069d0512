//! #13 item 2: an operation is checked by the gate (limits, scopes, rate charge, validation)
//! and then run on a schema without extensions. The gate must never run an operation, and
//! what it refuses must never run (a rate-limited operation: `rate_limits`; an API key's
//! fields checked one by one: `api_keys`).

use serde_json::json;

use crate::helpers::{count_rows, spawn_app, spawn_app_with};

const CREATE: &str =
    r#"mutation { createVendor(input: {code: "pax", name: "Pax Cloud", connectorKind: SANDBOX}) { code } }"#;

#[tokio::test]
async fn an_admitted_mutation_runs_once_over_post_and_in_a_batch() {
    let app = spawn_app().await;
    let operator = app.operator();
    let before = count_rows(&app, "vendors").await;
    // Run twice, the second run would be refused CONFLICT (the code is taken) or make a second vendor.
    let (status, body) = app.post(Some(&operator), CREATE, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"data": {"createVendor": {"code": "pax"}}}));
    assert_eq!(count_rows(&app, "vendors").await, before + 1);
    // A batch runs on the schema with every extension: once as well.
    let second = CREATE.replace("pax", "pix");
    let (status, batch) = app.post_body(Some(&operator), &json!([{"query": second}])).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch, json!([{"data": {"createVendor": {"code": "pix"}}}]));
    assert_eq!(count_rows(&app, "vendors").await, before + 2);
}

#[tokio::test]
async fn a_mutation_the_gate_refuses_never_runs() {
    let app = spawn_app_with(|c| c.max_aliases = 1).await;
    let operator = app.operator();
    let before = count_rows(&app, "vendors").await;
    // Over the document limits.
    let aliased = r#"mutation { a: createVendor(input: {code: "pax", name: "Pax", connectorKind: SANDBOX}) { code }
        b: createVendor(input: {code: "pix", name: "Pix", connectorKind: SANDBOX}) { code } }"#;
    let (_, body) = app.post(Some(&operator), aliased, json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("too many aliases"), "{body}");
    assert_eq!(count_rows(&app, "vendors").await, before, "a refused mutation ran");
}

#[tokio::test]
async fn nested_pages_of_the_largest_first_are_refused_not_a_dropped_connection() {
    let app = spawn_app().await;
    // 2147483647 × 2147483647 × … once overflowed the complexity's multiplication.
    let nested = "{ vendors(first: 2147483647) { nodes { products(first: 2147483647) { nodes { name offers { name sku } } } } } }";
    let (status, body) = app.post(Some(&app.operator()), nested, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
}
