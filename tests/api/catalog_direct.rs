//! Catalog pages read straight from the database (no fresh snapshot cached) cost the page,
//! not the catalog, and answer exactly as the snapshot does.

use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use switchyard::domain::catalog::{self, NewOffer, NewProduct};
use switchyard::domain::ids::{ProductId, VendorId};
use switchyard::domain::{Actor, Role};

use crate::helpers::{Fixture, TestApp, spawn, spawn_app_with};

/// A page with the cache off reads the rows it shows, not the whole catalog: an offer far
/// from the page whose row cannot even be decoded does not disturb it (the whole-catalog
/// load failed on it), while `totalCount` still counts it.
#[tokio::test]
async fn a_page_without_the_cache_reads_its_rows_not_the_whole_catalog() {
    let app = spawn_app_with(|config| config.catalog_cache_ttl = Duration::ZERO).await;
    let f = Fixture::build(&app).await;
    let elsewhere = catalog::create_product(
        &app.domain,
        &Actor::system(),
        NewProduct { vendor_id: VendorId::new(f.vendor_b), name: "Elsewhere".into(), description: None },
    )
    .await
    .unwrap();
    insert_unreadable_offer(&app, elsewhere.id, f.vendor_b).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let query = "{ offers(first: 2) { totalCount edges { node { sku product { name offers { sku } }
        prices { currency listPrice { amount } wholesale { amount } } } } } }";
    let data = app.data(&reseller, query, json!({})).await;
    assert_eq!(data["offers"]["edges"].as_array().map(Vec::len), Some(2), "{data}");
    assert_eq!(data["offers"]["totalCount"], 5, "the fixture's four visible offers and the unreadable one: {data}");
    let products = app.data(&reseller, "{ products(first: 1) { edges { node { name offers { sku } } } } }", json!({}));
    assert_eq!(products.await["products"]["edges"][0]["node"]["offers"].as_array().map(Vec::len), Some(3));
}

/// After a catalog write, pages read the database at once instead of waiting for the
/// whole catalog to reload (here the reload cannot even succeed: an offer off the page is
/// unreadable, and the old way failed every page on it); the write shows at once, and the
/// snapshot is fresh again soon after the catalog is readable again.
#[tokio::test]
async fn after_a_write_pages_read_the_database_and_never_wait_for_the_reload() {
    let app = spawn_app_with(|config| config.catalog_cache_ttl = Duration::from_secs(600)).await;
    let f = Fixture::build(&app).await;
    app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    assert!(app.domain.catalog.fresh().is_some());
    let elsewhere = catalog::create_product(
        &app.domain,
        &Actor::system(),
        NewProduct { vendor_id: VendorId::new(f.vendor_b), name: "Elsewhere".into(), description: None },
    )
    .await
    .unwrap();
    assert!(app.domain.catalog.fresh().is_none(), "a write invalidates the snapshot");
    insert_unreadable_offer(&app, elsewhere.id, f.vendor_b).await;
    // Recorded as a change of the next catalog version, as a write would record it: the
    // refresh must read it (a row changed by hand is not re-read until a whole load).
    let recorded = "INSERT INTO catalog_changes (version, kind, row_id) SELECT version + 1, 'offer',
        (SELECT id FROM offers WHERE sku = 'UNREADABLE') FROM catalog_version WHERE id = 1";
    app.domain.db.execute_unprepared(recorded).await.unwrap();
    let offer = catalog::create_offer(
        &app.domain,
        &Actor::system(),
        NewOffer {
            product_id: ProductId::new(f.product_a),
            sku: "BRAND-NEW".into(),
            name: "Brand new".into(),
            unit: "seat".into(),
            term: entity::enums::Term::P1y,
            billing_frequency: entity::enums::BillingFrequency::Annual,
            min_quantity: 1,
            max_quantity: 10,
            usage_meter: None,
        },
    )
    .await
    .unwrap();
    let operator = app.operator();
    let query = "query($product: ID) { offers(first: 10, filter: {productId: $product}) { edges { node { sku
        product { name offers { sku } } } } } }";
    for _ in 0..3 {
        let data = app.data(&operator, query, json!({"product": f.product_a.to_string()})).await;
        let edges = data["offers"]["edges"].as_array().unwrap();
        assert!(edges.iter().any(|e| e["node"]["sku"] == "BRAND-NEW"), "{data}");
    }
    assert!(app.domain.catalog.fresh().is_none(), "the unreadable catalog cannot be cached");
    app.domain.db.execute_unprepared("DELETE FROM offers WHERE sku = 'UNREADABLE'").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.domain.catalog.fresh().is_none() {
        assert!(std::time::Instant::now() < deadline, "the snapshot never reloaded");
        app.data(&operator, "{ offers(first: 1) { edges { node { sku } } } }", json!({})).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.domain.catalog.fresh().unwrap().offers.contains_key(&offer.id));
}

