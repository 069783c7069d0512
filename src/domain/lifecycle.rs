//! The subscription state machine of DOMAIN.md, as one table.
//!
//! PENDING → PROVISIONING → ACTIVE; ACTIVE ↔ SUSPENDED; ACTIVE/SUSPENDED → CANCELLED;
//! term end without renewal → EXPIRED; provisioning failure → FAILED (retryable).

use entity::enums::SubscriptionStatus as S;

use super::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
