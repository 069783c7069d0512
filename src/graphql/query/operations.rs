//! What the operations dashboard reads about the machinery (operator): the job queue's
//! health, jobs finished per minute by outcome, and the billing runs.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::operations;
use crate::graphql::types::enums::{BillingRunStatus, JobKind, JobStatus};
use crate::graphql::{ResultExt, actor, domain};

/// Open jobs of one kind in one status.
#[derive(SimpleObject)]
pub struct QueueCount {
    pub kind: JobKind,
    pub status: JobStatus,
    pub count: i64,
}

/// The job queue at a glance.
#[derive(SimpleObject)]
pub struct QueueHealth {
    /// Jobs not finished for good (QUEUED, RUNNING, INQUIRE, DEAD) by kind and status; a
    /// pair with none is left out. DEAD jobs wait for the operator: `provisioningJobs(status:
    /// DEAD)` lists them, `retryProvisioning` runs one again.
    pub counts: Vec<QueueCount>,
    /// How long the job that has waited longest for a worker has been due, in seconds
    /// (null: no job is waiting).
    pub oldest_waiting_seconds: Option<i64>,
    /// When this was read (the server's clock).
    pub read_at: DateTime<Utc>,
}

/// Jobs that finished in one minute, by outcome.
#[derive(SimpleObject)]
pub struct JobMinute {
    /// The minute's start (UTC).
    pub minute: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub dead: i64,
}

/// A billing run: `runBilling` for one period.
#[derive(SimpleObject)]
pub struct BillingRun {
    pub id: ID,
    /// `YYYY-MM`.
    pub period: String,
    pub status: BillingRunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why a FAILED run failed.
    pub last_error: Option<String>,
}

#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// The job queue's open jobs by kind and status, and the longest wait (operator).
    async fn queue_health(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueHealth> {
        let health = operations::queue_health(domain(ctx), actor(ctx)?).await.gql()?;
        Ok(QueueHealth {
            counts: health
                .counts
                .into_iter()
                .map(|c| QueueCount { kind: c.kind.into(), status: c.status.into(), count: c.count })
                .collect(),
            oldest_waiting_seconds: health.oldest_wait_seconds,
            read_at: health.now,
        })
    }

    /// Jobs finished per minute by outcome over the last `minutes` (1 to 1,440), the current
    /// minute last; minutes with none are there with zeros (operator).
    async fn job_throughput(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 60)] minutes: i32,
    ) -> async_graphql::Result<Vec<JobMinute>> {
        let minutes = u32::try_from(minutes).unwrap_or(0);
        let series = operations::job_throughput(domain(ctx), actor(ctx)?, minutes).await.gql()?;
        Ok(series
            .into_iter()
            .map(|m| JobMinute { minute: m.minute, succeeded: m.succeeded, failed: m.failed, dead: m.dead })
            .collect())
    }

    /// The last `first` (at most 100) billing runs, newest first (operator).
    async fn billing_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<BillingRun>> {
        let first = u64::try_from(first).unwrap_or(1);
        let runs = operations::billing_runs(domain(ctx), actor(ctx)?, first).await.gql()?;
        Ok(runs
            .into_iter()
            .map(|run| BillingRun {
                id: ID(run.id.to_string()),
                period: run.period,
                status: run.status.into(),
                started_at: run.started_at,
                finished_at: run.finished_at,
                last_error: run.last_error,
            })
            .collect())
    }
}
