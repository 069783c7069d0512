//! GraphQL uploads: `POST /graphql` with `Content-Type: multipart/form-data`, the GraphQL
//! multipart request spec (an `operations` field, a `map` field, then the files) that
//! Apollo's and urql's upload clients speak.
//!
//! - Only with a bearer token: the `Authorization` header makes a browser ask first (a CORS
//!   preflight), so a cross-site form — which can post multipart — cannot send one; an
//!   anonymous upload is 401, anyone's but the operator's 403, before the body is read.
//! - One file per request, two uploads at a time per process.
//! - The body is spooled to an unnamed temporary file as it arrives, so memory stays
//!   bounded whatever the file's size; past `SWITCHYARD_MAX_UPLOAD_BYTES` it is 413. The
//!   parts are then read from it on the blocking pool (each file to a temporary file of its
//!   own, which the resolver reads).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use async_graphql::BatchRequest;
use async_graphql::http::MultipartOptions;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::caller::{Caller, Unauthenticated, accepts_graphql_response, client_address};
use super::graphql::{error_response, respond, with_context};
use crate::graphql::LoginAllowance;
use crate::state::AppState;

/// Files one upload request may carry (a statement is one).
const MAX_FILES: usize = 1;

/// Uploads read at once by this process; more wait their turn.
static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A guard for multipart requests.
pub fn is_multipart() -> impl actix_web::guard::Guard {
    actix_web::guard::fn_guard(|ctx| {
        ctx.head()
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/form-data"))
    })
}

/// POST /graphql, multipart.
pub async fn post(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Result<Caller, Unauthenticated>,
    mut payload: web::Payload,
) -> HttpResponse {
    let graphql_json = accepts_graphql_response(&request);
    let fail = |status, message: &str, code| error_response(status, message, code, graphql_json);
    let actor = match caller {
        Ok(Caller(Some(actor))) => actor,
        Ok(Caller(None)) => {
            return fail(StatusCode::UNAUTHORIZED, "uploads need a bearer token", "UNAUTHENTICATED");
        }
        Err(refused) => return refused.error_response(),
    };
    // What takes a file is the operator's: nobody else gets to make the server store one.
    if actor.require_operator().is_err() {
        return fail(StatusCode::FORBIDDEN, "uploads are the operator's", "FORBIDDEN");
    }
    // Nor a key that may not import statements (the only upload): refused before spooling.
    if let Err(refused) =
        actor.require_scope(crate::domain::scopes::Scope::ReconciliationWrite, "uploading a statement")
    {
        return fail(StatusCode::FORBIDDEN, &refused.to_string(), "FORBIDDEN");
    }
    let charge = match super::limits::admit(&state, &request, Some(&actor), graphql_json) {
        Ok(charge) => charge,
        Err(refused) => return *refused,
    };
    let Ok(_turn) = UPLOADS.acquire().await else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, "uploads are closed", "UNAVAILABLE");
    };
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = state.config.max_upload_bytes;
    let spooled = match spool(&mut payload, limit).await {
        Ok(file) => file,
        Err(Spool::TooLarge) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the upload is larger than {limit} bytes"),
                "BAD_USER_INPUT",
            );
        }
        Err(Spool::Failed(message)) => return fail(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT"),
    };
    let per_file = usize::try_from(limit).unwrap_or(usize::MAX);
    let options = MultipartOptions::default().max_file_size(per_file).max_num_files(MAX_FILES);
    let handle = tokio::runtime::Handle::current();
    let parsed = tokio::task::spawn_blocking(move || {
        let body = futures_util::io::AllowStdIo::new(std::io::BufReader::new(spooled));
        handle.block_on(async_graphql::http::receive_batch_body(content_type, body, options))
    })
    .await;
    let mut batch = match parsed {
        Ok(Ok(batch)) => batch,
        Ok(Err(error)) => {
            return fail(
                StatusCode::BAD_REQUEST,
                &format!("not a GraphQL multipart request: {error}"),
                "BAD_USER_INPUT",
            );
        }
        Err(_) => return fail(StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be read", "INTERNAL"),
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > state.config.max_batch
    {
        let message = format!("too many operations in one batch (limit {})", state.config.max_batch);
        return fail(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT");
    }
    let served = super::graphql::Served::new(&request, &mut batch, charge);
    let allowance = LoginAllowance::new(client_address(&request, &state.config.trusted_proxies));
    let batch = match batch {
        BatchRequest::Single(single) => BatchRequest::Single(with_context(&state, single, Some(actor), &allowance)),
        BatchRequest::Batch(many) => BatchRequest::Batch(
            many.into_iter().map(|r| with_context(&state, r, Some(actor.clone()), &allowance)).collect(),
        ),
    };
    respond(state.schema.execute_batch(batch).await, graphql_json, &served)
}

enum Spool {
    TooLarge,
    Failed(String),
}

/// The body, written to an unnamed temporary file as it arrives, rewound.
async fn spool(payload: &mut web::Payload, limit: u64) -> Result<std::fs::File, Spool> {
    let failed = |e: std::io::Error| Spool::Failed(format!("the upload could not be stored: {e}"));
    let file = tempfile::tempfile().map_err(failed)?;
    let mut out = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Spool::Failed(format!("the upload was cut: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(Spool::TooLarge);
        }
        out.write_all(&chunk).await.map_err(failed)?;
    }
    out.flush().await.map_err(failed)?;
    let mut file = out.into_std().await;
    std::io::Seek::rewind(&mut file).map_err(failed)?;
    Ok(file)
}
