//! A charge appears at most once on an invoice, also when two billing runs race.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "CREATE UNIQUE INDEX uq_invoice_lines_charge ON invoice_lines(invoice_id, charge_id)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "DROP INDEX uq_invoice_lines_charge").await
    }
}
