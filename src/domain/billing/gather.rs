//! One step of gathering charges onto DRAFT invoices (see `drafts`): a chunk of customers'
//! uninvoiced charges goes onto the drafts of both sides in **one transaction**, with a
//! handful of statements whatever the number of invoices:
//! - one finds (and, on PostgreSQL, locks) every open draft the charges go to, one creates
//!   the missing ones;
//! - one `UPDATE … FROM (VALUES …)` per thousand charges (a hundred on SQLite) claims each charge for both sides
//!   at once, guarded by the invoice links it was read with: a charge another writer
//!   claimed since is not claimed twice, the step runs again from what that writer left;
//! - lines go in a thousand to a statement (a hundred on SQLite); each draft's totals are
//!   written once.
//!
//! Everything that could fail for one invoice alone is computed before anything is written:
//! an invoice that would pass the largest amount is left out (reported, its charges wait)
//! and the step runs again without it, so every other invoice of the chunk is gathered.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::enums::{InvoiceKind, InvoiceStatus};
use entity::{DbDecimal, charge, invoice, invoice_line};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::draft_totals::{LinesHeld, TOO_LARGE, added_totals, refresh_totals, write_totals};
use super::drafts::{Gathered, Parties, Side, uninvoiced};
use super::invoices::Totals;
use super::proration::TaxPolicy;
use crate::domain::Domain;
use crate::domain::error::{Error, Result};
use crate::domain::exchange_rates::Rates;
use crate::domain::money::{Currency, max_storable, round_to_minor_units};
use crate::domain::write::{Audit, Write, rows_per_statement, value_rows};

/// How often a step runs again after losing a race to another writer before it gives up
/// (a run that shares a chunk with another loses its first attempt to it).
const RACES: usize = 10;

/// Which DRAFT a group of charges goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Recipient {
    /// A reseller's invoice to its customer, at retail: (customer, reseller, currency).
    Customer(i64, i64, String),
    /// The operator's invoice to a reseller, at wholesale: (reseller, currency).
    Reseller(i64, String),
}

impl Recipient {
    fn side(&self) -> Side {
        match self {
            Recipient::Customer(..) => Side::Customer,
            Recipient::Reseller(..) => Side::Reseller,
        }
    }

    fn parties(&self) -> Parties {
        match self {
            Recipient::Customer(customer, reseller, _) => Parties::reseller_to_customer(*reseller, *customer),
            Recipient::Reseller(reseller, _) => Parties::operator_to_reseller(*reseller),
        }
    }

    fn currency(&self) -> &str {
        match self {
            Recipient::Customer(_, _, currency) | Recipient::Reseller(_, currency) => currency,
        }
    }

    /// Whom a report names.
    fn describe(&self) -> String {
        match self {
            Recipient::Customer(customer, ..) => format!("customer {customer}"),
            Recipient::Reseller(reseller, _) => format!("reseller {reseller}"),
        }
    }
}

/// What the step settings are: the period gathered, by which run, when, and the rates a
/// reseller's invoice converts at.
pub(super) struct Step<'a> {
    pub period: &'a str,
    pub run_id: Option<i64>,
    pub now: DateTime<Utc>,
    pub rates: &'a Rates,
}

