//! Our side of matching: our charges (written, or planned by the next run) summed per
//! subscription, cycle and kind of unit; the groups a period's run charged, found in a light
//! pass; and the cycles other statements of the vendor charged.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::enums::ChargeKind;
use entity::{DbDecimal, charge, reconciliation_finding, reconciliation_import};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::matching::{ChargeFacts, OurSide};
use super::sides::{OurGroup, OurKey, midnight, too_large};
use crate::domain::Domain;
use crate::domain::error::Result;

/// Charges read per page.
const PAGE: u64 = 5_000;

/// Ids per `IN (…)`: well inside every backend's bind-parameter limit.
const IDS: usize = 1_000;

/// A charge of ours (written or planned), as a group sums it.
pub(super) struct Line<'a> {
    pub(super) key: &'a str,
    pub(super) kind: ChargeKind,
    pub(super) quantity: Decimal,
    pub(super) cycle_unit_cost: Decimal,
    pub(super) days: Option<(u32, u32)>,
    /// First day, and the first day after.
    pub(super) service: (NaiveDate, NaiveDate),
    /// Cost, wholesale, retail.
    pub(super) amounts: (Decimal, Decimal, Decimal),
}

/// Adds a charge to its group: the cycle is the day before its service ends; usage is a
/// usage line (late usage too, an ADJUSTMENT keyed `usage:`). A recovery (`recovery:<last
/// day>:<SEATS|USAGE>`) adds what it bills, not seats or a unit price.
pub(super) fn add_line<'g>(
    groups: &'g mut HashMap<OurKey, OurGroup>,
    subscription_id: i64,
    currency: &str,
    line: Line<'_>,
) -> Result<&'g mut OurGroup> {
    let recovery = line.key.starts_with("recovery:");
    let key = key_of(subscription_id, line.key, line.kind, midnight(line.service.1));
    let group = groups.entry(key).or_insert_with(|| OurGroup {
        side: OurSide { currency: currency.to_owned(), ..OurSide::default() },
        first_day: line.service.0,
        in_period: false,
    });
    group.first_day = group.first_day.min(line.service.0);
    if !recovery {
        group.side.charges.push(ChargeFacts {
            quantity: line.quantity,
            cycle_unit_cost: line.cycle_unit_cost,
            days: line.days,
        });
    }
    let side = &mut group.side;
    side.cost = side.cost.checked_add(line.amounts.0).ok_or_else(too_large)?;
    side.wholesale = side.wholesale.checked_add(line.amounts.1).ok_or_else(too_large)?;
    side.retail = side.retail.checked_add(line.amounts.2).ok_or_else(too_large)?;
    Ok(group)
}

/// A charge, as matching reads it.
#[derive(sea_orm::FromQueryResult)]
struct ChargeRow {
    subscription_id: i64,
    period: String,
    kind: ChargeKind,
    charge_key: String,
    quantity: DbDecimal,
    days_used: Option<i32>,
    days_in_period: Option<i32>,
    service_start: DateTime<Utc>,
    service_end: DateTime<Utc>,
    currency: String,
    unit_cost: DbDecimal,
    amount_cost: DbDecimal,
    amount_wholesale: DbDecimal,
    amount_retail: DbDecimal,
    cycle_unit_cost: Option<DbDecimal>,
}

/// Our charges of `subscription_ids` (for cycles ending between `lo` and `hi`, when given;
/// every cycle of theirs otherwise), summed per subscription, cycle and kind of unit;
/// `in_period` marks the groups a run of `period` charged. The ids bound what is read.
pub(super) async fn our_groups(
    domain: &Domain,
    subscription_ids: &[i64],
    period: &str,
    cycles: Option<(NaiveDate, NaiveDate)>,
) -> Result<HashMap<OurKey, OurGroup>> {
    let mut groups: HashMap<OurKey, OurGroup> = HashMap::new();
    for chunk in subscription_ids.chunks(IDS) {
        let mut find = charge::Entity::find();
        if let Some((lo, hi)) = cycles {
            find = find
                .filter(charge::Column::ServiceEnd.gte(midnight(lo + Duration::days(1))))
                .filter(charge::Column::ServiceEnd.lte(midnight(hi + Duration::days(1))));
        }
        let rows: Vec<ChargeRow> = find
            .select_only()
            .columns([
                charge::Column::SubscriptionId,
                charge::Column::Period,
                charge::Column::Kind,
                charge::Column::ChargeKey,
                charge::Column::Quantity,
                charge::Column::DaysUsed,
                charge::Column::DaysInPeriod,
                charge::Column::ServiceStart,
                charge::Column::ServiceEnd,
                charge::Column::Currency,
                charge::Column::UnitCost,
                charge::Column::AmountCost,
                charge::Column::AmountWholesale,
                charge::Column::AmountRetail,
                charge::Column::CycleUnitCost,
            ])
            .filter(charge::Column::SubscriptionId.is_in(chunk.iter().copied()))
            .into_model::<ChargeRow>()
            .all(&domain.db)
            .await?;
        for c in rows {
            let days = c
                .days_used
                .zip(c.days_in_period)
                .and_then(|(u, o)| Some((u32::try_from(u).ok()?, u32::try_from(o).ok()?)));
            let line = Line {
                key: &c.charge_key,
                kind: c.kind,
                quantity: c.quantity.0,
                cycle_unit_cost: c.cycle_unit_cost.map_or(c.unit_cost.0, |p| p.0),
                days,
                service: (c.service_start.date_naive(), c.service_end.date_naive()),
                amounts: (c.amount_cost.0, c.amount_wholesale.0, c.amount_retail.0),
            };
            let group = add_line(&mut groups, c.subscription_id, &c.currency, line)?;
            group.in_period |= c.period == period;
        }
    }
    Ok(groups)
}

