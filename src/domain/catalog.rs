//! The catalog: vendors, products, offers and dated price points.
//!
//! Reads go through the [`CatalogSnapshot`] (see `catalog_cache`) and apply the tenant scope:
//! the operator sees everything; a vendor sees only its own catalog, whatever its status;
//! resellers and customers see active offers of active products of active vendors. Writes
//! check the same scope, run in one transaction with their audit row, and invalidate the cache.

use chrono::{DateTime, Utc};
use entity::enums::{BillingFrequency, CatalogStatus, ConnectorKind, OrganizationStatus, Role, Term};
use entity::{DbDecimal, offer, price_point, product, vendor};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, Set};
use serde_json::json;

use super::Domain;
use super::actor::Actor;
use super::audit;
use super::catalog_cache::{CatalogSnapshot, ResellerPricing};
use super::error::{Error, Result, map_unique_violation};
use super::money::{Currency, parse_price};
use super::pagination::{Page, PageRequest};
use super::pricing::{self, Dated, in_force};
use super::validate;

impl Dated for price_point::Model {
    fn effective_from(&self) -> DateTime<Utc> {
        self.effective_from
    }
}

/// Whether the caller may see a vendor and, through it, its catalog.
pub fn can_see_vendor(actor: &Actor, vendor: &vendor::Model) -> bool {
    actor.manages_vendor(vendor.id) || (actor.role != Role::Vendor && vendor.status == OrganizationStatus::Active)
}

/// Whether the caller may see a product.
pub fn can_see_product(actor: &Actor, snapshot: &CatalogSnapshot, product: &product::Model) -> bool {
    let Some(vendor) = snapshot.vendors.get(&product.vendor_id) else {
        return false;
    };
    actor.manages_vendor(vendor.id) || (can_see_vendor(actor, vendor) && product.status == CatalogStatus::Active)
}

/// Whether the caller may see an offer.
pub fn can_see_offer(actor: &Actor, snapshot: &CatalogSnapshot, offer: &offer::Model) -> bool {
    let Some(product) = snapshot.products.get(&offer.product_id) else {
        return false;
    };
    actor.manages_vendor(offer.vendor_id)
        || (can_see_product(actor, snapshot, product) && offer.status == CatalogStatus::Active)
}

/// Filters for the vendor list.
#[derive(Clone, Debug, Default)]
pub struct VendorFilter {
    /// Case-insensitive substring of the name or code.
    pub search: Option<String>,
}

/// Filters for the product list.
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    /// Only this vendor's products.
    pub vendor_id: Option<i64>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    /// Only products with this status.
    pub status: Option<CatalogStatus>,
}

/// Filters for the offer list.
#[derive(Clone, Debug, Default)]
pub struct OfferFilter {
    /// Only this vendor's offers.
    pub vendor_id: Option<i64>,
    /// Only this product's offers.
    pub product_id: Option<i64>,
    /// Case-insensitive substring of the SKU or name.
    pub search: Option<String>,
    /// Only this term.
    pub term: Option<Term>,
    /// Only this billing frequency.
    pub billing_frequency: Option<BillingFrequency>,
    /// Only this status.
    pub status: Option<CatalogStatus>,
}

fn matches_search(needle: Option<&str>, haystacks: &[&str]) -> bool {
    match needle.map(str::trim).filter(|n| !n.is_empty()) {
        None => true,
        Some(needle) => {
            let needle = needle.to_lowercase();
            haystacks.iter().any(|h| h.to_lowercase().contains(&needle))
        }
    }
}

/// A page of the vendors the caller may see.
pub fn list_vendors<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    filter: &VendorFilter,
    page: PageRequest,
) -> Page<&'a vendor::Model> {
    let rows = snapshot
        .vendors
        .values()
        .filter(|v| can_see_vendor(actor, v) && matches_search(filter.search.as_deref(), &[&v.name, &v.code]));
    Page::from_sorted(rows, page, |v| v.id)
}

