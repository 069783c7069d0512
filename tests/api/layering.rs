//! The architecture's invariants, checked on the source text (in the spirit of
//! rust-analyzer's `tidy`): a change that breaks the layering fails here even when every
//! behaviour test stays green.
//!
//! - `domain/` and `entity/` know neither actix nor async-graphql; only `http/` (and the
//!   start-up code that serves it) knows actix;
//! - `graphql/` never builds SeaORM queries: it calls the domain;
//! - `migration/` never imports `entity` (migrations are frozen history);
//! - only `domain::write` begins write transactions, records audit rows and publishes events;
//! - only `http::caller` reads the `Authorization` header;
//! - no source file under `src/` passes 600 lines, and every module starts with its `//!` doc;
//! - the modules of `domain/` import each other without a cycle (so the lifecycle, the job
//!   queue and fulfilment stay layered: orders and subscriptions enqueue jobs, fulfilment
//!   reacts to them, and nothing below imports what is above).
//!
//! Each rule is also run against a small forbidden sample, so a rule that could never fail
//! fails the test itself.

use std::path::{Path, PathBuf};

/// Most lines in one source file under `src/`.
const MAX_LINES: usize = 600;

/// One source file: its path relative to the workspace root and its code lines (comments
/// and string-free lines alike; `//` comment lines are dropped so prose may name anything).
struct Source {
    path: String,
    text: String,
}

impl Source {
    fn code_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text.lines().enumerate().map(|(n, l)| (n + 1, l)).filter(|(_, l)| !l.trim_start().starts_with("//"))
    }

    fn under(&self, prefix: &str) -> bool {
        self.path.starts_with(prefix)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &str) -> Vec<Source> {
    let mut out = Vec::new();
    collect(&root(), &root().join(dir), &mut out);
    assert!(!out.is_empty(), "no Rust sources under {dir}: the layering test would pass vacuously");
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read a source directory").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            out.push(Source { path: relative, text });
        }
    }
}

/// Lines of `source` that mention any of `needles` in code, as `path:line: text`.
fn mentions(source: &Source, needles: &[&str]) -> Vec<String> {
    source
        .code_lines()
        .filter(|(_, line)| needles.iter().any(|needle| line.contains(needle)))
        .map(|(n, line)| format!("{}:{n}: {}", source.path, line.trim()))
        .collect()
}

