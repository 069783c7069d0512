//! The outbox: a write's events recorded in its own transaction, in commit order; each
//! process's relay, which publishes them on the process's bus in that order; the replay of
//! what came after a cursor; and pruning after the retention.
//!
//! Recording is `Write::commit`'s (in commit order: see `write`), so an event's id is its
//! `sequence`, a cursor a subscriber can resume after.

use std::sync::Arc;
use std::time::Duration;

use entity::domain_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::Domain;
use super::Tenant;
use super::actor::Actor;
use super::error::{Error, Result};
use super::events::{DomainEvent, EventBus};
use super::write::{Audit, Write};

/// Events read from the outbox at a time.
const PAGE: u64 = 500;

/// The events after `after` (those `actor` may receive, if given), oldest first, from at
/// most `limit` rows, and the last row's sequence (a row that is not an event is skipped,
/// and still read past).
pub async fn since<C: ConnectionTrait>(
    db: &C,
    after: i64,
    limit: u64,
    actor: Option<&Actor>,
) -> Result<(Vec<DomainEvent>, Option<i64>)> {
    let mut find = domain_event::Entity::find().filter(domain_event::Column::Id.gt(after));
    // The tenancy keys are columns: a tenant's replay reads its own rows only.
    find = match actor.map(|actor| actor.tenant) {
        None | Some(Tenant::Operator) => find,
        Some(Tenant::Vendor(id)) => find.filter(domain_event::Column::VendorId.eq(id.get())),
        Some(Tenant::Reseller(id)) => find.filter(domain_event::Column::ResellerId.eq(id.get())),
        Some(Tenant::Customer(id)) => find.filter(domain_event::Column::CustomerId.eq(id.get())),
    };
    let rows = find.order_by_asc(domain_event::Column::Id).limit(limit).all(db).await?;
    let last = rows.last().map(|row| row.id);
    let events = rows
        .into_iter()
        .filter_map(|row| match serde_json::from_value::<DomainEvent>(row.payload) {
            Ok(event) => Some(DomainEvent { sequence: row.id, ..event }),
            Err(error) => {
                tracing::warn!(sequence = row.id, %error, "an outbox row that is not an event is skipped");
                None
            }
        })
        .collect();
    Ok((events, last))
}

/// The last sequence in the outbox (how far it was pruned when it is empty, 0 before any
/// event): where a stream that wants everything from now on can say it starts.
pub async fn last_sequence<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let last: Option<i64> = domain_event::Entity::find()
        .select_only()
        .column_as(domain_event::Column::Id.max(), "last")
        .into_tuple()
        .one(db)
        .await?
        .flatten();
    // An outbox pruned empty still remembers how far it went.
    Ok(last.unwrap_or(0).max(pruned_through(db).await?))
}

/// Up to which sequence the outbox was pruned: a cursor before it may have missed events
/// that are no longer kept.
pub async fn pruned_through<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT pruned_through FROM outbox_horizon WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| Error::internal("the outbox horizon row is missing"))?;
    Ok(row.try_get::<i64>("", "pruned_through")?)
}

/// Deletes the events older than `retention` (by the domain clock), a batch of ids at a
/// time; how many. Subscribers resuming from before them are told the events are lost.
pub async fn prune(domain: &Domain, retention: Duration) -> Result<u64> {
    let cutoff = domain.clock.now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
    let mut pruned = 0;
    loop {
        // The oldest events, in sequence order: up to the last of a batch that is past the
        // retention (ids follow commit order, so "up to an id" is a prefix of the outbox).
        let batch: Vec<(i64, chrono::DateTime<chrono::Utc>)> = domain_event::Entity::find()
            .select_only()
            .column(domain_event::Column::Id)
            .column(domain_event::Column::OccurredAt)
            .order_by_asc(domain_event::Column::Id)
            .limit(PRUNE_BATCH)
            .into_tuple()
            .all(&domain.db)
            .await?;
        let Some(through) = batch.iter().take_while(|(_, at)| *at < cutoff).map(|(id, _)| *id).last() else {
            return Ok(pruned);
        };
        pruned += prune_through(domain, through).await?;
    }
}

/// Events deleted at a time.
const PRUNE_BATCH: u64 = 10_000;

/// Deletes the events up to `through` and moves the horizon there, in one write.
async fn prune_through(domain: &Domain, through: i64) -> Result<u64> {
    let w = Write::begin(domain).await?;
    let backend = w.db().get_database_backend();
    let keep = if backend == DbBackend::Postgres {
        "UPDATE outbox_horizon SET pruned_through = GREATEST(pruned_through, $1) WHERE id = 1"
    } else {
        "UPDATE outbox_horizon SET pruned_through = MAX(pruned_through, ?1) WHERE id = 1"
    };
    let moved = w.db().execute_raw(Statement::from_sql_and_values(backend, keep, [through.into()])).await?;
    if moved.rows_affected() != 1 {
        return Err(Error::internal("the outbox horizon row is missing"));
    }
    let deleted =
        domain_event::Entity::delete_many().filter(domain_event::Column::Id.lte(through)).exec(w.db()).await?;
    w.commit(Audit::Bookkeeping("events past their retention leave the outbox; its horizon records how far")).await?;
    Ok(deleted.rows_affected)
}

/// Starts this process's relay: from the outbox's last event now (read before this
/// returns, so nothing committed after it is missed), it publishes every later one on `bus`
/// in sequence order, when a commit wakes it and at least every second.
pub async fn start_relay(db: DatabaseConnection, bus: Arc<EventBus>) -> Result<tokio::task::JoinHandle<()>> {
    let mut cursor = last_sequence(&db).await?;
    bus.start_at(cursor);
    Ok(tokio::spawn(async move {
        loop {
            match publish_after(&db, &bus, cursor).await {
                Ok(last) => cursor = last,
                Err(error) => tracing::warn!(%error, "the event relay cannot read the outbox"),
            }
            bus.woken_within(Duration::from_secs(1)).await;
        }
    }))
}

/// Publishes every event after `cursor`; the last sequence read.
async fn publish_after(db: &DatabaseConnection, bus: &EventBus, mut cursor: i64) -> Result<i64> {
    loop {
        let (page, last) = since(db, cursor, PAGE, None).await?;
        for event in page {
            bus.deliver(Arc::new(event));
        }
        match last {
            Some(last) => cursor = last,
            None => return Ok(cursor),
        }
    }
}
