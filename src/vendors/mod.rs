//! Vendor adapters: everything that speaks a vendor's language.
//!
//! - `connectors` — the `VendorConnector` trait and its implementations (`sandbox`, and the
//!   signed `http` connector), which carry a provisioning job's action to the vendor.
//!
//! Vendor statement parsers (reconciliation imports, one per vendor format) belong here too.
//! Nothing here decides what an outcome means for a subscription: that is
//! `domain::fulfilment`.

pub mod connectors;
