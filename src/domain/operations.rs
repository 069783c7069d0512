//! What the operations dashboard reads about the machinery rather than the business, for the
//! operator only: the job queue's health, the jobs finished per minute by outcome, and the
//! billing runs.
//!
//! Each read is bounded whatever the size of the tables: the open jobs are counted through the
//! claim index (`status, run_after`), finished ones through `idx_jobs_finished` over a window
//! of at most a day, and billing runs are read newest first, a page at a time.

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use entity::enums::{JobKind, JobStatus};
use entity::{billing_run, job};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement};

use super::error::{Error, Result};
use super::scopes::Scope;
use super::{Actor, Domain};

/// Jobs of one kind in one open status (waiting, running, or needing a person).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueCount {
    pub kind: JobKind,
    pub status: JobStatus,
    pub count: i64,
}

/// The queue at a glance.
#[derive(Clone, Debug)]
pub struct QueueHealth {
    /// Open jobs (QUEUED, RUNNING, INQUIRE, DEAD) by kind and status; a pair with none is absent.
    pub counts: Vec<QueueCount>,
    /// How long the job that has waited longest for a worker has been due, in seconds
    /// (None: none is waiting).
    pub oldest_wait_seconds: Option<i64>,
    /// The clock's now, to tell the wait from.
    pub now: DateTime<Utc>,
}

/// The statuses a job holds while it is not finished for good (DEAD waits for a person).
const OPEN: [JobStatus; 4] = [JobStatus::Queued, JobStatus::Running, JobStatus::Inquire, JobStatus::Dead];

/// The queue's open jobs by kind and status, and the oldest wait (operator).
pub async fn queue_health(domain: &Domain, actor: &Actor) -> Result<QueueHealth> {
    actor.require_operator()?;
    actor.require_scope(Scope::SubscriptionsWrite, "reading the job queue")?;
    let now = domain.clock.now();
    let counts: Vec<(JobKind, JobStatus, i64)> = job::Entity::find()
        .select_only()
        .column(job::Column::Kind)
        .column(job::Column::Status)
        .column_as(job::Column::Id.count(), "count")
        .filter(job::Column::Status.is_in(OPEN))
        .group_by(job::Column::Kind)
        .group_by(job::Column::Status)
        .into_tuple()
        .all(&domain.db)
        .await?;
    let mut counts: Vec<QueueCount> =
        counts.into_iter().map(|(kind, status, count)| QueueCount { kind, status, count }).collect();
    counts.sort_by_key(|c| (c.kind as u8, c.status as u8));
    let oldest_due: Option<DateTime<Utc>> = job::Entity::find()
        .select_only()
        .column(job::Column::RunAfter)
        .filter(job::Column::Status.eq(JobStatus::Queued))
        .filter(job::Column::RunAfter.lte(now))
        .order_by_asc(job::Column::RunAfter)
        .limit(1)
        .into_tuple()
        .one(&domain.db)
        .await?;
    let oldest_wait_seconds = oldest_due.map(|due| (now - due).num_seconds().max(0));
    Ok(QueueHealth { counts, oldest_wait_seconds, now })
}

/// Jobs that finished in one minute, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MinuteOutcomes {
    /// The minute's start (UTC).
    pub minute: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub dead: i64,
}

/// The most minutes `job_throughput` reads back.
pub const MAX_MINUTES: u32 = 24 * 60;

#[derive(FromQueryResult)]
struct FinishedRow {
    minute: String,
    status: String,
    count: i64,
}

/// Jobs finished per minute by outcome over the last `minutes` minutes, the current one
/// included, oldest first; a minute with none is there with zeros (operator).
pub async fn job_throughput(domain: &Domain, actor: &Actor, minutes: u32) -> Result<Vec<MinuteOutcomes>> {
    actor.require_operator()?;
    actor.require_scope(Scope::SubscriptionsWrite, "reading the job queue")?;
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(Error::validation("minutes", format!("must be from 1 to {MAX_MINUTES}")));
    }
    let now = domain.clock.now();
    let this_minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let first = this_minute - Duration::minutes(i64::from(minutes) - 1);
    let backend = domain.db.get_database_backend();
    // The minute as `YYYY-MM-DDTHH:MM` in UTC on either backend.
    let minute = match backend {
        DbBackend::Postgres => "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')",
        _ => "strftime('%Y-%m-%dT%H:%M', finished_at)",
    };
    let placeholder = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let sql = format!(
        "SELECT {minute} AS minute, status, COUNT(*) AS count FROM jobs \
         WHERE finished_at >= {placeholder} AND status IN ('SUCCEEDED', 'FAILED', 'DEAD') GROUP BY 1, 2"
    );
    let rows = FinishedRow::find_by_statement(Statement::from_sql_and_values(backend, sql, [first.into()]))
        .all(&domain.db)
        .await?;
    let mut series: Vec<MinuteOutcomes> = (0..i64::from(minutes))
        .map(|i| MinuteOutcomes { minute: first + Duration::minutes(i), ..Default::default() })
        .collect();
    for row in rows {
        let Ok(at) = chrono::NaiveDateTime::parse_from_str(&format!("{}:00", row.minute), "%Y-%m-%dT%H:%M:%S") else {
            continue;
        };
        let offset = usize::try_from((at.and_utc() - first).num_minutes()).ok();
        let Some(slot) = offset.and_then(|i| series.get_mut(i)) else { continue };
        match row.status.as_str() {
            "SUCCEEDED" => slot.succeeded += row.count,
            "FAILED" => slot.failed += row.count,
            _ => slot.dead += row.count,
        }
    }
    Ok(series)
}

/// The billing runs, newest first (operator).
pub async fn billing_runs(domain: &Domain, actor: &Actor, first: u64) -> Result<Vec<billing_run::Model>> {
    actor.require_operator()?;
    actor.require_scope(Scope::BillingRead, "reading billing runs")?;
    Ok(billing_run::Entity::find()
        .order_by_desc(billing_run::Column::StartedAt)
        .order_by_desc(billing_run::Column::Id)
        .limit(first.clamp(1, 100))
        .all(&domain.db)
        .await?)
}
