//! GraphQL output types and enums, built from entities with `From`; never entities themselves.

pub mod api_keys;
pub mod billing;
pub mod catalog;
pub mod connection;
pub mod enums;
pub mod orders;
pub mod parties;
pub mod reconciliation;
pub mod webhooks;

pub use connection::{PageConnection, connection};
