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

/// The body sent for `event` to an endpoint of the operator (`operator`) or of a reseller:
/// `{"type", "timestamp", "data"}` (Standard Webhooks), `data` the event's fields as the API
/// names them — a reseller reads a vendor's error as its reason, never the raw message.
fn body(event: &DomainEvent, operator: bool) -> Result<String> {
    let role = if operator { entity::enums::Role::Operator } else { entity::enums::Role::Reseller };
    let body = serde_json::json!({
        "type": event_type(event.kind),
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "id": event.id,
            "occurredAt": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "status": event.status,
            "vendorId": event.vendor_id,
            "resellerId": event.reseller_id,
            "customerId": event.customer_id,
            "orderId": event.order_id,
            "subscriptionId": event.subscription_id,
            "jobId": event.job_id,
            "quantity": event.quantity,
            "detail": event.detail_for(role),
            "webhookEndpointId": event.webhook_endpoint_id,
        },
    });
    serde_json::to_string(&body).map_err(Error::internal)
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
    // The operator's endpoints, and those of the resellers the events name.
    let mut resellers: Vec<i64> = events.iter().filter_map(|e| e.reseller_id).collect();
    resellers.sort_unstable();
    resellers.dedup();
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(
            sea_orm::Condition::any()
                .add(webhook_endpoint::Column::ResellerId.is_null())
                .add(webhook_endpoint::Column::ResellerId.is_in(resellers)),
        )
        .all(txn)
        .await?;
    let mut queued = false;
    for event in events {
        // Written once per audience, not once per endpoint.
        let (mut for_operator, mut for_reseller): (Option<String>, Option<String>) = (None, None);
        for endpoint in endpoints.iter().filter(|e| receives(e, event)) {
            let operator = endpoint.reseller_id.is_none();
            let audience = if operator { &mut for_operator } else { &mut for_reseller };
            let body = match audience {
                Some(written) => written.clone(),
                None => audience.insert(body(event, operator)?).clone(),
            };
            let delivery = webhook_delivery::ActiveModel {
                id: NotSet,
                endpoint_id: Set(endpoint.id),
                event_id: Set(event.id.clone()),
                event_type: Set(event_type(event.kind).to_owned()),
                body: Set(body),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reseller_reads_a_vendor_error_as_its_reason_and_the_operator_as_it_came() {
        let raw = "POST https://vendor.example/api?key=s3cret: 500";
        let event = DomainEvent {
            reseller_id: Some(7),
            detail: Some(raw.into()),
            ..DomainEvent::new(EventKind::ProvisioningStatusChanged, "DEAD", Utc::now())
        };
        let parse = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
        let operator = parse(body(&event, true).unwrap_or_default());
        let reseller = parse(body(&event, false).unwrap_or_default());
        assert_eq!(operator["data"]["detail"], raw);
        assert!(!reseller.to_string().contains("s3cret"), "{reseller}");
        assert_eq!(reseller["type"], "provisioning.status_changed");
        assert_eq!(reseller["data"]["resellerId"], 7);
        assert_eq!(reseller["data"]["id"], event.id.as_str());
        assert!(reseller["data"].get("sequence").is_none());
    }
}
