//! Outbound webhooks (#11). The tables made for them in 000007 were never used: they are
//! dropped (empty) and made again as the feature needs them — an endpoint of a reseller or
//! of the operator (no reseller) with its event-type filter, its signing secret and the one
//! before it during a rotation, and when it started failing; a delivery per event and
//! endpoint with its frozen body; an attempt per try with its status, latency and an
//! excerpt of the answer.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
CREATE TABLE webhook_endpoints (
    id {id},
    reseller_id BIGINT REFERENCES resellers(id),
    url TEXT NOT NULL,
    description VARCHAR(200) NOT NULL,
    event_types VARCHAR(400) NOT NULL,
    secret VARCHAR(80) NOT NULL,
    previous_secret VARCHAR(80),
    previous_secret_until {ts},
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    failing_since {ts},
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE INDEX idx_webhook_endpoints_enabled ON webhook_endpoints(enabled, reseller_id);
CREATE TABLE webhook_deliveries (
    id {id},
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id),
    event_id VARCHAR(36) NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    body TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at {ts},
    last_status_code INTEGER,
    last_error TEXT,
    created_at {ts} NOT NULL,
    delivered_at {ts},
    CONSTRAINT uq_webhook_deliveries_endpoint_event UNIQUE (endpoint_id, event_id)
);
CREATE TABLE webhook_attempts (
    id {id},
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries(id),
    attempt INTEGER NOT NULL,
    attempted_at {ts} NOT NULL,
    status_code INTEGER,
    latency_ms BIGINT NOT NULL,
    response_excerpt TEXT,
    error TEXT
);
CREATE INDEX idx_webhook_attempts_delivery ON webhook_attempts(delivery_id);
CREATE INDEX idx_webhook_deliveries_created ON webhook_deliveries(created_at)
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS webhook_attempts;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
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
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, DOWN).await
    }
}
