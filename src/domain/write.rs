//! One unit of work for every domain write: [`Write`].
//!
//! A write opens its transaction with [`Write::begin`], changes rows through
//! [`Write::db`], adds its domain events with [`Write::emit`] and ends with
//! [`Write::commit`], which takes the write's [`Audit`] entry: there is no way to commit
//! without naming one. The commit records the events in the outbox last, in the same
//! transaction and in commit order (on PostgreSQL under an advisory lock held until the
//! commit, so outbox ids — the events' sequences — are handed out in the order writes
//! commit). A catalog or price write also bumps `catalog_version` in its transaction, which
//! every process's cached catalog checks. Only after the commit succeeds does it wake the
//! event relay, mark this process's catalog snapshot stale and wake its workers, as asked. Dropping a `Write`
//! without committing rolls it back and does none of that.
//!
//! Invariants:
//! - every committed write on a caller's behalf has exactly one audit row, in its own
//!   transaction; only system bookkeeping (workers, the renewal scheduler, billing runs,
//!   which keep their own trail) commits with [`Audit::Bookkeeping`];
//! - events reach subscribers only after their transaction committed, and never when it
//!   rolled back; a write that enqueued jobs wakes this process's workers after commit.
//!
//! `tests/api/layering.rs` fails if any other module begins a transaction (`begin`,
//! `begin_with_options`, `transaction`), writes through the pool directly, records an audit
//! row, writes to the outbox or publishes events, or commits as bookkeeping outside the
//! system modules; `tests/api/writes.rs` checks the commit and rollback behaviour.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, NotSet, Set, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};

use super::actor::Actor;
use super::catalog_delta::{CHANGES_KEPT, CatalogChange};
use super::error::Result;
use super::events::DomainEvent;
use super::{Domain, audit};

/// What the audit log records about a write. Every commit names one.
#[derive(Debug)]
pub enum Audit<'a> {
    /// An actor's action on an object: one row in the audit log.
    Action {
        /// Who did it.
        actor: &'a Actor,
        /// The action, as the API names it (`placeOrder`).
        action: &'a str,
        /// The kind of object acted on (`order`).
        object_type: &'a str,
        /// The object acted on, if it has an id.
        object_id: Option<i64>,
        /// What the row keeps besides (JSON).
        details: serde_json::Value,
    },
    /// Bookkeeping by the system that records its own trail elsewhere (a job's row, a
    /// billing run's row), with the reason, so a reviewer sees why no row is written.
    Bookkeeping(&'static str),
}

impl<'a> Audit<'a> {
    /// `actor` did `action` to the `object_type` with `object_id`.
    pub fn action(
        actor: &'a Actor,
        action: &'a str,
        object_type: &'a str,
        object_id: impl Into<Option<i64>>,
        details: serde_json::Value,
    ) -> Self {
        Self::Action { actor, action, object_type, object_id: object_id.into(), details }
    }
}

/// A domain write in progress: see the module documentation.
pub struct Write<'d> {
    domain: &'d Domain,
    txn: DatabaseTransaction,
    /// This process's write turn on SQLite, held until the transaction ends.
    turn: super::write_gate::Turn,
    now: DateTime<Utc>,
    events: Vec<DomainEvent>,
    catalog_changes: Vec<CatalogChange>,
    wakes_workers: bool,
}

impl<'d> Write<'d> {
    /// Begins a write. On SQLite the transaction takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a write that reads first waits for a concurrent writer
    /// instead of failing when it upgrades its lock; before that it waits its turn at the
    /// process's [`super::write_gate::WriteGate`].
    pub async fn begin(domain: &'d Domain) -> Result<Self> {
        let turn = domain.write_gate.enter().await?;
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = domain.db.begin_with_options(options).await?;
        Ok(Self {
            domain,
            txn,
            turn,
            now: domain.clock.now(),
            events: Vec::new(),
            catalog_changes: Vec::new(),
            wakes_workers: false,
        })
    }

    /// The transaction every statement of this write runs in.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Runs a statement sea-query does not build (an `UPDATE … FROM (VALUES …)`) in this
    /// write's transaction; `sql` numbers its parameters `$1`, `$2`… on both backends.
    /// Returns the rows it affected.
    pub async fn execute(&self, sql: &str, values: Vec<sea_orm::Value>) -> Result<u64> {
        use sea_orm::ConnectionTrait;
        let backend = self.txn.get_database_backend();
        let sql = numbered(backend, sql);
        Ok(self.txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected())
    }

