//! Jobs as they are put in the durable queue: what a new job is ([`NewJob`]: its kind,
//! ordering key, payload, provisioning subject, tries) and its row, inserted in a caller's
//! transaction. A leaf of the domain: `jobs` enqueues through it inside a `Write`, and the
//! webhook fan-out (`fanout`) while `Write::commit` records events.

use chrono::{DateTime, Utc};
use entity::enums::{JobKind, JobStatus, ProvisioningAction};
use entity::{job, subscription};
use sea_orm::{ActiveModelTrait, ConnectionTrait, NotSet, Set};

use super::error::{Error, Result};

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// What it does.
    pub kind: JobKind,
    /// Jobs with the same key belong to one subject (`subscription:42`) and run one at a
    /// time, in the order they were made.
    pub ordering_key: Option<String>,
    /// What the job's runner needs (for provisioning: what the connector sends).
    pub payload: serde_json::Value,
    /// The subscription a provisioning job acts on (it also scopes who sees the job).
    pub subject: Option<ProvisioningSubject>,
    /// Tries it gets, when not the queue's default (webhook deliveries: their own).
    pub max_attempts: Option<i32>,
}

/// The subject of a provisioning job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProvisioningSubject {
    /// The subscription acted on.
    pub subscription_id: i64,
    /// The order that bought it, if any.
    pub order_id: Option<i64>,
    /// The vendor called.
    pub vendor_id: i64,
    /// The vendor action.
    pub action: ProvisioningAction,
}

impl ProvisioningSubject {
    /// The subject of a provisioning job's row; an internal error if the row has none (a
    /// job of another kind, or a row written by hand).
    pub fn of(job: &job::Model) -> Result<Self> {
        match (job.kind, job.subscription_id, job.vendor_id, job.action) {
            (JobKind::Provisioning, Some(subscription_id), Some(vendor_id), Some(action)) => {
                Ok(Self { subscription_id, order_id: job.order_id, vendor_id, action })
            }
            _ => Err(Error::internal(format!("job {} is not a provisioning job with a subject", job.id))),
        }
    }
}

impl NewJob {
    /// A vendor call for `subscription`, ordered after every earlier job of it.
    pub fn provisioning(
        subscription: &subscription::Model,
        action: ProvisioningAction,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            kind: JobKind::Provisioning,
            ordering_key: Some(format!("subscription:{}", subscription.id)),
            payload,
            subject: Some(ProvisioningSubject {
                subscription_id: subscription.id,
                order_id: subscription.order_id,
                vendor_id: subscription.vendor_id,
                action,
            }),
            max_attempts: None,
        }
    }
}

/// Inserts `job` as QUEUED, due `now`, with a fresh request id that stays the same on every
/// retry (vendors and webhook receivers deduplicate on it); `default_max_attempts` unless
/// the job says otherwise.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    default_max_attempts: i32,
    job: NewJob,
) -> Result<job::Model> {
    let subject = job.subject;
    let inserted = job::ActiveModel {
        id: NotSet,
        kind: Set(job.kind),
        ordering_key: Set(job.ordering_key),
        payload: Set(job.payload),
        request_id: Set(uuid::Uuid::new_v4().to_string()),
        status: Set(JobStatus::Queued),
        attempts: Set(0),
        max_attempts: Set(job.max_attempts.unwrap_or(default_max_attempts).max(1)),
        run_after: Set(now),
        locked_by: Set(None),
        locked_until: Set(None),
        lease_token: Set(None),
        last_error: Set(None),
        reference: Set(None),
        subscription_id: Set(subject.map(|s| s.subscription_id)),
        order_id: Set(subject.and_then(|s| s.order_id)),
        vendor_id: Set(subject.map(|s| s.vendor_id)),
        action: Set(subject.map(|s| s.action)),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(inserted)
}
