//! Fulfilment: what a provisioning job's progress does to the business — the subscription
//! moves through its lifecycle (PENDING → PROVISIONING → ACTIVE or FAILED), its order line
//! and the derived order status follow, and the events announce it — and the operator's
//! retry of a failed or dead job. The queue mechanics are `jobs`; the vendor calls are
//! `vendors::connectors`, run by `workers`.

use crate::domain::Tenant;
use crate::domain::ids::{JobId, SubscriptionId};
use chrono::{DateTime, Utc};
use entity::enums::{JobKind, JobStatus, OrderLineStatus, ProvisioningAction, SubscriptionStatus, VendorOutcome};
use entity::{job, subscription};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};
use serde_json::json;

use super::actor::Actor;
use super::error::{Error, Result};
use super::events::{DomainEvent, EventKind};
pub use super::fulfilment_batch::{change_kind, line_status_for, purchase_status};
use super::jobs::{self, ClaimedJob, Outcome, ProvisioningSubject, job_status_name};
use super::lifecycle::{self, Transition, next_status, status_name};
use super::write::{Audit, Write};
use super::{Domain, orders, vendor_sync};

/// A provisioning job: the queue's row and its subject.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvisioningJob {
    /// The row in the queue.
    pub job: job::Model,
    /// The subscription, order, vendor and action it is for.
    pub subject: ProvisioningSubject,
}

impl TryFrom<job::Model> for ProvisioningJob {
    type Error = Error;

    fn try_from(job: job::Model) -> Result<Self> {
        let subject = ProvisioningSubject::of(&job)?;
        Ok(Self { job, subject })
    }
}

/// Records a worker's outcome, if it still holds the lease; `false` when the lease was lost
/// (another worker took the job over), in which case nothing is changed.
pub async fn complete_job(domain: &Domain, claimed: &ClaimedJob, outcome: Outcome) -> Result<bool> {
    let mut w = Write::begin(domain).await?;
    let Some(settled) = jobs::settle(&w, claimed, outcome).await? else {
        w.rollback().await;
        return Ok(false);
    };
    let now = w.now();
    let events =
        apply_to_subscription(w.db(), &claimed.job, settled.status, settled.reference, settled.error, now).await?;
    w.emit_all(events).await?;
    w.commit(Audit::Bookkeeping("a worker records a job's outcome; the job row and the subscription's history do"))
        .await?;
    Ok(true)
}

/// Marks a job RUNNING in the subscription's eyes (PENDING → PROVISIONING for a purchase)
/// and announces it, if the worker still holds its lease (`false`, and nothing changed,
/// when another worker took the job over). Called by a worker right after it claimed the job.
pub async fn mark_started(domain: &Domain, claimed: &ClaimedJob) -> Result<bool> {
    let job = &claimed.job;
    let mut w = Write::begin(domain).await?;
    if jobs::leases_held(&w, &[claimed]).await?.is_empty() {
        w.rollback().await;
        return Ok(false);
    }
    let now = w.now();
    let events = apply_to_subscription(w.db(), job, JobStatus::Running, None, None, now).await?;
    w.emit_all(events).await?;
    w.commit(Audit::Bookkeeping("a worker starts a job; the job row records it")).await?;
    Ok(true)
}

/// [`mark_started`] for each of `claimed` in one write (one commit for a worker's batch):
/// all or none; whether each was started, in the order given (`false` where its lease was
/// lost: nothing of it is changed). The job rows are locked first; then purchases lock their
/// subscriptions and orders in id order (`fulfilment_batch`); other changes one job after
/// another, in order and subscription order.
pub async fn mark_all_started(domain: &Domain, claimed: &[&ClaimedJob]) -> Result<Vec<bool>> {
    let mut w = Write::begin(domain).await?;
    let now = w.now();
    let held = jobs::leases_held(&w, claimed).await?;
    let started: Vec<_> = in_lock_order(claimed)
        .into_iter()
        .filter(|job| held.contains(&job.job.id))
        .map(|job| (&job.job, JobStatus::Running, None, None))
        .collect();
    let events = apply_to_batch(w.db(), started, now).await?;
    w.emit_all(events).await?;
    w.commit(Audit::Bookkeeping("workers start a batch of jobs; the job rows record it")).await?;
    Ok(claimed.iter().map(|job| held.contains(&job.job.id)).collect())
}

