//! Validators for cacheable GET responses (catalog queries): a strong `ETag` from the body's
//! SHA-256, 304 Not Modified to a matching `If-None-Match` (with the answer's other headers:
//! the rate limit's standing), and `Cache-Control` for the catalog's TTL (`no-cache`
//! without one: always revalidated) — `private`, as prices are the caller's organisation's
//! and no shared cache may hand them to another, unless the deployment says its CDN keys
//! its cache by `Authorization` (`SWITCHYARD_CATALOG_SHARED_CACHE`: `public`) — varying by
//! `Authorization` and `Accept` (the media type).

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// `response` (200, a catalog query's) with its validators, or 304 when the client has it.
pub async fn cacheable(request: &HttpRequest, response: HttpResponse, ttl: Duration, shared: bool) -> HttpResponse {
    if response.status() != actix_web::http::StatusCode::OK {
        return response;
    }
    let kept = response.headers().clone();
    let Ok(body) = actix_web::body::to_bytes(response.into_body()).await else {
        return HttpResponse::InternalServerError().finish();
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let has_it = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag));
    let scope = if shared { "public" } else { "private" };
    let cache_control =
        if ttl.is_zero() { format!("{scope}, no-cache") } else { format!("{scope}, max-age={}", ttl.as_secs()) };
    let mut builder = if has_it { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    for (name, value) in &kept {
        let about_the_body = [header::CONTENT_TYPE, header::CONTENT_LENGTH].contains(name);
        if !about_the_body || !has_it {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    builder
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, HeaderValue::from_static("Authorization, Accept")));
    if has_it {
        return builder.finish();
    }
    builder.body(body)
}
