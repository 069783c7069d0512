//! Managing webhook endpoints (`webhooks:manage`): made, changed, deleted, their secret
//! rotated, a delivery sent again. Every action is audited.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use crate::domain::webhooks::{self, EndpointInput, deliveries};
use crate::graphql::types::webhooks::{WebhookDelivery, WebhookEndpoint, WebhookEndpointWithSecret};
use crate::graphql::{ResultExt, actor, domain, parse_id};

/// Input of `createWebhookEndpoint`.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// An https URL at a public address.
    pub url: String,
    #[graphql(default)]
    pub description: String,
    /// The event types to receive (`order.placed`, `order.status_changed`,
    /// `subscription.changed`, `provisioning.status_changed`, `reconciliation.changed`,
    /// `webhook_endpoint.disabled`); empty: every type.
    #[graphql(default)]
    pub event_types: Vec<String>,
}

/// Input of `updateWebhookEndpoint`: what is given changes.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabling a disabled endpoint forgets its failures.
    pub enabled: Option<bool>,
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Makes a webhook endpoint for your organisation; its signing secret is in the answer.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let input = EndpointInput {
            url: Some(input.url),
            description: Some(input.description),
            event_types: Some(input.event_types),
            enabled: None,
        };
        webhooks::create(domain(ctx), actor(ctx)?, input).await.map(Into::into).gql()
    }

    /// Changes an endpoint.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let id = parse_id::<WebhookEndpointId>(&id, "id")?.get();
        let input = EndpointInput {
            url: input.url,
            description: input.description,
            event_types: input.event_types,
            enabled: input.enabled,
        };
        webhooks::update(domain(ctx), actor(ctx)?, id, input).await.map(Into::into).gql()
    }

    /// Deletes an endpoint with its delivery log; what was still to be sent is not.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<WebhookEndpoint> {
        let id = parse_id::<WebhookEndpointId>(&id, "id")?.get();
        webhooks::delete(domain(ctx), actor(ctx)?, id).await.map(Into::into).gql()
    }

    /// Gives an endpoint a new signing secret (in the answer); the previous one signs too
    /// for `overlapHours` (default 24, at most 168), so the receiver can switch over.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 24)] overlap_hours: i32,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let id = parse_id::<WebhookEndpointId>(&id, "id")?.get();
        webhooks::rotate_secret(domain(ctx), actor(ctx)?, id, overlap_hours).await.map(Into::into).gql()
    }

    /// Sends a delivery again (same `webhook-id` and body, a fresh round of tries).
    async fn redeliver_webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<WebhookDelivery> {
        let id = parse_id::<WebhookDeliveryId>(&id, "id")?.get();
        deliveries::redeliver(domain(ctx), actor(ctx)?, id).await.map(Into::into).gql()
    }
}
