//! Importing a vendor's statement (operator only): the whole file is read and checked
//! first (`statement::read_statement`), nothing written unless every row is right; the same
//! file imported again (by the SHA-256 of its bytes, per vendor) returns the earlier import;
//! then the rows are read again and written with their raw values, in batches, in one
//! transaction, from a reader on the blocking pool through a bounded channel, so memory
//! stays bounded whatever the file's size; then it is matched (`matcher`). The import's period is the one the operator
//! gives, else the month most rows' charges start in.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use entity::{DbDecimal, reconciliation_import, reconciliation_line, vendor};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::statement::{StatementFormat, StatementRow, UnitKind, read_statement};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result, map_unique_violation};
use crate::domain::ids::VendorId;
use crate::domain::validate;
use crate::domain::write::{Audit, Write};

/// Rows written per statement.
const BATCH: usize = 500;

/// Where a statement is read from (twice: checked, then written).
#[derive(Debug)]
pub enum StatementSource {
    /// A file by its path (the command line).
    Path(PathBuf),
    /// An open file (an upload, spooled to a temporary file).
    File(std::fs::File),
}

impl StatementSource {
    /// The file, from its start.
    fn open(&self) -> Result<std::fs::File> {
        let file = match self {
            Self::Path(path) => std::fs::File::open(path),
            Self::File(file) => file.try_clone().and_then(|mut f| f.seek(SeekFrom::Start(0)).map(|_| f)),
        };
        file.map_err(|e| unreadable(&e))
    }
}

impl From<&Path> for StatementSource {
    fn from(path: &Path) -> Self {
        Self::Path(path.to_owned())
    }
}

impl From<&PathBuf> for StatementSource {
    fn from(path: &PathBuf) -> Self {
        Self::Path(path.clone())
    }
}

impl From<std::fs::File> for StatementSource {
    fn from(file: std::fs::File) -> Self {
        Self::File(file)
    }
}

/// An import, and whether it was made earlier from the same file.
#[derive(Clone, Debug)]
pub struct ImportOutcome {
    /// The import.
    pub import: reconciliation_import::Model,
    /// True when the same file had been imported before: nothing was written.
    pub replayed: bool,
}

