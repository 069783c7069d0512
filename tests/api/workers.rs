//! Workers under faults (issue #9, items 1 and 4): a vendor call slower than the lease is
//! made once, because its worker renews the lease; a lease that runs out counts as an
//! attempt and the last one ends DEAD without another call; a vendor's Retry-After is
//! capped, so no answer can panic a worker; a lease no longer than one vendor call is a
//! configuration the process refuses.

use std::time::Duration;

use switchyard::domain::jobs::claim_next_job;

use crate::helpers::{Fixture, spawn_app};
use crate::provisioning::{FakeVendor, Script, job, order_from_http_vendor};

#[tokio::test]
async fn a_vendor_call_slower_than_the_lease_is_made_once_while_its_worker_renews_the_lease() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // The vendor takes 1.5 s to answer; the lease is 60 s of the test's clock.
    let vendor = FakeVendor::start(Script::SlowFirst(Duration::from_millis(1500))).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    let domain = std::sync::Arc::clone(&app.domain);
    let first = tokio::spawn(async move {
        switchyard::workers::run_one(&domain, "slow-worker", &reqwest::Client::new(), Duration::from_secs(5)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While the call runs, the clock passes the lease's first end twice over.
    for _ in 0..3 {
        app.advance(chrono::Duration::seconds(45));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let second = claim_next_job(&app.domain, "second-worker").await.unwrap();
        assert!(second.is_none(), "another worker took a job whose call still runs: {second:?}");
    }
    assert!(first.await.unwrap().unwrap());
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
    assert_eq!(state["job"]["attempts"], 1, "{state}");
    assert_eq!(vendor.calls().values().copied().collect::<Vec<_>>(), [1], "one call");
}

#[tokio::test]
async fn a_job_whose_lease_runs_out_on_its_last_attempt_is_dead_without_another_call() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    // Four workers (the tests' maximum attempts) claim the job and die, one after another.
    for attempt in 1..=4 {
        let claimed = claim_next_job(&app.domain, &format!("doomed-{attempt}")).await.unwrap().unwrap();
        assert_eq!(claimed.job.attempts, attempt, "an expired lease claimed again counts as an attempt");
        app.advance(chrono::Duration::seconds(61));
    }
    assert_eq!(app.run_jobs().await, 1);
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "DEAD", "{state}");
    assert_eq!(state["job"]["attempts"], 5, "{state}");
    assert!(state["job"]["lastError"].as_str().unwrap().contains("lease of its last attempt"), "{state}");
    assert_eq!(state["subscription"]["status"], "FAILED", "{state}");
    assert!(vendor.calls().is_empty(), "no call after the last attempt");
    app.advance(chrono::Duration::minutes(10));
    assert_eq!(app.run_jobs().await, 0, "a DEAD job is not claimed again");
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_and_the_worker_goes_on() {
    use sea_orm::EntityTrait;
    use switchyard::domain::clock::Clock;

    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // 10^15 seconds is past the end of the calendar: it must not panic the worker.
    let vendor = FakeVendor::start(Script::FailFirst(1, 503, Some(1_000_000_000_000_000))).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    let before = app.clock.now();
    assert_eq!(app.run_jobs().await, 1);
    let row = entity::job::Entity::find().one(&app.domain.db).await.unwrap().unwrap();
    assert_eq!(row.status, entity::enums::JobStatus::Queued);
    assert_eq!(row.run_after, before + chrono::Duration::hours(1), "cut to SWITCHYARD_VENDOR_RETRY_AFTER_MAX");
    app.advance(chrono::Duration::hours(1));
    assert_eq!(app.run_jobs().await, 1, "the worker goes on");
    assert_eq!(job(&app, &subscription).await["job"]["status"], "SUCCEEDED");
}

#[tokio::test]
async fn a_lease_no_longer_than_the_vendor_timeout_is_refused_at_startup() {
    let mut settings = switchyard::startup::Settings::from_environment().unwrap();
    settings.database.database_url = Some("sqlite::memory:".into());
    settings.provisioning.job_lease = Duration::from_secs(5);
    settings.provisioning.vendor_timeout = Duration::from_secs(10);
    let refused = switchyard::startup::build_domain(&settings, Default::default()).await.err().unwrap().to_string();
    assert!(refused.contains("SWITCHYARD_JOB_LEASE") && refused.contains("SWITCHYARD_VENDOR_TIMEOUT"), "{refused}");
    settings.provisioning.job_lease = Duration::from_secs(11);
    assert!(switchyard::startup::build_domain(&settings, Default::default()).await.is_ok());
}

const QUANTITY: &str = "mutation($id: ID!, $q: Int!, $key: String!) {
  changeSubscriptionQuantity(id: $id, quantity: $q, idempotencyKey: $key) { subscription { quantity } } }";

