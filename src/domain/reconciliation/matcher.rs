//! Matching an imported statement (operator only): its rows are summed per vendor
//! subscription, charge cycle (the cycle's last day: every row of a cycle — new,
//! cycleCharge, addQuantity, removeQuantity, cancelImmediate, renew — ends on it) and kind
//! of unit; each sum is matched to our subscription by the vendor's id (our vendor
//! reference), else by the customer's tenant id + SKU + a term in force on the first day
//! charged; our charges for the same cycle are summed beside it, and `matching` judges the
//! two. Cycles we charged in the import's period that no statement of the vendor charged are
//! judged too. Rows and charges are read in pages and summed as they come, so memory grows
//! with the number of subscriptions, not of rows. The findings replace the import's earlier
//! ones in one transaction; matching again is refused once a finding was resolved.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate};
use entity::enums::ChargeKind;
use entity::{
    DbDecimal, charge, customer_vendor_account, offer, reconciliation_finding, reconciliation_import,
    reconciliation_line, subscription,
};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::matching::{ChargeFacts, Judgement, OurSide, Tolerances, VendorSide, judge_charged, judge_uncharged};
use super::statement::{UnitKind, format_named};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::write::{Audit, Write};

/// Rows read per page, and findings written per statement.
const PAGE: u64 = 5_000;
const BATCH: usize = 500;

/// The largest tolerance accepted.
fn max_tolerance() -> Decimal {
    Decimal::from(1_000_000)
}

/// Checks tolerances an operator gives.
pub fn check_tolerances(tolerances: Tolerances) -> Result<Tolerances> {
    for (value, field) in [(tolerances.amount, "amountTolerance"), (tolerances.quantity, "quantityTolerance")] {
        if value.is_sign_negative() || value > max_tolerance() || value.scale() > 10 {
            return Err(Error::validation(field, "must be between 0 and 1000000, with at most 10 decimals"));
        }
    }
    Ok(tolerances)
}

/// A subscription of the vendor, as matching needs it.
struct Ours {
    id: i64,
    customer_id: i64,
    reseller_id: i64,
    offer_id: i64,
    vendor_reference: Option<String>,
    term: Option<(NaiveDate, NaiveDate)>,
}

/// What a group of statement rows is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct VendorKey {
    reference: String,
    /// The tenant and SKU, when the row names no subscription.
    tenant: String,
    sku: String,
    last_day: NaiveDate,
    usage: bool,
}

struct VendorGroup {
    side: VendorSide,
    tenant: String,
    sku: String,
}

type OurKey = (i64, NaiveDate, bool);

struct OurGroup {
    side: OurSide,
    first_day: NaiveDate,
    /// Charged by a run of the import's period.
    in_period: bool,
}

fn kind_of(usage: bool) -> UnitKind {
    if usage { UnitKind::Usage } else { UnitKind::Seats }
}

fn kind_name(usage: bool) -> &'static str {
    if usage { "USAGE" } else { "SEATS" }
}

