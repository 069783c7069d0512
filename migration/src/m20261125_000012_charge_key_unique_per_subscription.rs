//! A charge key (`change:41`, `cycle:2027-01-01`, …) is charged once per subscription,
//! whatever the period it lands on: two runs of different periods at once cannot both
//! charge the same change. (Keys already name their period where one is needed: a cycle
//! its start, usage its usage period and run.) Fails on a database that already holds such
//! a double charge: find them with
//! `SELECT subscription_id, charge_key FROM charges GROUP BY 1, 2 HAVING COUNT(*) > 1`.

use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "CREATE UNIQUE INDEX uq_charges_subscription_key ON charges(subscription_id, charge_key)")
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, "DROP INDEX uq_charges_subscription_key").await
    }
}
