//! Each change in a subscription's history records the prices in force after it (the
//! purchase's, or a renewal's re-read prices), so billing charges every span of time at the
//! prices of the term it belongs to, even after a later renewal changed the row. Rows
//! recorded before this migration have none; billing then falls back to the row's prices.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE subscription_changes ADD COLUMN unit_cost {money};
ALTER TABLE subscription_changes ADD COLUMN unit_wholesale {money};
ALTER TABLE subscription_changes ADD COLUMN unit_retail {money}
"#;

const DOWN: &str = r#"
ALTER TABLE subscription_changes DROP COLUMN unit_retail;
ALTER TABLE subscription_changes DROP COLUMN unit_wholesale;
ALTER TABLE subscription_changes DROP COLUMN unit_cost
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
