//! The subscription lifecycle: quantity changes, suspend/resume, cancel, auto-renew, and
//! the renewal step at term end — each recorded in the change history billing prorates
//! from, and each change that touches the vendor enqueued as a provisioning job in the same
//! transaction.
//!
//! The 168 h rules are measured with the domain clock: seats may be removed only from
//! batches added within the last 168 h (each batch has its own window; the newest go
//! first), and a subscription may be cancelled only within 168 h of its purchase or last
//! renewal. A change made exactly 168 h after is still inside; one second later is not.

use crate::domain::Tenant;
use crate::domain::ids::{CustomerId, OrderId, SubscriptionId};
use crate::domain::write::{Audit, Write};
use chrono::{DateTime, Utc};
use entity::enums::{ProvisioningAction, Role, SeatBatchSource, SubscriptionChangeKind, SubscriptionStatus};
use entity::{DbDecimal, customer_vendor_account, offer, seat_batch, subscription, subscription_change};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Select,
    Set,
};
use serde_json::json;

use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result};
use super::events::{DomainEvent, EventKind};
use super::jobs::{self, NewJob};
use super::lifecycle::{Transition, next_status};
use super::lifecycle::{add_seat_batch, change_window, changed_event, record_change, renewed_term_end};
use super::pagination::{Page, PageRequest, fetch_page};

/// Microsoft refuses updates to a subscription changed more than this many times.
pub const UPDATE_LIMIT: i32 = 1200;

/// The subscriptions `actor` may see.
fn scoped(actor: &Actor) -> Select<subscription::Entity> {
    let find = subscription::Entity::find();
    match actor.tenant {
        Tenant::Operator => find,
        Tenant::Vendor(vendor) => find.filter(subscription::Column::VendorId.eq(vendor)),
        Tenant::Reseller(reseller) => find.filter(subscription::Column::ResellerId.eq(reseller)),
        Tenant::Customer(customer) => find.filter(subscription::Column::CustomerId.eq(customer)),
    }
}

/// A subscription the caller may see, else NotFound.
pub async fn get_subscription<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    id: SubscriptionId,
) -> Result<subscription::Model> {
    scoped(actor).filter(subscription::Column::Id.eq(id)).one(db).await?.ok_or(Error::NotFound("subscription"))
}

/// Filters for the subscription list.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionFilter {
    /// Only this customer's.
    pub customer_id: Option<CustomerId>,
    /// Only this order's.
    pub order_id: Option<OrderId>,
    /// Only this status.
    pub status: Option<SubscriptionStatus>,
    /// Only those out of sync with the vendor (or only those in sync).
    pub out_of_sync: Option<bool>,
}

/// A page of the subscriptions the caller may see.
pub async fn list_subscriptions(
    domain: &Domain,
    actor: &Actor,
    filter: &SubscriptionFilter,
    page: PageRequest,
) -> Result<Page<subscription::Model>> {
    let mut select = scoped(actor);
    if let Some(id) = filter.customer_id {
        select = select.filter(subscription::Column::CustomerId.eq(id));
    }
    if let Some(id) = filter.order_id {
        select = select.filter(subscription::Column::OrderId.eq(id));
    }
    if let Some(status) = filter.status {
        select = select.filter(subscription::Column::Status.eq(status));
    }
    match filter.out_of_sync {
        Some(true) => select = select.filter(subscription::Column::SyncIssue.is_not_null()),
        Some(false) => select = select.filter(subscription::Column::SyncIssue.is_null()),
        None => {}
    }
    fetch_page(&domain.db, select, subscription::Column::Id, page).await
}

/// Subscriptions of the given orders (for DataLoaders; orders were scoped already).
pub async fn subscriptions_by_ids(domain: &Domain, actor: &Actor, ids: &[i64]) -> Result<Vec<subscription::Model>> {
    Ok(scoped(actor).filter(subscription::Column::Id.is_in(ids.iter().copied())).all(&domain.db).await?)
}

/// A lifecycle change a caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Set the seat count.
    Quantity(i32),
    /// Suspend.
    Suspend,
    /// Resume.
    Resume,
    /// Cancel.
    Cancel,
    /// Turn auto-renew on or off.
    AutoRenew(bool),
}

/// The result of a lifecycle change.
#[derive(Clone, Debug)]
pub struct Changed {
    /// The subscription after the change.
    pub subscription: subscription::Model,
    /// Whether this replayed an earlier call with the same idempotency key.
    pub replayed: bool,
    /// Warnings for the caller (the vendor's update limit approaching, say).
    pub warnings: Vec<String>,
    /// Its customer and its history as the change left them, read before the commit: the
    /// answer shows them without reading the database again.
    pub shown: Shown,
}

