//! The bench harness (#13): every figure of the issue, each beside its target and, where
//! there is one, a reference measured in the same run: the same catalog page served from
//! memory by a minimal async-graphql + actix-web server (`reference`), and `pgbench`'s
//! TPC-B on the same PostgreSQL server.
//!
//! `cargo bench --bench switchyard` runs every part on SQLite and on PostgreSQL, then prints
//! the summary; `cargo bench --bench switchyard -- billing live` runs the parts named.
//! `BENCH_BACKEND=sqlite` or `postgres` runs one backend. The parts:
//! - `catalog`: a 50-offer page with a reseller's prices, with and without caches, beside the
//!   reference; then the catalog grown to each of `BENCH_OFFERS` offers (default
//!   `1000,20000,200000`; empty for none): the snapshot's load and memory, the page from the
//!   database and from the snapshot (items 1, 2);
//! - `orders`: placeOrder from 32 clients against a server in a process of its own, beside
//!   `pgbench`; then provisioning jobs per second (items 3, 4, 5);
//! - `billing`: 100,000 subscriptions billed, the first run and a steady month (item 6);
//! - `live`: 10,000 WebSocket dashboards following every event (item 7);
//! - `reconciliation`: a vendor statement of 1,000,000 rows imported and matched (#10).
//!
//! Each part runs on each backend in a process of its own (this binary started again with
//! `BENCH_PART` and `BENCH_BACKEND`), so one's memory, caches and threads do not weigh on the
//! next. Its lines are shown as they come; the lines it marks as figures
//! (`common::figure`) are kept for the summary instead.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

mod billing;
mod catalog;
mod common;
mod live;
mod orders;
mod reconciliation;
mod reference;

use std::io::BufRead;
use std::process::{Command, Stdio};

/// Set in a part's process: the part it runs.
const PART: &str = "BENCH_PART";

/// The parts, in the order they run.
const PARTS: [(&str, fn()); 5] = [
    ("catalog", catalog::main),
    ("orders", orders::main),
    ("billing", billing::main),
    ("live", live::main),
    ("reconciliation", reconciliation::main),
];

fn main() {
    if let Ok(database_url) = std::env::var(common::SERVE) {
        return common::serve(&database_url);
    }
    if let Ok(database_url) = std::env::var(catalog::SNAPSHOT) {
        return catalog::snapshot_memory(&database_url);
    }
    if let Ok(part) = std::env::var(PART) {
        let (_, run) = PARTS.iter().find(|(name, _)| *name == part).expect("BENCH_PART names a part");
        return run();
    }
    // `cargo bench` passes `--bench`; the other words name parts.
    let asked: Vec<String> = std::env::args().skip(1).filter(|word| !word.starts_with('-')).collect();
    for name in &asked {
        assert!(
            PARTS.iter().any(|(part, _)| part == name),
            "no part is named {name}: the parts are {}",
            PARTS.map(|(part, _)| part).join(", ")
        );
    }
    let backends: &[&str] = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("sqlite") => &["sqlite"],
        Ok("postgres") => &["postgres"],
        Ok("") | Err(_) => &["sqlite", "postgres"],
        Ok(other) => panic!("BENCH_BACKEND is sqlite or postgres, not {other}"),
    };
    let mut figures = Vec::new();
    let mut failed = Vec::new();
    for (part, _) in PARTS.iter().filter(|(part, _)| asked.is_empty() || asked.iter().any(|a| a == part)) {
        for backend in backends {
            println!("\n== {part} on {backend}");
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(PART, part)
                .env("BENCH_BACKEND", backend)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
                let line = line.unwrap();
                match Figure::parse(&line) {
                    Some(figure) => figures.push(figure),
                    None => println!("{line}"),
                }
            }
            let status = child.wait().unwrap();
            if !status.success() {
                println!("** {part} on {backend} failed ({status}): its figures are missing from the summary **");
                failed.push(format!("{part} on {backend}"));
            }
        }
    }
    summary(&figures, backends);
    assert!(failed.is_empty(), "these parts failed: {}", failed.join(", "));
}

/// A figure a part reported (`common::figure`).
struct Figure {
    item: String,
    backend: String,
    what: String,
    value: f64,
    unit: String,
    goal: String,
}

