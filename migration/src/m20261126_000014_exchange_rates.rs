//! Dated exchange rates the operator maintains, and the conversion an invoice line records:
//! the operator invoices a reseller in the reseller's currency, and a charge in another
//! currency is converted at the rate in force on the day it starts. The line keeps the
//! charge's currency, its amount there and the rate, so it can be reproduced by hand.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE exchange_rates (
    id {id},
    from_currency VARCHAR(3) NOT NULL,
    to_currency VARCHAR(3) NOT NULL,
    rate {money} NOT NULL,
    effective_from {ts} NOT NULL,
    created_at {ts} NOT NULL
);
CREATE UNIQUE INDEX uq_exchange_rates ON exchange_rates(from_currency, to_currency, effective_from);
ALTER TABLE invoice_lines ADD COLUMN source_currency VARCHAR(3);
ALTER TABLE invoice_lines ADD COLUMN source_amount {money};
ALTER TABLE invoice_lines ADD COLUMN exchange_rate {money}
"#;

const DOWN: &str = r#"
ALTER TABLE invoice_lines DROP COLUMN exchange_rate;
ALTER TABLE invoice_lines DROP COLUMN source_amount;
ALTER TABLE invoice_lines DROP COLUMN source_currency;
DROP TABLE exchange_rates
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
