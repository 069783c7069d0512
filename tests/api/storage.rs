//! Money storage: decimals round-trip exactly on both backends (SQLite stores them as text).

use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, Set};
use serde_json::json;
use switchyard::domain::Role;
use switchyard::domain::clock::Clock;

use crate::helpers::{Fixture, count_rows, dec, spawn_app};

#[tokio::test]
async fn extreme_decimals_round_trip_exactly() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let values = ["99999999999999.9999", "123456789012345.1234", "0.0000000001", "-42.4200", "0"];
    let now = app.clock.now();
    let mut ids = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let row = entity::price_point::ActiveModel {
            id: NotSet,
            offer_id: Set(f.offers_a[0]),
            currency: Set("USD".into()),
            cost: Set(entity::DbDecimal(dec(value))),
            list_price: Set(entity::DbDecimal(dec(value))),
            usage_unit_cost: Set(Some(entity::DbDecimal(dec(value)))),
            usage_unit_list_price: Set(None),
            effective_from: Set(now + chrono::Duration::days(400 + index as i64)),
            created_at: Set(now),
        }
        .insert(&app.domain.db)
        .await
        .unwrap();
        ids.push(row.id);
    }
    for (id, value) in ids.iter().zip(values) {
        let row = entity::price_point::Entity::find_by_id(*id).one(&app.domain.db).await.unwrap().unwrap();
        let expected: Decimal = value.parse().unwrap();
        assert_eq!(row.cost.0, expected, "{value}");
        assert_eq!(row.cost.0.to_string(), expected.normalize().to_string(), "{value}");
        assert_eq!(row.usage_unit_cost.map(|d| d.0), Some(expected));
        assert_eq!(row.usage_unit_list_price, None);
    }
    // And through the API, as strings.
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let data = app
        .data(
            &vendor,
            "query($id: ID!) { offer(id: $id) { pricePoints { cost } } }",
            json!({"id": f.offers_a[0].to_string()}),
        )
        .await;
    let costs: Vec<&str> =
        data["offer"]["pricePoints"].as_array().unwrap().iter().map(|p| p["cost"].as_str().unwrap()).collect();
    assert!(costs.contains(&"99999999999999.9999"), "{costs:?}");
    assert!(costs.contains(&"123456789012345.1234"), "{costs:?}");
}

