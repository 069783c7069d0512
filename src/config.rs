//! The one typed configuration, read from flags and `SWITCHYARD_*` environment variables.
//! Every setting is documented where it is declared; `switchyard serve --help` lists them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// JWT signing algorithms Switchyard accepts (one is pinned per deployment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (the default).
    Hs256,
    /// RSA-SHA256 with a public key (PEM) to verify and optionally a private key to sign.
    Rs256,
    /// Ed25519 with a public key (PEM) to verify and optionally a private key to sign.
    EdDsa,
}

/// Proration rounding policy (see `domain::billing::proration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProrationRoundingPolicy {
    /// Round the prorated unit price, then multiply (3.87 × 2 = 7.74).
    PerUnit,
    /// Round the whole line once (7.73).
    PerLine,
}

impl From<ProrationRoundingPolicy> for crate::domain::billing::proration::ProrationRounding {
    fn from(policy: ProrationRoundingPolicy) -> Self {
        match policy {
            ProrationRoundingPolicy::PerUnit => Self::RoundPerUnitThenMultiply,
            ProrationRoundingPolicy::PerLine => Self::RoundPerLine,
        }
    }
}

/// Cancellation refund policy (see `domain::billing::plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CancellationRefundPolicy {
    /// The remaining days, prorated by day (Microsoft).
    ProrateDaily,
    /// In full within 24 hours, then the remaining hours, prorated by hour.
    FullWithin24hThenHourly,
}

impl From<CancellationRefundPolicy> for crate::domain::billing::plan::CancellationRefund {
    fn from(policy: CancellationRefundPolicy) -> Self {
        match policy {
            CancellationRefundPolicy::ProrateDaily => Self::ProrateDaily,
            CancellationRefundPolicy::FullWithin24hThenHourly => Self::FullWithin24HoursThenHourly,
        }
    }
}

/// Tax policy (see `domain::billing::proration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaxPolicyConfig {
    /// On the invoice's rounded subtotal.
    PerInvoice,
    /// On each line, then summed.
    PerLine,
}

impl From<TaxPolicyConfig> for crate::domain::billing::proration::TaxPolicy {
    fn from(policy: TaxPolicyConfig) -> Self {
        match policy {
            TaxPolicyConfig::PerInvoice => Self::PerInvoice,
            TaxPolicyConfig::PerLine => Self::PerLine,
        }
    }
}

/// Where the data lives.
#[derive(Args, Clone, Debug)]
pub struct DatabaseConfig {
    /// Database URL (`postgres://…` or `sqlite://…`). Default: a SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite database, created if missing.
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Most connections in the pool.
    #[arg(long, env = "SWITCHYARD_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

/// How tokens are signed and verified.
#[derive(Args, Clone, Debug)]
pub struct AuthConfig {
    /// The pinned JWT algorithm; tokens signed otherwise (or with `alg: none`) are refused.
    #[arg(long, env = "SWITCHYARD_JWT_ALGORITHM", value_enum, default_value_t = JwtAlgorithm::Hs256)]
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 secret (32 bytes or more). Without one, a SQLite data directory keeps a random
    /// secret of its own; with PostgreSQL it is required.
    #[arg(long, env = "SWITCHYARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256/EdDSA: PEM file of the public key that verifies tokens.
    #[arg(long, env = "SWITCHYARD_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// RS256/EdDSA: PEM file of the private key that signs tokens (login, `token`).
    #[arg(long, env = "SWITCHYARD_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "SWITCHYARD_JWT_ISSUER", default_value = "switchyard")]
    pub jwt_issuer: String,
    /// Required `aud` claim.
    #[arg(long, env = "SWITCHYARD_JWT_AUDIENCE", default_value = "switchyard-api")]
    pub jwt_audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long, env = "SWITCHYARD_JWT_LEEWAY_SECONDS", default_value_t = 30)]
    pub jwt_leeway_seconds: u64,
    /// Lifetime of tokens issued by `login` (e.g. `30m`, `8h`).
    #[arg(long, env = "SWITCHYARD_LOGIN_TOKEN_TTL", default_value = "8h", value_parser = parse_duration)]
    pub login_token_ttl: Duration,
    /// The longest a token may live: one expiring later than this from now is refused, and
    /// none is issued for longer (`login`'s lifetime is cut to it).
    #[arg(long, env = "SWITCHYARD_JWT_MAX_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    pub jwt_max_lifetime: Duration,
}

