//! Reading webhook endpoints and their delivery log (`webhooks:manage`).

use async_graphql::{Context, ID, Object};

use crate::domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use crate::domain::webhooks::{self, deliveries};
use crate::graphql::types::webhooks::{WebhookDelivery, WebhookEndpoint};
use crate::graphql::{ResultExt, actor, domain, parse_id};

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// Your organisation's webhook endpoints (the operator: every one), oldest first.
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let endpoints = webhooks::list(domain(ctx), actor(ctx)?).await.gql()?;
        Ok(endpoints.into_iter().map(Into::into).collect())
    }

    /// An endpoint's deliveries, newest first, with every try: `first` (at most 100) older
    /// than delivery `before`, of `status` (PENDING, DELIVERED, FAILED) if given.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        #[graphql(default = 20)] first: i32,
        before: Option<ID>,
        status: Option<String>,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        let endpoint = parse_id::<WebhookEndpointId>(&endpoint_id, "endpointId")?.get();
        let before = before.map(|id| parse_id::<WebhookDeliveryId>(&id, "before")).transpose()?.map(|id| id.get());
        let first = u64::try_from(first.max(1)).unwrap_or(1);
        let page = deliveries::log(domain(ctx), actor(ctx)?, endpoint, first, before, status.as_deref()).await.gql()?;
        Ok(page.into_iter().map(Into::into).collect())
    }
}
