//! #13 item 2: an operation is checked by the gate (limits, scopes, rate charge, validation)
//! and then run on a schema without extensions. The gate must never run an operation, and
//! what it refuses must never run (a rate-limited operation: `rate_limits`; an API key's
//! fields checked one by one: `api_keys`).

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const CREATE: &str =
    r#"mutation { createVendor(input: {code: "pax", name: "Pax Cloud", connectorKind: SANDBOX}) { code } }"#;

/// How many vendors have one of these codes (read from the database).
async fn vendors(app: &TestApp, codes: &str) -> usize {
    let db = &app.state.domain.db;
    let sql = format!("SELECT code FROM vendors WHERE code IN ({codes})");
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().len()
}

#[tokio::test]
async fn an_admitted_mutation_runs_once_over_post_and_in_a_batch() {
    let app = spawn_app().await;
    let operator = app.operator();
    // Run twice, the second run would be refused CONFLICT (the code is taken) or make a second vendor.
    let (status, body) = app.post(Some(&operator), CREATE, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"data": {"createVendor": {"code": "pax"}}}));
    assert_eq!(vendors(&app, "'pax'").await, 1);
    // A batch runs on the schema with every extension: once as well.
    let second = CREATE.replace("pax", "pix");
    let batch: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&operator)
        .json(&json!([{"query": second}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch, json!([{"data": {"createVendor": {"code": "pix"}}}]));
    assert_eq!(vendors(&app, "'pix'").await, 1);
}

#[tokio::test]
async fn a_mutation_the_gate_refuses_never_runs() {
    let app = spawn_app_with(|c| c.max_aliases = 1).await;
    let operator = app.operator();
    // Over the document limits.
    let aliased = r#"mutation { a: createVendor(input: {code: "pax", name: "Pax", connectorKind: SANDBOX}) { code }
        b: createVendor(input: {code: "pix", name: "Pix", connectorKind: SANDBOX}) { code } }"#;
    let (_, body) = app.post(Some(&operator), aliased, json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("too many aliases"), "{body}");
    assert_eq!(vendors(&app, "'pax', 'pix'").await, 0, "a refused mutation ran");
}
