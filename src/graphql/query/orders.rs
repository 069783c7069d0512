//! Queries for quotes, orders, subscriptions and provisioning jobs.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::fulfilment;
use crate::domain::orders::{self, OrderInput, OrderLineInput};
use crate::domain::pagination::PageRequest;
use crate::domain::subscriptions::{self, SubscriptionFilter};
use crate::graphql::parse_id;
use crate::graphql::types::enums::{JobStatus, SubscriptionStatus};
use crate::graphql::types::orders::{Order, ProvisioningJob, Quote, Subscription};
use crate::graphql::types::{PageConnection, connection};
use crate::graphql::{ResultExt, actor, domain};

/// One line to order.
#[derive(InputObject)]
pub struct OrderLineInputObject {
    pub offer_id: ID,
    pub quantity: i32,
}

/// What to order (or quote).
#[derive(InputObject)]
pub struct PlaceOrderInput {
    pub customer_id: ID,
    pub lines: Vec<OrderLineInputObject>,
    /// The buyer's purchase-order number.
    pub po_number: Option<String>,
}

impl PlaceOrderInput {
    /// The domain input, with ids parsed.
    pub fn parse(self) -> async_graphql::Result<OrderInput> {
        let lines = self
            .lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                Ok(OrderLineInput {
                    offer_id: parse_id(&line.offer_id, &format!("input.lines[{index}].offerId"))?,
                    quantity: line.quantity,
                })
            })
            .collect::<async_graphql::Result<Vec<_>>>()?;
        Ok(OrderInput {
            customer_id: parse_id(&self.customer_id, "input.customerId")?,
            lines,
            po_number: self.po_number,
        })
    }
}

/// Filters for `subscriptions`.
#[derive(InputObject, Default)]
pub struct SubscriptionFilterInput {
    pub customer_id: Option<ID>,
    pub order_id: Option<ID>,
    pub status: Option<SubscriptionStatus>,
    /// Only those out of sync with their vendor (true) or in sync (false).
    pub out_of_sync: Option<bool>,
}

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// The cursor of the newest event: subscribe with `after` set to it to receive every
    /// event from now on, resumable even before the first one arrives (any signed-in caller).
    async fn live_cursor(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        actor(ctx)?;
        Ok(crate::domain::outbox::last_sequence(&domain(ctx).db).await.gql()?.to_string())
    }

    /// Prices an order exactly as `placeOrder` would, without writing anything.
    async fn quote_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> async_graphql::Result<Quote> {
        let actor = actor(ctx)?;
        let input = input.parse()?;
        let quote = orders::quote_order(domain(ctx), actor, &input).await.gql()?;
        Ok(Quote::view(actor, quote))
    }

    /// Orders the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        customer_id: Option<ID>,
    ) -> async_graphql::Result<PageConnection<Order>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let customer_id = customer_id.map(|id| parse_id(&id, "customerId")).transpose()?;
        let page = orders::list_orders(domain(ctx), actor(ctx)?, customer_id, page).await.gql()?;
        Ok(connection(page, |o| o.id, Order::read))
    }

    /// The caller's `first` (at most 100) most recent orders, newest first.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(Some(first.max(1)), child_complexity)")]
    async fn recent_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<Order>> {
        let first = u64::try_from(first).unwrap_or(1);
        let orders = orders::recent_orders(domain(ctx), actor(ctx)?, first).await.gql()?;
        Ok(orders.into_iter().map(Order::read).collect())
    }

    /// One order.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let id = parse_id(&id, "id")?;
        orders::get_order(domain(ctx), actor(ctx)?, id).await.map(Order::read).gql()
    }

    /// Subscriptions the caller may see (a vendor: those to its offers).
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SubscriptionFilterInput>,
    ) -> async_graphql::Result<PageConnection<Subscription>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let filter = filter.unwrap_or_default();
        let filter = SubscriptionFilter {
            customer_id: filter.customer_id.map(|id| parse_id(&id, "filter.customerId")).transpose()?,
            order_id: filter.order_id.map(|id| parse_id(&id, "filter.orderId")).transpose()?,
            status: filter.status.map(Into::into),
            out_of_sync: filter.out_of_sync,
        };
        let page = subscriptions::list_subscriptions(domain(ctx), actor(ctx)?, &filter, page).await.gql()?;
        Ok(connection(page, |s| s.id, Subscription::read))
    }

    /// One subscription.
    async fn subscription(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Subscription> {
        let id = parse_id(&id, "id")?;
        subscriptions::get_subscription(&domain(ctx).db, actor(ctx)?, id).await.map(Subscription::read).gql()
    }

    /// Provisioning jobs the caller may see; operators watch DEAD ones here.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn provisioning_jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<JobStatus>,
        subscription_id: Option<ID>,
    ) -> async_graphql::Result<PageConnection<ProvisioningJob>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let subscription_id = subscription_id.map(|id| parse_id(&id, "subscriptionId")).transpose()?;
        let page = fulfilment::list_jobs(domain(ctx), actor(ctx)?, status.map(Into::into), subscription_id, page)
            .await
            .gql()?;
        Ok(connection(page, |j| j.job.id, ProvisioningJob))
    }
}
