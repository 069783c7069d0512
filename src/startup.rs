//! Building the application from configuration: connect, migrate, assemble the state.

use std::sync::Arc;

use crate::auth::AuthKeys;
use crate::config::{AuthConfig, DEV_JWT_SECRET, DatabaseConfig, ProvisioningConfig, ServerConfig};
use crate::db;
use crate::domain::Domain;
use crate::domain::billing::plan::BillingSettings;
use crate::domain::catalog_cache::CatalogCache;
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::events::{Delivery, EventBus, start_postgres_listener};
use crate::domain::provisioning::JobSettings;
use crate::state::AppState;

/// A start-up failure, for the CLI to print.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the configured database and applies pending migrations.
pub async fn open_database(config: &DatabaseConfig) -> Result<sea_orm::DatabaseConnection, StartupError> {
    let url = db::database_url(config)?;
    let connection = db::connect(&url, config.db_max_connections).await?;
    db::migrate(&connection).await?;
    Ok(connection)
}

/// Builds the domain services around a connection. Events are delivered in process; call
/// [`listen_for_events`] on PostgreSQL to deliver every process's events.
pub fn domain(
    db: sea_orm::DatabaseConnection,
    clock: Arc<dyn Clock>,
    server: &ServerConfig,
    provisioning: &ProvisioningConfig,
) -> Arc<Domain> {
    let delivery = EventBus::delivery_for(db.get_database_backend());
    Arc::new(Domain {
        db,
        clock,
        catalog: CatalogCache::new(server.catalog_cache_ttl),
        events: Arc::new(EventBus::new(server.event_buffer, delivery)),
        jobs: JobSettings {
            lease: provisioning.job_lease,
            max_attempts: provisioning.job_max_attempts,
            backoff: provisioning.job_backoff,
            backoff_max: provisioning.job_backoff_max,
        },
        job_wakeup: tokio::sync::Notify::new(),
        billing: BillingSettings {
            rounding: server.proration_rounding.into(),
            tax: server.tax_policy.into(),
            cancellation_refund: server.cancellation_refund.into(),
        },
        operator_invoice_prefix: server.operator_invoice_prefix.clone(),
    })
}

/// On PostgreSQL, LISTENs for events from every process (returns once listening).
pub async fn listen_for_events(domain: &Domain, url: &str) -> Result<(), StartupError> {
    if domain.events.delivery() == Delivery::PostgresNotify {
        start_postgres_listener(url, Arc::clone(&domain.events)).await?;
    }
    Ok(())
}

/// Builds the whole application state from configuration, with the system clock.
pub async fn build_state(
    database: &DatabaseConfig,
    auth: &AuthConfig,
    server: ServerConfig,
    provisioning: &ProvisioningConfig,
) -> Result<AppState, StartupError> {
    let keys = Arc::new(AuthKeys::from_config(auth)?);
    if auth.jwt_secret.is_none() && auth.jwt_algorithm == crate::config::JwtAlgorithm::Hs256 {
        tracing::warn!("no SWITCHYARD_JWT_SECRET set: signing with the development secret {DEV_JWT_SECRET:?}");
    }
    let connection = open_database(database).await?;
    let domain = domain(connection, Arc::new(SystemClock), &server, provisioning);
    listen_for_events(&domain, &db::database_url(database)?).await?;
    Ok(AppState::new(domain, keys, server))
}
