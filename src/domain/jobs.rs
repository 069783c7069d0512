//! The durable job queue: enqueueing in the writer's transaction, claiming under a lease,
//! settling with the lease token, retrying with backoff, DEAD jobs and operator retries.
//!
//! It knows nothing of what a job does: a worker runs the job and [`settle`] records the
//! attempt on the job row; what the outcome means for the business (a subscription, an
//! order line, events) is the job kind's own module (`fulfilment` for provisioning), in the
//! same transaction.
//!
//! Claiming is one atomic statement. On PostgreSQL the candidate row is picked with
//! `FOR UPDATE SKIP LOCKED`, so workers in any number of processes never claim the same job;
//! on SQLite the statement runs under the database's single write lock. A worker renews its
//! lease while the job runs (a heartbeat), so a slow vendor call is never run twice at once.
//! A job whose lease ran out (its worker died) is claimable again, and that claim counts as
//! an attempt; past the last attempt it is DEAD without another call. The worker that lost
//! the lease cannot settle it, because settling matches the lease token.
//!
//! Every job has a kind and may have an ordering key (jobs of one subject: a subscription):
//! jobs of one key run one at a time, in the order they were made.
//! A job is a vendor provisioning call, whose subject columns (subscription, order, vendor,
//! action) say what it acts on, or a webhook delivery (`webhooks::deliveries`), with its
//! own number of tries and schedule.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use entity::enums::{JobKind, JobStatus};
use entity::job;
use rand::Rng;
use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    Set, Statement,
};

use super::Domain;
use super::error::{Error, Result};
use super::ids::JobId;
use super::write::{Audit, Write};

/// Lease and retry rules.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// How long a claim lasts.
    pub lease: StdDuration,
    /// Attempts before DEAD.
    pub max_attempts: i32,
    /// First retry delay, doubled per attempt.
    pub backoff: StdDuration,
    /// Longest retry delay.
    pub backoff_max: StdDuration,
    /// How often a worker renews its lease while a job runs (real time).
    pub heartbeat: StdDuration,
    /// The longest delay a vendor's Retry-After may ask for; longer ones are cut to it.
    pub retry_after_max: StdDuration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease: StdDuration::from_secs(60),
            max_attempts: 8,
            backoff: StdDuration::from_secs(2),
            backoff_max: StdDuration::from_secs(600),
            heartbeat: StdDuration::from_secs(20),
            retry_after_max: StdDuration::from_secs(3600),
        }
    }
}

pub use super::new_jobs::{NewJob, ProvisioningSubject};

/// Enqueues a job inside the write, with a fresh request id that stays the same on every
/// retry (vendors and webhook receivers deduplicate on it); the write wakes this process's
/// workers once it commits.
pub async fn enqueue(w: &mut Write<'_>, job: NewJob) -> Result<job::Model> {
    let inserted = super::new_jobs::insert(w.db(), w.now(), w.domain().jobs.max_attempts, job).await?;
    w.wake_workers();
    Ok(inserted)
}

/// A job claimed by one worker, with the token that proves the lease.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The job as claimed (attempts already counted).
    pub job: job::Model,
    /// The lease token; completion must present it.
    pub lease_token: String,
}

/// `kinds` as an SQL list (every kind this build runs, for all: an older process in a
/// mixed-version deployment never claims a kind it cannot decode, which would loop it
/// through leases).
fn runnable_kinds(kinds: &[JobKind]) -> String {
    use sea_orm::ActiveEnum;
    let list: Vec<String> = kinds.iter().map(|kind| format!("'{}'", kind.to_value())).collect();
    if list.is_empty() { "NULL".to_owned() } else { list.join(", ") }
}

/// Every kind of job this build runs.
pub fn all_kinds() -> Vec<JobKind> {
    use sea_orm::Iterable;
    JobKind::iter().collect()
}

