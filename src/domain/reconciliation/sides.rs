//! The two sides matching compares, read a chunk at a time so memory stays bounded whatever
//! the statement's size: the statement's rows in the order of their group — vendor
//! subscription, cycle (its last day), seats or usage — summed a group at a time; the
//! subscriptions a chunk of groups names (by the vendor's id, else by tenant and SKU among
//! the subscriptions the file names no id of). Our charges are `charged`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{DbDecimal, customer_vendor_account, offer, reconciliation_import, reconciliation_line, subscription};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::matching::{OurSide, VendorSide};
use super::statement::UnitKind;
use crate::domain::Domain;
use crate::domain::error::{Error, Result};

/// Rows and charges read per page.
const PAGE: u64 = 5_000;

/// Ids per `IN (…)`: well inside every backend's bind-parameter limit.
const IDS: usize = 1_000;

/// A subscription of the vendor, as matching needs it.
#[derive(Clone, Debug)]
pub(super) struct Ours {
    pub(super) id: i64,
    pub(super) customer_id: i64,
    pub(super) reseller_id: i64,
    pub(super) offer_id: i64,
    pub(super) vendor_reference: Option<String>,
    pub(super) term: Option<(NaiveDate, NaiveDate)>,
    pub(super) currency: String,
}

/// The statement's rows of one vendor subscription, cycle and kind of unit, summed.
pub(super) struct VendorGroup {
    pub(super) reference: String,
    pub(super) tenant: String,
    pub(super) sku: String,
    pub(super) last_day: NaiveDate,
    pub(super) usage: bool,
    pub(super) side: VendorSide,
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

/// The instant a day starts (UTC).
pub(super) use crate::domain::billing::terms::midnight;

/// The billing run that bills the usage of a cycle ending on `last_day`: the one of the month
/// after the month it ends in (usage is billed in arrears).
pub(super) fn usage_run(last_day: NaiveDate) -> crate::domain::billing::terms::Period {
    crate::domain::billing::terms::Period::containing(last_day).next()
}

pub(super) fn too_large() -> Error {
    Error::validation("file", "its amounts add up past the bounds of the arithmetic")
}

type SubscriptionRow = (i64, i64, i64, i64, Option<String>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, String);

fn ours((id, customer_id, reseller_id, offer_id, reference, start, end, currency): SubscriptionRow) -> Ours {
    Ours {
        id,
        customer_id,
        reseller_id,
        offer_id,
        vendor_reference: reference.filter(|r| !r.is_empty()),
        term: start.zip(end).map(|(s, e)| (s.date_naive(), e.date_naive())),
        currency,
    }
}

fn subscriptions_of(vendor_id: i64) -> sea_orm::Select<subscription::Entity> {
    subscription::Entity::find()
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
}

/// The vendor's subscriptions with the given vendor ids.
pub(super) async fn by_references(
    domain: &Domain,
    vendor_id: i64,
    references: &[&str],
) -> Result<HashMap<String, Ours>> {
    let mut found = HashMap::new();
    for chunk in references.chunks(IDS) {
        let rows: Vec<SubscriptionRow> = subscriptions_of(vendor_id)
            .filter(subscription::Column::VendorReference.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&domain.db)
            .await?;
        for row in rows {
            let s = ours(row);
            if let Some(reference) = s.vendor_reference.clone() {
                found.insert(reference, s);
            }
        }
    }
    Ok(found)
}

/// The vendor's subscriptions with the given ids.
pub(super) async fn by_ids(domain: &Domain, vendor_id: i64, ids: &[i64]) -> Result<HashMap<i64, Ours>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(IDS) {
        let rows: Vec<SubscriptionRow> = subscriptions_of(vendor_id)
            .filter(subscription::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&domain.db)
            .await?;
        found.extend(rows.into_iter().map(|row| (row.0, ours(row))));
    }
    Ok(found)
}