    /// The domain this write belongs to.
    pub fn domain(&self) -> &'d Domain {
        self.domain
    }

    /// The time the write began (by the domain clock); its audit row carries it.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Adds `event` to the write: it is recorded in the outbox when the write commits (in
    /// the same transaction, in commit order) and published only if it does.
    pub async fn emit(&mut self, event: DomainEvent) -> Result<()> {
        self.events.push(event);
        Ok(())
    }

    /// Records each of `events` (see [`Write::emit`]).
    pub async fn emit_all(&mut self, events: impl IntoIterator<Item = DomainEvent>) -> Result<()> {
        for event in events {
            self.emit(event).await?;
        }
        Ok(())
    }

    /// A catalog or price write changed `change`: the transaction bumps `catalog_version`
    /// and records the change under the new version (every process's snapshot re-reads the
    /// changed rows: `catalog_delta`) and, after commit, this process's cached catalog is
    /// stale.
    pub fn catalog_changed(&mut self, change: CatalogChange) {
        self.catalog_changes.push(change);
    }

    /// After commit, wake this process's idle workers (the write enqueued jobs).
    pub fn wake_workers(&mut self) {
        self.wakes_workers = true;
    }

    /// Writes the audit row (if `audit` is an action), commits, then publishes the events,
    /// invalidates the catalog cache and wakes workers as asked.
    pub async fn commit(mut self, audit: Audit<'_>) -> Result<()> {
        if let Audit::Action { actor, action, object_type, object_id, details } = audit {
            audit::record(&self.txn, actor, action, object_type, object_id, details, self.now).await?;
        }
        // Webhook deliveries of the events, in the same transaction: queued if and only if
        // the events commit.
        let attempts = self.domain.webhooks.attempts();
        if super::fanout::fan_out(&self.txn, self.now, attempts, &self.events).await? {
            self.wakes_workers = true;
        }
        // Every process's cached catalog learns of the change by this number.
        if !self.catalog_changes.is_empty() {
            record_catalog_changes(&self.txn, &mut self.catalog_changes).await?;
        }
        // Last, so the lock that orders the outbox is held only until the commit.
        record_events(&self.txn, &mut self.events).await?;
        self.txn.commit().await?;
        // The next writer may go.
        drop(self.turn);
        if !self.events.is_empty() {
            self.domain.events.after_commit();
        }
        if !self.catalog_changes.is_empty() {
            self.domain.catalog.mark_stale();
        }
        if self.wakes_workers {
            self.domain.job_wakeup.notify_waiters();
        }
        Ok(())
    }

    /// Abandons the write: nothing it did is kept, published or audited.
    pub async fn rollback(self) {
        if let Err(error) = self.txn.rollback().await {
            tracing::warn!(%error, "rolling back a write failed; the connection discards it");
        }
    }
}

