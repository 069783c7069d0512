//! Importing a vendor's statement (operator only): the whole file is read and checked
//! first (`statement::read_statement`), nothing written unless every row is right; the same
//! file imported again (by the SHA-256 of its bytes, per vendor) returns the earlier import.
//! Then, in three steps: the import is created `LOADING` (audited); its rows are read again
//! on the blocking pool and streamed through a bounded channel into a bulk load
//! (`write::Load`: `COPY` on PostgreSQL), in a transaction of its own that ends with the
//! import `LOADED`; and it is published `IMPORTED` with its event. Memory stays bounded
//! whatever the file's size. A load cut short (a killed process) leaves no row and the import
//! `LOADING`: the same file imported again loads it, and one loading it now is refused
//! (LOAD_IN_PROGRESS), never loaded twice. Then it is matched (`matcher`). The import's
//! period is the one the operator gives, else the month most rows' charges start in.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use entity::{DbDecimal, reconciliation_import, reconciliation_line, vendor};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::sides::midnight;
use super::statement::{StatementFormat, StatementRow, UnitKind, read_statement};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result, map_unique_violation};
use crate::domain::ids::VendorId;
use crate::domain::validate;
use crate::domain::write::{Audit, CopyLine, Load, Loaded, Write};

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
    let earlier = earlier_import(domain, vendor_id, &summary.content_hash).await?;
    let mut created_here = false;
    let import = match earlier {
        Some(earlier) => earlier,
        None => {
            let guessed = months
                .iter()
                .max_by_key(|(month, rows)| (**rows, std::cmp::Reverse(**month)))
                .map(|((year, month), _)| format!("{year:04}-{month:02}"))
                .unwrap_or_default();
            let period = given_period.map_or(guessed, |p| format!("{:04}-{:02}", p.start.year(), p.start.month()));
            let begun = Begun { vendor_id, source_name, period, format: format.name(), rows: summary.rows };
            match begin_import(domain, actor, begun, &summary.content_hash).await? {
                Some(import) => {
                    created_here = true;
                    import
                }
                // Raced by the same file: the other import is the one.
                None => {
                    earlier_import(domain, vendor_id, &summary.content_hash).await?.ok_or(Error::NotFound("import"))?
                }
            }
        }
    };
    // The rows: loaded here unless an earlier load of this file (cut short, or another
    // request's) got further; a load cut short left nothing, and is loaded again. The
    // request that created the import waits for a load that got to it first; any other is
    // refused while one runs (PostgreSQL).
    let loaded_here =
        import.status == LOADING && load_rows(domain, import.id, format, &source, &summary, created_here).await?;
    let (import, published_here) = publish_loaded(domain, actor, import).await?;
    tracing::info!(
        import = import.id,
        rows = summary.rows,
        checked_ms = checked_in.as_millis(),
        written_ms = (started.elapsed() - checked_in).as_millis(),
        loaded_here,
        "statement imported"
    );
    if published_here {
        // Best effort: without fresh statistics matching is slower, not wrong.
        if let Err(error) = crate::domain::write::analyze(domain, crate::domain::write::Analyzed::StatementLines).await
        {
            tracing::warn!(%error, "could not refresh the planner's statistics of statement rows");
        }
    }
    // Matched at once, with no tolerance (the operator may match again with some); an
    // import stored but never matched (matching failed after it committed) is matched now —
    // once: decided under the import's lock, so a replay racing the first match waits for it.
    let (import, matched_here) = super::matcher::match_unmatched(domain, actor, import.id).await?;
    let replayed = !(created_here || loaded_here || published_here || matched_here);
    Ok(ImportOutcome { import, replayed })
}

/// An import whose rows are being loaded (`LOADING`), or loaded and not yet published
/// (`LOADED`): matching and replays wait for it to be `IMPORTED`.
pub const LOADING: &str = "LOADING";
/// See [`LOADING`].
pub const LOADED: &str = "LOADED";

/// Whether the import's rows are not all there yet.
pub fn loading(import: &reconciliation_import::Model) -> bool {
    import.status == LOADING || import.status == LOADED
}

/// What a new import is.
struct Begun {
    vendor_id: VendorId,
    source_name: String,
    period: String,
    format: &'static str,
    rows: u64,
}

/// Creates the import, `LOADING` (audited: the operator's action). None when the same file
/// of the vendor was just imported by another request.
async fn begin_import(
    domain: &Domain,
    actor: &Actor,
    begun: Begun,
    hash: &str,
) -> Result<Option<reconciliation_import::Model>> {
    let row_count = i32::try_from(begun.rows).map_err(|_| Error::validation("file", "too many rows"))?;
    let w = Write::begin(domain).await?;
    let inserted = reconciliation_import::ActiveModel {
        id: NotSet,
        vendor_id: Set(begun.vendor_id.get()),
        period: Set(begun.period),
        source_name: Set(begun.source_name),
        format: Set(begun.format.to_owned()),
        status: Set(LOADING.to_owned()),
        row_count: Set(row_count),
        imported_by_user_id: Set(actor.user_id),
        created_at: Set(w.now()),
        content_hash: Set(hash.to_owned()),
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
                Error::Conflict { reason: "IMPORT_RACE", .. } => Ok(None),
                other => Err(other),
            };
        }
    };
    let details = serde_json::json!({"vendorId": begun.vendor_id.get(), "rows": begun.rows, "contentHash": hash});
    w.commit(Audit::action(actor, "importStatement", "reconciliation_import", import.id, details)).await?;
    Ok(Some(import))
}