async fn insert_unreadable_offer(app: &TestApp, product: i64, vendor: i64) {
    app.domain
        .db
        .execute_unprepared(&format!(
            "INSERT INTO offers (product_id, vendor_id, sku, name, unit, term, billing_frequency, min_quantity, \
             max_quantity, status, created_at, updated_at) VALUES ({product}, {vendor}, 'UNREADABLE', 'Unreadable', \
             'seat', 'P9Q', 'MONTHLY', 1, 1, 'ACTIVE', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))
        .await
        .unwrap();
}

const OFFERS: &str = "query($first: Int, $after: String, $filter: OfferFilterInput) {
  offers(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id sku name status term billingFrequency vendor { code status }
      product { id name status offers { sku status } }
      prices { currency effectiveFrom listPrice { amount } cost { amount } wholesale { amount } retail { amount } } } } } }";

const PRODUCTS: &str = "query($first: Int, $after: String, $filter: ProductFilterInput) {
  products(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id name status vendor { code products(first: 3) { totalCount edges { node { name } } } }
      offers { sku prices { currency retail { amount } } } } } } }";

const OFFERS_WITHOUT_TOTAL: &str = "query($first: Int, $after: String, $filter: OfferFilterInput) {
  offers(first: $first, after: $after, filter: $filter) { pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { sku product { name } prices { currency retail { amount } } } } } }";

const LOOKUPS: &str = "query($id: ID!) { offer(id: $id) { sku status product { name } pricePoints { currency cost }
  prices { currency listPrice { amount } } } product(id: $id) { name status vendor { code } offers { sku } } }";