/// Jobs of one ordering key (one subscription) run one at a time, in the order they were
/// made: a job waits while another of its key is RUNNING (whatever its id: an operator's
/// retry of an old job keeps its id) or an earlier one is QUEUED; a FAILED or DEAD one
/// waits for the operator and holds nothing back. `idx_jobs_open_by_key` serves it: its
/// predicate is written as the index's, so the planner picks it with no statistics yet (a
/// backlog that built up within a minute), and a check reads that key's open jobs only.
const FIRST_OF_ITS_KEY: &str = "NOT EXISTS (SELECT 1 FROM jobs other \
     WHERE other.ordering_key = jobs.ordering_key AND other.status IN ('QUEUED', 'RUNNING') \
       AND other.id <> jobs.id AND (other.status = 'RUNNING' OR other.id < jobs.id))";

/// The `n`th parameter of a statement on `backend`.
fn param(backend: DbBackend, n: usize) -> String {
    if backend == DbBackend::Postgres { format!("${n}") } else { format!("?{n}") }
}

/// The ids of the jobs a claim at `now` (a parameter) takes, of `kinds` (an SQL list), at
/// most `limit`: of the waiting jobs that are due and of the running ones whose lease ran
/// out, the first due that are first of their ordering key (one job of a key at most: a
/// later one of the same key sees the earlier still QUEUED). The waiting half walks
/// `idx_jobs_due` in order and stops after the first `limit` jobs that qualify, so a claim
/// costs the same with ten jobs waiting or a million; the running half reads the few
/// RUNNING jobs (`idx_jobs_claim`). On PostgreSQL a job another worker is claiming is
/// skipped, not waited for; each half locks the jobs it picks, so a claim holds up to twice
/// `limit` rows for the length of its statement and takes `limit` (a concurrent claim may
/// skip the others and find fewer that time: its worker polls again).
pub fn next_jobs_sql(backend: DbBackend, kinds: &str, now: &str, limit: usize) -> String {
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    format!(
        "SELECT id FROM (\
           SELECT id, run_after FROM (SELECT id, run_after FROM jobs \
             WHERE status = 'QUEUED' AND run_after <= {now} AND kind IN ({kinds}) AND {FIRST_OF_ITS_KEY} \
             ORDER BY run_after, id LIMIT {limit}{lock}) waiting \
           UNION ALL \
           SELECT id, run_after FROM (SELECT id, run_after FROM jobs \
             WHERE status = 'RUNNING' AND locked_until < {now} AND kind IN ({kinds}) AND {FIRST_OF_ITS_KEY} \
             ORDER BY run_after, id LIMIT {limit}{lock}) lapsed\
         ) due ORDER BY run_after, id LIMIT {limit}"
    )
}

/// Claims the next due job of a kind this build runs for `worker`, or `None` when nothing
/// is due (or every due job waits for an earlier one of its ordering key).
pub async fn claim_next_job(domain: &Domain, worker: &str) -> Result<Option<ClaimedJob>> {
    claim_next_job_of(domain, worker, &all_kinds()).await
}

/// As [`claim_next_job`], of `kinds` only (a pool of workers of its own).
pub async fn claim_next_job_of(domain: &Domain, worker: &str, kinds: &[JobKind]) -> Result<Option<ClaimedJob>> {
    Ok(claim_jobs_of(domain, worker, kinds, 1).await?.pop())
}

/// Claims up to `limit` due jobs of `kinds` for `worker` in one statement (see
/// [`next_jobs_sql`]), in the order they are due: each with a lease token of its own (the
/// claim's random token and the job's id: a job's settle matches its own row only; the
/// tokens of one claim share their random part, which never leaves the worker).
pub async fn claim_jobs_of(domain: &Domain, worker: &str, kinds: &[JobKind], limit: usize) -> Result<Vec<ClaimedJob>> {
    let now = domain.clock.now();
    let lease_until = now + Duration::from_std(domain.jobs.lease).unwrap_or(Duration::seconds(60));
    let token = uuid::Uuid::new_v4().simple().to_string();
    let backend = domain.db.get_database_backend();
    // The ids are picked once (a CTE, materialized), then updated: an `IN` over a locking
    // subquery with a LIMIT may be planned to run it more than once.
    let sql = format!(
        "WITH picked AS MATERIALIZED ({}) \
         UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, locked_by = {}, locked_until = {}, \
         lease_token = {} || ':' || CAST(id AS TEXT), updated_at = {} WHERE id IN (SELECT id FROM picked) RETURNING *",
        next_jobs_sql(backend, &runnable_kinds(kinds), &param(backend, 4), limit.max(1)),
        param(backend, 1),
        param(backend, 2),
        param(backend, 3),
        param(backend, 4),
    );
    let values: Vec<sea_orm::Value> = vec![worker.into(), lease_until.into(), token.into(), now.into()];
    let statement = Statement::from_sql_and_values(backend, sql, values);
    let _turn = domain.write_gate.enter().await?;
    let rows = domain.db.query_all_raw(statement).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        // A row this build cannot read is left to its lease (as a claim of it alone would
        // be); it does not take the batch's other jobs down with it.
        match job::Model::from_query_result(row, "") {
            Ok(job) => match job.lease_token.clone() {
                Some(lease_token) => claimed.push(ClaimedJob { job, lease_token }),
                None => tracing::error!(job = job.id, "a claimed job without a lease token is left to its lease"),
            },
            Err(error) => tracing::error!(%error, "a claimed job this build cannot read is left to its lease"),
        }
    }
    claimed.sort_by_key(|claimed| (claimed.job.run_after, claimed.job.id));
    Ok(claimed)
}

