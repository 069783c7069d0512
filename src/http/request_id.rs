//! Request ids and trace context: every HTTP request gets an id — the caller's `X-Request-Id`
//! when it is a sane one (1 to 128 visible ASCII characters), else a fresh UUID — returned
//! in the response's `X-Request-Id`, carried by a tracing span around the whole request (so
//! every log line of it names it, in JSON logs a field), and put in the extensions of an
//! INTERNAL GraphQL error, so a caller's report leads to the logs. A W3C `traceparent`
//! (version 00) puts its trace id in the same span. One access-log line per request
//! (`request served`: method, path, status, milliseconds) ends it, and it is counted in
//! the metrics by route pattern, method and status.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Instrument;

/// The header that carries the id both ways.
pub const HEADER: &str = "x-request-id";

/// A request's id, in its extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The id of `request` (every request passing the middleware has one).
pub fn of(request: &HttpRequest) -> Option<String> {
    request.extensions().get::<RequestId>().map(|id| id.0.clone())
}

/// The caller's id when it is one we can log and echo safely.
fn given(request: &ServiceRequest) -> Option<String> {
    let value = request.headers().get(HEADER)?.to_str().ok()?.trim();
    let sane = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_owned())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), not all zeros.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = given(&request).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let trace =
        request.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(trace_id).map(str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // A route's pattern (`/invoices/{id}`), never its path: labels stay bounded.
    let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    // A fixed set: any token is a method to HTTP, and each would be a new series.
    let method = match request.method().as_str() {
        known @ ("GET" | "POST" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "PATCH") => known,
        _ => "other",
    }
    .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = trace.as_deref().unwrap_or(""),
        method = %request.method(),
        path = %request.path(),
    );
    #[cfg(feature = "otel")]
    join_trace(&span, request.headers());
    let started = std::time::Instant::now();
    let mut response = next.call(request).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static(HEADER), value);
    }
    let took = started.elapsed();
    crate::metrics::http_request(&route, &method, response.status().as_u16(), took);
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), ms = took.as_millis(), "request served");
    });
    Ok(response)
}

/// Makes `span` (exported by OpenTelemetry) a child of the trace a request's `traceparent`
/// names, if any (the propagator `telemetry::otel` installs).
#[cfg(feature = "otel")]
fn join_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Headers<'a>(&'a actix_web::http::header::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(actix_web::http::header::HeaderName::as_str).collect()
        }
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn a_traceparent_gives_its_trace_id_only_when_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
