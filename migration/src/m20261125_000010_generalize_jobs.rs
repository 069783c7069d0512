//! The provisioning queue becomes the generic durable job queue `jobs`: every job has a
//! kind and an optional ordering key; the provisioning subject (subscription, order,
//! vendor, action) becomes optional, since webhook deliveries and imports will be further
//! kinds. Existing jobs keep their ids, request ids and state, as kind `PROVISIONING` with
//! their subscription as ordering key. SQLite cannot relax NOT NULL in place, so the table
//! is rebuilt on both backends the same way.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

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

/// PostgreSQL's identity sequence must continue after the copied ids.
const POSTGRES_SEQUENCE: &str =
    "SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM jobs), false)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(POSTGRES_SEQUENCE).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Jobs of other kinds have no place in the old table: going back is not supported.
        Err(DbErr::Migration("the generic job queue cannot be turned back into provisioning_jobs".into()))
    }
}
