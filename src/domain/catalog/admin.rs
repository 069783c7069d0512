//! Catalog administration: creating and updating vendors, products, offers and price
//! points. The operator manages every vendor's catalog, a vendor only its own (another
//! vendor's is NotFound). Each write is one `Write` with its audit row and invalidates the
//! catalog cache after commit.

use crate::domain::catalog_delta::CatalogChange;
use crate::domain::ids::{OfferId, ProductId, VendorId};
use crate::domain::write::{Audit, Write};
use chrono::{DateTime, Utc};
use entity::enums::{BillingFrequency, CatalogStatus, ConnectorKind, OrganizationStatus, Role, Term};
use entity::{DbDecimal, offer, price_point, product, vendor};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, Set};
use serde_json::json;

use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result, map_unique_violation};
use crate::domain::money::{Currency, parse_price};
use crate::domain::validate;

/// Input of `create_vendor`.
#[derive(Clone, Debug)]
pub struct NewVendor {
    /// Unique short code (`microsoft`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// How the vendor is reached.
    pub connector_kind: ConnectorKind,
    /// Connector settings (endpoint URL, latency…), as JSON.
    pub connector_settings: Option<serde_json::Value>,
}

/// Changes of `update_vendor`; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct VendorChanges {
    /// New name.
    pub name: Option<String>,
    /// New connector kind.
    pub connector_kind: Option<ConnectorKind>,
    /// New connector settings.
    pub connector_settings: Option<serde_json::Value>,
    /// New status.
    pub status: Option<OrganizationStatus>,
}

fn connector_settings(value: Option<serde_json::Value>, field: &str) -> Result<serde_json::Value> {
    match value {
        None => Ok(json!({})),
        Some(value @ serde_json::Value::Object(_)) => Ok(value),
        Some(_) => Err(Error::validation(field, "must be a JSON object")),
    }
}

/// Creates a vendor (operator only).
pub async fn create_vendor(domain: &Domain, actor: &Actor, input: NewVendor) -> Result<vendor::Model> {
    actor.require_operator()?;
    let code = validate::code(&input.code, 64, "input.code")?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let settings = connector_settings(input.connector_settings, "input.connectorSettings")?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let vendor = vendor::ActiveModel {
        id: NotSet,
        code: Set(code.clone()),
        name: Set(name),
        connector_kind: Set(input.connector_kind),
        connector_settings: Set(settings),
        status: Set(OrganizationStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["vendors.code", "vendors_code"],
            Error::conflict("DUPLICATE_CODE", format!("a vendor with code {code:?} exists")),
        )
    })?;
    w.catalog_changed(CatalogChange::Vendor(vendor.id));
    w.commit(Audit::action(actor, "createVendor", "vendor", Some(vendor.id), json!({"code": vendor.code}))).await?;
    Ok(vendor)
}

/// Updates a vendor (operator only).
pub async fn update_vendor(
    domain: &Domain,
    actor: &Actor,
    id: VendorId,
    changes: VendorChanges,
) -> Result<vendor::Model> {
    actor.require_operator()?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = vendor::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("vendor"))?;
    let mut model: vendor::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(kind) = changes.connector_kind {
        model.connector_kind = Set(kind);
    }
    if let Some(settings) = changes.connector_settings {
        model.connector_settings = Set(connector_settings(Some(settings), "input.connectorSettings")?);
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    model.updated_at = Set(now);
    let vendor = model.update(w.db()).await?;
    w.catalog_changed(CatalogChange::Vendor(vendor.id));
    w.commit(Audit::action(actor, "updateVendor", "vendor", id, json!({}))).await?;
    Ok(vendor)
}

/// Input of `create_product`.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// The vendor publishing it (a vendor caller may only name itself).
    pub vendor_id: VendorId,
    /// Display name.
    pub name: String,
    /// Free-text description.
    pub description: Option<String>,
}

/// Changes of `update_product`.
#[derive(Clone, Debug, Default)]
pub struct ProductChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<CatalogStatus>,
}

/// Refuses roles that never edit catalogs, then hides other vendors' catalogs as NotFound.
fn require_catalog_editor(actor: &Actor, vendor_id: i64, what: &'static str) -> Result<()> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    if actor.manages_vendor(vendor_id) { Ok(()) } else { Err(Error::NotFound(what)) }
}