/// Matches import `import_id` with `tolerances` (the import's own when None), replacing its
/// findings. Refused (CONFLICT) when a finding of it was resolved.
pub async fn match_import(
    domain: &Domain,
    actor: &Actor,
    import_id: i64,
    tolerances: Option<Tolerances>,
) -> Result<reconciliation_import::Model> {
    actor.require_operator()?;
    let import =
        reconciliation_import::Entity::find_by_id(import_id).one(&domain.db).await?.ok_or(Error::NotFound("import"))?;
    let tolerances = check_tolerances(
        tolerances.unwrap_or(Tolerances { amount: import.amount_tolerance.0, quantity: import.quantity_tolerance.0 }),
    )?;
    let format = format_named(&import.format).ok_or_else(|| Error::internal(format!("format {}", import.format)))?;
    let subscriptions = load_subscriptions(domain, import.vendor_id).await?;
    let by_reference: HashMap<&str, usize> =
        subscriptions.iter().enumerate().filter_map(|(i, s)| s.vendor_reference.as_deref().map(|r| (r, i))).collect();
    let by_id: HashMap<i64, usize> = subscriptions.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let vendor_groups = load_vendor_groups(domain, import.id).await?;
    let resolver = Resolver::load(domain, import.vendor_id, &subscriptions).await?;
    let (lo, hi) = vendor_groups
        .keys()
        .fold(None, |range: Option<(NaiveDate, NaiveDate)>, k| {
            Some(range.map_or((k.last_day, k.last_day), |(lo, hi)| (lo.min(k.last_day), hi.max(k.last_day))))
        })
        .unwrap_or_default();
    let mut our_groups = load_our_groups(domain, import.vendor_id, &import.period, (lo, hi)).await?;
    let elsewhere = matched_elsewhere(domain, &import).await?;

    let mut findings = Vec::with_capacity(vendor_groups.len());
    for (key, group) in vendor_groups {
        let matched = if key.reference.is_empty() {
            None
        } else {
            by_reference.get(key.reference.as_str()).map(|&i| (i, "matched by the vendor's subscription id".to_owned()))
        }
        .or_else(|| resolver.by_tenant_and_sku(&group, &subscriptions));
        let ours =
            matched.as_ref().and_then(|(i, _)| our_groups.remove(&(subscriptions[*i].id, key.last_day, key.usage)));
        let judgement = judge_charged(
            format,
            &group.side,
            matched.as_ref().map(|(_, how)| how.as_str()),
            ours.as_ref().map(|o| &o.side),
            tolerances,
        );
        let subscription = matched.map(|(i, _)| &subscriptions[i]);
        findings.push(finding(&import, &key, &group, subscription, ours.as_ref(), judgement));
    }
    let mut uncharged: Vec<(OurKey, OurGroup)> =
        our_groups.into_iter().filter(|(key, group)| group.in_period && !elsewhere.contains(key)).collect();
    uncharged.sort_by_key(|(key, _)| *key);
    for ((subscription_id, last_day, usage), group) in uncharged {
        let Some(s) = by_id.get(&subscription_id).map(|&i| &subscriptions[i]) else { continue };
        let Some(judgement) = judge_uncharged(format, kind_of(usage), &group.side, s.vendor_reference.is_some()) else {
            continue;
        };
        findings.push(uncharged_finding(&import, s, (last_day, usage), &group, judgement));
    }
    write_findings(domain, actor, import, tolerances, findings).await
}

async fn load_subscriptions(domain: &Domain, vendor_id: i64) -> Result<Vec<Ours>> {
    type Row = (
        i64,
        i64,
        i64,
        i64,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
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
        ])
        .filter(subscription::Column::VendorId.eq(vendor_id))
        .order_by_asc(subscription::Column::Id)
        .into_tuple()
        .all(&domain.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, customer_id, reseller_id, offer_id, vendor_reference, start, end)| Ours {
            id,
            customer_id,
            reseller_id,
            offer_id,
            vendor_reference: vendor_reference.filter(|r| !r.is_empty()),
            term: start.zip(end).map(|(s, e)| (s.date_naive(), e.date_naive())),
        })
        .collect())
}

/// The customers' tenant ids and the offers' SKUs of a vendor, for rows whose subscription
/// id we do not know.
struct Resolver {
    customers: HashMap<String, Vec<i64>>,
    offers: HashMap<String, i64>,
    by_customer_offer: HashMap<(i64, i64), Vec<usize>>,
}

