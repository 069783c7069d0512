//! The two sides matching compares, read and summed: the statement's rows per vendor
//! subscription, cycle (its last day) and kind of unit; our charges per subscription, cycle
//! and kind of unit; the vendor's subscriptions, and how a row that names no subscription we
//! know is matched by tenant and SKU. Read in pages and summed as they come, so memory grows
//! with the number of subscriptions, not of rows.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate};
use entity::enums::ChargeKind;
use entity::{
    DbDecimal, charge, customer_vendor_account, offer, reconciliation_finding, reconciliation_import,
    reconciliation_line, subscription,
};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::matching::{ChargeFacts, OurSide, VendorSide};
use super::statement::UnitKind;
use crate::domain::Domain;
use crate::domain::error::{Error, Result};

/// Rows and charges read per page.
const PAGE: u64 = 5_000;

/// A subscription of the vendor, as matching needs it.
pub(super) struct Ours {
    pub(super) id: i64,
    pub(super) customer_id: i64,
    pub(super) reseller_id: i64,
    pub(super) offer_id: i64,
    pub(super) vendor_reference: Option<String>,
    pub(super) term: Option<(NaiveDate, NaiveDate)>,
    pub(super) currency: String,
}

/// What a group of statement rows is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct VendorKey {
    pub(super) reference: String,
    /// The tenant and SKU, when the row names no subscription.
    pub(super) tenant: String,
    pub(super) sku: String,
    pub(super) last_day: NaiveDate,
    pub(super) usage: bool,
}

pub(super) struct VendorGroup {
    pub(super) side: VendorSide,
    pub(super) tenant: String,
    pub(super) sku: String,
}

pub(super) type OurKey = (i64, NaiveDate, bool);

pub(super) struct OurGroup {
    pub(super) side: OurSide,
    pub(super) first_day: NaiveDate,
    /// Charged by a run of the import's period.
    pub(super) in_period: bool,
}

pub(super) fn kind_of(usage: bool) -> UnitKind {
    if usage { UnitKind::Usage } else { UnitKind::Seats }
}

pub(super) fn kind_name(usage: bool) -> &'static str {
    if usage { "USAGE" } else { "SEATS" }
}

pub(super) async fn load_subscriptions(domain: &Domain, vendor_id: i64) -> Result<Vec<Ours>> {
    type Row = (
        i64,
        i64,
        i64,
        i64,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
        String,
    );
    let rows: Vec<Row> = subscription::Entity::find()
        .select_only()
        .columns([
            subscription::Column::Id,
            subscription::Column::CustomerId,
            subscription::Column::ResellerId,
            subscription::Column::OfferId,
            subscription::Column::VendorReference,
            subscription::Column::TermStart,
            subscription::Column::TermEnd,
            subscription::Column::Currency,
        ])
        .filter(subscription::Column::VendorId.eq(vendor_id))
        .order_by_asc(subscription::Column::Id)
        .into_tuple()
        .all(&domain.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, customer_id, reseller_id, offer_id, vendor_reference, start, end, currency)| Ours {
            id,
            customer_id,
            reseller_id,
            offer_id,
            vendor_reference: vendor_reference.filter(|r| !r.is_empty()),
            term: start.zip(end).map(|(s, e)| (s.date_naive(), e.date_naive())),
            currency,
        })
        .collect())
}

/// The customers' tenant ids and the offers' SKUs of a vendor, for rows whose subscription
/// id we do not know.
pub(super) struct Resolver {
    customers: HashMap<String, Vec<i64>>,
    offers: HashMap<String, i64>,
    by_customer_offer: HashMap<(i64, i64), Vec<usize>>,
}