/// A subscription bought from a vendor that answers at once, provisioned.
async fn provisioned() -> (crate::helpers::TestApp, Fixture, FakeVendor, String) {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let (_, subscription) = order_from_http_vendor(&app, &f, &vendor).await;
    assert_eq!(app.run_jobs().await, 1);
    (app, f, vendor, subscription)
}

/// Ids of the subscription's jobs, oldest first.
async fn job_ids(app: &crate::helpers::TestApp, subscription: &str) -> Vec<i64> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::job::Entity::find()
        .filter(entity::job::Column::SubscriptionId.eq(subscription.parse::<i64>().unwrap()))
        .order_by_asc(entity::job::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect()
}

#[tokio::test]
async fn jobs_of_one_subscription_run_one_at_a_time_in_the_order_they_were_made() {
    use switchyard::domain::fulfilment::complete_job;
    use switchyard::domain::jobs::Outcome;

    let (app, f, _vendor, subscription) = provisioned().await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_b));
    for (quantity, key) in [(5, "to-5"), (7, "to-7")] {
        app.data(&reseller, QUANTITY, serde_json::json!({"id": subscription, "q": quantity, "key": key})).await;
    }
    let ids = job_ids(&app, &subscription).await;
    let (to_five, to_seven) = (ids[1], ids[2]);
    // A worker takes the first change; no other worker may take the second meanwhile.
    let first = claim_next_job(&app.domain, "worker-a").await.unwrap().unwrap();
    assert_eq!(first.job.id, to_five);
    assert!(claim_next_job(&app.domain, "worker-b").await.unwrap().is_none(), "the second ran beside the first");
    // The first is busy at the vendor and goes back to the queue (due at once here): it
    // is still the one claimed next.
    let busy = Outcome::Transient { error: "busy".into(), retry_after: None };
    assert!(complete_job(&app.domain, &first, busy).await.unwrap());
    let again = claim_next_job(&app.domain, "worker-b").await.unwrap().unwrap();
    assert_eq!(again.job.id, to_five, "the later change overtook the earlier");
    assert!(complete_job(&app.domain, &again, Outcome::Succeeded { reference: None }).await.unwrap());
    let second = claim_next_job(&app.domain, "worker-a").await.unwrap().unwrap();
    assert_eq!(second.job.id, to_seven);
}

#[tokio::test]
async fn a_retried_quantity_change_sends_the_seats_the_subscription_has_now() {
    let (app, f, vendor, subscription) = provisioned().await;
    let id: i64 = subscription.parse().unwrap();
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_b));
    // The change to 5 seats is never confirmed (DEAD after every attempt); the change to 7
    // goes through. (A change the vendor refused is reverted and cannot be retried.)
    vendor.answer(id, Some(503));
    app.data(&reseller, QUANTITY, serde_json::json!({"id": subscription, "q": 5, "key": "to-5"})).await;
    assert_eq!(app.run_jobs().await, 4, "every attempt");
    vendor.answer(id, None);
    app.data(&reseller, QUANTITY, serde_json::json!({"id": subscription, "q": 7, "key": "to-7"})).await;
    assert_eq!(app.run_jobs().await, 1);
    // The operator retries the unconfirmed change: the vendor is told 7, under a new request id.
    let refused = job_ids(&app, &subscription).await[1];
    let retry = "mutation($id: ID!) { retryProvisioning(jobId: $id) { status requestId } }";
    app.data(&app.operator(), retry, serde_json::json!({"id": refused.to_string()})).await;
    assert_eq!(app.run_jobs().await, 1);
    let received = vendor.received();
    let (action, body) = received.last().unwrap();
    assert_eq!(action, "change_quantity");
    assert_eq!(body["payload"]["quantity"], 7, "{received:?}");
    // The purchase, the change to 5 (every attempt under one id), the change to 7, the retry.
    assert_eq!(vendor.calls().len(), 4, "the changed body went under a new request id: {:?}", vendor.calls());
}

