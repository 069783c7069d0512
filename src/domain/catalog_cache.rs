//! The in-memory catalog: a read snapshot of vendors, products, offers and their prices.
//!
//! Storefronts browse far more than they buy, so catalog reads are served from a snapshot
//! loaded in a fixed number of statements (one per table) and shared by every request.
//! Per-reseller price data (explicit wholesale and retail prices, the default markup) is
//! loaded per reseller on first use. Every catalog or price write in this process calls
//! [`CatalogCache::invalidate`]; writes made by another process are seen when the snapshot's
//! time-to-live runs out (`catalog_cache_ttl`; 0 disables the cache).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{offer, price_point, product, reseller, retail_price, tier, vendor, wholesale_price};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::Domain;
use super::error::Result;
use super::pricing::DatedPrice;

/// The catalog as one consistent, read-only value.
#[derive(Clone, Debug, Default)]
pub struct CatalogSnapshot {
    /// Vendors by id.
    pub vendors: BTreeMap<i64, vendor::Model>,
    /// Products by id.
    pub products: BTreeMap<i64, product::Model>,
    /// Offers by id.
    pub offers: BTreeMap<i64, offer::Model>,
    /// Offer ids of each product, in id order.
    pub offers_by_product: HashMap<i64, Vec<i64>>,
    /// Price points of each offer, oldest first.
    pub price_points: HashMap<i64, Vec<price_point::Model>>,
    /// Tiers by id.
    pub tiers: BTreeMap<i64, tier::Model>,
    /// Explicit tier wholesale prices by (offer, tier, currency), oldest first.
    pub tier_prices: HashMap<(i64, i64, String), Vec<DatedPrice>>,
    /// Every distinct time at which some price (cost, list, wholesale or retail, for any
    /// reseller) takes effect: a price view computed now stays right until the next one.
    pub price_change_times: BTreeSet<DateTime<Utc>>,
    /// How many rows each kind of caller sees under each filter, counted once per snapshot.
    pub counts: Counts,
}

/// Counts of visible rows by caller class and filter, kept for the life of one snapshot (a
/// copy starts empty: it is a different catalog). At most [`Counts::LIMIT`] are kept: when
/// full, they are dropped and counted again as asked.
#[derive(Debug, Default)]
pub struct Counts(Mutex<HashMap<String, usize>>);

impl Clone for Counts {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Counts {
    /// Distinct counts kept per snapshot.
    pub const LIMIT: usize = 4_096;

    /// The count under `key`, counted by `count` the first time.
    pub fn get_or(&self, key: String, count: impl FnOnce() -> usize) -> usize {
        if let Some(&known) = self.0.lock().ok().as_ref().and_then(|counts| counts.get(&key)) {
            return known;
        }
        let counted = count();
        if let Ok(mut counts) = self.0.lock() {
            if counts.len() >= Self::LIMIT {
                counts.clear();
            }
            counts.insert(key, counted);
        }
        counted
    }
}

/// One reseller's pricing inputs.
#[derive(Debug)]
pub struct ResellerPricing {
    /// The reseller.
    pub reseller: reseller::Model,
    /// Explicit wholesale prices for this reseller by (offer, currency), oldest first.
    pub wholesale: HashMap<(i64, String), Vec<DatedPrice>>,
    /// Explicit retail prices by (offer, currency), oldest first.
    pub retail: HashMap<(i64, String), Vec<DatedPrice>>,
}

impl CatalogSnapshot {
    /// The first time after `at` at which a price takes effect, if any.
    pub fn next_price_change_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.price_change_times.range((std::ops::Bound::Excluded(at), std::ops::Bound::Unbounded)).next().copied()
    }

