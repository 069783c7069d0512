//! What reconciliation found, for the operator: per import (or every import of a period),
//! totals per category and per vendor, reseller and customer, with the leakage found and
//! recovered; the findings themselves, filtered and paged (and as CSV); the statement rows
//! behind a finding; and the margin of a period from the vendors' actual charges
//! (retail − wholesale − what the vendor charged). Amounts are summed exactly, here rather
//! than in SQL (SQLite keeps money as text), a row per currency.

use std::collections::{BTreeMap, HashMap};

use entity::{DbDecimal, reconciliation_finding, reconciliation_import, reconciliation_line};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::matching::Category;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::billing::margins::{MarginGroup, MarginRow, names};
use crate::domain::error::{Error, Result};
use crate::domain::money::{Currency, round_to_minor_units};
use crate::domain::pagination::{Page, PageRequest, fetch_page};

/// Findings read per page while summing.
const PAGE: u64 = 5_000;

/// Which findings a report or a list covers.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    /// One import; or every import of `period`.
    pub import_id: Option<i64>,
    pub period: Option<String>,
    pub category: Option<Category>,
    /// OPEN, EXPLAINED or RECOVERED.
    pub status: Option<String>,
    pub reseller_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub subscription_id: Option<i64>,
}

/// One category's findings in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryTotal {
    pub category: Category,
    pub currency: String,
    pub findings: u64,
    pub amount: Decimal,
}

/// A vendor's, reseller's or customer's findings in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyTotal {
    /// None for findings that are no one's (a subscription we do not know).
    pub id: Option<i64>,
    pub name: String,
    pub currency: String,
    pub findings: u64,
    /// Findings that are not MATCHED.
    pub flagged: u64,
    /// What the vendor charged.
    pub vendor_amount: Decimal,
    /// UNBILLED and UNDERBILLED amounts.
    pub leakage: Decimal,
    /// Leakage recovered.
    pub recovered: Decimal,
}

/// A report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub categories: Vec<CategoryTotal>,
    pub vendors: Vec<PartyTotal>,
    pub resellers: Vec<PartyTotal>,
    pub customers: Vec<PartyTotal>,
    /// Per currency (only those with some).
    pub leakage: BTreeMap<String, Decimal>,
    pub recovered: BTreeMap<String, Decimal>,
}

/// The imports a filter covers (checked: an import that is none is NOT_FOUND).
async fn imports(domain: &Domain, filter: &FindingFilter) -> Result<Vec<reconciliation_import::Model>> {
    match (filter.import_id, &filter.period) {
        (Some(id), _) => Ok(vec![
            reconciliation_import::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("import"))?,
        ]),
        (None, Some(period)) => {
            let period = crate::domain::billing::terms::Period::parse(period)?.label();
            Ok(reconciliation_import::Entity::find()
                .filter(reconciliation_import::Column::Period.eq(period))
                .order_by_asc(reconciliation_import::Column::Id)
                .all(&domain.db)
                .await?)
        }
        (None, None) => Err(Error::validation("importId", "give an import or a period")),
    }
}

fn select(filter: &FindingFilter, import_ids: Vec<i64>) -> Select<reconciliation_finding::Entity> {
    let mut find =
        reconciliation_finding::Entity::find().filter(reconciliation_finding::Column::ImportId.is_in(import_ids));
    if let Some(category) = filter.category {
        find = find.filter(reconciliation_finding::Column::Category.eq(category.as_str()));
    }
    if let Some(status) = &filter.status {
        find = find.filter(reconciliation_finding::Column::Status.eq(status.as_str()));
    }
    if let Some(id) = filter.reseller_id {
        find = find.filter(reconciliation_finding::Column::ResellerId.eq(id));
    }
    if let Some(id) = filter.customer_id {
        find = find.filter(reconciliation_finding::Column::CustomerId.eq(id));
    }
    if let Some(id) = filter.subscription_id {
        find = find.filter(reconciliation_finding::Column::SubscriptionId.eq(id));
    }
    find
}

