//! Queries for the caller, tiers, resellers and customers.

use async_graphql::{Context, ID, Object};

use crate::domain::customers::{self, CustomerFilter};
use crate::domain::pagination::PageRequest;
use crate::domain::resellers;
use crate::graphql::parse_id;
use crate::graphql::types::parties::{Customer, Me, Reseller, Tier};
use crate::graphql::types::{PageConnection, connection};
use crate::graphql::{ResultExt, actor, domain};

#[derive(Default)]
pub struct PartiesQuery;

#[Object]
impl PartiesQuery {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me(actor(ctx)?.clone()))
    }

    /// Pricing tiers (operator only).
    async fn tiers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Tier>> {
        let tiers = resellers::list_tiers(domain(ctx), actor(ctx)?).await.gql()?;
        Ok(tiers.into_iter().map(Tier).collect())
    }

    /// Resellers the caller may see: all for the operator, itself for a reseller.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn resellers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PageConnection<Reseller>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let page = resellers::list_resellers(domain(ctx), actor(ctx)?, page).await.gql()?;
        Ok(connection(page, |r| r.id, Reseller))
    }

    /// One reseller.
    async fn reseller(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Reseller> {
        let id = parse_id(&id, "id")?;
        resellers::get_reseller(domain(ctx), actor(ctx)?, id).await.map(Reseller).gql()
    }

    /// Customers the caller may see: a reseller's own, a customer itself, all for the operator.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        reseller_id: Option<ID>,
        search: Option<String>,
    ) -> async_graphql::Result<PageConnection<Customer>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let reseller_id = reseller_id.map(|id| parse_id(&id, "resellerId")).transpose()?;
        let filter = CustomerFilter { reseller_id, search };
        let page = customers::list_customers(domain(ctx), actor(ctx)?, &filter, page).await.gql()?;
        Ok(connection(page, |c| c.id, Customer::read))
    }

    /// One customer.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Customer> {
        let id = parse_id(&id, "id")?;
        customers::get_customer(&domain(ctx).db, actor(ctx)?, id).await.map(Customer::read).gql()
    }
}
