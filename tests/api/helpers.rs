//! Spawning the app on a fresh database, minting tokens, sending GraphQL, and a fixture.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use switchyard::config::{self, AuthConfig, ProvisioningConfig, ServerConfig};
use switchyard::db;
use switchyard::domain::catalog::{self, NewOffer, NewPricePoint, NewProduct, NewVendor};
use switchyard::domain::clock::ManualClock;
use switchyard::domain::customers::{self, NewCustomer, VendorAccount};
use switchyard::domain::ids::{OfferId, ProductId, ResellerId, TierId, VendorId};
use switchyard::domain::resellers::{self, NewReseller};
use switchyard::domain::{Actor, Domain, Role};
use switchyard::startup::{Application, Overrides, Settings};
use switchyard::state::AppState;

/// The HS256 secret test tokens are signed with.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A running app on its own database.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub domain: Arc<Domain>,
    pub clock: Arc<ManualClock>,
    /// SQL statements executed since the app started (or since `reset_statements`).
    pub statements: Arc<AtomicUsize>,
    /// The app's provisioning workers; dropping them stops them.
    #[expect(dead_code, reason = "held so the workers run as long as the app")]
    pub workers: Option<switchyard::workers::Workers>,
    _database: TestDatabase,
}

/// Test auth settings: HS256 with [`TEST_SECRET`].
pub fn auth_config() -> AuthConfig {
    let mut auth: AuthConfig = config::defaults().expect("auth defaults");
    auth.jwt_secret = Some(TEST_SECRET.into());
    auth.jwt_algorithm = config::JwtAlgorithm::Hs256;
    auth.jwt_issuer = "switchyard".into();
    auth.jwt_audience = "switchyard-api".into();
    auth
}

/// Spawns the app with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after adjusting its server settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    spawn(adjust, 0, None).await
}

/// Spawns the app with `workers` provisioning workers (sandbox vendors answer at once).
pub async fn spawn_app_with_workers(workers: usize) -> TestApp {
    spawn(|_| {}, workers, None).await
}

/// Test provisioning settings: fast polling and no backoff, so retries run at once.
pub fn provisioning_config(workers: usize) -> ProvisioningConfig {
    let mut provisioning: ProvisioningConfig = config::defaults().expect("provisioning defaults");
    provisioning.workers = workers;
    provisioning.worker_poll = Duration::from_millis(20);
    provisioning.job_backoff = Duration::ZERO;
    provisioning.job_max_attempts = 4;
    provisioning.vendor_timeout = Duration::from_millis(500);
    // Leases are renewed often: tests move the clock past a lease while a call runs.
    provisioning.job_heartbeat = Duration::from_millis(100);
    provisioning.renewal_interval = Duration::from_secs(3600);
    provisioning
}

/// Spawns the app; with `shared`, on another app's database (a second server process).
pub async fn spawn(adjust: impl FnOnce(&mut ServerConfig), workers: usize, shared: Option<&TestApp>) -> TestApp {
    let database = match shared {
        Some(other) => TestDatabase { url: other._database.url.clone(), cleanup: Cleanup::None },
        None => TestDatabase::create().await,
    };
    spawn_in(database, adjust, workers).await
}

/// Spawns the app, without workers, on the database at `url` (a throwaway cluster's, say),
/// whichever backend the suite runs on.
pub async fn spawn_on(url: &str, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    spawn_in(TestDatabase { url: url.to_owned(), cleanup: Cleanup::None }, adjust, 0).await
}

/// Spawns the app with `workers` and its auth settings adjusted (a zero JWT leeway, say).
pub async fn spawn_with_auth(adjust: impl FnOnce(&mut AuthConfig), workers: usize) -> TestApp {
    spawn_configured(TestDatabase::create().await, |_| {}, adjust, workers).await
}

async fn spawn_in(database: TestDatabase, adjust: impl FnOnce(&mut ServerConfig), workers: usize) -> TestApp {
    spawn_configured(database, adjust, |_| {}, workers).await
}

