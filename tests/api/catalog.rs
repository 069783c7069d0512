//! Catalog reads and writes through the API: price visibility per role, the price cascade,
//! pagination, validation, audit, and the SQL statement count of a nested page.

use serde_json::{Value, json};
use switchyard::domain::catalog::{self, NewOffer, NewProduct};
use switchyard::domain::ids::{OfferId, ProductId, VendorId};
use switchyard::domain::{Actor, Role};

use crate::helpers::{Fixture, TestApp, dec, spawn_app, spawn_app_with};

const OFFER_PRICES: &str = r#"query($id: ID!, $currency: String, $resellerId: ID) {
  offer(id: $id) { sku prices(currency: $currency, resellerId: $resellerId) {
    currency cost { amount } listPrice { amount currency } wholesale { amount } retail { amount } } } }"#;

fn price(data: &Value) -> &Value {
    &data["offer"]["prices"][0]
}

#[tokio::test]
async fn each_role_sees_only_its_prices() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f.offers_a[0].to_string();

    // Reseller A (USD, tier Gold 15 %): wholesale = 8.00 × 1.15, retail falls back to list.
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    let p = price(&data);
    assert_eq!(data["offer"]["prices"].as_array().unwrap().len(), 1, "defaults to the reseller's currency");
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["cost"], Value::Null);
    assert_eq!(p["listPrice"]["amount"], "10.00");
    assert_eq!(p["wholesale"]["amount"], "9.20");
    assert_eq!(p["retail"]["amount"], "10.00");

    // Customer A sees its retail price only.
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let data = app.data(&customer, OFFER_PRICES, json!({"id": offer})).await;
    let p = price(&data);
    assert_eq!(p["cost"], Value::Null);
    assert_eq!(p["wholesale"], Value::Null);
    assert_eq!(p["retail"]["amount"], "10.00");

    // Vendor A sees its cost, in every currency, and no reseller prices.
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let data = app.data(&vendor, OFFER_PRICES, json!({"id": offer})).await;
    let prices = data["offer"]["prices"].as_array().unwrap();
    assert_eq!(prices.len(), 2);
    assert_eq!(prices[0]["currency"], "EUR");
    assert_eq!(prices[1]["cost"]["amount"], "8.00");
    assert_eq!(prices[1]["wholesale"], Value::Null);

    // The operator sees cost, and a named reseller's wholesale and retail.
    let data = app
        .data(
            &app.operator(),
            OFFER_PRICES,
            json!({"id": offer, "currency": "EUR", "resellerId": f.reseller_b.to_string()}),
        )
        .await;
    let p = price(&data);
    assert_eq!(p["cost"]["amount"], "7.40");
    assert_eq!(p["wholesale"]["amount"], "8.51");
    assert_eq!(p["retail"]["amount"], "9.20");
}

#[tokio::test]
async fn the_price_cascade_follows_explicit_prices_and_markups() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f.offers_a[0].to_string();
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let operator = app.operator();
    let wholesale = |target: Value, price: &str| json!({"input": {"offerId": offer, "target": target, "currency": "USD", "price": price}});
    const SET_WHOLESALE: &str =
        "mutation($input: SetWholesalePriceInput!) { setWholesalePrice(input: $input) { price } }";

    // A tier price replaces cost × markup.
    app.data(&operator, SET_WHOLESALE, wholesale(json!({"tierId": f.tier_gold.to_string()}), "9.00")).await;
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["wholesale"]["amount"], "9.00");

    // A reseller price beats the tier price.
    app.data(&operator, SET_WHOLESALE, wholesale(json!({"resellerId": f.reseller_a.to_string()}), "8.75")).await;
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["wholesale"]["amount"], "8.75");

    // The reseller's default markup applies over wholesale: 8.75 × 1.2 = 10.50.
    app.data(&reseller, r#"mutation { setRetailMarkup(markup: "0.2") { defaultRetailMarkup } }"#, json!({})).await;
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["retail"]["amount"], "10.50");

    // An explicit retail price beats the markup, and the customer sees it.
    app.data(
        &reseller,
        "mutation($input: SetRetailPriceInput!) { setRetailPrice(input: $input) { price } }",
        json!({"input": {"offerId": offer, "currency": "USD", "price": "11.99"}}),
    )
    .await;
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let data = app.data(&customer, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["retail"]["amount"], "11.99");

    // Reseller B is untouched by A's prices: its tier price applies, retail is list.
    let data = app
        .data(&operator, OFFER_PRICES, json!({"id": offer, "currency": "USD", "resellerId": f.reseller_b.to_string()}))
        .await;
    assert_eq!(price(&data)["wholesale"]["amount"], "9.00");
    assert_eq!(price(&data)["retail"]["amount"], "10.00");
}