/// The HTTP server and its abuse limits.
#[derive(Args, Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "SWITCHYARD_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// Serve GraphiQL at `/`.
    #[arg(long, env = "SWITCHYARD_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    /// Serve the operations dashboard at `/dashboard`.
    #[arg(long, env = "SWITCHYARD_DASHBOARD", default_value_t = true, action = clap::ArgAction::Set)]
    pub dashboard: bool,
    /// Answer introspection queries (turn off in production if the schema is private).
    #[arg(long, env = "SWITCHYARD_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Deepest query accepted (fields under `__schema` and `__type` excepted: see
    /// `max_introspection_depth`).
    #[arg(long, env = "SWITCHYARD_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Deepest introspection accepted: the standard introspection query (graphql-js,
    /// GraphiQL, Apollo, graphql-codegen, Postman) is 15 deep.
    #[arg(long, env = "SWITCHYARD_MAX_INTROSPECTION_DEPTH", default_value_t = 20)]
    pub max_introspection_depth: usize,
    /// Highest query complexity accepted (each field costs 1, lists multiply by `first`).
    #[arg(long, env = "SWITCHYARD_MAX_COMPLEXITY", default_value_t = 50_000)]
    pub max_complexity: usize,
    /// Most aliases in one document.
    #[arg(long, env = "SWITCHYARD_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// Most field selections in one document with its fragments expanded (checked before
    /// validation, whose cost grows with it).
    #[arg(long, env = "SWITCHYARD_MAX_SELECTIONS", default_value_t = 5_000)]
    pub max_selections: usize,
    /// Most directives on one field.
    #[arg(long, env = "SWITCHYARD_MAX_DIRECTIVES", default_value_t = 4)]
    pub max_directives: usize,
    /// Most operations in one batched request.
    #[arg(long, env = "SWITCHYARD_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// Largest request body, in bytes (larger gets 413).
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = 128 * 1024)]
    pub max_body_bytes: usize,
    /// Largest upload (a multipart GraphQL request, such as a vendor's statement), in bytes:
    /// spooled to a temporary file, never held in memory (larger gets 413).
    #[arg(long, env = "SWITCHYARD_MAX_UPLOAD_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// How long the catalog snapshot is reused before it checks the catalog's version (`0s`
    /// disables caching): kept if unchanged, else reloaded. Writes through this process
    /// invalidate it at once; this bounds staleness across processes.
    #[arg(long, env = "SWITCHYARD_CATALOG_CACHE_TTL", default_value = "5s", value_parser = parse_duration)]
    pub catalog_cache_ttl: Duration,
    /// How long a caller's good standing (organisation active, user enabled) is remembered;
    /// a suspension takes effect within it.
    #[arg(long, env = "SWITCHYARD_STANDING_TTL", default_value = "5s", value_parser = parse_duration)]
    pub standing_ttl: Duration,
    /// How long a WebSocket client has to send `connection_init` (then: close 4408).
    #[arg(long, env = "SWITCHYARD_WS_INIT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub ws_init_timeout: Duration,
    /// Most live subscriptions on one WebSocket connection.
    #[arg(long, env = "SWITCHYARD_WS_MAX_SUBSCRIPTIONS", default_value_t = 20)]
    pub ws_max_subscriptions: usize,
    /// Where proration rounds: per unit then × quantity (Partner Center), or per line.
    #[arg(long, env = "SWITCHYARD_PRORATION_ROUNDING", value_enum, default_value_t = ProrationRoundingPolicy::PerUnit)]
    pub proration_rounding: ProrationRoundingPolicy,
    /// Tax on the invoice's rounded subtotal, or per line.
    #[arg(long, env = "SWITCHYARD_TAX_POLICY", value_enum, default_value_t = TaxPolicyConfig::PerInvoice)]
    pub tax_policy: TaxPolicyConfig,
    /// How cancellations inside the 168 h window are refunded.
    #[arg(long, env = "SWITCHYARD_CANCELLATION_REFUND", value_enum, default_value_t = CancellationRefundPolicy::ProrateDaily)]
    pub cancellation_refund: CancellationRefundPolicy,
    /// Prefix of the operator's invoice numbers (`OP` → `OP-2026-000001`).
    #[arg(long, env = "SWITCHYARD_OPERATOR_INVOICE_PREFIX", default_value = "OP")]
    pub operator_invoice_prefix: String,
    /// The operator's legal name, as its invoices show it.
    #[arg(long, env = "SWITCHYARD_OPERATOR_LEGAL_NAME", default_value = "Switchyard Distribution")]
    pub operator_legal_name: String,
    /// The operator's postal address (`\n` between lines).
    #[arg(long, env = "SWITCHYARD_OPERATOR_ADDRESS", default_value = "")]
    pub operator_address: String,
    /// The operator's tax id.
    #[arg(long, env = "SWITCHYARD_OPERATOR_TAX_ID", default_value = "")]
    pub operator_tax_id: String,
    /// Days resellers have to pay the operator's invoices.
    #[arg(long, env = "SWITCHYARD_OPERATOR_PAYMENT_TERMS_DAYS", default_value_t = 30)]
    pub operator_payment_terms_days: i32,
    /// Events buffered per live subscriber before it lags (and misses the oldest).
    #[arg(long, env = "SWITCHYARD_EVENT_BUFFER", default_value_t = 1024)]
    pub event_buffer: usize,
    /// The most memory the response cache may hold, in bytes (bodies and their keys).
    #[arg(long, env = "SWITCHYARD_RESPONSE_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub response_cache_bytes: usize,
    /// Whether a catalog page over GET may be kept by shared caches (`Cache-Control: public`,
    /// varying by `Authorization`): only for a CDN that keys its cache by that header, as
    /// prices are the caller's organisation's. Off: `private` (browsers only).
    #[arg(long, env = "SWITCHYARD_CATALOG_SHARED_CACHE", default_value_t = false, action = clap::ArgAction::Set)]
    pub catalog_shared_cache: bool,
    /// Also cache whole responses of catalog queries per caller (see `graphql::response_cache`).
    #[arg(long, env = "SWITCHYARD_RESPONSE_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub response_cache: bool,
    /// Wrong passwords an account takes from one client per `login_window`; then that
    /// client's logins to it, the right password too, wait for the window to end.
    #[arg(long, env = "SWITCHYARD_LOGIN_ACCOUNT_FAILURES", default_value_t = 10)]
    pub login_account_failures: u32,
    /// Wrong passwords an account takes from all clients together per `login_window`; then
    /// every login to it waits for the window to end, or for the operator's `unlockLogin`.
    #[arg(long, env = "SWITCHYARD_LOGIN_ACCOUNT_FAILURES_TOTAL", default_value_t = 100)]
    pub login_account_failures_total: u32,
    /// Failed logins one client (an IPv4 address, an IPv6 /56) makes per `login_window`,
    /// across accounts, before its logins wait.
    #[arg(long, env = "SWITCHYARD_LOGIN_CLIENT_FAILURES", default_value_t = 100)]
    pub login_client_failures: u32,
    /// The window the login failure counts run over.
    #[arg(long, env = "SWITCHYARD_LOGIN_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_window: Duration,
    /// Passwords hashed at once by this process (0: one per core); more wait for a turn.
    #[arg(long, env = "SWITCHYARD_LOGIN_CONCURRENCY", default_value_t = 0)]
    pub login_concurrency: usize,
    /// How long a login waits for a turn to hash before it is refused as RATE_LIMITED.
    #[arg(long, env = "SWITCHYARD_LOGIN_QUEUE_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub login_queue_wait: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated addresses or
    /// networks, `10.0.0.0/8`): from them, the client is the last address in that header that
    /// is not itself a trusted proxy. From any other peer the header is ignored.
    #[arg(long, env = "SWITCHYARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpRange>,
    /// Web origins allowed to call the API from a browser (CORS), comma-separated, each
    /// `scheme://host[:port]` (`https://shop.example`); none by default: no CORS headers, so
    /// browsers keep other sites' pages out.
    #[arg(long, env = "SWITCHYARD_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
    /// The bearer token a Prometheus scrape of `/metrics` must send (its `authorization`
    /// setting). Unset: `/metrics` answers only connections from this machine (loopback).
    #[arg(long, env = "SWITCHYARD_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    /// Each API key's rate limit: `tokens/seconds` (the bucket and the time it takes to fill
    /// from empty), or `off`. A request takes a token; an operation costs its complexity,
    /// a token per 100, at least one.
    #[arg(long, env = "SWITCHYARD_RATE_LIMIT_KEY", default_value = "6000/60", value_parser = crate::rate_limit::Limit::parse)]
    pub rate_limit_key: crate::rate_limit::Limit,
    /// Each signed-in user's rate limit (a development token's: its role and organisation's).
    #[arg(long, env = "SWITCHYARD_RATE_LIMIT_USER", default_value = "3000/60", value_parser = crate::rate_limit::Limit::parse)]
    pub rate_limit_user: crate::rate_limit::Limit,
    /// Whether webhook endpoints may be local (`http`, loopback and private addresses):
    /// for development and tests only; off, a tenant cannot make the server call into the
    /// operator's network.
    #[arg(long, env = "SWITCHYARD_WEBHOOK_ALLOW_LOCAL", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_local: bool,
    /// How long one webhook try may take.
    #[arg(long, env = "SWITCHYARD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
    /// The waits between a delivery's tries (one try more than waits), comma-separated.
    #[arg(long, env = "SWITCHYARD_WEBHOOK_SCHEDULE", default_value = "1m,15m,2h,20h", value_delimiter = ',', value_parser = parse_duration)]
    pub webhook_schedule: Vec<Duration>,
    /// How long an endpoint's deliveries may fail before it is disabled.
    #[arg(long, env = "SWITCHYARD_WEBHOOK_DISABLE_AFTER", default_value = "5d", value_parser = parse_duration)]
    pub webhook_disable_after: Duration,
    /// How long the webhook log keeps a delivery that is no longer pending (with its tries).
    #[arg(long, env = "SWITCHYARD_WEBHOOK_LOG_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub webhook_log_retention: Duration,
    /// Each anonymous client address's rate limit (an IPv6 client's /64).
    #[arg(long, env = "SWITCHYARD_RATE_LIMIT_ANONYMOUS", default_value = "120/60", value_parser = crate::rate_limit::Limit::parse)]
    pub rate_limit_anonymous: crate::rate_limit::Limit,
}