/// `rows` lists of `width` parameters numbered in order, `($1, $2), ($3, $4)`…: the `VALUES`
/// of a multi-row statement written by hand (run by [`Write::execute`], which numbers them
/// as the backend wants).
pub fn value_rows(rows: usize, width: usize) -> String {
    let row = |row: usize| {
        let parameters: Vec<String> = (1..=width).map(|column| format!("${}", row * width + column)).collect();
        format!("({})", parameters.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// `sql` with its parameters `$1`, `$2`… numbered as `backend` wants them (`?1`… on SQLite:
/// only a `$` before a digit is a parameter).
fn numbered(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Sqlite {
        return sql.to_owned();
    }
    let mut numbered = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let parameter = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        numbered.push(if parameter { '?' } else { c });
    }
    numbered
}

/// Bumps `catalog_version` (the row lock it takes orders catalog writes until commit) and
/// records `changes` under the new version; prunes the changes no snapshot refreshes from
/// any more (`CHANGES_KEPT` versions back).
async fn record_catalog_changes<C: ConnectionTrait>(db: &C, changes: &mut Vec<CatalogChange>) -> Result<()> {
    let backend = db.get_database_backend();
    let bump = Statement::from_string(
        backend,
        "UPDATE catalog_version SET version = version + 1 WHERE id = 1 RETURNING version",
    );
    let version: i64 = match db.query_one_raw(bump).await? {
        Some(row) => row.try_get("", "version")?,
        None => return Err(super::error::Error::internal("the catalog_version row is missing")),
    };
    changes.sort_unstable();
    changes.dedup();
    for chunk in changes.chunks(rows_per_statement(db, 3)) {
        let sql = format!("INSERT INTO catalog_changes (version, kind, row_id) VALUES {}", value_rows(chunk.len(), 3));
        let values = chunk.iter().flat_map(|change| {
            let (kind, id) = change.row();
            [version.into(), kind.into(), id.into()]
        });
        db.execute_raw(Statement::from_sql_and_values(backend, numbered(backend, &sql), values)).await?;
    }
    let prune = numbered(backend, "DELETE FROM catalog_changes WHERE version <= $1");
    let prune = Statement::from_sql_and_values(backend, prune, [(version - CHANGES_KEPT).into()]);
    db.execute_raw(prune).await?;
    Ok(())
}

/// Outbox rows written by one statement.
const EVENTS_PER_INSERT: usize = 1_000;

/// The advisory lock that orders event-recording transactions ("SYEVENTS").
const EVENTS_LOCK: i64 = 0x5359_4556_454E_5453;

/// Records `events` in the outbox inside `txn` (the write's, just before it commits) and
/// numbers them; on PostgreSQL, in commit order, and notifies every process's relay.
async fn record_events<C: ConnectionTrait>(db: &C, events: &mut [DomainEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    if postgres {
        let lock = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [EVENTS_LOCK.into()],
        );
        db.execute_raw(lock).await?;
    }
    // One statement for all of them; each gets its sequence back by its event id.
    let mut rows = Vec::with_capacity(events.len());
    for event in events.iter() {
        let payload = serde_json::to_value(event).map_err(super::error::Error::internal)?;
        let (aggregate_type, aggregate_id) = event.aggregate();
        rows.push(entity::domain_event::ActiveModel {
            id: NotSet,
            event_id: Set(event.id.clone()),
            kind: Set(payload["kind"].as_str().unwrap_or_default().to_owned()),
            aggregate_type: Set(aggregate_type.to_owned()),
            aggregate_id: Set(aggregate_id),
            vendor_id: Set(event.vendor_id),
            reseller_id: Set(event.reseller_id),
            customer_id: Set(event.customer_id),
            payload: Set(payload),
            occurred_at: Set(event.occurred_at),
            published_at: Set(None),
        });
    }
    let mut written = Vec::with_capacity(rows.len());
    // A statement's bind parameters are bounded (32,766 on SQLite): ten a row.
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(EVENTS_PER_INSERT));
        let chunk = std::mem::replace(&mut rows, rest);
        written.extend(
            <entity::domain_event::Entity as sea_orm::EntityTrait>::insert_many(chunk).exec_with_returning(db).await?,
        );
    }
    let sequences: std::collections::HashMap<&str, i64> =
        written.iter().map(|row| (row.event_id.as_str(), row.id)).collect();
    for event in events.iter_mut() {
        event.sequence = sequences
            .get(event.id.as_str())
            .copied()
            .ok_or_else(|| super::error::Error::internal("an event's outbox row was not returned"))?;
    }
    if postgres {
        let last = events.last().map_or(0, |e| e.sequence);
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [super::events::CHANNEL.into(), last.to_string().into()],
        );
        db.execute_raw(notify).await?;
    }
    Ok(())
}

/// Tables whose planner statistics a bulk write may refresh.
#[derive(Clone, Copy, Debug)]
pub enum Analyzed {
    /// `charges`, after a billing run wrote a month of them.
    Charges,
    /// `reconciliation_lines`, after an import wrote a statement's rows: matching reads them
    /// at once, in the order of an index the planner must know is worth it.
    StatementLines,
}

/// Refreshes PostgreSQL's planner statistics of a table a bulk write just grew (a no-op on
/// SQLite). Without it, a month of fresh charges looks like none to the planner until
/// autovacuum runs, and claiming a customer's few charges by id (`… AND
/// customer_invoice_id IS NULL`) scans every uninvoiced charge through the NULL index
/// instead of looking ten ids up: 7 ms a statement instead of a fraction of one.
pub async fn analyze(domain: &Domain, table: Analyzed) -> Result<()> {
    use sea_orm::ConnectionTrait;
    if domain.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let sql = match table {
        Analyzed::Charges => "ANALYZE charges",
        Analyzed::StatementLines => "ANALYZE reconciliation_lines",
    };
    domain.db.execute_unprepared(sql).await?;
    Ok(())
}

/// How many rows one multi-row statement of `parameters_per_row` carries on `db`'s backend.
/// PostgreSQL: up to 30,000 parameters (its limit is 65,535), so fewer round trips. SQLite,
/// where a statement costs no round trip: 100 rows at most, because each distinct statement
/// stays prepared in its connection's cache (`db::SQLITE_STATEMENT_CACHE` of them) and a
/// prepared statement's memory grows with its parameters: statements of thousands of rows
/// kept hundreds of MiB resident.
pub fn rows_per_statement(db: &impl sea_orm::ConnectionTrait, parameters_per_row: usize) -> usize {
    let most = match db.get_database_backend() {
        DbBackend::Postgres => 30_000 / parameters_per_row.max(1),
        _ => 100,
    };
    most.clamp(1, 1000)
}

