//! A webhook receiver of a reseller (or of the operator: no reseller), with the event types
//! it wants (none listed: all), its signing secret and, during a rotation, the one before.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The owner; None: the operator.
    pub reseller_id: Option<i64>,
    pub url: String,
    pub description: String,
    /// Event type names separated by spaces (`order.status_changed`); empty: every type.
    pub event_types: String,
    /// `whsec_` and the base64 of the key.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// When its deliveries started failing (cleared by a success).
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
