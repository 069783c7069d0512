use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE domain_events (
    id {id},
    event_id VARCHAR(36) NOT NULL UNIQUE,
    kind VARCHAR(64) NOT NULL,
    aggregate_type VARCHAR(32) NOT NULL,
    aggregate_id BIGINT NOT NULL,
    vendor_id BIGINT,
    reseller_id BIGINT,
    customer_id BIGINT,
    payload {json} NOT NULL,
    occurred_at {ts} NOT NULL,
    published_at {ts}
);
CREATE INDEX idx_domain_events_unpublished ON domain_events(published_at, id);
CREATE TABLE webhook_endpoints (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    url TEXT NOT NULL,
    secret VARCHAR(128) NOT NULL,
    event_kinds {json} NOT NULL,
    active BOOLEAN NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE TABLE webhook_deliveries (
    id {id},
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id),
    event_id VARCHAR(36) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at {ts},
    response_status INTEGER,
    last_error TEXT,
    created_at {ts} NOT NULL,
    delivered_at {ts},
    CONSTRAINT uq_webhook_deliveries_endpoint_event UNIQUE (endpoint_id, event_id)
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE TABLE audit_log (
    id {id},
    actor_user_id BIGINT,
    actor_role VARCHAR(16) NOT NULL,
    actor_organization_id BIGINT,
    action VARCHAR(64) NOT NULL,
    object_type VARCHAR(32) NOT NULL,
    object_id BIGINT,
    details {json} NOT NULL,
    occurred_at {ts} NOT NULL
);
CREATE INDEX idx_audit_log_object ON audit_log(object_type, object_id)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["audit_log", "webhook_deliveries", "webhook_endpoints", "domain_events"]).await
    }
}
