//! The in-memory catalog: a read snapshot of vendors, products, offers and their prices.
//!
//! Storefronts browse far more than they buy, so catalog reads are served from a snapshot
//! (`catalog_snapshot`) loaded in a fixed number of statements (one per table) and shared by
//! every request. Per-reseller price data (explicit wholesale and retail prices, the default
//! markup) is loaded per reseller on first use. Every catalog or price write in this process
//! calls [`CatalogCache::mark_stale`]; writes made by another process are seen when the
//! snapshot's time-to-live runs out (`catalog_cache_ttl`; 0 disables the cache). Either way
//! the snapshot is then refreshed from the changes the writes recorded (`catalog_delta`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::Domain;
use super::catalog_delta::{CHANGES_KEPT, Refreshed, refreshed};
pub use super::catalog_snapshot::{CatalogSnapshot, Counts, ResellerPricing};
use super::error::Result;

/// The shared cache of the catalog snapshot and of per-reseller pricing.
///
/// Reads take a read lock only. A load that raced with a write in this process is used for
/// the request that made it, then kept only as the base of the next refresh: a generation
/// counter tells the two apart. One that raced with [`CatalogCache::invalidate`] is not kept.
#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    generation: AtomicU64,
    /// Bumped by every [`CatalogCache::invalidate`]: a load that began before is not kept.
    drops: AtomicU64,
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
    /// For snapshots: the catalog version (`catalog_version`) read just before the snapshot
    /// was read or refreshed: it holds every change up to that version, perhaps some after
    /// (`None`: the row is missing; such a snapshot is never renewed nor refreshed).
    version: Option<i64>,
    /// When the value was read from the database (renewals move `loaded_at` only).
    read_at: Instant,
}

/// How many time-to-lives a snapshot may be renewed for before it is reloaded anyway: a
/// change that did not go through `Write::commit` (an SQL fix by hand, an older binary during
/// a rolling upgrade) shows within this many.
pub const RENEWALS_BEFORE_RELOAD: u32 = 12;

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
            drops: AtomicU64::new(0),
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
    ///
    /// Either way the result is kept under the version read before it was read: every row
    /// that differs from the catalog at that version was changed by a later write, which
    /// recorded the change, so the next refresh from that version makes it whole even if a
    /// write committed while this one read (such a snapshot is never renewed: the version
    /// has moved past it).
    async fn load(&self, db: &DatabaseConnection) -> Result<Arc<CatalogSnapshot>> {
        let generation = self.generation.load(Ordering::Acquire);
        let drops = self.drops.load(Ordering::Acquire);
        // The data is as old as the start of the load (a large catalog takes a while).
        let loaded_at = Instant::now();
        let version = read_version(db).await?;
        if let Some(renewed) = self.renew(generation, version, loaded_at) {
            return Ok(renewed);
        }
        let refreshed = match (self.refresh_base(version), version) {
            (Some((base, base_version, read_at)), Some(now)) => {
                refreshed(&base, db, base_version, now).await?.map(|refreshed| match refreshed {
                    Refreshed::Changed(snapshot) => (Arc::new(*snapshot), read_at),
                    Refreshed::Unchanged => (base, read_at),
                })
            }
            _ => None,
        };
        let (value, read_at) = match refreshed {
            Some(refreshed) => refreshed,
            None => (Arc::new(CatalogSnapshot::load(db).await?), loaded_at),
        };
        if let Ok(mut current) = self.current.write()
            && self.drops.load(Ordering::Acquire) == drops
        {
            let cached = Cached { value: Arc::clone(&value), loaded_at, generation, version, read_at };
            *current = Some(cached);
        }
        Ok(value)
    }

    /// The cached snapshot, its version and when it was last read whole, if the catalog at
    /// `version` may be reached from it by the changes kept ([`CHANGES_KEPT`]) and it is not
    /// due to be loaded whole (`RENEWALS_BEFORE_RELOAD`).
    fn refresh_base(&self, version: Option<i64>) -> Option<(Arc<CatalogSnapshot>, i64, Instant)> {
        let current = self.current.read().ok()?;
        let cached = current.as_ref()?;
        let (base, now) = (cached.version?, version?);
        let reachable = base <= now && now - base < CHANGES_KEPT;
        let recent = cached.read_at.elapsed() < self.ttl * RENEWALS_BEFORE_RELOAD;
        (reachable && recent).then(|| (Arc::clone(&cached.value), base, cached.read_at))
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
    /// computed from this cache is at most that old, whenever it is computed. A snapshot
    /// kept after an invalidation only as the base of its refresh is served to no one.
    pub fn data_as_of(&self) -> Instant {
        let generation = self.generation.load(Ordering::Acquire);
        let mut oldest = Instant::now();
        if let Ok(current) = self.current.read()
            && let Some(cached) = current.as_ref().filter(|cached| cached.generation == generation)
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

    /// Makes everything cached stale; called after every committed catalog or price write
    /// in this process (`Write::commit`). The snapshot is kept, not served, as the base the
    /// next load refreshes from the changes the write recorded.
    pub fn mark_stale(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.resellers.write() {
            map.clear();
        }
    }

    /// Drops everything cached: the next load reads the catalog whole. For rows changed
    /// behind the catalog's version (SQL by hand, which records no change to refresh from).
    pub fn invalidate(&self) {
        if let Ok(mut current) = self.current.write() {
            self.drops.fetch_add(1, Ordering::AcqRel);
            *current = None;
        }
        self.mark_stale();
    }
}
