//! The application state, built once at start-up and shared by every worker and request.

use std::sync::Arc;

use crate::auth::AuthKeys;
use crate::config::ServerConfig;
use crate::domain::Domain;
use crate::graphql::admission::Admission;
use crate::graphql::persisted::PersistedQueries;
use crate::graphql::response_cache::ResponseCache;
use crate::graphql::{AppSchema, build_admission, build_schema};
use crate::shutdown::Shutdown;

/// Everything a request needs, built once outside `HttpServer::new`.
#[derive(Clone)]
pub struct AppState {
    /// The domain services (database, clock, catalog cache).
    pub domain: Arc<Domain>,
    /// Token keys.
    pub auth: Arc<AuthKeys>,
    /// Server settings and limits.
    pub config: Arc<ServerConfig>,
    /// The GraphQL schema, with every extension (`graphql::admission`).
    pub schema: AppSchema,
    /// Admits an operation and runs it on the schema without extensions.
    pub admission: Admission,
    /// Whole responses of catalog queries.
    pub response_cache: Arc<ResponseCache>,
    /// Documents of Apollo's automatic persisted queries, by hash (this process's).
    pub persisted: Arc<PersistedQueries>,
    /// The rate limits' buckets (this process's).
    pub limiter: Arc<crate::rate_limit::Limiter>,
    /// Given when the process shuts down: WebSocket connections close with 1001.
    pub shutdown: Shutdown,
    /// Live events' payloads, rendered once for every connection asking the same.
    pub live: Arc<crate::graphql::live::Renderer>,
}

impl AppState {
    /// Builds the state and its schema.
    pub fn new(domain: Arc<Domain>, auth: Arc<AuthKeys>, config: ServerConfig) -> Self {
        let config = Arc::new(config);
        let schema = build_schema(&config, Arc::clone(&domain), Arc::clone(&auth));
        let admission = build_admission(&config, Arc::clone(&domain), Arc::clone(&auth));
        let response_cache = Arc::new(ResponseCache::with_budget(config.response_cache_bytes));
        let limiter = Arc::new(crate::rate_limit::Limiter::new(
            config.rate_limit_key,
            config.rate_limit_user,
            config.rate_limit_anonymous,
        ));
        Self {
            domain,
            auth,
            config,
            schema,
            admission,
            response_cache,
            persisted: Arc::default(),
            limiter,
            shutdown: Shutdown::new(),
            live: Arc::default(),
        }
    }
}
