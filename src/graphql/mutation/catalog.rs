//! Catalog mutations: vendors (operator), products, offers and price points (vendor/operator).

use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};

use crate::domain::catalog::{
    self, NewOffer, NewPricePoint, NewProduct, NewVendor, OfferChanges, ProductChanges, VendorChanges,
};
use crate::graphql::parse_id;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::catalog::{Offer, PricePoint, Product, Vendor};
use crate::graphql::types::enums::{BillingFrequency, CatalogStatus, ConnectorKind, OrganizationStatus, Term};
use crate::graphql::{ResultExt, actor, domain};

/// Input of `createVendor`.
#[derive(InputObject)]
pub struct CreateVendorInput {
    /// Unique short code.
    pub code: String,
    pub name: String,
    pub connector_kind: ConnectorKind,
    /// Connector settings as a JSON object.
    pub connector_settings: Option<Json<serde_json::Value>>,
}

/// Input of `updateVendor`; absent fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateVendorInput {
    pub name: Option<String>,
    pub connector_kind: Option<ConnectorKind>,
    pub connector_settings: Option<Json<serde_json::Value>>,
    pub status: Option<OrganizationStatus>,
}

/// Input of `createProduct`.
#[derive(InputObject)]
pub struct CreateProductInput {
    pub vendor_id: ID,
    pub name: String,
    pub description: Option<String>,
}

/// Input of `updateProduct`.
#[derive(InputObject)]
pub struct UpdateProductInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<CatalogStatus>,
}

/// Input of `createOffer`.
#[derive(InputObject)]
pub struct CreateOfferInput {
    pub product_id: ID,
    /// Unique per vendor.
    pub sku: String,
    pub name: String,
    /// license, seat, GB…
    pub unit: String,
    pub term: Term,
    pub billing_frequency: BillingFrequency,
    pub min_quantity: i32,
    pub max_quantity: i32,
    /// Meter name of an optional usage-rated component.
    pub usage_meter: Option<String>,
}

/// Input of `updateOffer`.
#[derive(InputObject)]
pub struct UpdateOfferInput {
    pub name: Option<String>,
    pub unit: Option<String>,
    pub min_quantity: Option<i32>,
    pub max_quantity: Option<i32>,
    pub status: Option<CatalogStatus>,
}

/// Input of `addPricePoint`.
#[derive(InputObject)]
pub struct AddPricePointInput {
    pub offer_id: ID,
    /// ISO 4217 code.
    pub currency: String,
    /// Vendor → operator unit price.
    pub cost: DecimalScalar,
    /// List price (MSRP).
    pub list_price: DecimalScalar,
    pub usage_unit_cost: Option<DecimalScalar>,
    pub usage_unit_list_price: Option<DecimalScalar>,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Creates a vendor (operator).
    async fn create_vendor(&self, ctx: &Context<'_>, input: CreateVendorInput) -> async_graphql::Result<Vendor> {
        let input = NewVendor {
            code: input.code,
            name: input.name,
            connector_kind: input.connector_kind.into(),
            connector_settings: input.connector_settings.map(|j| j.0),
        };
        catalog::create_vendor(domain(ctx), actor(ctx)?, input).await.map(Vendor).gql()
    }

    /// Updates a vendor (operator).
    async fn update_vendor(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateVendorInput,
    ) -> async_graphql::Result<Vendor> {
        let id = parse_id(&id, "id")?;
        let changes = VendorChanges {
            name: input.name,
            connector_kind: input.connector_kind.map(Into::into),
            connector_settings: input.connector_settings.map(|j| j.0),
            status: input.status.map(Into::into),
        };
        catalog::update_vendor(domain(ctx), actor(ctx)?, id, changes).await.map(Vendor).gql()
    }

    /// Creates a product (operator, or the vendor itself).
    async fn create_product(&self, ctx: &Context<'_>, input: CreateProductInput) -> async_graphql::Result<Product> {
        let input = NewProduct {
            vendor_id: parse_id(&input.vendor_id, "input.vendorId")?,
            name: input.name,
            description: input.description,
        };
        catalog::create_product(domain(ctx), actor(ctx)?, input).await.map(Product).gql()
    }

    /// Updates a product (operator, or its vendor).
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> async_graphql::Result<Product> {
        let id = parse_id(&id, "id")?;
        let changes =
            ProductChanges { name: input.name, description: input.description, status: input.status.map(Into::into) };
        catalog::update_product(domain(ctx), actor(ctx)?, id, changes).await.map(Product).gql()
    }

    /// Creates an offer (operator, or the product's vendor). A duplicate SKU is CONFLICT.
    async fn create_offer(&self, ctx: &Context<'_>, input: CreateOfferInput) -> async_graphql::Result<Offer> {
        let input = NewOffer {
            product_id: parse_id(&input.product_id, "input.productId")?,
            sku: input.sku,
            name: input.name,
            unit: input.unit,
            term: input.term.into(),
            billing_frequency: input.billing_frequency.into(),
            min_quantity: input.min_quantity,
            max_quantity: input.max_quantity,
            usage_meter: input.usage_meter,
        };
        catalog::create_offer(domain(ctx), actor(ctx)?, input).await.map(Offer).gql()
    }

    /// Updates an offer (operator, or its vendor).
    async fn update_offer(&self, ctx: &Context<'_>, id: ID, input: UpdateOfferInput) -> async_graphql::Result<Offer> {
        let id = parse_id(&id, "id")?;
        let changes = OfferChanges {
            name: input.name,
            unit: input.unit,
            min_quantity: input.min_quantity,
            max_quantity: input.max_quantity,
            status: input.status.map(Into::into),
        };
        catalog::update_offer(domain(ctx), actor(ctx)?, id, changes).await.map(Offer).gql()
    }

    /// Adds a dated price point (operator, or the offer's vendor).
    async fn add_price_point(&self, ctx: &Context<'_>, input: AddPricePointInput) -> async_graphql::Result<PricePoint> {
        let input = NewPricePoint {
            offer_id: parse_id(&input.offer_id, "input.offerId")?,
            currency: input.currency,
            cost: input.cost.0,
            list_price: input.list_price.0,
            usage_unit_cost: input.usage_unit_cost.map(|d| d.0),
            usage_unit_list_price: input.usage_unit_list_price.map(|d| d.0),
            effective_from: input.effective_from,
        };
        catalog::add_price_point(domain(ctx), actor(ctx)?, input).await.map(PricePoint).gql()
    }
}