/// A web origin as browsers send it in `Origin`: `scheme://host[:port]`, http or https, no
/// path, query or user; refused otherwise.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let refused = || format!("{text:?} is not an origin like https://shop.example");
    let authority = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).ok_or_else(refused)?;
    // A port follows the last colon, unless the authority ends an IPv6 literal (`[::1]`).
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && (host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            || (host.starts_with('[')
                && host.ends_with(']')
                && host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok()));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !host_ok || !port_ok {
        return Err(refused());
    }
    Ok(text.to_owned())
}

/// The provisioning engine: workers, leases, retries.
#[derive(Args, Clone, Debug)]
pub struct ProvisioningConfig {
    /// Provisioning workers run inside this process (0: none; run `switchyard worker` instead).
    #[arg(long, env = "SWITCHYARD_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// How many due jobs a provisioning worker claims at once and runs side by side, their
    /// starts recorded in one write and the outcomes of calls that end together in one
    /// (1: one job at a time). Each job keeps its own lease, retries and ordering.
    #[arg(long, env = "SWITCHYARD_JOB_BATCH", default_value_t = 16, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=256), usize::from))]
    pub job_batch: usize,
    /// Webhook workers beside them (a pool of their own: slow receivers never hold up
    /// provisioning); none where `workers` is 0.
    #[arg(long, env = "SWITCHYARD_WEBHOOK_WORKERS", default_value_t = 2)]
    pub webhook_workers: usize,
    /// How long a claimed job stays leased to its worker; an expired lease is claimed again.
    /// Must be longer than `vendor_timeout`.
    #[arg(long, env = "SWITCHYARD_JOB_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub job_lease: Duration,
    /// How often a worker renews its lease while a job runs (`0s`: a third of the lease).
    #[arg(long, env = "SWITCHYARD_JOB_HEARTBEAT", default_value = "0s", value_parser = parse_duration)]
    pub job_heartbeat: Duration,
    /// Attempts before a job is DEAD and waits for an operator.
    #[arg(long, env = "SWITCHYARD_JOB_MAX_ATTEMPTS", default_value_t = 8)]
    pub job_max_attempts: i32,
    /// First retry delay; each retry doubles it (with jitter) up to `job_backoff_max`.
    #[arg(long, env = "SWITCHYARD_JOB_BACKOFF", default_value = "2s", value_parser = parse_duration)]
    pub job_backoff: Duration,
    /// Longest retry delay.
    #[arg(long, env = "SWITCHYARD_JOB_BACKOFF_MAX", default_value = "10m", value_parser = parse_duration)]
    pub job_backoff_max: Duration,
    /// How often an idle worker looks for due jobs (new jobs in this process wake it at once).
    #[arg(long, env = "SWITCHYARD_WORKER_POLL", default_value = "500ms", value_parser = parse_duration)]
    pub worker_poll: Duration,
    /// Timeout of one call to a vendor's HTTP endpoint.
    #[arg(long, env = "SWITCHYARD_VENDOR_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub vendor_timeout: Duration,
    /// A PEM file of extra root certificates to trust for vendors' `https://` endpoints (a
    /// private CA); the public web roots are always trusted.
    #[arg(long, env = "SWITCHYARD_VENDOR_CA_FILE")]
    pub vendor_ca_file: Option<std::path::PathBuf>,
    /// The longest delay a vendor's `Retry-After` may ask for; longer ones are cut to it.
    #[arg(long, env = "SWITCHYARD_VENDOR_RETRY_AFTER_MAX", default_value = "1h", value_parser = parse_duration)]
    pub vendor_retry_after_max: Duration,
    /// On SIGTERM/SIGINT, how long in-flight work may take to finish: HTTP requests, and jobs
    /// whose vendor call runs (a job still running then is released to the queue, not left
    /// RUNNING until its lease expires).
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// How long the outbox keeps events (a live subscription can resume within it); the
    /// scheduler prunes older ones.
    #[arg(long, env = "SWITCHYARD_EVENT_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub event_retention: Duration,
    /// How often the scheduler renews or expires subscriptions whose term has ended.
    #[arg(long, env = "SWITCHYARD_RENEWAL_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub renewal_interval: Duration,
}