/// Migration 10 turns `provisioning_jobs` into the generic `jobs` queue: a job queued before
/// the upgrade keeps its id, request id, state and subject, becomes kind PROVISIONING with
/// its subscription as ordering key, and new jobs get fresh ids after it. Going back works
/// while every job fits the old table.
#[tokio::test]
async fn jobs_queued_before_the_generic_queue_survive_the_upgrade() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};

    let database = crate::helpers::TestDatabase::create().await;
    let db = switchyard::db::connect(&database.url, 1).await.unwrap();
    migration::Migrator::up(&db, Some(9)).await.unwrap();
    let backend = db.get_database_backend();
    // The row's parents do not matter here; skip their foreign keys on this one connection.
    let no_foreign_keys = match backend {
        sea_orm::DbBackend::Postgres => "SET session_replication_role = replica",
        _ => "PRAGMA foreign_keys = OFF",
    };
    db.execute_unprepared(no_foreign_keys).await.unwrap();
    let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 3, 12, 0, 0).unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO provisioning_jobs (id, subscription_id, order_id, vendor_id, action, payload, request_id, status, \
         attempts, max_attempts, run_after, last_error, vendor_reference, created_at, updated_at, finished_at) \
         VALUES (41, 7, NULL, 3, 'CHANGE_QUANTITY', $1, 'request-41', 'DEAD', 8, 8, $2, 'boom', 'vendor-7', $2, $2, $2)",
        [json!({"quantity": 5}).into(), at.into()],
    ))
    .await
    .unwrap();
    migration::Migrator::up(&db, None).await.unwrap();

    let job = entity::job::Entity::find_by_id(41).one(&db).await.unwrap().expect("the job survived");
    assert_eq!(job.kind, entity::enums::JobKind::Provisioning);
    assert_eq!(job.ordering_key.as_deref(), Some("subscription:7"));
    assert_eq!((job.subscription_id, job.order_id, job.vendor_id), (Some(7), None, Some(3)));
    assert_eq!(job.action, Some(entity::enums::ProvisioningAction::ChangeQuantity));
    assert_eq!((job.request_id.as_str(), job.status), ("request-41", entity::enums::JobStatus::Dead));
    assert_eq!(
        (job.attempts, job.last_error.as_deref(), job.reference.as_deref()),
        (8, Some("boom"), Some("vendor-7"))
    );
    assert_eq!((job.payload, job.created_at, job.finished_at), (json!({"quantity": 5}), at, Some(at)));

    let next = crate::helpers::subjectless_job("request-next", 8, at).insert(&db).await.unwrap();
    assert!(next.id > 41, "new jobs are numbered after the copied ones: {}", next.id);

    // And back (past the migrations after 10 first), but only while every job fits the old table.
    let after_ten = u32::try_from(migration::Migrator::migrations().len() - 10).unwrap();
    migration::Migrator::down(&db, Some(after_ten)).await.unwrap();
    assert!(migration::Migrator::down(&db, Some(1)).await.is_err(), "a job with no subject has no place there");
    entity::job::Entity::delete_by_id(next.id).exec(&db).await.unwrap();
    migration::Migrator::down(&db, Some(1)).await.unwrap();
    let back = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT subscription_id, action, request_id, status, vendor_reference FROM provisioning_jobs WHERE id = 41",
        ))
        .await
        .unwrap()
        .expect("the job is back in provisioning_jobs");
    let subscription_id: i64 = back.try_get("", "subscription_id").unwrap();
    let (action, request_id): (String, String) =
        (back.try_get("", "action").unwrap(), back.try_get("", "request_id").unwrap());
    let (status, reference): (String, Option<String>) =
        (back.try_get("", "status").unwrap(), back.try_get("", "vendor_reference").unwrap());
    assert_eq!(
        (subscription_id, action.as_str(), request_id.as_str(), status.as_str(), reference.as_deref()),
        (7, "CHANGE_QUANTITY", "request-41", "DEAD", Some("vendor-7"))
    );
}

/// #8.14: a commit is durable before it is acknowledged, so an issued invoice number can
/// never be lost to a power failure and handed out again: SQLite syncs every commit
/// (`synchronous = FULL` in WAL mode), PostgreSQL waits for its WAL flush
/// (`synchronous_commit = on`). Checked on every connection of the app's pool.
#[tokio::test]
async fn every_commit_is_durable_before_it_is_acknowledged() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let backend = app.domain.db.get_database_backend();
    let (query, column, durable) = match backend {
        sea_orm::DbBackend::Postgres => ("SHOW synchronous_commit", "synchronous_commit", "on".to_owned()),
        _ => ("PRAGMA synchronous", "synchronous", "2".to_owned()),
    };
    // Hold several connections at once, so more than the first one is asked.
    let mut transactions = Vec::new();
    for _ in 0..4 {
        let txn = sea_orm::TransactionTrait::begin(&app.domain.db).await.unwrap();
        let row = txn.query_one_raw(Statement::from_string(backend, query)).await.unwrap().unwrap();
        let value = match backend {
            sea_orm::DbBackend::Postgres => row.try_get::<String>("", column).unwrap(),
            _ => row.try_get::<i32>("", column).unwrap().to_string(),
        };
        assert_eq!(value, durable, "{query} on a pooled connection");
        transactions.push(txn);
    }
}

