//! The catalog's version (#13): one row, bumped in the transaction of every catalog or price
//! write. A process whose catalog snapshot has outlived its time-to-live reads this one
//! number and keeps the snapshot when nothing changed, instead of reloading the whole
//! catalog (seconds at 200,000 offers) every few seconds.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 0)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["catalog_version"]).await
    }
}
