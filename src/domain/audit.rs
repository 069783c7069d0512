//! The audit log: one row per mutation, written in the mutation's own transaction.

use entity::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, NotSet, Set};

use super::actor::Actor;
use super::error::Result;

/// Records that `actor` did `action` to an object, with details as JSON.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    action: &str,
    object_type: &str,
    object_id: Option<i64>,
    details: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    audit_log::ActiveModel {
        id: NotSet,
        actor_user_id: Set(actor.user_id),
        actor_role: Set(actor.role()),
        actor_organization_id: Set(actor.organization_id()),
        actor_api_key_id: Set(actor.api_key_id),
        action: Set(action.to_owned()),
        object_type: Set(object_type.to_owned()),
        object_id: Set(object_id),
        details: Set(details),
        occurred_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}
