//! Connecting to the database (PostgreSQL, or the embedded SQLite default) and migrating it.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::DatabaseConfig;

/// The URL to connect to: the configured one, else a SQLite file in the data directory
/// (created if missing).
pub fn database_url(config: &DatabaseConfig) -> Result<String, String> {
    if let Some(url) = config.database_url.as_deref().filter(|u| !u.is_empty()) {
        return Ok(url.to_owned());
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    Ok(format!("sqlite://{}/switchyard.db?mode=rwc", config.data_dir.display()))
}

/// Opens a pool. SQLite runs in WAL mode with a busy timeout, so readers never wait for
/// the writer and concurrent writers queue instead of failing; every commit is synced
/// (`synchronous = FULL`) before it is acknowledged, so a power failure cannot take back an
/// acknowledged order or an issued invoice number.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    // Switching a new SQLite file to WAL does not wait for the busy timeout: processes
    // opening one file together retry instead of failing.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Database::connect(options.clone()).await {
            Err(error) if attempt < 100 && error.to_string().contains("database is locked") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Applies every pending migration; of several processes starting together, one migrates
/// and the others wait (`write::migrating`).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    crate::domain::write::migrating(db, |lock| async move {
        Migrator::up(&lock, None).await?;
        Ok(lock)
    })
    .await
}

/// The pool's connections now: (open, idle).
pub fn pool_use(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}
