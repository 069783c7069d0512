//! The background loops of a process: provisioning workers (claim due jobs, run them
//! through the vendor's connector while renewing the lease, record the outcome) and the
//! renewal scheduler, which renews or expires subscriptions at term end.
//!
//! No job can take a worker down: a job whose run panics is DEAD with the panic's message,
//! and the loop goes on; so does a loop whose own step panicked.
//!
//! On shutdown the loops stop claiming; [`Workers::stop`] waits for the jobs in flight for
//! the grace period, then stops the rest and releases their jobs to the queue.

mod batch;
mod webhooks;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use tokio::task::JoinHandle;

use crate::config::ProvisioningConfig;
use crate::domain::fulfilment::{complete_job, mark_started};
use crate::domain::jobs::{self, ClaimedJob, Outcome, ProvisioningSubject};
use crate::domain::{Domain, subscriptions};
use crate::shutdown::Shutdown;
use crate::vendors::connectors::{VendorRequest, connector_for, execute};
use entity::enums::JobKind;

/// Running workers and the scheduler; aborted when dropped.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    /// The workers' names (each job they claim records it).
    names: Vec<String>,
    domain: Arc<Domain>,
    shutdown: Shutdown,
}

impl Workers {
    /// Stops the loops: none claims another job; the jobs in flight get `grace` to finish,
    /// then their loops are stopped and their jobs released to the queue. Returns how many
    /// jobs were released.
    pub async fn stop(mut self, grace: Duration) -> u64 {
        self.shutdown.trigger();
        let deadline = tokio::time::Instant::now() + grace;
        let mut cut_short = false;
        for mut handle in std::mem::take(&mut self.handles) {
            if tokio::time::timeout_at(deadline, &mut handle).await.is_err() {
                handle.abort();
                let _ = handle.await;
                cut_short = true;
            }
        }
        if !cut_short {
            return 0;
        }
        // Through the same blip as any write at shutdown (see `record_outcome`).
        match while_unavailable("releasing the jobs in flight", || jobs::release_held_by(&self.domain, &self.names))
            .await
        {
            Ok(released) => {
                tracing::warn!(released, "jobs still running at the end of the grace period were released");
                released
            }
            Err(error) => {
                tracing::error!(%error, "the jobs in flight could not be released; their leases will expire");
                0
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// The HTTP client of vendor calls: TLS by rustls, trusting the public web roots and the
/// certificates of `SWITCHYARD_VENDOR_CA_FILE`, if set.
pub fn http_client(config: &ProvisioningConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(path) = &config.vendor_ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("SWITCHYARD_VENDOR_CA_FILE {}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("SWITCHYARD_VENDOR_CA_FILE {}: {e}", path.display()))?;
        if roots.is_empty() {
            return Err(format!("SWITCHYARD_VENDOR_CA_FILE {} holds no certificate", path.display()));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().map_err(|e| format!("cannot build the vendors' HTTP client: {e}"))
}

/// Starts `config.workers` workers and the renewal scheduler on the current runtime; they
/// stop claiming once `shutdown` is given.
pub fn start(domain: Arc<Domain>, config: &ProvisioningConfig, shutdown: Shutdown) -> Workers {
    // The settings were validated at start-up, which built this client once already.
    let client = http_client(config).unwrap_or_else(|error| {
        tracing::error!(%error, "vendor calls use the public roots only");
        reqwest::Client::new()
    });
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "switchyard".into());
    // Unique to this process even when hosts share a name and a pid: shutdown releases the
    // jobs held under these names, never another process's.
    let instance = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut handles = Vec::new();
    let mut names = Vec::new();
    let webhook_workers = if config.workers == 0 { 0 } else { config.webhook_workers };
    for index in 0..config.workers + webhook_workers {
        let name = format!("{host}:{}:{instance}:{index}", std::process::id());
        names.push(name.clone());
        let kinds = if index < config.workers { vec![JobKind::Provisioning] } else { vec![JobKind::WebhookDelivery] };
        let worker = run_worker(Arc::clone(&domain), name, client.clone(), config.clone(), shutdown.clone(), kinds);
        handles.push(tokio::spawn(worker));
    }
    if config.workers > 0 {
        let scheduler =
            run_scheduler(Arc::clone(&domain), config.renewal_interval, config.event_retention, shutdown.clone());
        handles.push(tokio::spawn(scheduler));
    }
    Workers { handles, names, domain, shutdown }
}

/// One worker's loop, until `shutdown` is given (a job it runs then is finished first).
pub async fn run_worker(
    domain: Arc<Domain>,
    name: String,
    client: reqwest::Client,
    config: ProvisioningConfig,
    shutdown: Shutdown,
    kinds: Vec<JobKind>,
) {
    while !shutdown.is_triggered() {
        // Batches of provisioning jobs only (a webhook delivery runs alone).
        let batch = if kinds == [JobKind::Provisioning] { config.job_batch } else { 1 };
        let step = AssertUnwindSafe(run_batch_of(&domain, &name, &client, config.vendor_timeout, &kinds, batch))
            .catch_unwind()
            .await;
        let step = step.unwrap_or_else(|panic| {
            Err(crate::domain::Error::internal(format!("the worker's step panicked: {}", panic_message(&*panic))))
        });
        match step {
            Ok(true) => continue,
            Ok(false) => {
                let wakeup = domain.job_wakeup.notified();
                tokio::select! {
                    () = wakeup => {}
                    () = tokio::time::sleep(config.worker_poll) => {}
                    () = shutdown.triggered() => {}
                }
            }
            Err(error) => {
                tracing::error!(worker = %name, %error, "provisioning worker error");
                tokio::select! {
                    () = tokio::time::sleep(config.worker_poll) => {}
                    () = shutdown.triggered() => {}
                }
            }
        }
    }
}

/// Claims and runs one due job; `false` when none was due. A job claimed again after its
/// last attempt's lease ran out is DEAD without another call; a job whose run panics is
/// DEAD with the panic's message.
pub async fn run_one(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
) -> crate::domain::Result<bool> {
    run_one_of(domain, worker, client, timeout, &jobs::all_kinds()).await
}

/// As [`run_one`], for a job of `kinds`.
pub async fn run_one_of(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    kinds: &[JobKind],
) -> crate::domain::Result<bool> {
    run_batch_of(domain, worker, client, timeout, kinds, 1).await
}

/// Claims up to `limit` due jobs of `kinds` at once and runs them side by side; `false` when
/// none was due. A batch of provisioning jobs starts in one write and records its outcomes
/// in as few as their calls allow (`batch`); a job alone, or a batch whose start could not
/// be recorded together, runs on its own ([`run_claimed`]). Each job ends as it would alone
/// (same rows and events per subscription; see `batch` for what differs: the order of a
/// write's events, and an answer's lease, not renewed while it waits for its write).
pub async fn run_batch_of(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    kinds: &[JobKind],
    limit: usize,
) -> crate::domain::Result<bool> {
    // Before the claim: the leases run from a moment no later than this.
    let claimed_at = Instant::now();
    let claimed = jobs::claim_jobs_of(domain, worker, kinds, limit).await?;
    match claimed.len() {
        0 => Ok(false),
        1 => {
            run_claimed(domain, worker, client, timeout, &claimed[0], claimed_at).await?;
            Ok(true)
        }
        _ => {
            batch::run(domain, worker, client, timeout, &claimed, claimed_at).await;
            Ok(true)
        }
    }
}

/// Runs one claimed job: a job claimed again after its last attempt's lease ran out is DEAD
/// without another call; a job whose run panics is DEAD with the panic's message.
async fn run_claimed(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    claimed: &ClaimedJob,
    claimed_at: Instant,
) -> crate::domain::Result<()> {
    if past_its_last_attempt(domain, worker, claimed).await? {
        return Ok(());
    }
    let run = async {
        match claimed.job.kind {
            JobKind::Provisioning => provision(domain, worker, client, timeout, claimed, claimed_at).await,
            JobKind::WebhookDelivery => webhooks::deliver(domain, worker, claimed).await,
        }
    };
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result?,
        Err(panic) => {
            let message = panic_message(&*panic);
            tracing::error!(job = claimed.job.id, worker, %message, "a job's run panicked; it is DEAD");
            abandon(domain, worker, claimed, format!("the job could not be handled: {message}")).await?;
        }
    }
    Ok(())
}

/// Whether `claimed` was claimed again after its last attempt's lease ran out, in which case
/// it is DEAD now, without another call.
async fn past_its_last_attempt(domain: &Domain, worker: &str, claimed: &ClaimedJob) -> crate::domain::Result<bool> {
    if claimed.job.attempts <= claimed.job.max_attempts {
        return Ok(false);
    }
    let reason = format!(
        "the lease of its last attempt ({} of {}) ran out without an outcome: its worker died or hung",
        claimed.job.max_attempts, claimed.job.max_attempts
    );
    abandon(domain, worker, claimed, reason).await?;
    Ok(true)
}

/// Settles a job DEAD with `reason` (a purchase's subscription FAILED with it).
/// If recording that on the subscription fails or panics, the job row alone is DEAD: it
/// must not stay RUNNING, claimed again after every lease.
async fn abandon(domain: &Domain, worker: &str, claimed: &ClaimedJob, reason: String) -> crate::domain::Result<()> {
    if claimed.job.kind == JobKind::WebhookDelivery {
        let kept = crate::domain::webhooks::deliveries::give_up(domain, claimed, reason.clone(), true).await;
        if !matches!(kept, Ok(true)) {
            jobs::bury(domain, claimed, reason).await?;
        }
        return Ok(());
    }
    let recorded = AssertUnwindSafe(complete_job(domain, claimed, Outcome::Abandoned { error: reason.clone() }))
        .catch_unwind()
        .await;
    let recorded_ok = match &recorded {
        Ok(Ok(kept)) => Some(*kept),
        _ => None,
    };
    let kept = match recorded {
        Ok(Ok(kept)) => kept,
        Ok(Err(error)) => jobs::bury(domain, claimed, format!("{reason}; recording it failed: {error}")).await?,
        Err(panic) => {
            let message = panic_message(&*panic);
            jobs::bury(domain, claimed, format!("{reason}; recording it panicked: {message}")).await?
        }
    };
    if !kept {
        tracing::warn!(job = claimed.job.id, worker, "lease lost: another worker took the job over");
    } else if !matches!(recorded_ok, Some(true)) {
        // Buried: the job row alone says DEAD. Its change, if any, is unconfirmed too (so it
        // is listed and can be settled), if that can be recorded on its own.
        let unconfirmed = AssertUnwindSafe(crate::domain::fulfilment::unconfirmed_alone(domain, &claimed.job, &reason))
            .catch_unwind()
            .await;
        if !matches!(unconfirmed, Ok(Ok(()))) {
            tracing::error!(job = claimed.job.id, "a buried job's change could not be marked unconfirmed");
        }
    }
    Ok(())
}

/// What a panic said, if it said it as text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Renews the job's lease every heartbeat while its vendor call runs (the lease held until
/// `held_until`, the call over by `call_ends_by`); returns when the lease is lost: another
/// worker took the job over after it expired, or renewals kept failing (the database
/// unreachable, or too slow: a renewal gets what is left of the lease) until the lease would run out before
/// the next beat and before the call's own end — given up then, so that no second worker
/// calls the vendor while this one still does.
async fn keep_lease(
    domain: &Domain,
    worker: &str,
    claimed: &ClaimedJob,
    mut held_until: Instant,
    call_ends_by: Instant,
) {
    let (lease, heartbeat) = (domain.jobs.lease, domain.jobs.heartbeat);
    loop {
        tokio::time::sleep(heartbeat).await;
        let asked = Instant::now();
        match renew(domain, worker, claimed, held_until).await {
            Some(true) => held_until = asked + lease,
            Some(false) => return,
            None => {}
        }
        if gives_up(held_until, call_ends_by, Instant::now(), heartbeat) {
            tracing::warn!(
                job = claimed.job.id,
                worker,
                "the lease cannot be renewed before it runs out: giving the job up"
            );
            return;
        }
    }
}

/// One renewal of a lease held until `held_until`, given what is left of it (a beat at
/// least): whether the lease is still the worker's, `None` when the renewal failed or could
/// not finish in time.
async fn renew(domain: &Domain, worker: &str, claimed: &ClaimedJob, held_until: Instant) -> Option<bool> {
    let left = held_until.saturating_duration_since(Instant::now()).max(domain.jobs.heartbeat);
    match tokio::time::timeout(left, jobs::renew_lease(domain, claimed)).await {
        Ok(Ok(kept)) => Some(kept),
        Ok(Err(error)) => {
            tracing::warn!(job = claimed.job.id, worker, %error, "renewing a lease failed");
            None
        }
        Err(_) => {
            tracing::warn!(job = claimed.job.id, worker, "renewing a lease took longer than the lease had left");
            None
        }
    }
}

/// Whether a worker whose lease holds until `held_until`, with a call over by `call_ends_by`,
/// gives the job up at `now`: when the lease ends before the call may and would end before
/// the next renewal, a `heartbeat` away.
fn gives_up(held_until: Instant, call_ends_by: Instant, now: Instant, heartbeat: Duration) -> bool {
    held_until < call_ends_by && now + heartbeat >= held_until
}

/// Runs a claimed provisioning job through its vendor's connector and records the outcome.
async fn provision(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    claimed: &ClaimedJob,
    claimed_at: Instant,
) -> crate::domain::Result<()> {
    let Some(subject) = runnable(domain, claimed).await? else { return Ok(()) };
    if !mark_started(domain, claimed).await? {
        tracing::warn!(job = claimed.job.id, worker, "lease lost before the job started: another worker took it over");
        return Ok(());
    }
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    let Some(outcome) = call_vendor(domain, worker, client, timeout, claimed, &subject, &snapshot, claimed_at).await
    else {
        return Ok(());
    };
    if !record_outcome(domain, worker, claimed, outcome).await? {
        tracing::warn!(job = claimed.job.id, worker, "lease lost: another worker took the job over");
    }
    Ok(())
}

/// The job's subject; a job without one is FAILED (it cannot run) and `None` returned.
async fn runnable(domain: &Domain, claimed: &ClaimedJob) -> crate::domain::Result<Option<ProvisioningSubject>> {
    match ProvisioningSubject::of(&claimed.job) {
        Ok(subject) => Ok(Some(subject)),
        Err(error) => {
            tracing::error!(job = claimed.job.id, %error, "a provisioning job without a subject cannot run");
            let reason = "the job names no subscription, vendor or action to provision".to_owned();
            jobs::fail_unrunnable(domain, claimed, reason).await?;
            Ok(None)
        }
    }
}

/// Calls the vendor for a started job while keeping its lease: the vendor's answer, or
/// `None` when the lease was lost or could not be made to last the call (the job is then
/// left to its lease; nothing is recorded).
#[allow(clippy::too_many_arguments)]
async fn call_vendor(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    claimed: &ClaimedJob,
    subject: &ProvisioningSubject,
    snapshot: &crate::domain::catalog_cache::CatalogSnapshot,
    claimed_at: Instant,
) -> Option<Outcome> {
    // The lease must hold until the call may end; when getting here took too much of it, it
    // is renewed first, and the call not made unless it was.
    let call_ends_by = Instant::now() + timeout;
    let mut held_until = claimed_at + domain.jobs.lease;
    if held_until < call_ends_by {
        let asked = Instant::now();
        if renew(domain, worker, claimed, held_until).await != Some(true) {
            tracing::warn!(
                job = claimed.job.id,
                worker,
                "too little lease left for the vendor call: the job is left to it"
            );
            return None;
        }
        held_until = asked + domain.jobs.lease;
    }
    let call = async {
        match snapshot.vendors.get(&subject.vendor_id) {
            Some(vendor) => {
                let connector = connector_for(vendor, client, timeout);
                let request = VendorRequest::for_job(&claimed.job, subject);
                // Every connector's call ends by the timeout (an HTTP client's own timeout
                // usually answers first), so the lease, longer, outlasts it.
                tokio::time::timeout(timeout, execute(connector.as_ref(), &request)).await.unwrap_or_else(|_| {
                    Outcome::Transient {
                        error: format!("the vendor did not answer within {timeout:?}"),
                        retry_after: None,
                    }
                })
            }
            None => Outcome::Abandoned { error: "the vendor no longer exists".into() },
        }
    };
    // The lease is renewed while the vendor call runs, so no other worker starts it.
    let outcome = tokio::select! {
        outcome = call => outcome,
        () = keep_lease(domain, worker, claimed, held_until, call_ends_by) => {
            tracing::warn!(job = claimed.job.id, worker, "lease lost during the vendor call: the call is abandoned, the job left to the lease");
            return None;
        }
    };
    if let Outcome::Transient { error, .. } | Outcome::Permanent { error } | Outcome::Abandoned { error } = &outcome {
        tracing::warn!(job = claimed.job.id, attempt = claimed.job.attempts, %error, "provisioning attempt failed");
    }
    Some(outcome)
}

/// Records the vendor's answer, trying again while the database is unavailable
/// (`while_unavailable`), so an answer is not left to the lease by a blip. At shutdown
/// that blip is certain for some: a pooled connection opened inside an HTTP handler lives on
/// that HTTP worker's runtime, and dies with it once the server has stopped; the pool opens
/// a fresh one for the next attempt. Recording is conditional on the lease, so an attempt
/// that committed but lost its answer is not applied twice.
async fn record_outcome(
    domain: &Domain,
    worker: &str,
    claimed: &ClaimedJob,
    outcome: Outcome,
) -> crate::domain::Result<bool> {
    let what = format!("recording the outcome of job {} by {worker}", claimed.job.id);
    let recorded = while_unavailable(&what, || complete_job(domain, claimed, outcome.clone())).await;
    if matches!(recorded, Ok(true)) {
        count_outcome(&outcome);
    }
    recorded
}

/// Counts a recorded provisioning outcome in the metrics.
fn count_outcome(outcome: &Outcome) {
    let name = match outcome {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Transient { .. } => "transient",
        Outcome::Permanent { .. } => "permanent",
        Outcome::Abandoned { .. } => "abandoned",
    };
    metrics::counter!("job_outcomes_total", "kind" => "provisioning", "outcome" => name).increment(1);
}

/// Runs `write` again while the database is unavailable: after an outage, 5 more tries
/// backing off from 200 ms to 1 s. A connection that died with the HTTP worker runtime it was
/// opened on (at shutdown: tokio says the runtime "is being shutdown") is no outage: the pool
/// discards it, and the write is tried again at once, up to 32 times (past any pool's size).
async fn while_unavailable<T, F: std::future::Future<Output = crate::domain::Result<T>>>(
    what: &str,
    mut write: impl FnMut() -> F,
) -> crate::domain::Result<T> {
    let (mut outages, mut dead) = (0_u32, 0_u32);
    loop {
        match write().await {
            Err(crate::domain::Error::Unavailable(error)) => {
                let shut_down_runtime = error.to_string().contains("being shutdown");
                if shut_down_runtime && dead < 32 {
                    dead += 1;
                    tracing::warn!(dead, %error, "{what}: a dead connection; trying again");
                } else if !shut_down_runtime && outages < 5 {
                    outages += 1;
                    tracing::warn!(outages, %error, "{what}: trying again");
                    tokio::time::sleep(Duration::from_millis((100_u64 << outages).min(1_000))).await;
                } else {
                    return Err(crate::domain::Error::Unavailable(error));
                }
            }
            other => return other,
        }
    }
}

/// Renews or expires due subscriptions, prunes the outbox of events older than `retention`
/// and drops login counts whose window ended, every `interval`, until `shutdown` is given.
pub async fn run_scheduler(domain: Arc<Domain>, interval: Duration, retention: Duration, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        match subscriptions::renew_due(&domain).await {
            Ok((0, 0)) => {}
            Ok((renewed, expired)) => tracing::info!(renewed, expired, "term ends processed"),
            Err(error) => tracing::error!(%error, "renewal scheduler error"),
        }
        match crate::domain::outbox::prune(&domain, retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "events past their retention left the outbox"),
            Err(error) => tracing::error!(%error, "outbox pruning error"),
        }
        if let Err(error) = crate::domain::logins::prune(&domain).await {
            tracing::error!(%error, "login count pruning error");
        }
        match crate::domain::webhooks::deliveries::prune(&domain, domain.webhooks.log_retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "webhook deliveries past their retention left the log"),
            Err(error) => tracing::error!(%error, "webhook log pruning error"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.triggered() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose renewals fail gives the job up before its lease runs out (so no
    /// second worker calls the vendor while it still does), and not before it must: never
    /// while the lease outlasts the call.
    #[test]
    fn a_lease_that_cannot_be_renewed_is_given_up_before_it_runs_out() {
        let (lease, beat) = (Duration::from_secs(60), Duration::from_secs(20));
        let claimed = Instant::now();
        let at = |seconds: u64| claimed + Duration::from_secs(seconds);
        // A call that may last past the lease; every renewal fails: held until the claim's
        // lease ends, given up at the second beat.
        let long_call = at(90);
        assert!(!gives_up(claimed + lease, long_call, at(20), beat));
        assert!(gives_up(claimed + lease, long_call, at(40), beat));
        // The first renewal succeeded: held 60 s from it, given up two failed beats later.
        let renewed = at(20) + lease;
        assert!(!gives_up(renewed, long_call, at(40), beat));
        assert!(gives_up(renewed, long_call, at(60), beat));
        // A lease of 12 s, a call of at most 10 s, a beat of 4 s: the lease outlasts the call,
        // so failed renewals never abandon it.
        let (short_lease, short_beat) = (Duration::from_secs(12), Duration::from_secs(4));
        for now in [4, 8, 11] {
            assert!(!gives_up(claimed + short_lease, at(10), at(now), short_beat));
        }
    }
}