impl Resolver {
    pub(super) async fn load(domain: &Domain, vendor_id: i64, subscriptions: &[Ours]) -> Result<Self> {
        let accounts: Vec<(String, i64)> = customer_vendor_account::Entity::find()
            .select_only()
            .columns([customer_vendor_account::Column::ExternalId, customer_vendor_account::Column::CustomerId])
            .filter(customer_vendor_account::Column::VendorId.eq(vendor_id))
            .into_tuple()
            .all(&domain.db)
            .await?;
        let mut customers: HashMap<String, Vec<i64>> = HashMap::new();
        for (tenant, customer) in accounts {
            customers.entry(tenant.to_ascii_lowercase()).or_default().push(customer);
        }
        let offers: Vec<(i64, String)> = offer::Entity::find()
            .select_only()
            .columns([offer::Column::Id, offer::Column::Sku])
            .filter(offer::Column::VendorId.eq(vendor_id))
            .into_tuple()
            .all(&domain.db)
            .await?;
        let mut by_customer_offer: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, s) in subscriptions.iter().enumerate() {
            by_customer_offer.entry((s.customer_id, s.offer_id)).or_default().push(i);
        }
        Ok(Self { customers, offers: offers.into_iter().map(|(id, sku)| (sku, id)).collect(), by_customer_offer })
    }

    /// The one subscription of the row's tenant to the row's SKU whose term holds the first
    /// day charged, among those the statement names by no id of theirs (one it names is its
    /// own row's: a second subscription of the same SKU, bought elsewhere, is not ours). A
    /// statement's SKU is `product:sku:availability`; an offer's SKU may be the whole of it or
    /// its first two parts.
    pub(super) fn by_tenant_and_sku(
        &self,
        group: &VendorGroup,
        subscriptions: &[Ours],
        named: &HashSet<&str>,
    ) -> Option<(usize, String)> {
        let short: String = group.sku.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
        let offer = self.offers.get(&group.sku).or_else(|| self.offers.get(&short))?;
        let day = group.side.first_day;
        let mut found = self
            .customers
            .get(&group.tenant.to_ascii_lowercase())?
            .iter()
            .filter_map(|customer| self.by_customer_offer.get(&(*customer, *offer)))
            .flatten()
            .filter(|&&i| subscriptions[i].vendor_reference.as_deref().is_none_or(|r| !named.contains(r)))
            .filter(|&&i| subscriptions[i].term.is_some_and(|(start, end)| start <= day && day < end));
        let first = *found.next()?;
        // Two in force: the row cannot say which.
        if found.next().is_some() {
            return None;
        }
        Some((first, format!("matched by tenant {} and SKU {} in force on {day}", group.tenant, group.sku)))
    }
}

/// A statement row, as matching reads it.
#[derive(sea_orm::FromQueryResult)]
struct LineRow {
    id: i64,
    subscription_reference: String,
    customer_external_id: String,
    sku: String,
    charge_start: Option<chrono::DateTime<chrono::Utc>>,
    charge_end: Option<chrono::DateTime<chrono::Utc>>,
    unit_kind: String,
    quantity: DbDecimal,
    unit_price: DbDecimal,
    exchange_rate: DbDecimal,
    subtotal: DbDecimal,
    currency: String,
    pricing_currency: String,
}

/// The import's rows, summed per group, read a page at a time.
pub(super) async fn load_vendor_groups(domain: &Domain, import_id: i64) -> Result<HashMap<VendorKey, VendorGroup>> {
    let mut groups: HashMap<VendorKey, VendorGroup> = HashMap::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<LineRow> = reconciliation_line::Entity::find()
            .select_only()
            .columns([
                reconciliation_line::Column::Id,
                reconciliation_line::Column::SubscriptionReference,
                reconciliation_line::Column::CustomerExternalId,
                reconciliation_line::Column::Sku,
                reconciliation_line::Column::ChargeStart,
                reconciliation_line::Column::ChargeEnd,
                reconciliation_line::Column::UnitKind,
                reconciliation_line::Column::Quantity,
                reconciliation_line::Column::UnitPrice,
                reconciliation_line::Column::ExchangeRate,
                reconciliation_line::Column::Subtotal,
                reconciliation_line::Column::Currency,
                reconciliation_line::Column::PricingCurrency,
            ])
            .filter(reconciliation_line::Column::ImportId.eq(import_id))
            .filter(reconciliation_line::Column::Id.gt(after))
            .order_by_asc(reconciliation_line::Column::Id)
            .limit(PAGE)
            .into_model::<LineRow>()
            .all(&domain.db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for LineRow {
            subscription_reference: reference,
            customer_external_id: tenant,
            sku,
            charge_start: start,
            charge_end: end,
            unit_kind: kind,
            quantity,
            unit_price: price,
            exchange_rate: rate,
            subtotal,
            currency,
            pricing_currency: pricing,
            ..
        } in rows
        {
            let (Some(start), Some(end)) = (start, end) else { continue };
            let (first_day, last_day) = (start.date_naive(), end.date_naive());
            let usage = kind == "USAGE";
            let named = !reference.is_empty();
            let key = VendorKey {
                reference: reference.clone(),
                tenant: if named { String::new() } else { tenant.clone() },
                sku: if named { String::new() } else { sku.clone() },
                last_day,
                usage,
            };
            let signed = if subtotal.0.is_sign_negative() { -quantity.0.abs() } else { quantity.0.abs() };
            let days = Decimal::from((last_day - first_day).num_days() + 1);
            let group = groups.entry(key).or_insert_with(|| VendorGroup {
                side: VendorSide {
                    rows: 0,
                    unit_kind: kind_of(usage),
                    amount: Decimal::ZERO,
                    quantity: Decimal::ZERO,
                    seat_days: Decimal::ZERO,
                    unit_prices: Default::default(),
                    currency: currency.clone(),
                    pricing_currency: pricing.clone(),
                    rates: Default::default(),
                    first_day,
                    last_day,
                },
                tenant,
                sku,
            });
            let side = &mut group.side;
            side.rows += 1;
            side.amount = side.amount.checked_add(subtotal.0).ok_or_else(too_large)?;
            side.quantity = side.quantity.checked_add(signed).ok_or_else(too_large)?;
            let days_charged = signed.checked_mul(days).ok_or_else(too_large)?;
            side.seat_days = side.seat_days.checked_add(days_charged).ok_or_else(too_large)?;
            side.unit_prices.insert(price.0.normalize());
            side.rates.insert(rate.0.normalize());
            side.first_day = side.first_day.min(first_day);
        }
    }
    Ok(groups)
}

