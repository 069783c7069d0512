//! Who is calling: the one place that turns a request's credentials into a verified caller.
//!
//! Every entry point uses it — `/graphql` over HTTP, the WebSocket handshake
//! (`connection_init`) and the invoice exports — so a token is read by one set of rules:
//! - the `Authorization` header carries `Bearer <token>`; the scheme is matched without
//!   regard to case (RFC 9110 §11.1) and surrounding blanks are ignored;
//! - no header means an anonymous caller; a header that is not a bearer token, or a token
//!   that fails verification, is refused with one response: 401 `UNAUTHENTICATED` with
//!   `WWW-Authenticate: Bearer`;
//! - a WebSocket client, which cannot set headers from a browser, sends the same value as
//!   `authorization` in its `connection_init` payload (or the bare token as `token`);
//! - a verified token is honoured only while its organisation is active and its user
//!   enabled (`domain::standing`, cached for seconds): a suspended reseller or a disabled
//!   user is refused like a bad token, as is a token for an organisation that never existed.
//!
//! - an API key (`sy_…`, `domain::api_keys`) is sent the same ways as a JWT and looked up on
//!   each request: a revoked key is refused at once, in every process;
//! - refused credentials cost the client's address a token of a bucket kept for refusals;
//!   a refusal from an address with none left is 429 (valid credentials are always let in:
//!   others behind the same NAT are not locked out by a guesser).

use futures_util::future::LocalBoxFuture;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::VerifiedToken;
use crate::domain::Actor;
use crate::graphql::errors::request_error;
use crate::state::AppState;

/// The header credentials come in, as others (CORS) must name it.
pub const CREDENTIALS_HEADER: header::HeaderName = header::AUTHORIZATION;

/// The media type of GraphQL responses (GraphQL over HTTP).
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The caller of an HTTP request: `None` when no credentials were sent.
#[derive(Clone, Debug)]
pub struct Caller(pub Option<Actor>);

impl Caller {
    /// The caller, or 401 when the request is anonymous (the exports need a caller).
    pub fn required(self) -> Result<Actor, Unauthenticated> {
        self.0.ok_or(Unauthenticated::default())
    }
}

/// Credentials were sent and refused, or were required and missing — or could not be
/// checked now (the database did not answer an API key's lookup: 503, not a verdict on it).
#[derive(Debug, Default)]
pub struct Unauthenticated {
    /// Whether the client accepts `application/graphql-response+json`.
    graphql_json: bool,
    /// The credentials could not be checked.
    unavailable: bool,
    /// The client's address has tried too many refused credentials: seconds to wait.
    rate_limited: Option<u64>,
}

impl std::fmt::Display for Unauthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(seconds) = self.rate_limited {
            return write!(f, "rate limit: too many refused credentials; try again in {seconds} s");
        }
        f.write_str(if self.unavailable {
            "credentials cannot be checked now; try again"
        } else {
            "invalid or expired token"
        })
    }
}

impl ResponseError for Unauthenticated {
    fn status_code(&self) -> StatusCode {
        if self.rate_limited.is_some() {
            StatusCode::TOO_MANY_REQUESTS
        } else if self.unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    fn error_response(&self) -> HttpResponse {
        let content_type = if self.graphql_json { GRAPHQL_RESPONSE_JSON } else { "application/json" };
        if let Some(seconds) = self.rate_limited {
            let body = serde_json::json!({ "errors": [request_error(self.to_string(), "RATE_LIMITED")] });
            return HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)))
                .content_type(content_type)
                .json(body);
        }
        if self.unavailable {
            let body = serde_json::json!({ "errors": [request_error(self.to_string(), "UNAVAILABLE")] });
            return HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")))
                .content_type(content_type)
                .json(body);
        }
        let body = serde_json::json!({ "errors": [request_error(self.to_string(), "UNAUTHENTICATED")] });
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
            .content_type(content_type)
            .json(body)
    }
}

