//! Webhook deliveries: fanned out in the transaction that records the events (`fan_out`,
//! from `Write::commit`): for each enabled endpoint that may see an event and wants its
//! type, a delivery row with the body frozen as it will be sent, and a job in the durable
//! queue (kind `WEBHOOK_DELIVERY`, `WebhookSettings::attempts` tries). A worker sends it
//! (`workers::webhooks`) and records each try here (`record`): the attempt's row, the
//! delivery's state, the job settled with its lease (a worker that lost the lease records
//! nothing), and the endpoint's health — a success clears its failure clock, a failure
//! starts it, and an endpoint failing past `disable_after` is disabled with a
//! `webhook_endpoint.disabled` event to its owner. Redelivery queues a delivery again with
//! its same id and body (receivers deduplicate on `webhook-id`).

use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_delivery, webhook_endpoint};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};

use super::managed;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::fanout::delivery_job;
use crate::domain::jobs::{self, ClaimedJob, Outcome};
use crate::domain::write::{Audit, Write};

pub use crate::domain::fanout::PENDING;
/// The receiver answered 2xx.
pub const DELIVERED: &str = "DELIVERED";
/// Given up: a 4xx answer, the tries spent, or the endpoint disabled or gone.
pub const FAILED: &str = "FAILED";

async fn enqueue(w: &mut Write<'_>, delivery_id: i64) -> Result<()> {
    let attempts = w.domain().webhooks.attempts();
    jobs::enqueue(w, delivery_job(delivery_id, attempts)).await.map(|_| ())
}

/// What a worker sends for a delivery job: where, the body, and the signing secrets.
#[derive(Clone, Debug)]
pub struct Send {
    pub delivery_id: i64,
    pub endpoint_id: i64,
    pub url: String,
    /// `webhook-id`: the event's id.
    pub message_id: String,
    pub body: String,
    /// The current secret, and the previous one while it still signs.
    pub secrets: Vec<String>,
}

/// What to send for the delivery job `claimed`; Err(reason) when there is nothing to send
/// any more (the delivery or its endpoint gone, the endpoint disabled): the worker settles
/// the job as failed with it.
pub async fn to_send(domain: &Domain, claimed: &ClaimedJob) -> Result<std::result::Result<Send, String>> {
    let Some(delivery_id) = claimed.job.payload["delivery_id"].as_i64() else {
        return Ok(Err("the job names no delivery".into()));
    };
    let Some(delivery) = webhook_delivery::Entity::find_by_id(delivery_id).one(&domain.db).await? else {
        return Ok(Err("the delivery is gone (its endpoint was deleted)".into()));
    };
    let Some(endpoint) = webhook_endpoint::Entity::find_by_id(delivery.endpoint_id).one(&domain.db).await? else {
        return Ok(Err("the endpoint is gone".into()));
    };
    if !endpoint.enabled {
        return Ok(Err("the endpoint is disabled".into()));
    }
    let now = domain.clock.now();
    let mut secrets = vec![endpoint.secret.clone()];
    if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous.clone());
    }
    Ok(Ok(Send {
        delivery_id,
        endpoint_id: endpoint.id,
        url: endpoint.url,
        message_id: delivery.event_id,
        body: delivery.body,
        secrets,
    }))
}

/// One try as the worker saw it.
#[derive(Clone, Debug)]
pub struct Tried {
    pub at: DateTime<Utc>,
    /// The answer's status; None when none came (refused, timed out).
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    /// The answer's first bytes, as text.
    pub excerpt: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// What it means for the job.
    pub outcome: Outcome,
}

/// Records a try of `send` for the job `claimed`: whether the worker still held the lease
/// (nothing is recorded otherwise).
pub async fn record(domain: &Domain, claimed: &ClaimedJob, send: &Send, tried: Tried) -> Result<bool> {
    let mut w = Write::begin(domain).await?;
    let Some(delivery) = webhook_delivery::Entity::find_by_id(send.delivery_id).one(w.db()).await? else {
        let gone = Outcome::Permanent { error: "the delivery is gone".into() };
        let kept = jobs::settle(&w, claimed, gone).await?.is_some();
        w.commit(Audit::Bookkeeping("a webhook delivery job whose delivery is gone")).await?;
        return Ok(kept);
    };
    let Some(settled) = jobs::settle(&w, claimed, tried.outcome.clone()).await? else {
        w.rollback().await;
        return Ok(false);
    };
    let attempt = delivery.attempts + 1;
    webhook_attempt::ActiveModel {
        id: NotSet,
        delivery_id: Set(delivery.id),
        attempt: Set(attempt),
        attempted_at: Set(tried.at),
        status_code: Set(tried.status_code.map(i32::from)),
        latency_ms: Set(tried.latency_ms),
        response_excerpt: Set(tried.excerpt.clone()),
        error: Set(tried.error.clone()),
    }
    .insert(w.db())
    .await?;
    let status = match settled.status {
        entity::enums::JobStatus::Succeeded => DELIVERED,
        entity::enums::JobStatus::Queued => PENDING,
        _ => FAILED,
    };
    let mut changed: webhook_delivery::ActiveModel = delivery.into();
    changed.status = Set(status.to_owned());
    changed.attempts = Set(attempt);
    changed.next_attempt_at = Set((status == PENDING).then_some(settled.run_after));
    changed.last_status_code = Set(tried.status_code.map(i32::from));
    changed.last_error = Set(tried.error.clone());
    changed.delivered_at = Set((status == DELIVERED).then_some(tried.at));
    changed.update(w.db()).await?;
    health(&mut w, send.endpoint_id, status == DELIVERED).await?;
    w.commit(Audit::Bookkeeping("a webhook delivery's try: its attempt row is the trail")).await?;
    Ok(true)
}

