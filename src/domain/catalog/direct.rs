//! Catalog reads straight from the database, costing the page rather than the catalog. A
//! catalog page reads this way when no fresh [`CatalogSnapshot`] is cached: with the cache
//! off (`catalog_cache_ttl` 0), and while a reload after a write is under way (one
//! background task reloads; no page waits for it — writes and the domain's own readers do).
//!
//! A request gathers what it read in a [`CatalogRows`]: a partial snapshot closed under what
//! the catalog's readers need, so the scoped readers of `catalog` run over it unchanged:
//! - every vendor and tier (small tables, read once per request);
//! - for every offer held, its product, price points and tier prices;
//! - for every product whose offers were asked for (`Product.offers`), all of its offers.
//!
//! Pages are keyset reads (`id > after … LIMIT first + 1`) with the tenant scope written as
//! SQL over the product's vendor, read in id order from the primary key: a page costs the
//! rows the index walk passes, which is the page when most rows are visible (a selective
//! filter or a vendor's own catalog walks past the rows it skips). Two things cost the
//! matching rows rather than the page, because no index can answer them: `totalCount` (a
//! `COUNT`, only when the query asks for it) and a text search (the candidates' ids and
//! names are read and matched here, exactly as the snapshot path does).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use entity::enums::{CatalogStatus, OrganizationStatus, Role};
use entity::{offer, price_point, product, tier, vendor, wholesale_price};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, JoinType, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::{OfferFilter, ProductFilter, can_see_offer, can_see_product, matches_search, searched};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::catalog_cache::{CatalogCache, CatalogSnapshot};
use crate::domain::error::Result;
use crate::domain::pagination::{Page, PageRequest};

/// Ids per `IN (…)` list: well under every backend's limit on bound values.
const IDS_PER_STATEMENT: usize = 1_000;

/// The catalog rows one request has read, as a partial snapshot (see the module docs).
#[derive(Debug, Default)]
pub struct CatalogRows {
    held: RwLock<Held>,
    /// Ids asked for and not read yet: whoever reads next reads them all, so resolvers
    /// running side by side (the lines of an order, say) share one read.
    wanted: Mutex<Wanted>,
    loading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Held {
    snapshot: Arc<CatalogSnapshot>,
    vendors_read: bool,
    /// Products held with every one of their offers (`offers_by_product` is theirs only).
    complete: HashSet<i64>,
}

#[derive(Debug, Default)]
struct Wanted {
    products: Vec<i64>,
    offers: Vec<i64>,
}

/// How one request reads the catalog, chosen at its first catalog read and kept.
pub enum CatalogRead {
    /// From the shared snapshot, which was fresh: one request sees one catalog.
    Cached(Arc<CatalogSnapshot>),
    /// From the database, only the rows it needs.
    Direct(CatalogRows),
}

impl CatalogRead {
    /// The cached snapshot when a fresh one is there (or renewed, the catalog unchanged);
    /// else — cache off, invalidated, the version moved, or another request renewing or
    /// reloading it — the database, while one background task reloads the snapshot.
    pub async fn choose(domain: &Arc<Domain>) -> Self {
        match domain.catalog.fresh_or_renewed(&domain.db).await {
            Some(snapshot) => Self::Cached(snapshot),
            None => {
                CatalogCache::refresh_in_background(domain);
                Self::Direct(CatalogRows::default())
            }
        }
    }

    /// The catalog as this request sees it, holding at least what `needed` names.
    pub async fn snapshot(&self, db: &DatabaseConnection, needed: Needed<'_>) -> Result<Arc<CatalogSnapshot>> {
        match self {
            Self::Cached(snapshot) => Ok(Arc::clone(snapshot)),
            Self::Direct(rows) => rows.read(db, needed).await,
        }
    }

    /// A page of the products the caller may see; `total_count` only if `count` (else 0).
    pub async fn products(
        &self,
        db: &DatabaseConnection,
        actor: &Actor,
        filter: &ProductFilter,
        page: PageRequest,
        count: bool,
    ) -> Result<Page<product::Model>> {
        match self {
            Self::Cached(snapshot) => Ok(super::list_products(actor, snapshot, filter, page, count).map(Clone::clone)),
            Self::Direct(rows) => page_products(db, rows, actor, filter, page, count).await,
        }
    }

