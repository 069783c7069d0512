//! API enums mirroring the entity enums (the entity crate knows nothing of GraphQL).

use entity::enums as db;

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident => $entity:ident { $($variant:ident),+ $(,)? }) => {
        #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        $(#[$meta])*
        pub enum $name {
            $(
                #[allow(missing_docs)]
                $variant
            ),+
        }

        impl From<db::$entity> for $name {
            fn from(value: db::$entity) -> Self {
                match value {
                    $(db::$entity::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for db::$entity {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => Self::$variant),+
                }
            }
        }
    };
}

mirror_enum!(
    /// The role a user acts in.
    Role => Role { Operator, Vendor, Reseller, Customer }
);
mirror_enum!(
    /// Whether a product or offer can be sold.
    CatalogStatus => CatalogStatus { Active, Retired }
);
mirror_enum!(
    /// Whether an organization is active.
    OrganizationStatus => OrganizationStatus { Active, Inactive }
);
mirror_enum!(
    /// Commitment term (ISO 8601 durations): one month, one year, three years.
    #[graphql(rename_items = "UPPERCASE")]
    Term => Term { P1m, P1y, P3y }
);
mirror_enum!(
    /// How often recurring fees are billed.
    BillingFrequency => BillingFrequency { Monthly, Annual, Upfront }
);
mirror_enum!(
    /// How Switchyard reaches a vendor's provisioning system.
    ConnectorKind => ConnectorKind { Sandbox, Http }
);
mirror_enum!(
    /// An order's status, derived from its lines.
    OrderStatus => OrderStatus { Processing, Completed, PartiallyFailed, Failed }
);
mirror_enum!(
    /// An order line's provisioning status.
    OrderLineStatus => OrderLineStatus { Pending, Provisioning, Succeeded, Failed }
);
mirror_enum!(
    /// Subscription lifecycle states.
    SubscriptionStatus => SubscriptionStatus { Pending, Provisioning, Active, Suspended, Cancelled, Expired, Failed }
);
mirror_enum!(
    /// What a recorded subscription change was.
    SubscriptionChangeKind => SubscriptionChangeKind {
        Purchase, Provisioned, ProvisioningFailed, QuantityIncrease, QuantityDecrease, Suspend, Resume, Cancel,
        Renew, Expire, AutoRenewChanged, Reverted
    }
);
mirror_enum!(
    /// What the vendor did with a change that needed a call to it.
    VendorOutcome => VendorOutcome { Pending, Done, Refused, Unconfirmed }
);
mirror_enum!(
    /// The vendor action of a provisioning job.
    ProvisioningAction => ProvisioningAction { Purchase, ChangeQuantity, Suspend, Resume, Cancel, Renew }
);
mirror_enum!(
    /// A provisioning job's state.
    JobStatus => JobStatus { Queued, Running, Succeeded, Failed, Inquire, Dead }
);
mirror_enum!(
    /// Invoice lifecycle.
    InvoiceStatus => InvoiceStatus { Draft, Issued, Paid, Void }
);
mirror_enum!(
    /// An invoice or a credit note.
    InvoiceKind => InvoiceKind { Invoice, CreditNote }
);
mirror_enum!(
    /// The kind of a billed charge.
    ChargeKind => ChargeKind { Recurring, Proration, Refund, Usage, Adjustment }
);
mirror_enum!(
    /// What a job in the queue does.
    JobKind => JobKind { Provisioning, WebhookDelivery }
);
mirror_enum!(
    /// A billing run's state.
    BillingRunStatus => BillingRunStatus { Running, Completed, Failed }
);
