//! The operations dashboard (#12) counts finished jobs per minute by outcome over the last
//! hour: an index on `finished_at` keeps that a range read, however many jobs the table holds.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "CREATE INDEX idx_jobs_finished ON jobs(finished_at)";

const DOWN: &str = "DROP INDEX idx_jobs_finished";

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
