//! The `switchyard` command: serve, worker-less admin commands, schema export, dev tokens.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use switchyard::config::{AuthConfig, DatabaseConfig, ProvisioningConfig, ServerConfig, parse_duration};
use switchyard::domain::{Actor, Role};
use switchyard::shutdown::Shutdown;
use switchyard::startup::{self, Application, Overrides, Settings, StartupError};
use switchyard::{demo, graphql};

/// The process's allocator. glibc's keeps what each thread's arena once held: a billing run on
/// SQLite, whose connections each run on a thread of their own, kept a third more resident
/// (270 MiB against 208 MiB billing 30,000 subscriptions), and allocating and freeing was a
/// quarter of a billing run's CPU (17.1 s against 20.4 s).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Switchyard: GraphQL billing and provisioning for cloud channel marketplaces.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `switchyard reconcile …`
#[derive(Subcommand)]
enum Reconcile {
    /// Imports a vendor's statement (Partner Center's reconciliation CSV): checked whole
    /// first, stored once (the same file again is the earlier import).
    Import {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The vendor whose statement it is.
        #[arg(long)]
        vendor: i64,
        /// The month it bills (`2026-11`); by default the month most of its charges start in.
        #[arg(long)]
        period: Option<String>,
        /// The file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once at start-up; boxing would only add noise")]
enum Command {
    /// Runs the GraphQL server.
    Serve {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        auth: AuthConfig,
        #[command(flatten)]
        server: ServerConfig,
        #[command(flatten)]
        provisioning: ProvisioningConfig,
        /// Load the demo data set if the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Runs provisioning workers and the renewal scheduler without the HTTP server.
    Worker {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        provisioning: ProvisioningConfig,
    },
    /// Runs billing for a period (`YYYY-MM`), as the operator.
    Bill {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        server: ServerConfig,
        /// The month to bill, e.g. 2026-11.
        #[arg(long)]
        period: String,
    },
    /// Reconciliation of vendors' statements.
    Reconcile {
        #[command(subcommand)]
        action: Reconcile,
    },
    /// Applies pending database migrations.
    Migrate {
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Loads data into the database.
    Seed {
        #[command(flatten)]
        database: DatabaseConfig,
        /// Load the demo data set (only into an empty database).
        #[arg(long)]
        demo: bool,
    },
    /// Prints the GraphQL schema (SDL).
    Schema,
    /// Prints a development token signed with the configured key (or the data directory's).
    Token {
        #[command(flatten)]
        auth: AuthConfig,
        #[command(flatten)]
        database: DatabaseConfig,
        /// The role to act in.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The organization: vendor, reseller or customer id (not for the operator).
        #[arg(long)]
        org: Option<i64>,
        /// Lifetime (e.g. 30m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text.to_ascii_lowercase().as_str() {
        "operator" => Ok(Role::Operator),
        "vendor" => Ok(Role::Vendor),
        "reseller" => Ok(Role::Reseller),
        "customer" => Ok(Role::Customer),
        _ => Err("expected operator, vendor, reseller or customer".into()),
    }
}

fn main() -> ExitCode {
    // Logs (and, built with `otel`, trace export) for the whole run; flushed when it ends.
    let _telemetry = switchyard::telemetry::init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), StartupError> {
    match command {
        Command::Serve { database, auth, server, provisioning, demo: load_demo } => {
            let listener = TcpListener::bind(&server.bind)?;
            let settings = Settings { database, auth, server, provisioning };
            let mut app = Application::build(settings, Overrides::default()).await?;
            if load_demo && demo::seed_if_empty(app.domain()).await? {
                tracing::info!("loaded the demo data set; see README.md for its users");
            }
            app.start_workers();
            let workers = app.settings().provisioning.workers;
            tracing::info!(address = %listener.local_addr()?, workers, "serving GraphQL at /graphql, GraphiQL at /");
            let server = app.serve(listener)?;
            app.serve_until_signalled(server).await?;
            Ok(())
        }
        Command::Worker { database, provisioning } => {
            if provisioning.workers == 0 {
                return Err("--workers must be at least 1".into());
            }
            let settings = Settings { database, provisioning, ..Settings::from_environment()? };
            let domain = startup::build_domain(&settings, Overrides::default()).await?;
            let workers = switchyard::workers::start(domain, &settings.provisioning, Shutdown::new());
            tracing::info!(workers = settings.provisioning.workers, "provisioning workers running");
            let signal = switchyard::shutdown::signalled().await?;
            tracing::info!(signal, "shutting down: finishing the jobs in flight");
            workers.stop(settings.provisioning.shutdown_grace).await;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Bill { database, server, period } => {
            let settings = Settings { database, server, ..Settings::from_environment()? };
            let domain = startup::build_domain(&settings, Overrides::default()).await?;
            let summary = switchyard::domain::billing::run_billing(&domain, &Actor::system(), &period).await?;
            println!(
                "billed {}: {} subscriptions, {} new charges, {} invoices created or extended",
                summary.period, summary.subscriptions, summary.charges_created, summary.invoices_touched
            );
            Ok(())
        }
        Command::Reconcile { action: Reconcile::Import { database, vendor, period, file } } => {
            use switchyard::domain::reconciliation::{import, partner_center::PartnerCenter};
            let settings = Settings { database, ..Settings::from_environment()? };
            let domain = startup::build_domain(&settings, Overrides::default()).await?;
            let name =
                file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
            let vendor_id = switchyard::domain::ids::VendorId::new(vendor);
            let system = Actor::system();
            let outcome =
                import::import_statement(&domain, &system, vendor_id, &name, period.as_deref(), &PartnerCenter, &file);
            match outcome.await {
                Ok(outcome) if outcome.replayed => {
                    println!(
                        "already imported as import #{} ({} rows, {})",
                        outcome.import.id, outcome.import.row_count, outcome.import.period
                    );
                    Ok(())
                }
                Ok(outcome) => {
                    println!(
                        "imported {} rows of {name} as import #{} for {}",
                        outcome.import.row_count, outcome.import.id, outcome.import.period
                    );
                    Ok(())
                }
                Err(switchyard::domain::Error::Rejected { errors, total }) => {
                    for error in &errors {
                        let column = error.column.as_deref().map(|c| format!(", {c}")).unwrap_or_default();
                        eprintln!("row {}{column}: {}", error.row, error.message);
                    }
                    Err(format!(
                        "{name} was refused: {total} errors (the first {} listed); nothing was written",
                        errors.len()
                    )
                    .into())
                }
                Err(error) => Err(error.into()),
            }
        }
        Command::Migrate { database } => {
            let settings = Settings { database, ..Settings::from_environment()? };
            startup::build_domain(&settings, Overrides::default()).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Seed { database, demo: load_demo } => {
            if !load_demo {
                return Err("nothing to seed: pass --demo".into());
            }
            let settings = Settings { database, ..Settings::from_environment()? };
            let domain = startup::build_domain(&settings, Overrides::default()).await?;
            if demo::seed_if_empty(&domain).await? {
                println!("demo data loaded");
            } else {
                println!("the database already has data; nothing loaded");
            }
            Ok(())
        }
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Token { auth, database, role, org, ttl } => {
            if role != Role::Operator && org.is_none() {
                return Err("--org is required for this role".into());
            }
            let keys = switchyard::auth::AuthKeys::from_config(&switchyard::auth::with_secret(&auth, &database)?)?;
            let actor = Actor::from_role(None, role, if role == Role::Operator { None } else { org })?;
            println!("{}", keys.issue(&actor, ttl)?);
            Ok(())
        }
    }
}
