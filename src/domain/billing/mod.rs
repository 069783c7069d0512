//! Billing: runs that turn subscriptions and usage into charges and two tiers of invoices.
//!
//! A run for a period (a calendar month, UTC) plans each subscription's charges from its
//! history (`plan`), writes them with `ON CONFLICT DO NOTHING` on the unique (subscription,
//! period, key) — so running a period twice, twice at once, or again after a crash adds
//! nothing — and then gathers uninvoiced charges onto DRAFT invoices: one per customer from
//! its reseller at retail prices, and one per reseller from the operator at wholesale
//! prices, itemised by customer. The operator's cost stays on every charge, per vendor, for
//! margin and reconciliation.

mod corrections;
pub mod draft_totals;
pub mod drafts;
pub mod invoices;
pub mod issuing;
pub mod margins;
pub mod plan;
pub mod proration;
mod rating;
pub mod terms;
pub mod usage;

use crate::domain::ids::CustomerId;
use crate::domain::write::{Audit, Write};
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::enums::{BillingRunStatus, SubscriptionStatus};
use entity::{DbDecimal, billing_run, charge, subscription, subscription_change, usage_record};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use self::plan::{BillingSettings, Period, PlannedCharge};
use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result};
use super::money::Currency;
use super::vendor_sync;

/// Subscriptions handled per transaction.
const BATCH: u64 = 500;

/// Usage record ids per statement: well inside every backend's bind-parameter limit.
const USAGE_CHUNK: usize = 1000;

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// The period billed.
    pub period: String,
    /// Subscriptions looked at.
    pub subscriptions: usize,
    /// Charges written by this run (0 when the period was billed already).
    pub charges_created: usize,
    /// Invoices created or extended by this run.
    pub invoices_touched: usize,
    /// Exchange rates a conversion needed and found none in force (`USD→EUR on 2026-11-02`):
    /// those charges wait, off the reseller's invoice, until the operator records one.
    pub missing_exchange_rates: Vec<String>,
    /// What could not be billed, and why: a subscription whose amounts would pass the
    /// largest amount (data from before prices and quantities were bounded), an invoice
    /// that would. The rest of the run goes on; those wait.
    pub unbillable: Vec<String>,
}

/// Runs billing for `period` (operator only; not for a month that has not started).
pub async fn run_billing(domain: &Domain, actor: &Actor, period: &str) -> Result<RunSummary> {
    let ran = run_billing_once(domain, actor, period).await;
    // A call refused before running (role, period, a run in progress) is no failed run.
    let outcome = match &ran {
        Ok(_) => "completed",
        Err(Error::Forbidden(_) | Error::Unauthenticated | Error::Validation { .. } | Error::Conflict { .. }) => {
            "refused"
        }
        Err(_) => "failed",
    };
    metrics::counter!("billing_runs_total", "outcome" => outcome).increment(1);
    ran
}

async fn run_billing_once(domain: &Domain, actor: &Actor, period: &str) -> Result<RunSummary> {
    actor.require_operator()?;
    let period = Period::parse(period)?;
    let now = domain.clock.now();
    if period.start > now.date_naive() {
        return Err(Error::validation("period", "cannot bill a month that has not started"));
    }
    let w = Write::begin(domain).await?;
    let run = billing_run::ActiveModel {
        id: NotSet,
        period: Set(period.label()),
        status: Set(BillingRunStatus::Running),
        started_at: Set(now),
        finished_at: Set(None),
        last_error: Set(None),
    }
    .insert(w.db())
    .await?;
    // Audited when it starts (so a run that dies midway is on record) and when it ends.
    let started = serde_json::json!({"period": run.period, "started": true});
    w.commit(Audit::action(actor, "runBilling", "billing_run", run.id, started)).await?;
    let result = bill(domain, period, Some(run.id), now).await;
    let details = match &result {
        Ok(summary) => {
            serde_json::json!({"period": summary.period, "charges": summary.charges_created,
                               "invoices": summary.invoices_touched, "missingExchangeRates": summary.missing_exchange_rates})
        }
        Err(_) => serde_json::json!({"period": run.period, "failed": true}),
    };
    let run_id = run.id;
    let mut model: billing_run::ActiveModel = run.into();
    model.finished_at = Set(Some(domain.clock.now()));
    match &result {
        Ok(_) => model.status = Set(BillingRunStatus::Completed),
        Err(error) => {
            model.status = Set(BillingRunStatus::Failed);
            model.last_error = Set(Some(error.to_string()));
        }
    }
    let w = Write::begin(domain).await?;
    model.update(w.db()).await?;
    w.commit(Audit::action(actor, "runBilling", "billing_run", run_id, details)).await?;
    result
}

