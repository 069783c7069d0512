//! A subscription that can no longer produce charges (ended, billed through its end, no
//! usage waiting) is marked settled, and billing runs skip it; recording usage for it or
//! retrying its purchase unsettles it. The partial index serves the runs' scan.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE subscriptions ADD COLUMN billing_settled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX idx_subscriptions_unsettled ON subscriptions(id) WHERE billing_settled = FALSE
"#;

const DOWN: &str = r#"
DROP INDEX idx_subscriptions_unsettled;
ALTER TABLE subscriptions DROP COLUMN billing_settled
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
