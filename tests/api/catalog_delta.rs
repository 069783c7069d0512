//! #13 item 1: a stale catalog snapshot is brought up to date by re-reading only the rows
//! that changed since it was loaded (`catalog_delta`), and the result is always the catalog a
//! whole load reads.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use entity::enums::{BillingFrequency, CatalogStatus, ConnectorKind, Term};
use sea_orm::ConnectionTrait;
use switchyard::domain::catalog::{self, NewOffer, NewPricePoint, NewProduct, NewVendor, OfferChanges, ProductChanges};
use switchyard::domain::catalog_cache::CatalogSnapshot;
use switchyard::domain::customers::{self, NewRetailPrice};
use switchyard::domain::ids::{OfferId, ProductId, ResellerId, TierId, VendorId};
use switchyard::domain::resellers::{self, NewWholesalePrice, ResellerChanges, WholesaleTarget};
use switchyard::domain::{Actor, Domain, Role};

use crate::helpers::{Fixture, TestApp, dec, spawn, spawn_app_with};

/// Another process's write reaches this process's snapshot by the changed row alone: an
/// offer renamed by hand in SQL (no change recorded) is not re-read, the offer the other
/// process renamed is, in a handful of statements rather than a whole load.
#[tokio::test]
async fn a_stale_snapshot_rereads_only_the_rows_changed_since_it_was_loaded() {
    let ttl = Duration::from_millis(300);
    let app = spawn_app_with(|config| config.catalog_cache_ttl = ttl).await;
    let f = Fixture::build(&app).await;
    let other = spawn(|config| config.catalog_cache_ttl = ttl, 0, Some(&app)).await;
    let first = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let name = |snapshot: &CatalogSnapshot, id: i64| snapshot.offers[&id].name.clone();
    let untouched = name(&first, f.offers_a[0]);

    let by_hand = format!("UPDATE offers SET name = 'Renamed by hand' WHERE id = {}", f.offers_a[0]);
    app.domain.db.execute_unprepared(&by_hand).await.unwrap();
    let renamed = OfferChanges { name: Some("Renamed elsewhere".into()), ..Default::default() };
    catalog::update_offer(&other.domain, &Actor::system(), OfferId::new(f.offers_a[1]), renamed).await.unwrap();

    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    app.reset_statements();
    let refreshed = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let statements = app.statement_count();
    assert_eq!(name(&refreshed, f.offers_a[1]), "Renamed elsewhere", "the recorded change was applied");
    assert_eq!(name(&refreshed, f.offers_a[0]), untouched, "an unrecorded row was read again: a whole load");
    // The version, the changes, the one offer (and perhaps the event relay's poll, once a
    // second on the same pool); a whole load takes nine.
    assert!(statements <= 4, "the refresh took {statements} statements");
    assert_eq!(refreshed.offers.len(), first.offers.len());
}

/// A catalog version bumped without its changes recorded (an older binary's write during a
/// rolling upgrade, an SQL fix by hand that bumps the version) cannot be refreshed from: the
/// snapshot is loaded whole at the next expiry, and the change shows within one TTL.
#[tokio::test]
async fn a_version_bumped_without_recorded_changes_loads_the_catalog_whole() {
    let ttl = Duration::from_millis(300);
    let app = spawn_app_with(|config| config.catalog_cache_ttl = ttl).await;
    let f = Fixture::build(&app).await;
    app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let older_binary = format!(
        "UPDATE offers SET name = 'Renamed by an older binary' WHERE id = {};
         UPDATE catalog_version SET version = version + 1 WHERE id = 1",
        f.offers_a[0]
    );
    app.domain.db.execute_unprepared(&older_binary).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let snapshot = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    assert_eq!(snapshot.offers[&f.offers_a[0]].name, "Renamed by an older binary");
}

/// `invalidate` drops the snapshot, for rows changed behind the catalog's version (SQL by
/// hand records no change to refresh from): the next load reads the catalog whole.
#[tokio::test]
async fn invalidating_the_cache_drops_rows_changed_behind_the_version() {
    let app = spawn_app_with(|config| config.catalog_cache_ttl = Duration::from_secs(600)).await;
    let f = Fixture::build(&app).await;
    app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let by_hand = format!("UPDATE offers SET name = 'Renamed by hand' WHERE id = {}", f.offers_a[0]);
    app.domain.db.execute_unprepared(&by_hand).await.unwrap();
    app.domain.catalog.invalidate();
    let snapshot = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    assert_eq!(snapshot.offers[&f.offers_a[0]].name, "Renamed by hand");
}