#[tokio::test]
async fn a_future_price_point_is_not_in_force_until_its_date() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let offer = f.offers_a[0].to_string();
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    app.data(
        &vendor,
        "mutation($input: AddPricePointInput!) { addPricePoint(input: $input) { id } }",
        json!({"input": {"offerId": offer, "currency": "USD", "cost": "9.00", "listPrice": "11.00",
                         "effectiveFrom": "2026-12-01T00:00:00Z"}}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["listPrice"]["amount"], "10.00");
    app.clock.set("2026-12-01T00:00:00Z".parse().unwrap());
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer})).await;
    assert_eq!(price(&data)["listPrice"]["amount"], "11.00");
    assert_eq!(price(&data)["wholesale"]["amount"], "10.35");
}

#[tokio::test]
async fn resellers_see_active_offers_and_vendors_see_their_whole_catalog() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let query = "{ offers(first: 50) { totalCount edges { node { sku vendor { code } } } } }";
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let data = app.data(&reseller, query, json!({})).await;
    assert_eq!(data["offers"]["totalCount"], 4, "the retired offer is hidden: {data}");
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let data = app.data(&vendor, query, json!({})).await;
    assert_eq!(data["offers"]["totalCount"], 4, "vendor A's three offers plus its retired one");
    assert!(data["offers"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["vendor"]["code"] == "vendor-a"));
    let code = app
        .error_code(
            Some(&reseller),
            "query($id: ID!) { offer(id: $id) { sku } }",
            json!({"id": f.retired_offer.to_string()}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

#[tokio::test]
async fn offers_filter_by_term_frequency_vendor_and_text() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let query =
        "query($filter: OfferFilterInput) { offers(first: 50, filter: $filter) { totalCount edges { node { sku } } } }";
    let count = |data: Value| data["offers"]["totalCount"].as_u64().unwrap();
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"term": "P1M"}})).await), 1);
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"billingFrequency": "ANNUAL"}})).await), 1);
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"vendorId": f.vendor_b.to_string()}})).await), 1);
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"search": "a-p3y"}})).await), 1);
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"status": "RETIRED"}})).await), 1);
    assert_eq!(count(app.data(&operator, query, json!({"filter": {"productId": f.product_a.to_string()}})).await), 4);
}

