//! Incremental catalog refresh: what a catalog write changed, and a snapshot brought up to
//! date by re-reading only those rows.
//!
//! Every catalog or price write names the rows it changed ([`CatalogChange`]); its
//! transaction bumps `catalog_version` and records one `catalog_changes` row per changed row
//! under the new version (`Write::commit`). A snapshot loaded at version `v` is refreshed by
//! reading the changes after `v` and re-reading those rows by id: a change is "read the row
//! as it is now", so applying one twice, or out of order, or together with later ones gives
//! the same result, and a refresh that raced with a write can simply be applied again from
//! `v`. Every version in between must have left its changes (a version is bumped only with
//! changes recorded, and a rolled-back bump takes no number): when one is missing — pruned
//! (writes prune the changes of versions older than the last [`CHANGES_KEPT`]), or bumped
//! by an older binary or by hand — the snapshot is loaded whole.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use entity::{offer, price_point, product, tier, vendor, wholesale_price};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Statement};

use super::catalog_snapshot::{CatalogSnapshot, IDS_PER_STATEMENT, reseller_price_times};
use super::error::Result;

/// How many catalog versions' changes are kept: a snapshot fewer than this many versions
/// behind is refreshed from them, an older one is loaded whole.
pub const CHANGES_KEPT: i64 = 10_000;

/// One catalog row (or set of rows) a write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CatalogChange {
    /// A vendor row.
    Vendor(i64),
    /// A product row.
    Product(i64),
    /// An offer row.
    Offer(i64),
    /// The price points of an offer.
    PricePoints(i64),
    /// A tier row.
    Tier(i64),
    /// The tier wholesale prices of an offer.
    TierPrices(i64),
    /// A reseller's pricing: its tier, its default markup, its explicit wholesale and
    /// retail prices.
    Reseller(i64),
}

impl CatalogChange {
    /// The kind and row id stored in `catalog_changes`.
    pub fn row(self) -> (&'static str, i64) {
        match self {
            Self::Vendor(id) => ("vendor", id),
            Self::Product(id) => ("product", id),
            Self::Offer(id) => ("offer", id),
            Self::PricePoints(id) => ("price_points", id),
            Self::Tier(id) => ("tier", id),
            Self::TierPrices(id) => ("tier_prices", id),
            Self::Reseller(id) => ("reseller", id),
        }
    }

    /// The change a stored kind and row id name; `None` for a kind this build does not know
    /// (written by a newer one: the caller loads the catalog whole).
    fn from_row(kind: &str, id: i64) -> Option<Self> {
        Some(match kind {
            "vendor" => Self::Vendor(id),
            "product" => Self::Product(id),
            "offer" => Self::Offer(id),
            "price_points" => Self::PricePoints(id),
            "tier" => Self::Tier(id),
            "tier_prices" => Self::TierPrices(id),
            "reseller" => Self::Reseller(id),
            _ => return None,
        })
    }
}

/// The changes recorded after some version, each once, in order.
#[derive(Debug, Default)]
struct Changed(BTreeSet<CatalogChange>);

impl Changed {
    /// The ids of the rows of the kind `kind` names (`CatalogChange::Offer`, say), in order.
    fn ids(&self, kind: fn(i64) -> CatalogChange) -> Vec<i64> {
        let wanted = kind(0).row().0;
        self.0.iter().map(|change| change.row()).filter(|(kind, _)| *kind == wanted).map(|(_, id)| id).collect()
    }
}

/// A snapshot brought up to date.
#[derive(Debug)]
pub enum Refreshed {
    /// No change was recorded since: the snapshot is the catalog still.
    Unchanged,
    /// A copy of the snapshot with every change applied.
    Changed(Box<CatalogSnapshot>),
}

/// The changes recorded after version `base`, or `None` if one is of a kind this build does
/// not know or a version up to `through` left none.
async fn changes_after(db: &DatabaseConnection, base: i64, through: i64) -> Result<Option<Changed>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT version, kind, row_id FROM catalog_changes WHERE version > $1",
        _ => "SELECT version, kind, row_id FROM catalog_changes WHERE version > ?",
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [base.into()])).await?;
    let mut changed = Changed::default();
    let mut versions = BTreeSet::new();
    for row in rows {
        let version: i64 = row.try_get("", "version")?;
        let kind: String = row.try_get("", "kind")?;
        let id: i64 = row.try_get("", "row_id")?;
        let Some(change) = CatalogChange::from_row(&kind, id) else {
            return Ok(None);
        };
        versions.insert(version);
        changed.0.insert(change);
    }
    if !(base + 1..=through).all(|version| versions.contains(&version)) {
        return Ok(None);
    }
    Ok(Some(changed))
}

/// Reads the rows of `E` whose `column` is one of `ids`, `IDS_PER_STATEMENT` ids a statement.
async fn rows_where<E, C>(db: &DatabaseConnection, column: C, ids: &[i64], order: &[C]) -> Result<Vec<E::Model>>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let mut rows = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = E::find().filter(column.is_in(chunk.iter().copied()));
        for column in order {
            query = query.order_by_asc(*column);
        }
        rows.extend(query.all(db).await?);
    }
    Ok(rows)
}

