//! The durable provisioning queue: enqueueing in the writer's transaction, claiming under a
//! lease, completing with the lease token, retrying with backoff, and DEAD jobs.
//!
//! Claiming is one atomic statement. On PostgreSQL the candidate row is picked with
//! `FOR UPDATE SKIP LOCKED`, so workers in any number of processes never claim the same job;
//! on SQLite the statement runs under the database's single write lock. A job whose lease
//! ran out (its worker died) is claimable again; the worker that lost the lease cannot
//! complete it, because completion matches the lease token.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use entity::enums::{JobStatus, OrderLineStatus, ProvisioningAction, Role, SubscriptionChangeKind, SubscriptionStatus};
use entity::{provisioning_job, subscription};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    NotSet, QueryFilter, Set, Statement,
};
use serde_json::json;

use super::actor::Actor;
use super::error::{Error, Result};
use super::events::{DomainEvent, EventKind};
use super::lifecycle::{Transition, next_status, status_name};
use super::{Domain, audit, orders, subscriptions};

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
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease: StdDuration::from_secs(60),
            max_attempts: 8,
            backoff: StdDuration::from_secs(2),
            backoff_max: StdDuration::from_secs(600),
        }
    }
}

/// A job to enqueue.
pub struct NewJob<'a> {
    /// The subscription it acts on.
    pub subscription: &'a subscription::Model,
    /// The vendor action.
    pub action: ProvisioningAction,
    /// What the connector sends.
    pub payload: serde_json::Value,
}

/// Enqueues a job inside the caller's transaction, with a fresh request id that stays the
/// same on every retry (vendors deduplicate on it).
pub async fn enqueue(
    domain: &Domain,
    txn: &DatabaseTransaction,
    job: NewJob<'_>,
    now: DateTime<Utc>,
) -> Result<provisioning_job::Model> {
    Ok(provisioning_job::ActiveModel {
        id: NotSet,
        subscription_id: Set(job.subscription.id),
        order_id: Set(job.subscription.order_id),
        vendor_id: Set(job.subscription.vendor_id),
        action: Set(job.action),
        payload: Set(job.payload),
        request_id: Set(uuid::Uuid::new_v4().to_string()),
        status: Set(JobStatus::Queued),
        attempts: Set(0),
        max_attempts: Set(domain.jobs.max_attempts),
        run_after: Set(now),
        locked_by: Set(None),
        locked_until: Set(None),
        lease_token: Set(None),
        last_error: Set(None),
        vendor_reference: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
    .insert(txn)
    .await?)
}

/// A job claimed by one worker, with the token that proves the lease.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The job as claimed (attempts already counted).
    pub job: provisioning_job::Model,
    /// The lease token; completion must present it.
    pub lease_token: String,
}

/// Claims the next due job for `worker`, or `None` when nothing is due.
pub async fn claim_next_job(domain: &Domain, worker: &str) -> Result<Option<ClaimedJob>> {
    let now = domain.clock.now();
    let lease_until = now + Duration::from_std(domain.jobs.lease).unwrap_or(Duration::seconds(60));
    let token = uuid::Uuid::new_v4().to_string();
    let backend = domain.db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match backend {
        DbBackend::Postgres => (
            "UPDATE provisioning_jobs SET status = 'RUNNING', attempts = attempts + 1, locked_by = $1, \
             locked_until = $2, lease_token = $3, updated_at = $4 \
             WHERE id = (SELECT id FROM provisioning_jobs \
                         WHERE (status = 'QUEUED' AND run_after <= $4) OR (status = 'RUNNING' AND locked_until < $4) \
                         ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
            vec![worker.into(), lease_until.into(), token.clone().into(), now.into()],
        ),
        _ => (
            "UPDATE provisioning_jobs SET status = 'RUNNING', attempts = attempts + 1, locked_by = ?1, \
             locked_until = ?2, lease_token = ?3, updated_at = ?4 \
             WHERE id = (SELECT id FROM provisioning_jobs \
                         WHERE (status = 'QUEUED' AND run_after <= ?4) OR (status = 'RUNNING' AND locked_until < ?4) \
                         ORDER BY run_after, id LIMIT 1) \
             RETURNING *",
            vec![worker.into(), lease_until.into(), token.clone().into(), now.into()],
        ),
    };
    let statement = Statement::from_sql_and_values(backend, sql, values);
    let Some(row) = domain.db.query_one_raw(statement).await? else { return Ok(None) };
    let job = provisioning_job::Model::from_query_result(&row, "")?;
    Ok(Some(ClaimedJob { job, lease_token: token }))
}

/// What the vendor said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the vendor's reference for the subscription, if it sent one.
    Succeeded {
        /// The vendor's id for the subscription.
        vendor_reference: Option<String>,
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
}

/// The delay before retry `attempt` (1-based): `backoff × 2^(attempt-1)`, capped, with up to
/// 20 % jitter either way so that retries of many jobs spread out.
pub fn backoff_delay(settings: &JobSettings, attempt: i32) -> StdDuration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
    let base = settings.backoff.saturating_mul(1 << exponent).min(settings.backoff_max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    base.mul_f64(jitter).min(settings.backoff_max)
}

