//! A reseller's order for one customer.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::OrderStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub reseller_id: i64,
    pub customer_id: i64,
    pub placed_by_user_id: Option<i64>,
    pub idempotency_key: String,
    pub request_hash: String,
    pub po_number: Option<String>,
    pub status: OrderStatus,
    pub currency: String,
    pub total_cost: DbDecimal,
    pub total_wholesale: DbDecimal,
    pub total_retail: DbDecimal,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
