//! The reconciliation part (#10): time and peak memory to import and match a vendor's
//! statement of 1,000,000 rows (`BENCH_ROWS` to change the rows).
//!
//! The database holds `rows / 4` monthly subscriptions of the demo's first vendor, each
//! charged for December as the billing engine would: the cycle, two seat increases and a
//! decrease, prorated. The statement has the same four rows for each (the vendor's
//! ROUNDDOWN), one subscription in a hundred at another unit price; so matching finds every
//! category it must look for a match in, not an empty table.
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use entity::enums::{BillingFrequency, ChargeKind, OrganizationStatus, SubscriptionStatus, Term};
use entity::{DbDecimal, charge, customer, subscription};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, EntityTrait, NotSet, Set};
use switchyard::demo;
use switchyard::domain::clock::ManualClock;
use switchyard::domain::ids::VendorId;
use switchyard::domain::reconciliation::import::import_statement;
use switchyard::domain::reconciliation::partner_center::PartnerCenter;
use switchyard::domain::{Actor, reconciliation};
use switchyard::startup::{Application, Overrides, Settings};

use crate::common::{self, Goal, figure, memory_kib};

const CUSTOMERS: usize = 10_000;
const HEADER: &str = "PartnerId,CustomerId,CustomerName,CustomerDomainName,CustomerCountry,InvoiceNumber,MpnId,\
    ResellerMpnId,OrderId,OrderDate,ProductId,SkuId,AvailabilityId,SkuName,ProductName,ChargeType,UnitPrice,Quantity,\
    Subtotal,TaxTotal,Total,Currency,SubscriptionId,ChargeStartDate,ChargeEndDate,TermAndBillingCycle,\
    EffectiveUnitPrice,UnitType,BillableQuantity,BillingFrequency,PricingCurrency,PCToBCExchangeRate";

/// Each subscription's December: (kind, charge type, seats, first day).
const DECEMBER: [(ChargeKind, &str, i32, u32); 4] = [
    (ChargeKind::Recurring, "cycleCharge", 0, 1),
    (ChargeKind::Proration, "addQuantity", 2, 10),
    (ChargeKind::Refund, "removeQuantity", -1, 20),
    (ChargeKind::Proration, "addQuantity", 1, 25),
];

pub fn main() {
    let rows: usize = std::env::var("BENCH_ROWS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    // `RUST_LOG=switchyard=info` shows where matching spends its time.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("reconciliation", |backend, url| async move {
        run(backend, &url, rows.div_ceil(4)).await
    }));
}

fn cost() -> Decimal {
    Decimal::new(4800, 2)
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
}

