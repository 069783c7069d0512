//! One line of an invoice, showing the inputs of its amount.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub invoice_id: i64,
    pub line_number: i32,
    pub charge_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub subscription_id: Option<i64>,
    pub description: String,
    pub quantity: DbDecimal,
    pub unit_price: DbDecimal,
    pub days_used: Option<i32>,
    pub days_in_period: Option<i32>,
    pub amount: DbDecimal,
    pub tax: DbDecimal,
    pub unit_cost: DbDecimal,
    pub unit_wholesale: DbDecimal,
    pub unit_retail: DbDecimal,
    /// For a line converted from another currency: that currency, the amount there and the
    /// rate applied (amount = round(source amount × rate) at this invoice's minor units).
    pub source_currency: Option<String>,
    pub source_amount: Option<DbDecimal>,
    pub exchange_rate: Option<DbDecimal>,
    /// What the line covers: its service period, the product, and the undiscounted price
    /// per billing cycle of this invoice's tier (amount = round(that × days used / days in
    /// cycle) × quantity).
    pub service_start: Option<DateTimeUtc>,
    pub service_end: Option<DateTimeUtc>,
    pub product_name: Option<String>,
    pub cycle_unit_price: Option<DbDecimal>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
