//! `GET /metrics`: the process's metrics in Prometheus's text format (`crate::metrics`),
//! with the gauges of state — jobs by kind and status, this process's database pool — read
//! at the scrape. Only for the bearer token `SWITCHYARD_METRICS_TOKEN` names, or without
//! one from this machine: the figures (volumes, failures, operation names) are the
//! operator's business, not the public's.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

/// GET /metrics: for the configured bearer token, or from this machine without one.
pub async fn metrics(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    if !super::caller::may_scrape_metrics(&request, state.config.metrics_token.as_deref()) {
        return HttpResponse::Forbidden()
            .body("/metrics needs the bearer token SWITCHYARD_METRICS_TOKEN names, or a connection from this machine");
    }
    let Some(handle) = crate::metrics::handle() else {
        return HttpResponse::ServiceUnavailable().body("another metrics recorder is installed in this process");
    };
    match crate::domain::jobs::queue_depth(&state.domain).await {
        Ok(depth) => {
            for (kind, status, count) in depth {
                #[allow(clippy::cast_precision_loss, reason = "a gauge is a float; counts stay far below 2^52")]
                metrics::gauge!("jobs", "kind" => kind, "status" => status).set(count as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: the job queue could not be read"),
    }
    let (open, idle) = crate::db::pool_use(&state.domain.db);
    let busy = usize::try_from(open).unwrap_or(usize::MAX).saturating_sub(idle);
    #[allow(clippy::cast_precision_loss, reason = "pool sizes are small")]
    {
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(busy as f64);
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}
