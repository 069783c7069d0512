//! A dated cost and list price of an offer in one currency.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "price_points")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub offer_id: i64,
    pub currency: String,
    pub cost: DbDecimal,
    pub list_price: DbDecimal,
    pub usage_unit_cost: Option<DbDecimal>,
    pub usage_unit_list_price: Option<DbDecimal>,
    pub effective_from: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