/// What the vendor said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the vendor's reference for the subscription, if it sent one.
    Succeeded {
        /// The outside world's id for what the job made (a vendor's subscription id).
        reference: Option<String>,
    },
    /// Try again later (timeout, 5xx, 429); `retry_after` when the vendor said when.
    Transient {
        /// Why.
        error: String,
        /// The vendor's Retry-After, if any.
        retry_after: Option<StdDuration>,
    },
    /// Will never succeed as sent (4xx): fail now with the vendor's message.
    Permanent {
        /// The vendor's message.
        error: String,
    },
    /// The job cannot be handled (its run panicked, or its lease expired on its last
    /// attempt): DEAD now, whatever attempts are left, with the reason.
    Abandoned {
        /// Why.
        error: String,
    },
}

/// The delay before retry `attempt` (1-based): `backoff × 2^(attempt-1)`, capped, with up to
/// 20 % jitter either way so that retries of many jobs spread out.
pub fn backoff_delay(settings: &JobSettings, attempt: i32) -> StdDuration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
    let base = settings.backoff.saturating_mul(1 << exponent).min(settings.backoff_max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    base.mul_f64(jitter).min(settings.backoff_max)
}

/// The delay before the next attempt: a vendor's Retry-After, else our backoff. A
/// Retry-After is kept between our first backoff (`0` must not spend every attempt in a
/// burst) and the cap (any value, however large, is a valid delay).
pub fn retry_delay(settings: &JobSettings, attempt: i32, retry_after: Option<StdDuration>) -> StdDuration {
    retry_after
        .map(|asked| asked.max(settings.backoff).min(settings.retry_after_max.max(settings.backoff)))
        .unwrap_or_else(|| backoff_delay(settings, attempt))
}

/// What settling an attempt did to the job row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The job's new status: SUCCEEDED, QUEUED again (a retry), FAILED or DEAD.
    pub status: JobStatus,
    /// The error the attempt ended with, if any.
    pub error: Option<String>,
    /// The external reference the attempt returned, if any.
    pub reference: Option<String>,
    /// When it runs again, if it was queued again.
    pub run_after: DateTime<Utc>,
}

impl Settled {
    /// Whether the job is over (SUCCEEDED, FAILED or DEAD).
    pub fn finished(&self) -> bool {
        matches!(self.status, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Dead)
    }
}

/// Records an attempt's outcome on the job row inside `w`, if the worker still holds the
/// lease; `None` when the lease was lost (another worker took the job over) and nothing was
/// changed.
pub async fn settle(w: &Write<'_>, claimed: &ClaimedJob, outcome: Outcome) -> Result<Option<Settled>> {
    let settled = settled(w, claimed, &outcome);
    let finished = settled.finished().then_some(w.now());
    let updated = job::Entity::update_many()
        .col_expr(job::Column::Status, settled.status.into_value_expr())
        .col_expr(job::Column::RunAfter, Expr::value(settled.run_after))
        .col_expr(job::Column::LastError, Expr::value(settled.error.clone()))
        .col_expr(job::Column::Reference, Expr::value(settled.reference.clone()))
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(job::Column::LeaseToken, Expr::value(Option::<String>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(w.now()))
        .col_expr(job::Column::FinishedAt, Expr::value(finished))
        .filter(job::Column::Id.eq(claimed.job.id))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LeaseToken.eq(claimed.lease_token.clone()))
        .exec(w.db())
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    Ok(Some(settled))
}

