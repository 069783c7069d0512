//! The background loops of a process: provisioning workers (claim due jobs, run them
//! through the vendor's connector, record the outcome) and the renewal scheduler, which
//! renews or expires subscriptions at term end.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::ProvisioningConfig;
use crate::domain::fulfilment::{complete_job, mark_started};
use crate::domain::jobs::{self, ClaimedJob, Outcome, ProvisioningSubject, claim_next_job};
use crate::domain::{Domain, subscriptions};
use crate::vendors::connectors::{VendorRequest, connector_for, execute};
use entity::enums::JobKind;

/// Running workers and the scheduler; aborted when dropped.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Starts `config.workers` workers and the renewal scheduler on the current runtime.
pub fn start(domain: Arc<Domain>, config: &ProvisioningConfig) -> Workers {
    let client = reqwest::Client::new();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "switchyard".into());
    let mut handles = Vec::new();
    for index in 0..config.workers {
        let name = format!("{host}:{}:{index}", std::process::id());
        handles.push(tokio::spawn(run_worker(Arc::clone(&domain), name, client.clone(), config.clone())));
    }
    if config.workers > 0 {
        handles.push(tokio::spawn(run_scheduler(Arc::clone(&domain), config.renewal_interval)));
    }
    Workers { handles }
}

/// One worker's loop; it never returns.
pub async fn run_worker(domain: Arc<Domain>, name: String, client: reqwest::Client, config: ProvisioningConfig) {
    loop {
        match run_one(&domain, &name, &client, config.vendor_timeout).await {
            Ok(true) => continue,
            Ok(false) => {
                let wakeup = domain.job_wakeup.notified();
                tokio::select! {
                    () = wakeup => {}
                    () = tokio::time::sleep(config.worker_poll) => {}
                }
            }
            Err(error) => {
                tracing::error!(worker = %name, %error, "provisioning worker error");
                tokio::time::sleep(config.worker_poll).await;
            }
        }
    }
}

/// Claims and runs one due job; `false` when none was due.
pub async fn run_one(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
) -> crate::domain::Result<bool> {
    let Some(claimed) = claim_next_job(domain, worker).await? else { return Ok(false) };
    match claimed.job.kind {
        JobKind::Provisioning => provision(domain, worker, client, timeout, &claimed).await?,
    }
    Ok(true)
}

/// Runs a claimed provisioning job through its vendor's connector and records the outcome.
async fn provision(
    domain: &Domain,
    worker: &str,
    client: &reqwest::Client,
    timeout: Duration,
    claimed: &ClaimedJob,
) -> crate::domain::Result<()> {
    let subject = match ProvisioningSubject::of(&claimed.job) {
        Ok(subject) => subject,
        Err(error) => {
            tracing::error!(job = claimed.job.id, %error, "a provisioning job without a subject cannot run");
            let reason = "the job names no subscription, vendor or action to provision".to_owned();
            jobs::fail_unrunnable(domain, claimed, reason).await?;
            return Ok(());
        }
    };
    mark_started(domain, claimed).await?;
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    let outcome = match snapshot.vendors.get(&subject.vendor_id) {
        Some(vendor) => {
            let connector = connector_for(vendor, client, timeout);
            execute(connector.as_ref(), &VendorRequest::for_job(&claimed.job, &subject)).await
        }
        None => Outcome::Permanent { error: "the vendor no longer exists".into() },
    };
    if let Outcome::Transient { error, .. } | Outcome::Permanent { error } = &outcome {
        tracing::warn!(job = claimed.job.id, attempt = claimed.job.attempts, %error, "provisioning attempt failed");
    }
    if !complete_job(domain, claimed, outcome).await? {
        tracing::warn!(job = claimed.job.id, worker, "lease lost: another worker took the job over");
    }
    Ok(())
}

/// Renews or expires due subscriptions every `interval`.
pub async fn run_scheduler(domain: Arc<Domain>, interval: Duration) {
    loop {
        match subscriptions::renew_due(&domain).await {
            Ok((0, 0)) => {}
            Ok((renewed, expired)) => tracing::info!(renewed, expired, "term ends processed"),
            Err(error) => tracing::error!(%error, "renewal scheduler error"),
        }
        tokio::time::sleep(interval).await;
    }
}
