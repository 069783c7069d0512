//! GraphQL subscriptions: live provisioning, order and subscription status for dashboards.
//!
//! Each stream is scoped exactly like queries: the filter's object must be visible to the
//! caller (NOT_FOUND otherwise), and every event is checked against the caller's tenancy
//! before it is sent, so a reseller never receives another reseller's events.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{CustomerId, OrderId, VendorId};
use crate::domain::{Actor, Error, catalog, customers, orders};
use crate::graphql::parse_id;
use crate::graphql::{ResultExt, actor, domain, snapshot};

/// What a live event is about.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveEventKind {
    OrderPlaced,
    OrderStatusChanged,
    SubscriptionChanged,
    ProvisioningStatusChanged,
}

impl From<EventKind> for LiveEventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::OrderPlaced => Self::OrderPlaced,
            EventKind::OrderStatusChanged => Self::OrderStatusChanged,
            EventKind::SubscriptionChanged => Self::SubscriptionChanged,
            EventKind::ProvisioningStatusChanged => Self::ProvisioningStatusChanged,
        }
    }
}

/// One live event.
#[derive(SimpleObject, Clone, Debug)]
pub struct LiveEvent {
    /// Stable id: the same event seen twice (say, after a reconnect) has the same id.
    pub event_id: ID,
    pub kind: LiveEventKind,
    /// The new status: a subscription status (PENDING, PROVISIONING, ACTIVE…) for
    /// provisioning of purchases and subscription changes, an order status for orders, a
    /// job status (QUEUED, RUNNING, SUCCEEDED…) for other provisioning jobs.
    pub status: String,
    pub order_id: Option<ID>,
    pub subscription_id: Option<ID>,
    pub job_id: Option<ID>,
    pub customer_id: Option<ID>,
    pub quantity: Option<i32>,
    /// For failures: the vendor's error message for the operator (and the vendor), its
    /// reason for resellers and customers.
    pub detail: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

fn id(value: Option<i64>) -> Option<ID> {
    value.map(|v| ID(v.to_string()))
}

impl From<&DomainEvent> for LiveEvent {
    fn from(event: &DomainEvent) -> Self {
        Self {
            event_id: ID(event.id.clone()),
            kind: event.kind.into(),
            status: event.status.clone(),
            order_id: id(event.order_id),
            subscription_id: id(event.subscription_id),
            job_id: id(event.job_id),
            customer_id: id(event.customer_id),
            quantity: event.quantity,
            detail: event.detail.clone(),
            occurred_at: event.occurred_at,
        }
    }
}

/// Committed events for `actor` that pass `keep`, as a stream. A subscriber that falls
/// more than the bus's buffer behind skips what it missed (and is told so in the log).
fn events(
    ctx: &Context<'_>,
    actor: Actor,
    keep: impl Fn(&DomainEvent) -> bool + Send + Sync + 'static,
) -> impl Stream<Item = LiveEvent> + Send + 'static {
    let receiver = domain(ctx).events.subscribe();
    let keep = Arc::new(keep);
    stream::unfold(receiver, move |mut receiver| {
        let (actor, keep) = (actor.clone(), Arc::clone(&keep));
        async move {
            loop {
                match receiver.recv().await {
                    Ok(event) if event.is_visible_to(&actor) && keep(&event) => {
                        let mut live = LiveEvent::from(event.as_ref());
                        live.detail =
                            crate::domain::fulfilment::vendor_error_for(&actor, &live.status, live.detail.as_deref());
                        return Some((live, receiver));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a live subscriber lagged and skipped events")
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}

/// Every subscription.
#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Provisioning progress of one order, one customer or one vendor (exactly one filter;
    /// the operator may also give none to see everything).
    async fn provisioning_status(
        &self,
        ctx: &Context<'_>,
        order_id: Option<ID>,
        customer_id: Option<ID>,
        vendor_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = LiveEvent>> {
        let actor = actor(ctx)?.clone();
        let domain = domain(ctx);
        let order_id: Option<OrderId> = order_id.map(|id| parse_id(&id, "orderId")).transpose()?;
        let customer_id: Option<CustomerId> = customer_id.map(|id| parse_id(&id, "customerId")).transpose()?;
        let vendor_id: Option<VendorId> = vendor_id.map(|id| parse_id(&id, "vendorId")).transpose()?;
        let given = [order_id.is_some(), customer_id.is_some(), vendor_id.is_some()].iter().filter(|f| **f).count();
        if given > 1 || (given == 0 && !actor.is_operator()) {
            return Err(Error::validation("orderId", "give exactly one of orderId, customerId and vendorId")).gql();
        }
        if let Some(id) = order_id {
            orders::get_order(domain, &actor, id).await.gql()?;
        }
        if let Some(id) = customer_id {
            customers::get_customer(&domain.db, &actor, id).await.gql()?;
        }
        if let Some(id) = vendor_id {
            if !actor.manages_vendor(id.get()) {
                return Err(Error::NotFound("vendor")).gql();
            }
            let snapshot = snapshot(ctx).await?;
            catalog::get_vendor(&actor, &snapshot, id).gql()?;
        }
        Ok(events(ctx, actor, move |event| {
            event.kind == EventKind::ProvisioningStatusChanged
                && order_id.is_none_or(|id| event.order_id == Some(id.get()))
                && customer_id.is_none_or(|id| event.customer_id == Some(id.get()))
                && vendor_id.is_none_or(|id| event.vendor_id == Some(id.get()))
        }))
    }

    /// Status changes of one order.
    async fn order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = LiveEvent>> {
        let actor = actor(ctx)?.clone();
        let order_id = parse_id(&order_id, "orderId")?;
        orders::get_order(domain(ctx), &actor, order_id).await.gql()?;
        Ok(events(ctx, actor, move |event| {
            matches!(event.kind, EventKind::OrderPlaced | EventKind::OrderStatusChanged)
                && event.order_id == Some(order_id.get())
        }))
    }

    /// Changes of one customer's subscriptions.
    async fn subscription_changed(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = LiveEvent>> {
        let actor = actor(ctx)?.clone();
        let customer_id = parse_id(&customer_id, "customerId")?;
        customers::get_customer(&domain(ctx).db, &actor, customer_id).await.gql()?;
        Ok(events(ctx, actor, move |event| {
            event.kind == EventKind::SubscriptionChanged && event.customer_id == Some(customer_id.get())
        }))
    }
}
