//! GraphQL subscriptions over WebSocket at `/graphql`: the `graphql-transport-ws` protocol,
//! and the legacy `graphql-ws` (subscriptions-transport-ws) one.
//!
//! The token travels in `connection_init` (`{"authorization": "Bearer …"}`); streams are
//! scoped by it exactly like queries. Close codes (graphql-transport-ws):
//! - 4400 a message that is not valid for the protocol;
//! - 4401 `subscribe` before the connection was acknowledged;
//! - 4403 a missing or invalid token, and when the token expires (streams end then);
//! - 4408 no `connection_init` within the init timeout;
//! - 4409 a second `subscribe` with an id still in use;
//! - 4429 a second `connection_init`, or refused credentials from an address past its limit;
//! - 1001 the server is shutting down (its streams are completed first): reconnect.
//!
//! A connection holds at most `ws_max_subscriptions` streams; more get an `error` message.
//!
//! The connection runs in a span of its own that names its handshake's request id (and
//! follows from the handshake's span): every log line of it names that id, an INTERNAL
//! error of its streams carries it in its extensions, and a `websocket closed` line (close
//! code, seconds open) ends it.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth::VerifiedToken;
use crate::domain::Actor;
use crate::graphql::errors::finalize;
use crate::graphql::live::{HandOver, Payload, Template, Unfit};
use crate::graphql::rate::RateCharge;
use crate::graphql::{LoginAllowance, RequestContext};
use crate::state::AppState;

/// The modern protocol.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy protocol.
pub const LEGACY_WS: &str = "graphql-ws";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// GET /graphql with `Upgrade: websocket`.
pub async fn upgrade(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let (response, session, messages) = actix_ws::handle_with_protocols(&request, body, &[TRANSPORT_WS, LEGACY_WS])?;
    let protocol = match response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()) {
        Some(LEGACY_WS) => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    let client = super::caller::client_address(&request, &state.config.trusted_proxies);
    let request_id = super::request_id::of(&request);
    let connection = Connection { protocol, client, request_id };
    // A span of the connection's own (it lives as long as the connection), naming the
    // handshake's request id and following from its span.
    let span = tracing::info_span!("websocket", request_id = connection.request_id.as_deref().unwrap_or(""));
    span.follows_from(tracing::Span::current());
    actix_web::rt::spawn(run(state.into_inner(), connection, session, messages).instrument(span));
    Ok(response)
}

fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code: CloseCode::Other(code), description: Some(description.to_owned()) })
}

/// Sends a JSON message; false when the peer is gone.
async fn send(session: &mut Session, message: Value) -> bool {
    send_text(session, message.to_string()).await
}

/// Sends a message already serialized.
async fn send_text(session: &mut Session, message: String) -> bool {
    metrics::counter!("websocket_messages_sent_total").increment(1);
    session.text(message).await.is_ok()
}

/// What a connection knows of its handshake.
struct Connection {
    protocol: Protocol,
    client: Option<std::net::IpAddr>,
    /// The handshake's request id.
    request_id: Option<String>,
}

