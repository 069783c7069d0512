//! Webhook endpoints and their delivery log as the API shows them (a secret only when it is
//! made or rotated).

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::webhooks::{self, deliveries};

/// Where a reseller's (or the operator's) events are POSTed, signed per the Standard
/// Webhooks convention (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    pub id: ID,
    /// The owner; null: the operator (who receives every event).
    pub reseller_id: Option<ID>,
    pub url: String,
    pub description: String,
    /// The event types it receives (`order.status_changed`…); empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled (after failing too long), if it was.
    pub disabled_reason: Option<String>,
    /// Since when its deliveries fail; null while they succeed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs (a second signature).
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhooks::Endpoint> for WebhookEndpoint {
    fn from(e: webhooks::Endpoint) -> Self {
        Self {
            id: ID(e.id.to_string()),
            reseller_id: e.reseller_id.map(|id| ID(id.to_string())),
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            previous_secret_valid_until: e.previous_secret_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret (`whsec_…`): shown now, when made or rotated.
#[derive(SimpleObject)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// The signing secret: `whsec_` and the base64 of the HMAC-SHA256 key. Keep it.
    pub secret: String,
}

impl From<webhooks::WithSecret> for WebhookEndpointWithSecret {
    fn from(w: webhooks::WithSecret) -> Self {
        Self { endpoint: w.endpoint.into(), secret: w.secret }
    }
}

/// One try of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// 1 for the first try.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// The answer's HTTP status; null when none came.
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// The answer's first kilobyte, as text.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// One event's delivery to one endpoint.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    pub id: ID,
    pub endpoint_id: ID,
    /// The event's id: the `webhook-id` header, the same on every try and redelivery.
    pub event_id: String,
    pub event_type: String,
    /// PENDING, DELIVERED or FAILED.
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body as sent (JSON text).
    pub body: String,
    /// Its tries, oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

impl From<deliveries::Logged> for WebhookDelivery {
    fn from(logged: deliveries::Logged) -> Self {
        let d = logged.delivery;
        Self {
            id: ID(d.id.to_string()),
            endpoint_id: ID(d.endpoint_id.to_string()),
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempt_count: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            body: d.body,
            attempts: logged
                .attempts
                .into_iter()
                .map(|a| WebhookAttempt {
                    attempt: a.attempt,
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    response_excerpt: a.response_excerpt,
                    error: a.error,
                })
                .collect(),
        }
    }
}