/// Creates a product (operator, or the vendor itself).
pub async fn create_product(domain: &Domain, actor: &Actor, input: NewProduct) -> Result<product::Model> {
    require_catalog_editor(actor, input.vendor_id.get(), "vendor")?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let description = validate::free_text(input.description.as_deref().unwrap_or_default(), 4000, "input.description")?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    vendor::Entity::find_by_id(input.vendor_id).one(w.db()).await?.ok_or(Error::NotFound("vendor"))?;
    let product = product::ActiveModel {
        id: NotSet,
        vendor_id: Set(input.vendor_id.get()),
        name: Set(name),
        description: Set(description),
        status: Set(CatalogStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await?;
    w.catalog_changed(CatalogChange::Product(product.id));
    w.commit(Audit::action(
        actor,
        "createProduct",
        "product",
        Some(product.id),
        json!({"vendorId": product.vendor_id}),
    ))
    .await?;
    Ok(product)
}

/// Updates a product (operator, or its vendor).
pub async fn update_product(
    domain: &Domain,
    actor: &Actor,
    id: ProductId,
    changes: ProductChanges,
) -> Result<product::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = product::Entity::find_by_id(id)
        .one(w.db())
        .await?
        .filter(|p| actor.manages_vendor(p.vendor_id))
        .ok_or(Error::NotFound("product"))?;
    let mut model: product::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(description) = changes.description {
        model.description = Set(validate::free_text(&description, 4000, "input.description")?);
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    model.updated_at = Set(now);
    let product = model.update(w.db()).await?;
    w.catalog_changed(CatalogChange::Product(product.id));
    w.commit(Audit::action(actor, "updateProduct", "product", id, json!({}))).await?;
    Ok(product)
}

/// Input of `create_offer`.
#[derive(Clone, Debug)]
pub struct NewOffer {
    /// The product it belongs to.
    pub product_id: ProductId,
    /// The SKU, unique per vendor.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// The unit sold (license, seat, GB…).
    pub unit: String,
    /// Commitment term.
    pub term: Term,
    /// Billing frequency.
    pub billing_frequency: BillingFrequency,
    /// Smallest quantity per subscription.
    pub min_quantity: i32,
    /// Largest quantity per subscription.
    pub max_quantity: i32,
    /// The usage meter of an optional usage-rated component.
    pub usage_meter: Option<String>,
}

/// Changes of `update_offer`.
#[derive(Clone, Debug, Default)]
pub struct OfferChanges {
    /// New name.
    pub name: Option<String>,
    /// New unit.
    pub unit: Option<String>,
    /// New minimum quantity.
    pub min_quantity: Option<i32>,
    /// New maximum quantity.
    pub max_quantity: Option<i32>,
    /// New status.
    pub status: Option<CatalogStatus>,
}

fn check_quantity_range(min: i32, max: i32) -> Result<()> {
    if min < 0 {
        return Err(Error::validation("input.minQuantity", "must not be negative"));
    }
    if max < 1 {
        return Err(Error::validation("input.maxQuantity", "must be at least 1"));
    }
    if max > crate::domain::money::MAX_QUANTITY {
        return Err(Error::validation("input.maxQuantity", format!("at most {}", crate::domain::money::MAX_QUANTITY)));
    }
    if min > max {
        return Err(Error::validation("input.minQuantity", format!("must not exceed maxQuantity ({max})")));
    }
    Ok(())
}

/// The frequencies a term can be billed at: ANNUAL needs a term of a year or more; UPFRONT
/// bills the whole term, whatever its length.
fn check_term_frequency(term: Term, frequency: BillingFrequency) -> Result<()> {
    if term == Term::P1m && frequency == BillingFrequency::Annual {
        return Err(Error::validation("input.billingFrequency", "a P1M term cannot be billed annually"));
    }
    Ok(())
}

/// Creates an offer (operator, or the product's vendor). A duplicate SKU is a CONFLICT.
pub async fn create_offer(domain: &Domain, actor: &Actor, input: NewOffer) -> Result<offer::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let sku = validate::code(&input.sku, 100, "input.sku")?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let unit = validate::text(&input.unit, 32, "input.unit")?;
    check_quantity_range(input.min_quantity, input.max_quantity)?;
    check_term_frequency(input.term, input.billing_frequency)?;
    let usage_meter = input.usage_meter.map(|m| validate::code(&m, 100, "input.usageMeter")).transpose()?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let product = product::Entity::find_by_id(input.product_id)
        .one(w.db())
        .await?
        .filter(|p| actor.manages_vendor(p.vendor_id))
        .ok_or(Error::NotFound("product"))?;
    let offer = offer::ActiveModel {
        id: NotSet,
        product_id: Set(product.id),
        vendor_id: Set(product.vendor_id),
        sku: Set(sku.clone()),
        name: Set(name),
        unit: Set(unit),
        term: Set(input.term),
        billing_frequency: Set(input.billing_frequency),
        min_quantity: Set(input.min_quantity),
        max_quantity: Set(input.max_quantity),
        status: Set(CatalogStatus::Active),
        usage_meter: Set(usage_meter),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_offers_vendor_sku", "offers.vendor_id, offers.sku"],
            Error::conflict("DUPLICATE_SKU", format!("the vendor already has an offer with SKU {sku:?}")),
        )
    })?;
    w.catalog_changed(CatalogChange::Offer(offer.id));
    w.commit(Audit::action(actor, "createOffer", "offer", Some(offer.id), json!({"sku": offer.sku}))).await?;
    Ok(offer)
}

