//! #10, the import of a vendor's statement: a Partner Center file is checked whole before
//! anything is written, stored row by row with its raw values, recognised when imported
//! again (by its content), refused with every error by row and column, and operator only —
//! through the domain and through `switchyard reconcile import`.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use switchyard::domain::Role;
use switchyard::domain::ids::VendorId;
use switchyard::domain::reconciliation::import::{ImportOutcome, import_statement};
use switchyard::domain::reconciliation::partner_center::PartnerCenter;

use crate::helpers::{Fixture, TestApp, spawn_app};

const HEADER: &str = "PartnerId,CustomerId,CustomerName,CustomerDomainName,CustomerCountry,InvoiceNumber,MpnId,ResellerMpnId,\
    OrderId,OrderDate,ProductId,SkuId,AvailabilityId,SkuName,ProductName,ChargeType,UnitPrice,Quantity,Subtotal,TaxTotal,\
    Total,Currency,SubscriptionId,ChargeStartDate,ChargeEndDate,TermAndBillingCycle,EffectiveUnitPrice,UnitType,\
    BillableQuantity,BillingFrequency,PricingCurrency,PCToBCExchangeRate";

/// A cycle charge of `quantity` seats at 8.00 for November, for the tenant `tenant`.
fn row(tenant: &str, subscription: &str, quantity: u32, subtotal: &str) -> String {
    format!(
        "p1,{tenant},\"Customer, Inc\",c.test,DE,G001,1,5555,o1,2026-11-01,CFQ7TTC0LH18,0001,CFQ7TTC0K5DJ,E3,E3,\
         cycleCharge,8.00,{quantity},{subtotal},0,{subtotal},USD,{subscription},2026-11-01,2026-11-30,1 Year - 1 Month,\
         8.00,Licenses,{quantity},Monthly,USD,1"
    )
}

fn file(rows: &[String]) -> Vec<u8> {
    format!("{HEADER}\n{}\n", rows.join("\n")).into_bytes()
}

async fn import(app: &TestApp, vendor: i64, name: &str, bytes: &[u8]) -> switchyard::domain::Result<ImportOutcome> {
    import_for(app, vendor, name, None, bytes).await
}

