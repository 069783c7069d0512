//! One try of a webhook delivery: the answer's status, how long it took, its start.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: i64,
    pub attempt: i32,
    pub attempted_at: DateTimeUtc,
    /// None: no answer (refused, timed out).
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// The answer's first bytes, as text.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