/// A page of the findings `filter` covers (operator only), in id order.
pub async fn findings(
    domain: &Domain,
    actor: &Actor,
    filter: &FindingFilter,
    page: PageRequest,
) -> Result<Page<reconciliation_finding::Model>> {
    actor.require_operator()?;
    let ids = imports(domain, filter).await?.into_iter().map(|i| i.id).collect();
    fetch_page(&domain.db, select(filter, ids), reconciliation_finding::Column::Id, page).await
}

/// The findings `filter` covers after id `after`, at most `limit`, in id order (operator
/// only): an export reads them a page at a time.
pub async fn findings_after(
    domain: &Domain,
    actor: &Actor,
    filter: &FindingFilter,
    after: i64,
    limit: u64,
) -> Result<Vec<reconciliation_finding::Model>> {
    actor.require_operator()?;
    actor.require_scope(crate::domain::scopes::Scope::ReconciliationWrite, "reconciliation findings")?;
    let ids: Vec<i64> = imports(domain, filter).await?.into_iter().map(|i| i.id).collect();
    Ok(select(filter, ids)
        .filter(reconciliation_finding::Column::Id.gt(after))
        .order_by_asc(reconciliation_finding::Column::Id)
        .limit(limit)
        .all(&domain.db)
        .await?)
}

/// One finding (operator only).
pub async fn finding(domain: &Domain, actor: &Actor, id: i64) -> Result<reconciliation_finding::Model> {
    actor.require_operator()?;
    reconciliation_finding::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("finding"))
}

/// The statement rows a finding sums (none for a cycle only we charged), in file order.
pub async fn finding_rows(
    domain: &Domain,
    actor: &Actor,
    finding: &reconciliation_finding::Model,
) -> Result<Vec<reconciliation_line::Model>> {
    actor.require_operator()?;
    if finding.vendor_rows == 0 {
        return Ok(Vec::new());
    }
    let mut find = reconciliation_line::Entity::find()
        .filter(reconciliation_line::Column::ImportId.eq(finding.import_id))
        .filter(reconciliation_line::Column::SubscriptionReference.eq(finding.subscription_reference.as_str()))
        .filter(reconciliation_line::Column::ChargeEnd.eq(finding.charge_end))
        .filter(reconciliation_line::Column::UnitKind.eq(finding.unit_kind.as_str()));
    if finding.subscription_reference.is_empty() {
        find = find
            .filter(reconciliation_line::Column::CustomerExternalId.eq(finding.customer_external_id.as_str()))
            .filter(reconciliation_line::Column::Sku.eq(finding.sku.as_str()));
    }
    Ok(find.order_by_asc(reconciliation_line::Column::RowNumber).limit(10_000).all(&domain.db).await?)
}

/// A finding as a report sums it.
#[derive(sea_orm::FromQueryResult)]
struct Summed {
    id: i64,
    import_id: i64,
    category: String,
    status: String,
    reseller_id: Option<i64>,
    customer_id: Option<i64>,
    offer_id: Option<i64>,
    currency: String,
    pricing_currency: String,
    exchange_rate: DbDecimal,
    vendor_amount: DbDecimal,
    amount: DbDecimal,
    billed_currency: Option<String>,
    wholesale_billed: DbDecimal,
    retail_billed: DbDecimal,
}

async fn each_summed(
    domain: &Domain,
    filter: &FindingFilter,
    ids: Vec<i64>,
    mut each: impl FnMut(Summed) -> Result<()>,
) -> Result<()> {
    let mut after = 0;
    loop {
        let page: Vec<Summed> = select(filter, ids.clone())
            .select_only()
            .columns([
                reconciliation_finding::Column::Id,
                reconciliation_finding::Column::ImportId,
                reconciliation_finding::Column::Category,
                reconciliation_finding::Column::Status,
                reconciliation_finding::Column::ResellerId,
                reconciliation_finding::Column::CustomerId,
                reconciliation_finding::Column::OfferId,
                reconciliation_finding::Column::Currency,
                reconciliation_finding::Column::PricingCurrency,
                reconciliation_finding::Column::ExchangeRate,
                reconciliation_finding::Column::VendorAmount,
                reconciliation_finding::Column::Amount,
                reconciliation_finding::Column::BilledCurrency,
                reconciliation_finding::Column::WholesaleBilled,
                reconciliation_finding::Column::RetailBilled,
            ])
            .filter(reconciliation_finding::Column::Id.gt(after))
            .order_by_asc(reconciliation_finding::Column::Id)
            .limit(PAGE)
            .into_model::<Summed>()
            .all(&domain.db)
            .await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.id;
        for row in page {
            each(row)?;
        }
    }
}

