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
use super::error::Result;
use super::events::{DomainEvent, EventBus};
use super::write::{Audit, Write};

/// Events read from the outbox at a time.
const PAGE: u64 = 500;

/// The events after `after`, oldest first, from at most `limit` rows, and the last row's
/// sequence (a row that is not an event is skipped, and still read past).
pub async fn since<C: ConnectionTrait>(db: &C, after: i64, limit: u64) -> Result<(Vec<DomainEvent>, Option<i64>)> {
    let rows = domain_event::Entity::find()
        .filter(domain_event::Column::Id.gt(after))
        .order_by_asc(domain_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
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

/// The last sequence in the outbox (0 when empty).
async fn last_sequence<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let last: Option<i64> = domain_event::Entity::find()
        .select_only()
        .column_as(domain_event::Column::Id.max(), "last")
        .into_tuple()
        .one(db)
        .await?
        .flatten();
    Ok(last.unwrap_or(0))
}

/// Up to which sequence the outbox was pruned: a cursor before it may have missed events
/// that are no longer kept.
pub async fn pruned_through<C: ConnectionTrait>(db: &C) -> Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT pruned_through FROM outbox_horizon WHERE id = 1",
        ))
        .await?;
    Ok(row.and_then(|row| row.try_get::<i64>("", "pruned_through").ok()).unwrap_or(0))
}

/// Deletes the events older than `retention` (by the domain clock); how many. Subscribers
/// resuming from before them are told the events are lost.
pub async fn prune(domain: &Domain, retention: Duration) -> Result<u64> {
    let cutoff = domain.clock.now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
    let through: Option<i64> = domain_event::Entity::find()
        .select_only()
        .column_as(domain_event::Column::Id.max(), "last")
        .filter(domain_event::Column::OccurredAt.lt(cutoff))
        .into_tuple()
        .one(&domain.db)
        .await?
        .flatten();
    let Some(through) = through else { return Ok(0) };
    let w = Write::begin(domain).await?;
    let backend = w.db().get_database_backend();
    let keep = if backend == DbBackend::Postgres {
        "UPDATE outbox_horizon SET pruned_through = GREATEST(pruned_through, $1) WHERE id = 1"
    } else {
        "UPDATE outbox_horizon SET pruned_through = MAX(pruned_through, ?1) WHERE id = 1"
    };
    w.db().execute_raw(Statement::from_sql_and_values(backend, keep, [through.into()])).await?;
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
        let (page, last) = since(db, cursor, PAGE).await?;
        for event in page {
            bus.deliver(Arc::new(event));
        }
        match last {
            Some(last) => cursor = last,
            None => return Ok(cursor),
        }
    }
}