impl Resolver {
    async fn load(domain: &Domain, vendor_id: i64, subscriptions: &[Ours]) -> Result<Self> {
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
    /// day charged. A statement's SKU is `product:sku:availability`; an offer's SKU may be
    /// the whole of it or its first two parts.
    fn by_tenant_and_sku(&self, group: &VendorGroup, subscriptions: &[Ours]) -> Option<(usize, String)> {
        let short: String = group.sku.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
        let offer = self.offers.get(&group.sku).or_else(|| self.offers.get(&short))?;
        let day = group.side.first_day;
        let mut found = self
            .customers
            .get(&group.tenant.to_ascii_lowercase())?
            .iter()
            .filter_map(|customer| self.by_customer_offer.get(&(*customer, *offer)))
            .flatten()
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
async fn load_vendor_groups(domain: &Domain, import_id: i64) -> Result<HashMap<VendorKey, VendorGroup>> {
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

fn too_large() -> Error {
    Error::validation("file", "its amounts add up past the bounds of the arithmetic")
}

/// Our charges of the vendor for cycles ending between `lo` and `hi`, or billed in `period`,
/// summed per subscription, cycle and kind of unit.
async fn load_our_groups(
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
            let usage = c.kind == ChargeKind::Usage;
            let last_day = c.service_end.date_naive() - Duration::days(1);
            let group = groups.entry((c.subscription_id, last_day, usage)).or_insert_with(|| OurGroup {
                side: OurSide { currency: c.currency.clone(), ..OurSide::default() },
                first_day: c.service_start.date_naive(),
                in_period: false,
            });
            group.in_period |= c.period == period;
            group.first_day = group.first_day.min(c.service_start.date_naive());
            let days = c
                .days_used
                .zip(c.days_in_period)
                .and_then(|(u, o)| Some((u32::try_from(u).ok()?, u32::try_from(o).ok()?)));
            group.side.charges.push(ChargeFacts {
                quantity: c.quantity.0,
                cycle_unit_cost: c.cycle_unit_cost.map_or(c.unit_cost.0, |p| p.0),
                days,
            });
            let side = &mut group.side;
            side.cost = side.cost.checked_add(c.amount_cost.0).ok_or_else(too_large)?;
            side.wholesale = side.wholesale.checked_add(c.amount_wholesale.0).ok_or_else(too_large)?;
            side.retail = side.retail.checked_add(c.amount_retail.0).ok_or_else(too_large)?;
        }
    }
    Ok(groups)
}

/// Cycles a statement of the vendor other than `import` charged: ours there are not missing.
async fn matched_elsewhere(domain: &Domain, import: &reconciliation_import::Model) -> Result<HashSet<OurKey>> {
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
        .into_tuple()
        .all(&domain.db)
        .await?;
    Ok(rows.into_iter().filter_map(|(s, end, kind)| Some((s?, end.date_naive(), kind == "USAGE"))).collect())
}

fn midnight(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn finding(
    import: &reconciliation_import::Model,
    key: &VendorKey,
    group: &VendorGroup,
    subscription: Option<&Ours>,
    ours: Option<&OurGroup>,
    judgement: Judgement,
) -> reconciliation_finding::ActiveModel {
    let side = &group.side;
    let our_side = ours.map(|o| &o.side);
    let group_key = if key.reference.is_empty() {
        format!("t:{}|{}|{}|{}", key.tenant, key.sku, key.last_day, kind_name(key.usage))
    } else {
        format!("v:{}|{}|{}", key.reference, key.last_day, kind_name(key.usage))
    };
    new_finding(import, group_key, judgement, subscription, (side.first_day, key.last_day), key.usage, our_side)
        .with_vendor(key, group)
}

fn uncharged_finding(
    import: &reconciliation_import::Model,
    subscription: &Ours,
    (last_day, usage): (NaiveDate, bool),
    ours: &OurGroup,
    judgement: Judgement,
) -> reconciliation_finding::ActiveModel {
    let group_key = format!("s:{}|{last_day}|{}", subscription.id, kind_name(usage));
    let mut model = new_finding(
        import,
        group_key,
        judgement,
        Some(subscription),
        (ours.first_day, last_day),
        usage,
        Some(&ours.side),
    );
    model.subscription_reference = Set(subscription.vendor_reference.clone().unwrap_or_default());
    model.currency = Set(ours.side.currency.clone());
    model
}

trait WithVendor {
    fn with_vendor(self, key: &VendorKey, group: &VendorGroup) -> Self;
}

impl WithVendor for reconciliation_finding::ActiveModel {
    fn with_vendor(mut self, key: &VendorKey, group: &VendorGroup) -> Self {
        self.subscription_reference = Set(key.reference.clone());
        self.customer_external_id = Set(group.tenant.clone());
        self.sku = Set(group.sku.clone());
        self.vendor_rows = Set(i32::try_from(group.side.rows).unwrap_or(i32::MAX));
        self.currency = Set(group.side.currency.clone());
        self.pricing_currency = Set(group.side.pricing_currency.clone());
        self.exchange_rate = Set(DbDecimal(group.side.rate()));
        self.vendor_amount = Set(DbDecimal(group.side.amount));
        self.vendor_quantity = Set(Some(DbDecimal(group.side.quantity)));
        self
    }
}

fn new_finding(
    import: &reconciliation_import::Model,
    group_key: String,
    judgement: Judgement,
    subscription: Option<&Ours>,
    (first_day, last_day): (NaiveDate, NaiveDate),
    usage: bool,
    ours: Option<&OurSide>,
) -> reconciliation_finding::ActiveModel {
    let zero = DbDecimal(Decimal::ZERO);
    reconciliation_finding::ActiveModel {
        id: NotSet,
        import_id: Set(import.id),
        group_key: Set(group_key),
        category: Set(judgement.category.as_str().to_owned()),
        subscription_id: Set(subscription.map(|s| s.id)),
        customer_id: Set(subscription.map(|s| s.customer_id)),
        reseller_id: Set(subscription.map(|s| s.reseller_id)),
        offer_id: Set(subscription.map(|s| s.offer_id)),
        subscription_reference: Set(String::new()),
        customer_external_id: Set(String::new()),
        sku: Set(String::new()),
        unit_kind: Set(kind_name(usage).to_owned()),
        charge_start: Set(midnight(first_day)),
        charge_end: Set(midnight(last_day)),
        vendor_rows: Set(0),
        currency: Set(String::new()),
        pricing_currency: Set(ours.map(|o| o.currency.clone()).unwrap_or_default()),
        exchange_rate: Set(DbDecimal(Decimal::ONE)),
        vendor_amount: Set(zero),
        expected_amount: Set(judgement.expected.map(DbDecimal)),
        vendor_quantity: Set(None),
        our_quantity: Set(ours.map(|o| DbDecimal(o.charges.iter().map(|c| c.quantity).sum()))),
        billed_currency: Set(ours.map(|o| o.currency.clone())),
        cost_billed: Set(ours.map_or(zero, |o| DbDecimal(o.cost))),
        wholesale_billed: Set(ours.map_or(zero, |o| DbDecimal(o.wholesale))),
        retail_billed: Set(ours.map_or(zero, |o| DbDecimal(o.retail))),
        amount: Set(DbDecimal(judgement.amount)),
        rule: Set(judgement.rule),
        status: Set("OPEN".to_owned()),
        note: Set(None),
        resolved_by_user_id: Set(None),
        resolved_at: Set(None),
        recovery_charge_id: Set(None),
        recovery_customer_charge: Set(false),
    }
}

async fn write_findings(
    domain: &Domain,
    actor: &Actor,
    import: reconciliation_import::Model,
    tolerances: Tolerances,
    findings: Vec<reconciliation_finding::ActiveModel>,
) -> Result<reconciliation_import::Model> {
    let mut w = Write::begin(domain).await?;
    let resolved = reconciliation_finding::Entity::find()
        .filter(reconciliation_finding::Column::ImportId.eq(import.id))
        .filter(reconciliation_finding::Column::Status.ne("OPEN"))
        .count(w.db())
        .await?;
    if resolved > 0 {
        w.rollback().await;
        return Err(Error::conflict(
            "FINDINGS_RESOLVED",
            "findings of this import were resolved: it cannot be matched again",
        ));
    }
    reconciliation_finding::Entity::delete_many()
        .filter(reconciliation_finding::Column::ImportId.eq(import.id))
        .exec(w.db())
        .await?;
    let count = findings.len();
    let mut rest = findings.into_iter().peekable();
    while rest.peek().is_some() {
        let batch: Vec<_> = rest.by_ref().take(BATCH).collect();
        reconciliation_finding::Entity::insert_many(batch).exec(w.db()).await?;
    }
    let mut model: reconciliation_import::ActiveModel = import.into();
    model.amount_tolerance = Set(DbDecimal(tolerances.amount));
    model.quantity_tolerance = Set(DbDecimal(tolerances.quantity));
    model.matched_at = Set(Some(w.now()));
    model.status = Set("MATCHED".to_owned());
    let import = model.update(w.db()).await?;
    let details = serde_json::json!({
        "findings": count,
        "amountTolerance": tolerances.amount.to_string(),
        "quantityTolerance": tolerances.quantity.to_string(),
    });
    let detail = serde_json::json!({"importId": import.id, "vendorId": import.vendor_id, "findings": count});
    w.emit(super::resolution::reconciliation_event("MATCHED", w.now(), detail)).await?;
    w.commit(Audit::action(actor, "matchStatement", "reconciliation_import", import.id, details)).await?;
    Ok(import)
}