    /// Loads the whole catalog: eight statements whatever its size.
    pub async fn load(db: &DatabaseConnection) -> Result<Self> {
        let vendors = vendor::Entity::find().all(db).await?;
        let products = product::Entity::find().all(db).await?;
        let offers = offer::Entity::find().order_by_asc(offer::Column::Id).all(db).await?;
        let points = price_point::Entity::find()
            .order_by_asc(price_point::Column::EffectiveFrom)
            .order_by_asc(price_point::Column::Id)
            .all(db)
            .await?;
        let tiers = tier::Entity::find().all(db).await?;
        let tier_rows = wholesale_price::Entity::find()
            .filter(wholesale_price::Column::TierId.is_not_null())
            .order_by_asc(wholesale_price::Column::EffectiveFrom)
            .order_by_asc(wholesale_price::Column::Id)
            .all(db)
            .await?;

        let reseller_price_times: Vec<DateTime<Utc>> = wholesale_price::Entity::find()
            .select_only()
            .column(wholesale_price::Column::EffectiveFrom)
            .filter(wholesale_price::Column::ResellerId.is_not_null())
            .distinct()
            .into_tuple()
            .all(db)
            .await?;
        let retail_times: Vec<DateTime<Utc>> = retail_price::Entity::find()
            .select_only()
            .column(retail_price::Column::EffectiveFrom)
            .distinct()
            .into_tuple()
            .all(db)
            .await?;

        let mut snapshot = Self {
            vendors: vendors.into_iter().map(|v| (v.id, v)).collect(),
            products: products.into_iter().map(|p| (p.id, p)).collect(),
            tiers: tiers.into_iter().map(|t| (t.id, t)).collect(),
            ..Self::default()
        };
        for offer in offers {
            snapshot.offers_by_product.entry(offer.product_id).or_default().push(offer.id);
            snapshot.offers.insert(offer.id, offer);
        }
        snapshot.price_change_times.extend(reseller_price_times);
        snapshot.price_change_times.extend(retail_times);
        snapshot.price_change_times.extend(points.iter().map(|p| p.effective_from));
        snapshot.price_change_times.extend(tier_rows.iter().map(|row| row.effective_from));
        snapshot.add_prices(points, tier_rows);
        Ok(snapshot)
    }

    /// Adds price points and tier wholesale prices, each list oldest first.
    pub(crate) fn add_prices(&mut self, points: Vec<price_point::Model>, tier_rows: Vec<wholesale_price::Model>) {
        for point in points {
            self.price_points.entry(point.offer_id).or_default().push(point);
        }
        for row in tier_rows {
            if let Some(tier_id) = row.tier_id {
                self.tier_prices
                    .entry((row.offer_id, tier_id, row.currency.clone()))
                    .or_default()
                    .push(DatedPrice { effective_from: row.effective_from, price: row.price.0 });
            }
        }
    }
}

impl ResellerPricing {
    /// Loads one reseller's pricing: three statements. `None` if the reseller does not exist.
    pub async fn load(db: &DatabaseConnection, reseller_id: i64) -> Result<Option<Self>> {
        let Some(reseller) = reseller::Entity::find_by_id(reseller_id).one(db).await? else {
            return Ok(None);
        };
        let wholesale_rows = wholesale_price::Entity::find()
            .filter(wholesale_price::Column::ResellerId.eq(reseller_id))
            .order_by_asc(wholesale_price::Column::EffectiveFrom)
            .all(db)
            .await?;
        let retail_rows = retail_price::Entity::find()
            .filter(retail_price::Column::ResellerId.eq(reseller_id))
            .order_by_asc(retail_price::Column::EffectiveFrom)
            .all(db)
            .await?;
        let mut wholesale: HashMap<(i64, String), Vec<DatedPrice>> = HashMap::new();
        for row in wholesale_rows {
            wholesale
                .entry((row.offer_id, row.currency))
                .or_default()
                .push(DatedPrice { effective_from: row.effective_from, price: row.price.0 });
        }
        let mut retail: HashMap<(i64, String), Vec<DatedPrice>> = HashMap::new();
        for row in retail_rows {
            retail
                .entry((row.offer_id, row.currency))
                .or_default()
                .push(DatedPrice { effective_from: row.effective_from, price: row.price.0 });
        }
        Ok(Some(Self { reseller, wholesale, retail }))
    }
}

/// The shared cache of the catalog snapshot and of per-reseller pricing.
///
/// Reads take a read lock only. A load that raced with an invalidation is used for the
/// request that made it but not kept: a generation counter tells the two apart.
#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    generation: AtomicU64,
    current: RwLock<Option<Cached<CatalogSnapshot>>>,
    loading: tokio::sync::Mutex<()>,
    resellers: RwLock<HashMap<i64, Cached<ResellerPricing>>>,
    /// Where background reloads run: the runtime that built the cache (the process's main
    /// runtime, not an HTTP worker's, whose requests the reload would otherwise delay).
    runtime: Option<tokio::runtime::Handle>,
}

#[derive(Debug)]
struct Cached<T> {
    value: Arc<T>,
    loaded_at: Instant,
    generation: u64,
    /// For snapshots: the catalog version (`catalog_version`) read just before the load, if
    /// it was still the same just after (a snapshot without one is never renewed).
    version: Option<i64>,
    /// When the value was read from the database (renewals move `loaded_at` only).
    read_at: Instant,
}

