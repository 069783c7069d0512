//! The billing part (#13 item 6): the time to bill 100,000 active subscriptions (with
//! change history) for November and the peak memory, in two processes of their own, each on
//! a database of its own: the first run ever, which catches up every cycle since purchase;
//! and a steady month, October billed first, untimed. `BENCH_SUBSCRIPTIONS` changes N;
//! `BENCH_PG_STATS=1` resets pg_stat_statements, where the server preloads it, just before
//! the timed run. The peak printed is the process's resident peak during the timed run
//! (reset before it).

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use entity::enums::{BillingFrequency, OrganizationStatus, Role, SubscriptionChangeKind, SubscriptionStatus, Term};
use entity::{DbDecimal, customer, subscription, subscription_change};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, EntityTrait, NotSet, Set};
use switchyard::demo;
use switchyard::domain::clock::ManualClock;
use switchyard::domain::{Actor, Domain, billing};
use switchyard::startup::{Application, Overrides, Settings};

use crate::common::{self, Goal, figure, memory_kib};

const CUSTOMERS: usize = 10_000;

/// Set in the environment of the process that runs one of the two: `first` or `steady`.
const RUN: &str = "BENCH_BILLING_RUN";

pub fn main() {
    let steady = match std::env::var(RUN).as_deref() {
        Ok("first") => false,
        Ok("steady") => true,
        _ => {
            for run in ["first", "steady"] {
                let status = std::process::Command::new(std::env::current_exe().unwrap()).env(RUN, run).status();
                assert!(status.unwrap().success(), "the billing part's {run} run failed");
            }
            return;
        }
    };
    let subscriptions: usize =
        std::env::var("BENCH_SUBSCRIPTIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(common::on_each_backend("billing", |backend, url| async move {
        run(backend, &url, subscriptions, steady).await
    }));
}

async fn run(backend: &str, url: &str, count: usize, steady: bool) {
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some(url.to_owned());
    settings.database.db_max_connections = 8;
    settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()));
    let app = Application::build(settings, Overrides { clock: Some(clock), ..Overrides::default() }).await.unwrap();
    let domain = Arc::clone(app.domain());
    demo::seed_if_empty(&domain).await.unwrap();
    let seeding = Instant::now();
    seed(&domain.db, count).await;
    println!("{backend:<10} seeded {count} subscriptions in {:.1} s", seeding.elapsed().as_secs_f64());
    if backend == "PostgreSQL" {
        // After a bulk load the planner needs statistics, which autovacuum gathers within a
        // minute on a default server (this machine's runs with autovacuum off): without
        // them it reads a batch's history by scanning every change.
        domain.db.execute_unprepared("ANALYZE").await.unwrap();
    }
    if steady {
        // A steady month: every month before November billed already (untimed).
        billing::run_billing(&domain, &Actor::system(), "2026-10").await.unwrap();
    }
    if backend == "PostgreSQL" && std::env::var("BENCH_PG_STATS").is_ok() {
        // Profile the timed run alone: pg_stat_statements (which the server must preload)
        // starts counting here; read it from any database of the server afterwards.
        for sql in ["CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT pg_stat_statements_reset()"] {
            let statement = sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql);
            if let Err(error) = domain.db.execute_raw(statement).await {
                eprintln!("BENCH_PG_STATS: {error}");
            }
        }
    }
    let what = if steady { "steady month" } else { "first run" };
    bill(backend, &domain, "2026-11", &format!("billing {count} subscriptions, {what}")).await;
}

/// Bills `period`, timed, with the resident peak of the run alone; then again, which must
/// add nothing. `what` names the figures.
async fn bill(backend: &str, domain: &Domain, period: &str, what: &str) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = memory_kib("VmRSS:");
    let started = Instant::now();
    let summary = billing::run_billing(domain, &Actor::system(), period).await.unwrap();
    let elapsed = started.elapsed();
    let peak = memory_kib("VmHWM:") / 1024;
    let again = Instant::now();
    let rerun = billing::run_billing(domain, &Actor::system(), period).await.unwrap();
    assert_eq!(rerun.charges_created, 0, "a second run of {period} adds nothing");
    println!(
        "{backend:<10} {what}: billed {} subscriptions for {period} in {:.1} s ({:.0} subscriptions/s): {} charges, \
         {} invoices; re-run {:.1} s adding nothing; RSS before {} MiB, peak {peak} MiB",
        summary.subscriptions,
        elapsed.as_secs_f64(),
        summary.subscriptions as f64 / elapsed.as_secs_f64(),
        summary.charges_created,
        summary.invoices_touched,
        again.elapsed().as_secs_f64(),
        rss_before / 1024,
    );
    figure("6", backend, what, elapsed.as_secs_f64(), "s", Goal::Below(10.0));
    figure("6", backend, &format!("{what}, peak memory"), peak as f64, "MiB", Goal::Below(256.0));
}