    /// A page of the offers the caller may see; `total_count` only if `count` (else 0).
    pub async fn offers(
        &self,
        db: &DatabaseConnection,
        actor: &Actor,
        filter: &OfferFilter,
        page: PageRequest,
        count: bool,
    ) -> Result<Page<offer::Model>> {
        match self {
            Self::Cached(snapshot) => Ok(super::list_offers(actor, snapshot, filter, page, count).map(Clone::clone)),
            Self::Direct(rows) => page_offers(db, rows, actor, filter, page, count).await,
        }
    }
}

/// What a reader needs in a request's [`CatalogRows`] before it reads them.
#[derive(Clone, Copy, Debug)]
pub enum Needed<'a> {
    /// Every vendor and tier.
    Vendors,
    /// These products (those that exist) with all their offers, for `Product.offers`.
    Products(&'a [i64]),
    /// These offers (those that exist) with their products.
    Offers(&'a [i64]),
}

impl CatalogRows {
    /// What has been read so far.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.held.read().map(|held| Arc::clone(&held.snapshot)).unwrap_or_default()
    }

    fn holds(&self, needed: Needed<'_>) -> bool {
        let Ok(held) = self.held.read() else { return false };
        held.vendors_read
            && match needed {
                Needed::Vendors => true,
                Needed::Products(ids) => ids.iter().all(|id| held.complete.contains(id)),
                Needed::Offers(ids) => ids.iter().all(|id| held.snapshot.offers.contains_key(id)),
            }
    }

    /// Reads what `needed` names unless it is held already (with whatever other resolvers
    /// of the request asked for meanwhile); then the snapshot so far.
    pub async fn read(&self, db: &DatabaseConnection, needed: Needed<'_>) -> Result<Arc<CatalogSnapshot>> {
        if self.holds(needed) {
            return Ok(self.snapshot());
        }
        if let Ok(mut wanted) = self.wanted.lock() {
            match needed {
                Needed::Vendors => {}
                Needed::Products(ids) => wanted.products.extend_from_slice(ids),
                Needed::Offers(ids) => wanted.offers.extend_from_slice(ids),
            }
        }
        let _loading = self.loading.lock().await;
        if self.holds(needed) {
            return Ok(self.snapshot());
        }
        if !self.held.read().is_ok_and(|held| held.vendors_read) {
            let vendors = vendor::Entity::find().all(db).await?;
            let tiers = tier::Entity::find().all(db).await?;
            self.merge(|held| {
                let snapshot = Arc::make_mut(&mut held.snapshot);
                snapshot.vendors.extend(vendors.into_iter().map(|v| (v.id, v)));
                snapshot.tiers.extend(tiers.into_iter().map(|t| (t.id, t)));
                held.vendors_read = true;
            });
        }
        let mut wanted = self.wanted.lock().map(|mut wanted| std::mem::take(&mut *wanted)).unwrap_or_default();
        // Its own ids too, in case a reader that took them failed: each reader gets its error.
        match needed {
            Needed::Vendors => {}
            Needed::Products(ids) => wanted.products.extend_from_slice(ids),
            Needed::Offers(ids) => wanted.offers.extend_from_slice(ids),
        }
        self.add(db, wanted).await?;
        Ok(self.snapshot())
    }

    fn merge(&self, change: impl FnOnce(&mut Held)) {
        if let Ok(mut held) = self.held.write() {
            change(&mut held);
        }
    }

    /// Reads the wanted offers not held (with their products), the wanted products not held
    /// complete (with all their offers), and the new offers' price points and tier prices:
    /// six statements for up to [`IDS_PER_STATEMENT`] of each.
    async fn add(&self, db: &DatabaseConnection, wanted: Wanted) -> Result<()> {
        let (offer_ids, complete_ids) = {
            let Ok(held) = self.held.read() else { return Ok(()) };
            let mut seen = HashSet::new();
            let offers: Vec<i64> = wanted
                .offers
                .into_iter()
                .filter(|id| !held.snapshot.offers.contains_key(id) && seen.insert(*id))
                .collect();
            let products: Vec<i64> =
                wanted.products.into_iter().filter(|id| !held.complete.contains(id) && seen.insert(-*id)).collect();
            (offers, products)
        };
        let mut offers =
            in_chunks(&offer_ids, |chunk| offer::Entity::find().filter(offer::Column::Id.is_in(chunk)).all(db)).await?;
        let product_ids: Vec<i64> = {
            let held = self.held.read().ok();
            let held_product = |id: &i64| held.as_ref().is_some_and(|held| held.snapshot.products.contains_key(id));
            let mut seen = HashSet::new();
            offers
                .iter()
                .map(|o| o.product_id)
                .chain(complete_ids.iter().copied())
                .filter(|id| !held_product(id) && seen.insert(*id))
                .collect()
        };
        let products =
            in_chunks(&product_ids, |chunk| product::Entity::find().filter(product::Column::Id.is_in(chunk)).all(db))
                .await?;
        let mut siblings = in_chunks(&complete_ids, |chunk| {
            offer::Entity::find().filter(offer::Column::ProductId.is_in(chunk)).order_by_asc(offer::Column::Id).all(db)
        })
        .await?;
        siblings.sort_by_key(|o| o.id);
        let complete: Vec<(i64, Vec<i64>)> = complete_ids
            .iter()
            .map(|&product| (product, siblings.iter().filter(|o| o.product_id == product).map(|o| o.id).collect()))
            .collect();
        offers.extend(siblings);
        {
            let held = self.held.read().ok();
            let mut seen = HashSet::new();
            offers.retain(|o| {
                !held.as_ref().is_some_and(|held| held.snapshot.offers.contains_key(&o.id)) && seen.insert(o.id)
            });
        }
        let new_offers: Vec<i64> = offers.iter().map(|o| o.id).collect();
        let mut points = in_chunks(&new_offers, |chunk| {
            price_point::Entity::find()
                .filter(price_point::Column::OfferId.is_in(chunk))
                .order_by_asc(price_point::Column::EffectiveFrom)
                .order_by_asc(price_point::Column::Id)
                .all(db)
        })
        .await?;
        let mut tier_rows = in_chunks(&new_offers, |chunk| {
            wholesale_price::Entity::find()
                .filter(wholesale_price::Column::TierId.is_not_null())
                .filter(wholesale_price::Column::OfferId.is_in(chunk))
                .order_by_asc(wholesale_price::Column::EffectiveFrom)
                .order_by_asc(wholesale_price::Column::Id)
                .all(db)
        })
        .await?;
        points.sort_by_key(|p| (p.effective_from, p.id));
        tier_rows.sort_by_key(|row| (row.effective_from, row.id));
        self.merge(|held| {
            let snapshot = Arc::make_mut(&mut held.snapshot);
            snapshot.products.extend(products.into_iter().map(|p| (p.id, p)));
            snapshot.offers.extend(offers.into_iter().map(|o| (o.id, o)));
            for (product, offers) in complete {
                snapshot.offers_by_product.insert(product, offers);
                held.complete.insert(product);
            }
            snapshot.add_prices(points, tier_rows);
        });
        Ok(())
    }
}

/// Runs `read` over `ids` in chunks of [`IDS_PER_STATEMENT`] (none for no ids).
async fn in_chunks<T, F, Fut>(ids: &[i64], read: F) -> Result<Vec<T>>
where
    F: Fn(Vec<i64>) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<Vec<T>, sea_orm::DbErr>>,
{
    let mut rows = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        rows.extend(read(chunk.to_vec()).await?);
    }
    Ok(rows)
}

