//! A charge remembers the invoice that bills it on each side of the channel (the
//! customer's invoice from its reseller, the reseller's invoice from the operator), so
//! "on exactly one live invoice per side" is a property of the charge row: gathering claims
//! a charge with `UPDATE … WHERE customer_invoice_id IS NULL`, voiding a draft releases its
//! charges by clearing the column. Existing links are copied from the invoice lines: lines
//! on a draft that was voided release their charges; an invoice voided *after* it was issued
//! (which earlier versions allowed) keeps them, so deliberately voided bills are not billed
//! again by the next run. A period may now have several invoices between
//! the same parties (a new draft once one is issued), but only one open DRAFT at a time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE charges ADD COLUMN customer_invoice_id BIGINT {invoice};
ALTER TABLE charges ADD COLUMN reseller_invoice_id BIGINT {invoice};
UPDATE charges SET customer_invoice_id = (
    SELECT MIN(l.invoice_id) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
    WHERE l.charge_id = charges.id AND i.recipient_customer_id IS NOT NULL
      AND (i.status <> 'VOID' OR i.number IS NOT NULL));
UPDATE charges SET reseller_invoice_id = (
    SELECT MIN(l.invoice_id) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
    WHERE l.charge_id = charges.id AND i.recipient_reseller_id IS NOT NULL
      AND (i.status <> 'VOID' OR i.number IS NOT NULL));
CREATE INDEX idx_charges_customer_invoice ON charges(customer_invoice_id);
CREATE INDEX idx_charges_reseller_invoice ON charges(reseller_invoice_id);
CREATE INDEX idx_charges_uninvoiced ON charges(period, customer_id)
    WHERE customer_invoice_id IS NULL OR reseller_invoice_id IS NULL;
DROP INDEX uq_invoices_period_parties;
CREATE UNIQUE INDEX uq_invoices_open_draft ON invoices(period, issuer_key, recipient_key, currency)
    WHERE status = 'DRAFT' AND credited_invoice_id IS NULL
"#;

/// The way back: only while each period has one ordinary invoice between two parties.
const DOWN: &str = r#"
DROP INDEX uq_invoices_open_draft;
CREATE UNIQUE INDEX uq_invoices_period_parties ON invoices(period, issuer_key, recipient_key, currency) WHERE kind = 'INVOICE';
DROP INDEX idx_charges_uninvoiced;
DROP INDEX idx_charges_reseller_invoice;
DROP INDEX idx_charges_customer_invoice;
ALTER TABLE charges DROP COLUMN reseller_invoice_id;
ALTER TABLE charges DROP COLUMN customer_invoice_id
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite cannot drop a column that has a foreign key, so the way back would be a
        // table rebuild; there the link is kept by the code alone (invoices are never deleted).
        let reference = match manager.get_database_backend() {
            DbBackend::Postgres => "REFERENCES invoices(id)",
            _ => "",
        };
        ddl::run(manager, &UP.replace("{invoice}", reference)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, DOWN).await
    }
}