/// Why an attempt ended without committing.
enum Failure {
    /// This invoice would pass the largest amount: the step runs again without it.
    TooLarge(Recipient, String),
    /// Another writer created a draft or claimed a charge first: the step runs again.
    Raced,
    /// Anything else fails the run.
    Failed(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        // A deadlock with another writer of these charges (a void releasing them, say).
        if crate::domain::error::lost_to_a_concurrent_transaction(&error) {
            return Failure::Raced;
        }
        Failure::Failed(error)
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(error: sea_orm::DbErr) -> Self {
        Failure::from(Error::from(error))
    }
}

/// What a committed attempt did: the drafts it added lines to, the conversions it lacked.
#[derive(Default)]
struct Done {
    extended: Vec<Recipient>,
    missing_rates: BTreeSet<String>,
}

/// Gathers the uninvoiced charges of `customers` onto the drafts of `step.period`, and adds
/// what it did to `gathered` (`resellers_touched` counts a reseller's draft once a run).
pub(super) async fn gather(
    domain: &Domain,
    step: &Step<'_>,
    customers: &[i64],
    gathered: &mut Gathered,
    resellers_touched: &mut HashSet<(i64, String)>,
) -> Result<()> {
    let mut left_out: BTreeMap<Recipient, String> = BTreeMap::new();
    let mut races = 0;
    let done = loop {
        let w = Write::begin(domain).await?;
        match attempt(&w, step, customers, &left_out).await {
            Ok(done) => {
                w.commit(Audit::Bookkeeping("gathering a run's charges onto drafts; the billing run records it"))
                    .await?;
                break done;
            }
            Err(failure) => {
                w.rollback().await;
                match failure {
                    Failure::TooLarge(recipient, message) => {
                        left_out.insert(recipient, message);
                    }
                    Failure::Raced if races < RACES => races += 1,
                    Failure::Raced => {
                        return Err(Error::conflict("INVOICE_RACE", "other writers kept changing these drafts"));
                    }
                    Failure::Failed(error) => return Err(error),
                }
            }
        }
    };
    for (recipient, message) in left_out {
        // Once per run, though a reseller's invoice is left out by every chunk.
        let report = format!("the invoice to {}: {message}", recipient.describe());
        if !gathered.unbillable.contains(&report) {
            tracing::warn!(%message, "an invoice cannot take its charges");
            gathered.unbillable.push(report);
        }
    }
    gathered.missing_rates.extend(done.missing_rates);
    for recipient in done.extended {
        match recipient {
            Recipient::Customer(..) => gathered.touched += 1,
            Recipient::Reseller(reseller, currency) => {
                if resellers_touched.insert((reseller, currency)) {
                    gathered.touched += 1;
                }
            }
        }
    }
    Ok(())
}

/// The charges a chunk gathers, grouped by the draft each goes to on each side.
struct Grouped<'c> {
    groups: BTreeMap<Recipient, Vec<&'c charge::Model>>,
    /// The rate of each charge converted into its reseller's currency.
    converted: HashMap<i64, Decimal>,
    tax_rates: HashMap<i64, Decimal>,
    missing_rates: BTreeSet<String>,
}

impl Grouped<'_> {
    /// The tax rate of `recipient`'s invoice: its customer's; none on the operator's invoice
    /// to a reseller (B2B within the channel: reverse charge).
    fn tax_rate(&self, recipient: &Recipient) -> Decimal {
        match recipient {
            Recipient::Customer(customer, ..) => self.tax_rates.get(customer).copied().unwrap_or_default(),
            Recipient::Reseller(..) => Decimal::ZERO,
        }
    }
}

async fn group<'c>(
    w: &Write<'_>,
    step: &Step<'_>,
    customers: &[i64],
    charges: &'c [charge::Model],
    left_out: &BTreeMap<Recipient, String>,
) -> Result<Grouped<'c>> {
    let reseller_ids: BTreeSet<i64> = charges.iter().map(|c| c.reseller_id).collect();
    let reseller_currency: HashMap<i64, String> = entity::reseller::Entity::find()
        .filter(entity::reseller::Column::Id.is_in(reseller_ids))
        .all(w.db())
        .await?
        .into_iter()
        .map(|r| (r.id, r.currency))
        .collect();
    let tax_rates: HashMap<i64, Decimal> = entity::customer::Entity::find()
        .filter(entity::customer::Column::Id.is_in(customers.iter().copied()))
        .all(w.db())
        .await?
        .into_iter()
        .map(|c| (c.id, c.tax_rate.0))
        .collect();
    let mut grouped =
        Grouped { groups: BTreeMap::new(), converted: HashMap::new(), tax_rates, missing_rates: BTreeSet::new() };
    for charge in charges {
        // A recovery the operator keeps to the reseller is on no customer's invoice.
        if charge.customer_invoice_id.is_none() && charge.bills_customer {
            let recipient = Recipient::Customer(charge.customer_id, charge.reseller_id, charge.currency.clone());
            if !left_out.contains_key(&recipient) {
                grouped.groups.entry(recipient).or_default().push(charge);
            }
        }
        if charge.reseller_invoice_id.is_none() {
            let currency = reseller_currency.get(&charge.reseller_id).unwrap_or(&charge.currency);
            let recipient = Recipient::Reseller(charge.reseller_id, currency.clone());
            if left_out.contains_key(&recipient) {
                continue;
            }
            if *currency != charge.currency {
                let day = charge.service_start.date_naive();
                let Some(rate) = step.rates.in_force(&charge.currency, currency, day) else {
                    grouped.missing_rates.insert(format!("{}→{currency} on {day}", charge.currency));
                    continue;
                };
                grouped.converted.insert(charge.id, rate);
            }
            grouped.groups.entry(recipient).or_default().push(charge);
        }
    }
    Ok(grouped)
}

