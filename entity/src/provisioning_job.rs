//! A durable request to a vendor connector, claimed by workers under a lease.

use sea_orm::entity::prelude::*;

use crate::enums::JobStatus;
use crate::enums::ProvisioningAction;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provisioning_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subscription_id: i64,
    pub order_id: Option<i64>,
    pub vendor_id: i64,
    pub action: ProvisioningAction,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub request_id: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: DateTimeUtc,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTimeUtc>,
    pub lease_token: Option<String>,
    pub last_error: Option<String>,
    pub vendor_reference: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
