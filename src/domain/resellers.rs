//! Resellers, their pricing tiers, and the operator's explicit wholesale prices.
//!
//! Scope: the operator sees and edits everything here; a reseller sees itself (not its
//! tier's markup, which would reveal the operator's cost); vendors and customers see none.

use crate::domain::Tenant;
use crate::domain::catalog_delta::CatalogChange;
use crate::domain::ids::{OfferId, ResellerId, TierId};
use crate::domain::write::{Audit, Write};
use chrono::{DateTime, Utc};
use entity::enums::{OrganizationStatus, Role};
use entity::{DbDecimal, offer, reseller, tier, wholesale_price};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};
use serde_json::json;

use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result, map_unique_violation};
use super::money::{Currency, parse_price, parse_rate};
use super::pagination::{Page, PageRequest, fetch_page};
use super::validate;

/// The largest markup accepted: 10 = 1000 %.
fn max_markup() -> Decimal {
    Decimal::TEN
}

/// All tiers (operator only).
pub async fn list_tiers(domain: &Domain, actor: &Actor) -> Result<Vec<tier::Model>> {
    actor.require_operator()?;
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    Ok(snapshot.tiers.values().cloned().collect())
}

/// Creates a tier with its markup over cost (operator only).
pub async fn create_tier(domain: &Domain, actor: &Actor, name: &str, markup: Decimal) -> Result<tier::Model> {
    actor.require_operator()?;
    let name = validate::text(name, 100, "input.name")?;
    let markup = parse_rate(markup, max_markup(), "input.markup")?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let tier = tier::ActiveModel {
        id: NotSet,
        name: Set(name.clone()),
        markup: Set(DbDecimal(markup)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["tiers.name", "tiers_name"],
            Error::conflict("DUPLICATE_NAME", format!("a tier named {name:?} exists")),
        )
    })?;
    w.catalog_changed(CatalogChange::Tier(tier.id));
    w.commit(Audit::action(actor, "createTier", "tier", Some(tier.id), json!({"markup": markup.to_string()}))).await?;
    Ok(tier)
}

/// Updates a tier's name or markup (operator only).
pub async fn update_tier(
    domain: &Domain,
    actor: &Actor,
    id: TierId,
    name: Option<String>,
    markup: Option<Decimal>,
) -> Result<tier::Model> {
    actor.require_operator()?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = tier::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("tier"))?;
    let mut model: tier::ActiveModel = current.into();
    if let Some(name) = name {
        model.name = Set(validate::text(&name, 100, "input.name")?);
    }
    if let Some(markup) = markup {
        model.markup = Set(DbDecimal(parse_rate(markup, max_markup(), "input.markup")?));
    }
    model.updated_at = Set(now);
    let tier = model.update(w.db()).await.map_err(|e| {
        map_unique_violation(
            e,
            &["tiers.name", "tiers_name"],
            Error::conflict("DUPLICATE_NAME", "a tier with that name exists"),
        )
    })?;
    w.catalog_changed(CatalogChange::Tier(tier.id));
    w.commit(Audit::action(actor, "updateTier", "tier", id, json!({"markup": tier.markup.0.to_string()}))).await?;
    Ok(tier)
}

/// A page of resellers the caller may see.
pub async fn list_resellers(domain: &Domain, actor: &Actor, page: PageRequest) -> Result<Page<reseller::Model>> {
    let select = match actor.tenant {
        Tenant::Operator => reseller::Entity::find(),
        Tenant::Reseller(own) => reseller::Entity::find().filter(reseller::Column::Id.eq(own)),
        Tenant::Vendor(_) | Tenant::Customer(_) => {
            return Err(Error::Forbidden("only the operator and resellers list resellers".into()));
        }
    };
    fetch_page(&domain.db, select, reseller::Column::Id, page).await
}

/// A reseller the caller may see, else NotFound.
pub async fn get_reseller(domain: &Domain, actor: &Actor, id: ResellerId) -> Result<reseller::Model> {
    if !(actor.is_operator() || actor.reseller_id() == Some(id.get())) {
        return Err(Error::NotFound("reseller"));
    }
    reseller::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("reseller"))
}

/// Whether `actor` may see the reseller `id`: the operator and that reseller.
pub fn is_visible_to(actor: &Actor, id: i64) -> bool {
    actor.is_operator() || actor.reseller_id() == Some(id)
}

/// The resellers among `ids` the caller may see (the operator all; a reseller itself), in
/// one statement; the others are left out, exactly like missing ones.
pub async fn resellers_by_ids(domain: &Domain, actor: &Actor, ids: &[i64]) -> Result<Vec<reseller::Model>> {
    let visible: Vec<i64> = ids.iter().copied().filter(|id| is_visible_to(actor, *id)).collect();
    if visible.is_empty() {
        return Ok(Vec::new());
    }
    Ok(reseller::Entity::find().filter(reseller::Column::Id.is_in(visible)).all(&domain.db).await?)
}