/// One attempt, in `w`: everything or nothing of the chunk is gathered.
async fn attempt(
    w: &Write<'_>,
    step: &Step<'_>,
    customers: &[i64],
    left_out: &BTreeMap<Recipient, String>,
) -> std::result::Result<Done, Failure> {
    let domain = w.domain();
    let charges = charge::Entity::find()
        .filter(uninvoiced(step.period))
        .filter(charge::Column::CustomerId.is_in(customers.iter().copied()))
        .order_by_asc(charge::Column::CustomerId)
        .order_by_asc(charge::Column::Id)
        .all(w.db())
        .await?;
    let grouped = group(w, step, customers, &charges, left_out).await?;
    let mut done = Done { missing_rates: grouped.missing_rates.clone(), ..Done::default() };
    if grouped.groups.is_empty() {
        return Ok(done);
    }
    let (drafts, fresh) = drafts_for(w, step, &grouped).await?;
    let offer_names: HashMap<i64, String> = {
        let snapshot = domain.catalog.snapshot(&domain.db).await?;
        let offers: BTreeSet<i64> = charges.iter().map(|c| c.offer_id).collect();
        offers.into_iter().filter_map(|id| snapshot.offers.get(&id).map(|o| (id, o.name.clone()))).collect()
    };
    // Plan every line and every total before writing anything.
    let policy = domain.billing.tax;
    let mut lines: Vec<NewLine<'_>> = Vec::new();
    let mut claims: BTreeMap<i64, (Option<i64>, Option<i64>)> = BTreeMap::new();
    let mut totals: Vec<(invoice::Model, Totals)> = Vec::new();
    let mut refresh: Vec<(Recipient, invoice::Model, Decimal)> = Vec::new();
    for (recipient, charges) in &grouped.groups {
        let invoice = drafts.get(recipient).ok_or(Failure::Raced)?;
        let tax_rate = grouped.tax_rate(recipient);
        let held =
            if fresh.contains(recipient) { LinesHeld::default() } else { LinesHeld::of(w.db(), invoice.id).await? };
        let mut next = held.last_line;
        let mut added = Vec::with_capacity(charges.len());
        let currency = Currency::parse(recipient.currency(), "currency")?;
        for charge in charges {
            next += 1;
            // Conversions are the operator's: a reseller's invoice is in the reseller's currency.
            let rate = grouped.converted.get(&charge.id).filter(|_| recipient.side() == Side::Reseller);
            let line = NewLine::of(charge, recipient.side(), invoice.id, next, rate)
                .map(|line| line.taxed(tax_rate, currency, policy))
                .ok_or_else(|| {
                    let message = format!("converting charge {} passes the largest amount", charge.id);
                    Failure::TooLarge(recipient.clone(), message)
                })?;
            added.push((line.amount, line.tax));
            lines.push(line);
            let claim = claims.entry(charge.id).or_insert((charge.customer_invoice_id, charge.reseller_invoice_id));
            match recipient.side() {
                Side::Customer => claim.0 = Some(invoice.id),
                Side::Reseller => claim.1 = Some(invoice.id),
            }
        }
        if held.agrees_with(invoice, tax_rate, policy) {
            let sums = added_totals(invoice, &held, &added, policy).map_err(|e| too_large(recipient, e))?;
            totals.push((invoice.clone(), sums));
        } else {
            // The recipient's rate (or the tax policy) changed since the draft was totalled:
            // every line again, once this chunk's lines are in.
            refresh.push((recipient.clone(), invoice.clone(), tax_rate));
        }
        done.extended.push(recipient.clone());
    }
    let read: HashMap<i64, &charge::Model> = charges.iter().map(|c| (c.id, c)).collect();
    claim(w, &claims, &read).await?;
    insert_lines(w, &lines, &offer_names).await?;
    for (invoice, sums) in totals {
        let rate = invoice.tax_rate.0;
        write_totals(w.db(), invoice, sums, rate, step.now).await?;
    }
    for (recipient, invoice, rate) in refresh {
        refresh_totals(w.db(), invoice, rate, policy, step.now).await.map_err(|e| too_large(&recipient, e))?;
    }
    Ok(done)
}

/// An error that leaves `recipient`'s invoice out, or fails the run.
fn too_large(recipient: &Recipient, error: Error) -> Failure {
    match error {
        Error::Conflict { reason: TOO_LARGE, message } => Failure::TooLarge(recipient.clone(), message),
        other => Failure::from(other),
    }
}

