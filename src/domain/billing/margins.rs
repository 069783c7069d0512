//! What the operator earns and what each reseller earns, from the charges themselves: each
//! charged line at cost (vendor → operator), wholesale (operator → reseller) and retail
//! (reseller → customer), and the margin report of a period grouped by reseller, customer,
//! vendor or offer (operator only). Amounts are summed exactly; a group has a row per
//! currency (charges are in the customer's currency).

use std::collections::{BTreeMap, HashMap};

use entity::{charge, customer, offer, reseller, vendor};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::plan::Period;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::Result;
use crate::domain::pagination::{Page, PageRequest, fetch_page};

/// What a margin report groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarginGroup {
    Reseller,
    Customer,
    Vendor,
    Offer,
}

/// One group's totals in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarginRow {
    /// The reseller, customer, vendor or offer.
    pub id: i64,
    /// Its name.
    pub name: String,
    pub currency: String,
    /// Charged lines in the group.
    pub lines: usize,
    pub cost: Decimal,
    pub wholesale: Decimal,
    pub retail: Decimal,
}

impl MarginRow {
    /// The operator's margin: wholesale − cost.
    pub fn operator_margin(&self) -> Decimal {
        self.wholesale - self.cost
    }

    /// The resellers' margin: retail − wholesale.
    pub fn reseller_margin(&self) -> Decimal {
        self.retail - self.wholesale
    }
}

/// Charges billed in a period's runs, with their three amounts (operator only).
pub async fn charges_of_period(
    domain: &Domain,
    actor: &Actor,
    period: &str,
    page: PageRequest,
) -> Result<Page<charge::Model>> {
    actor.require_operator()?;
    let period = Period::parse(period)?.label();
    let select = charge::Entity::find().filter(charge::Column::Period.eq(period));
    fetch_page(&domain.db, select, charge::Column::Id, page).await
}

/// The margin report of `period`: per group and currency, the charges' cost, wholesale and
/// retail (operator only), ordered by name.
pub async fn margin_report(domain: &Domain, actor: &Actor, period: &str, by: MarginGroup) -> Result<Vec<MarginRow>> {
    actor.require_operator()?;
    actor.require_scope(crate::domain::scopes::Scope::BillingRead, "margin reports")?;
    let period = Period::parse(period)?.label();
    let column = match by {
        MarginGroup::Reseller => charge::Column::ResellerId,
        MarginGroup::Customer => charge::Column::CustomerId,
        MarginGroup::Vendor => charge::Column::VendorId,
        MarginGroup::Offer => charge::Column::OfferId,
    };
    // Summed here, not in SQL: SQLite keeps money as exact text, and SUM would go through f64.
    let rows: Vec<(i64, String, entity::DbDecimal, entity::DbDecimal, entity::DbDecimal)> = charge::Entity::find()
        .select_only()
        .column(column)
        .column(charge::Column::Currency)
        .column(charge::Column::AmountCost)
        .column(charge::Column::AmountWholesale)
        .column(charge::Column::AmountRetail)
        .filter(charge::Column::Period.eq(period))
        .order_by_asc(charge::Column::Id)
        .into_tuple()
        .all(&domain.db)
        .await?;
    let mut groups: BTreeMap<(i64, String), MarginRow> = BTreeMap::new();
    for (id, currency, cost, wholesale, retail) in rows {
        let row = groups.entry((id, currency.clone())).or_insert_with(|| MarginRow {
            id,
            name: String::new(),
            currency,
            lines: 0,
            cost: Decimal::ZERO,
            wholesale: Decimal::ZERO,
            retail: Decimal::ZERO,
        });
        row.lines += 1;
        row.cost += cost.0;
        row.wholesale += wholesale.0;
        row.retail += retail.0;
    }
    let ids: Vec<i64> = groups.keys().map(|(id, _)| *id).collect();
    let names = names(domain, by, ids).await?;
    let mut rows: Vec<MarginRow> = groups
        .into_values()
        .map(|mut row| {
            row.name = names.get(&row.id).cloned().unwrap_or_default();
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, a.id, &a.currency).cmp(&(&b.name, b.id, &b.currency)));
    Ok(rows)
}

pub(crate) async fn names(domain: &Domain, by: MarginGroup, ids: Vec<i64>) -> Result<HashMap<i64, String>> {
    let db = &domain.db;
    let mut names = HashMap::new();
    for ids in ids.chunks(500) {
        let ids = ids.iter().copied();
        let found: Vec<(i64, String)> = match by {
            MarginGroup::Reseller => {
                reseller::Entity::find()
                    .select_only()
                    .columns([reseller::Column::Id, reseller::Column::Name])
                    .filter(reseller::Column::Id.is_in(ids))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            MarginGroup::Customer => {
                customer::Entity::find()
                    .select_only()
                    .columns([customer::Column::Id, customer::Column::Name])
                    .filter(customer::Column::Id.is_in(ids))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            MarginGroup::Vendor => {
                vendor::Entity::find()
                    .select_only()
                    .columns([vendor::Column::Id, vendor::Column::Name])
                    .filter(vendor::Column::Id.is_in(ids))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            MarginGroup::Offer => {
                offer::Entity::find()
                    .select_only()
                    .columns([offer::Column::Id, offer::Column::Name])
                    .filter(offer::Column::Id.is_in(ids))
                    .into_tuple()
                    .all(db)
                    .await?
            }
        };
        names.extend(found);
    }
    Ok(names)
}
