//! A vendor that publishes products and is reached through a connector.

use sea_orm::entity::prelude::*;

use crate::enums::ConnectorKind;
use crate::enums::OrganizationStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "vendors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub name: String,
    pub connector_kind: ConnectorKind,
    #[sea_orm(column_type = "JsonBinary")]
    pub connector_settings: Json,
    pub status: OrganizationStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
