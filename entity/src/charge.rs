//! One billed amount for a subscription, period and charge key, at all three prices.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::ChargeKind;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "charges")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub reseller_id: i64,
    pub vendor_id: i64,
    pub offer_id: i64,
    pub billing_run_id: Option<i64>,
    pub period: String,
    pub kind: ChargeKind,
    pub charge_key: String,
    pub description: String,
    pub quantity: DbDecimal,
    pub days_used: Option<i32>,
    pub days_in_period: Option<i32>,
    pub service_start: DateTimeUtc,
    pub service_end: DateTimeUtc,
    pub currency: String,
    pub unit_cost: DbDecimal,
    pub unit_wholesale: DbDecimal,
    pub unit_retail: DbDecimal,
    pub amount_cost: DbDecimal,
    pub amount_wholesale: DbDecimal,
    pub amount_retail: DbDecimal,
    pub created_at: DateTimeUtc,
    /// The live (not VOID) invoice that bills this charge to the customer, if any yet.
    pub customer_invoice_id: Option<i64>,
    /// The live (not VOID) invoice that bills this charge to the reseller, if any yet.
    pub reseller_invoice_id: Option<i64>,
    /// The undiscounted price of one unit for a whole billing cycle at each tier (for usage,
    /// per unit): the prorated unit prices come from these.
    pub cycle_unit_cost: Option<DbDecimal>,
    pub cycle_unit_wholesale: Option<DbDecimal>,
    pub cycle_unit_retail: Option<DbDecimal>,
    /// False for a charge billed to the reseller only (a recovered amount the operator does
    /// not pass on): no customer invoice gathers it.
    pub bills_customer: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
