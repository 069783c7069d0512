//! What each catalog version changed (#13): one row per changed catalog row, written in the
//! transaction that bumps `catalog_version`. A process whose snapshot is at version `v`
//! re-reads only the rows named by versions after `v` instead of the whole catalog. Rows of
//! versions older than the last `CHANGES_KEPT` are pruned by the writes themselves; a
//! snapshot older than that is loaded whole.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE catalog_changes (
    version BIGINT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    row_id BIGINT NOT NULL,
    PRIMARY KEY (version, kind, row_id)
)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["catalog_changes"]).await
    }
}