/// How many time-to-lives a snapshot may be renewed for before it is reloaded anyway: a
/// change that did not go through `Write::commit` (an SQL fix by hand, an older binary during
/// a rolling upgrade) shows within this many.
pub const RENEWALS_BEFORE_RELOAD: u32 = 12;

/// How many catalog versions' changes are kept (`catalog_delta`): a snapshot at most this
/// many versions behind is refreshed from them, an older one is loaded whole.
pub const CHANGES_KEPT: i64 = 10_000;

/// The catalog version now (`catalog_version`, bumped by every catalog or price write in its
/// transaction: `Write::commit`).
/// `None` if the row is missing: then nothing is renewed.
async fn read_version(db: &DatabaseConnection) -> Result<Option<i64>> {
    let statement =
        Statement::from_string(db.get_database_backend(), "SELECT version FROM catalog_version WHERE id = 1");
    let row = db.query_one_raw(statement).await?;
    Ok(row.map(|row| row.try_get::<i64>("", "version")).transpose()?)
}

impl<T> Cached<T> {
    fn fresh(&self, ttl: Duration, generation: u64) -> Option<Arc<T>> {
        (self.generation == generation && self.loaded_at.elapsed() < ttl).then(|| Arc::clone(&self.value))
    }
}

impl CatalogCache {
    /// A cache whose entries live `ttl` (then renewed if the catalog is unchanged); a zero
    /// `ttl` caches nothing (pages read the database). Built inside a runtime, it reloads in
    /// the background there.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            resellers: RwLock::new(HashMap::new()),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Bumped by every invalidation; anything derived from the catalog records it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How long cached catalog data may be reused (zero: not at all).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The snapshot if a fresh one is cached: never waits, never reads the database.
    pub fn fresh(&self) -> Option<Arc<CatalogSnapshot>> {
        let generation = self.generation.load(Ordering::Acquire);
        self.current.read().ok()?.as_ref()?.fresh(self.ttl, generation)
    }

    /// The current snapshot, loading it (once, for all waiting callers) when stale.
    pub async fn snapshot(&self, db: &DatabaseConnection) -> Result<Arc<CatalogSnapshot>> {
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        let _loading = self.loading.lock().await;
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        self.load(db).await
    }

    /// Renews the snapshot when the catalog has not changed since it was loaded (one
    /// statement), else brings it up to date from the changes recorded since (reading only
    /// the changed rows: `catalog_delta`), else loads it whole; the caller holds `loading`.
    async fn load(&self, db: &DatabaseConnection) -> Result<Arc<CatalogSnapshot>> {
        let generation = self.generation.load(Ordering::Acquire);
        // The data is as old as the start of the load (a large catalog takes a while).
        let loaded_at = Instant::now();
        let version = read_version(db).await?;
        if let Some(renewed) = self.renew(generation, version, loaded_at) {
            return Ok(renewed);
        }
        let (value, base_version, read_at) = match self.refresh_base(version) {
            Some((base, base_version, read_at)) => match base.refreshed(db, base_version).await? {
                Some(refreshed) => {
                    self.forget_resellers(&refreshed.resellers);
                    (Arc::new(refreshed.snapshot), Some(base_version), read_at)
                }
                None => (Arc::new(CatalogSnapshot::load(db).await?), None, loaded_at),
            },
            None => (Arc::new(CatalogSnapshot::load(db).await?), None, loaded_at),
        };
        // A write that committed during the load may be half in it: such a snapshot serves
        // its time-to-live (like any other) but is not renewed. A refreshed one keeps the
        // version it was refreshed from, so the next refresh applies that write again.
        let after = read_version(db).await.ok().flatten();
        let version = if version.is_some() && after == version { version } else { base_version };
        if let Ok(mut current) = self.current.write() {
            let cached = Cached { value: Arc::clone(&value), loaded_at, generation, version, read_at };
            *current = Some(cached);
        }
        Ok(value)
    }

    /// The cached snapshot, its version and when it was last read whole, if the catalog at
    /// `version` can be reached from it by the changes kept ([`CHANGES_KEPT`])
    /// and it is not due to be loaded whole (`RENEWALS_BEFORE_RELOAD`).
    fn refresh_base(&self, version: Option<i64>) -> Option<(Arc<CatalogSnapshot>, i64, Instant)> {
        let current = self.current.read().ok()?;
        let cached = current.as_ref()?;
        let (base, now) = (cached.version?, version?);
        let reachable = base <= now && now - base < CHANGES_KEPT;
        let recent = cached.read_at.elapsed() < self.ttl * RENEWALS_BEFORE_RELOAD;
        (reachable && recent).then(|| (Arc::clone(&cached.value), base, cached.read_at))
    }

