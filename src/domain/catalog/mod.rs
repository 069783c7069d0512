//! The catalog: vendors, products, offers and dated price points.
//!
//! Reads go through the [`CatalogSnapshot`] (see `catalog_cache`) and apply the tenant scope:
//! the operator sees everything; a vendor sees only its own catalog, whatever its status;
//! resellers and customers see active offers of active products of active vendors. Writes
//! check the same scope, run in one transaction with their audit row, and invalidate the cache.
//!
//! - this module: visibility and the scoped reads (lists, lookups) over the snapshot;
//! - `prices`: an offer's prices as a caller may see them (the cascade applied per role);
//! - `direct`: the same reads straight from the database, costing the page (no fresh snapshot);
//! - `admin`: creating and updating vendors, products, offers and price points.

mod admin;
pub mod direct;
mod prices;

pub use admin::*;
pub use prices::*;

use std::collections::BTreeMap;
use std::ops::Bound;

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

/// The text searched for: `None` when there is none, or only blanks.
fn searched(search: Option<&str>) -> Option<&str> {
    search.map(str::trim).filter(|needle| !needle.is_empty())
}

fn matches_search(needle: Option<&str>, haystacks: &[&str]) -> bool {
    match searched(needle) {
        None => true,
        Some(needle) => {
            let needle = needle.to_lowercase();
            haystacks.iter().any(|h| h.to_lowercase().contains(&needle))
        }
    }
}

/// Whether and how a page's `total_count` is counted (it is 0 when not asked for).
#[derive(Clone, Debug)]
pub enum Total {
    /// Not asked for.
    Skip,
    /// Counted every time (a text search: too many to remember).
    Count,
    /// Counted once per snapshot under this key (the caller class and the filter).
    Remember(String),
}

impl Total {
    fn of(count: bool, kind: &str, actor: &Actor, filter: &impl std::fmt::Debug, search: Option<&str>) -> Self {
        match (count, searched(search)) {
            (false, _) => Self::Skip,
            (true, Some(_)) => Self::Count,
            (true, None) => Self::Remember(format!("{kind} {} {filter:?}", caller_class(actor))),
        }
    }
}

/// A page of the rows of `rows` (keyed and ordered by id) that `keep` accepts, walked from
/// the cursor on: it costs the rows it passes (the page, when most rows are visible), not
/// the catalog; the total is counted as `total` says.
fn keyset_page<'a, T>(
    snapshot: &CatalogSnapshot,
    rows: &'a BTreeMap<i64, T>,
    page: PageRequest,
    total: Total,
    keep: impl Fn(&T) -> bool,
) -> Page<&'a T> {
    let start = page.after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items: Vec<&T> = rows
        .range((start, Bound::Unbounded))
        .map(|(_, row)| row)
        .filter(|row| keep(row))
        .take(page.first + 1)
        .collect();
    let has_next_page = items.len() > page.first;
    items.truncate(page.first);
    let has_previous_page = page.after.is_some_and(|after| rows.range(..=after).rev().any(|(_, row)| keep(row)));
    let count = || rows.values().filter(|row| keep(row)).count();
    let total_count = match total {
        Total::Skip => 0,
        Total::Count => count(),
        Total::Remember(key) => snapshot.counts.get_or(key, count),
    };
    Page { items, has_next_page, has_previous_page, total_count }
}

/// What decides which catalog rows a caller sees: the operator, one vendor, or a buyer.
fn caller_class(actor: &Actor) -> String {
    match (actor.is_operator(), actor.role(), actor.vendor_id()) {
        (true, _, _) => "operator".into(),
        (false, Role::Vendor, vendor) => format!("vendor {vendor:?}"),
        (false, _, _) => "buyer".into(),
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

/// A page of the products the caller may see; `total_count` only if `count` (else 0).
pub fn list_products<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    filter: &ProductFilter,
    page: PageRequest,
    count: bool,
) -> Page<&'a product::Model> {
    let total = Total::of(count, "products", actor, filter, filter.search.as_deref());
    keyset_page(snapshot, &snapshot.products, page, total, |p| {
        filter.vendor_id.is_none_or(|id| p.vendor_id == id.get())
            && filter.status.is_none_or(|s| p.status == s)
            && matches_search(filter.search.as_deref(), &[&p.name])
            && can_see_product(actor, snapshot, p)
    })
}

/// A page of the offers the caller may see; `total_count` only if `count` (else 0).
pub fn list_offers<'a>(
    actor: &Actor,
    snapshot: &'a CatalogSnapshot,
    filter: &OfferFilter,
    page: PageRequest,
    count: bool,
) -> Page<&'a offer::Model> {
    let keep = |o: &offer::Model| {
        filter.vendor_id.is_none_or(|id| o.vendor_id == id.get())
            && filter.term.is_none_or(|t| o.term == t)
            && filter.billing_frequency.is_none_or(|b| o.billing_frequency == b)
            && filter.status.is_none_or(|s| o.status == s)
            && matches_search(filter.search.as_deref(), &[&o.sku, &o.name])
            && can_see_offer(actor, snapshot, o)
    };
    match filter.product_id {
        Some(product_id) => {
            let offers = snapshot.offers_by_product.get(&product_id.get()).into_iter().flatten();
            let rows = offers.filter_map(|id| snapshot.offers.get(id)).filter(|o| keep(o));
            Page::from_sorted(rows, page, |o| o.id)
        }
        None => {
            let total = Total::of(count, "offers", actor, filter, filter.search.as_deref());
            keyset_page(snapshot, &snapshot.offers, page, total, keep)
        }
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Walking from the cursor gives the page cut from every matching row.
        #[test]
        fn a_keyset_page_is_the_page_cut_from_all_the_matching_rows(
            ids in proptest::collection::btree_set(1i64..400, 0..150),
            modulus in 1i64..5,
            first in 0usize..30,
            after in proptest::option::of(0i64..420),
        ) {
            let rows: BTreeMap<i64, i64> = ids.iter().map(|&id| (id, id)).collect();
            let keep = |row: &i64| row % modulus == 0;
            let page = PageRequest { first, after, newest_first: false };
            let walked = keyset_page(&CatalogSnapshot::default(), &rows, page, Total::Remember("rows".into()), keep);
            let cut = Page::from_sorted(rows.values().filter(|row| keep(row)), page, |row| **row);
            prop_assert_eq!(walked.items, cut.items);
            prop_assert_eq!(walked.has_next_page, cut.has_next_page);
            prop_assert_eq!(walked.has_previous_page, cut.has_previous_page);
            prop_assert_eq!(walked.total_count, cut.total_count);
        }
    }
}
