//! A reseller buying from the operator and selling to its customers.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::OrganizationStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "resellers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub tier_id: i64,
    pub currency: String,
    pub external_partner_id: Option<String>,
    pub default_retail_markup: Option<DbDecimal>,
    pub invoice_prefix: String,
    pub status: OrganizationStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// For its invoices: its legal name (the display name when unset), postal address and
    /// tax id, and the days its customers have to pay.
    pub legal_name: Option<String>,
    pub address: Option<String>,
    pub tax_id: Option<String>,
    pub payment_terms_days: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
