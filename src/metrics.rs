//! Metrics in Prometheus's text format, served at `/metrics`: recorded through the `metrics`
//! facade wherever something happens (GraphQL operations and their errors, HTTP requests,
//! job outcomes, WebSocket connections and messages, billing runs) and rendered by
//! `metrics-exporter-prometheus`; gauges of state (jobs by kind and status, the database
//! pool) are read when scraped. One recorder per process, installed when the application is
//! built. Labels are bounded: routes are patterns, and operation names are the client's only
//! while they look like names and fewer than [`MAX_OPERATIONS`] were seen (`other` after).
//! Histogram samples are drained every [`UPKEEP_EVERY`] by a thread of their own, so memory
//! stays flat whether or not anyone scrapes.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Distinct operation names labelled before the rest count as `other`.
pub const MAX_OPERATIONS: usize = 500;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The name of the thread that drains the recorder's histogram samples.
pub const UPKEEP_THREAD: &str = "metrics-upkeep";

/// How often it does.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on the first call; None when another recorder was.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            // Series not touched for a day are dropped (a counter that comes back restarts,
            // which Prometheus's rate() reads as a reset): labels that stop occurring do not
            // stay forever.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM, Some(Duration::from_secs(86_400)))
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // The recorder keeps histogram samples until drained; rendering drains them, but a
            // process nobody scrapes would keep every one (about 35 bytes a request).
            let upkeep = handle.clone();
            let drain = move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            };
            if let Err(error) = std::thread::Builder::new().name(UPKEEP_THREAD.into()).spawn(drain) {
                tracing::warn!(%error, "no thread to drain the metrics' histograms: scrape /metrics to drain them");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("graphql_operations_total", "GraphQL operations by operation name and outcome");
    describe_histogram!("graphql_operation_duration_seconds", "GraphQL operation latency by operation name");
    describe_counter!("graphql_errors_total", "GraphQL errors by extensions.code");
    describe_counter!("http_requests_total", "HTTP requests by route, method and status");
    describe_histogram!("http_request_duration_seconds", "HTTP request latency by route");
    describe_gauge!("jobs", "Jobs in the queue by kind and status");
    describe_counter!("job_outcomes_total", "Job attempts recorded by kind and outcome");
    describe_gauge!("websocket_connections", "Open GraphQL WebSocket connections of this process");
    describe_counter!("websocket_messages_sent_total", "Messages sent on GraphQL WebSocket connections");
    describe_counter!(
        "websocket_payloads_rendered_total",
        "Live events rendered for WebSocket connections (once for every connection asking the same)"
    );
    describe_counter!("billing_runs_total", "Billing runs by outcome");
    describe_gauge!("db_pool_connections", "Database pool connections of this process by state");
}

/// `name` as a label: itself while it looks like an operation name and the set of names
/// seen is not full, else `other`; `anonymous` without one.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|n| !n.is_empty()) else { return "anonymous".to_owned() };
    let looks_like_a_name = name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !looks_like_a_name {
        return "other".to_owned();
    }
    let mut seen = SEEN.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(name) || (seen.len() < MAX_OPERATIONS && seen.insert(name.to_owned())) {
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Records one GraphQL operation: its outcome (`ok`, `error` with field errors, `rejected`
/// when refused before running), latency and its errors' codes.
pub fn graphql_operation(operation: &str, took: Duration, outcome: &'static str, codes: &[String]) {
    metrics::counter!("graphql_operations_total", "operation" => operation.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", "operation" => operation.to_owned())
        .record(took.as_secs_f64());
    for code in codes {
        metrics::counter!("graphql_errors_total", "code" => code.clone()).increment(1);
    }
}

/// Records one HTTP request.
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    metrics::counter!(
        "http_requests_total",
        "route" => route.to_owned(), "method" => method.to_owned(), "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned()).record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::{MAX_OPERATIONS, operation_label};

    /// In the library's own test process: the flood fills this process's set of names.
    #[test]
    fn operation_names_are_labels_only_while_they_are_names_and_few() {
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("Checkout_2")), "Checkout_2");
        assert_eq!(operation_label(Some("a b")), "other");
        assert_eq!(operation_label(Some(&"x".repeat(65))), "other");
        // Past the cap, new names are `other`; names seen before keep their label.
        for n in 0..MAX_OPERATIONS {
            operation_label(Some(&format!("Flood{n}")));
        }
        assert_eq!(operation_label(Some("NeverSeenBefore")), "other");
        assert_eq!(operation_label(Some("Checkout_2")), "Checkout_2");
    }

    /// The recorder keeps every histogram sample until they are drained, and a process nobody
    /// scrapes never drains them: 35 bytes a request, 48 -> 176 MiB over 3.8 million cached
    /// catalog requests (#13). A thread of the process drains them every few seconds.
    #[test]
    fn histogram_samples_are_drained_whether_or_not_anyone_scrapes() {
        assert!(super::handle().is_some(), "this test process installs the recorder");
        let threads = || -> Vec<String> {
            let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
            tasks
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        // A new thread names itself once it runs.
        let mut names = threads();
        for _ in 0..100 {
            if names.iter().any(|name| name == super::UPKEEP_THREAD) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            names = threads();
        }
        assert!(names.iter().any(|name| name == super::UPKEEP_THREAD), "no upkeep thread among {names:?}");
    }
}