async fn run(
    state: std::sync::Arc<AppState>,
    connection: Connection,
    mut session: Session,
    mut messages: actix_ws::MessageStream,
) {
    let Connection { protocol, client, request_id } = connection;
    let opened = std::time::Instant::now();
    // Counted while the connection lives (decremented however it ends).
    struct Open;
    impl Drop for Open {
        fn drop(&mut self) {
            metrics::gauge!("websocket_connections").decrement(1.0);
        }
    }
    metrics::gauge!("websocket_connections").increment(1.0);
    let _open = Open;
    let init_timeout = state.config.ws_init_timeout;
    let mut token: Option<VerifiedToken> = None;
    // An API key's connection checks the key again on each subscribe and every minute: a
    // revoked key (or its user or organisation no longer in good standing) is closed.
    let mut key: Option<String> = None;
    let mut key_check = far_future_from_now();
    let mut streams: HashMap<String, actix_web::rt::task::JoinHandle<()>> = HashMap::new();
    let (finished_tx, mut finished_rx) = mpsc::channel::<String>(64);
    let init_deadline = tokio::time::Instant::now() + init_timeout;
    let far_future = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let shutdown = state.shutdown.clone();
    let reason = loop {
        let expiry = token.as_ref().map_or(far_future, |t| expiry_instant(t.expires_at));
        let deadline = if token.is_none() { init_deadline } else { expiry.min(key_check) };
        let message = tokio::select! {
            message = messages.next() => message,
            () = shutdown.triggered() => {
                // The streams stop first (no `next` after their `complete`); a client that
                // reads nothing more cannot hold the shutdown up.
                for (id, handle) in &streams {
                    handle.abort();
                    let completed = send(&mut session, complete_message(protocol, id));
                    if tokio::time::timeout(Duration::from_secs(1), completed).await.is_err() {
                        break;
                    }
                }
                break Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("Going away: the server is shutting down".into()),
                });
            }
            Some(id) = finished_rx.recv() => {
                streams.remove(&id);
                continue;
            }
            () = tokio::time::sleep_until(deadline) => {
                if token.is_none() {
                    break close(4408, "Connection initialisation timeout");
                }
                if deadline == key_check && deadline < expiry {
                    key_check = tokio::time::Instant::now() + KEY_CHECK_EVERY;
                    if key_still_good(&state, key.as_deref()).await {
                        continue;
                    }
                    for id in streams.keys() {
                        send(&mut session, complete_message(protocol, id)).await;
                    }
                    break close(4403, "Forbidden: the API key was revoked");
                }
                for id in streams.keys() {
                    send(&mut session, complete_message(protocol, id)).await;
                }
                break close(4403, "Forbidden: the token expired");
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(bytes))) => {
                let _ = session.pong(&bytes).await;
                continue;
            }
            // A frame past the size the server takes (64 KiB): "message too big".
            Some(Err(actix_ws::ProtocolError::Overflow)) => break close(1009, "Message too big"),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
            Some(Ok(_)) => continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else { break close(4400, "Invalid message") };
        let kind = value["type"].as_str().unwrap_or_default();
        let id = value["id"].as_str().map(str::to_owned);
        match (protocol, kind) {
            (_, "connection_init") => {
                if token.is_some() {
                    break close(4429, "Too many initialisation requests");
                }
                // Boxed, as every rare and large wait of the connection's task: the task holds the
                // space of its largest wait for as long as it lives.
                match Box::pin(super::caller::connection_init_token(&state, &value["payload"])).await {
                    Some((verified, presented)) => {
                        if verified.actor.api_key_id.is_some() {
                            key = Some(presented);
                            key_check = tokio::time::Instant::now() + KEY_CHECK_EVERY;
                        }
                        token = Some(verified);
                        if !send(&mut session, json!({"type": "connection_ack"})).await {
                            break None;
                        }
                    }
                    None => {
                        // Refused credentials cost the client's address, as over HTTP; past
                        // its limit the connection is closed as too many (4429).
                        let refusals = state.limiter.take(&crate::rate_limit::Subject::refused(client), 1);
                        if refusals.is_some_and(|s| s.retry_after.is_some()) {
                            break close(4429, "Too many refused credentials");
                        }
                        if protocol == Protocol::Legacy {
                            send(
                                &mut session,
                                json!({"type": "connection_error", "payload": {"message": "Forbidden"}}),
                            )
                            .await;
                        }
                        break close(4403, "Forbidden");
                    }
                }
            }
            (Protocol::TransportWs, "ping") => {
                send(&mut session, json!({"type": "pong"})).await;
            }
            (Protocol::TransportWs, "pong") => {}
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(verified) = token.as_ref() else {
                    break close(4401, "Unauthorized");
                };
                let Some(id) = id else { break close(4400, "Invalid message: missing id") };
                // Each operation is admitted for a token — before anything else is done for
                // it, refused ones too — and charged its complexity, as on HTTP.
                let subject = crate::rate_limit::Subject::of(&verified.actor);
                let charge = match state.limiter.take(&subject, 1) {
                    Some(crate::rate_limit::Standing { retry_after: Some(seconds), .. }) => {
                        let error = json!([{"message": format!("rate limit: try again in {seconds} s"), "extensions": {"code": "RATE_LIMITED", "retryAfter": seconds}}]);
                        send(&mut session, json!({"type": "error", "id": id, "payload": error})).await;
                        continue;
                    }
                    Some(standing) => Some(RateCharge::new(std::sync::Arc::clone(&state.limiter), subject, standing)),
                    None => None,
                };
                // An API key is looked up again (paid for by the token just taken, as an HTTP
                // request pays for its own lookup): a revoked key stops at once.
                if !key_still_good(&state, key.as_deref()).await {
                    for id in streams.keys() {
                        send(&mut session, complete_message(protocol, id)).await;
                    }
                    break close(4403, "Forbidden: the API key was revoked");
                }
                if streams.contains_key(&id) {
                    if protocol == Protocol::Legacy {
                        continue;
                    }
                    break close(4409, &format!("Subscriber for {id} already exists"));
                }
                if streams.len() >= state.config.ws_max_subscriptions {
                    let error = json!([{"message": "too many subscriptions on this connection", "extensions": {"code": "BAD_USER_INPUT"}}]);
                    send(&mut session, json!({"type": "error", "id": id, "payload": error})).await;
                    continue;
                }
                let Ok(request) = serde_json::from_value::<async_graphql::Request>(value["payload"].clone()) else {
                    break close(4400, "Invalid message: bad payload");
                };
                // Unparsed: the executor refuses it and says why. Neither it nor a query or a
                // mutation hands a feed over.
                let template = match Template::of(&request, &state.live) {
                    Ok(template) => Some(template),
                    Err(Unfit::Unparsed | Unfit::NotSubscription) => None,
                    Err(Unfit::NotOneRootField) => {
                        let error = json!([{"message": "a subscription selects exactly one root field", "extensions": {"code": "BAD_USER_INPUT"}}]);
                        send(&mut session, json!({"type": "error", "id": id, "payload": error})).await;
                        continue;
                    }
                };
                let actor = verified.actor.clone();
                let mut request = request
                    .data(RequestContext::new(std::sync::Arc::clone(&state.domain), Some(actor.clone())))
                    .data(LoginAllowance::new(client));
                if let Some(charge) = charge {
                    request = request.data(charge);
                }
                let stream = Stream { protocol, id: id.clone(), request_id: request_id.clone(), template, actor };
                let handle = actix_web::rt::spawn(
                    run_stream(std::sync::Arc::clone(&state), request, stream, session.clone(), finished_tx.clone())
                        .instrument(tracing::Span::current()),
                );
                streams.insert(id, handle);
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some(handle) = id.as_ref().and_then(|id| streams.remove(id)) {
                    handle.abort();
                    if protocol == Protocol::Legacy
                        && let Some(id) = &id
                    {
                        send(&mut session, complete_message(protocol, id)).await;
                    }
                }
            }
            (Protocol::Legacy, "connection_terminate") => break None,
            _ => break close(4400, &format!("Invalid message type {kind:?}")),
        }
    };
    for handle in streams.values() {
        handle.abort();
    }
    let code = reason.as_ref().map_or(1000, |r| u16::from(r.code));
    tracing::info!(code, seconds = opened.elapsed().as_secs(), "websocket closed");
    let _ = tokio::time::timeout(Duration::from_secs(1), session.close(reason)).await;
}

