//! A vendor's reconciliation file imported for one period.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_imports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub vendor_id: i64,
    pub period: String,
    pub source_name: String,
    pub format: String,
    pub status: String,
    pub row_count: i32,
    pub imported_by_user_id: Option<i64>,
    pub created_at: DateTimeUtc,
    /// The SHA-256 of the file (hex), unique per vendor.
    pub content_hash: String,
    /// The largest difference of amounts matching accepts (in the statement's currency).
    pub amount_tolerance: DbDecimal,
    /// The largest difference of quantities matching accepts.
    pub quantity_tolerance: DbDecimal,
    /// When the statement was last matched.
    pub matched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