fn add(sum: &mut Decimal, value: Decimal) -> Result<()> {
    *sum = sum.checked_add(value).ok_or_else(|| Error::validation("amount", "the totals pass the largest amount"))?;
    Ok(())
}

/// The report of the findings `filter` covers (operator only).
pub async fn report(domain: &Domain, actor: &Actor, filter: &FindingFilter) -> Result<Report> {
    actor.require_operator()?;
    let imports = imports(domain, filter).await?;
    let vendor_of: HashMap<i64, i64> = imports.iter().map(|i| (i.id, i.vendor_id)).collect();
    let ids = imports.iter().map(|i| i.id).collect();
    let mut categories: BTreeMap<(Category, String), CategoryTotal> = BTreeMap::new();
    let mut parties: [BTreeMap<(Option<i64>, String), PartyTotal>; 3] = Default::default();
    let mut report = Report::default();
    each_summed(domain, filter, ids, |f| {
        let Some(category) = Category::parse(&f.category) else { return Ok(()) };
        let total = categories.entry((category, f.currency.clone())).or_insert_with(|| CategoryTotal {
            category,
            currency: f.currency.clone(),
            findings: 0,
            amount: Decimal::ZERO,
        });
        total.findings += 1;
        add(&mut total.amount, f.amount.0)?;
        let leakage = if category.is_leakage() { f.amount.0 } else { Decimal::ZERO };
        let recovered = if f.status == "RECOVERED" { leakage } else { Decimal::ZERO };
        if !leakage.is_zero() {
            add(report.leakage.entry(f.currency.clone()).or_default(), leakage)?;
        }
        if !recovered.is_zero() {
            add(report.recovered.entry(f.currency.clone()).or_default(), recovered)?;
        }
        let owners = [vendor_of.get(&f.import_id).copied(), f.reseller_id, f.customer_id];
        for (groups, id) in parties.iter_mut().zip(owners) {
            let party = groups.entry((id, f.currency.clone())).or_insert_with(|| PartyTotal {
                id,
                name: String::new(),
                currency: f.currency.clone(),
                findings: 0,
                flagged: 0,
                vendor_amount: Decimal::ZERO,
                leakage: Decimal::ZERO,
                recovered: Decimal::ZERO,
            });
            party.findings += 1;
            party.flagged += u64::from(category != Category::Matched);
            add(&mut party.vendor_amount, f.vendor_amount.0)?;
            add(&mut party.leakage, leakage)?;
            add(&mut party.recovered, recovered)?;
        }
        Ok(())
    })
    .await?;
    report.categories = categories.into_values().collect();
    let [vendors, resellers, customers] = parties;
    report.vendors = named(domain, MarginGroup::Vendor, vendors).await?;
    report.resellers = named(domain, MarginGroup::Reseller, resellers).await?;
    report.customers = named(domain, MarginGroup::Customer, customers).await?;
    Ok(report)
}

async fn named(
    domain: &Domain,
    by: MarginGroup,
    groups: BTreeMap<(Option<i64>, String), PartyTotal>,
) -> Result<Vec<PartyTotal>> {
    let ids: Vec<i64> = groups.keys().filter_map(|(id, _)| *id).collect();
    let names = names(domain, by, ids).await?;
    let mut rows: Vec<PartyTotal> = groups
        .into_values()
        .map(|mut row| {
            row.name = row.id.and_then(|id| names.get(&id).cloned()).unwrap_or_default();
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, a.id, &a.currency).cmp(&(&b.name, b.id, &b.currency)));
    Ok(rows)
}

