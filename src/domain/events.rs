//! Domain events: written to the outbox in the writer's transaction, delivered after commit.
//!
//! Every state change a dashboard cares about becomes a [`DomainEvent`] with a stable id and
//! the tenancy keys (vendor, reseller, customer) that decide who may receive it.
//! Delivery reaches every server process:
//! - on PostgreSQL the writer also calls `pg_notify` inside its transaction, so the
//!   notification is sent exactly when (and only if) the transaction commits; every
//!   process — the writer included — LISTENs and publishes what it hears locally;
//! - on SQLite (one process) the writer publishes after commit, in process.
//!
//! Local delivery is a bounded broadcast channel: a slow subscriber lags (it is told how
//! many events it missed) and never blocks the writer or other subscribers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::domain_event;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, NotSet, Set, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::error::Result;

/// The PostgreSQL notification channel events travel on.
pub const CHANNEL: &str = "switchyard_events";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    /// An order was placed.
    OrderPlaced,
    /// An order's derived status changed.
    OrderStatusChanged,
    /// A subscription's status, quantity or settings changed.
    SubscriptionChanged,
    /// A provisioning job changed state (queued, running, succeeded, failed, dead).
    ProvisioningStatusChanged,
}

/// One domain event, as stored in the outbox and sent to subscribers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Stable id (UUID), for deduplication by receivers.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The vendor concerned, if any.
    pub vendor_id: Option<i64>,
    /// The reseller of record, if any.
    pub reseller_id: Option<i64>,
    /// The customer concerned, if any.
    pub customer_id: Option<i64>,
    /// The order concerned, if any.
    pub order_id: Option<i64>,
    /// The subscription concerned, if any.
    pub subscription_id: Option<i64>,
    /// The provisioning job concerned, if any.
    pub job_id: Option<i64>,
    /// The new status (order, subscription or job status name).
    pub status: String,
    /// The subscription's quantity after the change, when it has one.
    pub quantity: Option<i32>,
    /// A human-readable detail (a vendor's error message, say).
    pub detail: Option<String>,
}

impl DomainEvent {
    /// A new event of `kind` with a fresh id; fill in the rest with struct update syntax.
    pub fn new(kind: EventKind, status: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            occurred_at: at,
            vendor_id: None,
            reseller_id: None,
            customer_id: None,
            order_id: None,
            subscription_id: None,
            job_id: None,
            status: status.into(),
            quantity: None,
            detail: None,
        }
    }

    /// Whether `actor` may receive this event at all: the operator every event; a vendor,
    /// reseller or customer only events that name it.
    pub fn is_visible_to(&self, actor: &super::Actor) -> bool {
        match actor.tenant {
            super::Tenant::Operator => true,
            super::Tenant::Vendor(id) => self.vendor_id == Some(id.get()),
            super::Tenant::Reseller(id) => self.reseller_id == Some(id.get()),
            super::Tenant::Customer(id) => self.customer_id == Some(id.get()),
        }
    }

    fn aggregate(&self) -> (&'static str, i64) {
        match (self.job_id, self.subscription_id, self.order_id) {
            (Some(id), _, _) if self.kind == EventKind::ProvisioningStatusChanged => ("provisioning_job", id),
            (_, Some(id), _) if self.kind == EventKind::SubscriptionChanged => ("subscription", id),
            (_, _, Some(id)) => ("order", id),
            (_, Some(id), _) => ("subscription", id),
            _ => ("none", 0),
        }
    }
}

/// How events reach subscribers in this deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One process: publish after commit, in process (SQLite).
    InProcess,
    /// Many processes: `pg_notify` in the transaction, LISTEN everywhere (PostgreSQL).
    PostgresNotify,
}

/// The event bus of one process.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
    delivery: Delivery,
}

