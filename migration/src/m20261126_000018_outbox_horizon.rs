//! How far the outbox was pruned: events up to `pruned_through` are no longer kept, so a
//! live subscription resuming from before it is told its events are lost (never silently
//! skipped). One row.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE outbox_horizon (
    id INTEGER PRIMARY KEY,
    pruned_through BIGINT NOT NULL
);
INSERT INTO outbox_horizon (id, pruned_through) VALUES (1, 0)
"#;

const DOWN: &str = "DROP TABLE outbox_horizon";

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
