//! End customers, their vendor accounts, and the reseller's retail prices.
//!
//! Scope: a reseller sees and edits only its own customers and retail prices; a customer
//! sees only itself; the operator sees all; vendors see none. Another tenant's customer is
//! reported as NotFound, exactly like a missing one.

use crate::domain::Tenant;
use crate::domain::catalog_delta::CatalogChange;
use crate::domain::ids::{CustomerId, OfferId, ResellerId, VendorId};
use crate::domain::write::{Audit, Write};
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::enums::{OrganizationStatus, Role};
use entity::{DbDecimal, customer, customer_vendor_account, offer, reseller, retail_price, vendor};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, Select, Set,
};
use serde_json::json;

use super::Domain;
use super::actor::Actor;
use super::catalog;
use super::error::{Error, Result, map_unique_violation};
use super::money::{Currency, parse_price, parse_rate};
use super::pagination::{Page, PageRequest, fetch_page};
use super::validate;

/// The customers `actor` may see, as a query to narrow further.
fn scoped(actor: &Actor) -> Result<Select<customer::Entity>> {
    match actor.tenant {
        Tenant::Operator => Ok(customer::Entity::find()),
        Tenant::Reseller(reseller) => Ok(customer::Entity::find().filter(customer::Column::ResellerId.eq(reseller))),
        Tenant::Customer(own) => Ok(customer::Entity::find().filter(customer::Column::Id.eq(own))),
        Tenant::Vendor(_) => Err(Error::Forbidden("vendors do not see customers".into())),
    }
}

/// Filters for the customer list.
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    /// Only this reseller's customers (operator).
    pub reseller_id: Option<ResellerId>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
}

/// A page of the customers the caller may see.
pub async fn list_customers(
    domain: &Domain,
    actor: &Actor,
    filter: &CustomerFilter,
    page: PageRequest,
) -> Result<Page<customer::Model>> {
    let mut select = scoped(actor)?;
    if let Some(reseller_id) = filter.reseller_id {
        select = select.filter(customer::Column::ResellerId.eq(reseller_id));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // No name holds a control character or runs past 200 characters, so such a search
        // matches nothing (and PostgreSQL refuses a NUL, SQLite a LIKE pattern that long).
        if search.chars().any(char::is_control) || search.chars().count() > 200 {
            select = select.filter(customer::Column::Id.lt(0));
        } else {
            select = select.filter(customer::Column::Name.contains(search));
        }
    }
    fetch_page(&domain.db, select, customer::Column::Id, page).await
}

/// A customer the caller may see, else NotFound.
pub async fn get_customer<C: ConnectionTrait>(db: &C, actor: &Actor, id: CustomerId) -> Result<customer::Model> {
    scoped(actor)
        .map_err(|_| Error::NotFound("customer"))?
        .filter(customer::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("customer"))
}

/// Customers by id, restricted to those the caller may see (for DataLoaders).
pub async fn customers_by_ids(domain: &Domain, actor: &Actor, ids: &[i64]) -> Result<HashMap<i64, customer::Model>> {
    let Ok(select) = scoped(actor) else {
        return Ok(HashMap::new());
    };
    let rows = select.filter(customer::Column::Id.is_in(ids.iter().copied())).all(&domain.db).await?;
    Ok(rows.into_iter().map(|c| (c.id, c)).collect())
}

/// Vendor accounts (external ids) of the given customers, which the caller may see.
pub async fn vendor_accounts_by_customer(
    domain: &Domain,
    customer_ids: &[i64],
) -> Result<HashMap<i64, Vec<customer_vendor_account::Model>>> {
    let rows = customer_vendor_account::Entity::find()
        .filter(customer_vendor_account::Column::CustomerId.is_in(customer_ids.iter().copied()))
        .all(&domain.db)
        .await?;
    let mut map: HashMap<i64, Vec<_>> = HashMap::new();
    for row in rows {
        map.entry(row.customer_id).or_default().push(row);
    }
    Ok(map)
}

/// A customer's id at one vendor.
#[derive(Clone, Debug)]
pub struct VendorAccount {
    /// The vendor.
    pub vendor_id: VendorId,
    /// The customer's id there (its Microsoft tenant id, say).
    pub external_id: String,
}