/// The open draft of each group (locked on PostgreSQL, in id order), created where there is
/// none; also names the drafts created here. A draft another writer creates at the same
/// time makes the insert violate the unique index of open drafts: the step runs again.
async fn drafts_for(
    w: &Write<'_>,
    step: &Step<'_>,
    grouped: &Grouped<'_>,
) -> std::result::Result<(HashMap<Recipient, invoice::Model>, HashSet<Recipient>), Failure> {
    let mut drafts = open_drafts(w, step.period, grouped.groups.keys()).await?;
    let missing: Vec<&Recipient> = grouped.groups.keys().filter(|r| !drafts.contains_key(*r)).collect();
    if missing.is_empty() {
        return Ok((drafts, HashSet::new()));
    }
    let rows: Vec<invoice::ActiveModel> = missing
        .iter()
        .map(|recipient| {
            let parties = recipient.parties();
            let tax_rate = grouped.tax_rate(recipient);
            invoice::ActiveModel {
                id: NotSet,
                kind: Set(InvoiceKind::Invoice),
                issuer_key: Set(parties.issuer_key),
                issuer_reseller_id: Set(parties.issuer_reseller_id),
                recipient_key: Set(parties.recipient_key),
                recipient_reseller_id: Set(parties.recipient_reseller_id),
                recipient_customer_id: Set(parties.recipient_customer_id),
                credited_invoice_id: Set(None),
                billing_run_id: Set(step.run_id),
                period: Set(step.period.to_owned()),
                currency: Set(recipient.currency().to_owned()),
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
                created_at: Set(step.now),
                updated_at: Set(step.now),
                due_at: Set(None),
                parties: Set(None),
            }
        })
        .collect();
    for chunk in rows.chunks(rows_per_statement(w.db(), 25)) {
        invoice::Entity::insert_many(chunk.to_vec()).exec_without_returning(w.db()).await.map_err(|e| {
            match crate::domain::error::map_unique_violation(
                e,
                &["uq_invoices_open_draft", "invoices.period"],
                Error::conflict("INVOICE_RACE", "raced"),
            ) {
                Error::Conflict { reason: "INVOICE_RACE", .. } => Failure::Raced,
                other => Failure::Failed(other),
            }
        })?;
    }
    let fresh: HashSet<Recipient> = missing.into_iter().cloned().collect();
    drafts = open_drafts(w, step.period, grouped.groups.keys()).await?;
    Ok((drafts, fresh))
}

/// The open DRAFT of each of `recipients` for `period` that exists, locked on PostgreSQL.
async fn open_drafts<'r>(
    w: &Write<'_>,
    period: &str,
    recipients: impl Iterator<Item = &'r Recipient>,
) -> Result<HashMap<Recipient, invoice::Model>> {
    let mut wanted: HashMap<(String, String, String), Recipient> = HashMap::new();
    for recipient in recipients {
        let parties = recipient.parties();
        wanted.insert((parties.issuer_key, parties.recipient_key, recipient.currency().to_owned()), recipient.clone());
    }
    let keys: BTreeSet<&str> = wanted.keys().map(|(_, recipient, _)| recipient.as_str()).collect();
    let find = invoice::Entity::find()
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::RecipientKey.is_in(keys))
        .filter(invoice::Column::CreditedInvoiceId.is_null())
        .filter(invoice::Column::Status.eq(InvoiceStatus::Draft))
        .order_by_asc(invoice::Column::Id);
    let found = crate::domain::write::locking(find, w.db()).all(w.db()).await?;
    Ok(found
        .into_iter()
        .filter_map(|draft| {
            let key = (draft.issuer_key.clone(), draft.recipient_key.clone(), draft.currency.clone());
            wanted.get(&key).map(|recipient| (recipient.clone(), draft))
        })
        .collect())
}

/// Claims charges for their drafts, both sides in one row write, guarded by the links each
/// was read with: if another writer changed one since, fewer rows change, and nothing of
/// this attempt is kept.
async fn claim(
    w: &Write<'_>,
    claims: &BTreeMap<i64, (Option<i64>, Option<i64>)>,
    read: &HashMap<i64, &charge::Model>,
) -> std::result::Result<(), Failure> {
    let claims: Vec<_> = claims.iter().collect();
    for chunk in claims.chunks(rows_per_statement(w.db(), 5)) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5);
        for (id, (customer_invoice, reseller_invoice)) in chunk {
            let was = read.get(id).ok_or_else(|| Error::internal("a claimed charge was not read"))?;
            values.extend([
                (**id).into(),
                (*customer_invoice).into(),
                (*reseller_invoice).into(),
                was.customer_invoice_id.into(),
                was.reseller_invoice_id.into(),
            ]);
        }
        let sql = format!(
            "UPDATE charges SET customer_invoice_id = v.column2, reseller_invoice_id = v.column3 \
             FROM (VALUES {}) AS v \
             WHERE charges.id = v.column1 \
             AND charges.customer_invoice_id IS NOT DISTINCT FROM v.column4 \
             AND charges.reseller_invoice_id IS NOT DISTINCT FROM v.column5",
            value_rows(chunk.len(), 5)
        );
        let changed = w.execute(&sql, values).await?;
        if changed != chunk.len() as u64 {
            return Err(Failure::Raced);
        }
    }
    Ok(())
}

