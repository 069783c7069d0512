//! Building the application from configuration, in one place: connect, migrate, assemble
//! the domain and the state, listen for other processes' events, start the background loops
//! and serve. `main`, the integration tests and the benches all go through
//! [`Application::build`] (commands that serve nothing use its first half,
//! [`build_domain`]); what a test needs to replace (the clock, an instrumented pool) is an
//! [`Overrides`] field, never a second assembly.

use std::net::TcpListener;
use std::sync::Arc;

use crate::auth::AuthKeys;
use crate::config::{self, AuthConfig, DatabaseConfig, ProvisioningConfig, ServerConfig};
use crate::db;
use crate::domain::Domain;
use crate::domain::billing::plan::BillingSettings;
use crate::domain::catalog_cache::CatalogCache;
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::events::{Delivery, EventBus, start_postgres_listener};
use crate::domain::jobs::JobSettings;
use crate::state::AppState;
use crate::workers::Workers;

/// A start-up failure, for the CLI to print.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Every configuration group the application reads.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the data lives.
    pub database: DatabaseConfig,
    /// How tokens are signed and verified.
    pub auth: AuthConfig,
    /// The HTTP server, its limits, caches and billing policies.
    pub server: ServerConfig,
    /// Workers, leases and retries.
    pub provisioning: ProvisioningConfig,
}

impl Settings {
    /// Every group from its defaults and the environment, as if no flags were given.
    pub fn from_environment() -> Result<Self, clap::Error> {
        Ok(Self {
            database: config::defaults()?,
            auth: config::defaults()?,
            server: config::defaults()?,
            provisioning: config::defaults()?,
        })
    }
}

/// Parts a caller supplies instead of building them from the settings.
#[derive(Default)]
pub struct Overrides {
    /// Where "now" comes from (default: the system clock). Tests use a manual clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// An already opened pool (say, one that counts statements); it is still migrated.
    /// `settings.database` must name the same database: the event listener connects to it.
    pub database: Option<sea_orm::DatabaseConnection>,
}

/// A built application: its state, and its background loops once started.
pub struct Application {
    /// What every request shares.
    pub state: AppState,
    /// The provisioning workers and the scheduler, once [`Application::start_workers`] ran.
    pub workers: Option<Workers>,
    settings: Settings,
}

impl Application {
    /// Connects (unless overridden), migrates, assembles the domain and the state, and on
    /// PostgreSQL starts listening for every process's events before returning.
    pub async fn build(settings: Settings, overrides: Overrides) -> Result<Self, StartupError> {
        // Installed before anything is recorded, so nothing is lost to the scrape.
        crate::metrics::handle();
        let auth = crate::auth::with_secret(&settings.auth, &settings.database)?;
        let keys = Arc::new(AuthKeys::from_config(&auth)?);
        let domain = build_domain(&settings, overrides).await?;
        if domain.events.delivery() == Delivery::PostgresNotify {
            start_postgres_listener(&db::database_url(&settings.database)?, Arc::clone(&domain.events)).await?;
        }
        // The relay polls on a connection of its own: it never waits for the pool requests use.
        let relay = db::connect(&db::database_url(&settings.database)?, 1).await?;
        crate::domain::outbox::start_relay(relay, Arc::clone(&domain.events)).await?;
        let state = AppState::new(domain, keys, settings.server.clone());
        Ok(Self { state, workers: None, settings })
    }