async fn spawn_configured(
    database: TestDatabase,
    adjust: impl FnOnce(&mut ServerConfig),
    adjust_auth: impl FnOnce(&mut AuthConfig),
    workers: usize,
) -> TestApp {
    let mut server: ServerConfig = config::defaults().expect("server defaults");
    server.http_workers = 2;
    server.bind = "127.0.0.1:0".into();
    // Tests send bursts from one address and one token; the rate-limit tests set their own.
    server.rate_limit_key = switchyard::rate_limit::Limit(None);
    server.rate_limit_user = switchyard::rate_limit::Limit(None);
    server.rate_limit_anonymous = switchyard::rate_limit::Limit(None);
    adjust(&mut server);
    let mut connection = db::connect(&database.url, 8).await.expect("connect");
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&statements);
    connection.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()));
    let mut settings = Settings::from_environment().expect("default settings");
    settings.database.database_url = Some(database.url.clone());
    settings.auth = auth_config();
    adjust_auth(&mut settings.auth);
    settings.server = server;
    settings.provisioning = provisioning_config(workers);
    let overrides = Overrides { clock: Some(clock.clone()), database: Some(connection) };
    let mut app = Application::build(settings, overrides).await.expect("build the application");
    app.start_workers();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let running = app.serve(listener).expect("serve");
    tokio::spawn(running);
    let (state, domain) = (app.state.clone(), Arc::clone(app.domain()));
    TestApp {
        address,
        // Idle pooled connections are dropped well before the server's keep-alive (5 s) closes
        // them: reusing one the server is closing fails the request (IncompleteMessage).
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        state,
        domain,
        clock,
        statements,
        workers: app.workers,
        _database: database,
    }
}

impl TestApp {
    /// A token for `role` acting for `org`.
    pub fn token(&self, role: Role, org: Option<i64>) -> String {
        self.state.auth.issue(&Actor::from_role(None, role, org).unwrap(), Duration::from_secs(3600)).unwrap()
    }

    pub fn operator(&self) -> String {
        self.token(Role::Operator, None)
    }