pub(super) fn too_large() -> Error {
    Error::validation("file", "its amounts add up past the bounds of the arithmetic")
}

/// Our charges of the vendor for cycles ending between `lo` and `hi`, or billed in `period`,
/// summed per subscription, cycle and kind of unit.
pub(super) async fn load_our_groups(
    domain: &Domain,
    vendor_id: i64,
    period: &str,
    (lo, hi): (NaiveDate, NaiveDate),
) -> Result<HashMap<OurKey, OurGroup>> {
    let scope = Condition::any().add(charge::Column::Period.eq(period)).add(
        Condition::all()
            .add(charge::Column::ServiceEnd.gte(midnight(lo + Duration::days(1))))
            .add(charge::Column::ServiceEnd.lte(midnight(hi + Duration::days(1)))),
    );
    let mut groups: HashMap<OurKey, OurGroup> = HashMap::new();
    let mut after = 0i64;
    loop {
        let page: Vec<charge::Model> = charge::Entity::find()
            .filter(charge::Column::VendorId.eq(vendor_id))
            .filter(scope.clone())
            .filter(charge::Column::Id.gt(after))
            .order_by_asc(charge::Column::Id)
            .limit(PAGE)
            .all(&domain.db)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for c in page {
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
    let usage = if recovery {
        line.key.ends_with(":USAGE")
    } else {
        line.kind == ChargeKind::Usage || line.key.starts_with("usage:")
    };
    let last_day = line.service.1 - Duration::days(1);
    let group = groups.entry((subscription_id, last_day, usage)).or_insert_with(|| OurGroup {
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

/// Cycles a statement of the vendor other than `import` charged: ours there are not missing.
pub(super) async fn matched_elsewhere(
    domain: &Domain,
    import: &reconciliation_import::Model,
    (lo, hi): (NaiveDate, NaiveDate),
) -> Result<HashSet<OurKey>> {
    let others: Vec<i64> = reconciliation_import::Entity::find()
        .select_only()
        .column(reconciliation_import::Column::Id)
        .filter(reconciliation_import::Column::VendorId.eq(import.vendor_id))
        .filter(reconciliation_import::Column::Id.ne(import.id))
        .into_tuple()
        .all(&domain.db)
        .await?;
    if others.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<(Option<i64>, chrono::DateTime<chrono::Utc>, String)> = reconciliation_finding::Entity::find()
        .select_only()
        .columns([
            reconciliation_finding::Column::SubscriptionId,
            reconciliation_finding::Column::ChargeEnd,
            reconciliation_finding::Column::UnitKind,
        ])
        .filter(reconciliation_finding::Column::ImportId.is_in(others))
        .filter(reconciliation_finding::Column::VendorRows.gt(0))
        .filter(reconciliation_finding::Column::ChargeEnd.gte(midnight(lo)))
        .filter(reconciliation_finding::Column::ChargeEnd.lte(midnight(hi)))
        .into_tuple()
        .all(&domain.db)
        .await?;
    Ok(rows.into_iter().filter_map(|(s, end, kind)| Some((s?, end.date_naive(), kind == "USAGE"))).collect())
}

/// The instant a day starts (UTC).
pub(super) fn midnight(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}
