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