/// The subscription's history is one chain: each change starts from the seats the one before
/// left, and the last leaves what the subscription has.
async fn assert_history_is_one_chain(app: &crate::helpers::TestApp, subscription: i64) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let changes = entity::subscription_change::Entity::find()
        .filter(entity::subscription_change::Column::SubscriptionId.eq(subscription))
        .order_by_asc(entity::subscription_change::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap();
    for pair in changes.windows(2) {
        assert_eq!(
            pair[1].quantity_before, pair[0].quantity_after,
            "change {} started from {} seats, but change {} had left {}",
            pair[1].id, pair[1].quantity_before, pair[0].id, pair[0].quantity_after
        );
    }
    let row = entity::subscription::Entity::find_by_id(subscription).one(&app.domain.db).await.unwrap().unwrap();
    assert_eq!(row.quantity, changes.last().unwrap().quantity_after);
    use entity::enums::SubscriptionChangeKind as K;
    let updates =
        changes.iter().filter(|c| matches!(c.kind, K::QuantityIncrease | K::QuantityDecrease | K::Renew)).count();
    assert_eq!(i64::from(row.update_count), updates as i64, "every update counted once");
}

#[tokio::test]
async fn concurrent_changes_and_renewals_from_two_instances_never_lose_an_update() {
    use sea_orm::EntityTrait;
    use switchyard::domain::clock::Clock;

    let app = spawn_app().await;
    let other = crate::helpers::spawn(|_| {}, 0, Some(&app)).await;
    other.clock.set(app.clock.now());
    let f = Fixture::build(&app).await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
    let placed = crate::orders::place(
        &app,
        &reseller,
        crate::orders::order_input(f.customer_a, &[(f.offers_a[1], 2)]),
        "two-instances",
    )
    .await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    // Twenty seat counts set at once, half through each instance.
    let changes = (0..20).map(|i| {
        let (instance, reseller, subscription) = (if i % 2 == 0 { &app } else { &other }, &reseller, &subscription);
        async move {
            let variables = serde_json::json!({"id": subscription, "q": 3 + i, "key": format!("at-once-{i}")});
            instance.post(Some(reseller), QUANTITY, variables).await
        }
    });
    for (status, body) in futures_util::future::join_all(changes).await {
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
    }
    let id: i64 = subscription.parse().unwrap();
    assert_history_is_one_chain(&app, id).await;
    // Both instances' schedulers find the term ended at once: it renews once.
    let row = entity::subscription::Entity::find_by_id(id).one(&app.domain.db).await.unwrap().unwrap();
    let after_end = row.term_end.unwrap() + chrono::Duration::minutes(1);
    app.clock.set(after_end);
    other.clock.set(after_end);
    let (a, b) = tokio::join!(
        switchyard::domain::subscriptions::renew_due(&app.domain),
        switchyard::domain::subscriptions::renew_due(&other.domain)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.0 + b.0, a.1 + b.1), (1, 0), "renewed once, expired none: {a:?} {b:?}");
    assert_history_is_one_chain(&app, id).await;
    let renew_jobs = job_ids(&app, &subscription).await.len();
    // The purchase, twenty changes and one renewal.
    assert_eq!(renew_jobs, 22);
}