/// What an answer about a subscription shows besides its row, read in the same transaction.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The subscription's customer, its reseller and its vendor accounts.
    pub customer: super::customers::CustomerShown,
    /// Every recorded change, oldest first.
    pub history: Vec<subscription_change::Model>,
}

impl Shown {
    /// Reads what an answer about `subscription` shows, through `db`.
    pub async fn read<C: ConnectionTrait>(db: &C, subscription: &subscription::Model) -> Result<Self> {
        let customer = super::customers::CustomerShown::read(db, subscription.customer_id).await?;
        let history = subscription_change::Entity::find()
            .filter(subscription_change::Column::SubscriptionId.eq(subscription.id))
            .order_by_asc(subscription_change::Column::Id)
            .all(db)
            .await?;
        Ok(Self { customer, history })
    }
}

/// Applies `change` to a subscription the caller may manage, idempotently per key.
pub async fn change_subscription(
    domain: &Domain,
    actor: &Actor,
    id: SubscriptionId,
    change: Change,
    idempotency_key: &str,
) -> Result<Changed> {
    actor.require_role(&[Role::Operator, Role::Reseller, Role::Customer])?;
    let key = super::validate::text(idempotency_key, 255, "idempotencyKey")?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    // Locked: a concurrent change of the same subscription waits and starts from this one's.
    let current = super::write::locking(scoped(actor).filter(subscription::Column::Id.eq(id)), w.db())
        .one(w.db())
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    let previous = subscription_change::Entity::find()
        .filter(subscription_change::Column::SubscriptionId.eq(id))
        .filter(subscription_change::Column::IdempotencyKey.eq(key.clone()))
        .one(w.db())
        .await?;
    if previous.is_some() {
        let shown = Shown::read(w.db(), &current).await?;
        w.rollback().await;
        return Ok(Changed { subscription: current, replayed: true, warnings: Vec::new(), shown });
    }
    if current.update_count >= UPDATE_LIMIT {
        return Err(Error::InvalidTransition(format!(
            "the subscription has been updated {} times; the vendor refuses more than {UPDATE_LIMIT}",
            current.update_count
        )));
    }
    let (kind, updated, action, taken) = apply(w.db(), &current, change, now).await?;
    let recorded = record_change(
        w.db(),
        &updated,
        actor,
        kind,
        (current.quantity, updated.quantity),
        (current.status, updated.status),
        Some(key),
        now,
    )
    .await?;
    let mut events = vec![changed_event(&updated, now)];
    if let Some(action) = action {
        let job = enqueue_change(&mut w, &updated, action).await?;
        super::vendor_sync::sent_as(w.db(), recorded, &job, taken).await?;
        events.push(DomainEvent {
            vendor_id: Some(updated.vendor_id),
            reseller_id: Some(updated.reseller_id),
            customer_id: Some(updated.customer_id),
            subscription_id: Some(updated.id),
            job_id: Some(job.id),
            quantity: Some(updated.quantity),
            ..DomainEvent::new(EventKind::ProvisioningStatusChanged, "QUEUED", now)
        });
    }
    w.emit_all(events).await?;
    let shown = Shown::read(w.db(), &updated).await?;
    w.commit(Audit::action(
        actor,
        change_action_name(change),
        "subscription",
        id,
        json!({"quantity": updated.quantity}),
    ))
    .await?;
    let mut warnings = Vec::new();
    if updated.update_count >= UPDATE_LIMIT - 100 {
        warnings.push(format!(
            "this subscription has been updated {} times; the vendor refuses updates after {UPDATE_LIMIT}",
            updated.update_count
        ));
        tracing::warn!(
            subscription = id.get(),
            updates = updated.update_count,
            "subscription near the vendor's update limit"
        );
    }
    Ok(Changed { subscription: updated, replayed: false, warnings, shown })
}

fn change_action_name(change: Change) -> &'static str {
    match change {
        Change::Quantity(_) => "changeSubscriptionQuantity",
        Change::Suspend => "suspendSubscription",
        Change::Resume => "resumeSubscription",
        Change::Cancel => "cancelSubscription",
        Change::AutoRenew(_) => "setAutoRenew",
    }
}

/// What one change did: its history kind, the updated row, the vendor action to enqueue (if
/// any) and, for a decrease, the seats it took from each batch.
type Applied = (SubscriptionChangeKind, subscription::Model, Option<ProvisioningAction>, Vec<(i64, i32)>);

