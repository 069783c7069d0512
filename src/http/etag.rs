//! Validators for cacheable GET responses (catalog queries): a strong `ETag` from the body's
//! SHA-256, 304 Not Modified to a matching `If-None-Match`, and `Cache-Control: public`
//! for the catalog's TTL (`no-cache` without one: always revalidated), varying by
//! `Authorization` (prices are the caller's organisation's) and `Accept` (the media type).

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// `response` (200, a catalog query's) with its validators, or 304 when the client has it.
pub async fn cacheable(request: &HttpRequest, response: HttpResponse, ttl: Duration) -> HttpResponse {
    if response.status() != actix_web::http::StatusCode::OK {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let Ok(body) = actix_web::body::to_bytes(response.into_body()).await else {
        return HttpResponse::InternalServerError().finish();
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let has_it = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag));
    let cache_control =
        if ttl.is_zero() { "public, no-cache".to_owned() } else { format!("public, max-age={}", ttl.as_secs()) };
    let mut builder = if has_it { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    builder
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, HeaderValue::from_static("Authorization, Accept")));
    if has_it {
        return builder.finish();
    }
    if let Some(content_type) = content_type {
        builder.insert_header((header::CONTENT_TYPE, content_type));
    }
    builder.body(body)
}
