//! Catalog output types: vendors, products, offers and the prices a caller may see.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{offer, price_point, product, vendor};
use rust_decimal::Decimal;

use super::connection::{PageConnection, connection};
use super::enums::{BillingFrequency, CatalogStatus, ConnectorKind, OrganizationStatus, Term};
use crate::domain::Error;
use crate::domain::catalog::direct::Needed;
use crate::domain::catalog::{self, OfferFilter, OfferPriceView, ProductFilter};
use crate::domain::ids::{ProductId, ResellerId, VendorId};
use crate::domain::money::Currency;
use crate::domain::pagination::PageRequest;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::{ResultExt, actor, catalog_read, domain, own_pricing, parse_id, snapshot};

/// An exact amount of money.
#[derive(SimpleObject, Clone, Debug)]
pub struct Money {
    /// The amount, as a decimal string.
    pub amount: DecimalScalar,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl Money {
    /// An amount in a stored currency code; `None` only if the code is not one we bill in.
    pub fn from_code(amount: Decimal, currency: &str) -> Option<Self> {
        Currency::parse(currency, "currency").ok().map(|c| Self::new(amount, c))
    }

    /// An amount in a currency, shown with at least the currency's minor units ("43.20").
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        let mut amount = amount.normalize();
        if amount.scale() < currency.minor_units() {
            amount.rescale(currency.minor_units());
        }
        Self { amount: DecimalScalar(amount), currency: currency.code().to_owned() }
    }
}

/// A vendor publishing products.
pub struct Vendor(pub vendor::Model);

#[Object]
impl Vendor {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique short code.
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn status(&self) -> OrganizationStatus {
        self.0.status.into()
    }

    /// How the vendor is reached: the operator and the vendor itself only.
    async fn connector_kind(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ConnectorKind>> {
        Ok(actor(ctx)?.manages_vendor(self.0.id).then_some(self.0.connector_kind.into()))
    }

    /// The vendor's products the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PageConnection<Product>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let filter = ProductFilter { vendor_id: Some(VendorId::new(self.0.id)), ..ProductFilter::default() };
        products_page(ctx, &filter, page).await
    }
}

/// Whether the connection being resolved is asked for its `totalCount`.
fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// A page of the products the caller may see: from the snapshot, or from the database.
pub async fn products_page(
    ctx: &Context<'_>,
    filter: &ProductFilter,
    page: PageRequest,
) -> async_graphql::Result<PageConnection<Product>> {
    let read = catalog_read(ctx).await?;
    let page = read.products(&domain(ctx).db, actor(ctx)?, filter, page, wants_total(ctx)).await.gql()?;
    Ok(connection(page, |p| p.id, Product))
}

/// A page of the offers the caller may see: from the snapshot, or from the database.
pub async fn offers_page(
    ctx: &Context<'_>,
    filter: &OfferFilter,
    page: PageRequest,
) -> async_graphql::Result<PageConnection<Offer>> {
    let read = catalog_read(ctx).await?;
    let page = read.offers(&domain(ctx).db, actor(ctx)?, filter, page, wants_total(ctx)).await.gql()?;
    Ok(connection(page, |o| o.id, Offer))
}

/// A vendor's product; its offers are the sellable SKUs.
pub struct Product(pub product::Model);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn status(&self) -> CatalogStatus {
        self.0.status.into()
    }

    async fn vendor(&self, ctx: &Context<'_>) -> async_graphql::Result<Vendor> {
        let snapshot = snapshot(ctx, Needed::Vendors).await?;
        catalog::get_vendor(actor(ctx)?, &snapshot, VendorId::new(self.0.vendor_id)).map(|v| Vendor(v.clone())).gql()
    }

    /// The product's offers the caller may see.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(Some(20), child_complexity)")]
    async fn offers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Offer>> {
        let snapshot = snapshot(ctx, Needed::Products(&[self.0.id])).await?;
        Ok(catalog::product_offers(actor(ctx)?, &snapshot, ProductId::new(self.0.id))
            .into_iter()
            .map(|o| Offer(o.clone()))
            .collect())
    }
}

/// A sellable SKU.
pub struct Offer(pub offer::Model);