/// The violations of every rule in `files` (each rule says which files it covers).
fn violations(files: &[Source]) -> Vec<String> {
    let mut found = Vec::new();
    for source in files {
        let wire = ["actix_web", "actix_ws", "async_graphql"];
        if source.under("src/domain/") || source.under("entity/") {
            found.extend(mentions(source, &wire).into_iter().map(|v| format!("domain/entity knows the wire: {v}")));
        }
        let serves_http = source.under("src/http/") || source.path == "src/startup.rs" || source.path == "src/main.rs";
        if source.under("src/") && !serves_http {
            found.extend(
                mentions(source, &["actix_web", "actix_ws"])
                    .into_iter()
                    .map(|v| format!("only http/ knows actix: {v}")),
            );
        }
        if source.under("src/graphql/") {
            found.extend(mentions(source, &["sea_orm"]).into_iter().map(|v| format!("graphql/ builds queries: {v}")));
        }
        let upward: &[&str] = if source.under("src/domain/") {
            &["crate::graphql", "crate::http", "crate::state", "crate::startup", "crate::workers", "crate::vendors"]
        } else if source.under("src/graphql/") {
            &["crate::http", "crate::state", "crate::startup", "crate::workers"]
        } else if source.under("src/vendors/") || source.under("src/workers/") {
            &["crate::graphql", "crate::http", "crate::state"]
        } else {
            &[]
        };
        found.extend(mentions(source, upward).into_iter().map(|v| format!("an import against the layers: {v}")));
        if source.under("migration/") {
            found.extend(
                mentions(source, &["use entity", "entity::"])
                    .into_iter()
                    .map(|v| format!("migration/ imports entity: {v}")),
            );
        }
        if source.under("src/") && source.path != "src/domain/write.rs" {
            let unit_of_work = [
                "begin_with_options",
                ".begin()",
                "TransactionTrait::begin(",
                ".transaction(",
                "audit::record(",
                "events.record(",
                "after_commit(",
                ".deliver(",
                ".insert(&domain.db)",
                ".update(&domain.db)",
                ".exec(&domain.db)",
                ".exec_without_returning(&domain.db)",
                ".exec_with_returning(&domain.db)",
                "execute_unprepared(",
                "execute_raw(",
                "domain.db.query_one_raw(",
                "domain.db.query_all_raw(",
            ];
            let own =
                ["src/domain/events.rs", "src/domain/outbox.rs", "src/domain/audit.rs"].contains(&source.path.as_str());
            // The one exception: claiming a job is a single atomic `UPDATE … RETURNING` on
            // the pool, bookkeeping with no audit row and no event (`jobs::claim_jobs_of`).
            let claim =
                |v: &String| source.path == "src/domain/jobs.rs" && v.contains("domain.db.query_all_raw(statement)");
            if !own {
                found.extend(
                    mentions(source, &unit_of_work)
                        .into_iter()
                        .filter(|v| !claim(v))
                        .map(|v| format!("a write outside domain::write: {v}")),
                );
            }
        }
        if source.under("src/") && source.path != "src/http/caller.rs" {
            let lower = Source { path: source.path.clone(), text: source.text.to_lowercase() };
            found.extend(
                mentions(&lower, &["header::authorization", "\"authorization\""])
                    .into_iter()
                    .map(|v| format!("credentials read outside http::caller: {v}")),
            );
        }
        // Only system bookkeeping (workers, the scheduler, billing runs, login throttling's
        // counts, an API key's last use) may commit without an audit row; a write on a caller's
        // behalf names its action.
        let bookkeepers = [
            "src/domain/write.rs",
            "src/domain/jobs.rs",
            "src/domain/fulfilment.rs",
            "src/domain/subscriptions.rs",
            "src/domain/billing/mod.rs",
            "src/domain/billing/gather.rs",
            "src/domain/outbox.rs",
            "src/domain/logins.rs",
            "src/domain/api_keys.rs",
            "src/domain/webhooks/deliveries.rs",
        ];
        if source.under("src/") && !bookkeepers.contains(&source.path.as_str()) {
            found.extend(
                mentions(source, &["Audit::Bookkeeping"])
                    .into_iter()
                    .map(|v| format!("an unaudited write outside system bookkeeping: {v}")),
            );
        }
        if source.under("src/") {
            let lines = source.text.lines().count();
            if lines > MAX_LINES {
                found
                    .push(format!("{}: {lines} lines (at most {MAX_LINES}); split it along its concerns", source.path));
            }
        }
        if (source.under("src/") || source.under("entity/"))
            && !source.text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        {
            found.push(format!("{}: the module has no //! doc saying what it owns", source.path));
        }
    }
    found
}

/// The top-level `domain` module a file belongs to (`billing` for `src/domain/billing/plan.rs`).
fn domain_module(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/domain/")?;
    let top = rest.split('/').next()?.trim_end_matches(".rs");
    (top != "mod").then_some(top)
}