/// Whether the caller manages the catalog of the vendor in `column` (see `Actor::manages_vendor`).
fn manages(actor: &Actor, column: impl ColumnTrait) -> Condition {
    match actor.vendor_id() {
        Some(vendor_id) => Condition::all().add(column.eq(vendor_id)),
        None => Condition::all().add(Expr::cust("1 = 0")),
    }
}

/// `catalog::can_see_product` as SQL over `products` joined to their vendor.
fn product_visible(actor: &Actor) -> Condition {
    if actor.is_operator() {
        return Condition::all();
    }
    let mut visible = Condition::any().add(manages(actor, product::Column::VendorId));
    if actor.role() != Role::Vendor {
        visible = visible.add(
            Condition::all()
                .add(vendor::Column::Status.eq(OrganizationStatus::Active))
                .add(product::Column::Status.eq(CatalogStatus::Active)),
        );
    }
    visible
}

/// `catalog::can_see_offer` as SQL over `offers` joined to their product and its vendor.
fn offer_visible(actor: &Actor) -> Condition {
    if actor.is_operator() {
        return Condition::all();
    }
    Condition::any()
        .add(manages(actor, offer::Column::VendorId))
        .add(Condition::all().add(product_visible(actor)).add(offer::Column::Status.eq(CatalogStatus::Active)))
}

fn products_with_vendor() -> Select<product::Entity> {
    product::Entity::find().join(
        JoinType::InnerJoin,
        product::Entity::belongs_to(vendor::Entity).from(product::Column::VendorId).to(vendor::Column::Id).into(),
    )
}

fn offers_with_product_and_vendor() -> Select<offer::Entity> {
    offer::Entity::find()
        .join(
            JoinType::InnerJoin,
            offer::Entity::belongs_to(product::Entity).from(offer::Column::ProductId).to(product::Column::Id).into(),
        )
        .join(
            JoinType::InnerJoin,
            product::Entity::belongs_to(vendor::Entity).from(product::Column::VendorId).to(vendor::Column::Id).into(),
        )
}

