//! A sellable SKU of a product: term, billing frequency and quantity limits.

use sea_orm::entity::prelude::*;

use crate::enums::BillingFrequency;
use crate::enums::CatalogStatus;
use crate::enums::Term;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "offers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub product_id: i64,
    pub vendor_id: i64,
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub term: Term,
    pub billing_frequency: BillingFrequency,
    pub min_quantity: i32,
    pub max_quantity: i32,
    pub status: CatalogStatus,
    pub usage_meter: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