/// Checks and applies one change.
async fn apply(
    txn: &DatabaseTransaction,
    current: &subscription::Model,
    change: Change,
    now: DateTime<Utc>,
) -> Result<Applied> {
    let mut model: subscription::ActiveModel = current.clone().into();
    let mut taken = Vec::new();
    let (kind, action) = match change {
        Change::Quantity(quantity) => {
            next_status(current.status, Transition::ChangeQuantity)?;
            let offer = offer::Entity::find_by_id(current.offer_id).one(txn).await?.ok_or(Error::NotFound("offer"))?;
            let max = offer.max_quantity.min(super::money::MAX_QUANTITY);
            if quantity < offer.min_quantity.max(1) || quantity > max {
                return Err(Error::validation(
                    "quantity",
                    format!("must be between {} and {max}", offer.min_quantity.max(1)),
                ));
            }
            if quantity == current.quantity {
                return Err(Error::validation("quantity", "is the current quantity"));
            }
            model.quantity = Set(quantity);
            if quantity > current.quantity {
                add_seat_batch(txn, current.id, SeatBatchSource::Increase, quantity - current.quantity, now).await?;
                (SubscriptionChangeKind::QuantityIncrease, Some(ProvisioningAction::ChangeQuantity))
            } else {
                taken = remove_seats(txn, current.id, current.quantity - quantity, now).await?;
                (SubscriptionChangeKind::QuantityDecrease, Some(ProvisioningAction::ChangeQuantity))
            }
        }
        Change::Suspend => {
            model.status = Set(next_status(current.status, Transition::Suspend)?);
            (SubscriptionChangeKind::Suspend, Some(ProvisioningAction::Suspend))
        }
        Change::Resume => {
            model.status = Set(next_status(current.status, Transition::Resume)?);
            (SubscriptionChangeKind::Resume, Some(ProvisioningAction::Resume))
        }
        Change::Cancel => {
            let status = next_status(current.status, Transition::Cancel)?;
            let window_end = current.term_start.unwrap_or(current.created_at) + change_window();
            if now > window_end {
                return Err(Error::InvalidTransition(format!(
                    "cancellation is only possible within 168 hours of purchase or renewal (until {window_end})"
                )));
            }
            model.status = Set(status);
            (SubscriptionChangeKind::Cancel, Some(ProvisioningAction::Cancel))
        }
        Change::AutoRenew(on) => {
            next_status(current.status, Transition::SetAutoRenew)?;
            model.auto_renew = Set(on);
            (SubscriptionChangeKind::AutoRenewChanged, None)
        }
    };
    model.update_count = Set(current.update_count + 1);
    model.version = Set(current.version + 1);
    model.updated_at = Set(now);
    Ok((kind, model.update(txn).await?, action, taken))
}

/// Removes `count` seats from batches still inside their window, newest first; refuses
/// when fewer removable seats remain. Returns the seats taken from each batch.
async fn remove_seats(
    txn: &DatabaseTransaction,
    subscription_id: i64,
    count: i32,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, i32)>> {
    let batches = seat_batch::Entity::find()
        .filter(seat_batch::Column::SubscriptionId.eq(subscription_id))
        .filter(seat_batch::Column::Remaining.gt(0))
        .order_by_desc(seat_batch::Column::AddedAt)
        .order_by_desc(seat_batch::Column::Id)
        .all(txn)
        .await?;
    let open: Vec<_> = batches.into_iter().filter(|b| now <= b.window_ends_at).collect();
    let removable: i32 = open.iter().map(|b| b.remaining).sum();
    if removable < count {
        return Err(Error::InvalidTransition(format!(
            "only {removable} seat(s) were added within the last 168 hours and can be removed; {count} asked"
        )));
    }
    let mut left = count;
    let mut taken = Vec::new();
    for batch in open {
        if left == 0 {
            break;
        }
        let take = left.min(batch.remaining);
        left -= take;
        taken.push((batch.id, take));
        let remaining = batch.remaining - take;
        let mut model: seat_batch::ActiveModel = batch.into();
        model.remaining = Set(remaining);
        model.update(txn).await?;
    }
    Ok(taken)
}

async fn enqueue_change(
    w: &mut Write<'_>,
    subscription: &subscription::Model,
    action: ProvisioningAction,
) -> Result<entity::job::Model> {
    let external_id = customer_vendor_account::Entity::find()
        .filter(customer_vendor_account::Column::CustomerId.eq(subscription.customer_id))
        .filter(customer_vendor_account::Column::VendorId.eq(subscription.vendor_id))
        .one(w.db())
        .await?
        .map(|a| a.external_id);
    let payload = json!({"vendorReference": subscription.vendor_reference, "quantity": subscription.quantity,
                         "customerExternalId": external_id});
    jobs::enqueue(w, NewJob::provisioning(subscription, action, payload)).await
}

/// Renews or expires every subscription whose term has ended by now: auto-renew ones get a
/// new term at the prices in force now, new 168 h windows and a RENEW job; the rest expire.
/// Returns how many were renewed and expired.
pub async fn renew_due(domain: &Domain) -> Result<(usize, usize)> {
    let now = domain.clock.now();
    let due = subscription::Entity::find()
        .filter(subscription::Column::Status.is_in([SubscriptionStatus::Active, SubscriptionStatus::Suspended]))
        .filter(subscription::Column::TermEnd.lte(now))
        .all(&domain.db)
        .await?;
    let (mut renewed, mut expired) = (0, 0);
    for subscription in due {
        match renew_one(domain, subscription.id, now).await? {
            Some(true) => renewed += 1,
            Some(false) => expired += 1,
            None => {}
        }
    }
    Ok((renewed, expired))
}