async fn bill(domain: &Domain, period: Period, run_id: Option<i64>, now: DateTime<Utc>) -> Result<RunSummary> {
    let label = period.label();
    let settings = domain.billing;
    let frozen = drafts::customers_with_closed_invoices(&domain.db, &label).await?;
    let mut summary = RunSummary { period: label.clone(), ..RunSummary::default() };
    let mut after = 0_i64;
    loop {
        let batch = subscription::Entity::find()
            .filter(subscription::Column::Id.gt(after))
            .filter(subscription::Column::BillingSettled.eq(false))
            .filter(subscription::Column::CreatedAt.lt(plan_cutoff(period)))
            .order_by_asc(subscription::Column::Id)
            .limit(BATCH)
            .all(&domain.db)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        summary.subscriptions += batch.len();
        let batch: Vec<_> = batch.into_iter().filter(|s| !frozen.contains(&s.customer_id)).collect();
        let mut attempt = 0;
        let (written, settleable) = loop {
            attempt += 1;
            let (planned, ended, unbillable) = plan_batch(domain, &batch, period, settings).await?;
            if attempt == 1 {
                summary.unbillable.extend(unbillable);
            }
            match write_charges(domain, &batch, &planned, &label, run_id, now).await {
                Err(Error::Conflict { reason: "STALE_PLAN", .. }) if attempt < 5 => continue,
                other => break (other?, ended),
            }
        };
        summary.charges_created += written;
        settle(domain, &settleable).await?;
    }
    // Best effort: fresh statistics keep gathering fast; without them it is slower, not wrong.
    if summary.charges_created > 0
        && let Err(error) = crate::domain::write::analyze(domain, crate::domain::write::Analyzed::Charges).await
    {
        tracing::warn!(%error, "could not refresh the planner's statistics of charges");
    }
    let gathered = drafts::invoice_period(domain, &label, run_id, now).await?;
    summary.invoices_touched = gathered.touched;
    summary.missing_exchange_rates = gathered.missing_rates.into_iter().collect();
    summary.unbillable.extend(gathered.unbillable);
    Ok(summary)
}

/// What the next run of `period` would charge each of `subscription_ids` and has not yet
/// (its plan, written nowhere): reconciliation counts it as billed — a change made after a
/// run is lag, not leakage.
pub async fn pending_charges(
    domain: &Domain,
    subscription_ids: &[i64],
    period: Period,
) -> Result<HashMap<i64, Vec<PlannedCharge>>> {
    let mut pending = HashMap::new();
    for ids in subscription_ids.chunks(BATCH as usize) {
        let batch = subscription::Entity::find()
            .filter(subscription::Column::Id.is_in(ids.iter().copied()))
            .order_by_asc(subscription::Column::Id)
            .all(&domain.db)
            .await?;
        let (planned, _, _) = plan_batch(domain, &batch, period, domain.billing).await?;
        pending.extend(planned.into_iter().map(|(id, (lines, _))| (id, lines)));
    }
    Ok(pending)
}

/// A batch's plan: per subscription, its lines and, per usage line, its key and records.
type Planned = HashMap<i64, (Vec<PlannedCharge>, Vec<(String, Vec<i64>)>)>;

/// Usage is billed in arrears: the run for a period bills usage that occurred before it.
fn usage_cutoff(period: Period) -> DateTime<Utc> {
    chrono::TimeZone::from_utc_datetime(&Utc, &period.start.and_time(chrono::NaiveTime::MIN))
}

/// Subscriptions created before the period ends may have charges in it.
fn plan_cutoff(period: Period) -> DateTime<Utc> {
    chrono::TimeZone::from_utc_datetime(&Utc, &period.end().and_time(chrono::NaiveTime::MIN))
}