impl FromRequest for Caller {
    type Error = Unauthenticated;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let presented = presented_token(request);
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let refused =
            Unauthenticated { graphql_json: accepts_graphql_response(request), unavailable: false, rate_limited: None };
        let request = request.clone();
        Box::pin(async move {
            let Some(token) = presented? else { return Ok(Caller(None)) };
            let Some(state) = state else {
                tracing::error!("the application state is not registered; refusing the credentials");
                return Err(refused);
            };
            match authenticate(&state, &token).await {
                Ok(Some(verified)) => Ok(Caller(Some(verified.actor))),
                Ok(None) => match super::limits::charge_refused_credentials(&state, &request) {
                    Ok(()) => Err(refused),
                    Err(seconds) => Err(Unauthenticated { rate_limited: Some(seconds), ..refused }),
                },
                Err(Unavailable) => Err(Unauthenticated { unavailable: true, ..refused }),
            }
        })
    }
}

/// An API key could not be looked up (the database did not answer).
#[derive(Debug)]
pub struct Unavailable;

/// The caller a token stands for — a JWT, or an API key (`domain::api_keys`) — while it is
/// in good standing; None when it is refused.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<VerifiedToken>, Unavailable> {
    let verified = if crate::domain::api_keys::is_key(token) {
        match crate::domain::api_keys::authenticate(&state.domain, token).await {
            // A key does not expire; it is revoked (and checked again on each use).
            Ok(Some(actor)) => VerifiedToken { actor, expires_at: i64::MAX },
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%error, "could not look an API key up");
                return Err(Unavailable);
            }
        }
    } else {
        let Ok(verified) = state.auth.verify(token) else { return Ok(None) };
        verified
    };
    Ok(in_good_standing(state, &verified.actor).await.then_some(verified))
}

/// Whether the verified `actor` may act now. A database that cannot answer lets it through:
/// whatever it asks for needs that database too, and fails there with its own error.
async fn in_good_standing(state: &AppState, actor: &Actor) -> bool {
    match state.domain.standing.check(&state.domain, actor).await {
        Ok(good) => good,
        Err(error) => {
            tracing::warn!(%error, "could not check the caller's standing");
            true
        }
    }
}

/// The bearer token of a request's `Authorization` header: None without one, refused when
/// the header is not a bearer token.
fn presented_token(request: &HttpRequest) -> Result<Option<String>, Unauthenticated> {
    let refused =
        || Unauthenticated { graphql_json: accepts_graphql_response(request), unavailable: false, rate_limited: None };
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let header = value.to_str().map_err(|_| refused())?;
    bearer_token(header).map(|token| Some(token.to_owned())).ok_or_else(refused)
}

/// Whether a scrape of `/metrics` may read them: with `expected` set, its bearer token must
/// be `expected` (compared in constant time); without, the peer must be this machine.
pub fn may_scrape_metrics(request: &HttpRequest, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return request.peer_addr().is_some_and(|peer| peer.ip().is_loopback());
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The token of an `Authorization` value: `Bearer <token>`, scheme in any case.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The verified token of a WebSocket `connection_init` payload, with the token itself (an
/// API key is checked again while the connection lives): `authorization` (or
/// `Authorization`), else `token`, each either an `Authorization` header value
/// (`Bearer <jwt>`) or the bare token, as browser clients often send one; `None` also when
/// its caller is no longer in good standing.
pub async fn connection_init_token(state: &AppState, payload: &Value) -> Option<(VerifiedToken, String)> {
    let value = ["authorization", "Authorization", "token"].iter().find_map(|key| payload[*key].as_str())?;
    let token = bearer_token(value).unwrap_or(value.trim()).to_owned();
    let verified = authenticate(state, &token).await.ok().flatten()?;
    Some((verified, token))
}

/// Whether the client accepts `application/graphql-response+json`.
pub fn accepts_graphql_response(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|media| media.trim().starts_with(GRAPHQL_RESPONSE_JSON)))
}