async fn run(backend: &str, url: &str, count: usize) {
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(url.to_owned());
    settings.database.db_max_connections = 8;
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2027, 1, 5, 12, 0, 0).unwrap()));
    let app = Application::build(settings, Overrides { clock: Some(clock), ..Overrides::default() }).await.unwrap();
    let domain = Arc::clone(app.domain());
    demo::seed_if_empty(&domain).await.unwrap();
    let seeding = Instant::now();
    seed(&domain.db, count).await;
    let file = std::env::temp_dir().join(format!("switchyard-bench-statement-{}.csv", std::process::id()));
    let rows = write_statement(&file, count);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if backend == "PostgreSQL" {
        // What autovacuum does to tables this size soon after they are written (a billing run
        // analyzes its charges itself; the seed bypasses it).
        domain.db.execute_unprepared("ANALYZE").await.unwrap();
    }
    let seeded = seeding.elapsed();
    let rss_before = memory_kib("VmRSS:");
    let hwm_before = memory_kib("VmHWM:");
    let started = Instant::now();
    let outcome = import_statement(
        &domain,
        &Actor::system(),
        VendorId::new(1),
        "bench.csv",
        Some("2026-12"),
        &PartnerCenter,
        &file,
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&file);
    let peak_import = memory_kib("VmHWM:");
    // Matching alone, again (its findings are replaced).
    let rematch = Instant::now();
    reconciliation::matcher::match_import(&domain, &Actor::system(), outcome.import.id, None).await.unwrap();
    let rematched = rematch.elapsed();
    let filter = reconciliation::report::FindingFilter { import_id: Some(outcome.import.id), ..Default::default() };
    let report = reconciliation::report::report(&domain, &Actor::system(), &filter).await.unwrap();
    let categories: Vec<String> =
        report.categories.iter().map(|c| format!("{} {}", c.category.as_str(), c.findings)).collect();
    println!(
        "{backend:<10} imported and matched {rows} rows ({} MiB) in {:.1} s ({:.0} rows/s; matching alone, again: \
         {:.1} s): {}; RSS before {} MiB, peak {} MiB through the import, {} MiB after matching again (peak before \
         the import {} MiB; seeded in {:.1} s)",
        size / (1024 * 1024),
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        rematched.as_secs_f64(),
        categories.join(", "),
        rss_before / 1024,
        peak_import / 1024,
        memory_kib("VmHWM:") / 1024,
        hwm_before / 1024,
        seeded.as_secs_f64(),
    );
    let what = format!("reconciliation: {rows} statement rows imported and matched");
    figure("#10", backend, &what, elapsed.as_secs_f64(), "s", Goal::Below(60.0));
    figure("#10", backend, &format!("{what}, peak memory"), (peak_import / 1024) as f64, "MiB", Goal::Shown);
}

/// The statement: four rows per subscription, the vendor's rule on the same prices; one in a
/// hundred at 49.00 instead of 48.00. Returns the rows written.
fn write_statement(path: &std::path::Path, count: usize) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "{HEADER}").unwrap();
    let mut rows = 0;
    for (id, i) in (1_i64..).zip(0..count) {
        let quantity = 1 + (i % 50) as i32;
        let price = if i % 100 == 7 { Decimal::new(4900, 2) } else { cost() };
        for (_, charge_type, seats, first) in DECEMBER {
            let seats = if seats == 0 { quantity } else { seats };
            let days = 31 - first + 1;
            let effective = (price * Decimal::from(days) / Decimal::from(31))
                .round_dp_with_strategy(10, RoundingStrategy::MidpointAwayFromZero);
            let subtotal = effective.round_dp_with_strategy(2, RoundingStrategy::ToZero) * Decimal::from(seats);
            writeln!(
                out,
                "p1,tenant-{c},Customer {c},c{c}.example,DE,G0001,1,5555,o{id},2026-01-01,DZH318Z0BQ3Q,0001,AV01,Seat,\
                 Product,{charge_type},{price},{seats},{subtotal},0,{subtotal},USD,bench-{id},{},2026-12-31,\
                 1 Year - 1 Month,{effective},Licenses,{seats},Monthly,USD,1",
                day(first),
                c = i % CUSTOMERS,
            )
            .unwrap();
            rows += 1;
        }
    }
    out.flush().unwrap();
    rows
}

