//! Finding a charge's invoice lines (is it invoiced on both tiers yet?) without a scan.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "CREATE INDEX idx_invoice_lines_charge ON invoice_lines(charge_id)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "DROP INDEX idx_invoice_lines_charge").await
    }
}