async fn import_for(
    app: &TestApp,
    vendor: i64,
    name: &str,
    period: Option<&str>,
    bytes: &[u8],
) -> switchyard::domain::Result<ImportOutcome> {
    let path = std::env::temp_dir().join(format!("switchyard-statement-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let outcome = import_statement(
        &app.domain,
        &switchyard::domain::Actor::system(),
        VendorId::new(vendor),
        name,
        period,
        &PartnerCenter,
        &path,
    )
    .await;
    let _ = std::fs::remove_file(&path);
    outcome
}

async fn lines(app: &TestApp) -> u64 {
    entity::reconciliation_line::Entity::find().count(&app.domain.db).await.unwrap()
}

#[tokio::test]
async fn a_statement_is_stored_row_by_row_once_and_a_wrong_one_not_at_all() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // 1,201 rows: batches of 500, and a last one partly filled.
    let mut rows = vec![row("tenant-Customer-A", "sub-1", 3, "24.00"), row("tenant-Customer-B", "sub-2", 2, "16.00")];
    rows.extend((0..1_199).map(|n| row(&format!("tenant-{n}"), &format!("sub-x{n}"), 1, "8.00")));
    let good = file(&rows);
    let first = import(&app, f.vendor_a, "november.csv", &good).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(
        (first.import.row_count, first.import.period.as_str(), first.import.format.as_str()),
        (1_201, "2026-11", "PARTNER_CENTER")
    );
    assert_eq!(first.import.content_hash.len(), 64);
    let stored = entity::reconciliation_line::Entity::find()
        .filter(entity::reconciliation_line::Column::ImportId.eq(first.import.id))
        .order_by_asc(entity::reconciliation_line::Column::RowNumber)
        .all(&app.domain.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1_201);
    assert_eq!(stored[1_200].row_number, 1_202);
    assert_eq!(stored[0].row_number, 2);
    assert_eq!(stored[0].customer_external_id, "tenant-Customer-A");
    assert_eq!(stored[0].subtotal.0, crate::helpers::dec("24.00"));
    assert_eq!(stored[0].raw["CustomerName"], "Customer, Inc");
    // The same file again, under another name: the earlier import, nothing written.
    let again = import(&app, f.vendor_a, "november-again.csv", &good).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.import.id, first.import.id);
    assert_eq!(lines(&app).await, 1_201);
    // A file with a wrong row is refused with its row and column; nothing of it is written.
    let bad = file(&[row("tenant-Customer-A", "sub-3", 3, "24.00"), row("tenant-Customer-B", "sub-4", 2, "16.01")]);
    match import(&app, f.vendor_a, "bad.csv", &bad).await {
        Err(switchyard::domain::Error::Rejected { errors, total }) => {
            assert_eq!(total, 1);
            assert_eq!((errors[0].row, errors[0].column.as_deref()), (3, Some("Subtotal")));
        }
        other => panic!("accepted or failed otherwise: {other:?}"),
    }
    assert_eq!(lines(&app).await, 1_201);
    assert_eq!(entity::reconciliation_import::Entity::find().count(&app.domain.db).await.unwrap(), 1);
    // Operator only; an unknown vendor is NOT_FOUND.
    let reseller = switchyard::domain::Actor::from_role(None, Role::Reseller, Some(f.reseller_a)).unwrap();
    let path = std::env::temp_dir().join(format!("switchyard-statement-{}-forbidden", std::process::id()));
    std::fs::write(&path, &good).unwrap();
    let refused =
        import_statement(&app.domain, &reseller, VendorId::new(f.vendor_a), "x", None, &PartnerCenter, &path).await;
    assert!(matches!(refused, Err(switchyard::domain::Error::Forbidden(_))), "{refused:?}");
    let _ = std::fs::remove_file(&path);
    let missing = import(&app, 999_999, "x.csv", &good).await;
    assert!(matches!(missing, Err(switchyard::domain::Error::NotFound(_))), "{missing:?}");
    // The period the operator gives is the import's; a period that is none is refused.
    let october = file(&[row("tenant-Customer-A", "sub-9", 1, "8.00")]);
    let given = import_for(&app, f.vendor_a, "october.csv", Some("2026-10"), &october).await.unwrap();
    assert_eq!(given.import.period, "2026-10");
    let wrong = import_for(&app, f.vendor_a, "x.csv", Some("2026-13"), &good).await;
    assert!(matches!(wrong, Err(switchyard::domain::Error::Validation { .. })), "{wrong:?}");
}