/// Input of `create_reseller`.
#[derive(Clone, Debug)]
pub struct NewReseller {
    /// Display name.
    pub name: String,
    /// Its pricing tier.
    pub tier_id: TierId,
    /// The currency it is invoiced in.
    pub currency: String,
    /// Its partner id at vendors (Microsoft MPN id), unique.
    pub external_partner_id: Option<String>,
    /// Prefix of the invoice numbers it issues (`RSL7` → `RSL7-2026-000123`).
    pub invoice_prefix: String,
}

/// Changes of `update_reseller`.
#[derive(Clone, Debug, Default)]
pub struct ResellerChanges {
    /// New name.
    pub name: Option<String>,
    /// New tier.
    pub tier_id: Option<TierId>,
    /// New partner id.
    pub external_partner_id: Option<String>,
    /// New invoice prefix (applies to invoices issued from now on).
    pub invoice_prefix: Option<String>,
    /// New status.
    pub status: Option<OrganizationStatus>,
    /// Legal name, address and tax id for its invoices.
    pub legal: super::customers::LegalDetails,
    /// Days its customers have to pay its invoices (1 to 365).
    pub payment_terms_days: Option<i32>,
}

/// The audit detail of a reseller update: each field that changed, from and to.
fn changed_fields(before: &reseller::Model, after: &reseller::Model) -> serde_json::Value {
    let fields = [
        ("name", json!(before.name), json!(after.name)),
        ("tierId", json!(before.tier_id), json!(after.tier_id)),
        ("externalPartnerId", json!(before.external_partner_id), json!(after.external_partner_id)),
        ("invoicePrefix", json!(before.invoice_prefix), json!(after.invoice_prefix)),
        ("status", json!(format!("{:?}", before.status)), json!(format!("{:?}", after.status))),
        ("legalName", json!(before.legal_name), json!(after.legal_name)),
        ("address", json!(before.address), json!(after.address)),
        ("taxId", json!(before.tax_id), json!(after.tax_id)),
        ("paymentTermsDays", json!(before.payment_terms_days), json!(after.payment_terms_days)),
    ];
    let changed: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| (field.to_owned(), json!({"from": from, "to": to})))
        .collect();
    serde_json::Value::Object(changed)
}

fn invoice_prefix(value: &str) -> Result<String> {
    let prefix = validate::code(value, 16, "input.invoicePrefix")?;
    if prefix.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        Ok(prefix)
    } else {
        Err(Error::validation("input.invoicePrefix", "only upper-case letters and digits"))
    }
}

fn partner_id_conflict(e: sea_orm::DbErr) -> Error {
    map_unique_violation(
        e,
        &["external_partner_id"],
        Error::conflict("DUPLICATE_PARTNER_ID", "another reseller has that external partner id"),
    )
}