/// The group of a charge: its subscription, its cycle (the day before its service ends) and
/// whether it is usage (late usage too, keyed `usage:`; a recovery says in its key).
pub(super) fn key_of(subscription_id: i64, charge_key: &str, kind: ChargeKind, service_end: DateTime<Utc>) -> OurKey {
    let usage = if charge_key.starts_with("recovery:") {
        charge_key.ends_with(":USAGE")
    } else {
        kind == ChargeKind::Usage || charge_key.starts_with("usage:")
    };
    (subscription_id, service_end.date_naive() - Duration::days(1), usage)
}

/// The groups of the charges a run of `period` wrote for the vendor, a page after charge
/// `after`: (the last charge's id, the groups).
pub(super) async fn charged_in_period(
    domain: &Domain,
    vendor_id: i64,
    period: &str,
    after: i64,
) -> Result<(Option<i64>, Vec<OurKey>)> {
    let rows: Vec<(i64, i64, String, ChargeKind, DateTime<Utc>)> = charge::Entity::find()
        .select_only()
        .columns([
            charge::Column::Id,
            charge::Column::SubscriptionId,
            charge::Column::ChargeKey,
            charge::Column::Kind,
            charge::Column::ServiceEnd,
        ])
        .filter(charge::Column::VendorId.eq(vendor_id))
        .filter(charge::Column::Period.eq(period))
        .filter(charge::Column::Id.gt(after))
        .order_by_asc(charge::Column::Id)
        .limit(PAGE)
        .into_tuple()
        .all(&domain.db)
        .await?;
    let last = rows.last().map(|r| r.0);
    Ok((last, rows.into_iter().map(|(_, s, key, kind, end)| key_of(s, &key, kind, end)).collect()))
}

/// The cycles of `subscription_ids` the statements of the vendor charged: those of `import`
/// (matched so far) and, when `others`, those of its other imports.
pub(super) async fn cycles_charged(
    domain: &Domain,
    import: &reconciliation_import::Model,
    subscription_ids: &[i64],
    others: bool,
) -> Result<HashSet<OurKey>> {
    let imports: Vec<i64> = if others {
        reconciliation_import::Entity::find()
            .select_only()
            .column(reconciliation_import::Column::Id)
            .filter(reconciliation_import::Column::VendorId.eq(import.vendor_id))
            .filter(reconciliation_import::Column::Id.ne(import.id))
            .into_tuple()
            .all(&domain.db)
            .await?
    } else {
        vec![import.id]
    };
    let mut found = HashSet::new();
    if imports.is_empty() {
        return Ok(found);
    }
    for chunk in subscription_ids.chunks(IDS) {
        let rows: Vec<(Option<i64>, DateTime<Utc>, String)> = reconciliation_finding::Entity::find()
            .select_only()
            .columns([
                reconciliation_finding::Column::SubscriptionId,
                reconciliation_finding::Column::ChargeEnd,
                reconciliation_finding::Column::UnitKind,
            ])
            .filter(reconciliation_finding::Column::ImportId.is_in(imports.iter().copied()))
            .filter(reconciliation_finding::Column::SubscriptionId.is_in(chunk.iter().copied()))
            .filter(reconciliation_finding::Column::VendorRows.gt(0))
            .into_tuple()
            .all(&domain.db)
            .await?;
        found.extend(rows.into_iter().filter_map(|(s, end, kind)| Some((s?, end.date_naive(), kind == "USAGE"))));
    }
    Ok(found)
}