#[Object]
impl Offer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The SKU, unique per vendor.
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The unit sold: license, seat, GB…
    async fn unit(&self) -> &str {
        &self.0.unit
    }

    async fn term(&self) -> Term {
        self.0.term.into()
    }

    async fn billing_frequency(&self) -> BillingFrequency {
        self.0.billing_frequency.into()
    }

    async fn min_quantity(&self) -> i32 {
        self.0.min_quantity
    }

    async fn max_quantity(&self) -> i32 {
        self.0.max_quantity
    }

    async fn status(&self) -> CatalogStatus {
        self.0.status.into()
    }

    /// The meter of the usage-rated component, if the offer has one.
    async fn usage_meter(&self) -> Option<&str> {
        self.0.usage_meter.as_deref()
    }

    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Product> {
        let snapshot = snapshot(ctx, Needed::Offers(&[self.0.id])).await?;
        catalog::get_product(actor(ctx)?, &snapshot, ProductId::new(self.0.product_id))
            .map(|p| Product(p.clone()))
            .gql()
    }

    async fn vendor(&self, ctx: &Context<'_>) -> async_graphql::Result<Vendor> {
        let snapshot = snapshot(ctx, Needed::Vendors).await?;
        catalog::get_vendor(actor(ctx)?, &snapshot, VendorId::new(self.0.vendor_id)).map(|v| Vendor(v.clone())).gql()
    }

    /// The prices in force now, one per currency, as the caller may see them. Resellers and
    /// customers get their own currency by default. The operator may name a reseller to
    /// see that reseller's wholesale and retail prices.
    async fn prices(
        &self,
        ctx: &Context<'_>,
        currency: Option<String>,
        reseller_id: Option<ID>,
    ) -> async_graphql::Result<Vec<OfferPrice>> {
        let (actor, domain) = (actor(ctx)?, domain(ctx));
        let (snapshot, own) = (snapshot(ctx, Needed::Offers(&[self.0.id])).await?, own_pricing(ctx).await?);
        let reseller_id = reseller_id.as_ref().map(|id| parse_id::<ResellerId>(id, "resellerId")).transpose()?;
        let prices =
            catalog::offer_prices_for_caller(domain, actor, &snapshot, &self.0, &own, currency.as_deref(), reseller_id)
                .await
                .gql()?;
        Ok(prices.into_iter().map(OfferPrice).collect())
    }

    /// Every dated price point (cost and list): the operator and the offer's vendor only.
    async fn price_points(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PricePoint>> {
        if !actor(ctx)?.manages_vendor(self.0.vendor_id) {
            return Err(Error::Forbidden("only the operator and the vendor see price points".into())).gql();
        }
        let snapshot = snapshot(ctx, Needed::Offers(&[self.0.id])).await?;
        Ok(snapshot.price_points.get(&self.0.id).into_iter().flatten().cloned().map(PricePoint).collect())
    }
}

/// An offer's prices in one currency, as the caller may see them.
pub struct OfferPrice(pub OfferPriceView);

#[Object]
impl OfferPrice {
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }

    /// When the vendor's price point in force took effect.
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }

    /// Vendor → operator price: the operator and the offer's vendor only.
    async fn cost(&self) -> Option<Money> {
        self.0.cost.map(|a| Money::new(a, self.0.currency))
    }

    /// The vendor's list price (MSRP).
    async fn list_price(&self) -> Money {
        Money::new(self.0.list_price, self.0.currency)
    }

    /// Operator → reseller price: the operator (naming a reseller) and that reseller.
    async fn wholesale(&self) -> Option<Money> {
        self.0.wholesale.map(|a| Money::new(a, self.0.currency))
    }

    /// Reseller → customer price: the reseller and its customers (and the operator).
    async fn retail(&self) -> Option<Money> {
        self.0.retail.map(|a| Money::new(a, self.0.currency))
    }
}

/// A dated cost and list price of an offer.
pub struct PricePoint(pub price_point::Model);

#[Object]
impl PricePoint {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn currency(&self) -> &str {
        &self.0.currency
    }

    async fn cost(&self) -> DecimalScalar {
        DecimalScalar(self.0.cost.0)
    }

    async fn list_price(&self) -> DecimalScalar {
        DecimalScalar(self.0.list_price.0)
    }

    async fn usage_unit_cost(&self) -> Option<DecimalScalar> {
        self.0.usage_unit_cost.map(|d| DecimalScalar(d.0))
    }

    async fn usage_unit_list_price(&self) -> Option<DecimalScalar> {
        self.0.usage_unit_list_price.map(|d| DecimalScalar(d.0))
    }

    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
}