/// Migration 13 backfills: each existing change records the prices of the term in force
/// (the row's), and a month that earlier versions billed only up to a term's end (auto-renew
/// off) is renamed to the key the new plan gives that part of the month, so a whole-month
/// key keeps meaning the whole month (else the expiry would refund days never billed).
#[tokio::test]
async fn migration_13_backfills_change_prices_and_renames_months_cut_at_a_term_end() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};

    let database = crate::helpers::TestDatabase::create().await;
    let db = switchyard::db::connect(&database.url, 1).await.unwrap();
    migration::Migrator::up(&db, Some(12)).await.unwrap();
    let backend = db.get_database_backend();
    let no_foreign_keys = match backend {
        sea_orm::DbBackend::Postgres => "SET session_replication_role = replica",
        _ => "PRAGMA foreign_keys = OFF",
    };
    db.execute_unprepared(no_foreign_keys).await.unwrap();
    let at = |d: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 6, d, 0, 0, 0).unwrap();
    let money = |text: &str| -> sea_orm::Value {
        match backend {
            sea_orm::DbBackend::Postgres => text.parse::<rust_decimal::Decimal>().unwrap().into(),
            _ => text.to_owned().into(),
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO subscriptions (id, customer_id, reseller_id, vendor_id, offer_id, quantity, status, term, billing_frequency, \
         term_start, term_end, auto_renew, update_count, currency, unit_cost, unit_wholesale, unit_retail, prices_locked_at, \
         version, created_at, updated_at) VALUES (5, 1, 1, 1, 1, 2, 'ACTIVE', 'P1Y', 'MONTHLY', $1, $2, FALSE, 0, 'USD', $3, $4, $5, $1, 1, $1, $1)",
        [at(15).into(), chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2027, 6, 15, 0, 0, 0).unwrap().into(), money("8"), money("9.2"), money("10")],
    ))
    .await
    .unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO subscription_changes (id, subscription_id, kind, actor_role, quantity_before, quantity_after, status_before, \
         status_after, occurred_at) VALUES (9, 5, 'PURCHASE', 'RESELLER', 0, 2, 'PENDING', 'PENDING', $1)",
        [at(15).into()],
    ))
    .await
    .unwrap();
    // Two cycle charges: a month cut at the term's end (14 of 30 days) and a whole month.
    for (id, key, start, end, used) in
        [(1, "cycle:2026-06-01", at(1), at(15), 14), (2, "cycle:2026-05-01", at(1), at(1), 31)]
    {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO charges (id, subscription_id, customer_id, reseller_id, vendor_id, offer_id, period, kind, charge_key, \
             description, quantity, days_used, days_in_period, service_start, service_end, currency, unit_cost, unit_wholesale, \
             unit_retail, amount_cost, amount_wholesale, amount_retail, created_at) \
             VALUES ($1, 5, 1, 1, 1, 1, '2026-06', 'RECURRING', $2, 'x', $3, $4, $5, $6, $7, 'USD', $3, $3, $3, $3, $3, $3, $6)",
            [id.into(), key.into(), money("2"), used.into(), if used == 31 { 31.into() } else { 30.into() }, start.into(), end.into()],
        ))
        .await
        .unwrap();
    }
    migration::Migrator::up(&db, Some(1)).await.unwrap();
    // The columns as of migration 13 (the entity has later ones).
    use entity::subscription_change::Column;
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    type Prices = (Option<entity::DbDecimal>, Option<entity::DbDecimal>, Option<entity::DbDecimal>);
    let (cost, wholesale, retail): Prices = entity::subscription_change::Entity::find()
        .select_only()
        .columns([Column::UnitCost, Column::UnitWholesale, Column::UnitRetail])
        .filter(Column::Id.eq(9))
        .into_tuple()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let prices = (cost.map(|d| d.0), wholesale.map(|d| d.0), retail.map(|d| d.0));
    assert_eq!(
        prices,
        (Some(crate::helpers::dec("8")), Some(crate::helpers::dec("9.2")), Some(crate::helpers::dec("10")))
    );
    let keys: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, "SELECT charge_key FROM charges ORDER BY id"))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("", "charge_key").unwrap())
        .collect();
    assert_eq!(keys, ["cycle:2026-06-01:to:2026-06-15", "cycle:2026-05-01"]);
    // And back: the key as earlier versions wrote it.
    migration::Migrator::down(&db, Some(1)).await.unwrap();
    let keys: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, "SELECT charge_key FROM charges ORDER BY id"))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("", "charge_key").unwrap())
        .collect();
    assert_eq!(keys, ["cycle:2026-06-01", "cycle:2026-05-01"]);
}

