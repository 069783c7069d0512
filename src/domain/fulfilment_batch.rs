//! A worker's batch of purchase jobs, applied to the business in a few set-based statements
//! (#13 item 5): what `fulfilment` does to each job's subscription, order line and order —
//! the same transitions ([`purchase_status`], which both use), change records and events, in
//! the same write — with a handful of statements for the whole batch where one job alone
//! takes six to eight: the subscriptions locked and read in one, updated in one per status
//! they reach, their change records inserted in one, the orders locked in one, the lines
//! updated in one per status, re-read in one and the orders updated in one per status.
//!
//! Rows are locked subscriptions first, then orders, each in id order (a job alone locks
//! its subscription, then its order: no cycle between the two). An order's status is
//! derived from its lines once all of the batch's lines are written, as one job after
//! another in the write would end it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::enums::{JobStatus, OrderLineStatus, OrderStatus, SubscriptionChangeKind, SubscriptionStatus};
use entity::{order, order_line, subscription, subscription_change};
use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};

use super::actor::Actor;
use super::error::{Error, Result};
use super::events::{DomainEvent, EventKind};
use super::lifecycle::{self, Transition, next_status, status_name};
use super::orders::{derive_status, order_status_name};
use super::write::locking;

/// A purchase job's new state, to apply to its subscription, line and order.
#[derive(Debug)]
pub struct Purchase<'a> {
    /// The job.
    pub job: &'a entity::job::Model,
    /// Its subscription.
    pub subscription_id: i64,
    /// Its order, if any.
    pub order_id: Option<i64>,
    /// The job's new status.
    pub status: JobStatus,
    /// The vendor's reference, if the attempt returned one.
    pub reference: Option<String>,
    /// The attempt's error, if any.
    pub error: Option<String>,
}

