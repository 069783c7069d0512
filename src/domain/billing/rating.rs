//! Rating: the usage lines of a run (in arrears, at the usage price in force when each
//! record occurred), and the bounds that keep every line a run writes storable.

use std::collections::{HashMap, HashSet};

use entity::enums::ChargeKind;
use entity::{subscription, subscription_change, usage_record};
use rust_decimal::Decimal;

use super::plan::{Period, PlannedCharge};
use super::usage_cutoff;
use crate::domain::Domain;
use crate::domain::error::Result;
use crate::domain::money::{Currency, round_to_minor_units};

/// Usage lines, in arrears: one per month of usage not billed yet and price point, each
/// record rated at the usage prices in force when it occurred. Wholesale is cost plus the
/// reseller's tier markup; retail the reseller's default markup over wholesale, else the
/// list price. Records with no usage price in force wait (and are not guessed).
pub(super) async fn plan_usage(
    domain: &Domain,
    subscription: &subscription::Model,
    records: &[usage_record::Model],
    period: Period,
    charged: &HashSet<String>,
) -> Result<(Vec<(PlannedCharge, Vec<i64>)>, Vec<String>)> {
    let currency = Currency::parse(&subscription.currency, "currency")?;
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    let (tier_markup, retail_markup) =
        match domain.catalog.reseller_pricing(&domain.db, subscription.reseller_id).await? {
            Some(pricing) => (
                snapshot.tiers.get(&pricing.reseller.tier_id).map(|t| t.markup.0).unwrap_or_default(),
                pricing.reseller.default_retail_markup.map(|m| m.0),
            ),
            None => (Decimal::ZERO, None),
        };
    let points: Vec<_> = snapshot
        .price_points
        .get(&subscription.offer_id)
        .into_iter()
        .flatten()
        .filter(|p| p.currency == subscription.currency)
        .collect();
    let mut groups: HashMap<(Period, i64), Vec<&usage_record::Model>> = HashMap::new();
    for record in records {
        let Some(point) = crate::domain::pricing::in_force(&points, record.occurred_at) else { continue };
        groups.entry((Period::containing(record.occurred_at.date_naive()), point.id)).or_default().push(record);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|((usage_period, point), _)| (*usage_period, *point));
    let mut lines = Vec::new();
    let mut too_large = Vec::new();
    for ((usage_period, point_id), records) in groups {
        let key = format!("usage:{}:{}:{point_id}", usage_period.label(), period.label());
        if charged.contains(&key) {
            continue;
        }
        let Some(point) = points.iter().find(|p| p.id == point_id) else { continue };
        let (Some(cost), Some(list)) = (point.usage_unit_cost, point.usage_unit_list_price) else { continue };
        let cost = cost.0;
        let wholesale = cost * (Decimal::ONE + tier_markup);
        let retail = retail_markup.map_or(list.0, |markup| wholesale * (Decimal::ONE + markup));
        let kind = if usage_period.next() < period { ChargeKind::Adjustment } else { ChargeKind::Usage };
        let meter = records.first().map(|r| r.meter.clone()).unwrap_or_default();
        // Checked: a line past what an amount may hold is left unbilled (and logged) rather
        // than failing every run.
        let quantity = records.iter().try_fold(Decimal::ZERO, |sum, r| sum.checked_add(r.quantity.0));
        let amount = |unit: Decimal| {
            quantity
                .and_then(|q| unit.checked_mul(q))
                .map(|a| round_to_minor_units(a, currency))
                .filter(|a| a.abs() <= crate::domain::money::max_storable())
        };
        let (Some(quantity), Some(cost_amount), Some(wholesale_amount), Some(retail_amount)) =
            (quantity, amount(cost), amount(wholesale), amount(retail))
        else {
            tracing::warn!(subscription = subscription.id, %key, "usage line too large to bill; left unbilled");
            too_large.push(format!("subscription {}: usage {key} is larger than an amount may be", subscription.id));
            continue;
        };
        lines.push((
            PlannedCharge {
                kind,
                key,
                description: format!("usage {meter} {}: {quantity} units", usage_period.label()),
                quantity,
                days_used: None,
                days_in_period: None,
                service_start: usage_cutoff(usage_period),
                service_end: usage_cutoff(usage_period.next()),
                unit: (cost, wholesale, retail),
                amount: (cost_amount, wholesale_amount, retail_amount),
                cycle_unit: (cost, wholesale, retail),
            },
            records.iter().map(|r| r.id).collect(),
        ));
    }
    Ok((lines, too_large))
}

/// Why a subscription's amounts could pass what an amount may hold, if they could: its
/// prices (as of each term) or seats past the bounds of `money` (only data from before the
/// bounds existed). Within them no line can overflow.
pub(super) fn out_of_bounds(
    subscription: &subscription::Model,
    history: &[subscription_change::Model],
) -> Option<String> {
    use crate::domain::money::{MAX_QUANTITY, max_unit_price};
    // A unit may sell for 121 × the largest price (markups of at most 10 on either side).
    let largest_unit = max_unit_price() * Decimal::from(121);
    let prices = [subscription.unit_cost, subscription.unit_wholesale, subscription.unit_retail]
        .into_iter()
        .map(|p| p.0)
        .chain(history.iter().flat_map(|c| [c.unit_cost, c.unit_wholesale, c.unit_retail]).flatten().map(|p| p.0));
    if let Some(price) = prices.into_iter().find(|p| p.abs() > largest_unit) {
        return Some(format!("a unit price of {price} is past the largest ({largest_unit})"));
    }
    let seats = std::iter::once(subscription.quantity)
        .chain(history.iter().flat_map(|c| [c.quantity_before, c.quantity_after]));
    if let Some(quantity) = seats.into_iter().find(|q| q.abs() > MAX_QUANTITY) {
        return Some(format!("{quantity} seats are past the largest quantity ({MAX_QUANTITY})"));
    }
    None
}
