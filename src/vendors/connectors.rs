//! Vendor connectors: how a provisioning job reaches a vendor.
//!
//! - `sandbox`: a simulated vendor with configurable latency and failure rate (the demo
//!   default). Settings: `{"latencyMs": 200, "failureRate": "0.02"}`.
//! - `http`: POSTs the job as JSON to `{url}/{action}` with an HMAC-SHA256 signature of the
//!   body (`X-Switchyard-Signature: sha256=<hex>`), a timeout, and `X-Request-Id`, which is
//!   the same on every retry of the same action so the vendor can deduplicate. Settings:
//!   `{"url": "https://vendor.example/provisioning", "secret": "…"}`. Timeouts, connection
//!   errors, 5xx and 429 (honouring Retry-After) are transient; other 4xx are permanent and
//!   fail the job with the vendor's message.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use entity::enums::{ConnectorKind, ProvisioningAction};
use entity::{job, vendor};
use hmac::{Hmac, Mac};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::json;
use sha2::Sha256;

use crate::domain::jobs::{Outcome, ProvisioningSubject};

/// What a connector sends for one job.
#[derive(Clone, Debug)]
pub struct VendorRequest {
    /// Stable across retries of this job.
    pub request_id: String,
    /// The action.
    pub action: ProvisioningAction,
    /// Our subscription id.
    pub subscription_id: i64,
    /// Action details (SKU, quantity, the customer's tenant id…).
    pub payload: serde_json::Value,
}

impl VendorRequest {
    /// The request for a claimed job.
    pub fn for_job(job: &job::Model, subject: &ProvisioningSubject) -> Self {
        Self {
            request_id: job.request_id.clone(),
            action: subject.action,
            subscription_id: subject.subscription_id,
            payload: job.payload.clone(),
        }
    }
}

/// A vendor's provisioning interface.
#[async_trait]
pub trait VendorConnector: Send + Sync {
    /// Buys a new subscription.
    async fn purchase(&self, request: &VendorRequest) -> Outcome;
    /// Sets the seat count.
    async fn change_quantity(&self, request: &VendorRequest) -> Outcome;
    /// Suspends the subscription.
    async fn suspend(&self, request: &VendorRequest) -> Outcome;
    /// Resumes the subscription.
    async fn resume(&self, request: &VendorRequest) -> Outcome;
    /// Cancels the subscription.
    async fn cancel(&self, request: &VendorRequest) -> Outcome;
    /// Renews for a new term.
    async fn renew(&self, request: &VendorRequest) -> Outcome;
}

/// Runs `request` through the connector method for its action.
pub async fn execute(connector: &dyn VendorConnector, request: &VendorRequest) -> Outcome {
    match request.action {
        ProvisioningAction::Purchase => connector.purchase(request).await,
        ProvisioningAction::ChangeQuantity => connector.change_quantity(request).await,
        ProvisioningAction::Suspend => connector.suspend(request).await,
        ProvisioningAction::Resume => connector.resume(request).await,
        ProvisioningAction::Cancel => connector.cancel(request).await,
        ProvisioningAction::Renew => connector.renew(request).await,
    }
}

/// The URL path segment of an action.
pub fn action_path(action: ProvisioningAction) -> &'static str {
    match action {
        ProvisioningAction::Purchase => "purchase",
        ProvisioningAction::ChangeQuantity => "change_quantity",
        ProvisioningAction::Suspend => "suspend",
        ProvisioningAction::Resume => "resume",
        ProvisioningAction::Cancel => "cancel",
        ProvisioningAction::Renew => "renew",
    }
}