/// Applies `purchases` (one job of a subscription at most) in `txn` at `now`; the events,
/// each job's in the order a job alone records them, then the orders' changes.
pub async fn apply(
    txn: &DatabaseTransaction,
    purchases: &[Purchase<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>> {
    let ids: Vec<i64> = purchases.iter().map(|p| p.subscription_id).collect();
    let mut subscriptions: HashMap<i64, subscription::Model> = locking(
        subscription::Entity::find().filter(subscription::Column::Id.is_in(ids)).order_by_asc(subscription::Column::Id),
        txn,
    )
    .all(txn)
    .await?
    .into_iter()
    .map(|row| (row.id, row))
    .collect();
    let lines: Vec<(i64, i64, OrderLineStatus)> =
        purchases.iter().filter_map(|p| Some((p.order_id?, p.subscription_id, line_status_for(p.status)?))).collect();
    let order_ids: BTreeSet<i64> = lines.iter().map(|(order, _, _)| *order).collect();
    let orders: BTreeMap<i64, order::Model> = if order_ids.is_empty() {
        BTreeMap::new()
    } else {
        locking(
            order::Entity::find().filter(order::Column::Id.is_in(order_ids.clone())).order_by_asc(order::Column::Id),
            txn,
        )
        .all(txn)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect()
    };
    if orders.len() != order_ids.len() {
        return Err(Error::NotFound("order"));
    }

    let mut events = Vec::with_capacity(purchases.len() * 2);
    // Subscriptions to update, by the status they reach: (id, new reference).
    let mut updates: Groups<SubscriptionStatus, (i64, Option<String>)> = Vec::new();
    let mut changes = Vec::new();
    let system = Actor::system();
    for purchase in purchases {
        let current = subscriptions.get_mut(&purchase.subscription_id).ok_or(Error::NotFound("subscription"))?;
        let before = current.status;
        let after = purchase_status(before, purchase.status);
        if after != before || purchase.reference.is_some() {
            group(&mut updates, after).push((current.id, purchase.reference.clone()));
            current.status = after;
            if let Some(reference) = &purchase.reference {
                current.vendor_reference = Some(reference.clone());
            }
            current.updated_at = now;
            if after != before {
                if let Some(kind) = change_kind(after) {
                    let quantity = (current.quantity, current.quantity);
                    changes.push(lifecycle::change_row(current, &system, kind, quantity, (before, after), None, now));
                }
                events.push(lifecycle::changed_event(current, now));
            }
        }
        events.push(DomainEvent {
            vendor_id: Some(current.vendor_id),
            reseller_id: Some(current.reseller_id),
            customer_id: Some(current.customer_id),
            order_id: purchase.order_id,
            subscription_id: Some(current.id),
            job_id: Some(purchase.job.id),
            quantity: Some(current.quantity),
            detail: purchase.error.clone(),
            ..DomainEvent::new(EventKind::ProvisioningStatusChanged, status_name(after).to_owned(), now)
        });
    }
    for (status, rows) in updates {
        let mut update = subscription::Entity::update_many()
            .col_expr(subscription::Column::Status, Expr::value(sea_orm::ActiveEnum::to_value(&status)))
            .col_expr(subscription::Column::UpdatedAt, Expr::value(now))
            .filter(subscription::Column::Id.is_in(rows.iter().map(|(id, _)| *id)));
        let references: Vec<(i64, String)> =
            rows.into_iter().filter_map(|(id, reference)| Some((id, reference?))).collect();
        if !references.is_empty() {
            let mut reference = CaseStatement::new();
            for (id, new) in references {
                reference = reference.case(subscription::Column::Id.eq(id), Expr::value(new));
            }
            let kept = reference.finally(Expr::col(subscription::Column::VendorReference));
            update = update.col_expr(subscription::Column::VendorReference, kept.into());
        }
        update.exec(txn).await?;
    }
    if !changes.is_empty() {
        subscription_change::Entity::insert_many(changes).exec_without_returning(txn).await?;
    }
    if !lines.is_empty() {
        events.extend(update_lines(txn, &lines, &orders, now).await?);
    }
    Ok(events)
}

/// The status a purchase's subscription in `before` takes when its job becomes `status`.
pub fn purchase_status(before: SubscriptionStatus, status: JobStatus) -> SubscriptionStatus {
    let transition = match status {
        JobStatus::Running if before != SubscriptionStatus::Provisioning => Transition::StartProvisioning,
        JobStatus::Succeeded => Transition::ProvisioningSucceeded,
        JobStatus::Failed | JobStatus::Dead => Transition::ProvisioningFailed,
        _ => return before,
    };
    next_status(before, transition).unwrap_or(before)
}

/// The change a purchase's subscription records on reaching `after` (none on the way, while
/// PROVISIONING).
pub fn change_kind(after: SubscriptionStatus) -> Option<SubscriptionChangeKind> {
    match after {
        SubscriptionStatus::Provisioning => None,
        SubscriptionStatus::Failed => Some(SubscriptionChangeKind::ProvisioningFailed),
        _ => Some(SubscriptionChangeKind::Provisioned),
    }
}

/// Whether a job status means the line is done.
pub fn line_status_for(job: JobStatus) -> Option<OrderLineStatus> {
    match job {
        JobStatus::Running => Some(OrderLineStatus::Provisioning),
        JobStatus::Succeeded => Some(OrderLineStatus::Succeeded),
        JobStatus::Failed | JobStatus::Dead => Some(OrderLineStatus::Failed),
        JobStatus::Queued | JobStatus::Inquire => None,
    }
}

/// Sets each (order, subscription) line to its status and re-derives the orders' statuses
/// (`orders`, locked); the events of the orders whose status changed, in id order.
async fn update_lines(
    txn: &DatabaseTransaction,
    lines: &[(i64, i64, OrderLineStatus)],
    orders: &BTreeMap<i64, order::Model>,
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>> {
    let mut by_status: Groups<OrderLineStatus, (i64, i64)> = Vec::new();
    for (order_id, subscription_id, status) in lines {
        group(&mut by_status, *status).push((*order_id, *subscription_id));
    }
    for (status, pairs) in by_status {
        let which = pairs.into_iter().fold(Condition::any(), |any, (order_id, subscription_id)| {
            any.add(
                Condition::all()
                    .add(order_line::Column::OrderId.eq(order_id))
                    .add(order_line::Column::SubscriptionId.eq(subscription_id)),
            )
        });
        order_line::Entity::update_many()
            .col_expr(order_line::Column::Status, Expr::value(sea_orm::ActiveEnum::to_value(&status)))
            .filter(which)
            .filter(order_line::Column::Status.ne(status))
            .exec(txn)
            .await?;
    }
    let mut statuses: BTreeMap<i64, Vec<OrderLineStatus>> = BTreeMap::new();
    for line in order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(orders.keys().copied()))
        .order_by_asc(order_line::Column::OrderId)
        .order_by_asc(order_line::Column::LineNumber)
        .all(txn)
        .await?
    {
        statuses.entry(line.order_id).or_default().push(line.status);
    }
    let mut changed: Groups<OrderStatus, i64> = Vec::new();
    let mut events = Vec::new();
    for (id, order) in orders {
        let derived = derive_status(statuses.get(id).map(Vec::as_slice).unwrap_or_default());
        if derived == order.status {
            continue;
        }
        group(&mut changed, derived).push(*id);
        events.push(DomainEvent {
            reseller_id: Some(order.reseller_id),
            customer_id: Some(order.customer_id),
            order_id: Some(*id),
            ..DomainEvent::new(EventKind::OrderStatusChanged, order_status_name(derived), now)
        });
    }
    for (status, ids) in changed {
        order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(sea_orm::ActiveEnum::to_value(&status)))
            .col_expr(order::Column::UpdatedAt, Expr::value(now))
            .filter(order::Column::Id.is_in(ids))
            .exec(txn)
            .await?;
    }
    Ok(events)
}

/// Values grouped by a key, in the order the keys came (the statuses have no order).
type Groups<K, V> = Vec<(K, Vec<V>)>;

/// The values grouped under `key` (a group made for it if there is none yet).
fn group<K: PartialEq, V>(groups: &mut Groups<K, V>, key: K) -> &mut Vec<V> {
    let index = match groups.iter().position(|(k, _)| *k == key) {
        Some(index) => index,
        None => {
            groups.push((key, Vec::new()));
            groups.len() - 1
        }
    };
    &mut groups[index].1
}