/// Plans the charges of a batch of subscriptions: three statements for the whole batch.
/// Also names the subscriptions this plan bills through their end (ended, every change
/// before the period's end): once written, only late usage could bill them again.
async fn plan_batch(
    domain: &Domain,
    batch: &[subscription::Model],
    period: Period,
    settings: BillingSettings,
) -> Result<(Planned, Vec<i64>, Vec<String>)> {
    let ids: Vec<i64> = batch.iter().map(|s| s.id).collect();
    let changes = subscription_change::Entity::find()
        .filter(subscription_change::Column::SubscriptionId.is_in(ids.clone()))
        .order_by_asc(subscription_change::Column::OccurredAt)
        .order_by_asc(subscription_change::Column::Id)
        .all(&domain.db)
        .await?;
    let mut history: HashMap<i64, Vec<subscription_change::Model>> = HashMap::new();
    for change in changes {
        history.entry(change.subscription_id).or_default().push(change);
    }
    let keys: Vec<(i64, String)> = charge::Entity::find()
        .select_only()
        .column(charge::Column::SubscriptionId)
        .column(charge::Column::ChargeKey)
        .filter(charge::Column::SubscriptionId.is_in(ids.clone()))
        .into_tuple()
        .all(&domain.db)
        .await?;
    let mut charged: HashMap<i64, HashSet<String>> = HashMap::new();
    for (id, key) in keys {
        charged.entry(id).or_default().insert(key);
    }
    let usage = usage_record::Entity::find()
        .filter(usage_record::Column::SubscriptionId.is_in(ids))
        .filter(usage_record::Column::BilledPeriod.is_null())
        .filter(usage_record::Column::OccurredAt.lt(usage_cutoff(period)))
        .all(&domain.db)
        .await?;
    let mut usage_by_subscription: HashMap<i64, Vec<usage_record::Model>> = HashMap::new();
    for record in usage {
        usage_by_subscription.entry(record.subscription_id).or_default().push(record);
    }
    let empty = HashSet::new();
    let mut planned = HashMap::new();
    let mut ended = Vec::new();
    let mut unbillable = Vec::new();
    for subscription in batch {
        // Only what the vendor did: no refused change, nothing it has not confirmed yet.
        let recorded = history.get(&subscription.id).map(Vec::as_slice).unwrap_or_default();
        let view = vendor_sync::as_the_vendor_has_it(recorded, true);
        let held_back;
        let subscription = match view.state.filter(|_| view.held) {
            // The row holds the intent; billing reads the subscription as the vendor has it.
            Some((quantity, status)) => {
                held_back = subscription::Model { quantity, status, ..subscription.clone() };
                &held_back
            }
            None => subscription,
        };
        let history_of = view.history.as_slice();
        if let Some(why) = rating::out_of_bounds(subscription, history_of) {
            tracing::warn!(subscription = subscription.id, why, "a subscription cannot be billed");
            unbillable.push(format!("subscription {}: {why}", subscription.id));
            continue;
        }
        let history = history_of;
        let charged = charged.get(&subscription.id).unwrap_or(&empty);
        let mut lines = match plan::plan_subscription(subscription, history, period, charged, settings) {
            Ok(lines) => lines,
            Err(error) => {
                tracing::warn!(subscription = subscription.id, %error, "a subscription cannot be planned");
                unbillable.push(format!("subscription {}: {error}", subscription.id));
                continue;
            }
        };
        // Settled only once planned: a subscription that could not be is tried again.
        if !view.held
            && matches!(
                subscription.status,
                SubscriptionStatus::Cancelled | SubscriptionStatus::Expired | SubscriptionStatus::Failed
            )
            && history_of.iter().all(|c| c.occurred_at < plan_cutoff(period))
        {
            ended.push(subscription.id);
        }
        let mut usage = Vec::new();
        if let Some(records) = usage_by_subscription.get(&subscription.id) {
            let (usage_lines, too_large) = rating::plan_usage(domain, subscription, records, period, charged).await?;
            unbillable.extend(too_large);
            for (line, ids) in usage_lines {
                usage.push((line.key.clone(), ids));
                lines.push(line);
            }
        }
        if !lines.is_empty() {
            planned.insert(subscription.id, (lines, usage));
        }
    }
    Ok((planned, ended, unbillable))
}

