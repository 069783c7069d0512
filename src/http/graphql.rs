//! GraphQL over HTTP (the GraphQL-over-HTTP specification).
//!
//! - POST with `Content-Type: application/json`; any other type is 415, so a cross-site
//!   form post cannot run an operation. Bodies over the limit are 413. Uploads
//!   (`multipart/form-data`, with a bearer token) are `upload`'s.
//! - GET runs queries only; a mutation over GET is 405 with `Allow: POST`.
//! - `application/graphql-response+json` when the client accepts it: a request error
//!   (unparsable, invalid, over a limit) is then 400; with `application/json` it is 200.
//! - A bearer token that fails verification is 401 UNAUTHENTICATED; no token means an
//!   anonymous caller, which every field but `login` refuses.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse, Request, ServerError};

use super::caller::{Caller, GRAPHQL_RESPONSE_JSON, Unauthenticated, accepts_graphql_response, client_address};
use crate::domain::Actor;
use crate::graphql::LoginAllowance;
use crate::graphql::errors::{finalize, request_error, tag_internal};
use crate::graphql::operation_name::OperationName;
use crate::graphql::rate::RateCharge;
use crate::graphql::response_cache::{CacheKey, Cached};
use crate::state::AppState;

/// POST /graphql
pub async fn post(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Result<Caller, Unauthenticated>,
    body: web::Bytes,
) -> HttpResponse {
    let accepts_graphql_json = accepts_graphql_response(&request);
    if !is_json(&request) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "requests must be sent as application/json",
            "BAD_USER_INPUT",
            accepts_graphql_json,
        );
    }
    let actor = match caller {
        Ok(Caller(actor)) => actor,
        Err(refused) => return refused.error_response(),
    };
    let mut batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the body is not a GraphQL request: {error}"),
                "BAD_USER_INPUT",
                accepts_graphql_json,
            );
        }
    };
    if !has_query(&body) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "the request has no `query` parameter",
            "BAD_USER_INPUT",
            accepts_graphql_json,
        );
    }
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > state.config.max_batch
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!("too many operations in one batch (limit {})", state.config.max_batch),
            "BAD_USER_INPUT",
            accepts_graphql_json,
        );
    }
    let charge = match super::limits::admit(&state, &request, actor.as_ref(), accepts_graphql_json) {
        Ok(charge) => charge,
        Err(refused) => return *refused,
    };
    // Documents are kept for hashes only from callers let in, and only once they are.
    let persisted = match &mut batch {
        BatchRequest::Single(single) => state.persisted.resolve(single),
        BatchRequest::Batch(many) => many.iter_mut().try_for_each(|r| state.persisted.resolve(r)),
    };
    if let Err(refused) = persisted {
        let mut response = persisted_refused(refused, accepts_graphql_json);
        super::limits::finish(&mut response, charge.as_deref(), 1);
        return response;
    }
    let served = Served::new(&request, &mut batch, charge);
    if let BatchRequest::Single(single) = &batch
        && state.config.response_cache
        && let Some(key) = CacheKey::for_request(actor.as_ref(), single)
    {
        return cached_catalog_query(&state, &request, key, batch, actor, accepts_graphql_json, &served).await.0;
    }
    // One allowance for the whole batch: its operations share the request's one login.
    let allowance = LoginAllowance::new(client_address(&request, &state.config.trusted_proxies));
    let response = match batch {
        BatchRequest::Single(single) => {
            BatchResponse::Single(state.admission.execute(single, &state.domain, actor, &allowance).await)
        }
        BatchRequest::Batch(many) => {
            let many = many.into_iter().map(|r| with_context(&state, r, actor.clone(), &allowance)).collect();
            state.schema.execute_batch(BatchRequest::Batch(many)).await
        }
    };
    respond(response, accepts_graphql_json, &served)
}

