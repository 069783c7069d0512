//! Listing API keys.

use async_graphql::{Context, Object};

use crate::domain::api_keys;
use crate::graphql::types::api_keys::ApiKey;
use crate::graphql::{ResultExt, actor, domain};

#[derive(Default)]
pub struct ApiKeysQuery;

#[Object]
impl ApiKeysQuery {
    /// The API keys of your organisation (the operator: all), newest first, revoked ones
    /// included. Signed-in users only.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let keys = api_keys::list(domain(ctx), actor(ctx)?).await.gql()?;
        Ok(keys.into_iter().map(Into::into).collect())
    }
}