const VENDORS: &str = "{ vendors(first: 10) { totalCount edges { node { code status
  products(first: 4, after: \"c3\") { totalCount pageInfo { hasNextPage hasPreviousPage } edges { node { name } } } } } } }";

/// Every page, filter and caller answers the same read from the database (cache off) as
/// from a cached snapshot of the same data: the demo catalog with some offers and products
/// retired, a vendor inactive and some names outside ASCII, walked page by page.
#[tokio::test]
async fn pages_read_from_the_database_answer_exactly_as_the_snapshot_does() {
    let direct = spawn_app_with(|config| config.catalog_cache_ttl = Duration::ZERO).await;
    switchyard::demo::seed_if_empty(&direct.domain).await.unwrap();
    for statement in [
        "UPDATE offers SET status = 'RETIRED' WHERE id % 7 = 3",
        "UPDATE products SET status = 'RETIRED' WHERE id % 5 = 2",
        "UPDATE offers SET name = 'Öffice ' || name WHERE id % 11 = 0",
        "UPDATE vendors SET status = 'INACTIVE' WHERE id = (SELECT MAX(id) FROM vendors)",
    ] {
        direct.domain.db.execute_unprepared(statement).await.unwrap();
    }
    let cached = spawn(|config| config.catalog_cache_ttl = Duration::from_secs(3600), 0, Some(&direct)).await;
    cached.domain.catalog.snapshot(&cached.domain.db).await.unwrap();

    let db = &direct.domain.db;
    let vendors: Vec<i64> = entity::vendor::Entity::find().all(db).await.unwrap().iter().map(|v| v.id).collect();
    let resellers: Vec<i64> = entity::reseller::Entity::find().all(db).await.unwrap().iter().map(|r| r.id).collect();
    let customers: Vec<i64> = entity::customer::Entity::find().all(db).await.unwrap().iter().map(|c| c.id).collect();
    let mut callers = vec![direct.operator()];
    // The inactive vendor cannot call at all (its token is refused before anything runs).
    let active_vendors = entity::vendor::Entity::find()
        .filter(entity::vendor::Column::Status.eq(entity::enums::OrganizationStatus::Active))
        .all(db)
        .await
        .unwrap();
    callers.extend(active_vendors.iter().map(|v| direct.token(Role::Vendor, Some(v.id))));
    callers.extend(resellers.iter().take(2).map(|&r| direct.token(Role::Reseller, Some(r))));
    callers.extend(customers.iter().take(2).map(|&c| direct.token(Role::Customer, Some(c))));

    let mut offer_filters = vec![
        json!(null),
        json!({"term": "P1Y"}),
        json!({"billingFrequency": "ANNUAL", "status": "ACTIVE"}),
        json!({"status": "RETIRED"}),
        json!({"productId": "4"}),
        json!({"search": "365"}),
        json!({"search": "öffice"}),
        json!({"search": "ÖFF"}),
        json!({"search": "  "}),
        json!({"search": "%"}),
    ];
    offer_filters.extend(vendors.iter().map(|v| json!({"vendorId": v.to_string()})));
    let product_filters = [
        json!(null),
        json!({"status": "RETIRED"}),
        json!({"search": "a"}),
        json!({"vendorId": vendors[0].to_string(), "status": "ACTIVE"}),
    ];

    let mut compared = 0;
    let apps = (&direct, &cached);
    for caller in &callers {
        assert_same(apps, caller, VENDORS, json!({})).await;
        for filter in &offer_filters {
            compared += walk(apps, caller, OFFERS, "offers", 25, filter).await;
        }
        for filter in &product_filters {
            compared += walk(apps, caller, PRODUCTS, "products", 9, filter).await;
        }
        compared += walk(apps, caller, OFFERS_WITHOUT_TOTAL, "offers", 40, &json!({"status": "ACTIVE"})).await;
        for id in (1..=250).step_by(9) {
            // Errors too (NOT_FOUND for what the caller may not see, FORBIDDEN price points).
            let (direct_answer, cached_answer) = (
                direct.post(Some(caller), LOOKUPS, json!({"id": id.to_string()})).await,
                cached.post(Some(caller), LOOKUPS, json!({"id": id.to_string()})).await,
            );
            assert_eq!(direct_answer, cached_answer, "lookups of {id}");
            compared += 1;
        }
        for (first, after) in [(0, None), (5, Some("c999999")), (3, Some("c0")), (100, Some("c100"))] {
            for query in [OFFERS, PRODUCTS] {
                assert_same(apps, caller, query, json!({"first": first, "after": after})).await;
                compared += 1;
            }
        }
    }
    println!("{compared} answers compared between the database and the snapshot");
    assert!(compared > 500, "only {compared} answers were compared");
}

/// Walks every page of `field` under `filter`; returns how many pages it compared.
async fn walk(
    apps: (&TestApp, &TestApp),
    token: &str,
    query: &str,
    field: &str,
    first: usize,
    filter: &Value,
) -> usize {
    let mut after = Value::Null;
    for pages in 1..=60 {
        let body = assert_same(apps, token, query, json!({"first": first, "after": after, "filter": filter})).await;
        let page = &body["data"][field];
        if page["pageInfo"]["hasNextPage"] != true {
            return pages;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("{field} under {filter} did not end within 60 pages");
}

/// Sends the same request to both apps; fails unless the answers are the same.
async fn assert_same((direct, cached): (&TestApp, &TestApp), token: &str, query: &str, variables: Value) -> Value {
    let from_database = direct.post(Some(token), query, variables.clone()).await;
    let from_snapshot = cached.post(Some(token), query, variables.clone()).await;
    assert_eq!(from_database, from_snapshot, "{query} with {variables}");
    let (status, body) = from_database;
    assert!(status == 200 && body.get("errors").is_none() && body["data"].is_object(), "{body}");
    body
}

/// A snapshot that outlived its time-to-live is kept when the catalog did not change (one
/// statement reads the catalog's version) instead of being reloaded whole; a change made
/// elsewhere (the version moved) is loaded.
#[tokio::test]
async fn an_expired_snapshot_of_an_unchanged_catalog_is_renewed_not_reloaded() {
    let ttl = Duration::from_secs(1);
    let app = spawn_app_with(|config| {
        config.catalog_cache_ttl = ttl;
        config.standing_ttl = Duration::from_secs(600);
    })
    .await;
    let f = Fixture::build(&app).await;
    let first = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let page = "{ offers(first: 2) { edges { node { sku } } } }";
    for _ in 0..3 {
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert!(app.domain.catalog.fresh().is_none(), "the time-to-live ran out");
        app.reset_statements();
        app.data(&reseller, page, json!({})).await;
        let statements = app.statement_count();
        let renewed = app.domain.catalog.fresh().expect("renewed by the request");
        assert!(std::sync::Arc::ptr_eq(&first, &renewed), "the unchanged catalog was reloaded");
        // The version, and the reseller's own prices (cached as long); a page read from the
        // database would take eight more.
        assert!(statements <= 4, "the renewed page took {statements} statements");
    }
    // Another process's write moves the version: the next expiry loads the catalog again.
    app.domain.db.execute_unprepared("UPDATE catalog_version SET version = version + 1 WHERE id = 1").await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        app.data(&reseller, page, json!({})).await;
        if app.domain.catalog.fresh().is_some_and(|now| !std::sync::Arc::ptr_eq(&first, &now)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the changed catalog was never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A change that bypassed the version (an SQL fix by hand) still shows: a snapshot is renewed
/// for at most `RENEWALS_BEFORE_RELOAD` time-to-lives, then loaded again.
#[tokio::test]
async fn a_change_made_behind_the_version_still_shows_after_a_bounded_number_of_renewals() {
    let ttl = Duration::from_millis(100);
    let app = spawn_app_with(|config| config.catalog_cache_ttl = ttl).await;
    let f = Fixture::build(&app).await;
    app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    app.domain.db.execute_unprepared("UPDATE offers SET name = 'Renamed by hand' WHERE sku = 'A-P1Y-M'").await.unwrap();
    let operator = app.operator();
    let query = "query($id: ID!) { offer(id: $id) { name } }";
    let started = std::time::Instant::now();
    let bound = ttl * (switchyard::domain::catalog_cache::RENEWALS_BEFORE_RELOAD + 1);
    assert!(bound < Duration::from_secs(5), "the test waits 10 s at most");
    loop {
        let data = app.data(&operator, query, json!({"id": f.offers_a[0].to_string()})).await;
        if data["offer"]["name"] == "Renamed by hand" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the hand-made change never showed");
        tokio::time::sleep(ttl / 2).await;
    }
    assert!(started.elapsed() >= ttl, "shown before the snapshot even expired: the test proves nothing");
}

/// A reseller's own wholesale prices (read for every request with the cache off, and at every
/// renewal of its pricing) are found through an index, not by reading every wholesale price
/// (tier prices included: one per offer, tier and currency in a large catalog).
#[tokio::test]
async fn a_resellers_own_prices_are_read_through_an_index_not_by_scanning_every_price() {
    use sea_orm::{Statement, TransactionTrait};
    let app = spawn_app_with(|_| {}).await;
    let db = &app.domain.db;
    let backend = db.get_database_backend();
    let query = "SELECT * FROM wholesale_prices WHERE reseller_id = 1 ORDER BY effective_from";
    let plan = if crate::helpers::is_postgres() {
        // The tables are empty: make the planner show whether an index could serve.
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.unwrap();
        let rows = txn.query_all_raw(Statement::from_string(backend, format!("EXPLAIN (COSTS OFF) {query}"))).await;
        let plan: Vec<String> =
            rows.unwrap().iter().map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap()).collect();
        txn.rollback().await.unwrap();
        plan
    } else {
        let rows = db.query_all_raw(Statement::from_string(backend, format!("EXPLAIN QUERY PLAN {query}"))).await;
        rows.unwrap().iter().map(|row| row.try_get::<String>("", "detail").unwrap()).collect()
    };
    let plan = plan.join("\n");
    println!("{plan}");
    assert!(plan.contains("idx_wholesale_prices_by_reseller"), "the reseller's prices are scanned for:\n{plan}");
}