/// How often an API key's connection checks the key again.
const KEY_CHECK_EVERY: Duration = Duration::from_secs(60);

fn far_future_from_now() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Whether the connection's API key (if it came with one) is still honoured; a database
/// that cannot answer keeps it (the next check asks again).
async fn key_still_good(state: &AppState, key: Option<&str>) -> bool {
    let Some(key) = key else { return true };
    !matches!(Box::pin(super::caller::authenticate(state, key)).await, Ok(None))
}

/// When a token expiring at `expires_at` (seconds since the epoch) runs out, at most a
/// year ahead: a token that never expires (`exp` = i64::MAX) must not overflow the timer.
fn expiry_instant(expires_at: i64) -> tokio::time::Instant {
    let remaining = expires_at.saturating_sub(chrono::Utc::now().timestamp()).clamp(0, 86_400 * 365);
    tokio::time::Instant::now() + Duration::from_secs(u64::try_from(remaining).unwrap_or(0))
}

fn complete_message(protocol: Protocol, id: &str) -> Value {
    match protocol {
        Protocol::TransportWs | Protocol::Legacy => json!({"type": "complete", "id": id}),
    }
}

/// A message about one operation, as it goes on the wire.
#[derive(serde::Serialize)]
struct Outgoing<'a, P> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: P,
}

/// One operation of a connection.
struct Stream {
    protocol: Protocol,
    /// The operation's id on the connection.
    id: String,
    /// The handshake's request id.
    request_id: Option<String>,
    /// The operation as sent, rendered again for each event (None when it did not parse).
    template: Option<Template>,
    /// Whose operation it is.
    actor: Actor,
}

