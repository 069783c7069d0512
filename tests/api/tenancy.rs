//! Tenant isolation: another tenant's object is indistinguishable from a missing one, in
//! lookups, lists, counts, nested fields and mutations; roles without a right get FORBIDDEN.

use serde_json::json;
use switchyard::domain::Role;

use crate::helpers::{Fixture, spawn_app};

#[tokio::test]
async fn a_reseller_sees_only_its_own_customers() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller_a = app.token(Role::Reseller, Some(f.reseller_a));
    let data = app
        .data(
            &reseller_a,
            "{ customers(first: 50) { totalCount edges { node { id name vendorAccounts { externalId } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["customers"]["edges"][0]["node"]["name"], "Customer A");
    assert_eq!(data["customers"]["edges"][0]["node"]["vendorAccounts"][0]["externalId"], "tenant-Customer-A");
    // Filtering by another reseller does not widen the scope.
    let data = app
        .data(
            &reseller_a,
            "query($r: ID) { customers(resellerId: $r) { totalCount } }",
            json!({"r": f.reseller_b.to_string()}),
        )
        .await;
    assert_eq!(data["customers"]["totalCount"], 0);

    let lookup = "query($id: ID!) { customer(id: $id) { name } }";
    let missing = app.error_code(Some(&reseller_a), lookup, json!({"id": "999999"})).await;
    let foreign = app.error_code(Some(&reseller_a), lookup, json!({"id": f.customer_b.to_string()})).await;
    assert_eq!((missing.as_str(), foreign.as_str()), ("NOT_FOUND", "NOT_FOUND"));
    let (_, missing_body) = app.post(Some(&reseller_a), lookup, json!({"id": "999999"})).await;
    let (_, foreign_body) = app.post(Some(&reseller_a), lookup, json!({"id": f.customer_b.to_string()})).await;
    assert_eq!(missing_body["errors"][0]["message"], foreign_body["errors"][0]["message"]);

    let update = "mutation($id: ID!) { updateCustomer(id: $id, input: {name: \"Taken\"}) { name } }";
    assert_eq!(app.error_code(Some(&reseller_a), update, json!({"id": f.customer_b.to_string()})).await, "NOT_FOUND");
    let create_for_other = "mutation($r: ID!) { createCustomer(input: {resellerId: $r, name: \"X\", country: \"DE\", currency: \"EUR\", taxRate: \"0.19\"}) { id } }";
    assert_eq!(
        app.error_code(Some(&reseller_a), create_for_other, json!({"r": f.reseller_b.to_string()})).await,
        "NOT_FOUND"
    );

    let reseller_lookup = "query($id: ID!) { reseller(id: $id) { name } }";
    assert_eq!(
        app.error_code(Some(&reseller_a), reseller_lookup, json!({"id": f.reseller_b.to_string()})).await,
        "NOT_FOUND"
    );
    let data =
        app.data(&reseller_a, "{ resellers { totalCount edges { node { name tier { name } } } } }", json!({})).await;
    assert_eq!(data["resellers"]["totalCount"], 1);
    assert_eq!(data["resellers"]["edges"][0]["node"]["tier"], serde_json::Value::Null, "tier markup is the operator's");

    let prices = "query($id: ID!, $r: ID) { offer(id: $id) { prices(resellerId: $r) { retail { amount } } } }";
    let code = app
        .error_code(Some(&reseller_a), prices, json!({"id": f.offers_a[0].to_string(), "r": f.reseller_b.to_string()}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    // The reseller's own id is compared as an id, not as text; a malformed one is bad input.
    let own = app
        .data(&reseller_a, prices, json!({"id": f.offers_a[0].to_string(), "r": format!("0{}", f.reseller_a)}))
        .await;
    assert!(own["offer"]["prices"][0]["retail"]["amount"].is_string(), "{own}");
    let code = app.error_code(Some(&reseller_a), prices, json!({"id": f.offers_a[0].to_string(), "r": "abc"})).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_customer_sees_only_itself() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let data =
        app.data(&customer, "{ customers { totalCount edges { node { name reseller { name } } } } }", json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["customers"]["edges"][0]["node"]["reseller"], serde_json::Value::Null);
    let code = app
        .error_code(
            Some(&customer),
            "query($id: ID!) { customer(id: $id) { name } }",
            json!({"id": f.customer_b.to_string()}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = app
        .error_code(
            Some(&customer),
            "mutation($id: ID!) { updateCustomer(id: $id, input: {name: \"Me\"}) { name } }",
            json!({"id": f.customer_a.to_string()}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
}

#[tokio::test]
async fn a_vendor_sees_and_edits_only_its_catalog() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor_a = app.token(Role::Vendor, Some(f.vendor_a));
    let data = app
        .data(
            &vendor_a,
            "{ vendors { totalCount edges { node { code connectorKind } } } products { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["vendors"]["totalCount"], 1);
    assert_eq!(data["vendors"]["edges"][0]["node"]["code"], "vendor-a");
    assert_eq!(data["products"]["totalCount"], 1);
    let b = f.product_b.to_string();
    for (query, vars) in [
        ("query($id: ID!) { product(id: $id) { name } }", json!({"id": b})),
        ("query($id: ID!) { vendor(id: $id) { name } }", json!({"id": f.vendor_b.to_string()})),
        ("query($id: ID!) { offer(id: $id) { sku } }", json!({"id": f.offer_b.to_string()})),
        ("mutation($id: ID!) { updateProduct(id: $id, input: {name: \"Mine\"}) { name } }", json!({"id": b})),
        (
            "mutation($id: ID!) { updateOffer(id: $id, input: {name: \"Mine\"}) { name } }",
            json!({"id": f.offer_b.to_string()}),
        ),
        (
            "mutation($p: ID!) { createOffer(input: {productId: $p, sku: \"X\", name: \"X\", unit: \"seat\", term: P1Y, billingFrequency: MONTHLY, minQuantity: 1, maxQuantity: 2}) { id } }",
            json!({"p": b}),
        ),
        (
            "mutation($v: ID!) { createProduct(input: {vendorId: $v, name: \"X\"}) { id } }",
            json!({"v": f.vendor_b.to_string()}),
        ),
        (
            "mutation($o: ID!) { addPricePoint(input: {offerId: $o, currency: \"USD\", cost: \"1\", listPrice: \"2\"}) { id } }",
            json!({"o": f.offer_b.to_string()}),
        ),
    ] {
        assert_eq!(app.error_code(Some(&vendor_a), query, vars).await, "NOT_FOUND", "{query}");
    }
    let code = app.error_code(Some(&vendor_a), "{ customers { totalCount } }", json!({})).await;
    assert_eq!(code, "FORBIDDEN");
    let own = app
        .data(
            &vendor_a,
            "query($id: ID!) { offer(id: $id) { pricePoints { currency cost } } }",
            json!({"id": f.offers_a[0].to_string()}),
        )
        .await;
    assert_eq!(own["offer"]["pricePoints"].as_array().unwrap().len(), 2, "own price points are visible");
}

#[tokio::test]
async fn roles_without_the_right_are_forbidden() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let create_vendor = r#"mutation { createVendor(input: {code: "x", name: "X", connectorKind: SANDBOX}) { id } }"#;
    let create_tier = r#"mutation { createTier(input: {name: "T", markup: "0.1"}) { id } }"#;
    let create_product = "mutation($v: ID!) { createProduct(input: {vendorId: $v, name: \"X\"}) { id } }";
    for token in [&reseller, &customer, &vendor] {
        assert_eq!(app.error_code(Some(token), create_vendor, json!({})).await, "FORBIDDEN");
        assert_eq!(app.error_code(Some(token), create_tier, json!({})).await, "FORBIDDEN");
        assert_eq!(app.error_code(Some(token), "{ tiers { name } }", json!({})).await, "FORBIDDEN");
    }
    for token in [&reseller, &customer] {
        assert_eq!(
            app.error_code(Some(token), create_product, json!({"v": f.vendor_a.to_string()})).await,
            "FORBIDDEN"
        );
        let code = app
            .error_code(
                Some(token),
                "query($id: ID!) { offer(id: $id) { pricePoints { cost } } }",
                json!({"id": f.offers_a[0].to_string()}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
    let set_retail =
        "mutation($o: ID!) { setRetailPrice(input: {offerId: $o, currency: \"USD\", price: \"1\"}) { id } }";
    assert_eq!(app.error_code(Some(&customer), set_retail, json!({"o": f.offers_a[0].to_string()})).await, "FORBIDDEN");
    assert_eq!(app.error_code(Some(&vendor), set_retail, json!({"o": f.offers_a[0].to_string()})).await, "FORBIDDEN");
}