/// The `domain` modules each file imports: `super::x` (from a file whose parent module is
/// `domain`) and `crate::domain::x`, including `{a, b::{c}}` groups over several lines.
fn domain_imports(source: &Source) -> Vec<String> {
    let depth = source.path.matches('/').count();
    let parent_is_domain = depth == 2 || (depth == 3 && source.path.ends_with("/mod.rs"));
    let prefixes: &[&str] = if parent_is_domain { &["crate::domain::", "super::"] } else { &["crate::domain::"] };
    let code: String = source.code_lines().map(|(_, line)| line).collect::<Vec<_>>().join(" ");
    let first_segment =
        |item: &str| -> String { item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut found = Vec::new();
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let Some(group) = rest.strip_prefix('{') else {
                found.push(first_segment(rest));
                continue;
            };
            // The balanced group, split at its top-level commas.
            let (mut level, mut item) = (0_usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(first_segment(&item));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// A cycle among the `domain` modules, if there is one, as `a -> b -> a`.
fn domain_cycle(files: &[Source]) -> Option<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let modules: BTreeSet<&str> = files.iter().filter_map(|s| domain_module(&s.path)).collect();
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for source in files {
        let Some(from) = domain_module(&source.path) else { continue };
        let targets = domain_imports(source).into_iter().filter(|to| to != from && modules.contains(to.as_str()));
        edges.entry(from).or_default().extend(targets);
    }
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<&'a str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node);
            return Some(cycle.join(" -> "));
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|start| visit(start, &edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_domain_modules_import_each_other_without_a_cycle() {
    let files = sources("src/domain");
    if let Some(cycle) = domain_cycle(&files) {
        panic!("the domain modules import each other in a circle: {cycle}");
    }
    let sample = |path: &str, text: &str| Source { path: path.into(), text: text.into() };
    let circle = [
        sample("src/domain/orders.rs", "//! Orders.\nuse super::{jobs, lifecycle};\n"),
        sample("src/domain/jobs.rs", "//! Jobs.\nuse crate::domain::orders::Quote;\n"),
        sample("src/domain/lifecycle.rs", "//! Lifecycle.\n"),
    ];
    assert_eq!(domain_cycle(&circle).as_deref(), Some("jobs -> orders -> jobs"), "a planted cycle is found");
    let hidden = [
        sample(
            "src/domain/billing/mod.rs",
            "//! Billing.\nuse super::{\n    actor::Actor,\n    customers::{self, get},\n};\n",
        ),
        sample("src/domain/customers.rs", "//! Customers.\nuse super::billing;\n"),
    ];
    assert_eq!(
        domain_cycle(&hidden).as_deref(),
        Some("billing -> customers -> billing"),
        "a cycle through a folder module's multi-line, nested group is found"
    );
}

#[test]
fn the_layers_depend_one_way_and_every_module_says_what_it_owns() {
    let mut files = sources("src");
    files.extend(sources("entity/src"));
    files.extend(sources("migration/src"));
    let found = violations(&files);
    assert!(found.is_empty(), "architecture invariants broken:\n{}", found.join("\n"));
}

#[test]
fn each_layering_rule_catches_a_forbidden_sample() {
    let sample = |path: &str, text: &str| Source { path: path.into(), text: text.into() };
    let cases = [
        sample("src/domain/orders.rs", "//! Orders.\nuse async_graphql::Object;\n"),
        sample("entity/src/order.rs", "//! Orders.\nuse actix_web::web;\n"),
        sample("src/graphql/query/orders.rs", "//! Orders.\nuse actix_web::HttpRequest;\n"),
        sample("src/graphql/loaders.rs", "//! Loaders.\nuse sea_orm::EntityTrait;\n"),
        sample("migration/src/m1.rs", "use entity::order;\n"),
        sample("src/domain/orders.rs", "//! Orders.\nlet txn = domain.db.begin().await?;\n"),
        sample(
            "src/domain/orders.rs",
            "//! Orders.\naudit::record(&txn, actor, \"x\", \"y\", None, json, now).await?;\n",
        ),
        sample("src/domain/orders.rs", "//! Orders.\ndomain.events.after_commit(events);\n"),
        sample("src/http/invoices.rs", "//! Exports.\nrequest.headers().get(header::AUTHORIZATION);\n"),
        sample("src/http/invoices.rs", "//! Exports.\nrequest.headers().get(\"Authorization\");\n"),
        sample("src/domain/orders.rs", "//! Orders.\nuse crate::graphql::RequestContext;\n"),
        sample("src/graphql/mod.rs", "//! GraphQL.\nuse crate::http::caller::Caller;\n"),
        sample("src/domain/orders.rs", "//! Orders.\nlet txn = TransactionTrait::begin(&domain.db).await?;\n"),
        sample(
            "src/domain/orders.rs",
            "//! Orders.\ndomain.db.transaction(|txn| Box::pin(async move { Ok(()) })).await?;\n",
        ),
        sample("src/domain/orders.rs", "//! Orders.\ndomain.events.deliver(event);\n"),
        sample("src/demo.rs", "//! Demo.\nuser.insert(&domain.db).await?;\n"),
        sample("src/domain/orders.rs", "//! Orders.\ndomain.db.execute_unprepared(\"DELETE FROM orders\").await?;\n"),
        sample("src/domain/orders.rs", "//! Orders.\nlet row = domain.db.query_one_raw(statement).await?;\n"),
        sample("src/domain/orders.rs", "//! Orders.\nw.commit(Audit::Bookkeeping(\"no row\")).await?;\n"),
        sample("src/domain/orders.rs", &format!("//! Orders.\n{}", "let x = 1;\n".repeat(MAX_LINES))),
        sample("src/domain/orders.rs", "use std::sync::Arc;\n"),
    ];
    for case in cases {
        assert_eq!(violations(std::slice::from_ref(&case)).len(), 1, "not caught exactly once: {}", case.text);
    }
    let allowed = sample("src/domain/orders.rs", "//! Orders: nothing here knows async_graphql.\nuse sea_orm::Set;\n");
    assert!(violations(&[allowed]).is_empty(), "a comment or a domain query is not a violation");
}
