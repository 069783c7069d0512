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

/// How many prepared statements a SQLite connection keeps, least recently used dropped
/// first. sqlx keeps 100; on SQLite each is compiled in this process, and a multi-row
/// statement of a few thousand parameters holds far more than a row's worth. Billing
/// 100,000 subscriptions for the first time (8 connections) peaked at 785 MiB with 100 and
/// at 487 MiB with 48, at the same speed (34.8 and 36.7 s; placeOrder 476 and 515 orders/s,
/// jobs 269 and 283 a second, back to back on this 2-core machine). 24 kept 385 MiB but
/// made the rest slower (405 orders/s, 243 jobs/s, 40.3 s): a connection serves orders, the
/// job queue and billing alike, and the statements they run again and again no longer fit.
pub const SQLITE_STATEMENT_CACHE: usize = 48;

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
                .statement_cache_capacity(SQLITE_STATEMENT_CACHE)
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

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{self, Connection as _};

    #[tokio::test]
    async fn a_sqlite_connection_keeps_only_a_few_prepared_statements() -> Result<(), Box<dyn std::error::Error>> {
        let folder = tempfile::tempdir()?;
        let db = super::connect(&format!("sqlite://{}/cache.db?mode=rwc", folder.path().display()), 1).await?;
        let mut connection = db.get_sqlite_connection_pool().acquire().await?;
        // As a billing run does: a multi-row statement of each length it meets, each one a
        // statement of its own.
        for length in 1..=200 {
            let sql = format!("SELECT {}", vec!["?"; length].join(", "));
            // Only placeholders: nothing of the caller is in the text.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for value in 0..length {
                query = query.bind(value as i64);
            }
            query.execute(&mut *connection).await?;
        }
        let kept = connection.cached_statements_size();
        drop(connection);
        drop(db);
        // sqlx's default keeps 100: on SQLite each is compiled in this process, and a billing
        // run's multi-row statements of thousands of parameters filled 8 connections' caches
        // with about 300 MiB of them.
        assert!(kept <= 64, "{kept} prepared statements kept");
        assert_eq!(kept, super::SQLITE_STATEMENT_CACHE);
        Ok(())
    }
}
