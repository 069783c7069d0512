//! The webhook fan-out: for each event a write records, a delivery (its body frozen as it
//! will be sent) to each enabled endpoint that may see it and wants its type — the
//! operator's every event, a reseller's those naming the reseller — and a job to send it,
//! inserted in the write's own transaction by `Write::commit`: deliveries are queued if and
//! only if their events commit. A leaf of the domain (it imports neither `write` nor
//! `jobs`, which `webhooks` builds on); sending and the log are `webhooks::deliveries`'.

use chrono::{DateTime, Utc};
use entity::enums::JobKind;
use entity::{webhook_delivery, webhook_endpoint};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::error::{Error, Result};
use super::events::{DomainEvent, EventKind};
use super::new_jobs::NewJob;

/// A delivery waiting for its next try, or on its way.
pub const PENDING: &str = "PENDING";

/// The event types an endpoint may ask for, as receivers see them in `type`.
pub const EVENT_TYPES: [&str; 6] = [
    "order.placed",
    "order.status_changed",
    "subscription.changed",
    "provisioning.status_changed",
    "reconciliation.changed",
    "webhook_endpoint.disabled",
];

/// The type name of an event of `kind`.
pub fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::OrderPlaced => EVENT_TYPES[0],
        EventKind::OrderStatusChanged => EVENT_TYPES[1],
        EventKind::SubscriptionChanged => EVENT_TYPES[2],
        EventKind::ProvisioningStatusChanged => EVENT_TYPES[3],
        EventKind::ReconciliationChanged => EVENT_TYPES[4],
        EventKind::WebhookEndpointDisabled => EVENT_TYPES[5],
    }
}

/// Whether `endpoint` receives `event`: the operator's every event, a reseller's those
/// naming the reseller; of the types it asked for (none: all).
fn receives(endpoint: &webhook_endpoint::Model, event: &DomainEvent) -> bool {
    let visible = endpoint.reseller_id.is_none_or(|reseller| event.reseller_id == Some(reseller));
    let wanted =
        endpoint.event_types.is_empty() || endpoint.event_types.split_whitespace().any(|t| t == event_type(event.kind));
    visible && wanted
}

/// The body sent for `event`: `{"type", "timestamp", "data"}` (Standard Webhooks), the
/// event's fields named as the API names them (`orderId`).
fn body(event: &DomainEvent) -> Result<String> {
    let data = match serde_json::to_value(event).map_err(Error::internal)? {
        serde_json::Value::Object(fields) => {
            serde_json::Value::Object(fields.into_iter().map(|(name, value)| (camel_case(&name), value)).collect())
        }
        other => other,
    };
    let body = serde_json::json!({
        "type": event_type(event.kind),
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    serde_json::to_string(&body).map_err(Error::internal)
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Queues a delivery of each of `events` to each enabled endpoint that receives it, each
/// with `attempts` tries, in `txn` (the write recording the events, at `now`): whether any
/// was queued (the write then wakes the workers).
pub(crate) async fn fan_out<C: ConnectionTrait>(
    txn: &C,
    now: DateTime<Utc>,
    attempts: i32,
    events: &[DomainEvent],
) -> Result<bool> {
    if events.is_empty() {
        return Ok(false);
    }
    let endpoints =
        webhook_endpoint::Entity::find().filter(webhook_endpoint::Column::Enabled.eq(true)).all(txn).await?;
    let mut queued = false;
    for event in events {
        for endpoint in endpoints.iter().filter(|e| receives(e, event)) {
            let delivery = webhook_delivery::ActiveModel {
                id: NotSet,
                endpoint_id: Set(endpoint.id),
                event_id: Set(event.id.clone()),
                event_type: Set(event_type(event.kind).to_owned()),
                body: Set(body(event)?),
                status: Set(PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(Some(now)),
                last_status_code: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
            }
            .insert(txn)
            .await?;
            super::new_jobs::insert(txn, now, attempts, delivery_job(delivery.id, attempts)).await?;
            queued = true;
        }
    }
    Ok(queued)
}

/// The job sending delivery `delivery_id`, with `attempts` tries.
pub fn delivery_job(delivery_id: i64, attempts: i32) -> NewJob {
    NewJob {
        kind: JobKind::WebhookDelivery,
        ordering_key: None,
        payload: serde_json::json!({"delivery_id": delivery_id}),
        subject: None,
        max_attempts: Some(attempts),
    }
}