/// [`complete_job`] for each of `outcomes` in one write: all or none. Whether each was
/// recorded, in the order given: `false` where the job's lease was lost (nothing of it is
/// changed; the others are).
pub async fn complete_jobs(domain: &Domain, outcomes: &[(&ClaimedJob, Outcome)]) -> Result<Vec<bool>> {
    let mut w = Write::begin(domain).await?;
    let now = w.now();
    let mut kept = vec![false; outcomes.len()];
    let mut order: Vec<usize> = (0..outcomes.len()).collect();
    order.sort_by_key(|&index| lock_order(outcomes[index].0));
    let in_order: Vec<(&ClaimedJob, Outcome)> =
        order.iter().map(|&index| (outcomes[index].0, outcomes[index].1.clone())).collect();
    let mut settled_jobs = Vec::with_capacity(outcomes.len());
    for (index, settled) in order.into_iter().zip(jobs::settle_all(&w, &in_order).await?) {
        let Some(settled) = settled else { continue };
        settled_jobs.push((&outcomes[index].0.job, settled.status, settled.reference, settled.error));
        kept[index] = true;
    }
    let events = apply_to_batch(w.db(), settled_jobs, now).await?;
    w.emit_all(events).await?;
    w.commit(Audit::Bookkeeping(
        "workers record a batch of jobs' outcomes; the job rows and the subscriptions' history do",
    ))
    .await?;
    Ok(kept)
}

/// A job's new state: the job, its status, the vendor's reference and the attempt's error.
type NewState<'a> = (&'a job::Model, JobStatus, Option<String>, Option<String>);

/// [`apply_to_subscription`] for each of `jobs` (in lock order, one job of a subscription at
/// most): purchases together in a few statements (`fulfilment_batch`), other changes one
/// by one; the events.
async fn apply_to_batch(
    txn: &DatabaseTransaction,
    jobs: Vec<NewState<'_>>,
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>> {
    let mut events = Vec::new();
    let mut purchases = Vec::with_capacity(jobs.len());
    let mut subscriptions = std::collections::HashSet::with_capacity(jobs.len());
    for (job, status, reference, error) in jobs {
        let subject = ProvisioningSubject::of(job)?;
        if !subscriptions.insert(subject.subscription_id) {
            // A claim takes one job of a subscription: this write is not the batch it expects.
            return Err(Error::internal("two jobs of one subscription in a batch"));
        }
        if subject.action == ProvisioningAction::Purchase {
            purchases.push(super::fulfilment_batch::Purchase {
                job,
                subscription_id: subject.subscription_id,
                order_id: subject.order_id,
                status,
                reference,
                error,
            });
        } else {
            events.extend(apply_to_subscription(txn, job, status, reference, error, now).await?);
        }
    }
    if !purchases.is_empty() {
        events.extend(super::fulfilment_batch::apply(txn, &purchases, now).await?);
    }
    Ok(events)
}

/// The order in which a batch's writes lock a job's rows: its order, then its subscription.
fn lock_order(claimed: &ClaimedJob) -> (Option<i64>, Option<i64>, i64) {
    (claimed.job.order_id, claimed.job.subscription_id, claimed.job.id)
}

fn in_lock_order<'a>(claimed: &[&'a ClaimedJob]) -> Vec<&'a ClaimedJob> {
    let mut sorted = claimed.to_vec();
    sorted.sort_by_key(|job| lock_order(job));
    sorted
}