/// Input of `create_customer`.
#[derive(Clone, Debug)]
pub struct NewCustomer {
    /// The owning reseller: the caller itself for a reseller, required for the operator.
    pub reseller_id: Option<ResellerId>,
    /// Display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// The currency it is invoiced in.
    pub currency: String,
    /// Its tax rate (0.23 = 23 %).
    pub tax_rate: Decimal,
    /// Its ids at vendors.
    pub vendor_accounts: Vec<VendorAccount>,
}

/// What an invoice needs to name a party: legal name, postal address, tax id. Each field
/// given replaces the stored one; an empty string clears it.
#[derive(Clone, Debug, Default)]
pub struct LegalDetails {
    pub legal_name: Option<String>,
    pub address: Option<String>,
    pub tax_id: Option<String>,
}

impl LegalDetails {
    /// Validates the given fields and sets them on a party's columns (legal name, address,
    /// tax id): a field not given leaves its column, an empty one clears it.
    pub fn apply(
        &self,
        legal_name_column: &mut ActiveValue<Option<String>>,
        address_column: &mut ActiveValue<Option<String>>,
        tax_id_column: &mut ActiveValue<Option<String>>,
    ) -> Result<()> {
        let field = |value: &Option<String>, max: usize, name: &str| -> Result<Option<Option<String>>> {
            match value.as_deref().map(str::trim) {
                None => Ok(None),
                Some("") => Ok(Some(None)),
                Some(text) => Ok(Some(Some(validate::text(text, max, name)?))),
            }
        };
        // An address may span lines: each line is checked as text, empty ones dropped.
        let address = match self.address.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(text) => {
                let lines = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| validate::text(l, 200, "input.address"))
                    .collect::<Result<Vec<_>>>()?;
                if lines.len() > 8 {
                    return Err(Error::validation("input.address", "at most 8 lines"));
                }
                Some(Some(lines.join("\n")))
            }
        };
        let values =
            [field(&self.legal_name, 200, "input.legalName")?, address, field(&self.tax_id, 64, "input.taxId")?];
        for (column, value) in [legal_name_column, address_column, tax_id_column].into_iter().zip(values) {
            if let Some(value) = value {
                *column = Set(value);
            }
        }
        Ok(())
    }
}

/// Changes of `update_customer`.
#[derive(Clone, Debug, Default)]
pub struct CustomerChanges {
    /// Legal name, address and tax id for its invoices.
    pub legal: LegalDetails,
    /// New name.
    pub name: Option<String>,
    /// New country.
    pub country: Option<String>,
    /// New tax rate.
    pub tax_rate: Option<Decimal>,
    /// New status.
    pub status: Option<OrganizationStatus>,
    /// Vendor accounts to add or replace (per vendor).
    pub vendor_accounts: Vec<VendorAccount>,
}

/// The reseller a write acts for: the caller itself, or the one the operator names.
fn acting_reseller(actor: &Actor, named: Option<i64>) -> Result<i64> {
    match actor.role() {
        Role::Reseller => {
            let own = actor.reseller_id().ok_or(Error::Unauthenticated)?;
            match named {
                Some(id) if id != own => Err(Error::NotFound("reseller")),
                _ => Ok(own),
            }
        }
        Role::Operator => named.ok_or_else(|| Error::validation("input.resellerId", "required for the operator")),
        _ => Err(Error::Forbidden("only resellers and the operator manage customers".into())),
    }
}

fn max_tax_rate() -> Decimal {
    Decimal::ONE
}

/// Sets `customer`'s external ids; one names one customer of its reseller at a vendor (another
/// reseller may sell to the same tenant, and a conflict must not tell of it).
async fn upsert_vendor_accounts<C: ConnectionTrait>(
    db: &C,
    customer: &customer::Model,
    accounts: Vec<VendorAccount>,
    now: DateTime<Utc>,
) -> Result<()> {
    for (index, account) in accounts.into_iter().enumerate() {
        let field = format!("input.vendorAccounts[{index}]");
        let external_id = validate::code(&account.external_id, 128, &format!("{field}.externalId"))?;
        vendor::Entity::find_by_id(account.vendor_id)
            .one(db)
            .await?
            .ok_or_else(|| Error::validation(format!("{field}.vendorId"), "no such vendor"))?;
        customer_vendor_account::Entity::delete_many()
            .filter(customer_vendor_account::Column::CustomerId.eq(customer.id))
            .filter(customer_vendor_account::Column::VendorId.eq(account.vendor_id))
            .exec(db)
            .await?;
        customer_vendor_account::ActiveModel {
            id: NotSet,
            customer_id: Set(customer.id),
            reseller_id: Set(customer.reseller_id),
            vendor_id: Set(account.vendor_id.get()),
            external_id: Set(external_id),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            map_unique_violation(
                e,
                &[
                    "uq_customer_vendor_accounts_reseller_external",
                    "customer_vendor_accounts.reseller_id, customer_vendor_accounts.vendor_id, \
                     customer_vendor_accounts.external_id",
                ],
                Error::conflict(
                    "DUPLICATE_EXTERNAL_ID",
                    format!("{field}.externalId is already used by another of the reseller's customers"),
                ),
            )
        })?;
    }
    Ok(())
}