impl ProvisioningConfig {
    /// Refuses settings that cannot work: a lease no longer than one vendor call (another
    /// worker would start the same job while the call runs), a heartbeat no shorter than
    /// the lease, no attempts.
    pub fn validate(&self) -> Result<(), String> {
        if self.job_lease <= self.vendor_timeout {
            return Err(format!(
                "SWITCHYARD_JOB_LEASE ({:?}) must be longer than SWITCHYARD_VENDOR_TIMEOUT ({:?}): a lease that can run out \
                 during one vendor call lets a second worker make the same call",
                self.job_lease, self.vendor_timeout
            ));
        }
        if self.heartbeat() >= self.job_lease {
            return Err(format!(
                "SWITCHYARD_JOB_HEARTBEAT ({:?}) must be shorter than SWITCHYARD_JOB_LEASE ({:?})",
                self.job_heartbeat, self.job_lease
            ));
        }
        if self.job_max_attempts < 1 {
            return Err("SWITCHYARD_JOB_MAX_ATTEMPTS must be at least 1".into());
        }
        const DAY: Duration = Duration::from_secs(86_400);
        let bounds = [
            ("SWITCHYARD_JOB_LEASE", self.job_lease, DAY),
            ("SWITCHYARD_JOB_BACKOFF_MAX", self.job_backoff_max, 7 * DAY),
            ("SWITCHYARD_JOB_BACKOFF", self.job_backoff, self.job_backoff_max),
            ("SWITCHYARD_VENDOR_RETRY_AFTER_MAX", self.vendor_retry_after_max, 7 * DAY),
            ("SWITCHYARD_SHUTDOWN_GRACE", self.shutdown_grace, Duration::from_secs(600)),
        ];
        for (name, value, most) in bounds {
            if value > most {
                return Err(format!("{name} ({value:?}) must be at most {most:?}"));
            }
        }
        Ok(())
    }