    /// The domain services.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.state.domain
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts the configured provisioning workers and the renewal scheduler (none with zero
    /// workers). They run until the application is dropped.
    pub fn start_workers(&mut self) {
        let domain = Arc::clone(&self.state.domain);
        self.workers = Some(crate::workers::start(domain, &self.settings.provisioning, self.state.shutdown.clone()));
    }

    /// Shuts down in order once asked (SIGTERM, SIGINT): WebSocket connections close with
    /// 1001 and workers stop claiming; the HTTP server stops accepting and finishes the
    /// requests in flight; the jobs in flight get the grace period, then are released. Runs
    /// `server` until then; returns once everything stopped.
    pub async fn serve_until_signalled(&mut self, server: actix_web::dev::Server) -> std::io::Result<()> {
        let handle = server.handle();
        let running = tokio::spawn(server);
        let signal = crate::shutdown::signalled().await?;
        tracing::info!(signal, "shutting down: finishing requests and jobs in flight");
        self.shut_down(handle).await;
        running.await.map_err(std::io::Error::other)??;
        tracing::info!("stopped");
        Ok(())
    }

    /// The shutdown sequence of [`Application::serve_until_signalled`], for a server already running.
    pub async fn shut_down(&mut self, server: actix_web::dev::ServerHandle) {
        self.state.shutdown.trigger();
        let grace = self.settings.provisioning.shutdown_grace;
        let workers = self.workers.take();
        let stop_workers = async move {
            match workers {
                Some(workers) => workers.stop(grace).await,
                None => 0,
            }
        };
        let ((), _released) = tokio::join!(server.stop(true), stop_workers);
    }

    /// Serves HTTP on an already bound listener (port 0 in tests); the returned server runs
    /// when awaited or spawned.
    pub fn serve(&self, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
        crate::http::serve(self.state.clone(), listener, self.settings.provisioning.shutdown_grace)
    }
}

/// The domain services alone, for commands that serve no requests (`worker`, `bill`,
/// `migrate`, `seed`): connected (unless overridden) and migrated, without token keys and
/// without an event listener, so they need no auth settings and hold no extra connection.
pub async fn build_domain(settings: &Settings, overrides: Overrides) -> Result<Arc<Domain>, StartupError> {
    settings.provisioning.validate()?;
    // The vendors' HTTP client builds (a configured CA file is readable and holds roots).
    crate::workers::http_client(&settings.provisioning)?;
    let connection = match overrides.database {
        Some(connection) => connection,
        // Two at least: migrating holds one connection for its lock while it runs on another.
        None => {
            db::connect(&db::database_url(&settings.database)?, settings.database.db_max_connections.max(2)).await?
        }
    };
    db::migrate(&connection).await?;
    let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    Ok(domain(connection, clock, &settings.server, &settings.provisioning))
}

/// Builds the domain services around a connection.
fn domain(
    db: sea_orm::DatabaseConnection,
    clock: Arc<dyn Clock>,
    server: &ServerConfig,
    provisioning: &ProvisioningConfig,
) -> Arc<Domain> {
    let delivery = EventBus::delivery_for(db.get_database_backend());
    Arc::new(Domain {
        write_gate: crate::domain::write_gate::WriteGate::for_backend(db.get_database_backend()),
        db,
        clock,
        catalog: CatalogCache::new(server.catalog_cache_ttl),
        events: Arc::new(EventBus::new(server.event_buffer, delivery)),
        jobs: JobSettings {
            lease: provisioning.job_lease,
            max_attempts: provisioning.job_max_attempts,
            backoff: provisioning.job_backoff,
            backoff_max: provisioning.job_backoff_max,
            heartbeat: provisioning.heartbeat(),
            retry_after_max: provisioning.vendor_retry_after_max,
        },
        job_wakeup: tokio::sync::Notify::new(),
        billing: BillingSettings {
            rounding: server.proration_rounding.into(),
            tax: server.tax_policy.into(),
            cancellation_refund: server.cancellation_refund.into(),
        },
        operator_invoice_prefix: server.operator_invoice_prefix.clone(),
        operator: crate::domain::OperatorProfile {
            legal_name: server.operator_legal_name.clone(),
            address: server.operator_address.replace("\\n", "\n"),
            tax_id: server.operator_tax_id.clone(),
            payment_terms_days: server.operator_payment_terms_days.clamp(0, 365),
        },
        standing: crate::domain::standing::Standing::new(server.standing_ttl),
        logins: crate::domain::logins::LoginGuard::new(crate::domain::logins::LoginPolicy {
            account_failures: server.login_account_failures,
            account_failures_total: server.login_account_failures_total,
            client_failures: server.login_client_failures,
            window: server.login_window,
            concurrency: server.login_concurrency,
            queue_wait: server.login_queue_wait,
        }),
        webhooks: crate::domain::webhooks::WebhookSettings {
            allow_local: server.webhook_allow_local,
            timeout: server.webhook_timeout,
            schedule: server.webhook_schedule.clone(),
            disable_after: server.webhook_disable_after,
            log_retention: server.webhook_log_retention,
        },
    })
}
