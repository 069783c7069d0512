//! A batch of seats added at one time, with its own 168 h decrease window.

use sea_orm::entity::prelude::*;

use crate::enums::SeatBatchSource;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "seat_batches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subscription_id: i64,
    pub source: SeatBatchSource,
    pub quantity: i32,
    pub remaining: i32,
    pub added_at: DateTimeUtc,
    pub window_ends_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
