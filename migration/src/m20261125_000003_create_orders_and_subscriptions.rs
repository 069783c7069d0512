use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE orders (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    placed_by_user_id BIGINT REFERENCES users(id),
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    po_number VARCHAR(100),
    status VARCHAR(24) NOT NULL,
    currency CHAR(3) NOT NULL,
    total_cost {money} NOT NULL,
    total_wholesale {money} NOT NULL,
    total_retail {money} NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    CONSTRAINT uq_orders_reseller_idempotency_key UNIQUE (reseller_id, idempotency_key)
);
CREATE INDEX idx_orders_customer ON orders(customer_id);
CREATE TABLE subscriptions (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    order_id BIGINT REFERENCES orders(id),
    quantity INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    term VARCHAR(8) NOT NULL,
    billing_frequency VARCHAR(16) NOT NULL,
    term_start {ts},
    term_end {ts},
    auto_renew BOOLEAN NOT NULL,
    vendor_reference VARCHAR(128),
    update_count INTEGER NOT NULL,
    currency CHAR(3) NOT NULL,
    unit_cost {money} NOT NULL,
    unit_wholesale {money} NOT NULL,
    unit_retail {money} NOT NULL,
    prices_locked_at {ts} NOT NULL,
    version INTEGER NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE INDEX idx_subscriptions_customer ON subscriptions(customer_id);
CREATE INDEX idx_subscriptions_reseller ON subscriptions(reseller_id);
CREATE INDEX idx_subscriptions_vendor ON subscriptions(vendor_id);
CREATE INDEX idx_subscriptions_status_term_end ON subscriptions(status, term_end);
CREATE TABLE order_lines (
    id {id},
    order_id BIGINT NOT NULL REFERENCES orders(id),
    line_number INTEGER NOT NULL,
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    subscription_id BIGINT REFERENCES subscriptions(id),
    quantity INTEGER NOT NULL,
    currency CHAR(3) NOT NULL,
    unit_cost {money} NOT NULL,
    unit_wholesale {money} NOT NULL,
    unit_retail {money} NOT NULL,
    status VARCHAR(24) NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT uq_order_lines_number UNIQUE (order_id, line_number)
);
CREATE TABLE subscription_changes (
    id {id},
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    kind VARCHAR(32) NOT NULL,
    actor_user_id BIGINT REFERENCES users(id),
    actor_role VARCHAR(16) NOT NULL,
    quantity_before INTEGER NOT NULL,
    quantity_after INTEGER NOT NULL,
    status_before VARCHAR(16) NOT NULL,
    status_after VARCHAR(16) NOT NULL,
    idempotency_key VARCHAR(255),
    occurred_at {ts} NOT NULL,
    CONSTRAINT uq_subscription_changes_idempotency_key UNIQUE (subscription_id, idempotency_key)
);
CREATE INDEX idx_subscription_changes_subscription ON subscription_changes(subscription_id, occurred_at);
CREATE TABLE seat_batches (
    id {id},
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    source VARCHAR(16) NOT NULL,
    quantity INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    added_at {ts} NOT NULL,
    window_ends_at {ts} NOT NULL,
    CONSTRAINT ck_seat_batches_remaining CHECK (remaining >= 0 AND remaining <= quantity)
);
CREATE INDEX idx_seat_batches_subscription ON seat_batches(subscription_id);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["seat_batches", "subscription_changes", "subscriptions", "order_lines", "orders"])
            .await
    }
}