/// Settles the delivery job `claimed` as failed without a try: `reason` (nothing to send
/// any more, or the job cannot be handled); the delivery, if still there, is FAILED.
pub async fn give_up(domain: &Domain, claimed: &ClaimedJob, reason: String, abandoned: bool) -> Result<bool> {
    let w = Write::begin(domain).await?;
    let outcome = if abandoned {
        Outcome::Abandoned { error: reason.clone() }
    } else {
        Outcome::Permanent { error: reason.clone() }
    };
    if jobs::settle(&w, claimed, outcome).await?.is_none() {
        w.rollback().await;
        return Ok(false);
    }
    if let Some(delivery_id) = claimed.job.payload["delivery_id"].as_i64() {
        // The endpoint's owner reads this: a run that could not be handled (a panic's
        // message, say) is said in general terms; the job row keeps the reason.
        let told =
            if abandoned { "the delivery could not be handled; the operator can see why".to_owned() } else { reason };
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, Expr::value(FAILED))
            .col_expr(webhook_delivery::Column::LastError, Expr::value(Some(told)))
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(webhook_delivery::Column::Id.eq(delivery_id))
            .exec(w.db())
            .await?;
    }
    w.commit(Audit::Bookkeeping("a webhook delivery given up: the job row keeps why")).await?;
    Ok(true)
}

/// After a try of endpoint `id`: a success clears its failure clock; a failure starts it,
/// and disables the endpoint once it has run past `disable_after` (its owner is told).
async fn health(w: &mut Write<'_>, id: i64, succeeded: bool) -> Result<()> {
    // A success on a healthy endpoint changes nothing: no lock (writes fanning out to the
    // endpoint do not wait for it).
    if succeeded {
        let healthy =
            webhook_endpoint::Entity::find_by_id(id).one(w.db()).await?.is_none_or(|e| e.failing_since.is_none());
        if healthy {
            return Ok(());
        }
    }
    // Locked: tries of one endpoint settled at once disable it (and tell its owner) once, and
    // a re-enable in between is not overwritten.
    let find = crate::domain::write::locking(webhook_endpoint::Entity::find_by_id(id), w.db());
    let Some(endpoint) = find.one(w.db()).await? else { return Ok(()) };
    let now = w.now();
    if succeeded {
        if endpoint.failing_since.is_some() {
            let mut model: webhook_endpoint::ActiveModel = endpoint.into();
            model.failing_since = Set(None);
            model.update(w.db()).await?;
        }
        return Ok(());
    }
    let since = endpoint.failing_since.unwrap_or(now);
    let limit = chrono::Duration::from_std(w.domain().webhooks.disable_after).unwrap_or(chrono::Duration::days(5));
    let disable = endpoint.enabled && now - since >= limit;
    let (owner, url) = (endpoint.reseller_id, endpoint.url.clone());
    let mut model: webhook_endpoint::ActiveModel = endpoint.into();
    model.failing_since = Set(Some(since));
    if disable {
        let reason = format!("its deliveries have failed since {}", since.to_rfc3339());
        model.enabled = Set(false);
        model.disabled_reason = Set(Some(reason.clone()));
        model.updated_at = Set(now);
        let event = DomainEvent {
            reseller_id: owner,
            webhook_endpoint_id: Some(id),
            detail: Some(format!("{url}: {reason}")),
            ..DomainEvent::new(EventKind::WebhookEndpointDisabled, "DISABLED", now)
        };
        w.emit(event).await?;
    }
    model.update(w.db()).await?;
    Ok(())
}

/// Deletes endpoint `id`'s deliveries and their attempts (the endpoint is being deleted).
pub(super) async fn forget_endpoint(w: &Write<'_>, id: i64) -> Result<()> {
    let of_endpoint = sea_orm::sea_query::Query::select()
        .column(webhook_delivery::Column::Id)
        .from(webhook_delivery::Entity)
        .and_where(webhook_delivery::Column::EndpointId.eq(id))
        .to_owned();
    webhook_attempt::Entity::delete_many()
        .filter(webhook_attempt::Column::DeliveryId.in_subquery(of_endpoint))
        .exec(w.db())
        .await?;
    webhook_delivery::Entity::delete_many().filter(webhook_delivery::Column::EndpointId.eq(id)).exec(w.db()).await?;
    Ok(())
}

