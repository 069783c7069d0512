//! The business: catalog, pricing, parties, and (in later modules) orders, subscriptions,
//! provisioning, billing and reconciliation.
//!
//! Invariants: nothing here knows GraphQL or HTTP; every operation takes the calling
//! [`Actor`] and applies its tenant scope itself; every multi-step write is one transaction
//! with its audit row; money is `Decimal`, rounded only in `money`.

pub mod actor;
pub mod audit;
pub mod catalog;
pub mod catalog_cache;
pub mod clock;
pub mod customers;
pub mod error;
pub mod money;
pub mod pagination;
pub mod pricing;
pub mod resellers;
pub mod users;
pub mod validate;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

pub use actor::{Actor, Role};
pub use error::{Error, Result};

/// What every domain operation runs against: the database, the clock and the catalog cache.
pub struct Domain {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Where "now" comes from.
    pub clock: Arc<dyn clock::Clock>,
    /// The shared catalog read cache.
    pub catalog: catalog_cache::CatalogCache,
}
