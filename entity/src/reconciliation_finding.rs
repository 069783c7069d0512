//! What matching a vendor's statement found for one vendor subscription, charge cycle and
//! kind of unit: the category, the amounts on both sides, the rule that decided it, and how
//! the operator resolved it.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_findings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub import_id: i64,
    /// What the finding is about, unique per import (the subscription or the vendor's
    /// reference, the cycle's last day and the kind of unit).
    pub group_key: String,
    /// MATCHED, UNBILLED, UNDERBILLED, OVERBILLED, QUANTITY_MISMATCH, PRICE_MISMATCH,
    /// UNKNOWN_SUBSCRIPTION or MISSING_VENDOR_CHARGE.
    pub category: String,
    pub subscription_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub reseller_id: Option<i64>,
    pub offer_id: Option<i64>,
    /// The vendor's id of the subscription ("" when the vendor did not charge it).
    pub subscription_reference: String,
    /// The customer's id at the vendor ("" when unknown).
    pub customer_external_id: String,
    pub sku: String,
    /// SEATS or USAGE.
    pub unit_kind: String,
    /// The first day charged.
    pub charge_start: DateTimeUtc,
    /// The last day of the cycle charged (inclusive).
    pub charge_end: DateTimeUtc,
    /// The statement's rows aggregated (0 for a charge of ours the vendor did not make).
    pub vendor_rows: i32,
    /// The currency of `vendor_amount`, `expected_amount` and `amount`: the statement's
    /// billing currency (ours, for a charge the vendor did not make).
    pub currency: String,
    /// The currency the vendor priced in, and its rate to `currency` (1 for our own cycles).
    pub pricing_currency: String,
    pub exchange_rate: DbDecimal,
    pub vendor_amount: DbDecimal,
    /// What the vendor should have charged, by its own rule, from our cost prices.
    pub expected_amount: Option<DbDecimal>,
    /// Seats at the cycle's end, or units used, as the vendor charged them and as we did.
    pub vendor_quantity: Option<DbDecimal>,
    pub our_quantity: Option<DbDecimal>,
    /// The currency we billed in (the subscription's).
    pub billed_currency: Option<String>,
    pub cost_billed: DbDecimal,
    pub wholesale_billed: DbDecimal,
    pub retail_billed: DbDecimal,
    /// The amount of the category (the leakage, for UNBILLED and UNDERBILLED).
    pub amount: DbDecimal,
    /// The rule that decided the category, with its numbers.
    pub rule: String,
    /// OPEN, EXPLAINED or RECOVERED.
    pub status: String,
    pub note: Option<String>,
    pub resolved_by_user_id: Option<i64>,
    pub resolved_at: Option<DateTimeUtc>,
    /// The charge that recovers the amount, once recovered.
    pub recovery_charge_id: Option<i64>,
    /// Whether the recovery is billed on to the customer too.
    pub recovery_customer_charge: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
