//! An offer's prices as a caller may see them: the cascade (cost → wholesale → retail)
//! applied to the price points in force, masked by role (cost for the operator and the
//! offer's vendor; wholesale for the operator and resellers; retail for all buyers).

use chrono::{DateTime, Utc};
use entity::{offer, price_point};
use rust_decimal::Decimal;

use std::sync::Arc;

use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::catalog_cache::{CatalogSnapshot, ResellerPricing};
use crate::domain::error::{Error, Result};
use crate::domain::ids::ResellerId;
use crate::domain::money::Currency;
use crate::domain::pricing::{self, Dated, in_force};

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

/// The caller's own price context, resolved once per request: the pricing of its own
/// reseller (a reseller's own; a customer's reseller's) and the currency it buys in by
/// default (a customer's currency, else its reseller's). The operator and vendors have none.
#[derive(Clone, Debug, Default)]
pub struct OwnPricing {
    /// The reseller pricing that applies to the caller's purchases.
    pub reseller: Option<Arc<ResellerPricing>>,
    /// The currency shown when the caller names none.
    pub default_currency: Option<Currency>,
}

/// The offer's prices in force now as the caller may see them, by the role rules: the
/// operator sees list and cost, and a named reseller's wholesale and retail; a reseller or a
/// customer sees its own reseller's prices (naming another reseller is NotFound) in its own
/// currency unless it names one.
pub async fn offer_prices_for_caller(
    domain: &Domain,
    actor: &Actor,
    snapshot: &CatalogSnapshot,
    offer: &offer::Model,
    own: &OwnPricing,
    currency: Option<&str>,
    reseller_id: Option<ResellerId>,
) -> Result<Vec<OfferPriceView>> {
    let currency = currency.map(|c| Currency::parse(c, "currency")).transpose()?;
    let (pricing, currency) = if actor.is_operator() {
        let pricing = match reseller_id {
            Some(id) => {
                Some(domain.catalog.reseller_pricing(&domain.db, id.get()).await?.ok_or(Error::NotFound("reseller"))?)
            }
            None => None,
        };
        (pricing, currency)
    } else {
        if let (Some(asked), Some(pricing)) = (reseller_id, own.reseller.as_ref())
            && asked.get() != pricing.reseller.id
        {
            return Err(Error::NotFound("reseller"));
        }
        (own.reseller.clone(), currency.or(own.default_currency))
    };
    Ok(offer_prices(actor, snapshot, offer, pricing.as_deref(), currency, domain.clock.now()))
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