/// A page of the products the caller may see (as `catalog::list_products`), read from the
/// database into `rows`; `total_count` is counted only when `count` is true (else 0).
async fn page_products(
    db: &DatabaseConnection,
    rows: &CatalogRows,
    actor: &Actor,
    filter: &ProductFilter,
    page: PageRequest,
    count: bool,
) -> Result<Page<product::Model>> {
    let mut select = products_with_vendor().filter(product_visible(actor));
    if let Some(vendor_id) = filter.vendor_id {
        select = select.filter(product::Column::VendorId.eq(vendor_id.get()));
    }
    if let Some(status) = filter.status {
        select = select.filter(product::Column::Status.eq(status));
    }
    let ids = match searched(filter.search.as_deref()) {
        Some(needle) => {
            let candidates: Vec<(i64, String)> = select
                .select_only()
                .column(product::Column::Id)
                .column(product::Column::Name)
                .order_by_asc(product::Column::Id)
                .into_tuple()
                .all(db)
                .await?;
            let matching = candidates.into_iter().filter(|(_, name)| matches_search(Some(needle), &[name]));
            Page::from_sorted(matching, page, |(id, _)| *id).map(|(id, _)| id)
        }
        None => keyset(db, select, product::Column::Id, page, count).await?,
    };
    let snapshot = rows.read(db, Needed::Products(&ids.items)).await?;
    // Read after the page's ids: a row changed in between is shown only if still visible.
    let visible = |id: i64| snapshot.products.get(&id).filter(|p| can_see_product(actor, &snapshot, p)).cloned();
    Ok(ids.map(visible).flatten())
}

/// A page of the offers the caller may see (as `catalog::list_offers`), read from the
/// database into `rows`; `total_count` is counted only when `count` is true (else 0).
async fn page_offers(
    db: &DatabaseConnection,
    rows: &CatalogRows,
    actor: &Actor,
    filter: &OfferFilter,
    page: PageRequest,
    count: bool,
) -> Result<Page<offer::Model>> {
    let mut select = offers_with_product_and_vendor().filter(offer_visible(actor));
    if let Some(vendor_id) = filter.vendor_id {
        select = select.filter(offer::Column::VendorId.eq(vendor_id.get()));
    }
    if let Some(product_id) = filter.product_id {
        select = select.filter(offer::Column::ProductId.eq(product_id.get()));
    }
    if let Some(term) = filter.term {
        select = select.filter(offer::Column::Term.eq(term));
    }
    if let Some(frequency) = filter.billing_frequency {
        select = select.filter(offer::Column::BillingFrequency.eq(frequency));
    }
    if let Some(status) = filter.status {
        select = select.filter(offer::Column::Status.eq(status));
    }
    let ids = match searched(filter.search.as_deref()) {
        Some(needle) => {
            let candidates: Vec<(i64, String, String)> = select
                .select_only()
                .column(offer::Column::Id)
                .column(offer::Column::Sku)
                .column(offer::Column::Name)
                .order_by_asc(offer::Column::Id)
                .into_tuple()
                .all(db)
                .await?;
            let matching = candidates.into_iter().filter(|(_, sku, name)| matches_search(Some(needle), &[sku, name]));
            Page::from_sorted(matching, page, |(id, _, _)| *id).map(|(id, _, _)| id)
        }
        None => keyset(db, select, offer::Column::Id, page, count).await?,
    };
    let snapshot = rows.read(db, Needed::Offers(&ids.items)).await?;
    // Read after the page's ids: a row changed in between is shown only if still visible.
    let visible = |id: i64| snapshot.offers.get(&id).filter(|o| can_see_offer(actor, &snapshot, o)).cloned();
    Ok(ids.map(visible).flatten())
}

/// The ids of one page of `select` in id order: the rows after the cursor (one more than
/// asked, to know whether a page follows), whether any row precedes the cursor, and the
/// count when asked.
async fn keyset<E, C>(
    db: &DatabaseConnection,
    select: Select<E>,
    id: C,
    page: PageRequest,
    count: bool,
) -> Result<Page<i64>>
where
    E: EntityTrait<Column = C>,
    E::Model: Send + Sync,
    C: ColumnTrait,
{
    let total_count = if count { usize::try_from(select.clone().count(db).await?).unwrap_or(usize::MAX) } else { 0 };
    let mut after = select.clone().select_only().column(id).order_by_asc(id);
    let mut has_previous_page = false;
    if let Some(cursor) = page.after {
        after = after.filter(id.gt(cursor));
        let before: Option<i64> = select
            .select_only()
            .column(id)
            .filter(id.lte(cursor))
            .order_by_desc(id)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        has_previous_page = before.is_some();
    }
    let mut items: Vec<i64> = after.limit(page.first as u64 + 1).into_tuple().all(db).await?;
    let has_next_page = items.len() > page.first;
    items.truncate(page.first);
    Ok(Page { items, has_next_page, has_previous_page, total_count })
}