impl EventBus {
    /// A bus keeping at most `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize, delivery: Delivery) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender, delivery }
    }

    /// The delivery mode for a database backend.
    pub fn delivery_for(backend: DbBackend) -> Delivery {
        if backend == DbBackend::Postgres { Delivery::PostgresNotify } else { Delivery::InProcess }
    }

    /// How this bus delivers events.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.sender.subscribe()
    }

    /// Writes `event` to the outbox inside the caller's transaction (and, on PostgreSQL,
    /// queues its notification, which the database sends only if the transaction commits).
    pub async fn record<C: ConnectionTrait>(&self, db: &C, event: &DomainEvent) -> Result<()> {
        let payload = serde_json::to_value(event).map_err(super::Error::internal)?;
        let (aggregate_type, aggregate_id) = event.aggregate();
        domain_event::ActiveModel {
            id: NotSet,
            event_id: Set(event.id.clone()),
            kind: Set(serde_json::to_value(event.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()),
            aggregate_type: Set(aggregate_type.to_owned()),
            aggregate_id: Set(aggregate_id),
            vendor_id: Set(event.vendor_id),
            reseller_id: Set(event.reseller_id),
            customer_id: Set(event.customer_id),
            payload: Set(payload.clone()),
            occurred_at: Set(event.occurred_at),
            published_at: Set(None),
        }
        .insert(db)
        .await?;
        if self.delivery == Delivery::PostgresNotify {
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.to_string().into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Publishes events whose transaction has committed (in-process delivery only; on
    /// PostgreSQL the notification does it).
    pub fn after_commit(&self, events: Vec<DomainEvent>) {
        if self.delivery == Delivery::InProcess {
            for event in events {
                self.deliver(Arc::new(event));
            }
        }
    }

    /// Hands one committed event to this process's subscribers.
    pub fn deliver(&self, event: Arc<DomainEvent>) {
        // No subscriber is not an error: events are also in the outbox.
        let _ = self.sender.send(event);
    }
}

/// Starts listening for events from every process on PostgreSQL and delivering them
/// locally. Returns once the LISTEN is in place, so no event committed after this returns is
/// missed; the listener then reconnects by itself after failures, for the life of the process.
pub async fn start_postgres_listener(url: &str, bus: Arc<EventBus>) -> Result<tokio::task::JoinHandle<()>> {
    use sea_orm::sqlx::postgres::PgListener;
    let mut listener = PgListener::connect(url).await.map_err(super::Error::internal)?;
    listener.listen(CHANNEL).await.map_err(super::Error::internal)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(notification) => match serde_json::from_str::<DomainEvent>(notification.payload()) {
                    Ok(event) => bus.deliver(Arc::new(event)),
                    Err(error) => tracing::warn!(%error, "malformed event notification"),
                },
                Err(error) => {
                    // sqlx reconnects on the next `recv`; back off a little meanwhile.
                    tracing::warn!(%error, "event listener lost its connection; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> DomainEvent {
        DomainEvent { order_id: Some(n), ..DomainEvent::new(EventKind::OrderPlaced, "PROCESSING", Utc::now()) }
    }

    /// A subscriber that does not read never blocks publishing or other subscribers: it
    /// lags, is told how much it missed, and then sees only the newest events.
    #[tokio::test]
    async fn a_slow_subscriber_lags_without_blocking_anyone() {
        let bus = EventBus::new(4, Delivery::InProcess);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for n in 0..10 {
            bus.after_commit(vec![event(n)]);
            assert_eq!(fast.recv().await.ok().and_then(|e| e.order_id), Some(n));
        }
        assert!(matches!(slow.recv().await, Err(broadcast::error::RecvError::Lagged(6))));
        assert_eq!(slow.recv().await.ok().and_then(|e| e.order_id), Some(6));
    }

    #[test]
    fn postgres_delivery_publishes_through_the_database_only() {
        let bus = EventBus::new(4, Delivery::PostgresNotify);
        let mut receiver = bus.subscribe();
        bus.after_commit(vec![event(1)]);
        assert!(receiver.try_recv().is_err(), "the LISTENer delivers it, once");
        bus.deliver(Arc::new(event(2)));
        assert_eq!(receiver.try_recv().ok().and_then(|e| e.order_id), Some(2));
    }
}
