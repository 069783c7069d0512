//! Rate limits at the door (`crate::rate_limit`, `graphql::rate`): who pays — the API key,
//! the signed-in user (a development token: its role and organisation), or the anonymous
//! client's address — one token to be let in (else 429 at once), the operations' cost
//! charged as they are validated; every answer carries the IETF `RateLimit-Policy` and
//! `RateLimit` headers, and an answer refused for want of tokens is 429 with `Retry-After`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse};

use super::caller::client_address;
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
    let subject = subject(state, request, actor);
    let Some(standing) = state.limiter.take(&subject, 1) else { return Ok(None) };
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

/// Puts the bucket's standing on `response`; 429 with `Retry-After` when an operation was
/// refused for want of tokens.
pub(super) fn finish(response: &mut HttpResponse, charge: Option<&RateCharge>) {
    let Some(standing) = charge.and_then(RateCharge::standing) else { return };
    if charge.is_some_and(RateCharge::refused) {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    headers(response, &standing);
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