/// `count` monthly subscriptions over 10,000 customers of the demo's resellers, and their
/// December charges.
async fn seed(db: &sea_orm::DatabaseConnection, count: usize) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let customers: Vec<customer::ActiveModel> = (0..CUSTOMERS)
        .map(|i| customer::ActiveModel {
            id: NotSet,
            reseller_id: Set(1 + (i % 3) as i64),
            name: Set(format!("Bench customer {i}")),
            country: Set("DE".into()),
            currency: Set("USD".into()),
            tax_rate: Set(DbDecimal(Decimal::new(19, 2))),
            status: Set(OrganizationStatus::Active),
            created_at: Set(now),
            updated_at: Set(now),
            legal_name: Set(None),
            address: Set(None),
            tax_id: Set(None),
        })
        .collect();
    for chunk in customers.chunks(1000) {
        customer::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await.unwrap();
    }
    let first_customer: i64 = 25;
    let mut subscriptions = Vec::with_capacity(1000);
    let mut charges = Vec::with_capacity(4000);
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    for (id, i) in (1_i64..).zip(0..count) {
        let customer_index = i % CUSTOMERS;
        let quantity = 1 + (i % 50) as i32;
        let bought = Utc.with_ymd_and_hms(2026, 1 + (i % 11) as u32, 1 + (i % 28) as u32, 9, 0, 0).unwrap();
        subscriptions.push(subscription::ActiveModel {
            id: Set(id),
            customer_id: Set(first_customer + customer_index as i64),
            reseller_id: Set(1 + (customer_index % 3) as i64),
            vendor_id: Set(1),
            offer_id: Set(2),
            order_id: Set(None),
            quantity: Set(quantity + 2),
            status: Set(SubscriptionStatus::Active),
            term: Set(Term::P1y),
            billing_frequency: Set(BillingFrequency::Monthly),
            term_start: Set(Some(bought)),
            term_end: Set(bought.checked_add_months(chrono::Months::new(12))),
            auto_renew: Set(true),
            vendor_reference: Set(Some(format!("bench-{id}"))),
            update_count: Set(0),
            currency: Set("USD".into()),
            unit_cost: Set(DbDecimal(cost())),
            unit_wholesale: Set(DbDecimal(Decimal::new(5520, 2))),
            unit_retail: Set(DbDecimal(Decimal::new(6000, 2))),
            prices_locked_at: Set(bought),
            version: Set(1),
            created_at: Set(bought),
            updated_at: Set(bought),
            billing_settled: Set(false),
            sync_issue: Set(None),
        });
        for (n, (kind, _, seats, first)) in DECEMBER.into_iter().enumerate() {
            let seats = if seats == 0 { quantity } else { seats };
            let days = 31 - first + 1;
            let prorate =
                |unit: Decimal| (unit / Decimal::from(31) * Decimal::from(days)).round_dp(2) * Decimal::from(seats);
            let (wholesale, retail) = (Decimal::new(5520, 2), Decimal::new(6000, 2));
            charges.push(charge::ActiveModel {
                id: NotSet,
                subscription_id: Set(id),
                customer_id: Set(first_customer + customer_index as i64),
                reseller_id: Set(1 + (customer_index % 3) as i64),
                vendor_id: Set(1),
                offer_id: Set(2),
                billing_run_id: Set(None),
                period: Set("2026-12".into()),
                kind: Set(kind),
                charge_key: Set(format!("bench:{n}")),
                description: Set("bench".into()),
                quantity: Set(DbDecimal(Decimal::from(seats))),
                days_used: Set(Some(days as i32)),
                days_in_period: Set(Some(31)),
                service_start: Set(midnight(day(first))),
                service_end: Set(midnight(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap())),
                currency: Set("USD".into()),
                unit_cost: Set(DbDecimal(cost())),
                unit_wholesale: Set(DbDecimal(wholesale)),
                unit_retail: Set(DbDecimal(retail)),
                amount_cost: Set(DbDecimal(prorate(cost()))),
                amount_wholesale: Set(DbDecimal(prorate(wholesale))),
                amount_retail: Set(DbDecimal(prorate(retail))),
                created_at: Set(now),
                customer_invoice_id: Set(None),
                reseller_invoice_id: Set(None),
                cycle_unit_cost: Set(Some(DbDecimal(cost()))),
                cycle_unit_wholesale: Set(Some(DbDecimal(wholesale))),
                cycle_unit_retail: Set(Some(DbDecimal(retail))),
                bills_customer: Set(true),
            });
        }
        if subscriptions.len() == 1000 {
            common::flush_seeded(db, &mut subscriptions, &mut charges, 500).await;
        }
    }
    common::flush_seeded(db, &mut subscriptions, &mut charges, 500).await;
}
