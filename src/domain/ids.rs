//! Typed ids of the main entities, at the domain boundary: a function that takes a
//! `CustomerId` cannot be handed a reseller's id by mistake. Each is parsed once from the
//! API's `ID` text (`"42"`: a positive integer) with [`Id::parse`]; `.get()` gives the
//! stored integer, and each converts into a query value.

use std::fmt;

use super::error::{Error, Result};

/// What every typed id can do.
pub trait Id: Copy + Eq + std::hash::Hash + fmt::Debug + fmt::Display + Sized {
    /// The id of a stored row.
    fn from_raw(value: i64) -> Self;

    /// The stored integer.
    fn raw(self) -> i64;

    /// Parses the API's `ID` text; a validation error on `field` unless it is a positive
    /// integer.
    fn parse(text: &str, field: &str) -> Result<Self> {
        text.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self::from_raw)
            .ok_or_else(|| Error::validation(field, "not a valid id"))
    }
}

macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id of a stored row.
            pub const fn new(value: i64) -> Self {
                Self(value)
            }

            /// The stored integer.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl Id for $name {
            fn from_raw(value: i64) -> Self {
                Self(value)
            }

            fn raw(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl From<$name> for Option<i64> {
            fn from(id: $name) -> Self {
                Some(id.0)
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }
    )+};
}

typed_ids!(
    /// A vendor.
    VendorId,
    /// A product.
    ProductId,
    /// An offer (a sellable SKU).
    OfferId,
    /// A pricing tier.
    TierId,
    /// A reseller.
    ResellerId,
    /// A customer.
    CustomerId,
    /// An order.
    OrderId,
    /// A subscription.
    SubscriptionId,
    /// A job in the durable queue.
    JobId,
    /// An invoice or credit note.
    InvoiceId,
    /// A vendor's statement, imported.
    StatementImportId,
    /// What matching a statement found.
    FindingId,
    /// An API key.
    ApiKeyId,
    /// A webhook endpoint.
    WebhookEndpointId,
    /// A webhook delivery (one event to one endpoint).
    WebhookDeliveryId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_from_positive_integers_only() {
        assert_eq!(CustomerId::parse("42", "customerId").ok().map(|id| id.get()), Some(42));
        for bad in ["0", "-1", "abc", "", " 7", "1.5", "99999999999999999999"] {
            assert!(CustomerId::parse(bad, "customerId").is_err(), "{bad:?}");
        }
    }
}
