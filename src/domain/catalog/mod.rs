//! The catalog: vendors, products, offers and dated price points.
//!
//! Reads go through the [`CatalogSnapshot`] (see `catalog_cache`) and apply the tenant scope:
//! the operator sees everything; a vendor sees only its own catalog, whatever its status;
//! resellers and customers see active offers of active products of active vendors. Writes
//! check the same scope, run in one transaction with their audit row, and invalidate the cache.
//!
//! - this module: visibility and the scoped reads (lists, lookups) over the snapshot;
//! - `prices`: an offer's prices as a caller may see them (the cascade applied per role);
//! - `admin`: creating and updating vendors, products, offers and price points.

mod admin;
mod prices;

pub use admin::*;
pub use prices::*;

use crate::domain::ids::{OfferId, ProductId, VendorId};
use chrono::{DateTime, Utc};
use entity::enums::{BillingFrequency, CatalogStatus, OrganizationStatus, Role, Term};
use entity::{offer, price_point, product, vendor};

use super::actor::Actor;
use super::catalog_cache::CatalogSnapshot;
use super::error::{Error, Result};
use super::pagination::{Page, PageRequest};
use super::pricing::Dated;

impl Dated for price_point::Model {
    fn effective_from(&self) -> DateTime<Utc> {
        self.effective_from
    }
}

/// Whether the caller may see a vendor and, through it, its catalog.
pub fn can_see_vendor(actor: &Actor, vendor: &vendor::Model) -> bool {
    actor.manages_vendor(vendor.id) || (actor.role() != Role::Vendor && vendor.status == OrganizationStatus::Active)
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
    pub vendor_id: Option<VendorId>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    /// Only products with this status.
    pub status: Option<CatalogStatus>,
}

/// Filters for the offer list.
#[derive(Clone, Debug, Default)]
pub struct OfferFilter {
    /// Only this vendor's offers.
    pub vendor_id: Option<VendorId>,
    /// Only this product's offers.
    pub product_id: Option<ProductId>,
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
        filter.vendor_id.is_none_or(|id| p.vendor_id == id.get())
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
            snapshot
                .offers_by_product
                .get(&product_id.get())
                .into_iter()
                .flatten()
                .filter_map(|id| snapshot.offers.get(id)),
        ),
        None => Box::new(snapshot.offers.values()),
    };
    let rows = candidates.filter(|o| {
        filter.vendor_id.is_none_or(|id| o.vendor_id == id.get())
            && filter.term.is_none_or(|t| o.term == t)
            && filter.billing_frequency.is_none_or(|b| o.billing_frequency == b)
            && filter.status.is_none_or(|s| o.status == s)
            && matches_search(filter.search.as_deref(), &[&o.sku, &o.name])
            && can_see_offer(actor, snapshot, o)
    });
    Page::from_sorted(rows, page, |o| o.id)
}

/// A vendor the caller may see, else NotFound.
pub fn get_vendor<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: VendorId) -> Result<&'a vendor::Model> {
    snapshot.vendors.get(&id.get()).filter(|v| can_see_vendor(actor, v)).ok_or(Error::NotFound("vendor"))
}

/// A product the caller may see, else NotFound.
pub fn get_product<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: ProductId) -> Result<&'a product::Model> {
    snapshot.products.get(&id.get()).filter(|p| can_see_product(actor, snapshot, p)).ok_or(Error::NotFound("product"))
}

/// An offer the caller may see, else NotFound.
pub fn get_offer<'a>(actor: &Actor, snapshot: &'a CatalogSnapshot, id: OfferId) -> Result<&'a offer::Model> {
    snapshot.offers.get(&id.get()).filter(|o| can_see_offer(actor, snapshot, o)).ok_or(Error::NotFound("offer"))
}

/// The offers of a product the caller may see, in id order.
pub fn product_offers<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    product_id: ProductId,
) -> Vec<&'a offer::Model> {
    snapshot
        .offers_by_product
        .get(&product_id.get())
        .into_iter()
        .flatten()
        .filter_map(|id| snapshot.offers.get(id))
        .filter(|o| can_see_offer(actor, snapshot, o))
        .collect()
}
