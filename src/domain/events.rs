//! Domain events: recorded in the outbox by the writer's transaction (`outbox`), published
//! after commit in commit order, in every server process.
//!
//! Every state change a dashboard cares about becomes a [`DomainEvent`] with a stable id,
//! its place in the outbox (`sequence`, increasing in commit order) and the tenancy keys
//! (vendor, reseller, customer) that decide who may receive it. Each process's relay
//! (`outbox::start_relay`) reads the outbox after the last sequence it published and
//! delivers what it finds on this process's [`EventBus`]; a commit wakes it (in process, and
//! in every process by `pg_notify` on PostgreSQL), and it also looks every second, so an
//! event committed while a LISTEN connection was down is published all the same.
//!
//! Local delivery is a bounded broadcast channel: a slow subscriber lags and never blocks
//! the writer or other subscribers; it catches up from the outbox (see `graphql::subscription`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};

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
    /// A vendor's statement was imported or matched, or a finding resolved (the operator's
    /// alone: it names no tenant).
    ReconciliationChanged,
    /// A webhook endpoint was disabled after failing too long (its owner's, or the
    /// operator's when it names no reseller).
    WebhookEndpointDisabled,
}

impl EventKind {
    /// The scope an API key needs to receive events of this kind live: the scope of what the
    /// event is about (a disabled endpoint's event names its URL: `webhooks:manage`).
    pub fn scope_to_receive(self) -> super::scopes::Scope {
        use super::scopes::Scope;
        match self {
            Self::OrderPlaced | Self::OrderStatusChanged => Scope::OrdersWrite,
            Self::SubscriptionChanged | Self::ProvisioningStatusChanged => Scope::SubscriptionsWrite,
            Self::ReconciliationChanged => Scope::ReconciliationWrite,
            Self::WebhookEndpointDisabled => Scope::WebhooksManage,
        }
    }
}

/// One domain event, as stored in the outbox and sent to subscribers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Stable id (UUID), for deduplication by receivers.
    pub id: String,
    /// Its place in the outbox: increasing in commit order (0 until recorded). A live
    /// subscription resumes after one.
    #[serde(default)]
    pub sequence: i64,
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
    /// The webhook endpoint concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_endpoint_id: Option<i64>,
}

impl DomainEvent {
    /// A new event of `kind` with a fresh id; fill in the rest with struct update syntax.
    pub fn new(kind: EventKind, status: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            sequence: 0,
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
            webhook_endpoint_id: None,
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

    /// The event's detail as a caller of `role` may read it: a vendor's raw error only for
    /// the operator and the vendor (`vendor_error_for_role`); a disabled webhook endpoint's
    /// reason (its own URL) as it is.
    pub fn detail_for(&self, role: entity::enums::Role) -> Option<String> {
        if self.kind == EventKind::WebhookEndpointDisabled {
            return self.detail.clone();
        }
        vendor_error_for_role(role, &self.status, self.detail.as_deref())
    }

    pub(super) fn aggregate(&self) -> (&'static str, i64) {
        match (self.job_id, self.subscription_id, self.order_id) {
            (Some(id), _, _) if self.kind == EventKind::ProvisioningStatusChanged => ("provisioning_job", id),
            (_, Some(id), _) if self.kind == EventKind::SubscriptionChanged => ("subscription", id),
            (_, _, Some(id)) => ("order", id),
            (_, Some(id), _) => ("subscription", id),
            _ if self.webhook_endpoint_id.is_some() => ("webhook_endpoint", self.webhook_endpoint_id.unwrap_or(0)),
            _ => ("none", 0),
        }
    }
}

/// What a caller of `role` may read of a vendor's error: the operator (and the vendor, whose
/// own endpoint it is) the message as the connector reported it — it may name the
/// operator's endpoint and carry a key in its query string; resellers and customers a
/// reason by `status` (a job's or a subscription's), never the message.
pub fn vendor_error_for_role(role: entity::enums::Role, status: &str, raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    if matches!(role, entity::enums::Role::Operator | entity::enums::Role::Vendor) {
        return Some(raw.to_owned());
    }
    Some(
        match status {
            "FAILED" => "the vendor refused the request",
            "DEAD" => "the vendor did not complete the request after every attempt; the operator can retry it",
            "OUT_OF_SYNC" => "the vendor has not confirmed a change; the operator is settling it",
            "QUEUED" | "RUNNING" | "PENDING" | "PROVISIONING" => {
                "the vendor was busy or unreachable; it is tried again"
            }
            _ => "the vendor reported a problem",
        }
        .to_owned(),
    )
}

/// How events reach subscribers in this deployment.
/// How committed events reach this process's subscribers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One process (SQLite): a commit wakes the relay in process.
    InProcess,
    /// Several processes (PostgreSQL): a commit also sends `pg_notify`, which wakes every
    /// process's relay.
    PostgresNotify,
}

