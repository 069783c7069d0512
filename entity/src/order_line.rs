//! One offer and quantity of an order, with the three prices it used.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::OrderLineStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub line_number: i32,
    pub offer_id: i64,
    pub subscription_id: Option<i64>,
    pub quantity: i32,
    pub currency: String,
    pub unit_cost: DbDecimal,
    pub unit_wholesale: DbDecimal,
    pub unit_retail: DbDecimal,
    pub status: OrderLineStatus,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