#[tokio::test]
async fn a_retry_waits_for_the_running_job_of_its_subscription_and_a_stale_suspend_is_not_sent() {
    let (app, f, vendor, subscription) = provisioned().await;
    let id: i64 = subscription.parse().unwrap();
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_b));
    let operator = app.operator();
    let retry = "mutation($id: ID!) { retryProvisioning(jobId: $id) { status } }";
    // A quantity change is never confirmed by the vendor; a later one is being sent right now.
    vendor.answer(id, Some(503));
    app.data(&reseller, QUANTITY, serde_json::json!({"id": subscription, "q": 5, "key": "to-5"})).await;
    assert_eq!(app.run_jobs().await, 4);
    vendor.answer(id, None);
    app.data(&reseller, QUANTITY, serde_json::json!({"id": subscription, "q": 7, "key": "to-7"})).await;
    let running = claim_next_job(&app.domain, "busy-worker").await.unwrap().unwrap();
    // The operator retries the refused change (an older job): it waits for the running one.
    let refused = job_ids(&app, &subscription).await[1];
    app.data(&operator, retry, serde_json::json!({"id": refused.to_string()})).await;
    assert!(
        claim_next_job(&app.domain, "other-worker").await.unwrap().is_none(),
        "two jobs of one subscription ran at once"
    );
    let done = switchyard::domain::jobs::Outcome::Succeeded { reference: None };
    assert!(switchyard::domain::fulfilment::complete_job(&app.domain, &running, done).await.unwrap());
    assert_eq!(app.run_jobs().await, 1);
    // A suspend the vendor never confirmed, then a resume that went through: sending the
    // suspend again would undo the resume, so its retry is refused.
    let mutation = |name: &str| {
        format!(
            "mutation($id: ID!, $key: String!) {{ {name}(id: $id, idempotencyKey: $key) {{ subscription {{ status }} }} }}"
        )
    };
    vendor.answer(id, Some(503));
    app.data(&reseller, &mutation("suspendSubscription"), serde_json::json!({"id": subscription, "key": "suspend"}))
        .await;
    assert_eq!(app.run_jobs().await, 4);
    vendor.answer(id, None);
    let resumed = app
        .post(
            Some(&reseller),
            &mutation("resumeSubscription"),
            serde_json::json!({"id": subscription, "key": "resume"}),
        )
        .await;
    if resumed.1.get("errors").is_none() {
        app.run_jobs().await;
    }
    let suspend =
        *job_ids(&app, &subscription).await.iter().rev().nth(usize::from(resumed.1.get("errors").is_none())).unwrap();
    let (_, refused) = app.post(Some(&operator), retry, serde_json::json!({"id": suspend.to_string()})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("changed again"), "{refused}");
}

/// A TLS front on a free port for the plain-HTTP fake vendor at `target`, with the test
/// CA's certificate for 127.0.0.1.
async fn tls_front(target: String) -> String {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixtures.join("vendor-tls.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(fixtures.join("vendor-tls-key.pem")).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_vendor_is_called_over_https_trusting_the_configured_ca() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let url = tls_front(vendor.url().trim_start_matches("http://").to_owned()).await;
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        serde_json::json!({"id": f.vendor_b.to_string(), "settings": {"url": url, "secret": crate::provisioning::SECRET}}),
    )
    .await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_b));
    let placed =
        crate::orders::place(&app, &reseller, crate::orders::order_input(f.customer_b, &[(f.offer_b, 2)]), "tls").await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].as_str().unwrap().to_owned();
    let mut config = crate::helpers::provisioning_config(1);
    // Without the test CA the vendor's certificate is not trusted: no call gets through.
    let public_roots = switchyard::workers::http_client(&config).unwrap();
    assert!(switchyard::workers::run_one(&app.domain, "w", &public_roots, Duration::from_secs(5)).await.unwrap());
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "QUEUED", "{state}");
    assert!(vendor.calls().is_empty(), "an untrusted certificate was accepted");
    // With it, the call is made over TLS and succeeds.
    config.vendor_ca_file = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-ca.pem"));
    let trusting = switchyard::workers::http_client(&config).unwrap();
    assert!(switchyard::workers::run_one(&app.domain, "w", &trusting, Duration::from_secs(5)).await.unwrap());
    let state = job(&app, &subscription).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
    assert_eq!(vendor.calls().len(), 1);
}

