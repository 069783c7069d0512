//! The provisioning queue becomes the generic durable job queue `jobs`: every job has a
//! kind and an optional ordering key; the provisioning subject (subscription, order,
//! vendor, action) becomes optional, since webhook deliveries and imports will be further
//! kinds. Existing jobs keep their ids, request ids and state, as kind `PROVISIONING` with
//! their subscription as ordering key. SQLite cannot relax NOT NULL in place, so the table
//! is rebuilt on both backends the same way.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE jobs (
    id {id},
    kind VARCHAR(32) NOT NULL,
    ordering_key VARCHAR(128),
    payload {json} NOT NULL,
    request_id VARCHAR(64) NOT NULL UNIQUE,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_after {ts} NOT NULL,
    locked_by VARCHAR(128),
    locked_until {ts},
    lease_token VARCHAR(64),
    last_error TEXT,
    reference VARCHAR(128),
    subscription_id BIGINT REFERENCES subscriptions(id),
    order_id BIGINT REFERENCES orders(id),
    vendor_id BIGINT REFERENCES vendors(id),
    action VARCHAR(32),
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    finished_at {ts}
);
INSERT INTO jobs (id, kind, ordering_key, payload, request_id, status, attempts, max_attempts, run_after,
                  locked_by, locked_until, lease_token, last_error, reference, subscription_id, order_id,
                  vendor_id, action, created_at, updated_at, finished_at)
    SELECT id, 'PROVISIONING', 'subscription:' || CAST(subscription_id AS VARCHAR(20)), payload, request_id, status,
           attempts, max_attempts, run_after, locked_by, locked_until, lease_token, last_error, vendor_reference,
           subscription_id, order_id, vendor_id, action, created_at, updated_at, finished_at
    FROM provisioning_jobs;
DROP TABLE provisioning_jobs;
CREATE INDEX idx_jobs_claim ON jobs(status, run_after);
CREATE INDEX idx_jobs_ordering_key ON jobs(ordering_key, id);
CREATE INDEX idx_jobs_subscription ON jobs(subscription_id);
CREATE INDEX idx_jobs_order ON jobs(order_id)
"#;

/// The way back: only while every job is a provisioning job with its subject.
const DOWN: &str = r#"
CREATE TABLE provisioning_jobs (
    id {id},
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    order_id BIGINT REFERENCES orders(id),
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    action VARCHAR(32) NOT NULL,
    payload {json} NOT NULL,
    request_id VARCHAR(64) NOT NULL UNIQUE,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_after {ts} NOT NULL,
    locked_by VARCHAR(128),
    locked_until {ts},
    lease_token VARCHAR(64),
    last_error TEXT,
    vendor_reference VARCHAR(128),
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    finished_at {ts}
);
INSERT INTO provisioning_jobs (id, subscription_id, order_id, vendor_id, action, payload, request_id, status,
                               attempts, max_attempts, run_after, locked_by, locked_until, lease_token, last_error,
                               vendor_reference, created_at, updated_at, finished_at)
    SELECT id, subscription_id, order_id, vendor_id, action, payload, request_id, status, attempts, max_attempts,
           run_after, locked_by, locked_until, lease_token, last_error, reference, created_at, updated_at, finished_at
    FROM jobs;
DROP TABLE jobs;
CREATE INDEX idx_provisioning_jobs_claim ON provisioning_jobs(status, run_after);
CREATE INDEX idx_provisioning_jobs_subscription ON provisioning_jobs(subscription_id);
CREATE INDEX idx_provisioning_jobs_order ON provisioning_jobs(order_id)
"#;

/// Jobs the old table has no place for.
const OTHER_JOBS: &str = "SELECT COUNT(*) AS other FROM jobs WHERE kind <> 'PROVISIONING' OR subscription_id IS NULL \
                          OR vendor_id IS NULL OR action IS NULL";

/// PostgreSQL's identity sequence of `table` must continue after the copied ids.
fn postgres_sequence(table: &str) -> String {
    format!(
        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Copy and drop in one transaction on every backend (SQLite included), so a crash
    /// between them cannot leave both tables or neither.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No process may add or change a job between the copy and the drop (SQLite's
        // transaction holds the write lock from its first statement already). Stop every
        // older process before migrating: it knows only `provisioning_jobs`.
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("LOCK TABLE provisioning_jobs IN ACCESS EXCLUSIVE MODE")
                .await?;
        }
        ddl::run(manager, UP).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(&postgres_sequence("jobs")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if backend == DbBackend::Postgres {
            manager.get_connection().execute_unprepared("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE").await?;
        }
        let row = manager.get_connection().query_one_raw(Statement::from_string(backend, OTHER_JOBS)).await?;
        let other: i64 = match row {
            Some(row) => row.try_get("", "other")?,
            None => 0,
        };
        if other > 0 {
            return Err(DbErr::Migration(format!(
                "{other} jobs are not provisioning jobs with a subject; provisioning_jobs has no place for them"
            )));
        }
        ddl::run(manager, DOWN).await?;
        if backend == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(&postgres_sequence("provisioning_jobs")).await?;
        }
        Ok(())
    }
}
