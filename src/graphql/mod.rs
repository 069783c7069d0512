//! The GraphQL API: schema, per-request context, resolvers and their error mapping.
//!
//! Resolvers are thin: they parse arguments, call one domain function with the caller's
//! [`Actor`], and map the result to an output type. Output types are separate from the
//! entities (`types/`), so a new column never leaks into the schema.

pub mod admission;
pub mod errors;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod mutation;
pub mod operation_name;
pub mod persisted;
pub mod query;
pub mod rate;
pub mod response_cache;
pub mod scalars;
pub mod scopes;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Schema};
use tokio::sync::OnceCell;

use crate::auth::AuthKeys;
use crate::config::ServerConfig;
use crate::domain::catalog::OwnPricing;
use crate::domain::catalog::direct::{CatalogRead, Needed};
use crate::domain::catalog_cache::CatalogSnapshot;
use crate::domain::ids::Id;
use crate::domain::{Actor, Domain, Error, customers};

pub use errors::ResultExt;

/// The schema type served at `/graphql`.
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::SubscriptionRoot>;

/// Builds the schema with its limits and every extension; `domain` and `auth` become
/// schema data.
pub fn build_schema(config: &ServerConfig, domain: Arc<Domain>, auth: Arc<AuthKeys>) -> AppSchema {
    with_checks(builder(config, domain, auth), config).finish()
}

/// The schemas an operation is admitted by and run on (`admission`): the checks with the
/// gate that stops before execution, one with no extension, and one with the key scopes'
/// check of each field alone (the schema with every extension is `build_schema`'s).
pub fn build_admission(config: &ServerConfig, domain: Arc<Domain>, auth: Arc<AuthKeys>) -> admission::Admission {
    let gate = with_checks(builder(config, Arc::clone(&domain), Arc::clone(&auth)), config)
        .extension(admission::Gate)
        .finish();
    // The gate validated in full: what runs after it needs no rule checked again.
    let fast = async_graphql::ValidationMode::Fast;
    let run = builder(config, Arc::clone(&domain), Arc::clone(&auth)).validation_mode(fast).finish();
    let keyed = builder(config, domain, auth).validation_mode(fast).extension(scopes::ScopeCheck).finish();
    admission::Admission::new(gate, run, keyed)
}

type Builder = async_graphql::SchemaBuilder<query::Query, mutation::Mutation, subscription::SubscriptionRoot>;

/// The schema's types, data and async-graphql's own limits.
fn builder(config: &ServerConfig, domain: Arc<Domain>, auth: Arc<AuthKeys>) -> Builder {
    let mut builder =
        Schema::build(query::Query::default(), mutation::Mutation::default(), subscription::SubscriptionRoot)
            .data(domain)
            .data(auth)
            .limit_complexity(config.max_complexity)
            .limit_directives(config.max_directives)
            .disable_suggestions();
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder
}

/// The checks before execution, as extensions (see `admission`).
fn with_checks(builder: Builder, config: &ServerConfig) -> Builder {
    // First: it parses the document the limits then walk (async-graphql keeps it).
    builder
        .extension(operation_name::OperationNames)
        .extension(scopes::ScopeCheck)
        .extension(rate::RateCharges)
        .extension(limits::DocumentLimits {
            max_aliases: config.max_aliases,
            max_selections: config.max_selections,
            max_depth: config.max_depth,
            max_introspection_depth: config.max_introspection_depth,
        })
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(query::Query::default(), mutation::Mutation::default(), subscription::SubscriptionRoot).finish().sdl()
}

/// Who sent a request and whether it has logged in yet: one per HTTP request (shared by the
/// operations of a batch) or WebSocket operation. `login` checks one password per request.
#[derive(Clone, Debug)]
pub struct LoginAllowance {
    /// The client's address, for throttling (`domain::logins`).
    pub client: Option<std::net::IpAddr>,
    used: Arc<std::sync::atomic::AtomicBool>,
}

impl LoginAllowance {
    /// A fresh allowance for a request from `client`.
    pub fn new(client: Option<std::net::IpAddr>) -> Self {
        Self { client, used: Arc::default() }
    }

