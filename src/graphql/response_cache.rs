//! A cache of whole GraphQL responses for catalog reads, the storefronts' hottest path.
//!
//! Only single queries by a vendor, reseller or customer whose root fields are all catalog
//! fields (`offers`, `products`, `vendors` and their lookups) are cached, keyed by the caller's
//! role and organization, the document, the variables and the operation name. Catalog types
//! lead only to catalog data and to the caller's own prices, so such a response depends on
//! nothing else. An entry is used while all of these hold:
//! - the catalog generation is unchanged (every catalog or price write bumps it);
//! - the data it was computed from is younger than the catalog cache TTL (bounds staleness
//!   across processes: the age counts from when that data was loaded, not from when the
//!   response was computed, so another process's write shows within one TTL);
//! - no price has taken effect since it was computed (`next_price_change_after`).
//!
//! A TTL of zero disables this cache along with the catalog cache. The cache holds at most
//! `SWITCHYARD_RESPONSE_CACHE_BYTES` of bodies (and 4,096 entries); a body larger than a
//! sixteenth of that is not kept, and the cache is emptied when the next body would pass
//! the budget, so no tenant's queries can make it grow without bound.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::domain::{Actor, Domain, Role};

/// Root fields whose results depend only on the catalog and the caller's prices.
const CATALOG_ROOT_FIELDS: [&str; 7] = ["offers", "offer", "products", "product", "vendors", "vendor", "__typename"];
/// Entries kept at most; the cache is emptied when it would grow past this.
const MAX_ENTRIES: usize = 4096;

/// What a cached response is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    role: Role,
    organization_id: Option<i64>,
    query: String,
    variables: String,
    operation_name: Option<String>,
}

impl CacheKey {
    /// The key of a request, if its caller's responses may be cached at all.
    pub fn for_request(actor: Option<&Actor>, request: &async_graphql::Request) -> Option<Self> {
        // An API key without catalog:read is refused before running: never from the cache.
        let reads_catalog = |a: &Actor| a.scopes.is_none_or(|s| s.has(crate::domain::scopes::Scope::CatalogRead));
        let actor = actor.filter(|a| a.role() != Role::Operator && reads_catalog(a))?;
        Some(Self {
            role: actor.role(),
            organization_id: actor.organization_id(),
            query: request.query.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
            operation_name: request.operation_name.clone(),
        })
    }

    /// Whether the document's selected operation is a query over catalog root fields only.
    pub fn is_catalog_query(&self) -> bool {
        let Ok(document) = async_graphql::parser::parse_query(&self.query) else { return false };
        let operation = match (&document.operations, self.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
                Some(op) => op,
                None => return false,
            },
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
                Some(op) => op,
                None => return false,
            },
            (DocumentOperations::Multiple(_), None) => return false,
        };
        operation.node.ty == OperationType::Query
            && operation.node.selection_set.node.items.iter().all(|item| match &item.node {
                Selection::Field(field) => CATALOG_ROOT_FIELDS.contains(&field.node.name.node.as_str()),
                _ => false,
            })
    }
}

/// A cached response: its body, and the name of the operation that computed it (for the
/// metrics of the requests it then answers).
#[derive(Clone, Debug)]
pub struct Cached {
    /// The response body.
    pub body: Bytes,
    /// Its operation's name, if it had one.
    pub operation: Option<String>,
}

struct Entry {
    cached: Cached,
    generation: u64,
    /// When the data it was computed from was loaded.
    stored_at: Instant,
    valid_until: Option<DateTime<Utc>>,
    /// Its bytes, key included.
    size: usize,
}

/// The response cache; see the module documentation for when entries are used.
#[derive(Default)]
pub struct ResponseCache {
    entries: RwLock<Entries>,
    /// The most bytes of bodies kept (0: no limit but the entry count).
    budget: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<CacheKey, Entry>,
    bytes: usize,
}

impl ResponseCache {
    /// A cached body for `key`, if still valid.
    pub fn get(&self, key: &CacheKey, domain: &Domain) -> Option<Cached> {
        let ttl = domain.catalog.ttl();
        if ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.map.get(key)?;
        let fresh = entry.generation == domain.catalog.generation()
            && entry.stored_at.elapsed() < ttl
            && entry.valid_until.is_none_or(|until| domain.clock.now() < until);
        fresh.then(|| entry.cached.clone())
    }

    /// A cache holding at most `budget` bytes of bodies (0: only the entry cap).
    pub fn with_budget(budget: usize) -> Self {
        Self { entries: RwLock::default(), budget }
    }

    /// Stores a body computed at catalog `generation` from data loaded at `as_of` (see
    /// `CatalogCache::data_as_of`), valid until the next price change.
    pub fn put(
        &self,
        key: CacheKey,
        cached: Cached,
        (generation, as_of): (u64, Instant),
        valid_until: Option<DateTime<Utc>>,
        domain: &Domain,
    ) {
        let body = cached.body.len();
        if domain.catalog.ttl().is_zero() || (self.budget > 0 && body > self.budget / 16) {
            return;
        }
        let size = key.query.len() + key.variables.len() + body;
        if let Ok(mut entries) = self.entries.write() {
            let over_budget = self.budget > 0 && entries.bytes + size > self.budget;
            if entries.map.len() >= MAX_ENTRIES || over_budget {
                entries.map.clear();
                entries.bytes = 0;
            }
            let entry = Entry { cached, generation, stored_at: as_of, valid_until, size };
            if let Some(replaced) = entries.map.insert(key, entry) {
                entries.bytes -= replaced.size;
            }
            entries.bytes += size;
        }
    }

    /// The bytes of bodies (and their keys) now kept.
    pub fn bytes(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.bytes)
    }
}
