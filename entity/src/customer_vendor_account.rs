//! A customer's external id at one vendor (its tenant id, say), unique among its
//! reseller's customers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_vendor_accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    /// The customer's reseller: an external id is unique per reseller and vendor.
    pub reseller_id: i64,
    pub vendor_id: i64,
    pub external_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