/// [`settle`] for each of `outcomes` in one statement: what each became, `None` where the
/// lease was lost (that row is not changed; the others are).
pub async fn settle_all(w: &Write<'_>, outcomes: &[(&ClaimedJob, Outcome)]) -> Result<Vec<Option<Settled>>> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let now = w.now();
    let all: Vec<Settled> = outcomes.iter().map(|(claimed, outcome)| settled(w, claimed, outcome)).collect();
    // Each column by the job's id; the row only where its lease token still matches.
    let by_id = |value: &dyn Fn(&Settled) -> sea_orm::Value| {
        let mut case = CaseStatement::new();
        for ((claimed, _), settled) in outcomes.iter().zip(&all) {
            case = case.case(job::Column::Id.eq(claimed.job.id), Expr::val(value(settled)));
        }
        let expr: Expr = case.into();
        expr
    };
    let leases = leases_of(outcomes.iter().map(|(claimed, _)| *claimed));
    let kept: std::collections::HashSet<i64> = job::Entity::update_many()
        .col_expr(job::Column::Status, by_id(&|s| sea_orm::ActiveEnum::to_value(&s.status).into()))
        .col_expr(job::Column::RunAfter, by_id(&|s| s.run_after.into()))
        .col_expr(job::Column::LastError, by_id(&|s| s.error.clone().into()))
        .col_expr(job::Column::Reference, by_id(&|s| s.reference.clone().into()))
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(job::Column::LeaseToken, Expr::value(Option::<String>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(job::Column::FinishedAt, by_id(&|s| s.finished().then_some(now).into()))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(leases)
        .exec_with_returning(w.db())
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    Ok(outcomes
        .iter()
        .zip(all)
        .map(|((claimed, _), settled)| kept.contains(&claimed.job.id).then_some(settled))
        .collect())
}

/// Which of `claimed` are still the worker's (RUNNING under its lease token), their rows
/// locked in `w` until it ends: the ids. A job whose lease ran out and another worker took
/// over (and maybe finished) is not among them.
pub async fn leases_held(w: &Write<'_>, claimed: &[&ClaimedJob]) -> Result<std::collections::HashSet<i64>> {
    if claimed.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let select = job::Entity::find()
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(leases_of(claimed.iter().copied()));
    Ok(super::write::locking(select, w.db()).all(w.db()).await?.into_iter().map(|row| row.id).collect())
}

/// The rows of `claimed` under their own lease tokens.
fn leases_of<'a>(claimed: impl Iterator<Item = &'a ClaimedJob>) -> Condition {
    claimed.fold(Condition::any(), |any, claimed| {
        any.add(
            Condition::all()
                .add(job::Column::Id.eq(claimed.job.id))
                .add(job::Column::LeaseToken.eq(claimed.lease_token.clone())),
        )
    })
}

/// What an attempt's `outcome` makes of the job (at the write's time).
fn settled(w: &Write<'_>, claimed: &ClaimedJob, outcome: &Outcome) -> Settled {
    let (domain, now, job) = (w.domain(), w.now(), &claimed.job);
    let (status, run_after, error, reference) = match outcome {
        Outcome::Succeeded { reference } => (JobStatus::Succeeded, job.run_after, None, reference.clone()),
        Outcome::Transient { error, retry_after } if job.attempts < job.max_attempts => {
            let delay = match job.kind {
                JobKind::WebhookDelivery => domain.webhooks.retry_delay(job.attempts, *retry_after),
                JobKind::Provisioning => retry_delay(&domain.jobs, job.attempts, *retry_after),
            };
            let delay = Duration::from_std(delay).unwrap_or(Duration::hours(1));
            let run_after = now.checked_add_signed(delay).unwrap_or(now + Duration::hours(1));
            (JobStatus::Queued, run_after, Some(error.clone()), None)
        }
        Outcome::Transient { error, .. } | Outcome::Abandoned { error } => {
            (JobStatus::Dead, job.run_after, Some(error.clone()), None)
        }
        Outcome::Permanent { error } => (JobStatus::Failed, job.run_after, Some(error.clone()), None),
    };
    Settled { status, error, reference, run_after }
}

/// Extends the lease of a job a worker is still running to `lease` from now; `false` when the
/// lease is no longer the worker's (another worker took the job over after it expired).
pub async fn renew_lease(domain: &Domain, claimed: &ClaimedJob) -> Result<bool> {
    let w = Write::begin(domain).await?;
    let until = w.now() + Duration::from_std(domain.jobs.lease).unwrap_or(Duration::seconds(60));
    let renewed = job::Entity::update_many()
        .col_expr(job::Column::LockedUntil, sea_orm::sea_query::Expr::value(Some(until)))
        .filter(job::Column::Id.eq(claimed.job.id))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LeaseToken.eq(claimed.lease_token.clone()))
        .exec(w.db())
        .await?;
    w.commit(Audit::Bookkeeping("a worker renews the lease of the job it runs")).await?;
    Ok(renewed.rows_affected == 1)
}

