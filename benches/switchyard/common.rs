//! What every part shares: a temporary SQLite file and a temporary PostgreSQL database
//! (on `BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; skipped
//! with a message when unreachable), each dropped afterwards; the figures a part reports to
//! the harness's summary; and a server in a process of its own.

use std::future::Future;
use std::io::{BufRead, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use switchyard::db;
use switchyard::domain::{Actor, Role};
use switchyard::startup::{Application, Overrides, Settings};

/// The allocator of the `switchyard` process (see `src/main.rs`), so a bench measures what it
/// runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `bench` once on SQLite and once on PostgreSQL, with the backend's name and URL.
/// `BENCH_BACKEND=sqlite` or `postgres` runs one only (for a clean peak-memory figure).
pub async fn on_each_backend<F, Fut>(name: &str, bench: F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let only = std::env::var("BENCH_BACKEND").unwrap_or_default();
    if only != "postgres" {
        sqlite(name, &bench).await;
    }
    if only != "sqlite" {
        postgres(name, &bench).await;
    }
}

async fn sqlite<F, Fut>(name: &str, bench: &F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = std::env::temp_dir().join(format!("switchyard-bench-{name}-{}.db", std::process::id()));
    bench("SQLite", format!("sqlite://{}?mode=rwc", sqlite.display())).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
}

async fn postgres<F, Fut>(name: &str, bench: &F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match db::connect(&admin_url, 1).await {
        Ok(admin) => {
            let database = format!("switchyard_bench_{name}_{}", std::process::id());
            admin.execute_unprepared(&format!("CREATE DATABASE {database}")).await.expect("create the bench database");
            let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
            bench("PostgreSQL", format!("{base}/{database}")).await;
            admin.execute_unprepared(&format!("DROP DATABASE {database} WITH (FORCE)")).await.expect("drop it");
        }
        Err(error) => println!("*** PostgreSQL SKIPPED: {error} ***"),
    }
}

/// Adds the generated offers numbered `offers` to the catalog (on top of the demo's), four per product
/// under the demo's first vendor, active, each with a USD and an EUR price point: the
/// catalog sizes of #13 (1,000 / 20,000 / 200,000 offers). Rows go in 1,000 at a time.
pub async fn generate_catalog(db: &sea_orm::DatabaseConnection, offers: std::ops::Range<usize>) {
    use chrono::{TimeZone, Utc};
    use entity::enums::{BillingFrequency, CatalogStatus, Term};
    use entity::{DbDecimal, offer, price_point, product, vendor};
    use rust_decimal::Decimal;
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};

    const PER_PRODUCT: usize = 4;
    const CHUNK: usize = 1_000;
    let vendor = vendor::Entity::find().order_by_asc(vendor::Column::Id).one(db).await.unwrap().expect("a demo vendor");
    let now = Utc::now();
    let since = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let products = (offers.start / PER_PRODUCT)..offers.end.div_ceil(PER_PRODUCT);
    let mut product_ids = std::collections::HashMap::new();
    for start in products.clone().step_by(CHUNK) {
        let numbers: Vec<usize> = (start..(start + CHUNK).min(products.end)).collect();
        let rows = numbers.iter().map(|&n| product::ActiveModel {
            vendor_id: Set(vendor.id),
            name: Set(format!("Generated product {n:06}")),
            description: Set(format!("A generated product, number {n}, for catalog-scale benchmarks.")),
            status: Set(CatalogStatus::Active),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        let inserted = product::Entity::insert_many(rows).exec_with_returning(db).await.unwrap();
        product_ids.extend(numbers.into_iter().zip(inserted.into_iter().map(|p| p.id)));
    }
    let terms = [
        (Term::P1m, BillingFrequency::Monthly),
        (Term::P1y, BillingFrequency::Monthly),
        (Term::P1y, BillingFrequency::Annual),
        (Term::P3y, BillingFrequency::Annual),
    ];
    for start in offers.clone().step_by(CHUNK) {
        let rows = (start..(start + CHUNK).min(offers.end)).map(|n| {
            let (term, billing_frequency) = terms[n % PER_PRODUCT];
            offer::ActiveModel {
                product_id: Set(product_ids[&(n / PER_PRODUCT)]),
                vendor_id: Set(vendor.id),
                sku: Set(format!("GEN-{n:07}")),
                name: Set(format!("Generated offer {n:07}")),
                unit: Set("license".into()),
                term: Set(term),
                billing_frequency: Set(billing_frequency),
                min_quantity: Set(1),
                max_quantity: Set(10_000),
                status: Set(CatalogStatus::Active),
                usage_meter: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        });
        let inserted = offer::Entity::insert_many(rows).exec_with_returning(db).await.unwrap();
        let points = inserted.iter().flat_map(|offer| {
            [("USD", 1_000), ("EUR", 920)].map(|(currency, cents)| {
                let list = Decimal::new(cents + offer.id % 1_000, 2);
                price_point::ActiveModel {
                    offer_id: Set(offer.id),
                    currency: Set(currency.into()),
                    cost: Set(DbDecimal(list * Decimal::new(80, 2))),
                    list_price: Set(DbDecimal(list)),
                    usage_unit_cost: Set(None),
                    usage_unit_list_price: Set(None),
                    effective_from: Set(since),
                    created_at: Set(now),
                    ..Default::default()
                }
            })
        });
        price_point::Entity::insert_many(points.collect::<Vec<_>>()).exec(db).await.unwrap();
    }
    // As after any bulk load: the planner needs statistics to walk a page by the primary key
    // (without them PostgreSQL joined all 200,000 offers for a 50-offer page). The server
    // here runs with autovacuum off, so nothing would gather them.
    db.execute_unprepared("ANALYZE").await.unwrap();
}

/// The demo data, with every vendor's sandbox answering at once and never failing: the
/// engine is measured, not the simulated vendor.
pub async fn seed_with_instant_vendors(domain: &switchyard::domain::Domain) {
    switchyard::demo::seed_if_empty(domain).await.expect("seed the demo data");
    domain
        .db
        .execute_unprepared("UPDATE vendors SET connector_settings = '{\"latencyMs\": 0, \"failureRate\": \"0\"}'")
        .await
        .expect("make the vendors instant");
    domain.catalog.invalidate();
}

/// Writes the seeded `subscriptions` (if any), then `rows` of another table that refer to
/// them, `chunk` to a statement; on PostgreSQL moves the subscriptions' id sequence past the
/// ids the seed gave them. Both vectors are left empty.
pub async fn flush_seeded<A>(
    db: &sea_orm::DatabaseConnection,
    subscriptions: &mut Vec<entity::subscription::ActiveModel>,
    rows: &mut Vec<A>,
    chunk: usize,
) where
    A: sea_orm::ActiveModelTrait + Clone + Send,
{
    use sea_orm::EntityTrait;
    if !subscriptions.is_empty() {
        entity::subscription::Entity::insert_many(std::mem::take(subscriptions))
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    for rows in std::mem::take(rows).chunks(chunk) {
        A::Entity::insert_many(rows.to_vec()).exec_without_returning(db).await.unwrap();
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(
            "SELECT setval(pg_get_serial_sequence('subscriptions', 'id'), (SELECT MAX(id) FROM subscriptions))",
        )
        .await
        .unwrap();
    }
}

/// What a figure is held to in the summary (the targets of #13).
#[derive(Clone, Copy)]
pub enum Goal {
    /// At least this much.
    AtLeast(f64),
    /// Less than this.
    Below(f64),
    /// No more than this.
    AtMost(f64),
    /// Shown beside the others: a reference or a context.
    Shown,
}

/// Reports a figure to the harness (`main.rs`), which shows it in the summary beside its
/// goal: `item` is #13's item (or another issue's mark), `what` names the figure the same on
/// each backend.
pub fn figure(item: &str, backend: &str, what: &str, value: f64, unit: &str, goal: Goal) {
    let goal = match goal {
        Goal::AtLeast(v) => format!(">={v}"),
        Goal::Below(v) => format!("<{v}"),
        Goal::AtMost(v) => format!("<={v}"),
        Goal::Shown => "-".to_owned(),
    };
    println!("{FIGURE}\t{item}\t{backend}\t{what}\t{value}\t{unit}\t{goal}");
}

/// The mark of a figure's line in a part's output.
pub const FIGURE: &str = "@figure";

/// Set in the environment of a server process: the database it serves.
pub const SERVE: &str = "BENCH_SERVE";
/// Set beside [`SERVE`]: how many provisioning workers the server runs (default 2).
pub const SERVE_WORKERS: &str = "BENCH_SERVE_WORKERS";

/// A profiler's command line to run a server process under, in the `orders` and `live`
/// parts: `BENCH_SERVER_WRAP=heaptrack`, or `perf record -g -o perf.data --`.
pub const SERVER_WRAP: &str = "BENCH_SERVER_WRAP";

/// A server in a process of its own (this binary started again with [`SERVE`]), pinned to
/// core 0 when the machine has `taskset`, so its memory and CPU are its own.
pub struct ServerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it listens (`host:port`).
    pub address: String,
    /// A token of the operator's and one of the first reseller's.
    pub operator: String,
    pub reseller: String,
}

impl ServerProcess {
    /// Starts it on `database_url` with `workers` provisioning workers, under `wrapper` (a
    /// profiler's command line) when it is not empty; returns once it listens.
    pub fn start(database_url: &str, workers: usize, wrapper: &str) -> Self {
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(std::env::current_exe().unwrap());
                command
            }
            None => Command::new(std::env::current_exe().unwrap()),
        };
        let mut child = command
            .env(SERVE, database_url)
            .env(SERVE_WORKERS, workers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        pin(pid, "0");
        let mut line = String::new();
        let mut output = std::io::BufReader::new(child.stdout.take().unwrap());
        // The server's line is its address and two tokens (a profiler may print before it).
        while line.split_whitespace().next().is_none_or(|first| first.parse::<std::net::SocketAddr>().is_err()) {
            line.clear();
            assert!(output.read_line(&mut line).unwrap() > 0, "the server ended before it listened");
        }
        let mut words = line.split_whitespace().map(str::to_owned);
        let (address, operator, reseller) = (words.next().unwrap(), words.next().unwrap(), words.next().unwrap());
        Self { child, pid, address, operator, reseller }
    }

    /// Ends it (its standard input closes) and waits for it.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The server process's body: the demo data with instant vendors, one HTTP worker, no rate
/// limits, [`SERVE_WORKERS`] provisioning workers; prints its address and two tokens, and
/// exits when its standard input closes.
pub fn serve(database_url: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut settings = Settings::from_environment().unwrap();
        settings.database.database_url = Some(database_url.to_owned());
        settings.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret-00".into());
        settings.server.http_workers = 1;
        settings.server.rate_limit_user = switchyard::rate_limit::Limit::parse("off").unwrap();
        settings.server.rate_limit_anonymous = switchyard::rate_limit::Limit::parse("off").unwrap();
        settings.provisioning.workers = std::env::var(SERVE_WORKERS).ok().and_then(|n| n.parse().ok()).unwrap_or(2);
        settings.provisioning.worker_poll = Duration::from_millis(50);
        let mut app = Application::build(settings, Overrides::default()).await.unwrap();
        let domain = Arc::clone(app.domain());
        seed_with_instant_vendors(&domain).await;
        // As `switchyard serve` does (none when there are no workers).
        app.start_workers();
        let hour = Duration::from_secs(3600);
        let operator = app.state.auth.issue(&Actor::from_role(None, Role::Operator, None).unwrap(), hour).unwrap();
        let reseller = app.state.auth.issue(&Actor::from_role(None, Role::Reseller, Some(1)).unwrap(), hour).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        println!("{} {operator} {reseller}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let running = app.serve(listener).unwrap();
        std::thread::spawn(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
            std::process::exit(0);
        });
        running.await.unwrap();
    });
}

/// The CPUs process `pid` may run on (`taskset`'s list, such as `0,1` or `0-3`); `None`
/// without `taskset`.
pub fn affinity(pid: u32) -> Option<String> {
    let output = Command::new("taskset").args(["-c", "-p", &pid.to_string()]).output().ok()?;
    // "pid 42's current affinity list: 0,1"
    String::from_utf8_lossy(&output.stdout).rsplit_once(": ").map(|(_, list)| list.trim().to_owned())
}

/// Pins process `pid` (all its threads) to `cpus`, when `taskset` is there.
pub fn pin(pid: u32, cpus: &str) {
    let pinned =
        Command::new("taskset").args(["-a", "-p", "-c", cpus, &pid.to_string()]).stdout(Stdio::null()).status();
    if !pinned.is_ok_and(|s| s.success()) {
        println!("(taskset is missing: the server and its load are not pinned to cores)");
    }
}

/// A process's resident memory in KiB and its CPU time so far (user + system), from /proc.
pub fn usage(pid: u32) -> (u64, Duration) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the command's ')'.
    (rss_kib, Duration::from_millis((ticks(11) + ticks(12)) * 10))
}

/// A field of this process's /proc status in KiB (`VmRSS:`, `VmHWM:`).
pub fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The quantile `q` (0 to 1) of sorted `values`; the default of T when there are none.
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}