/// Marks `ended` subscriptions settled, except those with usage waiting. On PostgreSQL the
/// rows are locked first, so usage recorded meanwhile (which unsettles the row before adding
/// the record) is either seen here or unsettles it after; SQLite serializes writers.
async fn settle(domain: &Domain, ended: &[i64]) -> Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let w = Write::begin(domain).await?;
    if sea_orm::ConnectionTrait::get_database_backend(w.db()) == sea_orm::DbBackend::Postgres {
        subscription::Entity::find()
            .select_only()
            .column(subscription::Column::Id)
            .filter(subscription::Column::Id.is_in(ended.iter().copied()))
            .order_by_asc(subscription::Column::Id)
            .lock_exclusive()
            .into_tuple::<i64>()
            .all(w.db())
            .await?;
    }
    let waiting: HashSet<i64> = usage_record::Entity::find()
        .select_only()
        .column(usage_record::Column::SubscriptionId)
        .filter(usage_record::Column::SubscriptionId.is_in(ended.iter().copied()))
        .filter(usage_record::Column::BilledPeriod.is_null())
        .into_tuple::<i64>()
        .all(w.db())
        .await?
        .into_iter()
        .collect();
    let settled: Vec<i64> = ended.iter().copied().filter(|id| !waiting.contains(id)).collect();
    subscription::Entity::update_many()
        .col_expr(subscription::Column::BillingSettled, sea_orm::sea_query::Expr::value(true))
        .filter(subscription::Column::Id.is_in(settled))
        .filter(subscription::Column::Status.is_in([
            SubscriptionStatus::Cancelled,
            SubscriptionStatus::Expired,
            SubscriptionStatus::Failed,
        ]))
        .exec(w.db())
        .await?;
    w.commit(Audit::Bookkeeping("billing marks ended subscriptions it billed through their end; the run records it"))
        .await?;
    Ok(())
}

