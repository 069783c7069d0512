//! GraphQL subscriptions: live provisioning, order and subscription status for dashboards.
//!
//! Each stream is scoped exactly like queries: the filter's object must be visible to the
//! caller (NOT_FOUND otherwise), and every event is checked against the caller's tenancy
//! before it is sent, so a reseller never receives another reseller's events.
//!
//! Never lost silently: every event carries its `cursor` (its place in the outbox,
//! increasing in commit order). A stream given `after: <cursor>` first replays what came
//! after it from the outbox, then goes on live, with nothing repeated; a subscriber that falls
//! behind the process's bus is caught up from the outbox the same way. When the outbox no
//! longer keeps what a subscriber missed (`SWITCHYARD_EVENT_RETENTION`), the operation ends
//! with an error whose `extensions.code` is `"EVENTS_LOST"` (an `error` message when it
//! resumed from too old a cursor; a `next` carrying the error, then `complete`, when it fell
//! that far behind while running): reload the state and subscribe again. A client that has
//! seen no event yet takes its starting cursor from the `liveCursor` query.

use std::collections::VecDeque;
use std::sync::Arc;

use async_graphql::{Context, Enum, ErrorExtensions, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tokio::sync::broadcast::error::RecvError;

use crate::domain::catalog::direct::Needed;
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::ids::{CustomerId, OrderId, VendorId};
use crate::domain::scopes::Scope;
use crate::domain::{Actor, Error, catalog, customers, orders, outbox};
use crate::graphql::parse_id;
use crate::graphql::{ResultExt, actor, domain, live, snapshot};

/// What a live event is about.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveEventKind {
    OrderPlaced,
    OrderStatusChanged,
    SubscriptionChanged,
    ProvisioningStatusChanged,
    ReconciliationChanged,
    /// A webhook endpoint was disabled after failing too long.
    WebhookEndpointDisabled,
}

impl From<EventKind> for LiveEventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::OrderPlaced => Self::OrderPlaced,
            EventKind::OrderStatusChanged => Self::OrderStatusChanged,
            EventKind::SubscriptionChanged => Self::SubscriptionChanged,
            EventKind::ProvisioningStatusChanged => Self::ProvisioningStatusChanged,
            EventKind::ReconciliationChanged => Self::ReconciliationChanged,
            EventKind::WebhookEndpointDisabled => Self::WebhookEndpointDisabled,
        }
    }
}

/// One live event.
#[derive(SimpleObject, Clone, Debug)]
pub struct LiveEvent {
    /// Stable id: the same event seen twice (say, after a reconnect) has the same id.
    pub event_id: ID,
    /// Its place in the stream of events, increasing in commit order: give it as `after`
    /// to resume after this event.
    pub cursor: String,
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
            cursor: event.sequence.to_string(),
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

impl From<LiveEventKind> for EventKind {
    fn from(kind: LiveEventKind) -> Self {
        match kind {
            LiveEventKind::OrderPlaced => Self::OrderPlaced,
            LiveEventKind::OrderStatusChanged => Self::OrderStatusChanged,
            LiveEventKind::SubscriptionChanged => Self::SubscriptionChanged,
            LiveEventKind::ProvisioningStatusChanged => Self::ProvisioningStatusChanged,
            LiveEventKind::ReconciliationChanged => Self::ReconciliationChanged,
            LiveEventKind::WebhookEndpointDisabled => Self::WebhookEndpointDisabled,
        }
    }
}

/// What a live stream yields: an event, or the one EVENTS_LOST error that ends it.
pub type Item = async_graphql::Result<LiveEvent>;

/// A subscription field's stream.
type Events = BoxStream<'static, Item>;

/// A stream's position: the last sequence it went past, what it has read from the outbox
/// and not sent yet, and whether it is catching up from the outbox.
struct Position {
    receiver: tokio::sync::broadcast::Receiver<Arc<DomainEvent>>,
    last: i64,
    backlog: VecDeque<Arc<DomainEvent>>,
    catching_up: bool,
    ended: bool,
}

/// The error that ends a stream whose missed events the outbox no longer keeps.
fn events_lost(after: i64, pruned: i64) -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "the events after cursor {after} up to {pruned} are no longer kept: reload the state and subscribe again"
    ))
    .extend_with(|_, e| e.set("code", "EVENTS_LOST"))
}