/// A claim walks the waiting jobs in the order they are due and stops once it has the jobs
/// it may take (a worker's batch): with 5,000 jobs waiting it reads the few it must pass
/// over (jobs held back by a running job of their ordering key) and the ones it takes, not
/// the whole backlog (#13: a claim checked every due job's ordering key and sorted them all
/// to take one, 0.9 s a claim with 1,500 jobs waiting on PostgreSQL). A lapsed lease due
/// earlier goes first.
#[tokio::test]
async fn a_claim_reads_the_first_due_job_not_the_whole_backlog() {
    /// The default `SWITCHYARD_JOB_BATCH`.
    const BATCH: usize = 16;
    use sea_orm::{ConnectionTrait, EntityTrait, Set, Statement};
    use switchyard::domain::jobs::next_jobs_sql;

    let app = spawn_app().await;
    let db = &app.domain.db;
    let backend = db.get_database_backend();
    let now = app.domain.clock.now();
    let start = now - chrono::Duration::hours(2);
    let job = |key: &str, request: String, due: chrono::DateTime<chrono::Utc>| entity::job::ActiveModel {
        ordering_key: Set(Some(key.to_owned())),
        ..crate::helpers::subjectless_job(&request, 5, due)
    };
    let running = |model: entity::job::ActiveModel, lease_until| entity::job::ActiveModel {
        status: Set(entity::enums::JobStatus::Running),
        attempts: Set(1),
        locked_by: Set(Some("another-worker".into())),
        locked_until: Set(Some(lease_until)),
        lease_token: Set(Some("token".into())),
        ..model
    };
    let mut rows = vec![
        // Due first of all, but its key's running job holds the ten after it back.
        running(
            job("held", "held-running".into(), start - chrono::Duration::hours(1)),
            now + chrono::Duration::hours(1),
        ),
        // A worker that died: its lease ran out a minute ago.
        running(
            job("lapsed", "lapsed".into(), start - chrono::Duration::minutes(10)),
            now - chrono::Duration::minutes(1),
        ),
    ];
    rows.extend((0..10).map(|n| {
        job("held", format!("held-{n}"), start - chrono::Duration::minutes(30) + chrono::Duration::milliseconds(n))
    }));
    rows.extend(
        (0..5_000)
            .map(|n| job(&format!("backlog-{n}"), format!("backlog-{n}"), start + chrono::Duration::milliseconds(n))),
    );
    for chunk in rows.chunks(500) {
        entity::job::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }
    db.execute_unprepared("ANALYZE").await.unwrap();

    let plan: Vec<String> = if crate::helpers::is_postgres() {
        let sql = format!("EXPLAIN (ANALYZE, COSTS OFF) {}", next_jobs_sql(backend, "'PROVISIONING'", "now()", BATCH));
        let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
        rows.iter().map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap()).collect()
    } else {
        let sql = format!("EXPLAIN QUERY PLAN {}", next_jobs_sql(backend, "'PROVISIONING'", "'9999'", BATCH));
        let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
        rows.iter().map(|row| row.try_get::<String>("", "detail").unwrap()).collect()
    };
    let plan_text = plan.join("\n");
    if crate::helpers::is_postgres() {
        // The rows the walk of the waiting jobs returned (`rows=11` or `rows=11.00`).
        let walked = plan
            .iter()
            .find(|line| line.contains("idx_jobs_due"))
            .and_then(|line| line.split("rows=").nth(1))
            .and_then(|rows| rows.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|rows| rows.parse::<usize>().ok());
        assert!(
            walked.is_some_and(|rows| rows <= BATCH + 20),
            "the claim does not stop at the first job it may take ({walked:?} rows):\n{plan_text}"
        );
        assert!(
            !plan_text.contains("Seq Scan on jobs") && !plan_text.contains("Hash"),
            "the claim reads or hashes the whole table:\n{plan_text}"
        );
    } else {
        // The waiting jobs come from an index in the order they are due (`idx_jobs_claim`
        // is `status, run_after` and then the row id, which is the job's id); only the pick
        // between the two halves' first jobs, after them, sorts.
        let pick = plan.iter().position(|line| line == "SCAN due");
        let first_sort = plan.iter().position(|line| line.contains("TEMP B-TREE FOR ORDER BY"));
        assert!(
            pick.is_some_and(|pick| first_sort.is_none_or(|sort| sort > pick)),
            "the claim sorts the backlog:\n{plan_text}"
        );
    }

    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.push(claim_next_job(&app.domain, "worker").await.unwrap().unwrap().job.request_id);
    }
    assert_eq!(claimed, ["lapsed", "backlog-0", "backlog-1"], "the lapsed lease, then the first due not held back");
    let batch =
        switchyard::domain::jobs::claim_jobs_of(&app.domain, "worker", &[entity::enums::JobKind::Provisioning], BATCH)
            .await
            .unwrap();
    let taken: Vec<&str> = batch.iter().map(|claimed| claimed.job.request_id.as_str()).collect();
    let expected: Vec<String> = (2..2 + BATCH).map(|n| format!("backlog-{n}")).collect();
    assert_eq!(taken, expected, "a batch: the next due in order, none held back by its key");
    let tokens: std::collections::HashSet<&str> = batch.iter().map(|claimed| claimed.lease_token.as_str()).collect();
    assert_eq!(tokens.len(), BATCH, "each job of a batch has a lease token of its own");
}
