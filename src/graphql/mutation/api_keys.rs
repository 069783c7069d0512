//! Making, rotating and revoking API keys (signed-in users only).

use async_graphql::{Context, ID, Object};

use crate::domain::api_keys;
use crate::domain::ids::ApiKeyId;
use crate::graphql::types::api_keys::{ApiKey, IssuedApiKey};
use crate::graphql::{ResultExt, actor, domain, parse_id};

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Makes an API key acting as you, with `scopes` (see `ApiKey.scopes`). The secret is in
    /// the answer only: keep it. Signed-in users only; every key action is audited.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<String>,
    ) -> async_graphql::Result<IssuedApiKey> {
        api_keys::create(domain(ctx), actor(ctx)?, &name, &scopes.join(" ")).await.map(Into::into).gql()
    }

    /// Revokes a key of your organisation: it is refused from its next request on.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let id = parse_id::<ApiKeyId>(&id, "id")?.get();
        api_keys::revoke(domain(ctx), actor(ctx)?, id).await.map(Into::into).gql()
    }

    /// Replaces a key by a new one with the same name, scopes and user, revoking the old one
    /// at once; the new secret is in the answer only.
    async fn rotate_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<IssuedApiKey> {
        let id = parse_id::<ApiKeyId>(&id, "id")?.get();
        api_keys::rotate(domain(ctx), actor(ctx)?, id).await.map(Into::into).gql()
    }
}