/// Serves a single request through the response cache when it is a catalog query.
async fn cached_catalog_query(
    state: &AppState,
    http: &HttpRequest,
    key: CacheKey,
    batch: BatchRequest,
    actor: Option<Actor>,
    graphql_json: bool,
    served: &Served,
) -> (HttpResponse, bool) {
    let content_type = if graphql_json { GRAPHQL_RESPONSE_JSON } else { "application/json" };
    if let Some(cached) = state.response_cache.get(&key, &state.domain) {
        served.finish_cached(cached.operation.as_deref());
        let mut response = HttpResponse::Ok().content_type(content_type).body(cached.body);
        super::limits::finish(&mut response, served.charge.as_deref(), 1);
        return (response, true);
    }
    let BatchRequest::Single(request) = batch else { return (HttpResponse::InternalServerError().finish(), false) };
    let generation = state.domain.catalog.generation();
    // Read before the response is computed: the data it uses is at most this old.
    let data_as_of = state.domain.catalog.data_as_of();
    let computed_at = state.domain.clock.now();
    let allowance = LoginAllowance::new(client_address(http, &state.config.trusted_proxies));
    let mut response = state.admission.execute(request, &state.domain, actor, &allowance).await;
    served.finish(0, &mut response);
    let request_error = is_request_error(&response.errors);
    let catalog = response.errors.is_empty() && key.is_catalog_query();
    let cacheable = !state.domain.catalog.ttl().is_zero() && catalog;
    let body = Bytes::from(serialize(&response, request_error));
    // Only while a fresh snapshot is there to say until when the answer holds (kept or not,
    // the generation and age checked on the way out were taken before it was computed).
    if cacheable && let Some(snapshot) = state.domain.catalog.fresh() {
        let valid_until = snapshot.next_price_change_after(computed_at);
        let cached = Cached { body: body.clone(), operation: served.operation(0) };
        state.response_cache.put(key, cached, (generation, data_as_of), valid_until, &state.domain);
    }
    let status = if graphql_json && request_error { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut response = HttpResponse::build(status).content_type(content_type).body(body);
    super::limits::finish(&mut response, served.charge.as_deref(), 1);
    (response, catalog)
}

/// Whether every request of a JSON body (one, or a batch) has a `query` parameter: a missing
/// or misspelled one is a malformed request (400 whatever the accepted media type), unlike a
/// `query` that does not parse (a GraphQL request error). async-graphql reads a missing one
/// as empty, so the body is read again for the keys alone.
fn has_query(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Keys {
        query: Option<serde::de::IgnoredAny>,
        extensions: Option<serde_json::Value>,
    }
    impl Keys {
        /// A document, or the hash of a persisted one (resolved before this check).
        fn asks(&self) -> bool {
            self.query.is_some() || self.extensions.as_ref().is_some_and(|e| e.get("persistedQuery").is_some())
        }
    }
    #[derive(serde::Deserialize)]
    // A batch first: serde reads a struct from an array too (its fields by position).
    #[serde(untagged)]
    enum Body {
        Batch(Vec<Keys>),
        Single(Keys),
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body::Single(keys)) => keys.asks(),
        Ok(Body::Batch(all)) => all.iter().all(Keys::asks),
        Err(_) => false,
    }
}

