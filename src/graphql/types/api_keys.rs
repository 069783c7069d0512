//! API keys as the API shows them: never their secret, except once when made.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::api_keys;

/// An API key: send it as `Authorization: Bearer <key>` on HTTP, or as `authorization` in
/// a WebSocket's `connection_init`. It acts as the user who made it, within its scopes.
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The start of the key (`sy_` and eight characters), to tell keys apart.
    pub prefix: String,
    /// What it may do: `catalog:read`, `customers:write`, `orders:write`,
    /// `subscriptions:write`, `billing:read`, `webhooks:manage`, and for the operator
    /// `catalog:write`, `billing:write`, `reconciliation:write`.
    pub scopes: Vec<String>,
    /// The user it acts as.
    pub user_id: ID,
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_keys::ApiKey> for ApiKey {
    fn from(k: api_keys::ApiKey) -> Self {
        Self {
            id: ID(k.id.to_string()),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            user_id: ID(k.user_id.to_string()),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just made or rotated, with its secret: shown this once, never stored.
#[derive(SimpleObject)]
pub struct IssuedApiKey {
    pub key: ApiKey,
    /// The whole key. Keep it: it cannot be shown again.
    pub secret: String,
}

impl From<api_keys::IssuedKey> for IssuedApiKey {
    fn from(issued: api_keys::IssuedKey) -> Self {
        Self { key: issued.key.into(), secret: issued.secret }
    }
}