/// Migration 20 (#9.19) moves the uniqueness of external ids to the reseller and of order
/// keys to the customer. SQLite rebuilds `orders`, which order lines, subscriptions and
/// jobs reference: every row, id and reference survives both ways; going back is refused
/// while rows exist that only the new constraints allow.
#[tokio::test]
async fn migration_20_keeps_orders_and_accounts_both_ways() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let input = crate::orders::order_input(f.customer_a, &[(f.offers_a[0], 3), (f.offers_a[1], 2)]);
    let first = crate::orders::place(&app, &reseller, input, "k-1").await;
    let db = &app.domain.db;
    let backend = db.get_database_backend();
    let rows = |sql: &'static str| async move {
        let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
        rows.iter()
            .map(|r| format!("{:?}", (r.try_get::<i64>("", "a").ok(), r.try_get::<i64>("", "b").ok())))
            .collect::<Vec<_>>()
    };
    let snapshot = || async {
        (
            rows("SELECT id AS a, customer_id AS b FROM orders ORDER BY id").await,
            rows("SELECT id AS a, order_id AS b FROM order_lines ORDER BY id").await,
            rows("SELECT id AS a, order_id AS b FROM subscriptions ORDER BY id").await,
            rows("SELECT id AS a, order_id AS b FROM jobs ORDER BY id").await,
            rows("SELECT id AS a, customer_id AS b FROM customer_vendor_accounts ORDER BY id").await,
        )
    };
    // Migration 20 and every later one are undone, then done again.
    let back_through_20 = u32::try_from(migration::Migrator::migrations().len() - 19).unwrap();
    let before = snapshot().await;
    assert_eq!(before.1.len(), 2, "{before:?}");
    // Ids once given out and since gone must not come back: the counter is ahead of the
    // highest id, as after a deleted order.
    let ahead = if backend == sea_orm::DbBackend::Sqlite {
        "UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'orders'"
    } else {
        "SELECT setval(pg_get_serial_sequence('orders', 'id'), 1000)"
    };
    db.execute_unprepared(ahead).await.unwrap();
    let foreign_key_check = || async {
        if backend == sea_orm::DbBackend::Sqlite {
            let broken = db.query_all_raw(Statement::from_string(backend, "PRAGMA foreign_key_check")).await.unwrap();
            assert!(broken.is_empty(), "{} rows reference nothing", broken.len());
        }
    };
    migration::Migrator::down(db, Some(back_through_20)).await.unwrap();
    assert_eq!(snapshot().await, before);
    foreign_key_check().await;
    migration::Migrator::up(db, None).await.unwrap();
    assert_eq!(snapshot().await, before);
    foreign_key_check().await;
    let owners = rows("SELECT a.reseller_id AS a, c.reseller_id AS b FROM customer_vendor_accounts a JOIN customers c ON c.id = a.customer_id").await;
    assert!(
        owners.iter().all(|o| o == &format!("{:?}", (Some(f.reseller_a), Some(f.reseller_a)))
            || o == &format!("{:?}", (Some(f.reseller_b), Some(f.reseller_b)))),
        "{owners:?}"
    );
    // New orders follow the old ones, and the same key for another customer of the reseller
    // is a new order now.
    let vars =
        json!({"input": {"resellerId": null, "name": "A2", "country": "DE", "currency": "USD", "taxRate": "0.19"}});
    let created = app
        .data(&reseller, "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { id } }", vars)
        .await;
    let a2: i64 = created["createCustomer"]["id"].as_str().unwrap().parse().unwrap();
    let second =
        crate::orders::place(&app, &reseller, crate::orders::order_input(a2, &[(f.offers_a[0], 1)]), "k-1").await;
    let (first_id, second_id): (i64, i64) = (
        first["order"]["id"].as_str().unwrap().parse().unwrap(),
        second["order"]["id"].as_str().unwrap().parse().unwrap(),
    );
    assert!(second_id > 1000, "{first_id} then {second_id}: an id given out before came back");
    let indexes = if backend == sea_orm::DbBackend::Sqlite {
        "SELECT name AS a, name AS b FROM sqlite_master WHERE type = 'index' AND name = 'idx_orders_reseller'"
    } else {
        "SELECT indexname AS a, indexname AS b FROM pg_indexes WHERE indexname = 'idx_orders_reseller'"
    };
    assert_eq!(
        db.query_all_raw(Statement::from_string(backend, indexes)).await.unwrap().len(),
        1,
        "the reseller index"
    );
    // Which the earlier constraint cannot hold: going back is refused, and changes nothing.
    let refused = migration::Migrator::down(db, Some(back_through_20)).await.unwrap_err();
    assert!(refused.to_string().contains("idempotency keys"), "{refused}");
    assert_eq!(count_rows(&app, "orders").await, 2);
    foreign_key_check().await;
}

