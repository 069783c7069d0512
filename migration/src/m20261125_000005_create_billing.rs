use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE billing_runs (
    id {id},
    period CHAR(7) NOT NULL,
    status VARCHAR(16) NOT NULL,
    started_at {ts} NOT NULL,
    finished_at {ts},
    last_error TEXT
);
CREATE INDEX idx_billing_runs_period ON billing_runs(period);
CREATE TABLE charges (
    id {id},
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    billing_run_id BIGINT REFERENCES billing_runs(id),
    period CHAR(7) NOT NULL,
    kind VARCHAR(24) NOT NULL,
    charge_key VARCHAR(64) NOT NULL,
    description TEXT NOT NULL,
    quantity {money} NOT NULL,
    days_used INTEGER,
    days_in_period INTEGER,
    service_start {ts} NOT NULL,
    service_end {ts} NOT NULL,
    currency CHAR(3) NOT NULL,
    unit_cost {money} NOT NULL,
    unit_wholesale {money} NOT NULL,
    unit_retail {money} NOT NULL,
    amount_cost {money} NOT NULL,
    amount_wholesale {money} NOT NULL,
    amount_retail {money} NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT uq_charges_subscription_period_key UNIQUE (subscription_id, period, charge_key)
);
CREATE INDEX idx_charges_period_reseller ON charges(period, reseller_id);
CREATE TABLE invoices (
    id {id},
    kind VARCHAR(16) NOT NULL,
    issuer_key VARCHAR(32) NOT NULL,
    issuer_reseller_id BIGINT REFERENCES resellers(id),
    recipient_key VARCHAR(32) NOT NULL,
    recipient_reseller_id BIGINT REFERENCES resellers(id),
    recipient_customer_id BIGINT REFERENCES customers(id),
    credited_invoice_id BIGINT REFERENCES invoices(id),
    billing_run_id BIGINT REFERENCES billing_runs(id),
    period CHAR(7) NOT NULL,
    currency CHAR(3) NOT NULL,
    status VARCHAR(16) NOT NULL,
    number VARCHAR(64),
    number_year INTEGER,
    tax_rate {money} NOT NULL,
    subtotal {money} NOT NULL,
    tax {money} NOT NULL,
    total {money} NOT NULL,
    issued_at {ts},
    paid_at {ts},
    voided_at {ts},
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    CONSTRAINT uq_invoices_issuer_number UNIQUE (issuer_key, number)
);
CREATE UNIQUE INDEX uq_invoices_period_parties ON invoices(period, issuer_key, recipient_key, currency) WHERE kind = 'INVOICE';
CREATE INDEX idx_invoices_recipient_customer ON invoices(recipient_customer_id);
CREATE INDEX idx_invoices_recipient_reseller ON invoices(recipient_reseller_id);
CREATE TABLE invoice_lines (
    id {id},
    invoice_id BIGINT NOT NULL REFERENCES invoices(id),
    line_number INTEGER NOT NULL,
    charge_id BIGINT REFERENCES charges(id),
    customer_id BIGINT REFERENCES customers(id),
    subscription_id BIGINT REFERENCES subscriptions(id),
    description TEXT NOT NULL,
    quantity {money} NOT NULL,
    unit_price {money} NOT NULL,
    days_used INTEGER,
    days_in_period INTEGER,
    amount {money} NOT NULL,
    tax {money} NOT NULL,
    unit_cost {money} NOT NULL,
    unit_wholesale {money} NOT NULL,
    unit_retail {money} NOT NULL,
    CONSTRAINT uq_invoice_lines_number UNIQUE (invoice_id, line_number)
);
CREATE TABLE invoice_counters (
    issuer_key VARCHAR(32) NOT NULL,
    year INTEGER NOT NULL,
    last_value BIGINT NOT NULL,
    PRIMARY KEY (issuer_key, year)
)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["invoice_counters", "invoice_lines", "invoices", "charges", "billing_runs"]).await
    }
}
