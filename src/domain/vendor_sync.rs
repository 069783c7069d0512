//! Local state follows what the vendor did. A change that needs a vendor call is PENDING
//! until its job ends, then:
//! - DONE: nothing more to do;
//! - REFUSED (the vendor said no): the subscription goes back to what the vendor has — its
//!   quantity, its status, its seats' 168 h windows; a refused renewal expires it at the term
//!   the vendor kept — and the change is never billed (what billing reads is
//!   [`as_the_vendor_has_it`]);
//! - UNCONFIRMED (every attempt ended without an answer): nobody knows what the vendor did.
//!   The subscription keeps the change as its intent, is out of sync (`sync_issue`, listed
//!   for operators) and billing holds the change back until an operator's retry confirms it
//!   (DONE) or is refused, or the operator abandons the job (REFUSED).

use chrono::{DateTime, Utc};
use entity::enums::{
    ProvisioningAction, SeatBatchSource, SubscriptionChangeKind as K, SubscriptionStatus as S, VendorOutcome,
};
use entity::{job, seat_batch, subscription, subscription_change};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set};

use super::actor::Actor;
use super::error::{Error, Result};
use super::lifecycle::{record_change, renewed_term_end};

/// A subscription's history as the vendor has it.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorView {
    /// The changes the vendor made (or that need no vendor), in order; each one's "before"
    /// re-based on the change before it here, so a change made on top of a refused one
    /// counts from what the vendor had.
    pub history: Vec<subscription_change::Model>,
    /// Whether changes were held back (one still pending or unconfirmed, and all after it).
    pub held: bool,
    /// The quantity and status after the last change here (None without any).
    pub state: Option<(i32, S)>,
}

/// Whether a change of this kind sets the quantity (the others carry it over).
fn sets_quantity(kind: K) -> bool {
    matches!(kind, K::Purchase | K::QuantityIncrease | K::QuantityDecrease)
}

/// Whether a change of this kind sets the status (the others carry it over).
fn sets_status(kind: K) -> bool {
    matches!(
        kind,
        K::Purchase | K::Provisioned | K::ProvisioningFailed | K::Suspend | K::Resume | K::Cancel | K::Expire
    )
}

/// The history as the vendor has it: refused changes left out and the rest re-based; with
/// `hold`, everything from the first change still pending or unconfirmed is left out too
/// (billing bills only what the vendor did). Quantities are absolute on the wire, so a
/// quantity change re-based becomes an increase or a decrease by what it does to the
/// vendor's count, and disappears if it does nothing.
pub fn as_the_vendor_has_it(history: &[subscription_change::Model], hold: bool) -> VendorView {
    let mut view = VendorView { history: Vec::with_capacity(history.len()), held: false, state: None };
    for change in history {
        match change.vendor_outcome {
            Some(VendorOutcome::Refused) => continue,
            Some(VendorOutcome::Pending | VendorOutcome::Unconfirmed) if hold => {
                view.held = true;
                break;
            }
            _ => {}
        }
        let mut change = change.clone();
        if let Some((quantity, status)) = view.state {
            change.quantity_before = quantity;
            change.status_before = status;
            if !sets_quantity(change.kind) {
                change.quantity_after = quantity;
            }
            if !sets_status(change.kind) {
                change.status_after = status;
            }
            if matches!(change.kind, K::QuantityIncrease | K::QuantityDecrease) {
                change.kind = match change.quantity_after.cmp(&quantity) {
                    std::cmp::Ordering::Greater => K::QuantityIncrease,
                    std::cmp::Ordering::Less => K::QuantityDecrease,
                    std::cmp::Ordering::Equal => continue,
                };
            }
        }
        view.state = Some((change.quantity_after, change.status_after));
        view.history.push(change);
    }
    view
}

