//! The subscription lifecycle of DOMAIN.md: the state machine as one table, the term rules
//! (when a term ends, the 168 h change window) and the records every lifecycle step leaves
//! (a change-history row, a seat batch with its own window, the `SUBSCRIPTION_CHANGED` event).
//!
//! PENDING → PROVISIONING → ACTIVE; ACTIVE ↔ SUSPENDED; ACTIVE/SUSPENDED → CANCELLED;
//! term end without renewal → EXPIRED; provisioning failure → FAILED (retryable).
//!
//! Orders, subscription changes and fulfilment all build on this module; it depends on none
//! of them.

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use entity::enums::{SeatBatchSource, SubscriptionChangeKind, SubscriptionStatus, SubscriptionStatus as S, Term};
use entity::{seat_batch, subscription, subscription_change};
use sea_orm::{ActiveModelTrait, ConnectionTrait, NotSet, Set};

use super::actor::Actor;
use super::error::{Error, Result, map_unique_violation};
use super::events::{DomainEvent, EventKind};

/// Something that moves a subscription between states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A worker started provisioning the purchase.
    StartProvisioning,
    /// The vendor confirmed the purchase.
    ProvisioningSucceeded,
    /// The purchase failed for good.
    ProvisioningFailed,
    /// An operator retries a failed purchase.
    RetryProvisioning,
    /// Suspend (billing continues).
    Suspend,
    /// Resume a suspended subscription.
    Resume,
    /// Cancel within the window.
    Cancel,
    /// Term ended without renewal.
    Expire,
    /// Term ended and auto-renew is on.
    Renew,
    /// Change the seat count (no state change).
    ChangeQuantity,
    /// Turn auto-renew on or off (no state change).
    SetAutoRenew,
}

/// The state after `transition` from `from`, or BAD_USER_INPUT naming the current state.
pub fn next_status(from: S, transition: Transition) -> Result<S> {
    use Transition as T;
    let to = match (from, transition) {
        (S::Pending | S::Failed, T::StartProvisioning) => S::Provisioning,
        (S::Provisioning, T::ProvisioningSucceeded) => S::Active,
        (S::Pending | S::Provisioning, T::ProvisioningFailed) => S::Failed,
        (S::Failed, T::RetryProvisioning) => S::Pending,
        (S::Active, T::Suspend) => S::Suspended,
        (S::Suspended, T::Resume) => S::Active,
        (S::Active | S::Suspended, T::Cancel) => S::Cancelled,
        (S::Active | S::Suspended, T::Expire) => S::Expired,
        (S::Active | S::Suspended, T::Renew) => from,
        (S::Active, T::ChangeQuantity) => S::Active,
        (S::Pending | S::Provisioning | S::Active | S::Suspended, T::SetAutoRenew) => from,
        _ => {
            return Err(Error::InvalidTransition(format!(
                "cannot {} a subscription that is {}",
                verb(transition),
                status_name(from)
            )));
        }
    };
    Ok(to)
}

fn verb(transition: Transition) -> &'static str {
    match transition {
        Transition::StartProvisioning => "start provisioning",
        Transition::ProvisioningSucceeded => "activate",
        Transition::ProvisioningFailed => "fail",
        Transition::RetryProvisioning => "retry provisioning of",
        Transition::Suspend => "suspend",
        Transition::Resume => "resume",
        Transition::Cancel => "cancel",
        Transition::Expire => "expire",
        Transition::Renew => "renew",
        Transition::ChangeQuantity => "change the quantity of",
        Transition::SetAutoRenew => "change auto-renew of",
    }
}

/// The status's name as the API spells it.
pub fn status_name(status: S) -> &'static str {
    match status {
        S::Pending => "PENDING",
        S::Provisioning => "PROVISIONING",
        S::Active => "ACTIVE",
        S::Suspended => "SUSPENDED",
        S::Cancelled => "CANCELLED",
        S::Expired => "EXPIRED",
        S::Failed => "FAILED",
    }
}

/// The window after a purchase or renewal in which seats may be removed or the
/// subscription cancelled: 168 hours.
pub fn change_window() -> Duration {
    Duration::hours(168)
}

/// When a term that starts at `start` ends.
pub fn term_end(term: Term, start: DateTime<Utc>) -> DateTime<Utc> {
    let months = match term {
        Term::P1m => 1,
        Term::P1y => 12,
        Term::P3y => 36,
    };
    start.checked_add_months(Months::new(months)).unwrap_or(start)
}

/// When a renewed term that starts at `start` ends, on the day of month of `anchor` (the
/// first term's start) where the month has it: a term bought on the 31st renews on the last
/// day of shorter months and returns to the 31st (31 Jan → 28 Feb → 31 Mar → 30 Apr),
/// never drifting to the 28th.
pub fn renewed_term_end(term: Term, start: DateTime<Utc>, anchor: DateTime<Utc>) -> DateTime<Utc> {
    let end = term_end(term, start);
    let last_day = end
        .date_naive()
        .with_day(1)
        .and_then(|first| first.checked_add_months(Months::new(1)))
        .and_then(|next| next.pred_opt())
        .map_or(end.day(), |last| last.day());
    end.with_day(anchor.day().min(last_day)).unwrap_or(end)
}

