//! A job in the durable queue, claimed by workers under a lease. Its kind says what it
//! does; jobs with the same ordering key belong to one subject (a subscription, say). The
//! subject columns are set for provisioning jobs and empty for kinds without one.

use sea_orm::entity::prelude::*;

use crate::enums::{JobKind, JobStatus, ProvisioningAction};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: JobKind,
    pub ordering_key: Option<String>,
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
    pub reference: Option<String>,
    pub subscription_id: Option<i64>,
    pub order_id: Option<i64>,
    pub vendor_id: Option<i64>,
    pub action: Option<ProvisioningAction>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