trait IntoValueExpr {
    fn into_value_expr(self) -> sea_orm::sea_query::SimpleExpr;
}

impl IntoValueExpr for JobStatus {
    fn into_value_expr(self) -> sea_orm::sea_query::SimpleExpr {
        sea_orm::sea_query::Expr::value(sea_orm::ActiveEnum::to_value(&self))
    }
}

/// Settles a claimed job that cannot run at all (its row lacks what its kind needs) as
/// FAILED with `reason`, so it is not claimed again and again; `false` if the lease was lost.
pub async fn fail_unrunnable(domain: &Domain, claimed: &ClaimedJob, reason: String) -> Result<bool> {
    let why = "a job that cannot run is FAILED; its row keeps the reason";
    settle_row_alone(domain, claimed, Outcome::Permanent { error: reason }, why).await
}

/// Settles a claimed job DEAD with `reason` on the job row alone, when recording its outcome
/// on its subject failed: the job must not stay RUNNING, claimed again after every lease;
/// `false` if the lease was lost.
pub async fn bury(domain: &Domain, claimed: &ClaimedJob, reason: String) -> Result<bool> {
    let why = "a job whose outcome cannot be recorded is DEAD; its row keeps the reason";
    settle_row_alone(domain, claimed, Outcome::Abandoned { error: reason }, why).await
}

/// Settles the job row in a write of its own, touching nothing else.
async fn settle_row_alone(domain: &Domain, claimed: &ClaimedJob, outcome: Outcome, why: &'static str) -> Result<bool> {
    let w = Write::begin(domain).await?;
    if settle(&w, claimed, outcome).await?.is_none() {
        w.rollback().await;
        return Ok(false);
    }
    w.commit(Audit::Bookkeeping(why)).await?;
    Ok(true)
}