/// The query-string parameters of a GET request, named as the specification names them.
#[derive(serde::Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// GET /graphql: queries only. A catalog query answers with an `ETag` (304 to a matching
/// `If-None-Match`) and `Cache-Control: private` (`public` where the deployment says its CDN
/// keys by `Authorization`: prices are the caller's organisation's), varying by
/// `Authorization`, so a browser (or that CDN) may keep it; every other answer — errors,
/// refusals, per-caller data — is `no-store`.
pub async fn get(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Result<Caller, Unauthenticated>,
) -> HttpResponse {
    let mut response = get_answer(&state, &request, caller).await;
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn get_answer(state: &AppState, request: &HttpRequest, caller: Result<Caller, Unauthenticated>) -> HttpResponse {
    let accepts_graphql_json = accepts_graphql_response(request);
    let bad_request =
        |message: String| error_response(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT", accepts_graphql_json);
    let params = match web::Query::<GetParams>::from_query(request.query_string()) {
        Ok(params) => params.into_inner(),
        Err(error) => return bad_request(format!("invalid GraphQL GET request: {error}")),
    };
    let variables = match params.variables.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose() {
        Ok(variables) => async_graphql::Variables::from_json(variables.unwrap_or_default()),
        Err(error) => return bad_request(format!("invalid variables: {error}")),
    };
    let extensions = match params.extensions.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose() {
        Ok(extensions) => extensions.unwrap_or_default(),
        Err(error) => return bad_request(format!("invalid extensions: {error}")),
    };
    let persisted = extensions.get("persistedQuery").cloned();
    if params.query.is_none() && persisted.is_none() {
        return bad_request("the request has no `query` parameter".to_owned());
    }
    let actor = match caller {
        Ok(Caller(actor)) => actor,
        Err(refused) => return refused.error_response(),
    };
    let charge = match super::limits::admit(state, request, actor.as_ref(), accepts_graphql_json) {
        Ok(charge) => charge,
        Err(refused) => return *refused,
    };
    let with_limits = |mut response: HttpResponse| {
        super::limits::finish(&mut response, charge.as_deref(), 1);
        response
    };
    let mut graphql_request = Request::new(params.query.unwrap_or_default()).variables(variables);
    if let Some(persisted) = persisted {
        graphql_request
            .extensions
            .insert("persistedQuery".into(), async_graphql::Value::from_json(persisted).unwrap_or_default());
        if let Err(refused) = state.persisted.resolve(&mut graphql_request) {
            return with_limits(persisted_refused(refused, accepts_graphql_json));
        }
    }
    if let Some(name) = params.operation_name {
        graphql_request = graphql_request.operation_name(name);
    }
    if !is_query_operation(&graphql_request) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "only queries may be sent with GET; use POST",
            "BAD_USER_INPUT",
            accepts_graphql_json,
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return with_limits(response);
    }
    let allowance = LoginAllowance::new(client_address(request, &state.config.trusted_proxies));
    let key = CacheKey::for_request(actor.as_ref(), &graphql_request).filter(CacheKey::is_catalog_query);
    let mut batch = BatchRequest::Single(graphql_request);
    let served = Served::new(request, &mut batch, charge.clone());
    let BatchRequest::Single(graphql_request) = batch else { return HttpResponse::InternalServerError().finish() };
    let Some(key) = key else {
        let response = state.admission.execute(graphql_request, &state.domain, actor, &allowance).await;
        return respond(BatchResponse::Single(response), accepts_graphql_json, &served);
    };
    let (response, catalog) = if state.config.response_cache {
        let batch = BatchRequest::Single(graphql_request);
        cached_catalog_query(state, request, key, batch, actor, accepts_graphql_json, &served).await
    } else {
        let response = state.admission.execute(graphql_request, &state.domain, actor, &allowance).await;
        let catalog = response.errors.is_empty();
        (respond(BatchResponse::Single(response), accepts_graphql_json, &served), catalog)
    };
    if !catalog {
        return response;
    }
    let shared = state.config.catalog_shared_cache;
    super::etag::cacheable(request, response, state.domain.catalog.ttl(), shared).await
}

/// The answer to a persisted query that cannot be used: PERSISTED_QUERY_NOT_FOUND (200, as
/// Apollo clients expect, so they send the document) or 400.
fn persisted_refused(refused: crate::graphql::persisted::Refused, graphql_json: bool) -> HttpResponse {
    use crate::graphql::persisted::Refused;
    match refused {
        Refused::NotFound => {
            error_response(StatusCode::OK, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", graphql_json)
        }
        Refused::Invalid(message) => error_response(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT", graphql_json),
    }
}

pub(super) fn with_context(
    state: &AppState,
    request: Request,
    actor: Option<Actor>,
    allowance: &LoginAllowance,
) -> Request {
    crate::graphql::admission::for_caller(request, &state.domain, actor, allowance)
}

/// Whether the selected operation of a GET request is a query. Unparsable documents count
/// as queries here so that the schema reports the parse error in the usual way.
fn is_query_operation(request: &Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return true;
    };
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => {
            return ops.values().all(|op| op.node.ty == OperationType::Query);
        }
    };
    operation.is_none_or(|op| op.node.ty == OperationType::Query)
}

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// What a response records beside its body: the request's id (for INTERNAL errors) and,
/// for the metrics, its operations' names and when it started.
pub(super) struct Served {
    request_id: Option<String>,
    operations: Vec<OperationName>,
    started: std::time::Instant,
    /// What pays for the request's operations (rate limits), if its caller is limited.
    charge: Option<Arc<RateCharge>>,
}

impl Served {
    /// For `request`, running `batch` (each of its requests is given the slot its operation's
    /// name is put in), from now.
    pub(super) fn new(request: &HttpRequest, batch: &mut BatchRequest, charge: Option<Arc<RateCharge>>) -> Self {
        let slot = |r: &mut Request| {
            let name = OperationName::default();
            r.data.insert(name.clone());
            if let Some(charge) = &charge {
                r.data.insert(Arc::clone(charge));
            }
            name
        };
        let operations = match batch {
            BatchRequest::Single(single) => vec![slot(single)],
            BatchRequest::Batch(many) => many.iter_mut().map(slot).collect(),
        };
        Self { request_id: super::request_id::of(request), operations, started: std::time::Instant::now(), charge }
    }

    /// The name of the `index`th operation, once it was prepared.
    fn operation(&self, index: usize) -> Option<String> {
        self.operations.get(index).and_then(OperationName::get).map(str::to_owned)
    }

    /// Counts a response served from the cache, computed by `operation`.
    fn finish_cached(&self, operation: Option<&str>) {
        let label = crate::metrics::operation_label(operation);
        crate::metrics::graphql_operation(&label, self.started.elapsed(), "ok", &[]);
    }

    /// Codes the errors of the `index`th response, tags INTERNAL ones with the request id,
    /// and counts it in the metrics.
    fn finish(&self, index: usize, response: &mut async_graphql::Response) {
        finalize(response);
        tag_internal(response, self.request_id.as_deref());
        let outcome = if is_request_error(&response.errors) {
            "rejected"
        } else if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        let codes: Vec<String> = response
            .errors
            .iter()
            .filter_map(|e| crate::graphql::errors::error_code(e).map(|c| c.to_string().trim_matches('"').to_owned()))
            .collect();
        let label = crate::metrics::operation_label(self.operations.get(index).and_then(OperationName::get));
        crate::metrics::graphql_operation(&label, self.started.elapsed(), outcome, &codes);
    }
}

pub(super) fn respond(mut response: BatchResponse, graphql_json: bool, served: &Served) -> HttpResponse {
    let mut request_error = false;
    let body = match &mut response {
        BatchResponse::Single(single) => {
            served.finish(0, single);
            request_error = is_request_error(&single.errors);
            serialize(single, request_error)
        }
        BatchResponse::Batch(many) => {
            for (index, single) in many.iter_mut().enumerate() {
                served.finish(index, single);
            }
            let bodies: Vec<Body<'_>> =
                many.iter().map(|single| Body::of(single, is_request_error(&single.errors))).collect();
            to_bytes(&bodies)
        }
    };
    let status = if graphql_json && request_error { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let content_type = if graphql_json { GRAPHQL_RESPONSE_JSON } else { "application/json" };
    let mut response = HttpResponse::build(status).content_type(content_type).body(body);
    super::limits::finish(&mut response, served.charge.as_deref(), served.operations.len());
    response
}

/// A request error stops execution before any field runs: its errors have no path.
fn is_request_error(errors: &[ServerError]) -> bool {
    !errors.is_empty() && errors.iter().all(|e| e.path.is_empty())
}

/// A response as it goes on the wire: serialized once, straight from the executor's values,
/// so fields keep the order the query asked for them (`ConstValue` objects are ordered maps);
/// a request error has no `data` entry at all.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

impl<'a> Body<'a> {
    fn of(response: &'a async_graphql::Response, request_error: bool) -> Self {
        Self {
            data: (!request_error).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }
}

/// The JSON bytes of `body`; the INTERNAL error's if it cannot be serialized (it always can:
/// it holds only JSON values).
fn to_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(body)
        .unwrap_or_else(|_| br#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.to_vec())
}

/// The response as JSON bytes.
fn serialize(response: &async_graphql::Response, request_error: bool) -> Vec<u8> {
    to_bytes(&Body::of(response, request_error))
}

pub(super) fn error_response(status: StatusCode, message: &str, code: &str, graphql_json: bool) -> HttpResponse {
    let error = request_error(message, code);
    let body = serde_json::json!({ "errors": [error] });
    let content_type = if graphql_json { GRAPHQL_RESPONSE_JSON } else { "application/json" };
    HttpResponse::build(status).content_type(content_type).json(body)
}
