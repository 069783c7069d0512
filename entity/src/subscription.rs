//! A customer's subscription to an offer, with prices locked for the term.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::BillingFrequency;
use crate::enums::SubscriptionStatus;
use crate::enums::Term;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub reseller_id: i64,
    pub vendor_id: i64,
    pub offer_id: i64,
    pub order_id: Option<i64>,
    pub quantity: i32,
    pub status: SubscriptionStatus,
    pub term: Term,
    pub billing_frequency: BillingFrequency,
    pub term_start: Option<DateTimeUtc>,
    pub term_end: Option<DateTimeUtc>,
    pub auto_renew: bool,
    pub vendor_reference: Option<String>,
    pub update_count: i32,
    pub currency: String,
    pub unit_cost: DbDecimal,
    pub unit_wholesale: DbDecimal,
    pub unit_retail: DbDecimal,
    pub prices_locked_at: DateTimeUtc,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Ended and billed through its end with no usage waiting: billing runs skip it.
    pub billing_settled: bool,
    /// Why the vendor's state may differ from this row: a change it never confirmed (every
    /// attempt ended without an answer). None while in sync.
    pub sync_issue: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