/// A subscription's whole history, in the order billing reads it.
async fn history_of(txn: &DatabaseTransaction, subscription_id: i64) -> Result<Vec<subscription_change::Model>> {
    Ok(subscription_change::Entity::find()
        .filter(subscription_change::Column::SubscriptionId.eq(subscription_id))
        .order_by_asc(subscription_change::Column::OccurredAt)
        .order_by_asc(subscription_change::Column::Id)
        .all(txn)
        .await?)
}

/// Notes that `change` was sent to the vendor as `job`: PENDING until the job ends; and for
/// a decrease, the seats it took from each batch (`[[batch id, seats], …]`), so a refusal
/// gives back exactly those.
pub async fn sent_as(
    txn: &DatabaseTransaction,
    change: subscription_change::Model,
    job: &job::Model,
    seats_taken: Vec<(i64, i32)>,
) -> Result<()> {
    let mut model: subscription_change::ActiveModel = change.into();
    model.job_id = Set(Some(job.id));
    model.vendor_outcome = Set(Some(VendorOutcome::Pending));
    if !seats_taken.is_empty() {
        model.seats_taken = Set(Some(serde_json::json!(seats_taken)));
    }
    model.update(txn).await?;
    Ok(())
}

/// The change a job was sent for, if it was sent for one.
async fn change_of(txn: &DatabaseTransaction, job_id: i64) -> Result<Option<subscription_change::Model>> {
    Ok(subscription_change::Entity::find().filter(subscription_change::Column::JobId.eq(job_id)).one(txn).await?)
}

async fn set_outcome(
    txn: &DatabaseTransaction,
    change: &subscription_change::Model,
    outcome: VendorOutcome,
) -> Result<()> {
    subscription_change::Entity::update_many()
        .col_expr(subscription_change::Column::VendorOutcome, Expr::value(outcome))
        .filter(subscription_change::Column::Id.eq(change.id))
        .exec(txn)
        .await?;
    Ok(())
}