/// Imports the statement from `source`, in `format`, of `vendor_id`, named `source_name`, for
/// `period` (`2026-11`; when not given, the month most of its charges start in).
/// A file with errors is `Error::Rejected` with every error (up to the cap) by row and column.
pub async fn import_statement(
    domain: &Domain,
    actor: &Actor,
    vendor_id: VendorId,
    source_name: &str,
    period: Option<&str>,
    format: &'static (dyn StatementFormat + Sync),
    source: impl Into<StatementSource>,
) -> Result<ImportOutcome> {
    let source = source.into();
    actor.require_operator()?;
    let source_name = validate::text(source_name, 255, "sourceName")?;
    let given_period = period.map(crate::domain::billing::terms::Period::parse).transpose()?;
    vendor::Entity::find_by_id(vendor_id).one(&domain.db).await?.ok_or(Error::NotFound("vendor"))?;
    // First pass: the whole file is checked; its hash and the months its charges start in.
    let started = std::time::Instant::now();
    let checked = {
        let file = source.open()?;
        tokio::task::spawn_blocking(move || {
            let mut months: BTreeMap<(i32, u32), u64> = BTreeMap::new();
            let summary = read_statement(format, std::io::BufReader::new(file), |row| {
                *months.entry((row.charge_start.year(), row.charge_start.month())).or_default() += 1;
            })
            .map_err(Error::from)?;
            Ok::<_, Error>((summary, months))
        })
        .await
        .map_err(Error::internal)??
    };
    let (summary, months) = checked;
    let checked_in = started.elapsed();
    if let Some(earlier) = earlier_import(domain, vendor_id, &summary.content_hash).await? {
        // Stored but never matched (matching failed after the import committed): match it now.
        let earlier = if earlier.matched_at.is_none() {
            super::matcher::match_import(domain, actor, earlier.id, None).await?
        } else {
            earlier
        };
        return Ok(ImportOutcome { import: earlier, replayed: true });
    }
    let guessed = months
        .iter()
        .max_by_key(|(month, rows)| (**rows, std::cmp::Reverse(**month)))
        .map(|((year, month), _)| format!("{year:04}-{month:02}"))
        .unwrap_or_default();
    let period = given_period.map_or(guessed, |p| format!("{:04}-{:02}", p.start.year(), p.start.month()));
    let row_count = i32::try_from(summary.rows).map_err(|_| Error::validation("file", "too many rows"))?;
    let mut w = Write::begin(domain).await?;
    let inserted = reconciliation_import::ActiveModel {
        id: NotSet,
        vendor_id: Set(vendor_id.get()),
        period: Set(period),
        source_name: Set(source_name),
        format: Set(format.name().to_owned()),
        status: Set("IMPORTED".to_owned()),
        row_count: Set(row_count),
        imported_by_user_id: Set(actor.user_id),
        created_at: Set(w.now()),
        content_hash: Set(summary.content_hash.clone()),
        amount_tolerance: Set(DbDecimal(rust_decimal::Decimal::ZERO)),
        quantity_tolerance: Set(DbDecimal(rust_decimal::Decimal::ZERO)),
        matched_at: Set(None),
    }
    .insert(w.db())
    .await;
    let import = match inserted {
        Ok(import) => import,
        Err(error) => {
            let raced = map_unique_violation(
                error,
                &[
                    "uq_reconciliation_imports_content",
                    "reconciliation_imports.vendor_id, reconciliation_imports.content_hash",
                ],
                Error::conflict("IMPORT_RACE", "raced"),
            );
            w.rollback().await;
            return match raced {
                Error::Conflict { reason: "IMPORT_RACE", .. } => {
                    let earlier = earlier_import(domain, vendor_id, &summary.content_hash).await?;
                    earlier.map(|import| ImportOutcome { import, replayed: true }).ok_or(Error::NotFound("import"))
                }
                other => Err(other),
            };
        }
    };
    // Second pass: the rows, read on the blocking pool, written here in batches.
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<StatementRow>>(4);
    let reader = {
        let file = source.open();
        tokio::task::spawn_blocking(move || {
            let file = file?;
            let mut batch = Vec::with_capacity(BATCH);
            let summary = read_statement(format, std::io::BufReader::new(file), |row| {
                batch.push(row);
                if batch.len() == BATCH {
                    // A closed channel (the writer failed) ends the reading's use; it finishes quietly.
                    let _ = sender.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            })
            .map_err(Error::from)?;
            if !batch.is_empty() {
                let _ = sender.blocking_send(batch);
            }
            Ok::<_, Error>(summary)
        })
    };
    let mut written = 0u64;
    while let Some(batch) = batches.recv().await {
        written += batch.len() as u64;
        let rows: Vec<reconciliation_line::ActiveModel> = batch.into_iter().map(|row| line(import.id, row)).collect();
        reconciliation_line::Entity::insert_many(rows).exec(w.db()).await?;
    }
    let again = reader.await.map_err(Error::internal)??;
    if again.content_hash != summary.content_hash || written != summary.rows {
        w.rollback().await;
        return Err(Error::validation("file", "the file changed while it was imported"));
    }
    let details =
        serde_json::json!({"vendorId": vendor_id.get(), "rows": summary.rows, "contentHash": summary.content_hash});
    let detail = serde_json::json!({"importId": import.id, "vendorId": vendor_id.get(), "rows": summary.rows});
    w.emit(super::resolution::reconciliation_event("IMPORTED", w.now(), detail)).await?;
    w.commit(Audit::action(actor, "importStatement", "reconciliation_import", import.id, details)).await?;
    tracing::info!(
        import = import.id,
        rows = summary.rows,
        checked_ms = checked_in.as_millis(),
        written_ms = (started.elapsed() - checked_in).as_millis(),
        "statement imported"
    );
    // Best effort: without fresh statistics matching is slower, not wrong.
    if let Err(error) = crate::domain::write::analyze(domain, crate::domain::write::Analyzed::StatementLines).await {
        tracing::warn!(%error, "could not refresh the planner's statistics of statement rows");
    }
    // Matched at once, with no tolerance; the operator may match again with some.
    let import = super::matcher::match_import(domain, actor, import.id, None).await?;
    Ok(ImportOutcome { import, replayed: false })
}

fn unreadable(error: &std::io::Error) -> Error {
    Error::validation("file", format!("cannot be read: {error}"))
}

async fn earlier_import(
    domain: &Domain,
    vendor_id: VendorId,
    hash: &str,
) -> Result<Option<reconciliation_import::Model>> {
    Ok(reconciliation_import::Entity::find()
        .filter(reconciliation_import::Column::VendorId.eq(vendor_id.get()))
        .filter(reconciliation_import::Column::ContentHash.eq(hash))
        .one(&domain.db)
        .await?)
}

fn midnight(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A statement row as stored.
fn line(import_id: i64, row: StatementRow) -> reconciliation_line::ActiveModel {
    reconciliation_line::ActiveModel {
        id: NotSet,
        import_id: Set(import_id),
        row_number: Set(i32::try_from(row.row_number).unwrap_or(i32::MAX)),
        customer_external_id: Set(row.customer_external_id),
        reseller_external_id: Set(row.reseller_external_id),
        subscription_reference: Set(row.subscription_reference),
        sku: Set(row.sku),
        charge_type: Set(row.charge_type.as_str().to_owned()),
        charge_start: Set(Some(midnight(row.charge_start))),
        charge_end: Set(Some(midnight(row.charge_end))),
        quantity: Set(DbDecimal(row.quantity)),
        unit_price: Set(DbDecimal(row.unit_price)),
        effective_unit_price: Set(DbDecimal(row.effective_unit_price)),
        exchange_rate: Set(DbDecimal(row.exchange_rate)),
        subtotal: Set(DbDecimal(row.subtotal)),
        currency: Set(row.currency),
        raw: Set(serde_json::Value::Object(row.raw)),
        matched_subscription_id: Set(None),
        finding: Set(None),
        expected_amount: Set(None),
        difference: Set(None),
        customer_name: Set(row.customer_name),
        unit_kind: Set(match row.unit_kind {
            UnitKind::Seats => "SEATS".to_owned(),
            UnitKind::Usage => "USAGE".to_owned(),
        }),
        pricing_currency: Set(row.pricing_currency),
    }
}
