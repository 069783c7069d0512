//! The business: catalog, pricing, parties, and (in later modules) orders, subscriptions,
//! provisioning, billing and reconciliation.
//!
//! Invariants: nothing here knows GraphQL or HTTP; every operation takes the calling
//! [`Actor`] and applies its tenant scope itself; every multi-step write is one transaction
//! with its audit row; money is `Decimal`, rounded only in `money`.

pub mod actor;
pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod catalog_cache;
pub mod catalog_delta;
pub mod catalog_snapshot;
pub mod clock;
pub mod customers;
pub mod error;
pub mod events;
pub mod exchange_rates;
pub mod fanout;
pub mod fulfilment;
pub mod fulfilment_batch;
pub mod ids;
pub mod jobs;
pub mod lifecycle;
pub mod logins;
pub mod money;
pub mod new_jobs;
pub mod operations;
pub mod orders;
pub mod outbox;
pub mod pagination;
pub mod pricing;
pub mod reconciliation;
pub mod resellers;
pub mod scopes;
pub mod standing;
pub mod subscriptions;
pub mod users;
pub mod validate;
pub mod vendor_sync;
pub mod webhooks;
pub mod write;
pub mod write_gate;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

pub use actor::{Actor, Role, Tenant};
pub use error::{Error, Result};
pub use write::{Audit, Write};

/// What every domain operation runs against.
pub struct Domain {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// This process's writers queue here on SQLite, one at a time (open on PostgreSQL).
    pub write_gate: write_gate::WriteGate,
    /// Where "now" comes from.
    pub clock: Arc<dyn clock::Clock>,
    /// The shared catalog read cache.
    pub catalog: catalog_cache::CatalogCache,
    /// Where committed events go.
    pub events: Arc<events::EventBus>,
    /// Retry and lease rules of provisioning jobs.
    pub jobs: jobs::JobSettings,
    /// Wakes this process's idle workers when a transaction enqueued jobs.
    pub job_wakeup: tokio::sync::Notify,
    /// Proration and tax policies.
    pub billing: billing::plan::BillingSettings,
    /// The prefix of the operator's invoice numbers.
    pub operator_invoice_prefix: String,
    /// The operator as its invoices name it.
    pub operator: OperatorProfile,
    /// Whether callers' organisations and users are still in good standing (cached briefly).
    pub standing: standing::Standing,
    /// Login throttling and this process's hashing turns.
    pub logins: logins::LoginGuard,
    /// How webhooks are delivered.
    pub webhooks: webhooks::WebhookSettings,
}

/// The operator's legal details and payment terms, for the invoices it issues.
#[derive(Clone, Debug, Default)]
pub struct OperatorProfile {
    /// Legal name.
    pub legal_name: String,
    /// Postal address (may span lines).
    pub address: String,
    /// Tax id (VAT number…).
    pub tax_id: String,
    /// Days resellers have to pay.
    pub payment_terms_days: i32,
}