/// Adds a batch of seats with its own 168 h window.
pub async fn add_seat_batch<C: ConnectionTrait>(
    db: &C,
    subscription_id: i64,
    source: SeatBatchSource,
    quantity: i32,
    at: DateTime<Utc>,
) -> Result<()> {
    seat_batch::ActiveModel {
        id: NotSet,
        subscription_id: Set(subscription_id),
        source: Set(source),
        quantity: Set(quantity),
        remaining: Set(quantity),
        added_at: Set(at),
        window_ends_at: Set(at + change_window()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Records one change in the history (with its idempotency key, unique per subscription)
/// and the prices in force after it: `subscription` is the row as the change left it.
#[expect(clippy::too_many_arguments, reason = "one column each; a struct would only rename them")]
pub async fn record_change<C: ConnectionTrait>(
    db: &C,
    subscription: &subscription::Model,
    actor: &Actor,
    kind: SubscriptionChangeKind,
    quantity: (i32, i32),
    status: (SubscriptionStatus, SubscriptionStatus),
    idempotency_key: Option<String>,
    at: DateTime<Utc>,
) -> Result<subscription_change::Model> {
    change_row(subscription, actor, kind, quantity, status, idempotency_key, at).insert(db).await.map_err(|e| {
        map_unique_violation(
            e,
            &["uq_subscription_changes_idempotency_key", "subscription_changes.subscription_id"],
            Error::conflict("IDEMPOTENCY_KEY_RACE", "raced"),
        )
    })
}

/// The row [`record_change`] inserts (a batch inserts many at once).
pub fn change_row(
    subscription: &subscription::Model,
    actor: &Actor,
    kind: SubscriptionChangeKind,
    quantity: (i32, i32),
    status: (SubscriptionStatus, SubscriptionStatus),
    idempotency_key: Option<String>,
    at: DateTime<Utc>,
) -> subscription_change::ActiveModel {
    subscription_change::ActiveModel {
        id: NotSet,
        subscription_id: Set(subscription.id),
        kind: Set(kind),
        actor_user_id: Set(actor.user_id),
        actor_role: Set(actor.role()),
        quantity_before: Set(quantity.0),
        quantity_after: Set(quantity.1),
        status_before: Set(status.0),
        status_after: Set(status.1),
        idempotency_key: Set(idempotency_key),
        occurred_at: Set(at),
        unit_cost: Set(Some(subscription.unit_cost)),
        unit_wholesale: Set(Some(subscription.unit_wholesale)),
        unit_retail: Set(Some(subscription.unit_retail)),
        job_id: Set(None),
        vendor_outcome: Set(None),
        seats_taken: Set(None),
    }
}

/// The event announcing a subscription's new state.
pub fn changed_event(subscription: &subscription::Model, at: DateTime<Utc>) -> DomainEvent {
    DomainEvent {
        vendor_id: Some(subscription.vendor_id),
        reseller_id: Some(subscription.reseller_id),
        customer_id: Some(subscription.customer_id),
        order_id: subscription.order_id,
        subscription_id: Some(subscription.id),
        quantity: Some(subscription.quantity),
        ..DomainEvent::new(EventKind::SubscriptionChanged, status_name(subscription.status), at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_end_on_the_same_day_or_the_month_end() {
        let at = |y, m, d| chrono::TimeZone::with_ymd_and_hms(&Utc, y, m, d, 10, 0, 0).single().unwrap_or_default();
        assert_eq!(term_end(Term::P1m, at(2026, 1, 31)), at(2026, 2, 28));
        assert_eq!(term_end(Term::P1y, at(2024, 2, 29)), at(2025, 2, 28));
        assert_eq!(term_end(Term::P3y, at(2023, 8, 1)), at(2026, 8, 1));
    }

    const ALL: [S; 7] = [S::Pending, S::Provisioning, S::Active, S::Suspended, S::Cancelled, S::Expired, S::Failed];

    /// Every (state, transition) pair: the allowed ones and where they lead; all others fail
    /// with a message naming the current state.
    #[test]
    fn every_transition_is_either_allowed_or_refused_by_name() {
        use Transition as T;
        let allowed: &[(S, T, S)] = &[
            (S::Pending, T::StartProvisioning, S::Provisioning),
            (S::Failed, T::StartProvisioning, S::Provisioning),
            (S::Provisioning, T::ProvisioningSucceeded, S::Active),
            (S::Pending, T::ProvisioningFailed, S::Failed),
            (S::Provisioning, T::ProvisioningFailed, S::Failed),
            (S::Failed, T::RetryProvisioning, S::Pending),
            (S::Active, T::Suspend, S::Suspended),
            (S::Suspended, T::Resume, S::Active),
            (S::Active, T::Cancel, S::Cancelled),
            (S::Suspended, T::Cancel, S::Cancelled),
            (S::Active, T::Expire, S::Expired),
            (S::Suspended, T::Expire, S::Expired),
            (S::Active, T::Renew, S::Active),
            (S::Suspended, T::Renew, S::Suspended),
            (S::Active, T::ChangeQuantity, S::Active),
            (S::Pending, T::SetAutoRenew, S::Pending),
            (S::Provisioning, T::SetAutoRenew, S::Provisioning),
            (S::Active, T::SetAutoRenew, S::Active),
            (S::Suspended, T::SetAutoRenew, S::Suspended),
        ];
        let transitions = [
            T::StartProvisioning,
            T::ProvisioningSucceeded,
            T::ProvisioningFailed,
            T::RetryProvisioning,
            T::Suspend,
            T::Resume,
            T::Cancel,
            T::Expire,
            T::Renew,
            T::ChangeQuantity,
            T::SetAutoRenew,
        ];
        let mut checked = 0;
        for from in ALL {
            for transition in transitions {
                let expected = allowed.iter().find(|(f, t, _)| *f == from && *t == transition).map(|(_, _, to)| *to);
                match (next_status(from, transition), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} --{transition:?}"),
                    (Err(Error::InvalidTransition(message)), None) => {
                        assert!(message.contains(status_name(from)), "{message}")
                    }
                    (got, want) => panic!("{from:?} --{transition:?}: got {got:?}, want {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 77);
    }
}