/// A page of the products the caller may see.
pub fn list_products<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    filter: &ProductFilter,
    page: PageRequest,
) -> Page<&'a product::Model> {
    let rows = snapshot.products.values().filter(|p| {
        filter.vendor_id.is_none_or(|id| p.vendor_id == id)
            && filter.status.is_none_or(|s| p.status == s)
            && matches_search(filter.search.as_deref(), &[&p.name])
            && can_see_product(actor, snapshot, p)
    });
    Page::from_sorted(rows, page, |p| p.id)
}

/// A page of the offers the caller may see.
pub fn list_offers<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    filter: &OfferFilter,
    page: PageRequest,
) -> Page<&'a offer::Model> {
    let candidates: Box<dyn Iterator<Item = &offer::Model>> = match filter.product_id {
        Some(product_id) => Box::new(
            snapshot.offers_by_product.get(&product_id).into_iter().flatten().filter_map(|id| snapshot.offers.get(id)),
        ),
        None => Box::new(snapshot.offers.values()),
    };
    let rows = candidates.filter(|o| {
        filter.vendor_id.is_none_or(|id| o.vendor_id == id)
            && filter.term.is_none_or(|t| o.term == t)
            && filter.billing_frequency.is_none_or(|b| o.billing_frequency == b)
            && filter.status.is_none_or(|s| o.status == s)
            && matches_search(filter.search.as_deref(), &[&o.sku, &o.name])
            && can_see_offer(actor, snapshot, o)
    });
    Page::from_sorted(rows, page, |o| o.id)
}

/// A vendor the caller may see, else NotFound.
pub fn get_vendor<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: i64) -> Result<&'a vendor::Model> {
    snapshot.vendors.get(&id).filter(|v| can_see_vendor(actor, v)).ok_or(Error::NotFound("vendor"))
}

/// A product the caller may see, else NotFound.
pub fn get_product<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: i64) -> Result<&'a product::Model> {
    snapshot.products.get(&id).filter(|p| can_see_product(actor, snapshot, p)).ok_or(Error::NotFound("product"))
}

/// An offer the caller may see, else NotFound.
pub fn get_offer<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: i64) -> Result<&'a offer::Model> {
    snapshot.offers.get(&id).filter(|o| can_see_offer(actor, snapshot, o)).ok_or(Error::NotFound("offer"))
}

/// The offers of a product the caller may see, in id order.
pub fn product_offers<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, product_id: i64) -> Vec<&'a offer::Model> {
    snapshot
        .offers_by_product
        .get(&product_id)
        .into_iter()
        .flatten()
        .filter_map(|id| snapshot.offers.get(id))
        .filter(|o| can_see_offer(actor, snapshot, o))
        .collect()
}

/// An offer's prices in one currency as the caller may see them, in force at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferPriceView {
    /// The currency of every amount here.
    pub currency: Currency,
    /// When the price point in force took effect.
    pub effective_from: DateTime<Utc>,
    /// Vendor → operator price: operator and the offer's vendor only.
    pub cost: Option<Decimal>,
    /// The vendor's list price (MSRP): everyone.
    pub list_price: Decimal,
    /// Operator → reseller price: the operator and that reseller only.
    pub wholesale: Option<Decimal>,
    /// Reseller → customer price: the operator, that reseller and its customers.
    pub retail: Option<Decimal>,
}

