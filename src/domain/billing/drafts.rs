//! Gathering charges onto DRAFT invoices of both sides of the channel: a reseller's invoice
//! to each customer at retail (with the customer's tax rate) and the operator's invoice to
//! each reseller at wholesale, itemised by customer (reverse-charged).
//!
//! A charge remembers the invoice that bills it on each side (`customer_invoice_id`,
//! `reseller_invoice_id`): gathering *claims* it with `UPDATE … WHERE … IS NULL` inside the
//! transaction that adds its line, so a charge is on exactly one live invoice per side,
//! whatever runs race. Each invoice grows under a row lock. Only one DRAFT per period,
//! parties and currency is open at a time; once it is issued, later charges of the period
//! open a new draft, and voiding a draft releases its charges to the next run. A run for a
//! period gathers every charge of that period or earlier that is not on a live invoice yet.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::enums::{InvoiceKind, InvoiceStatus};
use entity::{DbDecimal, charge, invoice, invoice_line};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, NotSet,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::draft_totals::{LinesHeld, TOO_LARGE, add_to_totals, refresh_totals};
use super::proration::TaxPolicy;
use crate::domain::Domain;
use crate::domain::error::{Error, Result};
use crate::domain::money::{Currency, max_storable, round_to_minor_units};
use crate::domain::write::{Audit, Write};

/// The counter key and recipient key of the operator.
pub const OPERATOR_KEY: &str = "OPERATOR";

fn reseller_key(id: i64) -> String {
    format!("RSL{id}")
}

fn customer_key(id: i64) -> String {
    format!("CUS{id}")
}

/// Customers whose invoice for `period` was issued (their period is closed: later changes
/// are charged on the next period, as adjustments).
pub async fn customers_with_closed_invoices(db: &DatabaseConnection, period: &str) -> Result<HashSet<i64>> {
    let ids: Vec<Option<i64>> = invoice::Entity::find()
        .select_only()
        .column(invoice::Column::RecipientCustomerId)
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::RecipientCustomerId.is_not_null())
        .filter(invoice::Column::CreditedInvoiceId.is_null())
        .filter(invoice::Column::Status.is_in([InvoiceStatus::Issued, InvoiceStatus::Paid]))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// Charges of `period` or earlier that are not on a live invoice of some side yet (the
/// condition matches the partial index `idx_charges_uninvoiced`).
fn uninvoiced(period: &str) -> Condition {
    Condition::all().add(charge::Column::Period.lte(period)).add(
        Condition::any()
            .add(charge::Column::CustomerInvoiceId.is_null())
            .add(charge::Column::ResellerInvoiceId.is_null()),
    )
}

/// Which side of the channel an invoice bills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Reseller → customer, at retail.
    Customer,
    /// Operator → reseller, at wholesale, itemised by customer.
    Reseller,
}

impl Side {
    /// The charge's column naming its invoice on this side.
    fn invoice_column(self) -> charge::Column {
        match self {
            Side::Customer => charge::Column::CustomerInvoiceId,
            Side::Reseller => charge::Column::ResellerInvoiceId,
        }
    }

    fn invoice_of(self, charge: &charge::Model) -> Option<i64> {
        match self {
            Side::Customer => charge.customer_invoice_id,
            Side::Reseller => charge.reseller_invoice_id,
        }
    }
}