/// Records a worker's outcome, if it still holds the lease; `false` when the lease was lost
/// (another worker took the job over), in which case nothing is changed.
pub async fn complete_job(domain: &Domain, claimed: &ClaimedJob, outcome: Outcome) -> Result<bool> {
    let now = domain.clock.now();
    let job = &claimed.job;
    let (status, run_after, error, reference) = match &outcome {
        Outcome::Succeeded { vendor_reference } => {
            (JobStatus::Succeeded, job.run_after, None, vendor_reference.clone())
        }
        Outcome::Transient { error, retry_after } if job.attempts < job.max_attempts => {
            let delay = retry_after.unwrap_or_else(|| backoff_delay(&domain.jobs, job.attempts));
            let delay = Duration::from_std(delay).unwrap_or(Duration::seconds(60));
            (JobStatus::Queued, now + delay, Some(error.clone()), None)
        }
        Outcome::Transient { error, .. } => (JobStatus::Dead, job.run_after, Some(error.clone()), None),
        Outcome::Permanent { error } => (JobStatus::Failed, job.run_after, Some(error.clone()), None),
    };
    let txn = super::begin_write(&domain.db).await?;
    let finished = matches!(status, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Dead);
    let updated = provisioning_job::Entity::update_many()
        .col_expr(provisioning_job::Column::Status, status.into_value_expr())
        .col_expr(provisioning_job::Column::RunAfter, sea_orm::sea_query::Expr::value(run_after))
        .col_expr(provisioning_job::Column::LastError, sea_orm::sea_query::Expr::value(error.clone()))
        .col_expr(provisioning_job::Column::VendorReference, sea_orm::sea_query::Expr::value(reference.clone()))
        .col_expr(provisioning_job::Column::LockedBy, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .col_expr(provisioning_job::Column::LockedUntil, sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(provisioning_job::Column::LeaseToken, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .col_expr(provisioning_job::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .col_expr(provisioning_job::Column::FinishedAt, sea_orm::sea_query::Expr::value(finished.then_some(now)))
        .filter(provisioning_job::Column::Id.eq(job.id))
        .filter(provisioning_job::Column::Status.eq(JobStatus::Running))
        .filter(provisioning_job::Column::LeaseToken.eq(claimed.lease_token.clone()))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        txn.rollback().await.ok();
        return Ok(false);
    }
    let events = apply_to_subscription(&txn, job, status, reference, error, now).await?;
    for event in &events {
        domain.events.record(&txn, event).await?;
    }
    txn.commit().await?;
    domain.events.after_commit(events);
    Ok(true)
}

trait IntoValueExpr {
    fn into_value_expr(self) -> sea_orm::sea_query::SimpleExpr;
}

impl IntoValueExpr for JobStatus {
    fn into_value_expr(self) -> sea_orm::sea_query::SimpleExpr {
        sea_orm::sea_query::Expr::value(sea_orm::ActiveEnum::to_value(&self))
    }
}

/// Marks a job RUNNING in the subscription's eyes (PENDING → PROVISIONING for a purchase)
/// and announces it. Called by a worker right after it claimed the job.
pub async fn mark_started(domain: &Domain, claimed: &ClaimedJob) -> Result<()> {
    let now = domain.clock.now();
    let job = &claimed.job;
    let txn = super::begin_write(&domain.db).await?;
    let events = apply_to_subscription(&txn, job, JobStatus::Running, None, None, now).await?;
    for event in &events {
        domain.events.record(&txn, event).await?;
    }
    txn.commit().await?;
    domain.events.after_commit(events);
    Ok(())
}

/// Moves the subscription and order line after a job changed state; returns the events.
async fn apply_to_subscription(
    txn: &DatabaseTransaction,
    job: &provisioning_job::Model,
    status: JobStatus,
    reference: Option<String>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>> {
    let current =
        subscription::Entity::find_by_id(job.subscription_id).one(txn).await?.ok_or(Error::NotFound("subscription"))?;
    let is_purchase = job.action == ProvisioningAction::Purchase;
    let transition = match (is_purchase, status) {
        (true, JobStatus::Running) if current.status != SubscriptionStatus::Provisioning => {
            Some(Transition::StartProvisioning)
        }
        (true, JobStatus::Succeeded) => Some(Transition::ProvisioningSucceeded),
        (true, JobStatus::Failed | JobStatus::Dead) => Some(Transition::ProvisioningFailed),
        _ => None,
    };
    let before = current.status;
    let after = match transition {
        Some(transition) => next_status(before, transition).unwrap_or(before),
        None => before,
    };
    let mut events = Vec::new();
    if after != before || reference.is_some() {
        let mut model: subscription::ActiveModel = current.clone().into();
        model.status = Set(after);
        if reference.is_some() {
            model.vendor_reference = Set(reference);
        }
        model.updated_at = Set(now);
        let updated = model.update(txn).await?;
        if after != before {
            let kind = match after {
                SubscriptionStatus::Active => SubscriptionChangeKind::Provisioned,
                SubscriptionStatus::Failed => SubscriptionChangeKind::ProvisioningFailed,
                _ => SubscriptionChangeKind::Provisioned,
            };
            if after != SubscriptionStatus::Provisioning {
                let system = Actor::system();
                subscriptions::record_change(
                    txn,
                    &updated,
                    &system,
                    kind,
                    (updated.quantity, updated.quantity),
                    (before, after),
                    None,
                    now,
                )
                .await?;
            }
            events.push(subscriptions::changed_event(&updated, now));
        }
    }
    let event_status = if is_purchase { status_name(after).to_owned() } else { job_status_name(status).to_owned() };
    events.push(DomainEvent {
        vendor_id: Some(current.vendor_id),
        reseller_id: Some(current.reseller_id),
        customer_id: Some(current.customer_id),
        order_id: job.order_id.filter(|_| is_purchase),
        subscription_id: Some(current.id),
        job_id: Some(job.id),
        quantity: Some(current.quantity),
        detail: error,
        ..DomainEvent::new(EventKind::ProvisioningStatusChanged, event_status, now)
    });
    if let (true, Some(order_id), Some(line_status)) = (is_purchase, job.order_id, orders::line_status_for(status))
        && let Some(event) = orders::update_line_status(txn, order_id, current.id, line_status, now).await?
    {
        events.push(event);
    }
    Ok(events)
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

/// Puts a FAILED or DEAD job back in the queue (operator only), with fresh attempts and the
/// same request id. A failed purchase goes back to PENDING.
pub async fn retry_job(domain: &Domain, actor: &Actor, job_id: i64) -> Result<provisioning_job::Model> {
    actor.require_operator()?;
    let now = domain.clock.now();
    let txn = super::begin_write(&domain.db).await?;
    let job =
        provisioning_job::Entity::find_by_id(job_id).one(&txn).await?.ok_or(Error::NotFound("provisioning job"))?;
    if !matches!(job.status, JobStatus::Failed | JobStatus::Dead) {
        return Err(Error::InvalidTransition(format!(
            "only FAILED or DEAD jobs can be retried; this one is {}",
            job_status_name(job.status)
        )));
    }
    let mut events = Vec::new();
    if job.action == ProvisioningAction::Purchase {
        let sub = subscription::Entity::find_by_id(job.subscription_id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        if sub.status == SubscriptionStatus::Failed {
            let mut model: subscription::ActiveModel = sub.into();
            model.status = Set(next_status(SubscriptionStatus::Failed, Transition::RetryProvisioning)?);
            model.updated_at = Set(now);
            let updated = model.update(&txn).await?;
            events.push(subscriptions::changed_event(&updated, now));
            if let Some(order_id) = job.order_id
                && let Some(event) =
                    orders::update_line_status(&txn, order_id, updated.id, OrderLineStatus::Pending, now).await?
            {
                events.push(event);
            }
        }
    }
    let mut model: provisioning_job::ActiveModel = job.into();
    model.status = Set(JobStatus::Queued);
    model.attempts = Set(0);
    model.run_after = Set(now);
    model.finished_at = Set(None);
    model.updated_at = Set(now);
    let job = model.update(&txn).await?;
    audit::record(&txn, actor, "retryProvisioning", "provisioning_job", Some(job.id), json!({}), now).await?;
    for event in &events {
        domain.events.record(&txn, event).await?;
    }
    txn.commit().await?;
    domain.events.after_commit(events);
    domain.job_wakeup.notify_waiters();
    Ok(job)
}

/// Jobs the caller may see: the operator all, a vendor those for its offers, a reseller
/// those of its subscriptions, a customer its own; optionally only one status.
pub async fn list_jobs(
    domain: &Domain,
    actor: &Actor,
    status: Option<JobStatus>,
    subscription_id: Option<i64>,
    page: super::pagination::PageRequest,
) -> Result<super::pagination::Page<provisioning_job::Model>> {
    let mut select = provisioning_job::Entity::find();
    match actor.role {
        Role::Operator => {}
        Role::Vendor => select = select.filter(provisioning_job::Column::VendorId.eq(actor.vendor_id().unwrap_or(0))),
        Role::Reseller | Role::Customer => {
            let column = if actor.role == Role::Reseller {
                subscription::Column::ResellerId
            } else {
                subscription::Column::CustomerId
            };
            let ids = subscription::Entity::find()
                .filter(column.eq(actor.organization_id.unwrap_or(0)))
                .select_only()
                .column(subscription::Column::Id)
                .into_tuple::<i64>()
                .all(&domain.db)
                .await?;
            select = select.filter(provisioning_job::Column::SubscriptionId.is_in(ids));
        }
    }
    if let Some(status) = status {
        select = select.filter(provisioning_job::Column::Status.eq(status));
    }
    if let Some(subscription_id) = subscription_id {
        select = select.filter(provisioning_job::Column::SubscriptionId.eq(subscription_id));
    }
    super::pagination::fetch_page(&domain.db, select, provisioning_job::Column::Id, page).await
}

use sea_orm::QuerySelect;

#[cfg(test)]
mod tests {
    use super::*;

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