/// Creates a customer for the calling reseller (or, for the operator, the named one).
pub async fn create_customer(domain: &Domain, actor: &Actor, input: NewCustomer) -> Result<customer::Model> {
    let reseller_id = acting_reseller(actor, input.reseller_id.map(|id| id.get()))?;
    let name = validate::text(&input.name, 200, "input.name")?;
    let country = validate::country(&input.country, "input.country")?;
    let currency = Currency::parse(&input.currency, "input.currency")?;
    let tax_rate = parse_rate(input.tax_rate, max_tax_rate(), "input.taxRate")?;
    let now = domain.clock.now();
    let w = Write::begin(domain).await?;
    reseller::Entity::find_by_id(reseller_id).one(w.db()).await?.ok_or(Error::NotFound("reseller"))?;
    let customer = customer::ActiveModel {
        id: NotSet,
        reseller_id: Set(reseller_id),
        name: Set(name),
        country: Set(country),
        currency: Set(currency.code().to_owned()),
        tax_rate: Set(DbDecimal(tax_rate)),
        status: Set(OrganizationStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
        legal_name: Set(None),
        address: Set(None),
        tax_id: Set(None),
    }
    .insert(w.db())
    .await?;
    upsert_vendor_accounts(w.db(), &customer, input.vendor_accounts, now).await?;
    w.commit(Audit::action(actor, "createCustomer", "customer", Some(customer.id), json!({"resellerId": reseller_id})))
        .await?;
    Ok(customer)
}

/// Updates a customer of the caller's.
pub async fn update_customer(
    domain: &Domain,
    actor: &Actor,
    id: CustomerId,
    changes: CustomerChanges,
) -> Result<customer::Model> {
    actor.require_role(&[Role::Operator, Role::Reseller])?;
    let now = domain.clock.now();
    let w = Write::begin(domain).await?;
    let current = get_customer(w.db(), actor, id).await?;
    let mut model: customer::ActiveModel = current.into();
    if let Some(name) = changes.name {
        model.name = Set(validate::text(&name, 200, "input.name")?);
    }
    if let Some(country) = changes.country {
        model.country = Set(validate::country(&country, "input.country")?);
    }
    if let Some(tax_rate) = changes.tax_rate {
        model.tax_rate = Set(DbDecimal(parse_rate(tax_rate, max_tax_rate(), "input.taxRate")?));
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
    }
    changes.legal.apply(&mut model.legal_name, &mut model.address, &mut model.tax_id)?;
    model.updated_at = Set(now);
    let customer = model.update(w.db()).await?;
    upsert_vendor_accounts(w.db(), &customer, changes.vendor_accounts, now).await?;
    w.commit(Audit::action(actor, "updateCustomer", "customer", id, json!({}))).await?;
    Ok(customer)
}

/// Input of `set_retail_price`.
#[derive(Clone, Debug)]
pub struct NewRetailPrice {
    /// The offer priced.
    pub offer_id: OfferId,
    /// ISO 4217 currency.
    pub currency: String,
    /// The unit price to customers.
    pub price: Decimal,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// Sets the calling reseller's explicit retail price for an offer.
pub async fn set_retail_price(domain: &Domain, actor: &Actor, input: NewRetailPrice) -> Result<retail_price::Model> {
    actor.require_role(&[Role::Reseller])?;
    let reseller_id = actor.reseller_id().ok_or(Error::Unauthenticated)?;
    let currency = Currency::parse(&input.currency, "input.currency")?;
    let price = parse_price(input.price, "input.price")?;
    let now = domain.clock.now();
    let effective_from = input.effective_from.map(super::clock::truncate_to_micros).unwrap_or(now);
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    super::catalog::get_offer(actor, &snapshot, input.offer_id)?;
    let mut w = Write::begin(domain).await?;
    offer::Entity::find_by_id(input.offer_id).one(w.db()).await?.ok_or(Error::NotFound("offer"))?;
    let row = retail_price::ActiveModel {
        id: NotSet,
        reseller_id: Set(reseller_id),
        offer_id: Set(input.offer_id.get()),
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
            &["uq_retail_prices", "retail_prices.reseller_id"],
            Error::conflict("DUPLICATE_PRICE", "a retail price for this offer, currency and time exists"),
        )
    })?;
    w.catalog_changed(CatalogChange::Reseller(reseller_id));
    w.commit(Audit::action(
        actor,
        "setRetailPrice",
        "offer",
        input.offer_id,
        json!({"currency": row.currency, "price": price.to_string()}),
    ))
    .await?;
    Ok(row)
}