/// Writes a batch's planned charges in one transaction; duplicates are skipped by the
/// unique key. Returns how many were written.
async fn write_charges(
    domain: &Domain,
    batch: &[subscription::Model],
    planned: &Planned,
    period: &str,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<usize> {
    if planned.is_empty() {
        return Ok(0);
    }
    let mut models = Vec::new();
    let mut usage_ids = Vec::new();
    for subscription in batch {
        let Some((lines, usage)) = planned.get(&subscription.id) else { continue };
        usage_ids.extend(usage.iter().flat_map(|(_, ids)| ids.iter().copied()));
        for line in lines {
            models.push(charge::ActiveModel {
                id: NotSet,
                subscription_id: Set(subscription.id),
                customer_id: Set(subscription.customer_id),
                reseller_id: Set(subscription.reseller_id),
                vendor_id: Set(subscription.vendor_id),
                offer_id: Set(subscription.offer_id),
                billing_run_id: Set(run_id),
                period: Set(period.to_owned()),
                kind: Set(line.kind),
                charge_key: Set(line.key.clone()),
                description: Set(line.description.clone()),
                quantity: Set(DbDecimal(line.quantity)),
                days_used: Set(line.days_used.and_then(|d| i32::try_from(d).ok())),
                days_in_period: Set(line.days_in_period.and_then(|d| i32::try_from(d).ok())),
                service_start: Set(line.service_start),
                service_end: Set(line.service_end),
                currency: Set(subscription.currency.clone()),
                unit_cost: Set(DbDecimal(line.unit.0)),
                unit_wholesale: Set(DbDecimal(line.unit.1)),
                unit_retail: Set(DbDecimal(line.unit.2)),
                amount_cost: Set(DbDecimal(line.amount.0)),
                amount_wholesale: Set(DbDecimal(line.amount.1)),
                amount_retail: Set(DbDecimal(line.amount.2)),
                created_at: Set(now),
                customer_invoice_id: Set(None),
                reseller_invoice_id: Set(None),
                cycle_unit_cost: Set(Some(DbDecimal(line.cycle_unit.0))),
                cycle_unit_wholesale: Set(Some(DbDecimal(line.cycle_unit.1))),
                cycle_unit_retail: Set(Some(DbDecimal(line.cycle_unit.2))),
                bills_customer: Set(true),
            });
        }
    }
    let w = Write::begin(domain).await?;
    // Claim the usage first (in chunks: a batch may hold more records than a statement may
    // bind parameters). A record another run claimed since this batch was planned means
    // the plan is stale: nothing is kept, and the caller plans the batch again.
    let mut claimed = 0;
    for ids in usage_ids.chunks(USAGE_CHUNK) {
        claimed += usage_record::Entity::update_many()
            .col_expr(usage_record::Column::BilledPeriod, sea_orm::sea_query::Expr::value(period.to_owned()))
            .filter(usage_record::Column::Id.is_in(ids.iter().copied()))
            .filter(usage_record::Column::BilledPeriod.is_null())
            .exec(w.db())
            .await?
            .rows_affected;
    }
    if claimed != u64::try_from(usage_ids.len()).unwrap_or(u64::MAX) {
        w.rollback().await;
        return Err(Error::conflict("STALE_PLAN", "another run billed some of this batch's usage"));
    }
    // A key is charged once per subscription (whatever the period). A plan never holds a
    // key already charged when it was made, so a conflict means a concurrent run charged
    // from another snapshot of the history: mixing its lines with these could lose or double
    // a correction, so nothing is kept and the batch is planned again.
    let mut written = 0;
    for chunk in models.chunks(200) {
        written += charge::Entity::insert_many(chunk.to_vec())
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(w.db())
            .await?;
    }
    if written != u64::try_from(models.len()).unwrap_or(u64::MAX) {
        w.rollback().await;
        return Err(Error::conflict("STALE_PLAN", "another run charged some of this batch since it was planned"));
    }
    // Each usage record names the charge that billed it.
    for (subscription, (_, usage)) in planned {
        for (key, ids) in usage {
            let charge_id: Option<i64> = charge::Entity::find()
                .select_only()
                .column(charge::Column::Id)
                .filter(charge::Column::SubscriptionId.eq(*subscription))
                .filter(charge::Column::ChargeKey.eq(key.clone()))
                .into_tuple()
                .one(w.db())
                .await?;
            for ids in ids.chunks(USAGE_CHUNK) {
                usage_record::Entity::update_many()
                    .col_expr(usage_record::Column::ChargeId, sea_orm::sea_query::Expr::value(charge_id))
                    .filter(usage_record::Column::Id.is_in(ids.iter().copied()))
                    .exec(w.db())
                    .await?;
            }
        }
    }
    w.commit(Audit::Bookkeeping("a billing run's charges; the run's row and its runBilling audit row record it"))
        .await?;
    Ok(usize::try_from(written).unwrap_or(usize::MAX))
}

/// What a customer's invoice for a period will hold after a billing run.
#[derive(Clone, Debug)]
pub struct BillingPreview {
    /// The period (`YYYY-MM`).
    pub period: String,
    /// The customer's currency.
    pub currency: Currency,
    /// The charges: those written already, then those a run would add now.
    pub lines: Vec<charge::Model>,
    /// Subtotal, tax (the customer's rate, the tax policy) and total of the retail amounts.
    pub totals: invoices::Totals,
}

/// What the customer's invoice for `period` will hold after a run: the charges already
/// written for it plus those a run would add now, with the invoice's totals (scoped: the
/// customer, its reseller, the operator).
pub async fn preview_billing(
    domain: &Domain,
    actor: &Actor,
    customer_id: CustomerId,
    period: &str,
) -> Result<BillingPreview> {
    let customer = super::customers::get_customer(&domain.db, actor, customer_id).await?;
    let currency = Currency::parse(&customer.currency, "currency")?;
    let period = Period::parse(period)?;
    let lines = preview_lines(domain, &customer, period).await?;
    // Lines on an issued invoice keep that invoice's rate; the rest go on the draft, which
    // follows the customer's current rate.
    let on_invoices: Vec<i64> = lines.iter().filter_map(|c| c.customer_invoice_id).collect();
    let issued_rates: HashMap<i64, Decimal> = entity::invoice::Entity::find()
        .filter(entity::invoice::Column::Id.is_in(on_invoices))
        .filter(entity::invoice::Column::Status.ne(entity::enums::InvoiceStatus::Draft))
        .all(&domain.db)
        .await?
        .into_iter()
        .map(|i| (i.id, i.tax_rate.0))
        .collect();
    let mut groups: std::collections::BTreeMap<Option<i64>, Vec<Decimal>> = std::collections::BTreeMap::new();
    for line in &lines {
        let issued = line.customer_invoice_id.filter(|id| issued_rates.contains_key(id));
        groups.entry(issued).or_default().push(line.amount_retail.0);
    }
    let mut totals = invoices::Totals { subtotal: Decimal::ZERO, tax: Decimal::ZERO, total: Decimal::ZERO };
    for (invoice, amounts) in groups {
        let rate = invoice.and_then(|id| issued_rates.get(&id).copied()).unwrap_or(customer.tax_rate.0);
        let group = invoices::totals(&amounts, rate, currency, domain.billing.tax);
        totals.subtotal += group.subtotal;
        totals.tax += group.tax;
        totals.total += group.total;
    }
    Ok(BillingPreview { period: period.label(), currency, lines, totals })
}

/// The charges of [`preview_billing`].
async fn preview_lines(
    domain: &Domain,
    customer: &entity::customer::Model,
    period: Period,
) -> Result<Vec<charge::Model>> {
    let label = period.label();
    let now = domain.clock.now();
    // The charges of this period or earlier that are on one of this period's invoices, or on
    // no live customer invoice yet (a run gathers those onto this period's draft).
    let period_invoices: Vec<i64> = entity::invoice::Entity::find()
        .select_only()
        .column(entity::invoice::Column::Id)
        .filter(entity::invoice::Column::RecipientCustomerId.eq(customer.id))
        .filter(entity::invoice::Column::Period.eq(label.clone()))
        .into_tuple()
        .all(&domain.db)
        .await?;
    let gathered = sea_orm::Condition::any()
        .add(charge::Column::CustomerInvoiceId.is_null())
        .add(charge::Column::CustomerInvoiceId.is_in(period_invoices));
    let mut lines = charge::Entity::find()
        .filter(charge::Column::CustomerId.eq(customer.id))
        .filter(charge::Column::Period.lte(label.clone()))
        .filter(charge::Column::BillsCustomer.eq(true))
        .filter(gathered)
        .order_by_asc(charge::Column::Id)
        .all(&domain.db)
        .await?;
    if drafts::customers_with_closed_invoices(&domain.db, &label).await?.contains(&customer.id) {
        return Ok(lines);
    }
    let subscriptions = subscription::Entity::find()
        .filter(subscription::Column::CustomerId.eq(customer.id))
        .filter(subscription::Column::CreatedAt.lt(plan_cutoff(period)))
        .order_by_asc(subscription::Column::Id)
        .all(&domain.db)
        .await?;
    let (planned, _, _) = plan_batch(domain, &subscriptions, period, domain.billing).await?;
    for subscription in &subscriptions {
        let Some((planned, _)) = planned.get(&subscription.id) else { continue };
        for line in planned {
            lines.push(charge::Model {
                id: 0,
                subscription_id: subscription.id,
                customer_id: subscription.customer_id,
                reseller_id: subscription.reseller_id,
                vendor_id: subscription.vendor_id,
                offer_id: subscription.offer_id,
                billing_run_id: None,
                period: label.clone(),
                kind: line.kind,
                charge_key: line.key.clone(),
                description: line.description.clone(),
                quantity: DbDecimal(line.quantity),
                days_used: line.days_used.and_then(|d| i32::try_from(d).ok()),
                days_in_period: line.days_in_period.and_then(|d| i32::try_from(d).ok()),
                service_start: line.service_start,
                service_end: line.service_end,
                currency: subscription.currency.clone(),
                unit_cost: DbDecimal(line.unit.0),
                unit_wholesale: DbDecimal(line.unit.1),
                unit_retail: DbDecimal(line.unit.2),
                amount_cost: DbDecimal(line.amount.0),
                amount_wholesale: DbDecimal(line.amount.1),
                amount_retail: DbDecimal(line.amount.2),
                created_at: now,
                customer_invoice_id: None,
                reseller_invoice_id: None,
                cycle_unit_cost: Some(DbDecimal(line.cycle_unit.0)),
                cycle_unit_wholesale: Some(DbDecimal(line.cycle_unit.1)),
                cycle_unit_retail: Some(DbDecimal(line.cycle_unit.2)),
                bills_customer: true,
            });
        }
    }
    Ok(lines)
}