impl Figure {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix(common::FIGURE)?.strip_prefix('\t')?.split('\t');
        let mut next = || fields.next().map(str::to_owned);
        Some(Self {
            item: next()?,
            backend: next()?,
            what: next()?,
            value: next()?.parse().ok()?,
            unit: next()?,
            goal: next()?,
        })
    }

    /// Whether it meets its goal; `None` when it has none.
    fn met(&self) -> Option<bool> {
        let (operator, bound) = self.goal.split_at(self.goal.find(|c: char| c.is_ascii_digit() || c == '-')?);
        let bound: f64 = bound.parse().ok()?;
        match operator {
            ">=" => Some(self.value >= bound),
            "<" => Some(self.value < bound),
            "<=" => Some(self.value <= bound),
            _ => None,
        }
    }
}

/// A number as the summary shows it: whole when it is or is above 100, else with one or two
/// decimals.
fn number(value: f64) -> String {
    match value.abs() {
        _ if value.fract() == 0.0 => format!("{value:.0}"),
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

/// Every figure, a row per figure with a column per backend, beside its goal and whether
/// each backend met it; by item, then in the order the parts reported them. A backend that
/// was run and gave no figure for a row of an item it measured, or none at all, is named in
/// the last column, never taken as met.
fn summary(figures: &[Figure], backends: &[&str]) {
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for figure in figures {
        if !rows.contains(&(figure.item.as_str(), figure.what.as_str())) {
            rows.push((&figure.item, &figure.what));
        }
    }
    // Items 1 to 7 in order, then the other issues' marks.
    rows.sort_by_key(|(item, _)| item.parse::<u32>().unwrap_or(u32::MAX));
    println!("\n== Summary: each figure beside its target (release build, this machine)\n");
    println!("{:<5} {:<72} {:>16} {:>16}  {:<16} met", "item", "figure", "SQLite", "PostgreSQL", "target");
    for (item, what) in rows {
        let of = |backend: &str| {
            figures.iter().find(|f| f.item == item && f.what == what && f.backend.eq_ignore_ascii_case(backend))
        };
        let cell = |figure: Option<&Figure>| {
            figure.map_or_else(|| "—".to_owned(), |f| format!("{} {}", number(f.value), f.unit))
        };
        let (sqlite, postgres) = (of("sqlite"), of("postgresql"));
        let any = sqlite.or(postgres).expect("a row has a figure");
        let target = match any.goal.as_str() {
            "-" => String::new(),
            goal => format!("{goal} {}", any.unit),
        };
        let met = if target.is_empty() {
            String::new()
        } else {
            let verdicts: Vec<(&str, Option<bool>)> =
                [("SQLite", sqlite, "sqlite"), ("PostgreSQL", postgres, "postgres")]
                    .into_iter()
                    // A backend is missing from a row when it was run and measured this item
                    // (some items are one backend's: placeOrder's p99 is item 3 on SQLite, its
                    // ratio to pgbench item 4 on PostgreSQL), or gave no figure at all.
                    .filter(|(name, figure, asked)| {
                        figure.is_some()
                            || (backends.contains(asked)
                                && (figures.iter().any(|f| f.item == item && f.backend == *name)
                                    || !figures.iter().any(|f| f.backend == *name)))
                    })
                    .map(|(name, figure, _)| (name, figure.and_then(Figure::met)))
                    .collect();
            let missing: Vec<&str> = verdicts.iter().filter(|(_, v)| v.is_none()).map(|(name, _)| *name).collect();
            let yes: Vec<&str> = verdicts.iter().filter(|(_, v)| *v == Some(true)).map(|(name, _)| *name).collect();
            let no = verdicts.iter().filter(|(_, v)| *v == Some(false)).count();
            let verdict = match (yes.len(), no) {
                (0, 0) => "not measured".to_owned(),
                (_, 0) => "yes".to_owned(),
                (0, _) => "no".to_owned(),
                _ => format!("{} only", yes.join(", ")),
            };
            match missing.is_empty() {
                true => verdict,
                false => format!("{verdict}; no figure from {}", missing.join(", ")),
            }
        };
        println!("{item:<5} {what:<72} {:>16} {:>16}  {target:<16} {met}", cell(sqlite), cell(postgres));
    }
    for backend in backends {
        let name = if *backend == "sqlite" { "sqlite" } else { "postgresql" };
        if !figures.iter().any(|f| f.backend.eq_ignore_ascii_case(name)) {
            println!("\n*** no figure at all from {backend}: it was skipped or failed (see above) ***");
        }
    }
}