/// Renews (`Some(true)`) or expires (`Some(false)`) one subscription whose term has ended;
/// `None` when another process got there first. The row is locked, so two schedulers
/// never renew one term twice.
async fn renew_one(domain: &Domain, id: i64, now: DateTime<Utc>) -> Result<Option<bool>> {
    let system = Actor::system();
    let mut w = Write::begin(domain).await?;
    let Some(current) = super::write::locking(subscription::Entity::find_by_id(id), w.db()).one(w.db()).await? else {
        w.rollback().await;
        return Ok(None);
    };
    let still_due = matches!(current.status, SubscriptionStatus::Active | SubscriptionStatus::Suspended);
    let Some(ended) = current.term_end.filter(|end| *end <= now && still_due) else {
        w.rollback().await;
        return Ok(None);
    };
    let mut model: subscription::ActiveModel = current.clone().into();
    let mut events = Vec::new();
    let renewed = current.auto_renew;
    if renewed {
        next_status(current.status, Transition::Renew)?;
        let prices = renewal_prices(domain, &current, ended).await?;
        model.term_start = Set(Some(ended));
        // The first term started when the subscription was created: its day of month anchors every renewal.
        model.term_end = Set(Some(renewed_term_end(current.term, ended, current.created_at)));
        if let Some((cost, wholesale, retail)) = prices {
            model.unit_cost = Set(DbDecimal(cost));
            model.unit_wholesale = Set(DbDecimal(wholesale));
            model.unit_retail = Set(DbDecimal(retail));
        }
        model.prices_locked_at = Set(ended);
    } else {
        model.status = Set(next_status(current.status, Transition::Expire)?);
    }
    model.update_count = Set(current.update_count + 1);
    model.version = Set(current.version + 1);
    model.updated_at = Set(now);
    let updated = model.update(w.db()).await?;
    let kind = if renewed { SubscriptionChangeKind::Renew } else { SubscriptionChangeKind::Expire };
    let recorded = record_change(
        w.db(),
        &updated,
        &system,
        kind,
        (current.quantity, updated.quantity),
        (current.status, updated.status),
        None,
        now,
    )
    .await?;
    if renewed {
        seat_batch::Entity::update_many()
            .col_expr(seat_batch::Column::Remaining, sea_orm::sea_query::Expr::value(0))
            .filter(seat_batch::Column::SubscriptionId.eq(id))
            .exec(w.db())
            .await?;
        add_seat_batch(w.db(), id, SeatBatchSource::Renewal, updated.quantity, ended).await?;
        let job = enqueue_change(&mut w, &updated, ProvisioningAction::Renew).await?;
        super::vendor_sync::sent_as(w.db(), recorded, &job, Vec::new()).await?;
    }
    events.push(changed_event(&updated, now));
    w.emit_all(events).await?;
    w.commit(Audit::Bookkeeping(
        "the scheduler renews or expires at term end; the subscription's change history records it",
    ))
    .await?;
    Ok(Some(renewed))
}

/// The prices in force at `at` for a subscription's offer, customer currency and reseller.
async fn renewal_prices(
    domain: &Domain,
    subscription: &subscription::Model,
    at: DateTime<Utc>,
) -> Result<Option<(rust_decimal::Decimal, rust_decimal::Decimal, rust_decimal::Decimal)>> {
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    let Some(pricing) = domain.catalog.reseller_pricing(&domain.db, subscription.reseller_id).await? else {
        return Ok(None);
    };
    let Some(offer) = snapshot.offers.get(&subscription.offer_id) else { return Ok(None) };
    let points: Vec<_> = snapshot
        .price_points
        .get(&offer.id)
        .into_iter()
        .flatten()
        .filter(|p| p.currency == subscription.currency)
        .collect();
    let Some(point) = super::pricing::in_force(&points, at) else { return Ok(None) };
    let (wholesale, retail) = super::catalog::resolve_reseller_prices(&snapshot, offer, point, &pricing, at);
    Ok(Some((point.cost.0, wholesale, retail)))
}

/// The change histories of subscriptions the caller may see, oldest change first.
pub async fn histories(domain: &Domain, subscription_ids: &[i64]) -> Result<Vec<subscription_change::Model>> {
    Ok(subscription_change::Entity::find()
        .filter(subscription_change::Column::SubscriptionId.is_in(subscription_ids.iter().copied()))
        .order_by_asc(subscription_change::Column::Id)
        .all(&domain.db)
        .await?)
}
