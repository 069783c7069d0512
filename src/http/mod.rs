//! The HTTP layer: routes, GraphQL over HTTP, health checks, and the browser pages (GraphiQL
//! and the operations dashboard, `assets`).
//!
//! This is the only layer that knows actix-web. It authenticates the bearer token, builds
//! the per-request GraphQL context, and applies the GraphQL-over-HTTP rules.

mod assets;
pub mod caller;
mod etag;
pub mod graphql;
mod health;
pub mod invoices;
mod limits;
mod metrics;
pub mod reports;
pub mod request_id;
pub mod upload;
pub mod ws;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::state::AppState;

/// Registers every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/graphql", web::post().guard(upload::is_multipart()).to(upload::post))
        .route("/graphql", web::post().to(graphql::post))
        .route("/graphql", web::get().guard(actix_web::guard::Header("upgrade", "websocket")).to(ws::upgrade))
        .route("/graphql", web::get().to(graphql::get))
        .route("/invoices.csv", web::get().to(invoices::period_csv))
        .route("/invoices/{id}", web::get().to(invoices::html))
        .route("/invoices/{id}/lines.csv", web::get().to(invoices::lines_csv))
        .route("/reports/margin.csv", web::get().to(reports::margin_csv))
        .route("/reports/reconciliation.csv", web::get().to(reports::reconciliation_csv))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/dashboard", web::get().to(assets::dashboard))
        .service(
            web::resource("/assets/{file}")
                .wrap(actix_web::middleware::Compress::default())
                .route(web::get().to(assets::file)),
        )
        .route("/", web::get().to(assets::graphiql));
}

/// Cross-origin requests from browsers (CORS), for `origins` only (checked when configured:
/// `config::parse_origin`): GET and POST with a bearer token and a JSON or multipart body;
/// the answer's rate-limit, request-id and cache headers readable by the page; preflights
/// remembered for 10 minutes. Without origins the middleware is not mounted at all.
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST"])
        .allowed_headers([caller::CREDENTIALS_HEADER, header::CONTENT_TYPE, header::ACCEPT, header::IF_NONE_MATCH])
        .allowed_header("x-request-id")
        .expose_headers([header::ETAG, header::RETRY_AFTER])
        .expose_headers(["ratelimit", "ratelimit-policy", "x-request-id"])
        .max_age(600)
}

/// Starts the server on an already bound listener (port 0 in tests).
///
/// The server does not handle signals itself: the application stops it in its shutdown
/// order, giving requests in flight `grace` to finish.
pub fn serve(state: AppState, listener: TcpListener, grace: std::time::Duration) -> std::io::Result<Server> {
    let workers = match state.config.http_workers {
        0 => std::thread::available_parallelism().map(usize::from).unwrap_or(2),
        n => n,
    };
    let max_body = state.config.max_body_bytes;
    let origins = state.config.cors_origins.clone();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::Condition::new(!origins.is_empty(), cors(&origins)))
            .wrap(actix_web::middleware::from_fn(request_id::middleware))
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .configure(routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(grace.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok(server)
}