    /// Drops the cached pricing of `resellers` (it changed).
    fn forget_resellers(&self, resellers: &[i64]) {
        if resellers.is_empty() {
            return;
        }
        if let Ok(mut map) = self.resellers.write() {
            for reseller in resellers {
                map.remove(reseller);
            }
        }
    }

    /// Restarts the snapshot's time-to-live from `checked_at` if it was loaded at catalog
    /// `version` and nothing was invalidated since `generation` was read.
    fn renew(&self, generation: u64, version: Option<i64>, checked_at: Instant) -> Option<Arc<CatalogSnapshot>> {
        let mut current = self.current.write().ok()?;
        let cached = current.as_mut()?;
        let unchanged = cached.generation == generation
            && self.generation.load(Ordering::Acquire) == generation
            && version.is_some()
            && cached.version == version
            && cached.read_at.elapsed() < self.ttl * RENEWALS_BEFORE_RELOAD;
        unchanged.then(|| {
            cached.loaded_at = cached.loaded_at.max(checked_at);
            Arc::clone(&cached.value)
        })
    }

    /// The snapshot if a fresh one is cached, or if it only outlived its time-to-live while
    /// the catalog did not change (then renewed: one statement); `None` when it must be
    /// reloaded or another caller is renewing or reloading it. Never waits for a reload.
    pub async fn fresh_or_renewed(&self, db: &DatabaseConnection) -> Option<Arc<CatalogSnapshot>> {
        if let Some(snapshot) = self.fresh() {
            return Some(snapshot);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let expired = self.current.read().ok()?.as_ref().is_some_and(|cached| cached.generation == generation);
        if self.ttl.is_zero() || !expired {
            return None;
        }
        let _renewing = self.loading.try_lock().ok()?;
        let checked_at = Instant::now();
        let version = read_version(db).await.ok()?;
        self.renew(generation, version, checked_at)
    }

    /// Starts reloading a stale snapshot in the background, unless the cache is off or a
    /// reload is under way: catalog pages meanwhile read the database directly
    /// (`catalog::direct`), so no page waits for a reload and no two reloads run at once.
    pub fn refresh_in_background(domain: &Arc<Domain>) {
        if domain.catalog.ttl.is_zero() || domain.catalog.loading.try_lock().is_err() {
            return;
        }
        let runtime = domain.catalog.runtime.clone();
        let domain = Arc::clone(domain);
        let reload = async move {
            let Ok(_loading) = domain.catalog.loading.try_lock() else { return };
            if domain.catalog.fresh().is_none()
                && let Err(error) = domain.catalog.load(&domain.db).await
            {
                tracing::warn!(%error, "the catalog snapshot could not be reloaded; reads go to the database");
            }
        };
        match runtime {
            Some(runtime) => drop(runtime.spawn(reload)),
            None => drop(tokio::spawn(reload)),
        }
    }

    /// One reseller's pricing, loading it when stale; `None` if the reseller does not exist.
    pub async fn reseller_pricing(
        &self,
        db: &DatabaseConnection,
        reseller_id: i64,
    ) -> Result<Option<Arc<ResellerPricing>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let cached = self
            .resellers
            .read()
            .ok()
            .and_then(|map| map.get(&reseller_id).and_then(|entry| entry.fresh(self.ttl, generation)));
        if let Some(pricing) = cached {
            return Ok(Some(pricing));
        }
        let Some(value) = ResellerPricing::load(db, reseller_id).await?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut map) = self.resellers.write() {
            let now = Instant::now();
            let loaded = Cached { value: Arc::clone(&value), loaded_at: now, generation, version: None, read_at: now };
            map.insert(reseller_id, loaded);
        }
        Ok(Some(value))
    }

    /// When the oldest data now cached was loaded (now, when nothing is): a response
    /// computed from this cache is at most that old, whenever it is computed.
    pub fn data_as_of(&self) -> Instant {
        let mut oldest = Instant::now();
        if let Ok(current) = self.current.read()
            && let Some(cached) = current.as_ref()
        {
            oldest = oldest.min(cached.loaded_at);
        }
        if let Ok(map) = self.resellers.read() {
            for cached in map.values() {
                oldest = oldest.min(cached.loaded_at);
            }
        }
        oldest
    }

    /// Makes everything cached stale; called after every committed catalog or price write.
    /// The snapshot is kept (not served) as the base the next load refreshes from.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.resellers.write() {
            map.clear();
        }
    }
}
