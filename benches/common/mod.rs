//! What every benchmark shares: a temporary SQLite file and a temporary PostgreSQL database
//! (on `BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; skipped
//! with a message when unreachable), each dropped afterwards.

use std::future::Future;

use sea_orm::ConnectionTrait;
use switchyard::db;

/// The allocator of the `switchyard` process (see `src/main.rs`), so a bench measures what it
/// runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `bench` once on SQLite and once on PostgreSQL, with the backend's name and URL.
/// `BENCH_BACKEND=sqlite` or `postgres` runs one only (for a clean peak-memory figure).
pub async fn on_each_backend<F, Fut>(name: &str, bench: F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let only = std::env::var("BENCH_BACKEND").unwrap_or_default();
    if only != "postgres" {
        sqlite(name, &bench).await;
    }
    if only != "sqlite" {
        postgres(name, &bench).await;
    }
}

async fn sqlite<F, Fut>(name: &str, bench: &F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = std::env::temp_dir().join(format!("switchyard-bench-{name}-{}.db", std::process::id()));
    bench("SQLite", format!("sqlite://{}?mode=rwc", sqlite.display())).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
}

async fn postgres<F, Fut>(name: &str, bench: &F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match db::connect(&admin_url, 1).await {
        Ok(admin) => {
            let database = format!("switchyard_bench_{name}_{}", std::process::id());
            admin.execute_unprepared(&format!("CREATE DATABASE {database}")).await.expect("create the bench database");
            let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
            bench("PostgreSQL", format!("{base}/{database}")).await;
            admin.execute_unprepared(&format!("DROP DATABASE {database} WITH (FORCE)")).await.expect("drop it");
        }
        Err(error) => println!("PostgreSQL skipped: {error}"),
    }
}

#[allow(dead_code, reason = "only the catalog bench generates a catalog")]
/// Adds the generated offers numbered `offers` to the catalog (on top of the demo's), four per product
/// under the demo's first vendor, active, each with a USD and an EUR price point: the
/// catalog sizes of #13 (1,000 / 20,000 / 200,000 offers). Rows go in 1,000 at a time.
pub async fn generate_catalog(db: &sea_orm::DatabaseConnection, offers: std::ops::Range<usize>) {
    use chrono::{TimeZone, Utc};
    use entity::enums::{BillingFrequency, CatalogStatus, Term};
    use entity::{DbDecimal, offer, price_point, product, vendor};
    use rust_decimal::Decimal;
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};

    const PER_PRODUCT: usize = 4;
    const CHUNK: usize = 1_000;
    let vendor = vendor::Entity::find().order_by_asc(vendor::Column::Id).one(db).await.unwrap().expect("a demo vendor");
    let now = Utc::now();
    let since = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let products = (offers.start / PER_PRODUCT)..offers.end.div_ceil(PER_PRODUCT);
    let mut product_ids = std::collections::HashMap::new();
    for start in products.clone().step_by(CHUNK) {
        let numbers: Vec<usize> = (start..(start + CHUNK).min(products.end)).collect();
        let rows = numbers.iter().map(|&n| product::ActiveModel {
            vendor_id: Set(vendor.id),
            name: Set(format!("Generated product {n:06}")),
            description: Set(format!("A generated product, number {n}, for catalog-scale benchmarks.")),
            status: Set(CatalogStatus::Active),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        let inserted = product::Entity::insert_many(rows).exec_with_returning(db).await.unwrap();
        product_ids.extend(numbers.into_iter().zip(inserted.into_iter().map(|p| p.id)));
    }
    let terms = [
        (Term::P1m, BillingFrequency::Monthly),
        (Term::P1y, BillingFrequency::Monthly),
        (Term::P1y, BillingFrequency::Annual),
        (Term::P3y, BillingFrequency::Annual),
    ];
    for start in offers.clone().step_by(CHUNK) {
        let rows = (start..(start + CHUNK).min(offers.end)).map(|n| {
            let (term, billing_frequency) = terms[n % PER_PRODUCT];
            offer::ActiveModel {
                product_id: Set(product_ids[&(n / PER_PRODUCT)]),
                vendor_id: Set(vendor.id),
                sku: Set(format!("GEN-{n:07}")),
                name: Set(format!("Generated offer {n:07}")),
                unit: Set("license".into()),
                term: Set(term),
                billing_frequency: Set(billing_frequency),
                min_quantity: Set(1),
                max_quantity: Set(10_000),
                status: Set(CatalogStatus::Active),
                usage_meter: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        });
        let inserted = offer::Entity::insert_many(rows).exec_with_returning(db).await.unwrap();
        let points = inserted.iter().flat_map(|offer| {
            [("USD", 1_000), ("EUR", 920)].map(|(currency, cents)| {
                let list = Decimal::new(cents + offer.id % 1_000, 2);
                price_point::ActiveModel {
                    offer_id: Set(offer.id),
                    currency: Set(currency.into()),
                    cost: Set(DbDecimal(list * Decimal::new(80, 2))),
                    list_price: Set(DbDecimal(list)),
                    usage_unit_cost: Set(None),
                    usage_unit_list_price: Set(None),
                    effective_from: Set(since),
                    created_at: Set(now),
                    ..Default::default()
                }
            })
        });
        price_point::Entity::insert_many(points.collect::<Vec<_>>()).exec(db).await.unwrap();
    }
    // As after any bulk load: the planner needs statistics to walk a page by the primary key
    // (without them PostgreSQL joined all 200,000 offers for a 50-offer page). The server
    // here runs with autovacuum off, so nothing would gather them.
    db.execute_unprepared("ANALYZE").await.unwrap();
}

#[allow(dead_code, reason = "the provisioning and live benches seed this way")]
/// The demo data, with every vendor's sandbox answering at once and never failing: the
/// engine is measured, not the simulated vendor.
pub async fn seed_with_instant_vendors(domain: &switchyard::domain::Domain) {
    switchyard::demo::seed_if_empty(domain).await.expect("seed the demo data");
    domain
        .db
        .execute_unprepared("UPDATE vendors SET connector_settings = '{\"latencyMs\": 0, \"failureRate\": \"0\"}'")
        .await
        .expect("make the vendors instant");
    domain.catalog.invalidate();
}
