//! What an invoice needs to be sent: the parties' legal names, addresses and tax ids and a
//! reseller's payment terms (the operator's come from its settings); an issued invoice's due
//! date and the parties as they were when it was issued (an issued invoice never changes);
//! and on each line the service period, the product and the undiscounted price per
//! billing cycle, kept on the charge too, so every line can be reproduced by hand
//! (round(cycle price × days / days in cycle) × quantity).

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE resellers ADD COLUMN legal_name VARCHAR(200);
ALTER TABLE resellers ADD COLUMN address TEXT;
ALTER TABLE resellers ADD COLUMN tax_id VARCHAR(64);
ALTER TABLE resellers ADD COLUMN payment_terms_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE customers ADD COLUMN legal_name VARCHAR(200);
ALTER TABLE customers ADD COLUMN address TEXT;
ALTER TABLE customers ADD COLUMN tax_id VARCHAR(64);
ALTER TABLE invoices ADD COLUMN due_at {ts};
ALTER TABLE invoices ADD COLUMN parties {json};
ALTER TABLE charges ADD COLUMN cycle_unit_cost {money};
ALTER TABLE charges ADD COLUMN cycle_unit_wholesale {money};
ALTER TABLE charges ADD COLUMN cycle_unit_retail {money};
ALTER TABLE invoice_lines ADD COLUMN service_start {ts};
ALTER TABLE invoice_lines ADD COLUMN service_end {ts};
ALTER TABLE invoice_lines ADD COLUMN product_name VARCHAR(200);
ALTER TABLE invoice_lines ADD COLUMN cycle_unit_price {money};
UPDATE invoice_lines SET
    service_start = (SELECT c.service_start FROM charges c WHERE c.id = invoice_lines.charge_id),
    service_end = (SELECT c.service_end FROM charges c WHERE c.id = invoice_lines.charge_id),
    product_name = (SELECT o.name FROM charges c JOIN offers o ON o.id = c.offer_id WHERE c.id = invoice_lines.charge_id)
    WHERE charge_id IS NOT NULL
"#;

const DOWN: &str = r#"
ALTER TABLE invoice_lines DROP COLUMN cycle_unit_price;
ALTER TABLE invoice_lines DROP COLUMN product_name;
ALTER TABLE invoice_lines DROP COLUMN service_end;
ALTER TABLE invoice_lines DROP COLUMN service_start;
ALTER TABLE charges DROP COLUMN cycle_unit_retail;
ALTER TABLE charges DROP COLUMN cycle_unit_wholesale;
ALTER TABLE charges DROP COLUMN cycle_unit_cost;
ALTER TABLE invoices DROP COLUMN parties;
ALTER TABLE invoices DROP COLUMN due_at;
ALTER TABLE customers DROP COLUMN tax_id;
ALTER TABLE customers DROP COLUMN address;
ALTER TABLE customers DROP COLUMN legal_name;
ALTER TABLE resellers DROP COLUMN payment_terms_days;
ALTER TABLE resellers DROP COLUMN tax_id;
ALTER TABLE resellers DROP COLUMN address;
ALTER TABLE resellers DROP COLUMN legal_name
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
