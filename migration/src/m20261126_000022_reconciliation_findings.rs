//! What matching a vendor's statement found (#10): one finding per vendor subscription,
//! charge cycle and kind of unit (the statement's rows aggregated, with our charges for the
//! same service), its category, amounts and the rule that decided it, and how the operator
//! resolved it. An import remembers the tolerances it was matched with. A statement's rows are
//! read in the order of their group (indexed), and a finding's rows found by its vendor
//! reference, cycle and kind of unit, not by a column written on each of a million rows;
//! subscriptions are found by the vendor's id, and charges by vendor and period (indexed). A charge may bill the reseller only (a recovery the operator
//! does not pass on to the customer).

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE reconciliation_findings (
    id {id},
    import_id BIGINT NOT NULL REFERENCES reconciliation_imports(id),
    group_key VARCHAR(400) NOT NULL,
    category VARCHAR(32) NOT NULL,
    subscription_id BIGINT REFERENCES subscriptions(id),
    customer_id BIGINT REFERENCES customers(id),
    reseller_id BIGINT REFERENCES resellers(id),
    offer_id BIGINT REFERENCES offers(id),
    subscription_reference VARCHAR(128) NOT NULL,
    customer_external_id VARCHAR(128) NOT NULL,
    sku VARCHAR(100) NOT NULL,
    unit_kind VARCHAR(8) NOT NULL,
    charge_start {ts} NOT NULL,
    charge_end {ts} NOT NULL,
    vendor_rows INTEGER NOT NULL,
    currency CHAR(3) NOT NULL,
    pricing_currency CHAR(3) NOT NULL,
    exchange_rate {money} NOT NULL,
    vendor_amount {money} NOT NULL,
    expected_amount {money},
    vendor_quantity {money},
    our_quantity {money},
    billed_currency CHAR(3),
    cost_billed {money} NOT NULL,
    wholesale_billed {money} NOT NULL,
    retail_billed {money} NOT NULL,
    amount {money} NOT NULL,
    rule TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    note TEXT,
    resolved_by_user_id BIGINT REFERENCES users(id),
    resolved_at {ts},
    recovery_charge_id BIGINT REFERENCES charges(id),
    recovery_customer_charge BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT uq_reconciliation_findings_group UNIQUE (import_id, group_key)
);
CREATE INDEX idx_reconciliation_findings_category ON reconciliation_findings (import_id, category);
CREATE INDEX idx_reconciliation_findings_reseller ON reconciliation_findings (import_id, reseller_id);
CREATE INDEX idx_reconciliation_findings_customer ON reconciliation_findings (import_id, customer_id);
CREATE INDEX idx_reconciliation_findings_subscription ON reconciliation_findings (subscription_id, charge_end);
CREATE INDEX idx_reconciliation_lines_group ON reconciliation_lines (import_id, subscription_reference, charge_end, unit_kind, id);
CREATE INDEX idx_subscriptions_vendor_reference ON subscriptions (vendor_id, vendor_reference);
CREATE INDEX idx_charges_vendor_period ON charges (vendor_id, period, id);
ALTER TABLE reconciliation_imports ADD COLUMN amount_tolerance {money} NOT NULL DEFAULT '0';
ALTER TABLE reconciliation_imports ADD COLUMN quantity_tolerance {money} NOT NULL DEFAULT '0';
ALTER TABLE reconciliation_imports ADD COLUMN matched_at {ts};
ALTER TABLE charges ADD COLUMN bills_customer BOOLEAN NOT NULL DEFAULT TRUE
"#;

const DOWN: &str = r#"
ALTER TABLE charges DROP COLUMN bills_customer;
ALTER TABLE reconciliation_imports DROP COLUMN matched_at;
ALTER TABLE reconciliation_imports DROP COLUMN quantity_tolerance;
ALTER TABLE reconciliation_imports DROP COLUMN amount_tolerance;
DROP INDEX idx_reconciliation_lines_group;
DROP INDEX idx_subscriptions_vendor_reference;
DROP INDEX idx_charges_vendor_period;
DROP TABLE reconciliation_findings
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