    /// The lease renewal interval: as configured, else a third of the lease.
    pub fn heartbeat(&self) -> Duration {
        if self.job_heartbeat.is_zero() { self.job_lease / 3 } else { self.job_heartbeat }
    }
}

/// Parses `500ms`, `30s`, `5m`, `8h`, `2d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!("unknown duration unit in {text:?} (use ms, s, m, h or d)"));
        }
    };
    Ok(Duration::from_secs(value.saturating_mul(seconds)))
}

/// A configuration group with every value from its defaults and the environment, as if
/// no flags were given (for tools and tests).
pub fn defaults<T: Args>() -> Result<T, clap::Error> {
    #[derive(clap::Parser)]
    struct Wrapper<T: Args> {
        #[command(flatten)]
        inner: T,
    }
    <Wrapper<T> as clap::Parser>::try_parse_from(["switchyard"]).map(|w| w.inner)
}

/// An address or a network of them (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `address` is in the range (an IPv4 address mapped into IPv6 counts as IPv4).
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((net, net_len), (addr, addr_len)) = (bits(self.network), bits(address));
        if net_len != addr_len {
            return false;
        }
        // IPv4 sits in the top 32 bits, so one mask of the top `prefix` bits serves both.
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        net & mask == addr & mask
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address.parse().map_err(|_| format!("not an address: {text:?}"))?;
        let most: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= most).ok_or_else(|| format!("not a prefix length: {text:?}"))?
            }
            None => most,
        };
        // An IPv4 network written mapped into IPv6 (`::ffff:10.0.0.0/104`) is that IPv4
        // network, as addresses are compared.
        if let std::net::IpAddr::V6(v6) = network
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            let prefix = prefix
                .checked_sub(96)
                .ok_or_else(|| format!("a mapped IPv4 network needs a prefix of 96 or more: {text:?}"))?;
            return Ok(Self { network: std::net::IpAddr::V4(v4), prefix });
        }
        Ok(Self { network, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let range = |s: &str| s.parse::<IpRange>().unwrap_or_else(|e| panic!("{e}"));
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        assert!(range("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(range("203.0.113.7").contains(ip("203.0.113.7")));
        assert!(!range("203.0.113.7").contains(ip("203.0.113.8")));
        assert!(range("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!range("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(!range("0.0.0.0/0").contains(ip("::1")), "an IPv4 range holds no IPv6 address");
        assert!(range("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(range("::ffff:10.0.0.0/104").contains(ip("10.9.8.7")));
        assert!(range("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
        assert!(!range("::ffff:10.0.0.1").contains(ip("10.0.0.2")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", "::ffff:10.0.0.0/64"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }

    /// Settings past their documented bounds are refused at start-up with the variable's
    /// name, not obeyed (a 30-day lease would leave a dead worker's job untouched for a month).
    #[test]
    fn provisioning_settings_past_their_bounds_are_refused() {
        let fine: ProvisioningConfig = defaults().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fine.validate(), Ok(()));
        type Spoil = fn(&mut ProvisioningConfig);
        let cases: [(&str, Spoil); 5] = [
            ("SWITCHYARD_JOB_LEASE", |c| c.job_lease = Duration::from_secs(30 * 86_400)),
            ("SWITCHYARD_JOB_BACKOFF", |c| c.job_backoff = c.job_backoff_max + Duration::from_secs(1)),
            ("SWITCHYARD_JOB_BACKOFF_MAX", |c| c.job_backoff_max = Duration::from_secs(30 * 86_400)),
            ("SWITCHYARD_VENDOR_RETRY_AFTER_MAX", |c| c.vendor_retry_after_max = Duration::from_secs(30 * 86_400)),
            ("SWITCHYARD_SHUTDOWN_GRACE", |c| c.shutdown_grace = Duration::from_secs(86_400)),
        ];
        for (name, spoil) in cases {
            let mut config = fine.clone();
            spoil(&mut config);
            let refused = config.validate().err().unwrap_or_default();
            assert!(refused.contains(name), "{name}: {refused:?}");
        }
    }
}
