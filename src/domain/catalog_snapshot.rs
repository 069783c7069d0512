//! The catalog as one read-only value: vendors, products, offers, price points, tiers and
//! tier prices ([`CatalogSnapshot`], loaded in a fixed number of statements), and one
//! reseller's pricing inputs ([`ResellerPricing`]). `catalog_cache` keeps them;
//! `catalog_delta` brings a snapshot up to date.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use entity::{offer, price_point, product, reseller, retail_price, tier, vendor, wholesale_price};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

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

        let reseller_times = reseller_price_times(db, None).await?;

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
        snapshot.price_change_times.extend(reseller_times);
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

/// Ids read per `IN (…)` statement.
pub(crate) const IDS_PER_STATEMENT: usize = 500;

/// Every time at which an explicit price of a reseller (wholesale or retail) takes effect:
/// of every reseller, or of `resellers` only. Two statements (per 500 resellers).
pub(crate) async fn reseller_price_times(
    db: &DatabaseConnection,
    resellers: Option<&[i64]>,
) -> Result<Vec<DateTime<Utc>>> {
    let chunks: Vec<Option<&[i64]>> = match resellers {
        None => vec![None],
        Some(ids) => ids.chunks(IDS_PER_STATEMENT).map(Some).collect(),
    };
    let mut times = Vec::new();
    for chunk in chunks {
        let ids = || chunk.into_iter().flatten().copied();
        let wholesale: Vec<DateTime<Utc>> = wholesale_price::Entity::find()
            .select_only()
            .column(wholesale_price::Column::EffectiveFrom)
            .filter(match chunk {
                None => wholesale_price::Column::ResellerId.is_not_null(),
                Some(_) => wholesale_price::Column::ResellerId.is_in(ids()),
            })
            .distinct()
            .into_tuple()
            .all(db)
            .await?;
        let mut retail = retail_price::Entity::find().select_only().column(retail_price::Column::EffectiveFrom);
        if chunk.is_some() {
            retail = retail.filter(retail_price::Column::ResellerId.is_in(ids()));
        }
        let retail: Vec<DateTime<Utc>> = retail.distinct().into_tuple().all(db).await?;
        times.extend(wholesale);
        times.extend(retail);
    }
    Ok(times)
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
