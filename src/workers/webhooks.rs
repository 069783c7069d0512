//! Sending webhook deliveries (`domain::webhooks::deliveries`): a signed POST of the frozen
//! body to the endpoint, within the try's timeout (less than half the job's lease, so a try
//! never outlives its claim), redirects not followed. A 2xx answer delivers it; 408, 429 and
//! 5xx answers and no answer at all are tried again on the schedule (the receiver's
//! Retry-After honoured); any other answer fails it at once. Each try is recorded with its
//! status, latency and the answer's first bytes, and counted in the metrics.
//!
//! Unless the deployment allows local endpoints, the client resolves names to public
//! addresses only, and an address written in the URL must be public: a tenant's endpoint
//! cannot make the server call into the operator's network (nor a name re-pointed there
//! after it was checked, as the check is the connection's own resolution).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use crate::domain::Domain;
use crate::domain::jobs::{ClaimedJob, Outcome};
use crate::domain::webhooks::deliveries::{self, Send, Tried};
use crate::domain::webhooks::{is_local, signing};

/// Bytes of an answer kept in the log.
const EXCERPT_BYTES: usize = 1_024;

/// Resolves a name to its public addresses only; none is an error.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|address| !is_local(address.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client of webhook tries: no redirects, no proxy from the environment, and (unless
/// `local`) public addresses only; None when it cannot be built (nothing is sent then: a
/// default client would follow redirects and reach any address).
fn client(local: bool) -> Option<&'static reqwest::Client> {
    static GUARDED: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    static LOCAL: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let build = || {
        let builder =
            reqwest::Client::builder().use_rustls_tls().redirect(reqwest::redirect::Policy::none()).no_proxy();
        let builder = if local { builder } else { builder.dns_resolver(std::sync::Arc::new(PublicOnly)) };
        builder.build().inspect_err(|error| tracing::error!(%error, "the webhook client cannot be built")).ok()
    };
    if local { LOCAL.get_or_init(build).as_ref() } else { GUARDED.get_or_init(build).as_ref() }
}

/// Sends the delivery of the claimed job and records the try.
pub(super) async fn deliver(domain: &Domain, worker: &str, claimed: &ClaimedJob) -> crate::domain::Result<()> {
    let send = match deliveries::to_send(domain, claimed).await? {
        Ok(send) => send,
        Err(reason) => {
            deliveries::give_up(domain, claimed, reason, false).await?;
            return Ok(());
        }
    };
    let local = domain.webhooks.allow_local;
    let literal_local = reqwest::Url::parse(&send.url).ok().is_some_and(|url| match url.host() {
        Some(url::Host::Ipv4(v4)) => is_local(v4.into()),
        Some(url::Host::Ipv6(v6)) => is_local(v6.into()),
        _ => false,
    });
    if literal_local && !local {
        deliveries::give_up(domain, claimed, "the endpoint's address is not public".into(), false).await?;
        return Ok(());
    }
    let Some(client) = client(local) else {
        deliveries::give_up(domain, claimed, "webhooks cannot be sent by this server now".into(), false).await?;
        return Ok(());
    };
    let tried = attempt(domain, client, &send).await?;
    let outcome = match tried.outcome {
        Outcome::Succeeded { .. } => "delivered",
        Outcome::Transient { .. } => "retry",
        Outcome::Permanent { .. } | Outcome::Abandoned { .. } => "failed",
    };
    metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
    #[allow(clippy::cast_precision_loss, reason = "milliseconds of one try")]
    metrics::histogram!("webhook_delivery_duration_seconds").record(tried.latency_ms as f64 / 1000.0);
    match deliveries::record(domain, claimed, &send, tried).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = claimed.job.id, worker, "lease lost: the webhook try is not recorded"),
        // The job stays claimed until its lease ends, then is tried again (an attempt).
        Err(error) => tracing::error!(job = claimed.job.id, worker, %error, "a webhook try could not be recorded"),
    }
    Ok(())
}

/// One signed POST of `send`, and what came of it.
async fn attempt(domain: &Domain, client: &reqwest::Client, send: &Send) -> crate::domain::Result<Tried> {
    let at = domain.clock.now();
    let timestamp = at.timestamp();
    let secrets: Vec<&str> = send.secrets.iter().map(String::as_str).collect();
    let signature = signing::header(&secrets, &send.message_id, timestamp, &send.body)?;
    let timeout = domain.webhooks.timeout.min(domain.jobs.lease / 2).max(Duration::from_millis(100));
    let started = Instant::now();
    let request = client
        .post(&send.url)
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("Switchyard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &send.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(send.body.clone());
    let answered = request.send().await;
    let (status_code, excerpt, retry_after, error) = match answered {
        Ok(mut response) => {
            let status = response.status();
            let retry_after =
                response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, at));
            let mut kept = Vec::new();
            let left = timeout.saturating_sub(started.elapsed());
            let _ = tokio::time::timeout(left, async {
                while kept.len() < EXCERPT_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            kept.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - kept.len())])
                        }
                        _ => break,
                    }
                }
            })
            .await;
            // Text a database column takes: no NUL.
            let excerpt = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).replace('\0', "\u{fffd}"));
            let error = (!status.is_success()).then(|| format!("the endpoint answered {status}"));
            (Some(status.as_u16()), excerpt, retry_after, error)
        }
        Err(failure) => {
            // Said in general terms: the tenant reads it, and the cause (a name that does not
            // resolve, or resolves only to local addresses) would let it probe the
            // operator's network. The cause is logged for the operator.
            let what = if failure.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else if failure.is_connect() {
                "the endpoint could not be reached (no public address answered)".to_owned()
            } else {
                "the request failed before an answer".to_owned()
            };
            tracing::info!(delivery = send.delivery_id, cause = %root_cause(&failure), "a webhook try got no answer");
            (None, None, None, Some(what))
        }
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match (status_code, error.clone()) {
        (Some(200..=299), _) => Outcome::Succeeded { reference: None },
        (Some(408 | 429 | 500..=599) | None, error) => {
            Outcome::Transient { error: error.unwrap_or_default(), retry_after }
        }
        (Some(_), error) => Outcome::Permanent { error: error.unwrap_or_default() },
    };
    Ok(Tried { at, status_code, latency_ms, excerpt, error, outcome })
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110), from `now`.
fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// The innermost cause of an error, as text (reqwest's own message names only the URL).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::retry_after;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").map(|d| d.to_utc()).unwrap_or_default();
        assert_eq!(retry_after("120", now), Some(std::time::Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(std::time::Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), None);
        assert_eq!(retry_after("soon", now), None);
    }
}
