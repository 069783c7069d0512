//! What every benchmark shares: a temporary SQLite file and a temporary PostgreSQL database
//! (on `BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; skipped
//! with a message when unreachable), each dropped afterwards.

use std::future::Future;

use sea_orm::ConnectionTrait;
use switchyard::db;

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
        Err(error) => println!("PostgreSQL skipped: {error}"),
    }
}