/// Sets (or clears, with `None`) the calling reseller's default retail markup over wholesale.
pub async fn set_retail_markup(domain: &Domain, actor: &Actor, markup: Option<Decimal>) -> Result<reseller::Model> {
    actor.require_role(&[Role::Reseller])?;
    let reseller_id = actor.reseller_id().ok_or(Error::Unauthenticated)?;
    let markup = markup.map(|m| parse_rate(m, Decimal::TEN, "markup")).transpose()?;
    let now = domain.clock.now();
    let mut w = Write::begin(domain).await?;
    let current = reseller::Entity::find_by_id(reseller_id).one(w.db()).await?.ok_or(Error::NotFound("reseller"))?;
    let mut model: reseller::ActiveModel = current.into();
    model.default_retail_markup = Set(markup.map(DbDecimal));
    model.updated_at = Set(now);
    let reseller = model.update(w.db()).await?;
    w.catalog_changed(CatalogChange::Reseller(reseller_id));
    w.commit(Audit::action(
        actor,
        "setRetailMarkup",
        "reseller",
        Some(reseller_id),
        json!({"markup": markup.map(|m| m.to_string())}),
    ))
    .await?;
    Ok(reseller)
}

/// Resolves the caller's own price context ([`catalog::OwnPricing`]): a customer's own
/// currency and its reseller's prices, or a reseller's own.
pub async fn own_pricing(domain: &Domain, actor: &Actor) -> Result<catalog::OwnPricing> {
    let customer = match actor.customer_id() {
        Some(id) => Some(get_customer(&domain.db, actor, CustomerId::new(id)).await?),
        None => None,
    };
    let reseller_id = actor.reseller_id().or(customer.as_ref().map(|c| c.reseller_id));
    let reseller = match reseller_id {
        Some(id) => domain.catalog.reseller_pricing(&domain.db, id).await?,
        None => None,
    };
    let default_currency = match (&customer, &reseller) {
        (Some(customer), _) => Some(customer.currency.as_str()),
        (None, Some(pricing)) => Some(pricing.reseller.currency.as_str()),
        (None, None) => None,
    };
    let default_currency = default_currency.map(|code| Currency::parse(code, "currency")).transpose()?;
    Ok(catalog::OwnPricing { reseller, default_currency })
}

/// A customer as an answer about something it owns shows it — with its reseller and its
/// vendor accounts — read before the write being answered commits (in its transaction,
/// or, for `placeOrder`, just before it begins).
#[derive(Clone, Debug)]
pub struct CustomerShown {
    /// The customer.
    pub customer: customer::Model,
    /// Its reseller (the answer shows it to those who may see it).
    pub reseller: entity::reseller::Model,
    /// Its ids at vendors.
    pub vendor_accounts: Vec<customer_vendor_account::Model>,
}

impl CustomerShown {
    /// Reads the customer `id` with its reseller and vendor accounts, through `db`.
    pub async fn read<C: ConnectionTrait>(db: &C, id: i64) -> Result<Self> {
        let customer = customer::Entity::find_by_id(id).one(db).await?.ok_or(Error::NotFound("customer"))?;
        Self::of(db, customer).await
    }

    /// `customer`, already read, with its reseller and vendor accounts read through `db`.
    pub async fn of<C: ConnectionTrait>(db: &C, customer: customer::Model) -> Result<Self> {
        let id = customer.id;
        let reseller = entity::reseller::Entity::find_by_id(customer.reseller_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("reseller"))?;
        let vendor_accounts = customer_vendor_account::Entity::find()
            .filter(customer_vendor_account::Column::CustomerId.eq(id))
            .all(db)
            .await?;
        Ok(Self { customer, reseller, vendor_accounts })
    }
}