/// A line to add: the charge it bills on one side, at that side's prices, converted
/// into the invoice's currency where needed.
struct NewLine<'c> {
    charge: &'c charge::Model,
    invoice_id: i64,
    number: i32,
    unit_price: Decimal,
    amount: Decimal,
    tax: Decimal,
    cycle_unit: Option<Decimal>,
    /// (source amount, rate) of a converted charge.
    conversion: Option<(Decimal, Decimal)>,
}

impl<'c> NewLine<'c> {
    /// None when converting passes the largest amount.
    fn of(charge: &'c charge::Model, side: Side, invoice_id: i64, number: i32, rate: Option<&Decimal>) -> Option<Self> {
        let (mut unit_price, mut amount, mut cycle_unit) = match side {
            Side::Customer => (charge.unit_retail.0, charge.amount_retail.0, charge.cycle_unit_retail.map(|d| d.0)),
            Side::Reseller => {
                (charge.unit_wholesale.0, charge.amount_wholesale.0, charge.cycle_unit_wholesale.map(|d| d.0))
            }
        };
        let conversion = rate.map(|rate| (amount, *rate));
        if let Some((source, rate)) = conversion {
            // Converted: amount = round(source amount × rate) at the invoice currency's
            // minor units (applied in `taxed`); unit prices at the storage's 10 places.
            // Checked: a large amount at a large rate may pass what an amount may hold.
            let times_rate = |value: Decimal| value.checked_mul(rate).filter(|v| v.abs() <= max_storable());
            unit_price = times_rate(unit_price)?.round_dp(10);
            amount = times_rate(source)?;
            cycle_unit = match cycle_unit {
                Some(unit) => Some(times_rate(unit)?.round_dp(10)),
                None => None,
            };
        }
        Some(Self { charge, invoice_id, number, unit_price, amount, tax: Decimal::ZERO, cycle_unit, conversion })
    }

    /// Rounds a converted amount to the invoice currency and taxes the line per `policy`.
    fn taxed(mut self, rate: Decimal, currency: Currency, policy: TaxPolicy) -> Self {
        if self.conversion.is_some() {
            self.amount = round_to_minor_units(self.amount, currency);
        }
        self.tax = match policy {
            TaxPolicy::PerLine => round_to_minor_units(self.amount * rate, currency),
            TaxPolicy::PerInvoice => Decimal::ZERO,
        };
        self
    }

    fn model(&self, offer_names: &HashMap<i64, String>) -> invoice_line::ActiveModel {
        let charge = self.charge;
        invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(self.invoice_id),
            line_number: Set(self.number),
            charge_id: Set(Some(charge.id)),
            customer_id: Set(Some(charge.customer_id)),
            subscription_id: Set(Some(charge.subscription_id)),
            description: Set(charge.description.clone()),
            quantity: Set(charge.quantity),
            unit_price: Set(DbDecimal(self.unit_price)),
            days_used: Set(charge.days_used),
            days_in_period: Set(charge.days_in_period),
            amount: Set(DbDecimal(self.amount)),
            tax: Set(DbDecimal(self.tax)),
            unit_cost: Set(charge.unit_cost),
            unit_wholesale: Set(charge.unit_wholesale),
            unit_retail: Set(charge.unit_retail),
            source_currency: Set(self.conversion.map(|_| charge.currency.clone())),
            source_amount: Set(self.conversion.map(|(source, _)| DbDecimal(source))),
            exchange_rate: Set(self.conversion.map(|(_, rate)| DbDecimal(rate))),
            service_start: Set(Some(charge.service_start)),
            service_end: Set(Some(charge.service_end)),
            product_name: Set(offer_names.get(&charge.offer_id).cloned()),
            cycle_unit_price: Set(self.cycle_unit.map(DbDecimal)),
        }
    }
}

/// Inserts `lines`, many to a statement, building each statement's models only then.
async fn insert_lines(w: &Write<'_>, lines: &[NewLine<'_>], offer_names: &HashMap<i64, String>) -> Result<()> {
    for chunk in lines.chunks(rows_per_statement(w.db(), 23)) {
        let models: Vec<invoice_line::ActiveModel> = chunk.iter().map(|line| line.model(offer_names)).collect();
        invoice_line::Entity::insert_many(models).exec_without_returning(w.db()).await?;
    }
    Ok(())
}