/// Committed events for `actor` that pass `keep`, as a stream: after `after` (replayed from
/// the outbox), else from now on; a subscriber that lags is caught up from the outbox. A
/// cursor past the outbox's last event is refused (it would skip every event until then).
/// Handed over to the connection when it asked ([`live::HandOver`]), else streamed to the
/// executor as the caller reads each event.
async fn events(
    ctx: &Context<'_>,
    actor: Actor,
    after: Option<String>,
    keep: impl Fn(&DomainEvent) -> bool + Send + Sync + 'static,
) -> async_graphql::Result<Events> {
    let feed = feed(ctx, actor.clone(), after, keep).await?;
    if let Some(hand_over) = ctx.data_opt::<live::HandOver>() {
        if !hand_over.give(feed) {
            return Err(Error::validation("subscription", "select exactly one root field")).gql();
        }
        return Ok(stream::empty().boxed());
    }
    Ok(feed.map(move |item| item.map(|event| live::live_event(&event, &actor))).boxed())
}

/// The feed of [`events`].
async fn feed(
    ctx: &Context<'_>,
    actor: Actor,
    after: Option<String>,
    keep: impl Fn(&DomainEvent) -> bool + Send + Sync + 'static,
) -> async_graphql::Result<live::Feed> {
    let domain = Arc::clone(domain(ctx));
    // Subscribed first, so nothing published from here on is missed.
    let receiver = domain.events.subscribe();
    let (last, catching_up) = match after {
        Some(cursor) => {
            let cursor = cursor.trim().parse::<i64>().ok().filter(|c| *c >= 0);
            let cursor = cursor.ok_or_else(|| Error::validation("after", "is not a cursor")).gql()?;
            if cursor > outbox::last_sequence(&domain.db).await.gql()? {
                return Err(Error::validation("after", "is past the last event")).gql();
            }
            (cursor, true)
        }
        None => (domain.events.published_through(), false),
    };
    let feed = Position { receiver, last, backlog: VecDeque::new(), catching_up, ended: false };
    let keep = Arc::new(keep);
    Ok(stream::unfold(feed, move |mut feed| {
        let (actor, keep, domain) = (actor.clone(), Arc::clone(&keep), Arc::clone(&domain));
        async move {
            loop {
                if feed.ended {
                    return None;
                }
                if let Some(event) = feed.backlog.pop_front() {
                    if let Some(live) = pass(&mut feed, &actor, keep.as_ref(), &event) {
                        return Some((Ok(live), feed));
                    }
                    continue;
                }
                if feed.catching_up {
                    // Boxed: the feed holds the space of its largest wait between events.
                    match Box::pin(catch_up(&domain, &actor, &mut feed)).await {
                        Ok(()) => continue,
                        Err(lost) => {
                            feed.ended = true;
                            return Some((Err(lost), feed));
                        }
                    }
                }
                match feed.receiver.recv().await {
                    Ok(event) => {
                        if let Some(live) = pass(&mut feed, &actor, keep.as_ref(), &event) {
                            return Some((Ok(live), feed));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(
                            missed,
                            after = feed.last,
                            "a live subscriber fell behind; catching up from the outbox"
                        );
                        feed.catching_up = true;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed())
}

/// Moves the feed past `event`; the event to send, if it is new and the caller's.
fn pass(
    feed: &mut Position,
    actor: &Actor,
    keep: &(dyn Fn(&DomainEvent) -> bool + Send + Sync),
    event: &Arc<DomainEvent>,
) -> Option<Arc<DomainEvent>> {
    if event.sequence <= feed.last {
        return None;
    }
    feed.last = event.sequence;
    if !(event.is_visible_to(actor) && keep(event)) {
        return None;
    }
    Some(Arc::clone(event))
}

/// Reads the next page of the caller's events after the feed's position from the outbox;
/// done catching up when there is none. EVENTS_LOST when the outbox was pruned past the
/// position: the horizon is read after the page, so a prune that ran in between is seen.
async fn catch_up(
    domain: &crate::domain::Domain,
    actor: &Actor,
    feed: &mut Position,
) -> Result<(), async_graphql::Error> {
    loop {
        let read = async {
            let page = outbox::since(&domain.db, feed.last, 500, Some(actor)).await?;
            let pruned = outbox::pruned_through(&domain.db).await?;
            Ok::<_, Error>((page, pruned))
        };
        match read.await {
            Ok((_, pruned)) if pruned > feed.last => return Err(events_lost(feed.last, pruned)),
            Ok(((page, None), _)) => {
                debug_assert!(page.is_empty());
                feed.catching_up = false;
                return Ok(());
            }
            Ok(((page, Some(last)), _)) => {
                if page.is_empty() {
                    // Only rows that are not events: read past them.
                    feed.last = last;
                }
                feed.backlog.extend(page.into_iter().map(Arc::new));
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, "a live subscriber cannot read the outbox; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
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
        #[graphql(desc = "Resume after this cursor: what came after it is replayed first.")] after: Option<String>,
    ) -> async_graphql::Result<Events> {
        if let Some(rendering) = live::rendering(ctx) {
            return Ok(rendering);
        }
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
            let snapshot = snapshot(ctx, Needed::Vendors).await?;
            catalog::get_vendor(&actor, &snapshot, id).gql()?;
        }
        events(ctx, actor, after, move |event| {
            event.kind == EventKind::ProvisioningStatusChanged
                && order_id.is_none_or(|id| event.order_id == Some(id.get()))
                && customer_id.is_none_or(|id| event.customer_id == Some(id.get()))
                && vendor_id.is_none_or(|id| event.vendor_id == Some(id.get()))
        })
        .await
    }

    /// Every event the caller may see, as it happens (of `kinds`, if given): the operator
    /// everything; a vendor, reseller or customer what concerns it. A dashboard's feed: it
    /// resumes with `after` set to the last cursor it saw, and misses nothing.
    async fn live_events(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<LiveEventKind>>,
        #[graphql(desc = "Resume after this cursor: what came after it is replayed first.")] after: Option<String>,
    ) -> async_graphql::Result<Events> {
        if let Some(rendering) = live::rendering(ctx) {
            return Ok(rendering);
        }
        let actor = actor(ctx)?.clone();
        actor.require_scope(Scope::SubscriptionsWrite, "following live events").gql()?;
        // An API key gets only the kinds its scopes open (a disabled endpoint's event names
        // its URL: webhooks:manage), and is refused a kind it asks for by name without them.
        for kind in kinds.iter().flatten() {
            actor.require_scope(EventKind::from(*kind).scope_to_receive(), "following these events").gql()?;
        }
        use async_graphql::resolver_utils::EnumType as _;
        let open: Vec<LiveEventKind> = LiveEventKind::items()
            .iter()
            .map(|item| item.value)
            .filter(|kind| actor.require_scope(EventKind::from(*kind).scope_to_receive(), "").is_ok())
            .filter(|kind| kinds.as_ref().is_none_or(|kinds| kinds.contains(kind)))
            .collect();
        events(ctx, actor, after, move |event| open.contains(&LiveEventKind::from(event.kind))).await
    }

    /// Status changes of one order.
    async fn order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        #[graphql(desc = "Resume after this cursor: what came after it is replayed first.")] after: Option<String>,
    ) -> async_graphql::Result<Events> {
        if let Some(rendering) = live::rendering(ctx) {
            return Ok(rendering);
        }
        let actor = actor(ctx)?.clone();
        let order_id = parse_id(&order_id, "orderId")?;
        orders::get_order(domain(ctx), &actor, order_id).await.gql()?;
        events(ctx, actor, after, move |event| {
            matches!(event.kind, EventKind::OrderPlaced | EventKind::OrderStatusChanged)
                && event.order_id == Some(order_id.get())
        })
        .await
    }

    /// Changes of one customer's subscriptions.
    async fn subscription_changed(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        #[graphql(desc = "Resume after this cursor: what came after it is replayed first.")] after: Option<String>,
    ) -> async_graphql::Result<Events> {
        if let Some(rendering) = live::rendering(ctx) {
            return Ok(rendering);
        }
        let actor = actor(ctx)?.clone();
        let customer_id = parse_id(&customer_id, "customerId")?;
        customers::get_customer(&domain(ctx).db, &actor, customer_id).await.gql()?;
        events(ctx, actor, after, move |event| {
            event.kind == EventKind::SubscriptionChanged && event.customer_id == Some(customer_id.get())
        })
        .await
    }
}
