//! Each change in a subscription's history records the prices in force after it (the
//! purchase's, or a renewal's re-read prices), so billing charges every span of time at the
//! prices of the term it belongs to, even after a later renewal changed the row.
//!
//! Backfill: existing changes get the row's prices, which are those of the term in force
//! (so the next renewal compares its new prices with them). And recurring charges of a
//! month that earlier versions cut at a term's end (auto-renew off: fewer days than the
//! month) are renamed to the key the new plan gives that part of a month
//! (`cycle:{start}:to:{end}`), so a whole-month key keeps meaning the whole month.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE subscription_changes ADD COLUMN unit_cost {money};
ALTER TABLE subscription_changes ADD COLUMN unit_wholesale {money};
ALTER TABLE subscription_changes ADD COLUMN unit_retail {money};
UPDATE subscription_changes SET
    unit_cost = (SELECT s.unit_cost FROM subscriptions s WHERE s.id = subscription_changes.subscription_id),
    unit_wholesale = (SELECT s.unit_wholesale FROM subscriptions s WHERE s.id = subscription_changes.subscription_id),
    unit_retail = (SELECT s.unit_retail FROM subscriptions s WHERE s.id = subscription_changes.subscription_id);
UPDATE charges SET charge_key = charge_key || ':to:' || {end_day}
    WHERE charge_key LIKE 'cycle:%' AND charge_key NOT LIKE '%:to:%' AND charge_key NOT LIKE '%:expected'
      AND days_used < days_in_period
"#;

const DOWN: &str = r#"
UPDATE charges SET charge_key = substr(charge_key, 1, length(charge_key) - 14)
    WHERE charge_key LIKE 'cycle:%:to:%' AND charge_key NOT LIKE '%:expected' AND days_used < days_in_period;
ALTER TABLE subscription_changes DROP COLUMN unit_retail;
ALTER TABLE subscription_changes DROP COLUMN unit_wholesale;
ALTER TABLE subscription_changes DROP COLUMN unit_cost
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The day the cut line ends, as `YYYY-MM-DD` (SQLite keeps RFC 3339 text in UTC).
        let end_day = match manager.get_database_backend() {
            DbBackend::Postgres => "to_char(service_end AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            _ => "substr(service_end, 1, 10)",
        };
        ddl::run(manager, &UP.replace("{end_day}", end_day)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, DOWN).await
    }
}