/// Moves the subscription and order line after a job changed state; returns the events.
async fn apply_to_subscription(
    txn: &DatabaseTransaction,
    job: &job::Model,
    status: JobStatus,
    reference: Option<String>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<DomainEvent>> {
    let subject = ProvisioningSubject::of(job)?;
    // Locked: a change made meanwhile (a suspend, say) is read, not overwritten.
    let mut current = super::write::locking(subscription::Entity::find_by_id(subject.subscription_id), txn)
        .one(txn)
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    let is_purchase = subject.action == ProvisioningAction::Purchase;
    let mut events = Vec::new();
    // A change's end: the subscription follows what the vendor did.
    let outcome = match status {
        JobStatus::Succeeded => Some(VendorOutcome::Done),
        JobStatus::Failed => Some(VendorOutcome::Refused),
        JobStatus::Dead => Some(VendorOutcome::Unconfirmed),
        JobStatus::Queued | JobStatus::Running | JobStatus::Inquire => None,
    };
    if let (false, Some(outcome)) = (is_purchase, outcome)
        && let Some(updated) = vendor_sync::job_ended(txn, &current, job, outcome, error.as_deref(), now).await?
    {
        events.push(lifecycle::changed_event(&updated, now));
        current = updated;
    }
    let before = current.status;
    let after = if is_purchase { purchase_status(before, status) } else { before };
    if after != before || reference.is_some() {
        let mut model: subscription::ActiveModel = current.clone().into();
        model.status = Set(after);
        if reference.is_some() {
            model.vendor_reference = Set(reference);
        }
        model.updated_at = Set(now);
        let updated = model.update(txn).await?;
        if after != before {
            if let Some(kind) = change_kind(after) {
                let system = Actor::system();
                lifecycle::record_change(
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
            events.push(lifecycle::changed_event(&updated, now));
        }
    }
    let event_status = if is_purchase { status_name(after).to_owned() } else { job_status_name(status).to_owned() };
    events.push(DomainEvent {
        vendor_id: Some(current.vendor_id),
        reseller_id: Some(current.reseller_id),
        customer_id: Some(current.customer_id),
        order_id: subject.order_id.filter(|_| is_purchase),
        subscription_id: Some(current.id),
        job_id: Some(job.id),
        quantity: Some(current.quantity),
        detail: error,
        ..DomainEvent::new(EventKind::ProvisioningStatusChanged, event_status, now)
    });
    if let (true, Some(order_id), Some(line_status)) = (is_purchase, subject.order_id, line_status_for(status))
        && let Some(event) = orders::update_line_status(txn, order_id, current.id, line_status, now).await?
    {
        events.push(event);
    }
    Ok(events)
}

/// Puts a FAILED or DEAD job back in the queue (operator only), with fresh attempts and the
/// same request id. A failed purchase goes back to PENDING.
pub async fn retry_job(domain: &Domain, actor: &Actor, job_id: JobId) -> Result<ProvisioningJob> {
    actor.require_operator()?;
    let mut w = Write::begin(domain).await?;
    let now = w.now();
    let job = jobs::requeue(&mut w, job_id).await?;
    let mut events = Vec::new();
    let subject = ProvisioningSubject::of(&job)?;
    vendor_sync::retried(w.db(), &job).await?;
    let job = match subject.action {
        ProvisioningAction::ChangeQuantity => {
            let sent = job.request_id.clone();
            let job = current_intent(&w, job, subject.subscription_id).await?;
            if job.request_id != sent {
                // A later seat change set the count the retry sends: this change, never
                // confirmed, is superseded by it and billed as never made.
                vendor_sync::superseded(w.db(), &job, now).await?;
            }
            job
        }
        ProvisioningAction::Purchase => job,
        // A suspend, resume, cancel or renew sent after a later one of these would undo it
        // (a later seat change does not).
        _ => {
            let later = job::Entity::find()
                .filter(job::Column::OrderingKey.eq(job.ordering_key.clone()))
                .filter(job::Column::Id.gt(job.id))
                .filter(job::Column::Action.is_in([
                    ProvisioningAction::Suspend,
                    ProvisioningAction::Resume,
                    ProvisioningAction::Cancel,
                    ProvisioningAction::Renew,
                ]))
                .one(w.db())
                .await?;
            if later.is_some() {
                return Err(Error::InvalidTransition(
                    "the subscription was changed again since this job was made; sending it now would undo that".into(),
                ));
            }
            job
        }
    };
    if subject.action == ProvisioningAction::Purchase {
        let sub = super::write::locking(subscription::Entity::find_by_id(subject.subscription_id), w.db())
            .one(w.db())
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        if sub.status == SubscriptionStatus::Failed {
            let mut model: subscription::ActiveModel = sub.into();
            model.status = Set(next_status(SubscriptionStatus::Failed, Transition::RetryProvisioning)?);
            // Billing plans it again (a retry that succeeds is billed).
            model.billing_settled = Set(false);
            model.updated_at = Set(now);
            let updated = model.update(w.db()).await?;
            events.push(lifecycle::changed_event(&updated, now));
            if let Some(order_id) = subject.order_id
                && let Some(event) =
                    orders::update_line_status(w.db(), order_id, updated.id, OrderLineStatus::Pending, now).await?
            {
                events.push(event);
            }
        }
    }
    w.emit_all(events).await?;
    w.commit(Audit::action(actor, "retryProvisioning", "provisioning_job", Some(job.id), json!({}))).await?;
    Ok(ProvisioningJob { job, subject })
}

/// Marks the change of a job buried DEAD on its row alone (recording its outcome failed)
/// unconfirmed, in a write of its own: the subscription is out of sync, not held silently.
pub async fn unconfirmed_alone(domain: &Domain, job: &job::Model, reason: &str) -> Result<()> {
    let subject = ProvisioningSubject::of(job)?;
    if subject.action == ProvisioningAction::Purchase {
        return Ok(());
    }
    let mut w = Write::begin(domain).await?;
    let now = w.now();
    let current = super::write::locking(subscription::Entity::find_by_id(subject.subscription_id), w.db())
        .one(w.db())
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    if let Some(updated) =
        vendor_sync::job_ended(w.db(), &current, job, VendorOutcome::Unconfirmed, Some(reason), now).await?
    {
        w.emit(lifecycle::changed_event(&updated, now)).await?;
    }
    w.commit(Audit::Bookkeeping("a buried job's change is unconfirmed; the change history records it")).await?;
    Ok(())
}

/// The operator declares that the vendor did not make the change of a DEAD job (one it
/// never confirmed): the change is refused and the subscription goes back to what the
/// vendor has. The job stays DEAD, its reason saying so.
pub async fn abandon_job(domain: &Domain, actor: &Actor, job_id: JobId) -> Result<ProvisioningJob> {
    actor.require_operator()?;
    let mut w = Write::begin(domain).await?;
    let now = w.now();
    let job = super::write::locking(job::Entity::find_by_id(job_id.get()), w.db())
        .one(w.db())
        .await?
        .filter(|job| job.kind == JobKind::Provisioning)
        .ok_or(Error::NotFound("provisioning job"))?;
    if job.status != JobStatus::Dead {
        return Err(Error::InvalidTransition(format!(
            "only a DEAD job can be abandoned; this one is {}",
            job_status_name(job.status)
        )));
    }
    let subject = ProvisioningSubject::of(&job)?;
    let current = super::write::locking(subscription::Entity::find_by_id(subject.subscription_id), w.db())
        .one(w.db())
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    let updated = vendor_sync::abandoned(w.db(), &current, &job, now).await?;
    let reason =
        format!("abandoned by the operator: the change was reverted; {}", job.last_error.clone().unwrap_or_default());
    let mut model: job::ActiveModel = job.into();
    model.last_error = Set(Some(reason));
    model.updated_at = Set(now);
    let job = model.update(w.db()).await?;
    w.emit(lifecycle::changed_event(&updated, now)).await?;
    w.commit(Audit::action(actor, "abandonProvisioningJob", "provisioning_job", Some(job.id), json!({}))).await?;
    Ok(ProvisioningJob { job, subject })
}

/// A retried quantity change sends the seat count the subscription has now, not the one it
/// had when the change was made (a later change may have succeeded since). A changed body
/// is a new request: it gets a new request id, which the vendor has never answered.
async fn current_intent(w: &Write<'_>, job: job::Model, subscription_id: i64) -> Result<job::Model> {
    let current =
        subscription::Entity::find_by_id(subscription_id).one(w.db()).await?.ok_or(Error::NotFound("subscription"))?;
    let mut payload = job.payload.clone();
    payload["quantity"] = json!(current.quantity);
    payload["vendorReference"] = json!(current.vendor_reference);
    if payload == job.payload {
        return Ok(job);
    }
    let mut model: job::ActiveModel = job.into();
    model.payload = Set(payload);
    model.request_id = Set(uuid::Uuid::new_v4().to_string());
    Ok(model.update(w.db()).await?)
}

/// Jobs the caller may see: the operator all, a vendor those for its offers, a reseller
/// those of its subscriptions, a customer its own; optionally only one status.
pub async fn list_jobs(
    domain: &Domain,
    actor: &Actor,
    status: Option<JobStatus>,
    subscription_id: Option<SubscriptionId>,
    page: super::pagination::PageRequest,
) -> Result<super::pagination::Page<ProvisioningJob>> {
    // Only well-formed provisioning jobs: a row without its subject cannot break the list.
    let mut select = job::Entity::find()
        .filter(job::Column::Kind.eq(JobKind::Provisioning))
        .filter(job::Column::SubscriptionId.is_not_null())
        .filter(job::Column::VendorId.is_not_null())
        .filter(job::Column::Action.is_not_null());
    let owner = match actor.tenant {
        Tenant::Operator => None,
        Tenant::Vendor(vendor) => {
            select = select.filter(job::Column::VendorId.eq(vendor));
            None
        }
        Tenant::Reseller(reseller) => Some(subscription::Column::ResellerId.eq(reseller)),
        Tenant::Customer(customer) => Some(subscription::Column::CustomerId.eq(customer)),
    };
    match owner {
        None => {}
        Some(owner) => {
            // A subquery, not a list of ids: a reseller may own more subscriptions than a
            // statement may bind parameters.
            let owned =
                subscription::Entity::find().select_only().column(subscription::Column::Id).filter(owner).into_query();
            select = select.filter(job::Column::SubscriptionId.in_subquery(owned));
        }
    }
    if let Some(status) = status {
        select = select.filter(job::Column::Status.eq(status));
    }
    if let Some(subscription_id) = subscription_id {
        select = select.filter(job::Column::SubscriptionId.eq(subscription_id));
    }
    let page = super::pagination::fetch_page(&domain.db, select, job::Column::Id, page).await?;
    let items = page.items.into_iter().map(ProvisioningJob::try_from).collect::<Result<Vec<_>>>()?;
    Ok(super::pagination::Page {
        items,
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        total_count: page.total_count,
    })
}

/// What `actor` may read of a vendor's error (`events::vendor_error_for_role`).
pub fn vendor_error_for(actor: &Actor, status: &str, raw: Option<&str>) -> Option<String> {
    super::events::vendor_error_for_role(actor.role(), status, raw)
}