/// Creates a reseller (operator only).
pub async fn create_reseller(domain: &Domain, actor: &Actor, input: NewReseller) -> Result<reseller::Model> {
    actor.require_operator()?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let currency = Currency::parse(&input.currency, "input.currency")?;
    let external_partner_id =
        input.external_partner_id.map(|p| validate::code(&p, 64, "input.externalPartnerId")).transpose()?;
    let prefix = invoice_prefix(&input.invoice_prefix)?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    tier::Entity::find_by_id(input.tier_id)
        .one(w.db())
        .await?
        .ok_or_else(|| Error::validation("input.tierId", "no such tier"))?;
    let reseller = reseller::ActiveModel {
        id: NotSet,
        name: Set(name),
        tier_id: Set(input.tier_id.get()),
        currency: Set(currency.code().to_owned()),
        external_partner_id: Set(external_partner_id),
        default_retail_markup: Set(None),
        invoice_prefix: Set(prefix),
        status: Set(OrganizationStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
        legal_name: Set(None),
        address: Set(None),
        tax_id: Set(None),
        payment_terms_days: Set(30),
    }
    .insert(w.db())
    .await
    .map_err(partner_id_conflict)?;
    w.catalog_changed(CatalogChange::Reseller(reseller.id));
    w.commit(Audit::action(
        actor,
        "createReseller",
        "reseller",
        Some(reseller.id),
        json!({"tierId": reseller.tier_id}),
    ))
    .await?;
    Ok(reseller)
}

/// Updates a reseller: the operator changes anything; a reseller keeps its own legal
/// details and payment terms (what its invoices to its customers say), nothing else, and
/// another reseller is not found.
pub async fn update_reseller(
    domain: &Domain,
    actor: &Actor,
    id: ResellerId,
    changes: ResellerChanges,
) -> Result<reseller::Model> {
    if !actor.is_operator() {
        actor.require_role(&[Role::Reseller])?;
        if actor.reseller_id() != Some(id.get()) {
            return Err(Error::NotFound("reseller"));
        }
        let ResellerChanges { name, tier_id, external_partner_id, invoice_prefix, status, .. } = &changes;
        if name.is_some()
            || tier_id.is_some()
            || external_partner_id.is_some()
            || invoice_prefix.is_some()
            || status.is_some()
        {
            return Err(Error::Forbidden(
                "a reseller changes only its legal name, address, tax id and payment terms".into(),
            ));
        }
    }
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = reseller::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("reseller"))?;
    let before = current.clone();
    let mut model: reseller::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(tier_id) = changes.tier_id {
        tier::Entity::find_by_id(tier_id)
            .one(w.db())
            .await?
            .ok_or_else(|| Error::validation("input.tierId", "no such tier"))?;
        model.tier_id = Set(tier_id.get());
    }
    if let Some(partner_id) = changes.external_partner_id {
        model.external_partner_id = Set(Some(validate::code(&partner_id, 64, "input.externalPartnerId")?));
    }
    if let Some(prefix) = changes.invoice_prefix {
        model.invoice_prefix = Set(invoice_prefix(&prefix)?);
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    changes.legal.apply(&mut model.legal_name, &mut model.address, &mut model.tax_id)?;
    if let Some(days) = changes.payment_terms_days {
        if !(1..=365).contains(&days) {
            return Err(Error::validation("input.paymentTermsDays", "between 1 and 365 days"));
        }
        model.payment_terms_days = Set(days);
    }
    model.updated_at = Set(now);
    let reseller = model.update(w.db()).await.map_err(partner_id_conflict)?;
    // The catalog snapshot holds the reseller row; its legal details and payment terms are
    // not read from there, so changing only those (a reseller's own update) keeps the cache.
    let legal_only = reseller::Model {
        legal_name: before.legal_name.clone(),
        address: before.address.clone(),
        tax_id: before.tax_id.clone(),
        payment_terms_days: before.payment_terms_days,
        updated_at: before.updated_at,
        ..reseller.clone()
    } == before;
    if !legal_only {
        w.catalog_changed(CatalogChange::Reseller(reseller.id));
    }
    w.commit(Audit::action(actor, "updateReseller", "reseller", id, changed_fields(&before, &reseller))).await?;
    Ok(reseller)
}

/// Whom an explicit wholesale price applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholesaleTarget {
    /// One reseller.
    Reseller(ResellerId),
    /// Every reseller of a tier without its own price.
    Tier(TierId),
}

/// Input of `set_wholesale_price`.
#[derive(Clone, Debug)]
pub struct NewWholesalePrice {
    /// The offer priced.
    pub offer_id: OfferId,
    /// The reseller or tier it applies to.
    pub target: WholesaleTarget,
    /// ISO 4217 currency.
    pub currency: String,
    /// The unit price.
    pub price: Decimal,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// Sets an explicit operator → reseller (or tier) price (operator only).
pub async fn set_wholesale_price(
    domain: &Domain,
    actor: &Actor,
    input: NewWholesalePrice,
) -> Result<wholesale_price::Model> {
    actor.require_operator()?;
    let currency = Currency::parse(&input.currency, "input.currency")?;
    let price = parse_price(input.price, "input.price")?;
    let now = domain.clock.now();
    let effective_from = input.effective_from.map(super::clock::truncate_to_micros).unwrap_or(now);
    let mut w = Write::begin(domain).await?;
    offer::Entity::find_by_id(input.offer_id).one(w.db()).await?.ok_or(Error::NotFound("offer"))?;
    let (reseller_id, tier_id) = match input.target {
        WholesaleTarget::Reseller(id) => {
            reseller::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("reseller"))?;
            (Some(id), None)
        }
        WholesaleTarget::Tier(id) => {
            tier::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("tier"))?;
            (None, Some(id))
        }
    };
    let row = wholesale_price::ActiveModel {
        id: NotSet,
        offer_id: Set(input.offer_id.get()),
        reseller_id: Set(reseller_id.map(|id| id.get())),
        tier_id: Set(tier_id.map(|id| id.get())),
        currency: Set(currency.code().to_owned()),
        price: Set(DbDecimal(price)),
        effective_from: Set(effective_from),
        created_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_wholesale_prices", "wholesale_prices.offer_id"],
            Error::conflict("DUPLICATE_PRICE", "a wholesale price for this offer, target, currency and time exists"),
        )
    })?;
    w.catalog_changed(match (reseller_id, tier_id) {
        (Some(reseller), _) => CatalogChange::Reseller(reseller.get()),
        _ => CatalogChange::TierPrices(input.offer_id.get()),
    });
    w.commit(Audit::action(
        actor,
        "setWholesalePrice",
        "offer",
        input.offer_id,
        json!({"resellerId": reseller_id, "tierId": tier_id, "currency": row.currency, "price": price.to_string()}),
    ))
    .await?;
    Ok(row)
}