/// This process's event bus: the relay publishes on it, in sequence order; live
/// subscriptions receive from it.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
    delivery: Delivery,
    /// The last sequence the relay published here.
    published: AtomicI64,
    /// Wakes the relay (a commit in this process, a notification from another).
    wakeup: Notify,
}

impl EventBus {
    /// A bus buffering `capacity` events per subscriber.
    pub fn new(capacity: usize, delivery: Delivery) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender, delivery, published: AtomicI64::new(0), wakeup: Notify::new() }
    }

    /// The delivery a backend needs.
    pub fn delivery_for(backend: DbBackend) -> Delivery {
        if backend == DbBackend::Postgres { Delivery::PostgresNotify } else { Delivery::InProcess }
    }

    /// How events reach this process.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.sender.subscribe()
    }

    /// The last sequence published on this bus.
    pub fn published_through(&self) -> i64 {
        self.published.load(Ordering::SeqCst)
    }

    /// After a commit that recorded events: the relay looks at the outbox now.
    pub fn after_commit(&self) {
        self.wakeup.notify_one();
    }

    /// Waits until a commit or a notification wakes the relay, or `timeout` passes.
    pub async fn woken_within(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wakeup.notified()).await;
    }

    /// Publishes one event the relay read from the outbox (in sequence order).
    pub fn deliver(&self, event: Arc<DomainEvent>) {
        self.published.fetch_max(event.sequence, Ordering::SeqCst);
        // No subscriber is not an error: events are also in the outbox.
        let _ = self.sender.send(event);
    }

    /// Starts the relay's wake-ups from the sequence it starts after.
    pub fn start_at(&self, sequence: i64) {
        self.published.fetch_max(sequence, Ordering::SeqCst);
    }
}

/// Listens for other processes' commits on PostgreSQL and wakes this process's relay.
/// Returns once the LISTEN is in place; the listener then reconnects by itself after
/// failures, for the life of the process (the relay's own polling covers the gap).
pub async fn start_postgres_listener(url: &str, bus: Arc<EventBus>) -> Result<tokio::task::JoinHandle<()>> {
    use sea_orm::sqlx::postgres::PgListener;
    let mut listener = PgListener::connect(url).await.map_err(super::Error::internal)?;
    listener.listen(CHANNEL).await.map_err(super::Error::internal)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(_) => bus.after_commit(),
                Err(error) => {
                    // sqlx reconnects on the next `recv`; back off a little meanwhile, and
                    // let the relay look at the outbox for what was committed meanwhile.
                    tracing::warn!(%error, "event listener lost its connection; reconnecting");
                    bus.after_commit();
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
        DomainEvent { sequence: n, ..DomainEvent::new(EventKind::OrderPlaced, "PROCESSING", Utc::now()) }
    }

    /// A subscriber that does not read never blocks publishing or other subscribers: it
    /// lags and is told how much it missed (and catches up from the outbox).
    #[tokio::test]
    async fn a_slow_subscriber_lags_without_blocking_anyone() {
        let bus = EventBus::new(4, Delivery::InProcess);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for n in 1..=10 {
            bus.deliver(Arc::new(event(n)));
            assert_eq!(fast.recv().await.ok().map(|e| e.sequence), Some(n));
        }
        assert!(matches!(slow.recv().await, Err(broadcast::error::RecvError::Lagged(6))));
        assert_eq!(slow.recv().await.ok().map(|e| e.sequence), Some(7));
        assert_eq!(bus.published_through(), 10);
    }

    /// A commit only wakes the relay: what subscribers receive comes from the outbox, once.
    #[test]
    fn a_commit_wakes_the_relay_and_publishes_nothing_itself() {
        let bus = EventBus::new(4, Delivery::PostgresNotify);
        let mut receiver = bus.subscribe();
        bus.after_commit();
        assert!(receiver.try_recv().is_err(), "the relay delivers it, once");
        bus.deliver(Arc::new(event(2)));
        assert_eq!(receiver.try_recv().ok().map(|e| e.sequence), Some(2));
    }
}