/// Writes committing while the snapshot is loaded and refreshed: each refresh may hold some
/// of them, and the next applies them again; once the writes stop, one more refresh is the
/// catalog a whole load reads. Only the first load reads the catalog whole (a load that
/// raced with a write keeps its version, and refreshes from it).
#[tokio::test]
async fn a_snapshot_refreshed_while_writes_commit_equals_a_whole_load_once_they_stop() {
    let app = spawn_app_with(|config| config.catalog_cache_ttl = Duration::from_secs(600)).await;
    let f = Fixture::build(&app).await;
    let other = spawn(|config| config.catalog_cache_ttl = Duration::from_secs(600), 0, Some(&app)).await;
    let offers = [f.offers_a.clone(), vec![f.offer_b]].concat();
    let writer = {
        let (domain, offers) = (std::sync::Arc::clone(&other.domain), offers.clone());
        tokio::spawn(async move {
            let op = Actor::system();
            for step in 0..150usize {
                let offer = OfferId::new(offers[step % offers.len()]);
                if step % 2 == 0 {
                    let changes = OfferChanges { name: Some(format!("Offer at step {step}")), ..Default::default() };
                    catalog::update_offer(&domain, &op, offer, changes).await.unwrap();
                } else {
                    let day = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(step as i64);
                    let input = NewPricePoint {
                        offer_id: offer,
                        currency: "USD".into(),
                        cost: dec("5.00"),
                        list_price: dec("6.00"),
                        usage_unit_cost: None,
                        usage_unit_list_price: None,
                        effective_from: Some(day),
                    };
                    catalog::add_price_point(&domain, &op, input).await.unwrap();
                }
            }
        })
    };
    let mut loads = 0;
    while !writer.is_finished() {
        app.domain.catalog.mark_stale();
        app.reset_statements();
        app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
        let statements = app.statement_count();
        loads += 1;
        // A whole load takes nine statements; a refresh of offers and price points four
        // (and perhaps the event relay's poll on the same pool).
        assert!(loads == 1 || statements <= 5, "load {loads} took {statements} statements: a whole load");
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    app.domain.catalog.mark_stale();
    let refreshed = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let whole = CatalogSnapshot::load(&app.domain.db).await.unwrap();
    assert_eq!(contents(&refreshed), contents(&whole), "after {loads} loads during the writes");
    println!("{loads} loads and refreshes while 150 writes committed");
}

/// A small deterministic generator (xorshift64*): the histories repeat run to run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
    fn pick(&mut self, ids: &[i64]) -> i64 {
        ids[self.below(ids.len())]
    }
}

/// The ids a history writes to.
struct Ids {
    vendors: Vec<i64>,
    products: Vec<i64>,
    offers: Vec<i64>,
    tiers: Vec<i64>,
    resellers: Vec<i64>,
}

/// One random catalog or price write through `domain`; `step` keeps names and dates unique.
async fn random_write(domain: &Domain, dice: &mut Dice, ids: &mut Ids, step: usize) {
    let op = Actor::system();
    let day = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(step as i64);
    let amount = dec(&format!("{}.{:02}", 5 + dice.below(40), dice.below(100)));
    let currency = ["USD", "EUR"][dice.below(2)].to_owned();
    match dice.below(13) {
        0 => {
            let input = NewVendor {
                code: format!("v-{step}"),
                name: format!("Vendor {step}"),
                connector_kind: ConnectorKind::Sandbox,
                connector_settings: None,
            };
            ids.vendors.push(catalog::create_vendor(domain, &op, input).await.unwrap().id);
        }
        1 => {
            let changes = catalog::VendorChanges { name: Some(format!("Vendor renamed {step}")), ..Default::default() };
            catalog::update_vendor(domain, &op, VendorId::new(dice.pick(&ids.vendors)), changes).await.unwrap();
        }
        2 => {
            let vendor_id = VendorId::new(dice.pick(&ids.vendors));
            let input = NewProduct { vendor_id, name: format!("Product {step}"), description: None };
            ids.products.push(catalog::create_product(domain, &op, input).await.unwrap().id);
        }
        3 => {
            let status = [CatalogStatus::Active, CatalogStatus::Retired][dice.below(2)];
            let changes = ProductChanges {
                name: Some(format!("Product renamed {step}")),
                status: Some(status),
                ..Default::default()
            };
            catalog::update_product(domain, &op, ProductId::new(dice.pick(&ids.products)), changes).await.unwrap();
        }
        4 | 5 => {
            let input = NewOffer {
                product_id: ProductId::new(dice.pick(&ids.products)),
                sku: format!("SKU-{step}"),
                name: format!("Offer {step}"),
                unit: "license".into(),
                term: Term::P1y,
                billing_frequency: BillingFrequency::Monthly,
                min_quantity: 1,
                max_quantity: 100,
                usage_meter: None,
            };
            ids.offers.push(catalog::create_offer(domain, &op, input).await.unwrap().id);
        }
        6 => {
            let status = [CatalogStatus::Active, CatalogStatus::Retired][dice.below(2)];
            let changes = OfferChanges {
                name: Some(format!("Offer renamed {step}")),
                max_quantity: Some(100 + dice.below(100) as i32),
                status: Some(status),
                ..Default::default()
            };
            catalog::update_offer(domain, &op, OfferId::new(dice.pick(&ids.offers)), changes).await.unwrap();
        }
        7 | 8 => {
            let input = NewPricePoint {
                offer_id: OfferId::new(dice.pick(&ids.offers)),
                currency,
                cost: amount,
                list_price: amount + dec("1.00"),
                usage_unit_cost: None,
                usage_unit_list_price: None,
                effective_from: Some(day),
            };
            catalog::add_price_point(domain, &op, input).await.unwrap();
        }
        9 => {
            if dice.below(2) == 0 {
                ids.tiers
                    .push(resellers::create_tier(domain, &op, &format!("Tier {step}"), dec("0.10")).await.unwrap().id);
            } else {
                let tier = TierId::new(dice.pick(&ids.tiers));
                resellers::update_tier(domain, &op, tier, None, Some(dec(&format!("0.{:02}", dice.below(50)))))
                    .await
                    .unwrap();
            }
        }
        10 => {
            let target = if dice.below(2) == 0 {
                WholesaleTarget::Tier(TierId::new(dice.pick(&ids.tiers)))
            } else {
                WholesaleTarget::Reseller(ResellerId::new(dice.pick(&ids.resellers)))
            };
            let offer_id = OfferId::new(dice.pick(&ids.offers));
            let input = NewWholesalePrice { offer_id, target, currency, price: amount, effective_from: Some(day) };
            resellers::set_wholesale_price(domain, &op, input).await.unwrap();
        }
        11 => {
            let reseller = Actor::from_role(None, Role::Reseller, Some(dice.pick(&ids.resellers))).unwrap();
            let offer_id = OfferId::new(dice.pick(&ids.offers));
            let input = NewRetailPrice { offer_id, currency, price: amount, effective_from: Some(day) };
            // A retired offer is not the reseller's to price: refused, and nothing changes.
            let _ = customers::set_retail_price(domain, &reseller, input).await;
        }
        _ => {
            let changes = ResellerChanges { tier_id: Some(TierId::new(dice.pick(&ids.tiers))), ..Default::default() };
            resellers::update_reseller(domain, &op, ResellerId::new(dice.pick(&ids.resellers)), changes).await.unwrap();
        }
    }
}