/// The offer's prices in force at `at`, one per currency (or only `currency`), as `actor`
/// may see them. `reseller` is the reseller whose wholesale and retail prices apply: the
/// caller's own for resellers and customers, a chosen one for the operator.
pub fn offer_prices(
    actor: &Actor,
    snapshot: &CatalogSnapshot,
    offer: &offer::Model,
    reseller: Option<&ResellerPricing>,
    currency: Option<Currency>,
    at: DateTime<Utc>,
) -> Vec<OfferPriceView> {
    let points = snapshot.price_points.get(&offer.id).map(Vec::as_slice).unwrap_or_default();
    let mut currencies: Vec<&str> = points.iter().map(|p| p.currency.as_str()).collect();
    currencies.sort_unstable();
    currencies.dedup();
    let sees_cost = actor.manages_vendor(offer.vendor_id);
    let reseller = reseller
        .filter(|r| actor.is_operator() || actor.reseller_id() == Some(r.reseller.id) || actor.customer_id().is_some());
    currencies
        .into_iter()
        .filter(|code| currency.is_none_or(|c| c.code() == *code))
        .filter_map(|code| {
            let in_currency: Vec<&price_point::Model> = points.iter().filter(|p| p.currency == code).collect();
            let point = in_force(&in_currency, at)?;
            let currency = Currency::parse(code, "currency").ok()?;
            let (wholesale, retail) = match reseller {
                Some(pricing) => {
                    let (wholesale, retail) = resolve_reseller_prices(snapshot, offer, point, pricing, at);
                    (actor.customer_id().is_none().then_some(wholesale), Some(retail))
                }
                None => (None, None),
            };
            Some(OfferPriceView {
                currency,
                effective_from: point.effective_from,
                cost: sees_cost.then_some(point.cost.0),
                list_price: point.list_price.0,
                wholesale,
                retail,
            })
        })
        .collect()
}

impl<T: Dated> Dated for &T {
    fn effective_from(&self) -> DateTime<Utc> {
        (*self).effective_from()
    }
}

/// The wholesale and retail unit prices of `offer` for a reseller, from the point in force.
pub fn resolve_reseller_prices(
    snapshot: &CatalogSnapshot,
    offer: &offer::Model,
    point: &price_point::Model,
    pricing: &ResellerPricing,
    at: DateTime<Utc>,
) -> (Decimal, Decimal) {
    let key = (offer.id, point.currency.clone());
    let tier_id = pricing.reseller.tier_id;
    let tier_markup = snapshot.tiers.get(&tier_id).map(|t| t.markup.0).unwrap_or_default();
    let reseller_price = pricing.wholesale.get(&key).and_then(|rows| in_force(rows, at));
    let tier_price =
        snapshot.tier_prices.get(&(offer.id, tier_id, point.currency.clone())).and_then(|rows| in_force(rows, at));
    let (wholesale, _) = pricing::wholesale_price(point.cost.0, tier_markup, reseller_price, tier_price);
    let explicit_retail = pricing.retail.get(&key).and_then(|rows| in_force(rows, at));
    let default_markup = pricing.reseller.default_retail_markup.map(|m| m.0);
    let (retail, _) = pricing::retail_price(wholesale, point.list_price.0, default_markup, explicit_retail);
    (wholesale, retail)
}

// ----- writes -------------------------------------------------------------------------------

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
    let txn = super::begin_write(&domain.db).await?;
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
    .insert(&txn)
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["vendors.code", "vendors_code"],
            Error::conflict("DUPLICATE_CODE", format!("a vendor with code {code:?} exists")),
        )
    })?;
    audit::record(&txn, actor, "createVendor", "vendor", Some(vendor.id), json!({"code": vendor.code}), now).await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(vendor)
}

/// Updates a vendor (operator only).
pub async fn update_vendor(domain: &Domain, actor: &Actor, id: i64, changes: VendorChanges) -> Result<vendor::Model> {
    actor.require_operator()?;
    let now = domain.clock.now();
    let txn = super::begin_write(&domain.db).await?;
    let current = vendor::Entity::find_by_id(id).one(&txn).await?.ok_or(Error::NotFound("vendor"))?;
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
    let vendor = model.update(&txn).await?;
    audit::record(&txn, actor, "updateVendor", "vendor", Some(id), json!({}), now).await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(vendor)
}

/// Input of `create_product`.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// The vendor publishing it (a vendor caller may only name itself).
    pub vendor_id: i64,
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
    require_catalog_editor(actor, input.vendor_id, "vendor")?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let description = input.description.map(|d| d.trim().to_owned()).unwrap_or_default();
    if description.chars().count() > 4000 {
        return Err(Error::validation("input.description", "at most 4000 characters"));
    }
    let now = domain.clock.now();
    let txn = super::begin_write(&domain.db).await?;
    vendor::Entity::find_by_id(input.vendor_id).one(&txn).await?.ok_or(Error::NotFound("vendor"))?;
    let product = product::ActiveModel {
        id: NotSet,
        vendor_id: Set(input.vendor_id),
        name: Set(name),
        description: Set(description),
        status: Set(CatalogStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        "createProduct",
        "product",
        Some(product.id),
        json!({"vendorId": product.vendor_id}),
        now,
    )
    .await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(product)
}