/// `select` taking its rows' locks (`FOR UPDATE`) on PostgreSQL, for a read that a write in
/// the same transaction depends on: a concurrent writer of the same row (another request,
/// another process) waits until this transaction ends and then reads what it wrote, so no
/// update is lost. SQLite serializes write transactions already.
pub fn locking<E: sea_orm::EntityTrait>(select: sea_orm::Select<E>, txn: &DatabaseTransaction) -> sea_orm::Select<E> {
    use sea_orm::{ConnectionTrait, QuerySelect};
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres { select.lock_exclusive() } else { select }
}

/// A row a [`Load`] appends: how it goes into a PostgreSQL `COPY` and, on SQLite, the
/// model a multi-row insert writes.
pub trait Loaded: Send + 'static {
    /// The model written on SQLite.
    type Model: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send;
    /// `COPY table (columns…) FROM STDIN`: the table and the columns of [`Loaded::copy_line`].
    const COPY: &'static str;
    /// Appends the row as one line of `COPY`'s text format, in [`Loaded::COPY`]'s columns.
    fn copy_line(&self, line: &mut CopyLine<'_>);
    /// The row as the model SQLite's insert writes.
    fn into_model(self) -> Self::Model;
}

/// One line of `COPY`'s text format being written: values separated by tabs, `\N` for
/// NULL, and backslash, tab, newline and carriage return escaped in text.
pub struct CopyLine<'a> {
    out: &'a mut String,
    first: bool,
}

impl CopyLine<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push('\t');
        }
    }

    /// A text value.
    pub fn text(&mut self, value: &str) {
        self.separate();
        for c in value.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\t' => self.out.push_str("\\t"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                c => self.out.push(c),
            }
        }
    }

    /// A value of any type written as its text (a number, a timestamp), or NULL.
    pub fn value(&mut self, value: Option<impl std::fmt::Display>) {
        use std::fmt::Write as _;
        self.separate();
        match value {
            // Writing to a String cannot fail.
            Some(value) => drop(write!(self.out, "{value}")),
            None => self.out.push_str("\\N"),
        }
    }

    /// A text value, or NULL.
    pub fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.value(None::<&str>),
        }
    }

    /// A timestamp, or NULL.
    pub fn time(&mut self, value: Option<DateTime<Utc>>) {
        self.value(value.map(|t| t.format("%Y-%m-%d %H:%M:%S%.f+00")));
    }
}

/// A bulk load: many rows appended to one table in a transaction of their own — on
/// PostgreSQL by `COPY … FROM STDIN` (ten times the speed of multi-row inserts), on SQLite
/// by multi-row inserts. The rows belong to an owner row with a `status` (an import): a
/// load claims it in one status, holding its row lock so that two loads of one owner never
/// run at once, and [`Load::finish`] moves it to the next status in the same transaction.
/// A load cut short leaves nothing and the owner in its first status, to be loaded again.
/// It is bookkeeping with no audit row and no event: the write that created the owner and
/// the one that publishes the loaded rows carry those.
pub struct Load {
    txn: LoadTxn,
    /// This process's write turn on SQLite (see [`super::write_gate`]).
    _turn: super::write_gate::Turn,
}

enum LoadTxn {
    Copy(sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::Postgres>),
    Insert(DatabaseTransaction),
}

/// Rows a [`Load`] sends to `COPY` at once.
const COPY_CHUNK: usize = 1 << 20;

fn sqlx_error(error: sea_orm::sqlx::Error) -> super::error::Error {
    sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(error.into())).into()
}