/// Clears the invoice link of every charge on `invoice_id` (a voided draft), on both sides,
/// so the next run gathers them again.
pub async fn release_charges<C: ConnectionTrait>(db: &C, invoice_id: i64) -> Result<()> {
    for side in [Side::Customer, Side::Reseller] {
        let column = side.invoice_column();
        charge::Entity::update_many()
            .col_expr(column, Expr::value(Option::<i64>::None))
            .filter(column.eq(invoice_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Charge ids per claiming statement: well inside every backend's bind-parameter limit.
const CLAIM_CHUNK: usize = 500;

/// Customers handled per step of `invoice_period`: bounds memory whatever the run's size.
const CUSTOMER_CHUNK: usize = 1000;

/// What gathering did: invoices created or extended, and the conversions it could not
/// make (`USD→EUR on 2026-11-02`): those charges wait for a rate, off the reseller's invoice.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Invoices created or extended.
    pub touched: usize,
    /// Missing exchange rates, each once.
    pub missing_rates: BTreeSet<String>,
    /// Invoices that would pass the largest amount: their new charges wait.
    pub unbillable: Vec<String>,
}

/// Gathers every charge of `period` or earlier that is not on a live invoice yet onto the
/// DRAFT invoices of `period`, on both sides. The operator invoices each reseller in the
/// reseller's currency: a charge in another currency is converted at the rate in force on
/// the day it starts. Works through the customers in chunks; a reseller's invoice grows by
/// one chunk's lines at a time.
pub async fn invoice_period(
    domain: &Domain,
    period: &str,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Gathered> {
    let rates = crate::domain::exchange_rates::all_rates(&domain.db).await?;
    let mut missing_rates = BTreeSet::new();
    let customers: Vec<i64> = charge::Entity::find()
        .select_only()
        .column(charge::Column::CustomerId)
        .distinct()
        .filter(uninvoiced(period))
        .order_by_asc(charge::Column::CustomerId)
        .into_tuple()
        .all(&domain.db)
        .await?;
    let mut touched_resellers = HashSet::new();
    let mut touched = 0;
    let mut unbillable = Vec::new();
    for chunk in customers.chunks(CUSTOMER_CHUNK) {
        let charges = charge::Entity::find()
            .filter(uninvoiced(period))
            .filter(charge::Column::CustomerId.is_in(chunk.iter().copied()))
            .order_by_asc(charge::Column::CustomerId)
            .order_by_asc(charge::Column::Id)
            .all(&domain.db)
            .await?;
        let mut by_customer: BTreeMap<(i64, i64, String), Vec<&charge::Model>> = BTreeMap::new();
        let mut by_reseller: BTreeMap<(i64, String), Vec<&charge::Model>> = BTreeMap::new();
        let mut converted: HashMap<i64, Decimal> = HashMap::new();
        let reseller_ids: BTreeSet<i64> = charges.iter().map(|c| c.reseller_id).collect();
        let reseller_currency: HashMap<i64, String> = entity::reseller::Entity::find()
            .filter(entity::reseller::Column::Id.is_in(reseller_ids))
            .all(&domain.db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.currency))
            .collect();
        for charge in &charges {
            // A recovery the operator keeps to the reseller is on no customer's invoice.
            if charge.customer_invoice_id.is_none() && charge.bills_customer {
                by_customer
                    .entry((charge.customer_id, charge.reseller_id, charge.currency.clone()))
                    .or_default()
                    .push(charge);
            }
            if charge.reseller_invoice_id.is_none() {
                let currency = reseller_currency.get(&charge.reseller_id).unwrap_or(&charge.currency);
                if *currency != charge.currency {
                    let day = charge.service_start.date_naive();
                    let Some(rate) = rates.in_force(&charge.currency, currency, day) else {
                        missing_rates.insert(format!("{}→{currency} on {day}", charge.currency));
                        continue;
                    };
                    converted.insert(charge.id, rate);
                }
                by_reseller.entry((charge.reseller_id, currency.clone())).or_default().push(charge);
            }
        }
        let customer_rates: std::collections::HashMap<i64, Decimal> = entity::customer::Entity::find()
            .filter(entity::customer::Column::Id.is_in(chunk.iter().copied()))
            .all(&domain.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c.tax_rate.0))
            .collect();
        for ((customer_id, reseller_id, currency), lines) in by_customer {
            let rate = customer_rates.get(&customer_id).copied().unwrap_or_default();
            let parties = Parties::reseller_to_customer(reseller_id, customer_id);
            let gather =
                Gather { side: Side::Customer, parties: &parties, period, currency: &currency, tax_rate: rate };
            let changed = add_to_invoice(domain, &gather, &lines, &HashMap::new(), run_id, now).await;
            let Some(changed) = too_large(changed, &mut unbillable, || format!("customer {customer_id}"))? else {
                continue;
            };
            touched += usize::from(changed);
        }
        for ((reseller_id, currency), lines) in by_reseller {
            let parties = Parties::operator_to_reseller(reseller_id);
            // B2B within the channel: reverse charge, no tax on the operator's invoice.
            let gather = Gather {
                side: Side::Reseller,
                parties: &parties,
                period,
                currency: &currency,
                tax_rate: Decimal::ZERO,
            };
            let changed = add_to_invoice(domain, &gather, &lines, &converted, run_id, now).await;
            let Some(changed) = too_large(changed, &mut unbillable, || format!("reseller {reseller_id}"))? else {
                continue;
            };
            if changed && touched_resellers.insert((reseller_id, currency)) {
                touched += 1;
            }
        }
    }
    Ok(Gathered { touched, missing_rates, unbillable })
}

/// An invoice that would pass the largest amount is reported, not a failed run: its new
/// charges wait (everything else is gathered).
fn too_large(added: Result<bool>, report: &mut Vec<String>, whose: impl Fn() -> String) -> Result<Option<bool>> {
    match added {
        Err(Error::Conflict { reason: TOO_LARGE, message }) => {
            tracing::warn!(%message, "an invoice cannot take its charges");
            report.push(format!("the invoice to {}: {message}", whose()));
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// Which invoice a gathering adds to: its side, parties, period, currency and tax rate.
struct Gather<'a> {
    side: Side,
    parties: &'a Parties,
    period: &'a str,
    currency: &'a str,
    tax_rate: Decimal,
}

/// Who issues an invoice and who receives it.
struct Parties {
    issuer_key: String,
    issuer_reseller_id: Option<i64>,
    recipient_key: String,
    recipient_reseller_id: Option<i64>,
    recipient_customer_id: Option<i64>,
}

impl Parties {
    /// A reseller's invoice to one of its customers.
    fn reseller_to_customer(reseller_id: i64, customer_id: i64) -> Self {
        Self {
            issuer_key: reseller_key(reseller_id),
            issuer_reseller_id: Some(reseller_id),
            recipient_key: customer_key(customer_id),
            recipient_reseller_id: None,
            recipient_customer_id: Some(customer_id),
        }
    }

    /// The operator's invoice to a reseller.
    fn operator_to_reseller(reseller_id: i64) -> Self {
        Self {
            issuer_key: OPERATOR_KEY.to_owned(),
            issuer_reseller_id: None,
            recipient_key: reseller_key(reseller_id),
            recipient_reseller_id: Some(reseller_id),
            recipient_customer_id: None,
        }
    }
}

/// The open DRAFT between `parties` for `period` and `currency`, locked on PostgreSQL.
async fn find_draft<C: ConnectionTrait>(
    db: &C,
    parties: &Parties,
    period: &str,
    currency: &str,
) -> Result<Option<invoice::Model>> {
    let mut find = invoice::Entity::find()
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::IssuerKey.eq(parties.issuer_key.clone()))
        .filter(invoice::Column::RecipientKey.eq(parties.recipient_key.clone()))
        .filter(invoice::Column::Currency.eq(currency))
        .filter(invoice::Column::CreditedInvoiceId.is_null())
        .filter(invoice::Column::Status.eq(InvoiceStatus::Draft));
    if db.get_database_backend() == DbBackend::Postgres {
        find = find.lock_exclusive();
    }
    Ok(find.one(db).await?)
}

/// Claims the charges not on a live invoice of this side yet for the open DRAFT between
/// `parties` (created if needed), adds their lines and recomputes its totals; `false` when
/// no charge was left to claim. Two runs creating the same draft at once: the loser's
/// insert violates the unique index of open drafts, and it tries again, finding the
/// winner's draft.
/// `converted` holds the rate of each charge converted into the invoice's currency.
async fn add_to_invoice(
    domain: &Domain,
    gather: &Gather<'_>,
    charges: &[&charge::Model],
    converted: &HashMap<i64, Decimal>,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_add_to_invoice(domain, gather, charges, converted, run_id, now).await {
            Err(Error::Conflict { reason: "INVOICE_RACE", .. }) if attempt < 3 => continue,
            other => return other,
        }
    }
}

async fn try_add_to_invoice(
    domain: &Domain,
    gather: &Gather<'_>,
    charges: &[&charge::Model],
    converted: &HashMap<i64, Decimal>,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Gather { side, parties, period, currency, tax_rate } = *gather;
    let offer_names: std::collections::HashMap<i64, String> = {
        let snapshot = domain.catalog.snapshot(&domain.db).await?;
        charges.iter().filter_map(|c| snapshot.offers.get(&c.offer_id).map(|o| (c.offer_id, o.name.clone()))).collect()
    };
    let w = Write::begin(domain).await?;
    let (invoice, fresh) = match find_draft(w.db(), parties, period, currency).await? {
        Some(existing) => (existing, false),
        None => (
            invoice::ActiveModel {
                id: NotSet,
                kind: Set(InvoiceKind::Invoice),
                issuer_key: Set(parties.issuer_key.clone()),
                issuer_reseller_id: Set(parties.issuer_reseller_id),
                recipient_key: Set(parties.recipient_key.clone()),
                recipient_reseller_id: Set(parties.recipient_reseller_id),
                recipient_customer_id: Set(parties.recipient_customer_id),
                credited_invoice_id: Set(None),
                billing_run_id: Set(run_id),
                period: Set(period.to_owned()),
                currency: Set(currency.to_owned()),
                status: Set(InvoiceStatus::Draft),
                number: Set(None),
                number_year: Set(None),
                tax_rate: Set(DbDecimal(tax_rate)),
                subtotal: Set(DbDecimal(Decimal::ZERO)),
                tax: Set(DbDecimal(Decimal::ZERO)),
                total: Set(DbDecimal(Decimal::ZERO)),
                issued_at: Set(None),
                paid_at: Set(None),
                voided_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                due_at: Set(None),
                parties: Set(None),
            }
            .insert(w.db())
            .await
            .map_err(|e| {
                crate::domain::error::map_unique_violation(
                    e,
                    &["uq_invoices_open_draft", "invoices.period"],
                    Error::conflict("INVOICE_RACE", "raced"),
                )
            })?,
            true,
        ),
    };
    // What the draft's lines hold, summed by the database (they are not read back): its
    // totals are added to, unless they disagree with its lines or its recipient's rate.
    let held = if fresh { LinesHeld::default() } else { LinesHeld::of(w.db(), invoice.id).await? };
    let mut next = held.last_line;
    let currency_code = Currency::parse(currency, "currency")?;
    // Claim: only charges still on no live invoice of this side become this draft's.
    let column = side.invoice_column();
    let candidates: Vec<i64> = charges.iter().filter(|c| side.invoice_of(c).is_none()).map(|c| c.id).collect();
    let mut claimed = HashSet::new();
    for ids in candidates.chunks(CLAIM_CHUNK) {
        let claim = charge::Entity::update_many()
            .col_expr(column, Expr::value(invoice.id))
            .filter(charge::Column::Id.is_in(ids.iter().copied()))
            .filter(column.is_null());
        let mine: Vec<i64> = if w.db().support_returning() {
            claim.exec_with_returning(w.db()).await?.into_iter().map(|c| c.id).collect()
        } else {
            // SQLite: the write lock is held from the update to the commit, so reading back
            // what now names this draft is what this update claimed (plus earlier lines).
            // Less those another run claimed into this same draft before (its lines).
            claim.exec(w.db()).await?;
            let named: Vec<i64> = charge::Entity::find()
                .select_only()
                .column(charge::Column::Id)
                .filter(charge::Column::Id.is_in(ids.iter().copied()))
                .filter(column.eq(invoice.id))
                .into_tuple()
                .all(w.db())
                .await?;
            let present: HashSet<i64> = invoice_line::Entity::find()
                .select_only()
                .column(invoice_line::Column::ChargeId)
                .filter(invoice_line::Column::InvoiceId.eq(invoice.id))
                .filter(invoice_line::Column::ChargeId.is_in(named.iter().copied()))
                .into_tuple::<Option<i64>>()
                .all(w.db())
                .await?
                .into_iter()
                .flatten()
                .collect();
            named.into_iter().filter(|id| !present.contains(id)).collect()
        };
        claimed.extend(mine);
    }
    let mut new_lines = Vec::new();
    let mut new_amounts = Vec::new();
    let mut ordered: Vec<&&charge::Model> = charges.iter().filter(|c| claimed.contains(&c.id)).collect();
    ordered.sort_by_key(|c| (c.customer_id, c.id));
    for charge in ordered {
        next += 1;
        let (mut unit_price, mut amount) = match side {
            Side::Customer => (charge.unit_retail.0, charge.amount_retail.0),
            Side::Reseller => (charge.unit_wholesale.0, charge.amount_wholesale.0),
        };
        let mut cycle_unit = match side {
            Side::Customer => charge.cycle_unit_retail.map(|d| d.0),
            Side::Reseller => charge.cycle_unit_wholesale.map(|d| d.0),
        };
        // Converted: amount = round(source amount × rate) at the invoice currency's minor
        // units; the unit prices are shown at the storage's 10 decimal places.
        let conversion = converted.get(&charge.id).map(|rate| (charge.currency.clone(), amount, *rate));
        if let Some((_, source, rate)) = &conversion {
            // Checked: a large amount at a large rate may pass what an amount may hold; the
            // invoice then waits (reported) instead of failing the run on a column overflow.
            let times_rate = |value: Decimal| value.checked_mul(*rate).filter(|v| v.abs() <= max_storable());
            let (Some(unit), Some(converted)) = (times_rate(unit_price), times_rate(*source)) else {
                return Err(Error::conflict(
                    TOO_LARGE,
                    format!("converting charge {} passes the largest amount", charge.id),
                ));
            };
            unit_price = unit.round_dp(10);
            cycle_unit = cycle_unit.and_then(times_rate).map(|unit| unit.round_dp(10));
            amount = round_to_minor_units(converted, currency_code);
        }
        let line_tax = match domain.billing.tax {
            TaxPolicy::PerLine => round_to_minor_units(amount * tax_rate, currency_code),
            TaxPolicy::PerInvoice => Decimal::ZERO,
        };
        new_amounts.push((amount, line_tax));
        new_lines.push(invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(invoice.id),
            line_number: Set(next),
            charge_id: Set(Some(charge.id)),
            customer_id: Set(Some(charge.customer_id)),
            subscription_id: Set(Some(charge.subscription_id)),
            description: Set(charge.description.clone()),
            quantity: Set(charge.quantity),
            unit_price: Set(DbDecimal(unit_price)),
            days_used: Set(charge.days_used),
            days_in_period: Set(charge.days_in_period),
            amount: Set(DbDecimal(amount)),
            tax: Set(DbDecimal(line_tax)),
            unit_cost: Set(charge.unit_cost),
            unit_wholesale: Set(charge.unit_wholesale),
            unit_retail: Set(charge.unit_retail),
            source_currency: Set(conversion.as_ref().map(|(code, ..)| code.clone())),
            source_amount: Set(conversion.as_ref().map(|(_, source, _)| DbDecimal(*source))),
            exchange_rate: Set(conversion.as_ref().map(|(.., rate)| DbDecimal(*rate))),
            service_start: Set(Some(charge.service_start)),
            service_end: Set(Some(charge.service_end)),
            product_name: Set(offer_names.get(&charge.offer_id).cloned()),
            cycle_unit_price: Set(cycle_unit.map(DbDecimal)),
        });
    }
    if new_lines.is_empty() {
        w.rollback().await;
        return Ok(false);
    }
    for chunk in new_lines.chunks(200) {
        invoice_line::Entity::insert_many(chunk.to_vec()).exec_without_returning(w.db()).await?;
    }
    if held.agrees_with(&invoice, tax_rate, domain.billing.tax) {
        add_to_totals(w.db(), invoice, &held, &new_amounts, domain.billing.tax, now).await?;
    } else {
        // The recipient's rate (or the tax policy) changed since the draft was totalled:
        // every line again.
        refresh_totals(w.db(), invoice, tax_rate, domain.billing.tax, now).await?;
    }
    w.commit(Audit::Bookkeeping("gathering a run's charges onto a draft; the billing run records it")).await?;
    Ok(true)
}