/// The margin of `period` from the vendors' actual charges (operator only): per group and
/// currency of the statements, what the vendors charged (`cost`) and what was billed at
/// wholesale and retail for the same cycles (converted at the statement's rate when billed
/// in the currency the vendor priced in). A cycle only we charged has a vendor cost of 0;
/// a charge for a subscription we do not know is in group 0, with nothing billed.
pub async fn vendor_margin(domain: &Domain, actor: &Actor, period: &str, by: MarginGroup) -> Result<Vec<MarginRow>> {
    actor.require_operator()?;
    actor.require_scope(crate::domain::scopes::Scope::ReconciliationWrite, "margin from vendor statements")?;
    let filter = FindingFilter { period: Some(period.to_owned()), ..FindingFilter::default() };
    let imports = imports(domain, &filter).await?;
    let vendor_of: HashMap<i64, i64> = imports.iter().map(|i| (i.id, i.vendor_id)).collect();
    let ids = imports.iter().map(|i| i.id).collect();
    let mut groups: BTreeMap<(i64, String), MarginRow> = BTreeMap::new();
    each_summed(domain, &filter, ids, |f| {
        let id = match by {
            MarginGroup::Vendor => vendor_of.get(&f.import_id).copied(),
            MarginGroup::Reseller => f.reseller_id,
            MarginGroup::Customer => f.customer_id,
            MarginGroup::Offer => f.offer_id,
        }
        .unwrap_or(0);
        let convert = |amount: Decimal| -> Result<Decimal> {
            match f.billed_currency.as_deref() {
                None => Ok(Decimal::ZERO),
                Some(billed) if billed == f.currency => Ok(amount),
                Some(billed) if billed == f.pricing_currency => {
                    let currency = Currency::parse(&f.currency, "currency")?;
                    let converted = amount
                        .checked_mul(f.exchange_rate.0)
                        .ok_or_else(|| Error::validation("amount", "too large"))?;
                    Ok(round_to_minor_units(converted, currency))
                }
                Some(billed) => Err(Error::conflict(
                    "NO_CONVERSION",
                    format!("finding {} was billed in {billed}, the statement is in {}", f.id, f.currency),
                )),
            }
        };
        let (wholesale, retail) = (convert(f.wholesale_billed.0)?, convert(f.retail_billed.0)?);
        let row = groups.entry((id, f.currency.clone())).or_insert_with(|| MarginRow {
            id,
            name: String::new(),
            currency: f.currency.clone(),
            lines: 0,
            cost: Decimal::ZERO,
            wholesale: Decimal::ZERO,
            retail: Decimal::ZERO,
        });
        row.lines += 1;
        add(&mut row.cost, f.vendor_amount.0)?;
        add(&mut row.wholesale, wholesale)?;
        add(&mut row.retail, retail)?;
        Ok(())
    })
    .await?;
    let ids: Vec<i64> = groups.keys().map(|(id, _)| *id).filter(|id| *id != 0).collect();
    let names = names(domain, by, ids).await?;
    let mut rows: Vec<MarginRow> = groups
        .into_values()
        .map(|mut row| {
            row.name = names.get(&row.id).cloned().unwrap_or_else(|| "(not ours)".to_owned());
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, a.id, &a.currency).cmp(&(&b.name, b.id, &b.currency)));
    Ok(rows)
}

/// Imports in id order (operator only), of one vendor if given.
pub async fn list_imports(
    domain: &Domain,
    actor: &Actor,
    vendor_id: Option<i64>,
    page: PageRequest,
) -> Result<Page<reconciliation_import::Model>> {
    actor.require_operator()?;
    let mut find = reconciliation_import::Entity::find();
    if let Some(id) = vendor_id {
        find = find.filter(reconciliation_import::Column::VendorId.eq(id));
    }
    fetch_page(&domain.db, find, reconciliation_import::Column::Id, page).await
}

/// One import (operator only).
pub async fn get_import(domain: &Domain, actor: &Actor, id: i64) -> Result<reconciliation_import::Model> {
    actor.require_operator()?;
    reconciliation_import::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("import"))
}
