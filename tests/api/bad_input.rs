//! Bad input is a clear error, never INTERNAL (issue #9, item 15): a variable of the wrong
//! type, a missing variable, a token for an organisation or user that does not exist, a
//! NUL byte or a 100 KB string in a search or a login.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app};

async fn code(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> String {
    let (status, body) = app.post(token, query, variables).await;
    assert!(status == 200 || status == 401, "{status}: {body}");
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned()
}

#[tokio::test]
async fn bad_input_is_a_clear_error_never_internal() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let price = "mutation($i: AddPricePointInput!) { addPricePoint(input: $i) { id } }";
    let when = |value: Value| json!({"i": {"offerId": f.offers_a[0].to_string(), "currency": "USD", "cost": "1", "listPrice": "2", "effectiveFrom": value}});
    let offers = "query($s: String) { offers(first: 5, filter: {search: $s}) { totalCount } }";
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let cases: Vec<(&str, Option<String>, &str, Value, &str)> = vec![
        ("a DateTime sent as a number", Some(operator.clone()), price, when(json!(1_700_000_000)), "BAD_USER_INPUT"),
        ("a DateTime that is no date", Some(operator.clone()), price, when(json!("yesterday")), "BAD_USER_INPUT"),
        ("a missing required variable", Some(operator.clone()), price, json!({}), "BAD_USER_INPUT"),
        // A search finds nothing, or is refused; it never fails inside.
        ("a NUL byte in a search", Some(operator.clone()), offers, json!({"s": "a\u{0}b"}), "none|BAD_USER_INPUT"),
        (
            "a 100 KB search",
            Some(operator.clone()),
            offers,
            json!({"s": "x".repeat(100 * 1024)}),
            "none|BAD_USER_INPUT",
        ),
        (
            "a NUL byte in a login",
            None,
            login,
            json!({"e": "a\u{0}@b.test", "p": "x"}),
            "UNAUTHENTICATED|BAD_USER_INPUT",
        ),
        (
            "a NUL byte in a customer search",
            Some(operator.clone()),
            "query($s: String) { customers(search: $s) { totalCount } }",
            json!({"s": "a\u{0}b"}),
            "none|BAD_USER_INPUT",
        ),
        (
            "a 100 KB customer search",
            Some(operator.clone()),
            "query($s: String) { customers(search: $s) { totalCount } }",
            json!({"s": "x".repeat(100 * 1024)}),
            "none|BAD_USER_INPUT",
        ),
        (
            "a NUL byte in a product's description",
            Some(operator.clone()),
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }",
            json!({"i": {"vendorId": f.vendor_a.to_string(), "name": "P", "description": "a\u{0}b"}}),
            "BAD_USER_INPUT",
        ),
        (
            "a NUL byte in a product's new description",
            Some(operator.clone()),
            "mutation($id: ID!, $i: UpdateProductInput!) { updateProduct(id: $id, input: $i) { id } }",
            json!({"id": f.product_a.to_string(), "i": {"description": "a\u{0}b"}}),
            "BAD_USER_INPUT",
        ),
        (
            "a NUL byte in an address to unlock",
            Some(operator.clone()),
            "mutation($e: String!) { unlockLogin(email: $e) }",
            json!({"e": "a\u{0}@b.test"}),
            "BAD_USER_INPUT",
        ),
        (
            "a token for a reseller that does not exist",
            Some(app.token(Role::Reseller, Some(987_654))),
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { id } }",
            json!({"i": {"name": "Ghost", "country": "DE", "currency": "USD", "taxRate": "0.19"}}),
            "UNAUTHENTICATED",
        ),
        (
            "a token for a customer that does not exist",
            Some(app.token(Role::Customer, Some(987_654))),
            "{ me { role } subscriptions(first: 1) { totalCount } }",
            json!({}),
            "UNAUTHENTICATED",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, token, query, variables, expected) in cases {
        let got = code(&app, token.as_deref(), query, variables).await;
        if !expected.split('|').any(|e| e == got) {
            wrong.push(format!("{name}: {got}, not {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