/// Runs one operation: through the executor once (which refuses it, or hands its feed over),
/// then each event of its feed as [`crate::graphql::live::Renderer::payload`] renders it.
async fn run_stream(
    state: std::sync::Arc<AppState>,
    request: async_graphql::Request,
    stream: Stream,
    mut session: Session,
    finished: mpsc::Sender<String>,
) {
    let Stream { protocol, id, request_id, template, actor } = stream;
    let hand_over = HandOver::default();
    // Dropped once the feed is handed over: the connection keeps only the feed and its template.
    let mut responses = Some(state.schema.execute_stream(request.data(hand_over.clone())));
    let mut first = true;
    let mut feed = None;
    let mut envelope = String::new();
    loop {
        // A refused operation (validation, NOT_FOUND, a cursor past the last event) is all
        // the executor yields; an admitted one yields nothing and leaves its feed.
        let outcome = if feed.is_none() {
            let Some(executing) = responses.as_mut() else { break };
            match executing.next().await {
                Some(response) => {
                    Box::pin(own_message(protocol, &id, request_id.as_deref(), &mut session, response, first)).await
                }
                None => {
                    responses = None;
                    let (Some(handed), Some(_)) = (hand_over.take(), template.as_ref()) else { break };
                    feed = Some(handed);
                    let kind = if protocol == Protocol::Legacy { "data" } else { "next" };
                    let quoted = serde_json::to_string(&id).unwrap_or_default();
                    envelope = format!("{{\"type\":\"{kind}\",\"id\":{quoted},\"payload\":");
                    continue;
                }
            }
        } else {
            let (Some(item), Some(template)) = (feed.as_mut().map(StreamExt::next), template.as_ref()) else { break };
            let payload = match item.await {
                None => break,
                Some(Ok(event)) => state.live.payload(&state.schema, &state.domain, template, &actor, &event).await,
                Some(Err(lost)) => Payload::Own(Box::new(
                    Box::pin(state.live.render(&state.schema, &state.domain, template, &actor, Err(lost))).await,
                )),
            };
            match payload {
                // The envelope is this connection's; the payload is every connection's.
                Payload::Shared(json) => {
                    if send_text(&mut session, format!("{envelope}{json}}}")).await {
                        Sent::More
                    } else {
                        Sent::Gone
                    }
                }
                Payload::Own(response) => {
                    Box::pin(own_message(protocol, &id, request_id.as_deref(), &mut session, *response, first)).await
                }
            }
        };
        first = false;
        match outcome {
            Sent::More => {}
            Sent::Gone => return,
            Sent::Refused => {
                let _ = finished.send(id).await;
                return;
            }
            Sent::Failed => break,
        }
    }
    send(&mut session, complete_message(protocol, &id)).await;
    let _ = finished.send(id).await;
}

/// What became of a message.
enum Sent {
    /// Sent; the operation goes on.
    More,
    /// The peer is gone.
    Gone,
    /// The operation was refused before it started: an `error` message ended it.
    Refused,
    /// The message could not be serialized: the operation ends.
    Failed,
}

/// Sends a response of this connection's own (errors name its request id).
async fn own_message(
    protocol: Protocol,
    id: &str,
    request_id: Option<&str>,
    session: &mut Session,
    mut response: async_graphql::Response,
    first: bool,
) -> Sent {
    finalize(&mut response);
    crate::graphql::errors::tag_internal(&mut response, request_id);
    // A subscription refused before it started (validation, NOT_FOUND) is an `error`.
    let refused = first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
    // Serialized once, straight from the executor's values: fields keep the order the
    // subscription asked for them, as over HTTP.
    let message = if refused && protocol == Protocol::TransportWs {
        serde_json::to_string(&Outgoing { kind: "error", id, payload: &response.errors })
    } else {
        let kind = if protocol == Protocol::Legacy { "data" } else { "next" };
        serde_json::to_string(&Outgoing { kind, id, payload: &response })
    };
    let message = match message {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(operation = %id, %error, "a subscription's message could not be serialized; it ends");
            return Sent::Failed;
        }
    };
    if !send_text(session, message).await {
        return Sent::Gone;
    }
    if refused && protocol == Protocol::TransportWs { Sent::Refused } else { Sent::More }
}