#[tokio::test]
async fn pagination_walks_every_offer_once() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let query = "query($after: String) { offers(first: 2, after: $after) { totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(&operator, query, json!({"after": after})).await;
        let connection = &data["offers"];
        assert_eq!(connection["totalCount"], 5);
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], !seen.is_empty());
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    let mut expected: Vec<String> =
        f.offers_a.iter().chain([&f.offer_b, &f.retired_offer]).map(i64::to_string).collect();
    expected.sort_by_key(|id| id.parse::<i64>().unwrap());
    assert_eq!(seen, expected);

    let empty = app
        .data(&operator, "{ offers(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage } } }", json!({}))
        .await;
    assert_eq!(empty["offers"]["edges"], json!([]));
    assert_eq!(empty["offers"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        app.error_code(Some(&operator), "{ offers(first: 101) { totalCount } }", json!({})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(Some(&operator), "{ offers(first: -1) { totalCount } }", json!({})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.error_code(Some(&operator), r#"{ offers(after: "bogus") { totalCount } }"#, json!({})).await,
        "BAD_USER_INPUT"
    );
}

const CREATE_OFFER: &str =
    "mutation($input: CreateOfferInput!) { createOffer(input: $input) { id sku term billingFrequency } }";

fn offer_input(product: i64, sku: &str) -> Value {
    json!({"input": {"productId": product.to_string(), "sku": sku, "name": "New offer", "unit": "seat",
                     "term": "P1Y", "billingFrequency": "ANNUAL", "minQuantity": 1, "maxQuantity": 10}})
}

#[tokio::test]
async fn a_vendor_builds_its_catalog_and_every_write_is_audited() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let audit_before = audit_rows(&app).await;
    let product = app
        .data(
            &vendor,
            "mutation($input: CreateProductInput!) { createProduct(input: $input) { id name vendor { code } } }",
            json!({"input": {"vendorId": f.vendor_a.to_string(), "name": "Suite A Plus"}}),
        )
        .await;
    assert_eq!(product["createProduct"]["vendor"]["code"], "vendor-a");
    let product_id: i64 = product["createProduct"]["id"].as_str().unwrap().parse().unwrap();
    let offer = app.data(&vendor, CREATE_OFFER, offer_input(product_id, "A-PLUS-1Y")).await;
    assert_eq!(offer["createOffer"]["term"], "P1Y");
    let offer_id = offer["createOffer"]["id"].as_str().unwrap().to_owned();
    app.data(
        &vendor,
        "mutation($input: AddPricePointInput!) { addPricePoint(input: $input) { cost listPrice } }",
        json!({"input": {"offerId": offer_id, "currency": "USD", "cost": "100.00", "listPrice": "120.00"}}),
    )
    .await;
    let updated = app
        .data(&vendor, r#"mutation($id: ID!) { updateOffer(id: $id, input: {maxQuantity: 50, name: "Renamed"}) { name maxQuantity } }"#, json!({"id": offer_id}))
        .await;
    assert_eq!(updated["updateOffer"], json!({"name": "Renamed", "maxQuantity": 50}));
    // The reseller sees the new offer at once: writes invalidate the catalog cache.
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let data = app.data(&reseller, OFFER_PRICES, json!({"id": offer_id})).await;
    assert_eq!(price(&data)["wholesale"]["amount"], "115.00");
    assert_eq!(audit_rows(&app).await, audit_before + 4);
}

async fn audit_rows(app: &crate::helpers::TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::audit_log::Entity::find().count(&app.domain.db).await.unwrap()
}

#[tokio::test]
async fn invalid_catalog_input_is_refused_with_the_field_path() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let (_, body) = app.post(Some(&vendor), CREATE_OFFER, offer_input(f.product_a, "A-P1Y-M")).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "duplicate SKU: {body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "DUPLICATE_SKU");
    // The same SKU at another vendor is fine.
    let vendor_b = app.token(Role::Vendor, Some(f.vendor_b));
    app.data(&vendor_b, CREATE_OFFER, offer_input(f.product_b, "A-P1Y-M")).await;

    let mut bad_range = offer_input(f.product_a, "A-RANGE");
    bad_range["input"]["minQuantity"] = json!(20);
    let (_, body) = app.post(Some(&vendor), CREATE_OFFER, bad_range).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "input.minQuantity");

    const ADD_PRICE: &str = "mutation($input: AddPricePointInput!) { addPricePoint(input: $input) { id } }";
    let cases = [
        (json!({"cost": "-1.00", "listPrice": "1.00", "currency": "USD"}), "input.cost"),
        (json!({"cost": "1.1234567", "listPrice": "2.00", "currency": "USD"}), "input.cost"),
        (json!({"cost": "1.00", "listPrice": "2.00", "currency": "XYZ"}), "input.currency"),
        (json!({"cost": "1.00", "listPrice": "-0.01", "currency": "EUR"}), "input.listPrice"),
    ];
    for (fields, field) in cases {
        let mut input = fields.clone();
        input["offerId"] = json!(f.offers_a[0].to_string());
        let (_, body) = app.post(Some(&vendor), ADD_PRICE, json!({"input": input})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{fields}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // A JSON number for a decimal is refused: it would travel through a float.
    let (_, body) = app
        .post(
            Some(&vendor),
            ADD_PRICE,
            json!({"input": {"offerId": f.offers_a[0].to_string(), "cost": 1.5, "listPrice": "2", "currency": "USD"}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    let (_, body) = app
        .post(Some(&vendor), "mutation { createProduct(input: {vendorId: \"1\", name: \"   \"}) { id } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "input.name", "{body}");
}

#[tokio::test]
async fn operator_manages_vendors_tiers_and_resellers() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let vendor = app
        .data(&operator, r#"mutation { createVendor(input: {code: "pax", name: "Pax Cloud", connectorKind: HTTP, connectorSettings: {url: "http://127.0.0.1:9/"}}) { id code connectorKind } }"#, json!({}))
        .await;
    assert_eq!(vendor["createVendor"]["connectorKind"], "HTTP");
    let code = app
        .error_code(
            Some(&operator),
            r#"mutation { createVendor(input: {code: "pax", name: "Again", connectorKind: SANDBOX}) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    let tier = app
        .data(
            &operator,
            r#"mutation { createTier(input: {name: "Platinum", markup: "0.05"}) { id markup } }"#,
            json!({}),
        )
        .await;
    assert_eq!(tier["createTier"]["markup"], "0.05");
    let reseller = app
        .data(
            &operator,
            "mutation($tier: ID!) { createReseller(input: {name: \"New Reseller\", tierId: $tier, currency: \"EUR\", invoicePrefix: \"NEW1\"}) { id tier { name } } }",
            json!({"tier": tier["createTier"]["id"]}),
        )
        .await;
    assert_eq!(reseller["createReseller"]["tier"]["name"], "Platinum");
    let code = app
        .error_code(Some(&operator), "mutation($tier: ID!) { createReseller(input: {name: \"X\", tierId: $tier, currency: \"EUR\", invoicePrefix: \"bad-prefix\"}) { id } }", json!({"tier": f.tier_gold.to_string()}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let data = app.data(&operator, "{ tiers { name markup } resellers(first: 10) { totalCount } }", json!({})).await;
    assert_eq!(data["resellers"]["totalCount"], 3);
    assert_eq!(data["tiers"].as_array().unwrap().len(), 2);
}

/// A page of 50 products with their offers and prices costs the same number of SQL
/// statements as a page of 5: every nested field is served from one snapshot load.
#[tokio::test]
async fn a_nested_catalog_page_costs_a_constant_number_of_statements() {
    let app = spawn_app_with(|config| config.catalog_cache_ttl = std::time::Duration::ZERO).await;
    let f = Fixture::build(&app).await;
    let op = Actor::system();
    for index in 0..60 {
        let product = catalog::create_product(
            &app.domain,
            &op,
            NewProduct { vendor_id: VendorId::new(f.vendor_a), name: format!("Bulk {index}"), description: None },
        )
        .await
        .unwrap();
        for term in [entity::enums::Term::P1y, entity::enums::Term::P3y] {
            let offer = catalog::create_offer(
                &app.domain,
                &op,
                NewOffer {
                    product_id: ProductId::new(product.id),
                    sku: format!("BULK-{index}-{term:?}"),
                    name: format!("Bulk {index}"),
                    unit: "seat".into(),
                    term,
                    billing_frequency: entity::enums::BillingFrequency::Annual,
                    min_quantity: 1,
                    max_quantity: 10,
                    usage_meter: None,
                },
            )
            .await
            .unwrap();
            catalog::add_price_point(
                &app.domain,
                &op,
                catalog::NewPricePoint {
                    offer_id: OfferId::new(offer.id),
                    currency: "USD".into(),
                    cost: dec("10"),
                    list_price: dec("12"),
                    usage_unit_cost: None,
                    usage_unit_list_price: None,
                    effective_from: None,
                },
            )
            .await
            .unwrap();
        }
    }
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let query = "query($first: Int!) { products(first: $first) { totalCount edges { node { name vendor { name }
        offers { sku term prices { listPrice { amount } wholesale { amount } retail { amount } } } } } } }";
    // The caller's standing is looked up once and then cached for seconds: warm it first.
    app.data(&reseller, "{ me { role } }", json!({})).await;
    let mut counts = Vec::new();
    for first in [5, 50] {
        app.reset_statements();
        let data = app.data(&reseller, query, json!({"first": first})).await;
        assert_eq!(data["products"]["edges"].as_array().unwrap().len(), first);
        counts.push(app.statement_count());
    }
    assert_eq!(counts[0], counts[1], "statement counts for 5 and 50 products: {counts:?}");
    assert!(counts[1] <= 12, "a 50-product page took {} statements", counts[1]);
    println!("SQL statements for a page of 50 products with offers and prices: {}", counts[1]);
}

/// Catalog responses are cached per caller; a write or a price taking effect shows at once.
#[tokio::test]
async fn cached_catalog_responses_are_per_tenant_and_follow_writes() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let query = "{ offers(first: 1) { edges { node { prices { currency wholesale { amount } } } } } }";
    let a = app.token(Role::Reseller, Some(f.reseller_a));
    let b = app.token(Role::Reseller, Some(f.reseller_b));
    let wholesale = |data: Value| data["offers"]["edges"][0]["node"]["prices"][0].clone();
    for _ in 0..2 {
        assert_eq!(
            wholesale(app.data(&a, query, json!({})).await),
            json!({"currency": "USD", "wholesale": {"amount": "9.20"}})
        );
        assert_eq!(
            wholesale(app.data(&b, query, json!({})).await),
            json!({"currency": "EUR", "wholesale": {"amount": "8.51"}})
        );
    }
    app.data(
        &app.operator(),
        "mutation($input: SetWholesalePriceInput!) { setWholesalePrice(input: $input) { price } }",
        json!({"input": {"offerId": f.offers_a[0].to_string(), "target": {"resellerId": f.reseller_a.to_string()},
                         "currency": "USD", "price": "7.77", "effectiveFrom": "2026-11-20T00:00:00Z"}}),
    )
    .await;
    // Written, but not yet in force: the cached answer is still right.
    assert_eq!(wholesale(app.data(&a, query, json!({})).await)["wholesale"]["amount"], "9.20");
    app.clock.set("2026-11-20T00:00:00Z".parse().unwrap());
    assert_eq!(wholesale(app.data(&a, query, json!({})).await)["wholesale"]["amount"], "7.77");
    assert_eq!(wholesale(app.data(&b, query, json!({})).await)["wholesale"]["amount"], "8.51");
}

/// #9.12: across processes, a cached catalog response is never older than the cache's TTL:
/// its age counts from when the data it was computed from was loaded, not from when it was
/// computed (the snapshot of its first request can be almost a TTL old by then).
#[tokio::test]
async fn a_catalog_change_in_another_process_shows_within_the_ttl() {
    let ttl = std::time::Duration::from_millis(1500);
    let app = crate::helpers::spawn_app_with(|server| server.catalog_cache_ttl = ttl).await;
    let f = Fixture::build(&app).await;
    let other = crate::helpers::spawn(|server| server.catalog_cache_ttl = ttl, 0, Some(&app)).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let offer = f.offers_a[0].to_string();
    async fn name(app: &TestApp, reseller: &str, offer: &str) -> String {
        let data = app.data(reseller, "query($id: ID!) { offer(id: $id) { name } }", json!({"id": offer})).await;
        data["offer"]["name"].as_str().unwrap().to_owned()
    }
    // The first process loads its snapshot; the other renames the offer right after.
    app.data(&reseller, "{ vendors { totalCount } }", json!({})).await;
    other
        .data(
            &other.operator(),
            "mutation($id: ID!) { updateOffer(id: $id, input: {name: \"Renamed\"}) { id } }",
            json!({"id": offer}),
        )
        .await;
    let changed = std::time::Instant::now();
    // Asked for the first time late in the snapshot's life, then until it shows.
    tokio::time::sleep(ttl.mul_f64(0.8)).await;
    while name(&app, &reseller, &offer).await != "Renamed" {
        assert!(changed.elapsed() < ttl * 3, "never showed");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let stale = changed.elapsed();
    println!("a change in another process showed after {stale:?} (TTL {ttl:?})");
    assert!(stale <= ttl + std::time::Duration::from_millis(200), "stale for {stale:?} with a TTL of {ttl:?}");
}

/// #9.12: the response cache holds at most its budget in bytes, however many distinct
/// catalog queries a tenant sends.
#[tokio::test]
async fn the_response_cache_stays_within_its_byte_budget() {
    let budget = 32 * 1024;
    let app = spawn_app_with(|server| server.response_cache_bytes = budget).await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let offer = f.offers_a[0];
    for n in 0..400 {
        let query = format!("{{ distinct_query_number_{n}: offer(id: \"{offer}\") {{ name sku term }} }}");
        app.data(&reseller, &query, json!({})).await;
        assert!(
            app.state.response_cache.bytes() <= budget,
            "{} bytes after {n} queries",
            app.state.response_cache.bytes()
        );
    }
    assert!(app.state.response_cache.bytes() > 0, "nothing was cached");
}