/// Updates a product (operator, or its vendor).
pub async fn update_product(
    domain: &Domain,
    actor: &Actor,
    id: i64,
    changes: ProductChanges,
) -> Result<product::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let now = domain.clock.now();
    let txn = super::begin_write(&domain.db).await?;
    let current = product::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|p| actor.manages_vendor(p.vendor_id))
        .ok_or(Error::NotFound("product"))?;
    let mut model: product::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(description) = changes.description {
        if description.chars().count() > 4000 {
            return Err(Error::validation("input.description", "at most 4000 characters"));
        }
        model.description = Set(description.trim().to_owned());
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    model.updated_at = Set(now);
    let product = model.update(&txn).await?;
    audit::record(&txn, actor, "updateProduct", "product", Some(id), json!({}), now).await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(product)
}

/// Input of `create_offer`.
#[derive(Clone, Debug)]
pub struct NewOffer {
    /// The product it belongs to.
    pub product_id: i64,
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
    if min > max {
        return Err(Error::validation("input.minQuantity", format!("must not exceed maxQuantity ({max})")));
    }
    Ok(())
}

/// The frequencies a term can be billed at: UPFRONT and ANNUAL need a term of a year or more.
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
    let txn = super::begin_write(&domain.db).await?;
    let product = product::Entity::find_by_id(input.product_id)
        .one(&txn)
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
    .insert(&txn)
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_offers_vendor_sku", "offers.vendor_id, offers.sku"],
            Error::conflict("DUPLICATE_SKU", format!("the vendor already has an offer with SKU {sku:?}")),
        )
    })?;
    audit::record(&txn, actor, "createOffer", "offer", Some(offer.id), json!({"sku": offer.sku}), now).await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(offer)
}

/// Updates an offer (operator, or its vendor).
pub async fn update_offer(domain: &Domain, actor: &Actor, id: i64, changes: OfferChanges) -> Result<offer::Model> {
    actor.require_role(&[Role::Operator, Role::Vendor])?;
    let now = domain.clock.now();
    let txn = super::begin_write(&domain.db).await?;
    let current = offer::Entity::find_by_id(id)
        .one(&txn)
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
    let offer = model.update(&txn).await?;
    audit::record(&txn, actor, "updateOffer", "offer", Some(id), json!({}), now).await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(offer)
}

/// Input of `add_price_point`.
#[derive(Clone, Debug)]
pub struct NewPricePoint {
    /// The offer priced.
    pub offer_id: i64,
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
    let effective_from = input.effective_from.map(super::clock::truncate_to_micros).unwrap_or(now);
    let txn = super::begin_write(&domain.db).await?;
    offer::Entity::find_by_id(input.offer_id)
        .one(&txn)
        .await?
        .filter(|o| actor.manages_vendor(o.vendor_id))
        .ok_or(Error::NotFound("offer"))?;
    let point = price_point::ActiveModel {
        id: NotSet,
        offer_id: Set(input.offer_id),
        currency: Set(currency.code().to_owned()),
        cost: Set(DbDecimal(cost)),
        list_price: Set(DbDecimal(list_price)),
        usage_unit_cost: Set(usage_unit_cost.map(DbDecimal)),
        usage_unit_list_price: Set(usage_unit_list_price.map(DbDecimal)),
        effective_from: Set(effective_from),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_price_points_offer_currency_from", "price_points.offer_id"],
            Error::conflict("DUPLICATE_PRICE_POINT", "a price point for this offer, currency and time exists"),
        )
    })?;
    audit::record(
        &txn,
        actor,
        "addPricePoint",
        "offer",
        Some(input.offer_id),
        json!({"currency": point.currency, "cost": cost.to_string(), "listPrice": list_price.to_string()}),
        now,
    )
    .await?;
    txn.commit().await?;
    domain.catalog.invalidate();
    Ok(point)
}