#[tokio::test]
async fn switchyard_reconcile_import_reads_a_file_and_reports_its_errors() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let dir = std::env::temp_dir().join(format!("switchyard-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.csv");
    std::fs::write(&good, file(&[row("tenant-Customer-A", "sub-1", 3, "24.00")])).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, file(&[row("tenant-Customer-A", "sub-1", 3, "x")])).unwrap();
    let run = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["reconcile", "import", "--vendor", &f.vendor_a.to_string()])
            .arg(path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", app.database_url())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let imported = run(&good);
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success(), "{stdout} {}", String::from_utf8_lossy(&imported.stderr));
    assert!(stdout.contains("imported 1 rows"), "{stdout}");
    let again = run(&good);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already imported"), "{again:?}");
    let refused = run(&bad);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("row 2, Subtotal"), "{stderr}");
    assert_eq!(lines(&app).await, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Status of the only import there is, and how many statement rows are stored.
async fn import_state(app: &TestApp) -> (Option<String>, u64) {
    let import = entity::reconciliation_import::Entity::find().one(&app.domain.db).await.unwrap();
    (import.map(|i| i.status), lines(app).await)
}

#[tokio::test]
async fn an_import_killed_while_its_rows_load_leaves_none_and_the_same_file_finishes_it() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let dir = std::env::temp_dir().join(format!("switchyard-killed-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.csv");
    // Enough rows that the process is still loading them when it is killed.
    let rows: Vec<String> = (0..150_000).map(|n| row(&format!("tenant-{n}"), &format!("sub-{n}"), 1, "8.00")).collect();
    std::fs::write(&path, file(&rows)).unwrap();
    let command = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .args(["reconcile", "import", "--vendor", &f.vendor_a.to_string()])
            .arg(&path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", app.database_url())
            .env("RUST_LOG", "warn");
        command
    };
    let mut child = command().stdout(std::process::Stdio::null()).spawn().unwrap();
    // Killed (SIGKILL: no clean-up runs) once its rows are being written: PostgreSQL reports
    // the COPY's progress; on SQLite the write-ahead log grows past what the import's own
    // row took.
    let wal = std::path::PathBuf::from(format!(
        "{}-wal",
        app.database_url().trim_start_matches("sqlite://").split('?').next().unwrap()
    ));
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut wal_at_import = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let in_flight = if crate::helpers::is_postgres() {
            use sea_orm::{ConnectionTrait, Statement};
            let progress = app
                .domain
                .db
                .query_one_raw(Statement::from_string(
                    app.domain.db.get_database_backend(),
                    "SELECT tuples_processed FROM pg_stat_progress_copy WHERE datname = current_database() \
                     AND relid = 'reconciliation_lines'::regclass",
                ))
                .await
                .unwrap();
            progress.is_some_and(|row| row.try_get_by_index::<i64>(0).unwrap() > 0)
        } else if import_state(&app).await.0.is_some() {
            let base = *wal_at_import.get_or_insert_with(wal_size);
            wal_size() > base + 4 * 1024 * 1024
        } else {
            false
        };
        if in_flight {
            child.kill().unwrap();
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the import ended before it could be killed mid-load");
        assert!(std::time::Instant::now() < deadline, "no rows were being loaded");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.wait().unwrap();
    // Nothing half-written: the import says its rows are loading, and none is stored.
    assert_eq!(import_state(&app).await, (Some("LOADING".to_owned()), 0));
    let import = entity::reconciliation_import::Entity::find().one(&app.domain.db).await.unwrap().unwrap();
    // It cannot be matched until its rows are there.
    let refused = switchyard::domain::reconciliation::matcher::match_import(
        &app.domain,
        &switchyard::domain::Actor::system(),
        import.id,
        None,
    )
    .await;
    assert!(matches!(refused, Err(switchyard::domain::Error::Conflict { reason: "NOT_LOADED", .. })), "{refused:?}");
    // While another load holds it (PostgreSQL: its row lock), the same file is refused at
    // once rather than loaded twice. On SQLite the database's write lock queues loads, so
    // there is no second load to refuse.
    if crate::helpers::is_postgres() {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let holder = app.domain.db.begin().await.unwrap();
        holder
            .execute_unprepared(&format!("SELECT id FROM reconciliation_imports WHERE id = {} FOR UPDATE", import.id))
            .await
            .unwrap();
        let refused = command().output().unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && stderr.contains("being loaded now"), "{stderr}");
        holder.rollback().await.unwrap();
        assert_eq!(import_state(&app).await, (Some("LOADING".to_owned()), 0));
    } else {
        eprintln!("SKIPPED on SQLite: refusing a second concurrent load (its write lock queues loads instead)");
    }
    // The same file again finishes that import: every row once, matched.
    let finished = command().output().unwrap();
    let stdout = String::from_utf8_lossy(&finished.stdout);
    assert!(finished.status.success(), "{stdout} {}", String::from_utf8_lossy(&finished.stderr));
    assert!(stdout.contains("imported 150000 rows"), "{stdout}");
    assert_eq!(import_state(&app).await, (Some("MATCHED".to_owned()), 150_000));
    let again = entity::reconciliation_import::Entity::find().one(&app.domain.db).await.unwrap().unwrap();
    assert_eq!(again.id, import.id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_statement_row_keeps_tabs_newlines_and_backslashes_exactly() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // What a bulk load must escape (PostgreSQL's COPY reads tab, newline and backslash).
    let name = "Tab\there, line\nbreak\r\nand back\\slash \\N \\t";
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let odd = row("tenant-Customer-A", "sub-1", 3, "24.00").replace("\"Customer, Inc\"", &quoted);
    let direct = row("tenant-Customer-B", "sub-2", 1, "8.00").replace(",1,5555,", ",1,,");
    // A value that is COPY's NULL marker, as text.
    let marker = row("tenant-Customer-C", "sub-3", 1, "8.00").replace(",1,5555,", ",1,\\N,");
    let imported = import(&app, f.vendor_a, "odd.csv", &file(&[odd, direct, marker])).await.unwrap();
    let stored = entity::reconciliation_line::Entity::find()
        .filter(entity::reconciliation_line::Column::ImportId.eq(imported.import.id))
        .order_by_asc(entity::reconciliation_line::Column::RowNumber)
        .all(&app.domain.db)
        .await
        .unwrap();
    // No reseller of record is NULL, not an empty text.
    assert_eq!(stored[1].reseller_external_id, None);
    assert_eq!(stored[2].reseller_external_id.as_deref(), Some("\\N"));
    let stored = &stored[0];
    assert_eq!(stored.customer_name, name);
    assert_eq!(stored.raw["CustomerName"], name);
    assert_eq!((stored.quantity.0, stored.subtotal.0), (crate::helpers::dec("3"), crate::helpers::dec("24.00")));
    assert_eq!(stored.charge_end.unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
    assert_eq!(stored.reseller_external_id.as_deref(), Some("5555"));
}

#[tokio::test]
async fn an_import_loaded_but_never_published_is_published_when_matched_or_imported_again() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let bytes = file(&[row("tenant-Customer-A", "sub-1", 3, "24.00")]);
    let first = import(&app, f.vendor_a, "november.csv", &bytes).await.unwrap();
    // As a process killed after its rows committed and before it published them leaves it.
    let unpublish = || async {
        let mut model: entity::reconciliation_import::ActiveModel = first.import.clone().into();
        model.status = Set("LOADED".to_owned());
        model.matched_at = Set(None);
        model.update(&app.domain.db).await.unwrap();
        entity::reconciliation_finding::Entity::delete_many().exec(&app.domain.db).await.unwrap();
    };
    let published = || async {
        entity::audit_log::Entity::find()
            .filter(entity::audit_log::Column::Action.eq("statementLoaded"))
            .count(&app.domain.db)
            .await
            .unwrap()
    };
    assert_eq!(published().await, 1);
    unpublish().await;
    let op = switchyard::domain::Actor::system();
    let matched = switchyard::domain::reconciliation::matcher::match_import(&app.domain, &op, first.import.id, None)
        .await
        .unwrap();
    assert_eq!((matched.status.as_str(), matched.matched_at.is_some()), ("MATCHED", true));
    assert_eq!(published().await, 2);
    // The same file again publishes and matches it: this request did the work, no replay.
    unpublish().await;
    let again = import(&app, f.vendor_a, "november.csv", &bytes).await.unwrap();
    assert_eq!((again.import.id, again.import.status.as_str(), again.replayed), (first.import.id, "MATCHED", false));
    assert_eq!(published().await, 3);
    // And once more: nothing left to do, a replay.
    let replay = import(&app, f.vendor_a, "november.csv", &bytes).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(published().await, 3);
    assert_eq!(lines(&app).await, 1);
}
