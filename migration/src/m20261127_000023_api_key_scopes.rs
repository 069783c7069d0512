//! API keys carry scopes (#11): what a key may do within its user's role, as the scope
//! names separated by spaces (`catalog:read orders:write`). Keys made before had none: an
//! empty list, which allows nothing. The audit log names the key an action came through.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE api_keys ADD COLUMN scopes VARCHAR(400) NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN actor_api_key_id BIGINT
"#;

const DOWN: &str = r#"
ALTER TABLE audit_log DROP COLUMN actor_api_key_id;
ALTER TABLE api_keys DROP COLUMN scopes
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