/// The parts of a snapshot that are data, in a comparable form (hash maps in key order).
fn contents(snapshot: &CatalogSnapshot) -> String {
    let by_product: BTreeMap<_, _> = snapshot.offers_by_product.iter().collect();
    let points: BTreeMap<_, _> = snapshot.price_points.iter().collect();
    let tier_prices: BTreeMap<_, _> = snapshot.tier_prices.iter().collect();
    format!(
        "{:?}\n{:?}\n{:?}\n{by_product:?}\n{points:?}\n{:?}\n{tier_prices:?}\n{:?}",
        snapshot.vendors, snapshot.products, snapshot.offers, snapshot.tiers, snapshot.price_change_times
    )
}

/// After any history of catalog and price writes, made in this process or in another one,
/// the snapshot kept up to date by refreshes from the recorded changes equals the catalog a
/// whole load reads; and every refresh of one write reads a handful of rows, not the catalog.
#[tokio::test]
async fn a_snapshot_refreshed_from_changes_equals_a_whole_load_after_any_history() {
    // A long time-to-live: every refresh below is asked for, none is a periodic whole load.
    let app = spawn_app_with(|config| config.catalog_cache_ttl = Duration::from_secs(600)).await;
    let f = Fixture::build(&app).await;
    let other = spawn(|config| config.catalog_cache_ttl = Duration::from_secs(600), 0, Some(&app)).await;
    let mut ids = Ids {
        vendors: vec![f.vendor_a, f.vendor_b],
        products: vec![f.product_a, f.product_b],
        offers: [f.offers_a.clone(), vec![f.offer_b, f.retired_offer]].concat(),
        tiers: vec![f.tier_gold],
        resellers: vec![f.reseller_a, f.reseller_b],
    };
    app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
    let mut dice = Dice(0x5EED_CA7A_1065);
    let (steps, mut pending) = (240, 0);
    for step in 0..steps {
        let writer: &TestApp = if dice.below(3) == 0 { &other } else { &app };
        random_write(&writer.domain, &mut dice, &mut ids, step).await;
        pending += 1;
        if dice.below(4) == 0 {
            continue; // several writes between two refreshes
        }
        // Another process's write is seen when the time-to-live runs out; this stands in.
        app.domain.catalog.mark_stale();
        app.reset_statements();
        let refreshed = app.domain.catalog.snapshot(&app.domain.db).await.unwrap();
        let statements = app.statement_count();
        let whole = CatalogSnapshot::load(&app.domain.db).await.unwrap();
        assert_eq!(contents(&refreshed), contents(&whole), "step {step}: the refreshed snapshot differs");
        // A whole load takes nine; the refresh of one write, the version, the changes and its
        // rows (one statement, two for a reseller's prices), and perhaps the relay's poll.
        if std::mem::take(&mut pending) == 1 {
            assert!(statements <= 5, "step {step}: the refresh of one write took {statements} statements");
        }
    }
}