/// A delivery with its tries, as the log shows it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub delivery: webhook_delivery::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// Deliveries logged per page at most.
pub const MAX_PAGE: u64 = 100;
/// Tries shown per delivery at most (the latest).
pub const MAX_ATTEMPTS_SHOWN: usize = 20;

/// Endpoint `endpoint_id`'s deliveries, newest first: `first` of them (at most
/// [`MAX_PAGE`]) older than delivery `before`, of `status` if given, with their tries.
pub async fn log(
    domain: &Domain,
    actor: &Actor,
    endpoint_id: i64,
    first: u64,
    before: Option<i64>,
    status: Option<&str>,
) -> Result<Vec<Logged>> {
    managed(&domain.db, actor, endpoint_id).await?;
    let mut find = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(first.clamp(1, MAX_PAGE));
    if let Some(before) = before {
        find = find.filter(webhook_delivery::Column::Id.lt(before));
    }
    if let Some(status) = status {
        if ![PENDING, DELIVERED, FAILED].contains(&status) {
            return Err(Error::validation("status", "PENDING, DELIVERED or FAILED"));
        }
        find = find.filter(webhook_delivery::Column::Status.eq(status));
    }
    let deliveries = find.all(&domain.db).await?;
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let mut attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(&domain.db)
        .await?;
    Ok(deliveries
        .into_iter()
        .map(|delivery| {
            let (mut mine, rest): (Vec<_>, Vec<_>) = attempts.drain(..).partition(|a| a.delivery_id == delivery.id);
            attempts = rest;
            // Redeliveries add tries without end: the log shows the latest.
            mine.drain(..mine.len().saturating_sub(MAX_ATTEMPTS_SHOWN));
            Logged { delivery, attempts: mine }
        })
        .collect())
}

/// Queues delivery `id` again (its endpoint must be enabled, and it not already waiting):
/// the same `webhook-id` and body, a fresh round of tries.
pub async fn redeliver(domain: &Domain, actor: &Actor, id: i64) -> Result<Logged> {
    let mut w = Write::begin(domain).await?;
    let not_found = || Error::NotFound("webhook delivery");
    let delivery = webhook_delivery::Entity::find_by_id(id).one(w.db()).await?.ok_or_else(not_found)?;
    let endpoint = managed(w.db(), actor, delivery.endpoint_id).await.map_err(|_| not_found())?;
    if !endpoint.enabled {
        return Err(Error::conflict("ENDPOINT_DISABLED", "enable the endpoint before redelivering to it"));
    }
    if delivery.status == PENDING {
        return Err(Error::conflict("DELIVERY_PENDING", "the delivery is already waiting for its next try"));
    }
    let mut changed: webhook_delivery::ActiveModel = delivery.into();
    changed.status = Set(PENDING.to_owned());
    changed.next_attempt_at = Set(Some(w.now()));
    let delivery = changed.update(w.db()).await?;
    enqueue(&mut w, id).await?;
    let details = serde_json::json!({"endpointId": endpoint.id, "eventId": delivery.event_id});
    w.commit(Audit::action(actor, "redeliverWebhook", "webhookDelivery", id, details)).await?;
    let attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.eq(id))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(&domain.db)
        .await?;
    Ok(Logged { delivery, attempts })
}

/// Deletes the log of deliveries made before `retention` that are no longer pending (their
/// tries too), a batch at a time; how many deliveries went.
pub async fn prune(domain: &Domain, retention: std::time::Duration) -> Result<u64> {
    // A retention too long to count back from now keeps everything.
    let Some(cutoff) =
        chrono::Duration::from_std(retention).ok().and_then(|r| domain.clock.now().checked_sub_signed(r))
    else {
        return Ok(0);
    };
    let mut pruned = 0;
    loop {
        let batch: Vec<i64> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(webhook_delivery::Column::CreatedAt.lt(cutoff))
            .filter(webhook_delivery::Column::Status.ne(PENDING))
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(PRUNE_BATCH)
            .into_tuple()
            .all(&domain.db)
            .await?;
        if batch.is_empty() {
            return Ok(pruned);
        }
        let w = Write::begin(domain).await?;
        // Only what is still finished: a delivery redelivered since it was read stays.
        let finished = sea_orm::sea_query::Query::select()
            .column(webhook_delivery::Column::Id)
            .from(webhook_delivery::Entity)
            .and_where(webhook_delivery::Column::Id.is_in(batch.iter().copied()))
            .and_where(webhook_delivery::Column::Status.ne(PENDING))
            .to_owned();
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::DeliveryId.in_subquery(finished))
            .exec(w.db())
            .await?;
        let deleted = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::Id.is_in(batch.iter().copied()))
            .filter(webhook_delivery::Column::Status.ne(PENDING))
            .exec(w.db())
            .await?;
        w.commit(Audit::Bookkeeping("the webhook log past its retention")).await?;
        pruned += deleted.rows_affected;
    }
}

/// Deliveries pruned at a time.
const PRUNE_BATCH: u64 = 1_000;