/// `count` subscriptions over 10,000 customers of the demo resellers: 70 % monthly, 20 %
/// annual, 10 % upfront, bought over the year; each with its purchase and provisioning in
/// its history, and one in five with a seat increase during November.
async fn seed(db: &sea_orm::DatabaseConnection, count: usize) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let customers: Vec<customer::ActiveModel> = (0..CUSTOMERS)
        .map(|i| customer::ActiveModel {
            id: NotSet,
            reseller_id: Set(1 + (i % 3) as i64),
            name: Set(format!("Bench customer {i}")),
            country: Set("DE".into()),
            currency: Set(if i.is_multiple_of(3) { "USD".into() } else { "EUR".into() }),
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
    let mut changes = Vec::with_capacity(3000);
    for (id, i) in (1_i64..).zip(0..count) {
        let customer_index = i % CUSTOMERS;
        let customer_id = first_customer + customer_index as i64;
        let reseller_id = 1 + (customer_index % 3) as i64;
        let currency = if customer_index.is_multiple_of(3) { "USD" } else { "EUR" };
        let frequency = match i % 10 {
            0..=6 => BillingFrequency::Monthly,
            7 | 8 => BillingFrequency::Annual,
            _ => BillingFrequency::Upfront,
        };
        let bought = Utc.with_ymd_and_hms(2026, 1 + (i % 11) as u32, 1 + (i % 28) as u32, 9, 0, 0).unwrap();
        let quantity = 1 + (i % 50) as i32;
        subscriptions.push(subscription::ActiveModel {
            id: Set(id),
            customer_id: Set(customer_id),
            reseller_id: Set(reseller_id),
            vendor_id: Set(1),
            offer_id: Set(2),
            order_id: Set(None),
            quantity: Set(quantity),
            status: Set(SubscriptionStatus::Active),
            term: Set(Term::P1y),
            billing_frequency: Set(frequency),
            term_start: Set(Some(bought)),
            term_end: Set(bought.checked_add_months(chrono::Months::new(12))),
            auto_renew: Set(true),
            vendor_reference: Set(Some(format!("bench-{id}"))),
            update_count: Set(0),
            currency: Set(currency.into()),
            unit_cost: Set(DbDecimal(Decimal::new(4800, 2))),
            unit_wholesale: Set(DbDecimal(Decimal::new(5520, 2))),
            unit_retail: Set(DbDecimal(Decimal::new(6000, 2))),
            prices_locked_at: Set(bought),
            version: Set(1),
            created_at: Set(bought),
            updated_at: Set(bought),
            billing_settled: Set(false),
            sync_issue: Set(None),
        });
        let change = |kind, before, after, status_before, status_after, at| subscription_change::ActiveModel {
            id: NotSet,
            subscription_id: Set(id),
            kind: Set(kind),
            actor_user_id: Set(None),
            actor_role: Set(Role::Reseller),
            quantity_before: Set(before),
            quantity_after: Set(after),
            status_before: Set(status_before),
            status_after: Set(status_after),
            idempotency_key: Set(None),
            occurred_at: Set(at),
            unit_cost: Set(Some(DbDecimal(Decimal::new(4800, 2)))),
            unit_wholesale: Set(Some(DbDecimal(Decimal::new(5520, 2)))),
            unit_retail: Set(Some(DbDecimal(Decimal::new(6000, 2)))),
            job_id: Set(None),
            vendor_outcome: Set(None),
            seats_taken: Set(None),
        };
        changes.push(change(
            SubscriptionChangeKind::Purchase,
            0,
            quantity,
            SubscriptionStatus::Pending,
            SubscriptionStatus::Pending,
            bought,
        ));
        changes.push(change(
            SubscriptionChangeKind::Provisioned,
            quantity,
            quantity,
            SubscriptionStatus::Provisioning,
            SubscriptionStatus::Active,
            bought,
        ));
        if i.is_multiple_of(5) {
            let at = Utc.with_ymd_and_hms(2026, 11, 1 + (i % 27) as u32, 15, 0, 0).unwrap();
            if at > bought {
                changes.push(change(
                    SubscriptionChangeKind::QuantityIncrease,
                    quantity,
                    quantity + 2,
                    SubscriptionStatus::Active,
                    SubscriptionStatus::Active,
                    at,
                ));
            }
        }
        if subscriptions.len() == 1000 {
            common::flush_seeded(db, &mut subscriptions, &mut changes, 1000).await;
        }
    }
    common::flush_seeded(db, &mut subscriptions, &mut changes, 1000).await;
}
