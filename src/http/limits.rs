//! Rate limits at the door (`crate::rate_limit`, `graphql::rate`): who pays — the user's
//! API keys, the signed-in user (a development token: its role and organisation), or the
//! anonymous client's address — one token to be let in (an export: `EXPORT_COST`), else 429
//! at once; the operations' cost charged as they are prepared and validated; every answer
//! carries the IETF `RateLimit-Policy` and `RateLimit` headers, and an answer whose every
//! operation was refused for want of tokens is 429 with `Retry-After`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse};

use super::caller::{Caller, client_address};
use crate::domain::Actor;
use crate::graphql::rate::RateCharge;
use crate::rate_limit::{Standing, Subject};
use crate::state::AppState;

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const LIMIT: HeaderName = HeaderName::from_static("ratelimit");

fn subject(state: &AppState, request: &HttpRequest, actor: Option<&Actor>) -> Subject {
    match actor {
        Some(actor) => Subject::of(actor),
        None => Subject::address(client_address(request, &state.config.trusted_proxies)),
    }
}

/// Lets a request in for one token: its charge (None when its kind is not limited), or the
/// 429 answer.
pub(super) fn admit(
    state: &AppState,
    request: &HttpRequest,
    actor: Option<&Actor>,
    graphql_json: bool,
) -> Result<Option<Arc<RateCharge>>, Box<HttpResponse>> {
    admit_for(state, request, actor, graphql_json, 1)
}

/// Lets a request costing `cost` tokens in: as [`admit`].
pub(super) fn admit_for(
    state: &AppState,
    request: &HttpRequest,
    actor: Option<&Actor>,
    graphql_json: bool,
    cost: u32,
) -> Result<Option<Arc<RateCharge>>, Box<HttpResponse>> {
    let subject = subject(state, request, actor);
    let Some(mut standing) = state.limiter.take(&subject, cost) else { return Ok(None) };
    if standing.beyond_capacity {
        standing.retry_after = None;
        let mut refused = super::graphql::error_response(
            StatusCode::BAD_REQUEST,
            &format!("this request costs {cost} tokens, more than the limit allows ({})", standing.policy.tokens),
            "BAD_USER_INPUT",
            graphql_json,
        );
        headers(&mut refused, &standing);
        return Err(Box::new(refused));
    }
    if let Some(seconds) = standing.retry_after {
        let mut refused = super::graphql::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("rate limit: try again in {seconds} s"),
            "RATE_LIMITED",
            graphql_json,
        );
        headers(&mut refused, &standing);
        return Err(Box::new(refused));
    }
    Ok(Some(RateCharge::new(Arc::clone(&state.limiter), subject, standing)))
}

/// Puts the bucket's standing on `response`, which answered `operations` operations; 429
/// with `Retry-After` when every one of them was refused for want of tokens (a batch some of
/// which ran is a 200 that carries the refusals in its items).
pub(super) fn finish(response: &mut HttpResponse, charge: Option<&RateCharge>, operations: usize) {
    let Some(charge) = charge else { return };
    let Some(mut standing) = charge.standing() else { return };
    let refused = charge.refused();
    if refused > 0 && refused >= operations && standing.retry_after.is_some() {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    } else {
        standing.retry_after = None;
    }
    headers(response, &standing);
}

/// A request whose credentials were refused costs its client's address a token of a bucket
/// kept for refusals (a key or token guessed is not free to try; anonymous traffic from the
/// same address is not charged for it); Err(seconds to wait) when the address had none
/// left — the refusal is then a 429. Valid credentials are never held back by it.
pub(super) fn charge_refused_credentials(state: &AppState, request: &HttpRequest) -> Result<(), u64> {
    let subject = Subject::refused(client_address(request, &state.config.trusted_proxies));
    match state.limiter.take(&subject, 1).and_then(|s| s.retry_after) {
        Some(seconds) => Err(seconds),
        None => Ok(()),
    }
}

fn headers(response: &mut HttpResponse, standing: &Standing) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&standing.policy_header()) {
        headers.insert(POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&standing.limit_header()) {
        headers.insert(LIMIT, value);
    }
    if let Some(seconds) = standing.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
}

/// Runs an export (a CSV, a printable invoice) for its caller, let in for
/// [`crate::rate_limit::EXPORT_COST`] tokens; the answer carries the bucket's standing.
pub(super) async fn export<F, R>(state: &AppState, request: &HttpRequest, caller: Caller, run: F) -> HttpResponse
where
    F: FnOnce(Actor) -> R,
    R: std::future::Future<Output = HttpResponse>,
{
    let Ok(actor) = caller.required() else { return super::invoices::failure(crate::domain::Error::Unauthenticated) };
    let charge = match admit_for(state, request, Some(&actor), false, crate::rate_limit::EXPORT_COST) {
        Ok(charge) => charge,
        Err(refused) => return *refused,
    };
    let mut response = run(actor).await;
    finish(&mut response, charge.as_deref(), 1);
    response
}
