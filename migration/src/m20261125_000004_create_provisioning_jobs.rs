use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

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
CREATE INDEX idx_provisioning_jobs_claim ON provisioning_jobs(status, run_after);
CREATE INDEX idx_provisioning_jobs_subscription ON provisioning_jobs(subscription_id);
CREATE INDEX idx_provisioning_jobs_order ON provisioning_jobs(order_id)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["provisioning_jobs"]).await
    }
}
