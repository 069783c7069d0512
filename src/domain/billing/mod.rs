//! Billing: runs that turn subscriptions and usage into charges and two tiers of invoices.
//!
//! A run for a period (a calendar month, UTC) plans each subscription's charges from its
//! history (`plan`), writes them with `ON CONFLICT DO NOTHING` on the unique (subscription,
//! key) — so running a period twice, twice at once, or again after a crash adds
//! nothing — and then gathers uninvoiced charges onto DRAFT invoices: one per customer from
//! its reseller at retail prices, and one per reseller from the operator at wholesale
//! prices, itemised by customer. The operator's cost stays on every charge, per vendor, for
//! margin and reconciliation.

mod corrections;
pub mod draft_totals;
pub mod drafts;
mod gather;
pub mod invoices;
pub mod issuing;
pub mod margins;
pub mod plan;
mod preview;
pub mod proration;
mod rating;
pub mod terms;
pub mod usage;

pub use preview::{BillingPreview, preview_billing};

use crate::domain::write::{Audit, Write};
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::enums::{BillingRunStatus, SubscriptionStatus};
use entity::{DbDecimal, billing_run, charge, subscription, subscription_change, usage_record};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use self::plan::{BillingSettings, Period, PlannedCharge};
use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result};
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
    let frozen = drafts::customers_with_closed_invoices(&domain.db, &label).await?;
    let mut summary = RunSummary { period: label.clone(), ..RunSummary::default() };
    let mut next = prepare(domain, period, &frozen, 0).await?;
    while let Some(current) = next {
        summary.subscriptions += current.read;
        summary.unbillable.extend(current.unbillable.iter().cloned());
        // This batch's charges are written while the next batch is read and planned.
        let (written, following) = tokio::join!(
            write_prepared(domain, &current, period, run_id, now),
            prepare(domain, period, &frozen, current.last)
        );
        let (written, ended) = written?;
        summary.charges_created += written;
        next = following?;
        settle(domain, &ended).await?;
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

/// A batch of subscriptions read and planned: those after `last` come next.
struct Prepared {
    batch: Vec<subscription::Model>,
    /// Subscriptions read (the batch less those whose period is closed).
    read: usize,
    last: i64,
    planned: Planned,
    ended: Vec<i64>,
    unbillable: Vec<String>,
}

/// Reads the batch of subscriptions after id `after` that may have charges in `period` and
/// plans it; None when there are no more.
async fn prepare(domain: &Domain, period: Period, frozen: &HashSet<i64>, after: i64) -> Result<Option<Prepared>> {
    let batch = subscription::Entity::find()
        .filter(subscription::Column::Id.gt(after))
        .filter(subscription::Column::BillingSettled.eq(false))
        .filter(subscription::Column::CreatedAt.lt(plan_cutoff(period)))
        .order_by_asc(subscription::Column::Id)
        .limit(BATCH)
        .all(&domain.db)
        .await?;
    let Some(last) = batch.last().map(|s| s.id) else { return Ok(None) };
    let read = batch.len();
    let batch: Vec<_> = batch.into_iter().filter(|s| !frozen.contains(&s.customer_id)).collect();
    let (planned, ended, unbillable) = plan_batch(domain, &batch, period, domain.billing).await?;
    Ok(Some(Prepared { batch, read, last, planned, ended, unbillable }))
}

/// Writes a prepared batch's charges; if another run charged or claimed some of it since it
/// was planned, plans it again and retries (five times at most). Returns how many it wrote
/// and the subscriptions the plan it wrote bills through their end.
async fn write_prepared(
    domain: &Domain,
    prepared: &Prepared,
    period: Period,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<i64>)> {
    let label = period.label();
    let mut replanned: Option<(Planned, Vec<i64>)> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (planned, ended) = match &replanned {
            Some((planned, ended)) => (planned, ended),
            None => (&prepared.planned, &prepared.ended),
        };
        match write_charges(domain, &prepared.batch, planned, &label, run_id, now).await {
            Err(Error::Conflict { reason: "STALE_PLAN", .. }) if attempt < 5 => {
                let (planned, ended, _) = plan_batch(domain, &prepared.batch, period, domain.billing).await?;
                replanned = Some((planned, ended));
            }
            other => return other.map(|written| (written, ended.clone())),
        }
    }
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
    for chunk in models.chunks(crate::domain::write::rows_per_statement(w.db(), 29)) {
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
