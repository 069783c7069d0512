//! Building the application from configuration: connect, migrate, assemble the state.

use std::sync::Arc;

use crate::auth::AuthKeys;
use crate::config::{AuthConfig, DEV_JWT_SECRET, DatabaseConfig, ServerConfig};
use crate::db;
use crate::domain::Domain;
use crate::domain::catalog_cache::CatalogCache;
use crate::domain::clock::{Clock, SystemClock};
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

/// Builds the domain services around a connection.
pub fn domain(db: sea_orm::DatabaseConnection, clock: Arc<dyn Clock>, server: &ServerConfig) -> Arc<Domain> {
    Arc::new(Domain { db, clock, catalog: CatalogCache::new(server.catalog_cache_ttl) })
}

/// Builds the whole application state from configuration, with the system clock.
pub async fn build_state(
    database: &DatabaseConfig,
    auth: &AuthConfig,
    server: ServerConfig,
) -> Result<AppState, StartupError> {
    let keys = Arc::new(AuthKeys::from_config(auth)?);
    if auth.jwt_secret.is_none() && auth.jwt_algorithm == crate::config::JwtAlgorithm::Hs256 {
        tracing::warn!("no SWITCHYARD_JWT_SECRET set: signing with the development secret {DEV_JWT_SECRET:?}");
    }
    let connection = open_database(database).await?;
    let domain = domain(connection, Arc::new(SystemClock), &server);
    Ok(AppState::new(domain, keys, server))
}