/// Loads the file's rows into `LOADING` import `import_id` (`LOADED` after), read on the
/// blocking pool and streamed to the load. False when another load had done it already.
/// `wait`: wait for a load running now rather than be refused.
async fn load_rows(
    domain: &Domain,
    import_id: i64,
    format: &'static (dyn StatementFormat + Sync),
    source: &StatementSource,
    checked: &super::statement::Summary,
    wait: bool,
) -> Result<bool> {
    let Some(mut load) = Load::claim(domain, TABLE, import_id, LOADING, wait).await? else { return Ok(false) };
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Stored>>(4);
    // Set when the load stops taking rows: the reader stops reading.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let file = source.open();
        let stop = std::sync::Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            let input = Stoppable { inner: std::io::BufReader::new(file?), stop: std::sync::Arc::clone(&stop) };
            let mut batch = Vec::with_capacity(BATCH);
            let summary = read_statement(format, input, |row| {
                batch.push(Stored { import_id, row });
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if sender.blocking_send(full).is_err() {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
            .map_err(Error::from)?;
            if !batch.is_empty() {
                let _ = sender.blocking_send(batch);
            }
            Ok::<_, Error>(summary)
        })
    };
    let written = load.rows(&mut batches).await;
    drop(batches);
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            // Rolled back before the reader is waited for: nothing stays locked meanwhile.
            drop(load);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = reader.await;
            return Err(error);
        }
    };
    let again = reader.await.map_err(Error::internal)??;
    if again.content_hash != checked.content_hash || written != checked.rows {
        return Err(Error::validation("file", "the file changed while it was imported"));
    }
    load.finish(TABLE, import_id, LOADED).await?;
    Ok(true)
}

/// A reader that ends with an error once `stop` is set (its consumer is gone).
struct Stoppable<R> {
    inner: R,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R: std::io::Read> std::io::Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("the load stopped"));
        }
        self.inner.read(buf)
    }
}

/// Publishes a `LOADED` import: `IMPORTED`, its event and audit row, once. Returns the
/// import as it is now, and whether it was published here. One still `LOADING` (another
/// request loads it) is CONFLICT.
pub(super) async fn publish_loaded(
    domain: &Domain,
    actor: &Actor,
    import: reconciliation_import::Model,
) -> Result<(reconciliation_import::Model, bool)> {
    if !loading(&import) {
        return Ok((import, false));
    }
    let mut w = Write::begin(domain).await?;
    let import = crate::domain::write::locking(reconciliation_import::Entity::find_by_id(import.id), w.db())
        .one(w.db())
        .await?
        .ok_or(Error::NotFound("import"))?;
    if import.status != LOADED {
        w.rollback().await;
        if import.status == LOADING {
            return Err(Error::conflict("LOAD_IN_PROGRESS", "the file is being loaded now; try again later"));
        }
        return Ok((import, false));
    }
    let mut model: reconciliation_import::ActiveModel = import.into();
    model.status = Set("IMPORTED".to_owned());
    let import = model.update(w.db()).await?;
    let detail = serde_json::json!({"importId": import.id, "vendorId": import.vendor_id, "rows": import.row_count});
    let details = serde_json::json!({"rows": import.row_count});
    w.emit(super::resolution::reconciliation_event("IMPORTED", w.now(), detail)).await?;
    w.commit(Audit::action(actor, "statementLoaded", "reconciliation_import", import.id, details)).await?;
    Ok((import, true))
}

/// The table of imports, whose rows own the statement rows a [`Load`] writes.
const TABLE: &str = "reconciliation_imports";

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

/// A statement row as stored: its import and the row.
struct Stored {
    import_id: i64,
    row: StatementRow,
}

impl Loaded for Stored {
    type Model = reconciliation_line::ActiveModel;
    const COPY: &'static str = "COPY reconciliation_lines (import_id, row_number, customer_external_id, \
        reseller_external_id, subscription_reference, sku, charge_type, charge_start, charge_end, quantity, \
        unit_price, effective_unit_price, exchange_rate, subtotal, currency, raw, customer_name, unit_kind, \
        pricing_currency) FROM STDIN";

    fn copy_line(&self, line: &mut CopyLine<'_>) {
        let row = &self.row;
        line.value(Some(self.import_id));
        line.value(Some(row_number(row)));
        line.text(&row.customer_external_id);
        line.optional_text(row.reseller_external_id.as_deref());
        line.text(&row.subscription_reference);
        line.text(&row.sku);
        line.text(row.charge_type.as_str());
        line.time(Some(midnight(row.charge_start)));
        line.time(Some(midnight(row.charge_end)));
        for value in [row.quantity, row.unit_price, row.effective_unit_price, row.exchange_rate, row.subtotal] {
            line.value(Some(value));
        }
        line.text(&row.currency);
        line.text(&serde_json::to_string(&row.raw).unwrap_or_default());
        line.text(&row.customer_name);
        line.text(unit_kind(row.unit_kind));
        line.text(&row.pricing_currency);
    }

    fn into_model(self) -> reconciliation_line::ActiveModel {
        let Self { import_id, row } = self;
        reconciliation_line::ActiveModel {
            id: NotSet,
            import_id: Set(import_id),
            row_number: Set(row_number(&row)),
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
            unit_kind: Set(unit_kind(row.unit_kind).to_owned()),
            pricing_currency: Set(row.pricing_currency),
        }
    }
}

fn row_number(row: &StatementRow) -> i32 {
    i32::try_from(row.row_number).unwrap_or(i32::MAX)
}

fn unit_kind(kind: UnitKind) -> &'static str {
    super::sides::kind_name(kind == UnitKind::Usage)
}
