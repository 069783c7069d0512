//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: the database answers, within a second.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // A database that is down makes acquiring a connection wait for the pool's timeout
    // (30 s); a probe answers within a second instead.
    match tokio::time::timeout(READY_TIMEOUT, state.domain.db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().content_type("text/plain").body("database unavailable")
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer within {READY_TIMEOUT:?}");
            HttpResponse::ServiceUnavailable().content_type("text/plain").body("database unavailable")
        }
    }
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