    /// POSTs a GraphQL document; returns the status and the JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        self.post_body(token, &json!({"query": query, "variables": variables})).await
    }

    /// POSTs a JSON body to `/graphql` (a batch is an array of requests); returns the status
    /// and the JSON body.
    pub async fn post_body(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.client.post(format!("{}/graphql", self.address)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// POSTs a GraphQL document and expects `data` without errors.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// POSTs a GraphQL document and returns the `extensions.code` of its first error.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.post(token, query, variables).await;
        body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned()
    }

    /// Polls `query` until `done` holds for its data (10 s at most).
    pub async fn wait_for(&self, token: &str, query: &str, variables: Value, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let data = self.data(token, query, variables.clone()).await;
            if done(&data) {
                return data;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting; last: {data}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs due provisioning jobs in this task until none is due; how many ran.
    pub async fn run_jobs(&self) -> usize {
        let client = reqwest::Client::new();
        let mut ran = 0;
        while switchyard::workers::run_one(&self.domain, "test-runner", &client, Duration::from_millis(500))
            .await
            .unwrap()
        {
            ran += 1;
        }
        ran
    }

    /// The URL of this app's database (another process can open it).
    pub fn database_url(&self) -> &str {
        &self._database.url
    }

    /// Moves the test clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    pub fn reset_statements(&self) {
        self.statements.store(0, Ordering::SeqCst);
    }

    pub fn statement_count(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }
}

/// A database only this test uses: a temporary SQLite file, or a fresh PostgreSQL
/// database when `DATABASE_URL` points at PostgreSQL. Removed when dropped.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    File(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

fn unique_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("sy_test_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand::random::<u32>())
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = unique_name();
        match std::env::var("DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                let admin: DatabaseConnection = db::connect(&admin_url, 1).await.expect("connect admin");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
                admin.close().await.ok();
                let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
                Self { url: format!("{base}/{name}"), cleanup: Cleanup::Postgres { admin_url, name } }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                Self { url: format!("sqlite://{}?mode=rwc", path.display()), cleanup: Cleanup::File(path) }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::None => {}
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    runtime.block_on(async {
                        if let Ok(admin) = db::connect(&admin_url, 1).await {
                            let _ =
                                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                            admin.close().await.ok();
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Two vendors, a product each with offers priced in USD and EUR, two tiers, two resellers
/// with a customer each.
pub struct Fixture {
    pub vendor_a: i64,
    pub vendor_b: i64,
    pub product_a: i64,
    pub product_b: i64,
    /// Offers of product A (P1Y monthly, P1M monthly, P3Y annual).
    pub offers_a: Vec<i64>,
    pub offer_b: i64,
    pub retired_offer: i64,
    pub tier_gold: i64,
    pub reseller_a: i64,
    pub reseller_b: i64,
    pub customer_a: i64,
    pub customer_b: i64,
}

pub fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

impl Fixture {
    pub async fn build(app: &TestApp) -> Self {
        let domain = &app.domain;
        let op = Actor::system();
        let vendor = |code: &str| NewVendor {
            code: code.into(),
            name: code.to_uppercase(),
            connector_kind: entity::enums::ConnectorKind::Sandbox,
            connector_settings: None,
        };
        let vendor_a = catalog::create_vendor(domain, &op, vendor("vendor-a")).await.unwrap().id;
        let vendor_b = catalog::create_vendor(domain, &op, vendor("vendor-b")).await.unwrap().id;
        let product = |vendor_id, name: &str| NewProduct { vendor_id, name: name.into(), description: None };
        let product_a =
            catalog::create_product(domain, &op, product(VendorId::new(vendor_a), "Suite A")).await.unwrap().id;
        let product_b =
            catalog::create_product(domain, &op, product(VendorId::new(vendor_b), "Suite B")).await.unwrap().id;
        use entity::enums::{BillingFrequency as F, Term as T};
        let offer = |product_id, sku: &str, term, frequency| NewOffer {
            product_id,
            sku: sku.into(),
            name: format!("Offer {sku}"),
            unit: "license".into(),
            term,
            billing_frequency: frequency,
            min_quantity: 1,
            max_quantity: 300,
            usage_meter: None,
        };
        let mut offers_a = Vec::new();
        for (sku, term, frequency) in
            [("A-P1Y-M", T::P1y, F::Monthly), ("A-P1M-M", T::P1m, F::Monthly), ("A-P3Y-A", T::P3y, F::Annual)]
        {
            offers_a.push(
                catalog::create_offer(domain, &op, offer(ProductId::new(product_a), sku, term, frequency))
                    .await
                    .unwrap()
                    .id,
            );
        }
        let offer_b =
            catalog::create_offer(domain, &op, offer(ProductId::new(product_b), "B-P1Y-M", T::P1y, F::Monthly))
                .await
                .unwrap()
                .id;
        let retired_offer =
            catalog::create_offer(domain, &op, offer(ProductId::new(product_a), "A-OLD", T::P1y, F::Monthly))
                .await
                .unwrap()
                .id;
        catalog::update_offer(
            domain,
            &op,
            OfferId::new(retired_offer),
            catalog::OfferChanges { status: Some(entity::enums::CatalogStatus::Retired), ..Default::default() },
        )
        .await
        .unwrap();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for offer_id in offers_a.iter().copied().chain([offer_b, retired_offer]) {
            for (currency, cost, list) in [("USD", "8.00", "10.00"), ("EUR", "7.40", "9.20")] {
                catalog::add_price_point(
                    domain,
                    &op,
                    NewPricePoint {
                        offer_id: OfferId::new(offer_id),
                        currency: currency.into(),
                        cost: dec(cost),
                        list_price: dec(list),
                        usage_unit_cost: None,
                        usage_unit_list_price: None,
                        effective_from: Some(start),
                    },
                )
                .await
                .unwrap();
            }
        }
        let tier_gold = resellers::create_tier(domain, &op, "Gold", dec("0.15")).await.unwrap().id;
        let reseller = |name: &str, currency: &str, prefix: &str| NewReseller {
            name: name.into(),
            tier_id: TierId::new(tier_gold),
            currency: currency.into(),
            external_partner_id: None,
            invoice_prefix: prefix.into(),
        };
        let reseller_a =
            resellers::create_reseller(domain, &op, reseller("Reseller A", "USD", "RSLA")).await.unwrap().id;
        let reseller_b =
            resellers::create_reseller(domain, &op, reseller("Reseller B", "EUR", "RSLB")).await.unwrap().id;
        let customer = |reseller_id, name: &str, currency: &str| NewCustomer {
            reseller_id: Some(reseller_id),
            name: name.into(),
            country: "DE".into(),
            currency: currency.into(),
            tax_rate: dec("0.19"),
            vendor_accounts: vec![VendorAccount {
                vendor_id: VendorId::new(vendor_a),
                external_id: format!("tenant-{}", name.replace(' ', "-")),
            }],
        };
        let customer_a =
            customers::create_customer(domain, &op, customer(ResellerId::new(reseller_a), "Customer A", "USD"))
                .await
                .unwrap()
                .id;
        let customer_b =
            customers::create_customer(domain, &op, customer(ResellerId::new(reseller_b), "Customer B", "EUR"))
                .await
                .unwrap()
                .id;
        Self {
            vendor_a,
            vendor_b,
            product_a,
            product_b,
            offers_a,
            offer_b,
            retired_offer,
            tier_gold,
            reseller_a,
            reseller_b,
            customer_a,
            customer_b,
        }
    }
}

/// A further offer of product A and its one USD price point (from 2026-01-01).
pub struct ExtraOffer<'a> {
    pub sku: &'a str,
    pub term: entity::enums::Term,
    pub frequency: entity::enums::BillingFrequency,
    pub max_quantity: i32,
    pub cost: &'a str,
    pub list: &'a str,
    /// The usage meter and its (cost, list) unit prices.
    pub usage: Option<(&'a str, &'a str, &'a str)>,
}

impl Fixture {
    /// Creates `extra` under product A; its id.
    pub async fn offer(&self, app: &TestApp, extra: ExtraOffer<'_>) -> i64 {
        let op = Actor::system();
        let offer = catalog::create_offer(
            &app.domain,
            &op,
            NewOffer {
                product_id: ProductId::new(self.product_a),
                sku: extra.sku.into(),
                name: format!("Offer {}", extra.sku),
                unit: "license".into(),
                term: extra.term,
                billing_frequency: extra.frequency,
                min_quantity: 1,
                max_quantity: extra.max_quantity,
                usage_meter: extra.usage.map(|(meter, _, _)| meter.into()),
            },
        )
        .await
        .unwrap()
        .id;
        catalog::add_price_point(
            &app.domain,
            &op,
            NewPricePoint {
                offer_id: OfferId::new(offer),
                currency: "USD".into(),
                cost: dec(extra.cost),
                list_price: dec(extra.list),
                usage_unit_cost: extra.usage.map(|(_, cost, _)| dec(cost)),
                usage_unit_list_price: extra.usage.map(|(_, _, list)| dec(list)),
                effective_from: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
            },
        )
        .await
        .unwrap();
        offer
    }
}

/// Whether the tests run against PostgreSQL (some tests are PostgreSQL-only).
pub fn is_postgres() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|url| url.starts_with("postgres"))
}

/// Counts rows of a table.
pub async fn count_rows(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.domain.db.get_database_backend();
    let row = app
        .domain
        .db
        .query_one_raw(Statement::from_string(backend, format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A queued PROVISIONING job row with no subject (as if written by hand), to insert.
pub fn subjectless_job(request_id: &str, max_attempts: i32, at: chrono::DateTime<Utc>) -> entity::job::ActiveModel {
    use sea_orm::{NotSet, Set};
    entity::job::ActiveModel {
        id: NotSet,
        kind: Set(entity::enums::JobKind::Provisioning),
        ordering_key: Set(None),
        payload: Set(json!({})),
        request_id: Set(request_id.into()),
        status: Set(entity::enums::JobStatus::Queued),
        attempts: Set(0),
        max_attempts: Set(max_attempts),
        run_after: Set(at),
        locked_by: Set(None),
        locked_until: Set(None),
        lease_token: Set(None),
        last_error: Set(None),
        reference: Set(None),
        subscription_id: Set(None),
        order_id: Set(None),
        vendor_id: Set(None),
        action: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        finished_at: Set(None),
    }
}