/// A charge's customer, reseller, vendor and offer are its subscription's. On PostgreSQL one
/// foreign key on all five columns checks that (migration 29), where a key per column
/// checked only that each existed. SQLite keeps the first table's keys: skipped there.
#[tokio::test]
async fn a_charge_naming_other_parties_than_its_subscription_is_refused() {
    use sea_orm::{ColumnTrait, QueryFilter};
    let app = spawn_app().await;
    if !crate::helpers::is_postgres() {
        eprintln!("\n*** SKIPPED on SQLite: its charges keep the first table's foreign keys (existence only) ***\n");
        return;
    }
    let f = Fixture::build(&app).await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    crate::orders::place(&app, &reseller, crate::orders::order_input(f.customer_a, &[(f.offers_a[0], 5)]), "fk").await;
    app.run_jobs().await;
    let period = app.clock.now().format("%Y-%m").to_string();
    app.data(
        &app.operator(),
        "mutation($p: String!) { runBilling(period: $p) { chargesCreated } }",
        json!({"p": period}),
    )
    .await;
    let charge = entity::charge::Entity::find()
        .filter(entity::charge::Column::CustomerId.eq(f.customer_a))
        .one(&app.domain.db)
        .await
        .unwrap()
        .expect("the order was billed");
    let copy = |key: &str, customer: i64, offer: i64| {
        let mut row: entity::charge::ActiveModel = charge.clone().into();
        row.id = NotSet;
        row.charge_key = Set(key.to_owned());
        row.customer_id = Set(customer);
        row.offer_id = Set(offer);
        row.customer_invoice_id = Set(None);
        row.reseller_invoice_id = Set(None);
        row
    };
    // The same parties as the subscription: written (so what fails below is the key alone).
    copy("test:same", f.customer_a, charge.offer_id).insert(&app.domain.db).await.unwrap();
    // Another reseller's customer, or another offer, though both exist: refused.
    let other_customer = copy("test:customer", f.customer_b, charge.offer_id).insert(&app.domain.db).await;
    assert!(other_customer.is_err(), "a charge to another customer than its subscription's was written");
    let other_offer = copy("test:offer", f.customer_a, f.offer_b).insert(&app.domain.db).await;
    assert!(other_offer.is_err(), "a charge for another offer than its subscription's was written");
}