/// `snapshot`, holding the catalog at version `base`, brought up to version `through` (read
/// before this is called) and perhaps beyond: the rows the changes recorded after `base`
/// name are read again, nothing else is. `None` when the changes do not reach back to `base`
/// or one is of a kind this build does not know (the caller loads the catalog whole).
pub async fn refreshed(
    snapshot: &CatalogSnapshot,
    db: &DatabaseConnection,
    base: i64,
    through: i64,
) -> Result<Option<Refreshed>> {
    let Some(changed) = changes_after(db, base, through).await? else {
        return Ok(None);
    };
    if changed.0.is_empty() {
        return Ok(Some(Refreshed::Unchanged));
    }
    let vendors = changed.ids(CatalogChange::Vendor);
    let products = changed.ids(CatalogChange::Product);
    let tiers = changed.ids(CatalogChange::Tier);
    let offers = changed.ids(CatalogChange::Offer);
    let price_points = changed.ids(CatalogChange::PricePoints);
    let tier_prices = changed.ids(CatalogChange::TierPrices);
    let resellers = changed.ids(CatalogChange::Reseller);
    // A copy: readers keep the snapshot they hold (its counts start again empty).
    let mut snapshot = snapshot.clone();

    let rows = rows_where::<vendor::Entity, _>(db, vendor::Column::Id, &vendors, &[]).await?;
    replace_rows(&mut snapshot.vendors, &vendors, rows, |v| v.id);
    let rows = rows_where::<product::Entity, _>(db, product::Column::Id, &products, &[]).await?;
    replace_rows(&mut snapshot.products, &products, rows, |p| p.id);
    let rows = rows_where::<tier::Entity, _>(db, tier::Column::Id, &tiers, &[]).await?;
    replace_rows(&mut snapshot.tiers, &tiers, rows, |t| t.id);

    let rows = rows_where::<offer::Entity, _>(db, offer::Column::Id, &offers, &[]).await?;
    replace_offers(&mut snapshot, &offers, rows);

    let points = rows_where::<price_point::Entity, _>(
        db,
        price_point::Column::OfferId,
        &price_points,
        &[price_point::Column::EffectiveFrom, price_point::Column::Id],
    )
    .await?;
    for offer in &price_points {
        snapshot.price_points.remove(offer);
    }
    let tier_rows = rows_where::<wholesale_price::Entity, _>(
        db,
        wholesale_price::Column::OfferId,
        &tier_prices,
        &[wholesale_price::Column::EffectiveFrom, wholesale_price::Column::Id],
    )
    .await?;
    let tier_rows: Vec<_> = tier_rows.into_iter().filter(|row| row.tier_id.is_some()).collect();
    if !tier_prices.is_empty() {
        let offers: HashSet<i64> = tier_prices.iter().copied().collect();
        snapshot.tier_prices.retain(|(offer, _, _), _| !offers.contains(offer));
    }
    snapshot.price_change_times.extend(points.iter().map(|p| p.effective_from));
    snapshot.price_change_times.extend(tier_rows.iter().map(|row| row.effective_from));
    snapshot.add_prices(points, tier_rows);
    // A reseller's own prices are cached per reseller (for a time-to-live); the snapshot
    // keeps only when they take effect.
    snapshot.price_change_times.extend(reseller_price_times(db, Some(&resellers)).await?);
    Ok(Some(Refreshed::Changed(Box::new(snapshot))))
}

/// Replaces the offers `ids` of `snapshot` by `rows` (an id without a row was deleted),
/// keeping each product's offer list in id order.
fn replace_offers(snapshot: &mut CatalogSnapshot, ids: &[i64], rows: Vec<offer::Model>) {
    let changed: HashSet<i64> = ids.iter().copied().collect();
    let mut touched = BTreeSet::new();
    for id in ids {
        if let Some(old) = snapshot.offers.remove(id) {
            touched.insert(old.product_id);
        }
    }
    let mut added: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in rows {
        touched.insert(row.product_id);
        added.entry(row.product_id).or_default().push(row.id);
        snapshot.offers.insert(row.id, row);
    }
    for product in touched {
        let list = snapshot.offers_by_product.entry(product).or_default();
        list.retain(|id| !changed.contains(id));
        list.extend(added.remove(&product).unwrap_or_default());
        list.sort_unstable();
        if list.is_empty() {
            snapshot.offers_by_product.remove(&product);
        }
    }
}

/// Replaces the rows `ids` of `map` by `rows` (an id without a row was deleted).
fn replace_rows<T>(map: &mut BTreeMap<i64, T>, ids: &[i64], rows: Vec<T>, id: impl Fn(&T) -> i64) {
    for key in ids {
        map.remove(key);
    }
    map.extend(rows.into_iter().map(|row| (id(&row), row)));
}
