//! What the vendor did with each change that needed it: the provisioning job a change was
//! sent as, and its outcome (PENDING, DONE, REFUSED or UNCONFIRMED; NULL for a change that
//! needs no vendor call and for changes recorded before outcomes were kept, which count as
//! done), and for a decrease the seats it took from each batch, given back exactly if the
//! vendor refuses it. A subscription with a change the vendor never confirmed carries the reason
//! (`sync_issue`) until an operator settles it.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE subscription_changes ADD COLUMN job_id BIGINT;
ALTER TABLE subscription_changes ADD COLUMN vendor_outcome VARCHAR(16);
ALTER TABLE subscription_changes ADD COLUMN seats_taken {json};
CREATE INDEX ix_subscription_changes_job_id ON subscription_changes (job_id);
ALTER TABLE subscriptions ADD COLUMN sync_issue TEXT
"#;

const DOWN: &str = r#"
ALTER TABLE subscriptions DROP COLUMN sync_issue;
DROP INDEX ix_subscription_changes_job_id;
ALTER TABLE subscription_changes DROP COLUMN seats_taken;
ALTER TABLE subscription_changes DROP COLUMN vendor_outcome;
ALTER TABLE subscription_changes DROP COLUMN job_id
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