/// The vendor's customers by tenant id and offers by SKU, for rows whose subscription id we
/// do not know (small: a vendor's catalog and its customers' accounts).
pub(super) struct Resolver {
    customers: HashMap<String, Vec<i64>>,
    offers: HashMap<String, i64>,
}

impl Resolver {
    pub(super) async fn load(domain: &Domain, vendor_id: i64) -> Result<Self> {
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
        Ok(Self { customers, offers: offers.into_iter().map(|(id, sku)| (sku, id)).collect() })
    }

    /// The customers and offer a group's tenant and SKU name. A statement's SKU is
    /// `product:sku:availability`; an offer's SKU may be the whole of it or its first two parts.
    fn named(&self, group: &VendorGroup) -> Option<(&[i64], i64)> {
        let short: String = group.sku.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
        let offer = self.offers.get(&group.sku).or_else(|| self.offers.get(&short))?;
        Some((self.customers.get(&group.tenant.to_ascii_lowercase())?, *offer))
    }

    /// For each of `groups` (their index) that names a tenant and SKU we know: the one
    /// subscription of the tenant to the SKU whose term holds the first day charged, among
    /// those the statement names by no id of theirs (one it names is its own rows': a second
    /// subscription of the same SKU, bought elsewhere, is not ours).
    pub(super) async fn by_tenant_and_sku(
        &self,
        domain: &Domain,
        import: &reconciliation_import::Model,
        groups: &[(usize, &VendorGroup)],
    ) -> Result<HashMap<usize, (Ours, String)>> {
        let wanted: Vec<(usize, &VendorGroup, &[i64], i64)> =
            groups.iter().filter_map(|(i, g)| self.named(g).map(|(c, o)| (*i, *g, c, o))).collect();
        let customers: Vec<i64> =
            wanted.iter().flat_map(|(_, _, c, _)| c.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
        let offers: HashSet<i64> = wanted.iter().map(|(_, _, _, o)| *o).collect();
        // By id: a subscription is one candidate however its customer was asked for.
        let mut candidates: BTreeMap<i64, Ours> = BTreeMap::new();
        for chunk in customers.chunks(IDS) {
            let rows: Vec<SubscriptionRow> = subscriptions_of(import.vendor_id)
                .filter(subscription::Column::CustomerId.is_in(chunk.iter().copied()))
                .filter(subscription::Column::OfferId.is_in(offers.iter().copied()))
                .into_tuple()
                .all(&domain.db)
                .await?;
            candidates.extend(rows.into_iter().map(|row| (row.0, ours(row))));
        }
        // Candidates the file names by their own id are theirs, not these rows'.
        let references: Vec<&str> = candidates.values().filter_map(|s| s.vendor_reference.as_deref()).collect();
        let mut named: HashSet<String> = HashSet::new();
        for chunk in references.chunks(IDS) {
            let found: Vec<String> = reconciliation_line::Entity::find()
                .select_only()
                .column(reconciliation_line::Column::SubscriptionReference)
                .filter(reconciliation_line::Column::ImportId.eq(import.id))
                .filter(reconciliation_line::Column::SubscriptionReference.is_in(chunk.iter().copied()))
                .distinct()
                .into_tuple()
                .all(&domain.db)
                .await?;
            named.extend(found);
        }
        let mut matched = HashMap::new();
        for (index, group, customers, offer) in wanted {
            let day = group.side.first_day;
            let mut found = candidates.values().filter(|s| {
                customers.contains(&s.customer_id)
                    && s.offer_id == offer
                    && s.vendor_reference.as_ref().is_none_or(|r| !named.contains(r))
                    && s.term.is_some_and(|(start, end)| start <= day && day < end)
            });
            let (Some(first), None) = (found.next(), found.next()) else { continue };
            let how = format!("matched by tenant {} and SKU {} in force on {day}", group.tenant, group.sku);
            matched.insert(index, (first.clone(), how));
        }
        Ok(matched)
    }
}

/// A statement row, as matching reads it.
#[derive(sea_orm::FromQueryResult)]
struct LineRow {
    id: i64,
    subscription_reference: String,
    customer_external_id: String,
    sku: String,
    charge_start: Option<DateTime<Utc>>,
    charge_end: Option<DateTime<Utc>>,
    unit_kind: String,
    quantity: DbDecimal,
    unit_price: DbDecimal,
    exchange_rate: DbDecimal,
    subtotal: DbDecimal,
    currency: String,
    pricing_currency: String,
}

/// The import's rows in the order of their group, summed a group at a time.
pub(super) struct VendorGroups {
    import_id: i64,
    /// Where the next page starts: after this (reference, cycle end, kind, id).
    after: Option<(String, DateTime<Utc>, String, i64)>,
    open: Option<VendorGroup>,
    done: bool,
}

impl VendorGroups {
    pub(super) fn new(import_id: i64) -> Self {
        Self { import_id, after: None, open: None, done: false }
    }

