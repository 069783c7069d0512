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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
