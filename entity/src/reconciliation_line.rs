//! One row of a vendor reconciliation file and what matching found.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub import_id: i64,
    pub row_number: i32,
    pub customer_external_id: String,
    pub reseller_external_id: Option<String>,
    pub subscription_reference: String,
    pub sku: String,
    pub charge_type: String,
    pub charge_start: Option<DateTimeUtc>,
    pub charge_end: Option<DateTimeUtc>,
    pub quantity: DbDecimal,
    pub unit_price: DbDecimal,
    pub effective_unit_price: DbDecimal,
    pub exchange_rate: DbDecimal,
    pub subtotal: DbDecimal,
    pub currency: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub raw: Json,
    pub matched_subscription_id: Option<i64>,
    pub finding: Option<String>,
    pub expected_amount: Option<DbDecimal>,
    pub difference: Option<DbDecimal>,
    /// The customer's name at the vendor.
    pub customer_name: String,
    /// SEATS or USAGE: which of the vendor's subtotal rules the line follows.
    pub unit_kind: String,
    /// The currency the vendor priced in (the line is billed in `currency`).
    pub pricing_currency: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
