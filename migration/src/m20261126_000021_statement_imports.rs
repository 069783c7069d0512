//! Vendor statements as imported (#10): an import remembers the SHA-256 of its file, unique
//! per vendor, so the same file imported again returns the earlier import; a line keeps the
//! customer's name, whether it was charged per seat or for usage, and its pricing currency.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE reconciliation_imports ADD COLUMN content_hash CHAR(64) NOT NULL DEFAULT '';
CREATE UNIQUE INDEX uq_reconciliation_imports_content ON reconciliation_imports (vendor_id, content_hash);
ALTER TABLE reconciliation_lines ADD COLUMN customer_name TEXT NOT NULL DEFAULT '';
ALTER TABLE reconciliation_lines ADD COLUMN unit_kind VARCHAR(8) NOT NULL DEFAULT 'SEATS';
ALTER TABLE reconciliation_lines ADD COLUMN pricing_currency CHAR(3) NOT NULL DEFAULT ''
"#;

const DOWN: &str = r#"
DROP INDEX uq_reconciliation_imports_content;
ALTER TABLE reconciliation_imports DROP COLUMN content_hash;
ALTER TABLE reconciliation_lines DROP COLUMN customer_name;
ALTER TABLE reconciliation_lines DROP COLUMN unit_kind;
ALTER TABLE reconciliation_lines DROP COLUMN pricing_currency
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
