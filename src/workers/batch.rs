//! A worker's batch of provisioning jobs (#13 item 5): the jobs one claim took, run side by
//! side with the writes shared — one write starts them all, and the outcomes of the calls
//! that end together are recorded in one write — so a batch of `n` jobs commits about three
//! times instead of `3n` (each commit waits for the disk, and on PostgreSQL for the
//! outbox's ordering lock).
//!
//! A job's handling is as alone: each job's vendor call keeps its own lease, a job past its
//! last attempt is DEAD without a call, a job without a subject FAILED, a check or call that
//! panics makes its job DEAD, a lost lease leaves the job to it. Where a shared write fails
//! (one job's subscription is gone, a deadlock, the database unreachable past its retries)
//! nothing of it is kept, and each job is handled alone as if claimed alone.
//!
//! What differs from jobs run one at a time: a write's events come jobs first, then the
//! orders' changes (each subscription's events in the same order); and an answer that
//! waits for the write under way is not renewed meanwhile — a write held up past the lease
//! (a row lock held that long) lets another worker take such a job over and call the
//! vendor again with the same request id, as a job alone whose own write is held up.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use entity::enums::JobKind;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};

use super::{abandon, call_vendor, panic_message, past_its_last_attempt, record_outcome, run_claimed, runnable};
use crate::domain::Domain;
use crate::domain::fulfilment::{complete_jobs, mark_all_started};
use crate::domain::jobs::{ClaimedJob, Outcome};

/// Runs the jobs of one claim (see the module docs); errors are logged per job.
pub(super) async fn run(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    claimed: &[ClaimedJob],
    claimed_at: Instant,
) {
    let mut started = Vec::with_capacity(claimed.len());
    for job in claimed {
        if job.job.kind != JobKind::Provisioning {
            logged(worker, job, run_claimed(domain, worker, client, timeout, job, claimed_at).await);
            continue;
        }
        // As a job alone: its checks' panics make it DEAD, not the batch.
        let checked = AssertUnwindSafe(async {
            if past_its_last_attempt(domain, worker, job).await? {
                return Ok(None);
            }
            runnable(domain, job).await
        })
        .catch_unwind()
        .await;
        match checked {
            Ok(Ok(Some(subject))) => started.push((job, subject)),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => logged(worker, job, Err(error)),
            Err(panic) => dead_of_panic(domain, worker, job, panic_message(&*panic)).await,
        }
    }
    if started.is_empty() {
        return;
    }
    let jobs: Vec<&ClaimedJob> = started.iter().map(|(job, _)| *job).collect();
    let together = AssertUnwindSafe(mark_all_started(domain, &jobs)).catch_unwind().await;
    let why = match together {
        Ok(Ok(held)) => {
            let mut held = held.into_iter();
            started.retain(|(job, _)| {
                let kept = held.next().unwrap_or(false);
                if !kept {
                    tracing::warn!(
                        job = job.job.id,
                        worker,
                        "lease lost before the job started: another worker took it over"
                    );
                }
                kept
            });
            None
        }
        Ok(Err(error)) => Some(error.to_string()),
        Err(panic) => Some(panic_message(&*panic)),
    };
    if let Some(why) = why {
        tracing::warn!(worker, jobs = jobs.len(), %why, "a batch's start could not be recorded together: each job runs alone");
        let alone = jobs.iter().map(|job| async move {
            logged(worker, job, run_claimed(domain, worker, client, timeout, job, claimed_at).await);
        });
        futures_util::future::join_all(alone).await;
        return;
    }
    let snapshot = match domain.catalog.snapshot(&domain.db).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            // As a job alone whose catalog could not be read: left to its lease.
            tracing::error!(worker, %error, "provisioning worker error: a started batch is left to its leases");
            return;
        }
    };
    let snapshot = &snapshot;
    let mut calls: FuturesUnordered<_> = started
        .iter()
        .map(|(job, subject)| async move {
            let call = call_vendor(domain, worker, client, timeout, job, subject, snapshot, claimed_at);
            (*job, AssertUnwindSafe(call).catch_unwind().await)
        })
        .collect();
    // Answers are recorded one write at a time; those that arrive while a write is under way
    // wait for the next, and the calls still running go on meanwhile (their leases renewed
    // whatever a write waits for).
    let mut recording = FuturesUnordered::new();
    let mut waiting = Vec::new();
    loop {
        tokio::select! {
            Some(ended) = calls.next(), if !calls.is_empty() => {
                waiting.push(ended);
                // With the calls that ended at the same time.
                while let Some(Some(more)) = calls.next().now_or_never() {
                    waiting.push(more);
                }
            }
            Some(()) = recording.next(), if !recording.is_empty() => {}
            else => break,
        }
        if recording.is_empty() && !waiting.is_empty() {
            recording.push(record_ended(domain, worker, std::mem::take(&mut waiting)));
        }
    }
}

/// How a call ended: the vendor's answer (`None`: the lease was lost and nothing is to be
/// recorded), or the panic that ended it.
type Ended = std::thread::Result<Option<Outcome>>;

/// Records the answers of calls that ended together in one write (if that write fails,
/// each alone, as a job run alone records its answer); a call that panicked makes its job
/// DEAD.
async fn record_ended(domain: &Domain, worker: &str, ended: Vec<(&ClaimedJob, Ended)>) {
    let mut answered = Vec::with_capacity(ended.len());
    for (job, call) in ended {
        match call {
            Ok(Some(outcome)) => answered.push((job, outcome)),
            Ok(None) => {}
            Err(panic) => dead_of_panic(domain, worker, job, panic_message(&*panic)).await,
        }
    }
    if answered.len() > 1 {
        let what = format!("recording the outcomes of {} jobs by {worker}", answered.len());
        let together =
            AssertUnwindSafe(super::while_unavailable(&what, || complete_jobs(domain, &answered))).catch_unwind().await;
        match together {
            Ok(Ok(kept)) => {
                for ((job, outcome), kept) in answered.iter().zip(kept) {
                    if kept {
                        super::count_outcome(outcome);
                    } else {
                        tracing::warn!(job = job.job.id, worker, "lease lost: another worker took the job over");
                    }
                }
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(worker, %error, "a batch's outcomes could not be recorded together: each alone");
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::warn!(worker, %message, "recording a batch's outcomes panicked: each alone");
            }
        }
    }
    for (job, outcome) in answered {
        match AssertUnwindSafe(record_outcome(domain, worker, job, outcome)).catch_unwind().await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::warn!(job = job.job.id, worker, "lease lost: another worker took the job over"),
            Ok(Err(error)) => logged(worker, job, Err(error)),
            Err(panic) => dead_of_panic(domain, worker, job, panic_message(&*panic)).await,
        }
    }
}

/// A job whose run panicked is DEAD with the panic's message (as a job run alone).
async fn dead_of_panic(domain: &Domain, worker: &str, job: &ClaimedJob, message: String) {
    tracing::error!(job = job.job.id, worker, %message, "a job's run panicked; it is DEAD");
    let reason = format!("the job could not be handled: {message}");
    logged(worker, job, abandon(domain, worker, job, reason).await);
}

/// Logs a job's error as the worker's loop logs a job run alone.
fn logged(worker: &str, job: &ClaimedJob, result: crate::domain::Result<()>) {
    if let Err(error) = result {
        tracing::error!(worker, job = job.job.id, %error, "provisioning worker error");
    }
}
