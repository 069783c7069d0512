use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE usage_records (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    external_id VARCHAR(255) NOT NULL,
    meter VARCHAR(100) NOT NULL,
    quantity {money} NOT NULL,
    occurred_at {ts} NOT NULL,
    received_at {ts} NOT NULL,
    billed_period CHAR(7),
    charge_id BIGINT REFERENCES charges(id),
    CONSTRAINT uq_usage_records_external_id UNIQUE (reseller_id, external_id)
);
CREATE INDEX idx_usage_records_subscription ON usage_records(subscription_id, occurred_at);
CREATE TABLE reconciliation_imports (
    id {id},
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    period CHAR(7) NOT NULL,
    source_name VARCHAR(255) NOT NULL,
    format VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    row_count INTEGER NOT NULL,
    imported_by_user_id BIGINT REFERENCES users(id),
    created_at {ts} NOT NULL
);
CREATE TABLE reconciliation_lines (
    id {id},
    import_id BIGINT NOT NULL REFERENCES reconciliation_imports(id),
    row_number INTEGER NOT NULL,
    customer_external_id VARCHAR(128) NOT NULL,
    reseller_external_id VARCHAR(64),
    subscription_reference VARCHAR(128) NOT NULL,
    sku VARCHAR(100) NOT NULL,
    charge_type VARCHAR(32) NOT NULL,
    charge_start {ts},
    charge_end {ts},
    quantity {money} NOT NULL,
    unit_price {money} NOT NULL,
    effective_unit_price {money} NOT NULL,
    exchange_rate {money} NOT NULL,
    subtotal {money} NOT NULL,
    currency CHAR(3) NOT NULL,
    raw {json} NOT NULL,
    matched_subscription_id BIGINT REFERENCES subscriptions(id),
    finding VARCHAR(32),
    expected_amount {money},
    difference {money},
    CONSTRAINT uq_reconciliation_lines_row UNIQUE (import_id, row_number)
)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["reconciliation_lines", "reconciliation_imports", "usage_records"]).await
    }
}