/// What a change job's end does to its subscription (`current`, locked by the caller):
/// the updated row when it changed.
pub async fn job_ended(
    txn: &DatabaseTransaction,
    current: &subscription::Model,
    job: &job::Model,
    outcome: VendorOutcome,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<subscription::Model>> {
    let Some(change) = change_of(txn, job.id).await? else { return Ok(None) };
    if change.vendor_outcome == Some(outcome) || change.vendor_outcome == Some(VendorOutcome::Refused) {
        return Ok(None);
    }
    match outcome {
        VendorOutcome::Refused => refuse(txn, current, &change, now).await.map(Some),
        VendorOutcome::Unconfirmed => {
            set_outcome(txn, &change, outcome).await?;
            let action = match job.action {
                Some(ProvisioningAction::ChangeQuantity) => "quantity change",
                Some(ProvisioningAction::Suspend) => "suspension",
                Some(ProvisioningAction::Resume) => "resumption",
                Some(ProvisioningAction::Cancel) => "cancellation",
                Some(ProvisioningAction::Renew) => "renewal",
                Some(ProvisioningAction::Purchase) | None => "change",
            };
            let issue = format!(
                "the vendor never confirmed the {action} of job {} after {} attempt(s): {}",
                job.id,
                job.attempts,
                error.unwrap_or("no answer")
            );
            let mut model: subscription::ActiveModel = current.clone().into();
            model.sync_issue = Set(Some(issue));
            model.updated_at = Set(now);
            Ok(Some(model.update(txn).await?))
        }
        VendorOutcome::Done | VendorOutcome::Pending => {
            set_outcome(txn, &change, outcome).await?;
            if outcome == VendorOutcome::Done && current.sync_issue.is_some() {
                return in_sync_unless_unconfirmed(txn, current.id, current.clone().into(), now).await.map(Some);
            }
            Ok(None)
        }
    }
}

/// Clears the subscription's sync issue unless a change is still unconfirmed; billing plans
/// it again (held changes may be billable now).
async fn in_sync_unless_unconfirmed(
    txn: &DatabaseTransaction,
    id: i64,
    mut model: subscription::ActiveModel,
    now: DateTime<Utc>,
) -> Result<subscription::Model> {
    let unconfirmed = subscription_change::Entity::find()
        .filter(subscription_change::Column::SubscriptionId.eq(id))
        .filter(subscription_change::Column::VendorOutcome.eq(VendorOutcome::Unconfirmed))
        .one(txn)
        .await?;
    if unconfirmed.is_none() {
        model.sync_issue = Set(None);
    }
    model.billing_settled = Set(false);
    model.updated_at = Set(now);
    Ok(model.update(txn).await?)
}

/// An operator's retry of a change job: a refused change was reverted and cannot be sent
/// again (it would be made behind everyone's back); an unconfirmed one is PENDING again.
pub async fn retried(txn: &DatabaseTransaction, job: &job::Model) -> Result<()> {
    let Some(change) = change_of(txn, job.id).await? else { return Ok(()) };
    match change.vendor_outcome {
        Some(VendorOutcome::Refused) => Err(Error::InvalidTransition(
            "the vendor refused this change and it was reverted; make the change again instead".into(),
        )),
        Some(VendorOutcome::Unconfirmed) => set_outcome(txn, &change, VendorOutcome::Pending).await,
        _ => Ok(()),
    }
}

/// An operator declares that the vendor did not make an unconfirmed change: it is refused.
/// Not a renewal that later renewals followed (the vendor renewed those, so it renewed this).
pub async fn abandoned(
    txn: &DatabaseTransaction,
    current: &subscription::Model,
    job: &job::Model,
    now: DateTime<Utc>,
) -> Result<subscription::Model> {
    match change_of(txn, job.id).await? {
        Some(change) if change.vendor_outcome == Some(VendorOutcome::Unconfirmed) => {
            if change.kind == K::Renew {
                let later = subscription_change::Entity::find()
                    .filter(subscription_change::Column::SubscriptionId.eq(current.id))
                    .filter(subscription_change::Column::Kind.eq(K::Renew))
                    .filter(subscription_change::Column::Id.gt(change.id))
                    .one(txn)
                    .await?;
                if later.is_some() {
                    return Err(Error::InvalidTransition(
                        "a later renewal followed this one, so the vendor renewed it: retry it instead".into(),
                    ));
                }
            }
            refuse(txn, current, &change, now).await
        }
        _ => Err(Error::InvalidTransition("only a change the vendor never confirmed can be abandoned".into())),
    }
}

/// A retried quantity change now sends the count a later change set: the change it was made
/// for, never confirmed, is superseded and billed as never made (the later change, which
/// sets an absolute count, defines the subscription).
pub async fn superseded(txn: &DatabaseTransaction, job: &job::Model, now: DateTime<Utc>) -> Result<()> {
    let Some(change) = change_of(txn, job.id).await? else { return Ok(()) };
    set_outcome(txn, &change, VendorOutcome::Refused).await?;
    let current = subscription::Entity::find_by_id(change.subscription_id)
        .one(txn)
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    in_sync_unless_unconfirmed(txn, current.id, current.into(), now).await?;
    Ok(())
}

/// The vendor did not make `change`: the subscription goes back to what it has.
async fn refuse(
    txn: &DatabaseTransaction,
    current: &subscription::Model,
    change: &subscription_change::Model,
    now: DateTime<Utc>,
) -> Result<subscription::Model> {
    set_outcome(txn, change, VendorOutcome::Refused).await?;
    let history = history_of(txn, current.id).await?;
    let view = as_the_vendor_has_it(&history, false);
    let (quantity, status) = view.state.unwrap_or((current.quantity, current.status));
    let mut model: subscription::ActiveModel = current.clone().into();
    let mut kind = K::Reverted;
    let mut after = (quantity, status);
    // What the vendor has confirmed (a cancel queued behind a refused renewal has not been).
    let confirmed = as_the_vendor_has_it(&history, true).state.map(|(_, status)| status);
    match change.kind {
        K::QuantityIncrease => close_added_seats(txn, current.id, change).await?,
        K::QuantityDecrease => restore_removed_seats(txn, current.id, change).await?,
        // The vendor did not renew: the subscription ended with the term it kept.
        K::Renew if matches!(confirmed, Some(S::Active | S::Suspended)) => {
            kind = K::Expire;
            after.1 = S::Expired;
            if let Some(ended) = current.term_start {
                model.term_end = Set(Some(ended));
                let start = previous_term_start(current, ended);
                model.term_start = Set(Some(start));
                // The kept term's prices were locked when it began.
                model.prices_locked_at = Set(start);
            }
            let kept = view.history.iter().rev().find(|c| matches!(c.kind, K::Purchase | K::Renew));
            if let Some((cost, wholesale, retail)) =
                kept.and_then(|c| Some((c.unit_cost?, c.unit_wholesale?, c.unit_retail?)))
            {
                model.unit_cost = Set(cost);
                model.unit_wholesale = Set(wholesale);
                model.unit_retail = Set(retail);
            }
        }
        _ => {}
    }
    model.quantity = Set(after.0);
    model.status = Set(after.1);
    model.version = Set(current.version + 1);
    let updated = in_sync_unless_unconfirmed(txn, current.id, model, now).await?;
    record_change(
        txn,
        &updated,
        &Actor::system(),
        kind,
        (current.quantity, after.0),
        (current.status, after.1),
        None,
        now,
    )
    .await?;
    Ok(updated)
}

/// The start of the term that ends at `end`, counted from the subscription's anchor.
fn previous_term_start(subscription: &subscription::Model, end: DateTime<Utc>) -> DateTime<Utc> {
    let anchor = subscription.created_at;
    let mut start = anchor;
    for _ in 0..10_000 {
        let next = renewed_term_end(subscription.term, start, anchor);
        if next >= end || next <= start {
            break;
        }
        start = next;
    }
    start
}

/// The seats a refused increase would have added never existed: none can be removed, nor
/// be given back to the batch by another change's refusal.
async fn close_added_seats(
    txn: &DatabaseTransaction,
    subscription_id: i64,
    change: &subscription_change::Model,
) -> Result<()> {
    seat_batch::Entity::update_many()
        .col_expr(seat_batch::Column::Remaining, Expr::value(0))
        .col_expr(seat_batch::Column::Quantity, Expr::value(0))
        .filter(seat_batch::Column::SubscriptionId.eq(subscription_id))
        .filter(seat_batch::Column::Source.eq(SeatBatchSource::Increase))
        .filter(seat_batch::Column::AddedAt.eq(change.occurred_at))
        .exec(txn)
        .await?;
    Ok(())
}

/// The seats a refused decrease took are back in the batches it took them from, so they
/// stay removable within their own windows. (A decrease recorded before the takes were
/// kept gives them back newest first, the order they are taken in.)
async fn restore_removed_seats(
    txn: &DatabaseTransaction,
    subscription_id: i64,
    change: &subscription_change::Model,
) -> Result<()> {
    let taken: Option<Vec<(i64, i32)>> = change.seats_taken.clone().and_then(|v| serde_json::from_value(v).ok());
    if let Some(taken) = taken {
        for (batch, seats) in taken {
            seat_batch::Entity::update_many()
                .col_expr(seat_batch::Column::Remaining, Expr::col(seat_batch::Column::Remaining).add(seats))
                .filter(seat_batch::Column::Id.eq(batch))
                .filter(seat_batch::Column::SubscriptionId.eq(subscription_id))
                .filter(
                    Expr::col(seat_batch::Column::Remaining).add(seats).lte(Expr::col(seat_batch::Column::Quantity)),
                )
                .exec(txn)
                .await?;
        }
        return Ok(());
    }
    let mut count = change.quantity_before - change.quantity_after;
    let batches = seat_batch::Entity::find()
        .filter(seat_batch::Column::SubscriptionId.eq(subscription_id))
        .filter(Expr::col(seat_batch::Column::Remaining).lt(Expr::col(seat_batch::Column::Quantity)))
        .order_by_desc(seat_batch::Column::AddedAt)
        .order_by_desc(seat_batch::Column::Id)
        .all(txn)
        .await?;
    for batch in batches {
        if count <= 0 {
            break;
        }
        let back = Ord::min(count, batch.quantity - batch.remaining);
        count -= back;
        let remaining = batch.remaining + back;
        let mut model: seat_batch::ActiveModel = batch.into();
        model.remaining = Set(remaining);
        model.update(txn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::enums::Role;

    fn change(
        id: i64,
        kind: K,
        q: (i32, i32),
        s: (S, S),
        outcome: Option<VendorOutcome>,
    ) -> subscription_change::Model {
        subscription_change::Model {
            id,
            subscription_id: 1,
            kind,
            actor_user_id: None,
            actor_role: Role::Reseller,
            quantity_before: q.0,
            quantity_after: q.1,
            status_before: s.0,
            status_after: s.1,
            idempotency_key: None,
            occurred_at: chrono::DateTime::from_timestamp(1_800_000_000 + id * 3600, 0).unwrap_or_default(),
            unit_cost: None,
            unit_wholesale: None,
            unit_retail: None,
            job_id: None,
            vendor_outcome: outcome,
            seats_taken: None,
        }
    }

    const A: S = S::Active;

    #[test]
    fn a_refused_change_is_left_out_and_later_ones_count_from_what_the_vendor_had() {
        let history = [
            change(1, K::Purchase, (0, 5), (S::Pending, S::Pending), None),
            change(2, K::Provisioned, (5, 5), (S::Pending, A), None),
            change(3, K::QuantityIncrease, (5, 8), (A, A), Some(VendorOutcome::Refused)),
            change(4, K::QuantityDecrease, (8, 6), (A, A), Some(VendorOutcome::Done)),
            change(5, K::Suspend, (6, 6), (A, S::Suspended), Some(VendorOutcome::Refused)),
            change(6, K::AutoRenewChanged, (6, 6), (S::Suspended, S::Suspended), None),
        ];
        let view = as_the_vendor_has_it(&history, true);
        let seen: Vec<(i64, K, i32, i32, S)> =
            view.history.iter().map(|c| (c.id, c.kind, c.quantity_before, c.quantity_after, c.status_after)).collect();
        assert_eq!(
            seen,
            [
                (1, K::Purchase, 0, 5, S::Pending),
                (2, K::Provisioned, 5, 5, A),
                (4, K::QuantityIncrease, 5, 6, A),
                (6, K::AutoRenewChanged, 6, 6, A),
            ]
        );
        assert_eq!(view.state, Some((6, A)));
        assert!(!view.held);
    }

    #[test]
    fn billing_holds_everything_from_the_first_change_nobody_confirmed() {
        let history = [
            change(1, K::Purchase, (0, 5), (S::Pending, A), None),
            change(2, K::QuantityIncrease, (5, 7), (A, A), Some(VendorOutcome::Unconfirmed)),
            change(3, K::AutoRenewChanged, (7, 7), (A, A), None),
        ];
        let held = as_the_vendor_has_it(&history, true);
        assert_eq!((held.history.len(), held.held, held.state), (1, true, Some((5, A))));
        let intent = as_the_vendor_has_it(&history, false);
        assert_eq!((intent.history.len(), intent.held, intent.state), (3, false, Some((7, A))));
    }

    #[test]
    fn a_quantity_change_that_does_nothing_to_the_vendors_count_disappears() {
        let history = [
            change(1, K::Purchase, (0, 5), (S::Pending, A), None),
            change(2, K::QuantityDecrease, (5, 3), (A, A), Some(VendorOutcome::Refused)),
            change(3, K::QuantityIncrease, (3, 5), (A, A), Some(VendorOutcome::Done)),
        ];
        let view = as_the_vendor_has_it(&history, true);
        assert_eq!(view.history.len(), 1);
        assert_eq!(view.state, Some((5, A)));
    }
}
