//! A reseller's own wholesale prices are read by reseller (`ResellerPricing::load`: on every
//! request with the catalog cache off, and whenever its cached pricing expires). The only
//! index led with the offer, so each read scanned every wholesale price, tier prices included:
//! one per offer, tier and currency, so millions in a catalog of 200,000 offers (#13).

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "CREATE INDEX idx_wholesale_prices_by_reseller ON wholesale_prices(reseller_id, effective_from) \
WHERE reseller_id IS NOT NULL";

const DOWN: &str = "DROP INDEX idx_wholesale_prices_by_reseller";

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
