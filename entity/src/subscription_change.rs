//! One recorded change of a subscription; billing prorates from this history.

use sea_orm::entity::prelude::*;

use crate::DbDecimal;
use crate::enums::Role;
use crate::enums::SubscriptionChangeKind;
use crate::enums::SubscriptionStatus;
use crate::enums::VendorOutcome;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subscription_id: i64,
    pub kind: SubscriptionChangeKind,
    pub actor_user_id: Option<i64>,
    pub actor_role: Role,
    pub quantity_before: i32,
    pub quantity_after: i32,
    pub status_before: SubscriptionStatus,
    pub status_after: SubscriptionStatus,
    pub idempotency_key: Option<String>,
    pub occurred_at: DateTimeUtc,
    /// The prices in force after the change (None on rows recorded before they were kept).
    pub unit_cost: Option<DbDecimal>,
    pub unit_wholesale: Option<DbDecimal>,
    pub unit_retail: Option<DbDecimal>,
    /// The provisioning job the change was sent to the vendor as.
    pub job_id: Option<i64>,
    /// What the vendor did with it; None for a change that needs no vendor call (and for
    /// changes recorded before outcomes were kept: they count as done).
    pub vendor_outcome: Option<VendorOutcome>,
    /// For a decrease: the seats it took from each batch, `[[batch id, seats], …]`.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub seats_taken: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