    /// Takes the request's one login; false when it was taken.
    pub fn take(&self) -> bool {
        !self.used.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Per-request data: the caller, request-scoped caches and DataLoaders (which carry the
/// caller's scope, so they are never shared between requests).
pub struct RequestContext {
    /// The verified caller, if a token was sent.
    pub actor: Option<Actor>,
    catalog: OnceCell<CatalogRead>,
    whole_catalog: OnceCell<Arc<CatalogSnapshot>>,
    own_pricing: OnceCell<Arc<OwnPricing>>,
    /// Loads resellers by id within the caller's scope.
    pub resellers: DataLoader<loaders::ResellerLoader>,
    /// Loads customers' vendor accounts by customer id.
    pub vendor_accounts: DataLoader<loaders::VendorAccountLoader>,
    /// Loads order lines by order id.
    pub order_lines: DataLoader<loaders::OrderLinesLoader>,
    /// Loads subscriptions by id within the caller's scope.
    pub subscriptions: DataLoader<loaders::SubscriptionLoader>,
    /// Loads customers by id within the caller's scope.
    pub customers: DataLoader<loaders::CustomerLoader>,
    /// Loads subscription histories by subscription id.
    pub histories: DataLoader<loaders::HistoryLoader>,
    /// Loads invoice lines by invoice id.
    pub invoice_lines: DataLoader<loaders::InvoiceLinesLoader>,
}

impl RequestContext {
    /// A context for one request by `actor`.
    pub fn new(domain: Arc<Domain>, actor: Option<Actor>) -> Self {
        let scope = actor.clone();
        Self {
            actor,
            catalog: OnceCell::new(),
            whole_catalog: OnceCell::new(),
            own_pricing: OnceCell::new(),
            resellers: DataLoader::new(loaders::ResellerLoader::new(Arc::clone(&domain), scope.clone()), tokio::spawn),
            vendor_accounts: DataLoader::new(loaders::VendorAccountLoader::new(Arc::clone(&domain)), tokio::spawn),
            order_lines: DataLoader::new(loaders::OrderLinesLoader::new(Arc::clone(&domain)), tokio::spawn),
            subscriptions: DataLoader::new(
                loaders::SubscriptionLoader::new(Arc::clone(&domain), scope.clone()),
                tokio::spawn,
            ),
            customers: DataLoader::new(loaders::CustomerLoader::new(Arc::clone(&domain), scope), tokio::spawn),
            histories: DataLoader::new(loaders::HistoryLoader::new(Arc::clone(&domain)), tokio::spawn),
            invoice_lines: DataLoader::new(loaders::InvoiceLinesLoader::new(domain), tokio::spawn),
        }
    }
}

/// Parses an `ID` argument into the domain's typed id (the one id parser of the API);
/// BAD_USER_INPUT naming `field` unless it is a positive integer.
pub fn parse_id<T: Id>(id: &async_graphql::ID, field: &str) -> async_graphql::Result<T> {
    T::parse(id, field).gql()
}

/// The domain services.
pub fn domain<'a>(ctx: &Context<'a>) -> &'a Arc<Domain> {
    ctx.data_unchecked::<Arc<Domain>>()
}

/// The request context.
pub fn request<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<RequestContext>().map_err(|_| errors::to_graphql(Error::Unauthenticated))
}

/// The authenticated caller, or UNAUTHENTICATED.
pub fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    request(ctx)?.actor.as_ref().ok_or_else(|| errors::to_graphql(Error::Unauthenticated))
}

/// This request's way of reading the catalog (`CatalogRead::choose`), chosen at its first
/// catalog read and kept.
pub async fn catalog_read<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a CatalogRead> {
    let domain = domain(ctx);
    Ok(request(ctx)?.catalog.get_or_init(|| CatalogRead::choose(domain)).await)
}

/// The catalog as this request sees it, holding at least what `needed` names.
pub async fn snapshot(ctx: &Context<'_>, needed: Needed<'_>) -> async_graphql::Result<Arc<CatalogSnapshot>> {
    if let Some(whole) = request(ctx)?.whole_catalog.get() {
        return Ok(Arc::clone(whole));
    }
    catalog_read(ctx).await?.snapshot(&domain(ctx).db, needed).await.gql()
}

/// The whole catalog snapshot, loaded now if need be, and from now on what this request's
/// nested catalog fields read: for writes, whose answers must show nothing read after their
/// commit (they load the snapshot anyway to price and check).
pub async fn whole_snapshot(ctx: &Context<'_>) -> async_graphql::Result<Arc<CatalogSnapshot>> {
    let domain = domain(ctx);
    let request = request(ctx)?;
    if let Some(whole) = request.whole_catalog.get() {
        return Ok(Arc::clone(whole));
    }
    let whole = match request.catalog.get() {
        Some(CatalogRead::Cached(snapshot)) => Arc::clone(snapshot),
        _ => domain.catalog.snapshot(&domain.db).await.gql()?,
    };
    request.catalog.get_or_init(|| async { CatalogRead::Cached(Arc::clone(&whole)) }).await;
    Ok(Arc::clone(request.whole_catalog.get_or_init(|| async { whole }).await))
}

/// The caller's own price context (its reseller's prices, its default currency), resolved
/// once per request.
pub async fn own_pricing(ctx: &Context<'_>) -> async_graphql::Result<Arc<OwnPricing>> {
    let domain = domain(ctx);
    let actor = actor(ctx)?;
    request(ctx)?
        .own_pricing
        .get_or_try_init(|| async { customers::own_pricing(domain, actor).await.map(Arc::new) })
        .await
        .cloned()
        .gql()
}