/// Releases the jobs still RUNNING under these workers' names (a process shutting down
/// whose calls outlasted its grace period): QUEUED again and due now, so another process
/// takes them at once instead of after their lease. The interrupted attempt is given back
/// (a job on its last attempt must not go DEAD for a shutdown); the retry sends the same
/// request id, so a vendor that had the call answers it once. How many were released.
pub async fn release_held_by(domain: &Domain, workers: &[String]) -> Result<u64> {
    if workers.is_empty() {
        return Ok(0);
    }
    let w = Write::begin(domain).await?;
    let now = w.now();
    let released = job::Entity::update_many()
        .col_expr(job::Column::Status, JobStatus::Queued.into_value_expr())
        .col_expr(
            job::Column::Attempts,
            sea_orm::sea_query::Expr::cust("CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"),
        )
        .col_expr(job::Column::LockedBy, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LockedUntil,
            sea_orm::sea_query::Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(job::Column::LeaseToken, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .col_expr(job::Column::RunAfter, sea_orm::sea_query::Expr::value(now))
        .col_expr(job::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .col_expr(
            job::Column::LastError,
            sea_orm::sea_query::Expr::value("released when its worker's process shut down during the call"),
        )
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LockedBy.is_in(workers.iter().cloned()))
        .exec(w.db())
        .await?
        .rows_affected;
    w.commit(Audit::Bookkeeping("a process shutting down releases the jobs it was running")).await?;
    Ok(released)
}

/// Puts a FAILED or DEAD job back in the queue inside `w`, with fresh attempts and the same
/// request id (the write wakes the workers once it commits); anything else is an invalid
/// transition.
pub async fn requeue(w: &mut Write<'_>, job_id: JobId) -> Result<job::Model> {
    // Locked: a second retry of the same job waits and then finds it QUEUED, not FAILED.
    let job = super::write::locking(job::Entity::find_by_id(job_id), w.db())
        .one(w.db())
        .await?
        .ok_or(Error::NotFound("provisioning job"))?;
    if !matches!(job.status, JobStatus::Failed | JobStatus::Dead) {
        return Err(Error::InvalidTransition(format!(
            "only FAILED or DEAD jobs can be retried; this one is {}",
            job_status_name(job.status)
        )));
    }
    let now = w.now();
    let mut model: job::ActiveModel = job.into();
    model.status = Set(JobStatus::Queued);
    model.attempts = Set(0);
    model.run_after = Set(now);
    model.finished_at = Set(None);
    model.updated_at = Set(now);
    let job = model.update(w.db()).await?;
    w.wake_workers();
    Ok(job)
}

/// The job status's name as the API spells it.
pub fn job_status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "QUEUED",
        JobStatus::Running => "RUNNING",
        JobStatus::Succeeded => "SUCCEEDED",
        JobStatus::Failed => "FAILED",
        JobStatus::Inquire => "INQUIRE",
        JobStatus::Dead => "DEAD",
    }
}

/// How many jobs there are by kind and status, every pair named (0 when none): the `jobs`
/// gauge of the metrics, labelled as the database stores them (`PROVISIONING`, `QUEUED`).
pub async fn queue_depth(domain: &Domain) -> Result<Vec<(String, String, i64)>> {
    use sea_orm::{ActiveEnum, Iterable, QuerySelect};
    let counted: std::collections::HashMap<(JobKind, JobStatus), i64> = job::Entity::find()
        .select_only()
        .column(job::Column::Kind)
        .column(job::Column::Status)
        .column_as(job::Column::Id.count(), "count")
        .group_by(job::Column::Kind)
        .group_by(job::Column::Status)
        .into_tuple::<(JobKind, JobStatus, i64)>()
        .all(&domain.db)
        .await?
        .into_iter()
        .map(|(kind, status, count)| ((kind, status), count))
        .collect();
    Ok(JobKind::iter()
        .flat_map(|kind| JobStatus::iter().map(move |status| (kind, status)))
        .map(|(kind, status)| (kind.to_value(), status.to_value(), counted.get(&(kind, status)).copied().unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor's Retry-After is honoured between the first backoff and the cap: `0` must not
    /// spend every attempt in a burst against a vendor that is already overloaded.
    #[test]
    fn retry_after_is_kept_between_the_first_backoff_and_the_cap() {
        let settings = JobSettings {
            backoff: StdDuration::from_secs(2),
            backoff_max: StdDuration::from_secs(600),
            retry_after_max: StdDuration::from_secs(3600),
            ..JobSettings::default()
        };
        let asked = |seconds: u64| retry_delay(&settings, 1, Some(StdDuration::from_secs(seconds)));
        assert_eq!(asked(0), StdDuration::from_secs(2));
        assert_eq!(asked(30), StdDuration::from_secs(30));
        assert_eq!(asked(u64::MAX), StdDuration::from_secs(3600));
        let own = retry_delay(&settings, 1, None);
        assert!(own >= StdDuration::from_millis(1600) && own <= StdDuration::from_millis(2400), "{own:?}");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let settings = JobSettings {
            backoff: StdDuration::from_secs(10),
            backoff_max: StdDuration::from_secs(100),
            ..JobSettings::default()
        };
        for (attempt, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0)] {
            let delay = backoff_delay(&settings, attempt).as_secs_f64();
            assert!((base * 0.8..=base * 1.2).contains(&delay), "attempt {attempt}: {delay}");
        }
        assert!(backoff_delay(&settings, 30) <= StdDuration::from_secs(100));
    }
}