/// Updates an offer (operator, or its vendor).
pub async fn update_offer(domain: &Domain, actor: &Actor, id: OfferId, changes: OfferChanges) -> Result<offer::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = offer::Entity::find_by_id(id)
        .one(w.db())
        .await?
        .filter(|o| actor.manages_vendor(o.vendor_id))
        .ok_or(Error::NotFound("offer"))?;
    check_quantity_range(
        changes.min_quantity.unwrap_or(current.min_quantity),
        changes.max_quantity.unwrap_or(current.max_quantity),
    )?;
    let mut model: offer::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(unit) = changes.unit {
        model.unit = Set(validate::text(&unit, 32, "input.unit")?);
    }
    if let Some(min) = changes.min_quantity {
        model.min_quantity = Set(min);
    }
    if let Some(max) = changes.max_quantity {
        model.max_quantity = Set(max);
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    model.updated_at = Set(now);
    let offer = model.update(w.db()).await?;
    w.catalog_changed(CatalogChange::Offer(offer.id));
    w.commit(Audit::action(actor, "updateOffer", "offer", id, json!({}))).await?;
    Ok(offer)
}

/// Input of `add_price_point`.
#[derive(Clone, Debug)]
pub struct NewPricePoint {
    /// The offer priced.
    pub offer_id: OfferId,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Vendor → operator unit price.
    pub cost: Decimal,
    /// List price (MSRP).
    pub list_price: Decimal,
    /// Cost per usage unit of the metered component, if any.
    pub usage_unit_cost: Option<Decimal>,
    /// List price per usage unit, if any.
    pub usage_unit_list_price: Option<Decimal>,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// Adds a dated price point (operator, or the offer's vendor). Prices are never edited in
/// place: a new point with a later `effective_from` supersedes the old one, so subscriptions
/// keep the prices they locked.
pub async fn add_price_point(domain: &Domain, actor: &Actor, input: NewPricePoint) -> Result<price_point::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let currency = Currency::parse(&input.currency, "input.currency")?;
    let cost = parse_price(input.cost, "input.cost")?;
    let list_price = parse_price(input.list_price, "input.listPrice")?;
    let usage_unit_cost = input.usage_unit_cost.map(|p| parse_price(p, "input.usageUnitCost")).transpose()?;
    let usage_unit_list_price =
        input.usage_unit_list_price.map(|p| parse_price(p, "input.usageUnitListPrice")).transpose()?;
    let now = domain.clock.now();
    let effective_from = input.effective_from.map(crate::domain::clock::truncate_to_micros).unwrap_or(now);
    let mut w = Write::begin(domain).await?;
    offer::Entity::find_by_id(input.offer_id)
        .one(w.db())
        .await?
        .filter(|o| actor.manages_vendor(o.vendor_id))
        .ok_or(Error::NotFound("offer"))?;
    let point = price_point::ActiveModel {
        id: NotSet,
        offer_id: Set(input.offer_id.get()),
        currency: Set(currency.code().to_owned()),
        cost: Set(DbDecimal(cost)),
        list_price: Set(DbDecimal(list_price)),
        usage_unit_cost: Set(usage_unit_cost.map(DbDecimal)),
        usage_unit_list_price: Set(usage_unit_list_price.map(DbDecimal)),
        effective_from: Set(effective_from),
        created_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_price_points_offer_currency_from", "price_points.offer_id"],
            Error::conflict("DUPLICATE_PRICE_POINT", "a price point for this offer, currency and time exists"),
        )
    })?;
    w.catalog_changed(CatalogChange::PricePoints(input.offer_id.get()));
    w.commit(Audit::action(
        actor,
        "addPricePoint",
        "offer",
        input.offer_id,
        json!({"currency": point.currency, "cost": cost.to_string(), "listPrice": list_price.to_string()}),
    ))
    .await?;
    Ok(point)
}
