//! Login throttling's counts (`domain::logins`): failed attempts per account or client in
//! the current window, shared by every server process. `window_started_unix` is in seconds
//! since the epoch, compared as a number on both backends.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE login_attempts (
    subject TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_started_unix BIGINT NOT NULL
);
CREATE INDEX login_attempts_window ON login_attempts (window_started_unix)
"#;

const DOWN: &str = "DROP TABLE login_attempts";

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