    /// The next `at_least` groups (fewer at the end; none when every row was read).
    pub(super) async fn next_chunk(&mut self, domain: &Domain, at_least: usize) -> Result<Vec<VendorGroup>> {
        let mut out = Vec::new();
        while out.len() < at_least && !self.done {
            let mut find = reconciliation_line::Entity::find()
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
                .filter(reconciliation_line::Column::ImportId.eq(self.import_id))
                .filter(reconciliation_line::Column::ChargeStart.is_not_null())
                .filter(reconciliation_line::Column::ChargeEnd.is_not_null());
            if let Some((reference, end, kind, id)) = self.after.clone() {
                // A row-value comparison after `import_id = …`: an index range scan on (import,
                // reference, end, kind, id) that stops at the page's end.
                find = find.filter(
                    Expr::tuple([
                        reconciliation_line::Column::SubscriptionReference.into_expr(),
                        reconciliation_line::Column::ChargeEnd.into_expr(),
                        reconciliation_line::Column::UnitKind.into_expr(),
                        reconciliation_line::Column::Id.into_expr(),
                    ])
                    .gt_after(Expr::tuple([
                        Expr::val(reference),
                        Expr::val(end),
                        Expr::val(kind),
                        Expr::val(id),
                    ])),
                );
            }
            let rows: Vec<LineRow> = find
                .order_by_asc(reconciliation_line::Column::SubscriptionReference)
                .order_by_asc(reconciliation_line::Column::ChargeEnd)
                .order_by_asc(reconciliation_line::Column::UnitKind)
                .order_by_asc(reconciliation_line::Column::Id)
                .limit(PAGE)
                .into_model::<LineRow>()
                .all(&domain.db)
                .await?;
            if (rows.len() as u64) < PAGE {
                self.done = true;
            }
            for row in rows {
                let (Some(start), Some(end)) = (row.charge_start, row.charge_end) else { continue };
                self.after = Some((row.subscription_reference.clone(), end, row.unit_kind.clone(), row.id));
                let (first_day, last_day) = (start.date_naive(), end.date_naive());
                let usage = row.unit_kind == "USAGE";
                let same = self.open.as_ref().is_some_and(|g| {
                    g.reference == row.subscription_reference && g.last_day == last_day && g.usage == usage
                });
                if !same && let Some(finished) = self.open.take() {
                    out.push(finished);
                }
                let group = self.open.get_or_insert_with(|| VendorGroup {
                    reference: row.subscription_reference.clone(),
                    tenant: row.customer_external_id.clone(),
                    sku: row.sku.clone(),
                    last_day,
                    usage,
                    side: VendorSide {
                        rows: 0,
                        unit_kind: kind_of(usage),
                        amount: Decimal::ZERO,
                        quantity: Decimal::ZERO,
                        seat_days: Decimal::ZERO,
                        unit_prices: Default::default(),
                        currency: row.currency.clone(),
                        pricing_currency: row.pricing_currency.clone(),
                        rates: Default::default(),
                        mixed_currencies: false,
                        first_day,
                        last_day,
                    },
                });
                add_row(&mut group.side, &row, first_day, last_day)?;
            }
        }
        if self.done
            && let Some(last) = self.open.take()
        {
            out.push(last);
        }
        Ok(out)
    }
}

/// `a > b` for row values (the comparison lives on sea-query's `ExprTrait`, whose `min`
/// and `max` would shadow `Ord`'s everywhere else in this file).
trait RowValue {
    fn gt_after(self, other: Expr) -> Expr;
}

impl RowValue for Expr {
    fn gt_after(self, other: Expr) -> Expr {
        sea_orm::sea_query::ExprTrait::gt(self, other)
    }
}

fn add_row(side: &mut VendorSide, row: &LineRow, first_day: NaiveDate, last_day: NaiveDate) -> Result<()> {
    // A credit's quantity counts negative: by its subtotal's sign, or by its own when the
    // subtotal truncated to 0.00.
    let signed = if row.subtotal.0.is_zero() {
        row.quantity.0
    } else if row.subtotal.0.is_sign_negative() {
        -row.quantity.0.abs()
    } else {
        row.quantity.0.abs()
    };
    side.mixed_currencies |= row.currency != side.currency || row.pricing_currency != side.pricing_currency;
    let days = Decimal::from((last_day - first_day).num_days() + 1);
    side.rows += 1;
    side.amount = side.amount.checked_add(row.subtotal.0).ok_or_else(too_large)?;
    side.quantity = side.quantity.checked_add(signed).ok_or_else(too_large)?;
    let days_charged = signed.checked_mul(days).ok_or_else(too_large)?;
    side.seat_days = side.seat_days.checked_add(days_charged).ok_or_else(too_large)?;
    side.unit_prices.insert(row.unit_price.0.normalize());
    side.rates.insert(row.exchange_rate.0.normalize());
    side.first_day = side.first_day.min(first_day);
    Ok(())
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn row(quantity: Decimal, subtotal: Decimal, currency: &str) -> LineRow {
        LineRow {
            id: 1,
            subscription_reference: "s".into(),
            customer_external_id: "t".into(),
            sku: "p:s:a".into(),
            charge_start: None,
            charge_end: None,
            unit_kind: "SEATS".into(),
            quantity: DbDecimal(quantity),
            unit_price: DbDecimal(dec!(4)),
            exchange_rate: DbDecimal(Decimal::ONE),
            subtotal: DbDecimal(subtotal),
            currency: currency.into(),
            pricing_currency: "USD".into(),
        }
    }

    fn side() -> VendorSide {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        VendorSide {
            rows: 0,
            unit_kind: UnitKind::Seats,
            amount: Decimal::ZERO,
            quantity: Decimal::ZERO,
            seat_days: Decimal::ZERO,
            unit_prices: Default::default(),
            currency: "USD".into(),
            pricing_currency: "USD".into(),
            rates: Default::default(),
            mixed_currencies: false,
            first_day: day,
            last_day: day,
        }
    }

    #[test]
    fn a_credit_counts_its_seats_negative_even_when_its_subtotal_truncates_to_nothing() {
        let mut s = side();
        let day = s.first_day;
        assert!(add_row(&mut s, &row(dec!(3), dec!(12), "USD"), day, day).is_ok());
        assert!(add_row(&mut s, &row(dec!(2), dec!(-8), "USD"), day, day).is_ok());
        assert!(add_row(&mut s, &row(dec!(-1), dec!(0.00), "USD"), day, day).is_ok());
        assert_eq!((s.quantity, s.amount, s.rows), (Decimal::ZERO, dec!(4), 3));
        assert!(!s.mixed_currencies);
        assert!(add_row(&mut s, &row(dec!(1), dec!(4), "EUR"), day, day).is_ok());
        assert!(s.mixed_currencies, "a row in another currency is not summed silently");
    }
}