/// Builds the connector a vendor is configured with.
pub fn connector_for(vendor: &vendor::Model, client: &reqwest::Client, timeout: Duration) -> Box<dyn VendorConnector> {
    let settings = &vendor.connector_settings;
    match vendor.connector_kind {
        ConnectorKind::Sandbox => Box::new(SandboxConnector {
            latency: Duration::from_millis(settings["latencyMs"].as_u64().unwrap_or(0)),
            failure_rate: settings["failureRate"]
                .as_str()
                .and_then(|rate| Decimal::from_str(rate).ok())
                .unwrap_or(Decimal::ZERO),
        }),
        ConnectorKind::Http => Box::new(HttpConnector {
            client: client.clone(),
            url: settings["url"].as_str().unwrap_or_default().trim_end_matches('/').to_owned(),
            secret: settings["secret"].as_str().unwrap_or_default().to_owned(),
            timeout,
        }),
    }
}

/// A simulated vendor.
pub struct SandboxConnector {
    /// How long each call takes.
    pub latency: Duration,
    /// The share of calls that fail transiently (0 to 1).
    pub failure_rate: Decimal,
}

impl SandboxConnector {
    async fn call(&self, request: &VendorRequest) -> Outcome {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        // Draw in per-mille steps: exact, and no float touches the configured rate.
        let draw = Decimal::new(rand::thread_rng().gen_range(0..1000), 3);
        if draw < self.failure_rate {
            Outcome::Transient { error: "sandbox: simulated vendor failure".into(), retry_after: None }
        } else {
            Outcome::Succeeded { reference: Some(format!("sandbox-{}", request.subscription_id)) }
        }
    }
}

/// Implements every [`VendorConnector`] action with the connector's one `call` method.
macro_rules! connector_calls {
    ($connector:ty) => {
        #[async_trait]
        impl VendorConnector for $connector {
            async fn purchase(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
            async fn change_quantity(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
            async fn suspend(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
            async fn resume(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
            async fn cancel(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
            async fn renew(&self, request: &VendorRequest) -> Outcome {
                self.call(request).await
            }
        }
    };
}

connector_calls!(SandboxConnector);

/// A vendor reached over HTTP.
pub struct HttpConnector {
    client: reqwest::Client,
    url: String,
    secret: String,
    timeout: Duration,
}

/// The signature header value of a body: `sha256=<hex HMAC-SHA256>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        Hmac::<Sha256>::new_from_slice(b"-").unwrap_or_else(|_| unreachable!())
    });
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl HttpConnector {
    async fn call(&self, request: &VendorRequest) -> Outcome {
        if self.url.is_empty() {
            return Outcome::Abandoned { error: "the vendor's connector has no url configured".into() };
        }
        let body = json!({
            "requestId": request.request_id,
            "action": action_path(request.action),
            "subscriptionId": request.subscription_id,
            "payload": request.payload,
        })
        .to_string();
        let sent = self
            .client
            .post(format!("{}/{}", self.url, action_path(request.action)))
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("x-request-id", &request.request_id)
            .header("x-switchyard-signature", signature(&self.secret, body.as_bytes()))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Outcome::Transient { error: "the vendor did not answer in time".into(), retry_after: None };
            }
            Err(error) => {
                return Outcome::Transient { error: format!("cannot reach the vendor: {error}"), retry_after: None };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = read_at_most(response, MAX_ANSWER_BYTES).await;
        let message: String = text.chars().take(500).collect();
        if status.is_success() {
            let reference = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["reference"].as_str().map(str::to_owned));
            Outcome::Succeeded { reference }
        } else if matches!(status.as_u16(), 408 | 429) || status.is_server_error() {
            Outcome::Transient { error: format!("vendor answered {status}: {message}"), retry_after }
        } else if matches!(status.as_u16(), 400 | 409 | 422) {
            // The vendor's own answer about the request: it will not do it.
            Outcome::Permanent { error: format!("vendor refused ({status}): {message}") }
        } else {
            // 401, 403, 404…: the call never reached a decision (credentials, endpoint). Not a
            // refusal: the job is DEAD, a change unconfirmed, until the operator fixes the
            // connector and retries.
            Outcome::Abandoned { error: format!("the vendor's endpoint answered {status}: {message}") }
        }
    }
}

connector_calls!(HttpConnector);

/// The most of a vendor's answer read: its reference or its error fits many times over; a
/// vendor streaming more cannot fill the process's memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The first `limit` bytes of a response body, as text (lossy).
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
