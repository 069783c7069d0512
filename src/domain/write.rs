//! One unit of work for every domain write: [`Write`].
//!
//! A write opens its transaction with [`Write::begin`], changes rows through
//! [`Write::db`], adds its domain events with [`Write::emit`] and ends with
//! [`Write::commit`], which takes the write's [`Audit`] entry: there is no way to commit
//! without naming one. The commit records the events in the outbox last, in the same
//! transaction and in commit order (on PostgreSQL under an advisory lock held until the
//! commit, so outbox ids — the events' sequences — are handed out in the order writes
//! commit). Only after the commit succeeds does it wake the event relay, invalidate the
//! catalog cache and wake this process's workers, as the write asked. Dropping a `Write`
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
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, NotSet, Set, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};

use super::actor::Actor;
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
    now: DateTime<Utc>,
    events: Vec<DomainEvent>,
    invalidates_catalog: bool,
    wakes_workers: bool,
}

impl<'d> Write<'d> {
    /// Begins a write. On SQLite the transaction takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a write that reads first waits for a concurrent writer
    /// instead of failing when it upgrades its lock.
    pub async fn begin(domain: &'d Domain) -> Result<Self> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = domain.db.begin_with_options(options).await?;
        Ok(Self {
            domain,
            txn,
            now: domain.clock.now(),
            events: Vec::new(),
            invalidates_catalog: false,
            wakes_workers: false,
        })
    }

    /// The transaction every statement of this write runs in.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
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

    /// After commit, drop this process's cached catalog and prices (a catalog or price write).
    pub fn invalidate_catalog(&mut self) {
        self.invalidates_catalog = true;
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
        // Last, so the lock that orders the outbox is held only until the commit.
        record_events(&self.txn, &mut self.events).await?;
        self.txn.commit().await?;
        if !self.events.is_empty() {
            self.domain.events.after_commit();
        }
        if self.invalidates_catalog {
            self.domain.catalog.invalidate();
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
    for event in events.iter_mut() {
        let payload = serde_json::to_value(&*event).map_err(super::error::Error::internal)?;
        let (aggregate_type, aggregate_id) = event.aggregate();
        let row = entity::domain_event::ActiveModel {
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
        }
        .insert(db)
        .await?;
        event.sequence = row.id;
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

/// `select` taking its rows' locks (`FOR UPDATE`) on PostgreSQL, for a read that a write in
/// the same transaction depends on: a concurrent writer of the same row (another request,
/// another process) waits until this transaction ends and then reads what it wrote, so no
/// update is lost. SQLite serializes write transactions already.
pub fn locking<E: sea_orm::EntityTrait>(select: sea_orm::Select<E>, txn: &DatabaseTransaction) -> sea_orm::Select<E> {
    use sea_orm::{ConnectionTrait, QuerySelect};
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres { select.lock_exclusive() } else { select }
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
