//! Catalog queries: vendors, products, offers.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::catalog::direct::Needed;
use crate::domain::catalog::{self, OfferFilter, ProductFilter, VendorFilter};
use crate::domain::ids::{OfferId, ProductId};
use crate::domain::pagination::PageRequest;
use crate::graphql::parse_id;
use crate::graphql::types::catalog::{Offer, Product, Vendor, offers_page, products_page};
use crate::graphql::types::enums::{BillingFrequency, CatalogStatus, Term};
use crate::graphql::types::{PageConnection, connection};
use crate::graphql::{ResultExt, actor, snapshot};

/// Filters for `products`.
#[derive(InputObject, Default)]
pub struct ProductFilterInput {
    /// Only this vendor's products.
    pub vendor_id: Option<ID>,
    /// Case-insensitive text in the name.
    pub search: Option<String>,
    /// Only this status.
    pub status: Option<CatalogStatus>,
}

/// Filters for `offers`.
#[derive(InputObject, Default)]
pub struct OfferFilterInput {
    /// Only this vendor's offers.
    pub vendor_id: Option<ID>,
    /// Only this product's offers.
    pub product_id: Option<ID>,
    /// Case-insensitive text in the SKU or name.
    pub search: Option<String>,
    /// Only this term.
    pub term: Option<Term>,
    /// Only this billing frequency.
    pub billing_frequency: Option<BillingFrequency>,
    /// Only this status.
    pub status: Option<CatalogStatus>,
}

fn optional_id<T: crate::domain::ids::Id>(id: Option<&ID>, field: &str) -> async_graphql::Result<Option<T>> {
    id.map(|id| parse_id(id, field)).transpose()
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Vendors the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn vendors(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> async_graphql::Result<PageConnection<Vendor>> {
        let actor = actor(ctx)?;
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let snapshot = snapshot(ctx, Needed::Vendors).await?;
        let page = catalog::list_vendors(actor, &snapshot, &VendorFilter { search }, page);
        Ok(connection(page, |v| v.id, |v| Vendor(v.clone())))
    }

    /// One vendor.
    async fn vendor(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Vendor> {
        let id = parse_id(&id, "id")?;
        let snapshot = snapshot(ctx, Needed::Vendors).await?;
        catalog::get_vendor(actor(ctx)?, &snapshot, id).map(|v| Vendor(v.clone())).gql()
    }

    /// Products the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ProductFilterInput>,
    ) -> async_graphql::Result<PageConnection<Product>> {
        actor(ctx)?;
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let filter = filter.unwrap_or_default();
        let filter = ProductFilter {
            vendor_id: optional_id(filter.vendor_id.as_ref(), "filter.vendorId")?,
            search: filter.search,
            status: filter.status.map(Into::into),
        };
        products_page(ctx, &filter, page).await
    }

    /// One product.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Product> {
        let id: ProductId = parse_id(&id, "id")?;
        let snapshot = snapshot(ctx, Needed::Products(&[id.get()])).await?;
        catalog::get_product(actor(ctx)?, &snapshot, id).map(|p| Product(p.clone())).gql()
    }

    /// Offers the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn offers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<OfferFilterInput>,
    ) -> async_graphql::Result<PageConnection<Offer>> {
        actor(ctx)?;
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let filter = filter.unwrap_or_default();
        let filter = OfferFilter {
            vendor_id: optional_id(filter.vendor_id.as_ref(), "filter.vendorId")?,
            product_id: optional_id(filter.product_id.as_ref(), "filter.productId")?,
            search: filter.search,
            term: filter.term.map(Into::into),
            billing_frequency: filter.billing_frequency.map(Into::into),
            status: filter.status.map(Into::into),
        };
        offers_page(ctx, &filter, page).await
    }

    /// One offer.
    async fn offer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Offer> {
        let id: OfferId = parse_id(&id, "id")?;
        let snapshot = snapshot(ctx, Needed::Offers(&[id.get()])).await?;
        catalog::get_offer(actor(ctx)?, &snapshot, id).map(|o| Offer(o.clone())).gql()
    }
}
