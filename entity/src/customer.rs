//! An end customer organization, owned by exactly one reseller.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::OrganizationStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub reseller_id: i64,
    pub name: String,
    pub country: String,
    pub currency: String,
    pub tax_rate: DbDecimal,
    pub status: OrganizationStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// For its invoices: legal name (the display name when unset), address, tax id.
    pub legal_name: Option<String>,
    pub address: Option<String>,
    pub tax_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
