//! Leaks of detail (issue #9, item 19): a vendor connector's raw error — which may name the
//! operator's endpoint and a key in its query string — reaches only the operator (and the
//! vendor), resellers and customers get its reason; a customer does not see DRAFT credit
//! notes through `invoice.creditNotes`; a vendor account's external id conflicts only with
//! the same reseller's customers (so a conflict tells nothing of another reseller's); order
//! idempotency keys are each customer's own.

use serde_json::json;
use switchyard::domain::Role;

use crate::helpers::{Fixture, spawn_app};
use crate::orders::{order_input, place};

const JOBS: &str = "query($s: ID!) { provisioningJobs(subscriptionId: $s) { edges { node { status lastError } } } }";

#[tokio::test]
async fn a_vendors_raw_error_reaches_only_the_operator() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // The operator's endpoint for vendor B carries a key; nothing listens there.
    let url = "http://127.0.0.1:9/provision?key=SECRET-KEY-123";
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": url, "secret": "s"}}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    let placed = place(&app, &reseller, order_input(f.customer_b, &[(f.offer_b, 2)]), "leak").await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let seen = |token: String| {
        let (app, subscription) = (&app, subscription.clone());
        async move {
            let data = app.data(&token, JOBS, json!({"s": subscription})).await;
            data["provisioningJobs"]["edges"][0]["node"]["lastError"].as_str().unwrap_or_default().to_owned()
        }
    };
    let operator = seen(app.operator()).await;
    assert!(operator.contains("127.0.0.1:9"), "the operator sees the connector's error: {operator}");
    for (who, token) in [("reseller", reseller.clone()), ("customer", app.token(Role::Customer, Some(f.customer_b)))] {
        let error = seen(token).await;
        assert!(!error.is_empty(), "{who} is told why");
        assert!(!error.contains("SECRET-KEY") && !error.contains("127.0.0.1"), "{who} sees {error}");
    }
}

#[tokio::test]
async fn a_customer_does_not_see_draft_credit_notes() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 5)]), "credit").await;
    app.run_jobs().await;
    app.clock.set("2026-12-01T08:00:00Z".parse().unwrap());
    crate::billing::run(&app, "2026-11").await;
    let invoice =
        crate::billing::invoices(&app, &reseller, json!({"customerId": f.customer_a.to_string()})).await.remove(0);
    let id = invoice["id"].as_str().unwrap().to_owned();
    app.data(&reseller, "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({"id": id})).await;
    let note = app.data(&reseller, "mutation($id: ID!) { creditInvoice(id: $id) { status } }", json!({"id": id})).await;
    assert_eq!(note["creditInvoice"]["status"], "DRAFT");
    let query = "query($id: ID!) { invoice(id: $id) { creditNotes { id status } } }";
    let as_reseller = app.data(&reseller, query, json!({"id": id})).await;
    assert_eq!(as_reseller["invoice"]["creditNotes"].as_array().unwrap().len(), 1, "the reseller sees its draft");
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let as_customer = app.data(&customer, query, json!({"id": id})).await;
    assert_eq!(as_customer["invoice"]["creditNotes"], json!([]), "{as_customer}");
}

const CREATE_CUSTOMER: &str = "mutation($name: String!, $vendor: ID!, $tenant: String!) {
  createCustomer(input: {name: $name, country: \"DE\", currency: \"USD\", taxRate: \"0.19\",
                         vendorAccounts: [{vendorId: $vendor, externalId: $tenant}]}) { id } }";

#[tokio::test]
async fn an_external_id_conflicts_only_with_the_same_resellers_customers() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Reseller A's customer has "tenant-Customer-A" at vendor A. Reseller B may sell to the
    // same tenant (a customer may buy through several resellers): no conflict, nothing learnt.
    let b = app.token(Role::Reseller, Some(f.reseller_b));
    let vars = |name: &str, tenant: &str| json!({"name": name, "vendor": f.vendor_a.to_string(), "tenant": tenant});
    let (_, body) = app.post(Some(&b), CREATE_CUSTOMER, vars("Same tenant at B", "tenant-Customer-A")).await;
    assert!(body["data"]["createCustomer"]["id"].is_string(), "{body}");
    // Within one reseller, an external id names one customer.
    let a = app.token(Role::Reseller, Some(f.reseller_a));
    let (_, body) = app.post(Some(&a), CREATE_CUSTOMER, vars("Twin at A", "tenant-Customer-A")).await;
    assert_eq!(body["errors"][0]["extensions"]["reason"], "DUPLICATE_EXTERNAL_ID", "{body}");
    let (_, body) = app.post(Some(&b), CREATE_CUSTOMER, vars("Twin at B", "tenant-Customer-A")).await;
    assert_eq!(body["errors"][0]["extensions"]["reason"], "DUPLICATE_EXTERNAL_ID", "{body}");
}

#[tokio::test]
async fn two_customers_of_one_reseller_may_use_the_same_order_key() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let vars = json!({"name": "Customer A2", "vendor": f.vendor_a.to_string(), "tenant": "tenant-A2"});
    let created = app.data(&reseller, CREATE_CUSTOMER, vars).await;
    let a2: i64 = created["createCustomer"]["id"].as_str().unwrap().parse().unwrap();
    // Both customers' storefronts number their carts from 1.
    let first = app.token(Role::Customer, Some(f.customer_a));
    let second = app.token(Role::Customer, Some(a2));
    let mine = place(&app, &first, order_input(f.customer_a, &[(f.offers_a[0], 3)]), "cart-1").await;
    let theirs = place(&app, &second, order_input(a2, &[(f.offers_a[0], 5)]), "cart-1").await;
    assert_eq!(theirs["replayed"], false, "{theirs}");
    assert_ne!(theirs["order"]["id"], mine["order"]["id"]);
    assert_eq!(theirs["order"]["lines"][0]["quantity"], 5, "{theirs}");
    // Each key still replays for its own customer, whoever of its buyers sends it.
    let again = place(&app, &reseller, order_input(a2, &[(f.offers_a[0], 5)]), "cart-1").await;
    assert_eq!((again["replayed"].clone(), again["order"]["id"].clone()), (json!(true), theirs["order"]["id"].clone()));
}

/// An order's answer shows what its write read (#9.20), within the caller's scope: a
/// customer does not see its reseller's record, the reseller does.
#[tokio::test]
async fn an_order_answer_shows_the_reseller_only_to_those_who_may_see_it() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let place = "mutation($input: PlaceOrderInput!, $key: String!) { placeOrder(input: $input, idempotencyKey: $key) {
        order { customer { reseller { id } } lines { subscription { customer { reseller { id } } } } } } }";
    let input = order_input(f.customer_a, &[(f.offers_a[0], 1)]);
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let seen = app.data(&customer, place, json!({"input": input, "key": "c"})).await;
    assert_eq!(seen["placeOrder"]["order"]["customer"]["reseller"], serde_json::Value::Null, "{seen}");
    assert_eq!(
        seen["placeOrder"]["order"]["lines"][0]["subscription"]["customer"]["reseller"],
        serde_json::Value::Null
    );
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let seen = app.data(&reseller, place, json!({"input": input, "key": "r"})).await;
    assert_eq!(seen["placeOrder"]["order"]["customer"]["reseller"]["id"], f.reseller_a.to_string(), "{seen}");
}