impl Load {
    /// Begins a load of rows owned by the row `id` of `owner` (a table with a `status`),
    /// claiming it if its status is `from`. None when it is not (another load finished it).
    /// When another load holds it now: with `wait`, waits for it to end; without, CONFLICT
    /// (LOAD_IN_PROGRESS) on PostgreSQL — on SQLite the write lock makes any second load wait
    /// its turn, up to the busy timeout.
    pub async fn claim(domain: &Domain, owner: &'static str, id: i64, from: &str, wait: bool) -> Result<Option<Self>> {
        use sea_orm::sqlx::Row;
        let sql = format!("SELECT status FROM {owner} WHERE id = $1");
        if domain.db.get_database_backend() == DbBackend::Postgres {
            let pool = domain.db.get_postgres_connection_pool();
            let mut txn = pool.begin().await.map_err(sqlx_error)?;
            let lock = if wait { "FOR UPDATE" } else { "FOR UPDATE NOWAIT" };
            // `owner` is a table name from our code, never input.
            let row = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(format!("{sql} {lock}")))
                .bind(id)
                .fetch_optional(&mut *txn)
                .await
                .map_err(|error| match &error {
                    sea_orm::sqlx::Error::Database(e) if e.code().as_deref() == Some("55P03") => {
                        super::error::Error::conflict("LOAD_IN_PROGRESS", "it is being loaded now; try again later")
                    }
                    _ => sqlx_error(error),
                })?;
            let status: Option<String> = row.map(|r| r.try_get(0)).transpose().map_err(sqlx_error)?;
            return Ok((status.as_deref() == Some(from)).then_some(Self { txn: LoadTxn::Copy(txn), _turn: None }));
        }
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let turn = domain.write_gate.enter().await?;
        let txn = domain.db.begin_with_options(options).await?;
        let status = txn
            .query_one_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql.replace("$1", "?"), [id.into()]))
            .await?
            .map(|row| row.try_get_by_index::<String>(0))
            .transpose()?;
        Ok((status.as_deref() == Some(from)).then_some(Self { txn: LoadTxn::Insert(txn), _turn: turn }))
    }

    /// Appends every row `batches` brings, until it closes; returns how many.
    pub async fn rows<R: Loaded>(&mut self, batches: &mut tokio::sync::mpsc::Receiver<Vec<R>>) -> Result<u64> {
        use sea_orm::EntityTrait;
        let mut count = 0u64;
        match &mut self.txn {
            LoadTxn::Copy(txn) => {
                let mut copy = txn.copy_in_raw(R::COPY).await.map_err(sqlx_error)?;
                let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
                while let Some(batch) = batches.recv().await {
                    for row in &batch {
                        row.copy_line(&mut CopyLine { out: &mut buffer, first: true });
                        buffer.push('\n');
                        count += 1;
                        if buffer.len() >= COPY_CHUNK {
                            copy.send(std::mem::take(&mut buffer).into_bytes()).await.map_err(sqlx_error)?;
                        }
                    }
                }
                if !buffer.is_empty() {
                    copy.send(buffer.into_bytes()).await.map_err(sqlx_error)?;
                }
                copy.finish().await.map_err(sqlx_error)?;
            }
            LoadTxn::Insert(txn) => {
                while let Some(batch) = batches.recv().await {
                    count += batch.len() as u64;
                    let models: Vec<R::Model> = batch.into_iter().map(Loaded::into_model).collect();
                    <<R::Model as sea_orm::ActiveModelTrait>::Entity as EntityTrait>::insert_many(models)
                        .exec(&*txn)
                        .await?;
                }
            }
        }
        Ok(count)
    }

    /// Moves the owner to status `to` and commits.
    pub async fn finish(self, owner: &'static str, id: i64, to: &str) -> Result<()> {
        let sql = format!("UPDATE {owner} SET status = $1 WHERE id = $2");
        match self.txn {
            LoadTxn::Copy(mut txn) => {
                sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql))
                    .bind(to)
                    .bind(id)
                    .execute(&mut *txn)
                    .await
                    .map_err(sqlx_error)?;
                txn.commit().await.map_err(sqlx_error)
            }
            LoadTxn::Insert(txn) => {
                let values: [sea_orm::Value; 2] = [to.into(), id.into()];
                txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql.replace('$', "?"), values))
                    .await?;
                Ok(txn.commit().await?)
            }
        }
    }
}

/// The advisory lock key of schema migrations ("SWITCHYD").
const MIGRATION_LOCK: i64 = 0x5357_4954_4348_5944;

/// Runs the schema migrations so that of several processes starting together on one
/// database, one migrates and the others wait: `migrate_in` runs them inside one
/// transaction that holds the database's write lock (`BEGIN IMMEDIATE` on SQLite, whose
/// other writers wait for it) or, on PostgreSQL, an advisory lock. Whoever gets the lock
/// next finds nothing left to do, and a failed migration leaves nothing half done.
pub async fn migrating<L, LF>(
    db: &sea_orm::DatabaseConnection,
    migrate_in: L,
) -> std::result::Result<(), sea_orm::DbErr>
where
    L: FnOnce(DatabaseTransaction) -> LF,
    LF: std::future::Future<Output = std::result::Result<DatabaseTransaction, sea_orm::DbErr>>,
{
    use sea_orm::ConnectionTrait;
    let options =
        TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
    let lock = db.begin_with_options(options).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
    }
    migrate_in(lock).await?.commit().await
}