/// The address of the client behind a request: the peer's, unless the peer is one of the
/// `trusted` proxies; then `X-Forwarded-For` is read from its end (each proxy appends the
/// address it saw), past the trusted proxies, and the first address that is not one is the
/// client (what the client itself wrote before it is not believed). An entry that is not an
/// address (`unknown`) ends the reading: the last trusted hop is the client then. Ports
/// (`203.0.113.7:5555`, `[2001:db8::1]:443`) are ignored. `None` when the peer is unknown.
pub fn client_address(request: &HttpRequest, trusted: &[crate::config::IpRange]) -> Option<std::net::IpAddr> {
    let is_trusted = |address: std::net::IpAddr| trusted.iter().any(|range| range.contains(address));
    let mut client = request.peer_addr()?.ip();
    if !is_trusted(client) {
        return Some(client);
    }
    // Split as bytes: a line with bytes that are not text (a client may send them) still
    // holds the entries the proxies appended after it.
    let entries: Vec<&[u8]> =
        request.headers().get_all("x-forwarded-for").flat_map(|value| value.as_bytes().split(|b| *b == b',')).collect();
    for entry in entries.into_iter().rev() {
        let Some(address) = std::str::from_utf8(entry).ok().and_then(forwarded_address) else { break };
        client = address;
        if !is_trusted(address) {
            break;
        }
    }
    Some(client)
}

/// An `X-Forwarded-For` entry's address, without a port.
fn forwarded_address(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse() {
        return Some(address);
    }
    if let Some(bracketed) = entry.strip_prefix('[') {
        return bracketed.split_once(']').and_then(|(address, _)| address.parse().ok());
    }
    entry.rsplit_once(':').and_then(|(address, port)| port.parse::<u16>().ok().and_then(|_| address.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, client_address};

    /// The client a request from `peer` with these `X-Forwarded-For` lines is taken for,
    /// behind the proxies of 10.0.0.0/8.
    fn client(peer: &str, lines: &[&[u8]]) -> Option<String> {
        let mut request = actix_web::test::TestRequest::default().peer_addr(peer.parse().ok()?);
        for line in lines {
            let value = actix_web::http::header::HeaderValue::from_bytes(line).ok()?;
            request = request.append_header(("x-forwarded-for", value));
        }
        let trusted = ["10.0.0.0/8".parse().ok()?];
        client_address(&request.to_http_request(), &trusted).map(|a| a.to_string())
    }

    #[test]
    fn the_client_is_read_from_the_end_of_the_forwarded_chain_past_trusted_proxies() {
        let got = |peer, lines: &[&[u8]]| client(peer, lines).unwrap_or_default();
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(got("203.0.113.9:1000", &[b"198.51.100.1"]), "203.0.113.9");
        // Through two proxies; what the client wrote first is not believed.
        assert_eq!(got("10.0.0.1:1000", &[b"6.6.6.6, 203.0.113.7, 10.0.0.2"]), "203.0.113.7");
        // Several lines, in order; ports and brackets.
        assert_eq!(got("10.0.0.1:1000", &[b"6.6.6.6", b"203.0.113.7:5555"]), "203.0.113.7");
        assert_eq!(got("10.0.0.1:1000", &[b"[2001:db8::1]:443"]), "2001:db8::1");
        assert_eq!(got("10.0.0.1:1000", &[b"[2001:db8::2]"]), "2001:db8::2");
        // A line with bytes that are not text keeps what the proxy appended after them.
        assert_eq!(got("10.0.0.1:1000", &[b"\xff\xfe, 203.0.113.7"]), "203.0.113.7");
        // An entry that is not an address stops the reading at the last trusted hop.
        assert_eq!(got("10.0.0.1:1000", &[b"203.0.113.7, unknown, 10.0.0.2"]), "10.0.0.2");
        assert_eq!(got("10.0.0.1:1000", &[]), "10.0.0.1");
        // A peer mapped into IPv6 is trusted as its IPv4 address.
        assert_eq!(got("[::ffff:10.0.0.1]:1000", &[b"203.0.113.7"]), "203.0.113.7");
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case_and_blanks_are_ignored() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token(" Bearer\tabc"), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_refused() {
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
