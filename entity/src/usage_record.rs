//! A metered usage record; its external id is deduplicated forever.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub reseller_id: i64,
    pub customer_id: i64,
    pub subscription_id: i64,
    pub external_id: String,
    pub meter: String,
    pub quantity: DbDecimal,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub billed_period: Option<String>,
    pub charge_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
