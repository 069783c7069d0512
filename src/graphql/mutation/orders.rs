//! Ordering, the subscription lifecycle, and retrying provisioning.

use async_graphql::{Context, ID, Object, SimpleObject};

use crate::domain::fulfilment;
use crate::domain::orders;
use crate::domain::subscriptions::{self, Change, Changed};
use crate::graphql::parse_id;
use crate::graphql::query::orders::PlaceOrderInput;
use crate::graphql::types::orders::{Order, ProvisioningJob, Subscription, Written};
use crate::graphql::{ResultExt, actor, domain, own_pricing, whole_snapshot};

/// The order placed, or the original one when the key was seen before.
#[derive(SimpleObject)]
pub struct PlaceOrderPayload {
    pub order: Order,
    /// True when this call replayed an earlier one with the same idempotency key.
    pub replayed: bool,
}

/// A subscription after a lifecycle change.
#[derive(SimpleObject)]
pub struct SubscriptionPayload {
    pub subscription: Subscription,
    /// True when this call replayed an earlier one with the same idempotency key.
    pub replayed: bool,
    /// Things the caller should know (the vendor's update limit approaching).
    pub warnings: Vec<String>,
}

impl From<Changed> for SubscriptionPayload {
    fn from(changed: Changed) -> Self {
        Self {
            subscription: {
                let written = Written::subscription(&changed.subscription, changed.shown);
                Subscription(changed.subscription, Some(written))
            },
            replayed: changed.replayed,
            warnings: changed.warnings,
        }
    }
}

/// Reads the catalog an answer shows (offers, and the caller's own prices) before the write,
/// so that nothing the answer shows is read after the commit.
async fn read_catalog_first(ctx: &Context<'_>) -> async_graphql::Result<()> {
    whole_snapshot(ctx).await?;
    own_pricing(ctx).await?;
    Ok(())
}

async fn change(ctx: &Context<'_>, id: &ID, change: Change, key: &str) -> async_graphql::Result<SubscriptionPayload> {
    let id = parse_id(id, "id")?;
    read_catalog_first(ctx).await?;
    subscriptions::change_subscription(domain(ctx), actor(ctx)?, id, change, key).await.map(Into::into).gql()
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// Places an order for a customer (resellers; customers for themselves). Keys are the
    /// customer's: the same key for the same customer with the same input returns the
    /// original order; with another input, CONFLICT; another customer's key is unrelated.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceOrderInput,
        idempotency_key: String,
    ) -> async_graphql::Result<PlaceOrderPayload> {
        let input = input.parse()?;
        read_catalog_first(ctx).await?;
        let placed = orders::place_order(domain(ctx), actor(ctx)?, input, &idempotency_key).await.gql()?;
        Ok(PlaceOrderPayload {
            order: Order(placed.order, Some(Written::order(placed.shown))),
            replayed: placed.replayed,
        })
    }

    /// Sets the seat count. Seats can be removed only within 168 hours of being added.
    async fn change_subscription_quantity(
        &self,
        ctx: &Context<'_>,
        id: ID,
        quantity: i32,
        idempotency_key: String,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &id, Change::Quantity(quantity), &idempotency_key).await
    }

    /// Suspends a subscription (billing continues).
    async fn suspend_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: String,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &id, Change::Suspend, &idempotency_key).await
    }

    /// Resumes a suspended subscription.
    async fn resume_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: String,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &id, Change::Resume, &idempotency_key).await
    }

    /// Cancels a subscription; only within 168 hours of purchase or renewal.
    async fn cancel_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: String,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &id, Change::Cancel, &idempotency_key).await
    }

    /// Turns auto-renew on or off.
    async fn set_auto_renew(
        &self,
        ctx: &Context<'_>,
        id: ID,
        auto_renew: bool,
        idempotency_key: String,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &id, Change::AutoRenew(auto_renew), &idempotency_key).await
    }

    /// Puts a FAILED or DEAD provisioning job back in the queue (operator).
    async fn retry_provisioning(&self, ctx: &Context<'_>, job_id: ID) -> async_graphql::Result<ProvisioningJob> {
        let id = parse_id(&job_id, "jobId")?;
        fulfilment::retry_job(domain(ctx), actor(ctx)?, id).await.map(ProvisioningJob).gql()
    }

    /// Declares that the vendor did not make the change of a DEAD job it never confirmed
    /// (operator): the change is reverted, never billed, and the subscription back in sync.
    async fn abandon_provisioning_job(&self, ctx: &Context<'_>, job_id: ID) -> async_graphql::Result<ProvisioningJob> {
        let id = parse_id(&job_id, "jobId")?;
        fulfilment::abandon_job(domain(ctx), actor(ctx)?, id).await.map(ProvisioningJob).gql()
    }
}
