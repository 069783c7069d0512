//! A worker's batch of provisioning jobs (#13 item 5): the jobs of one claim run side by
//! side, started in one write and their outcomes recorded together, and end exactly as the
//! same jobs run one at a time do; a job whose write fails does not hold back the others.

use std::collections::BTreeMap;
use std::time::Duration;

use entity::enums::JobKind;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use switchyard::domain::Role;
use switchyard::domain::clock::Clock;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};
use crate::provisioning::{FakeVendor, SECRET, Script, job};

/// A batch as large as a worker's default (`SWITCHYARD_JOB_BATCH`).
const BATCH: usize = 16;

/// Runs one claim of up to [`BATCH`] jobs; whether any was due.
async fn run_batch(app: &TestApp) -> bool {
    switchyard::workers::run_batch_of(
        &app.domain,
        "batch-worker",
        &reqwest::Client::new(),
        Duration::from_millis(500),
        &[JobKind::Provisioning],
        BATCH,
    )
    .await
    .unwrap()
}

/// Points vendor A at `vendor` and places three orders of six lines in all (three, two and
/// one) as reseller A; the subscriptions in the order they were made.
async fn six_subscriptions(app: &TestApp, f: &Fixture, vendor: &FakeVendor) -> Vec<String> {
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_a.to_string(), "settings": {"url": vendor.url(), "secret": SECRET}}),
    )
    .await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let orders = [
        vec![(f.offers_a[0], 1), (f.offers_a[1], 2), (f.offers_a[2], 3)],
        vec![(f.offers_a[0], 4), (f.offers_a[1], 5)],
        vec![(f.offers_a[2], 6)],
    ];
    let mut subscriptions = Vec::new();
    for (index, lines) in orders.iter().enumerate() {
        let placed = place(app, &reseller, order_input(f.customer_a, lines), &format!("batch-{index}")).await;
        for line in placed["order"]["lines"].as_array().unwrap() {
            subscriptions.push(line["subscription"]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(subscriptions.len(), 6);
    subscriptions
}

/// What the jobs left behind, as the API shows it: each subscription with its job and its
/// events (kind and status, in the order they were recorded), and each order's status.
async fn outcome(app: &TestApp, subscriptions: &[String]) -> Value {
    let mut states = Vec::new();
    let mut events: BTreeMap<i64, Vec<(String, Value)>> = BTreeMap::new();
    for row in entity::domain_event::Entity::find()
        .order_by_asc(entity::domain_event::Column::Id)
        .all(&app.domain.db)
        .await
        .unwrap()
    {
        if let Some(subscription) = row.payload["subscription_id"].as_i64() {
            events.entry(subscription).or_default().push((row.kind, row.payload["status"].clone()));
        }
    }
    for subscription in subscriptions {
        let mut state = job(app, subscription).await;
        // Each app's request ids are its own.
        state["job"]["requestId"] = Value::Null;
        state["job"]["id"] = Value::Null;
        state["events"] = json!(events.get(&subscription.parse::<i64>().unwrap()));
        let history = app
            .data(
                &app.operator(),
                "query($s: ID!) { subscription(id: $s) { quantity unitCost { amount } history { kind actorRole \
                   quantityBefore quantityAfter statusBefore statusAfter vendorOutcome } } }",
                json!({"s": subscription}),
            )
            .await;
        state["history"] = history["subscription"].clone();
        states.push(state);
    }
    let orders = app
        .data(&app.operator(), "{ orders(first: 10) { edges { node { status lines { status } } } } }", json!({}))
        .await;
    json!({"subscriptions": states, "orders": orders})
}

/// The same six jobs — two vendors' refusals among them, one for good and one until its
/// attempts run out — end with the same subscriptions, jobs, events and orders whether one
/// worker runs them one at a time or in batches.
#[tokio::test]
async fn a_batch_ends_every_job_as_jobs_run_one_at_a_time_do() {
    let mut outcomes = Vec::new();
    for batched in [false, true] {
        let app = spawn_app().await;
        let f = Fixture::build(&app).await;
        let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
        let subscriptions = six_subscriptions(&app, &f, &vendor).await;
        vendor.answer(subscriptions[1].parse().unwrap(), Some(400));
        vendor.answer(subscriptions[3].parse().unwrap(), Some(503));
        if batched {
            let mut claims = 0;
            while run_batch(&app).await {
                claims += 1;
            }
            // The first claim takes all six; the one refused for now three times more.
            assert_eq!(claims, 4, "claims of a batch");
        } else {
            assert_eq!(app.run_jobs().await, 9, "six jobs, one of them tried four times");
        }
        let seen = outcome(&app, &subscriptions).await;
        let subscription = |n: usize| &seen["subscriptions"][n];
        assert_eq!(subscription(0)["job"]["status"], "SUCCEEDED", "{seen}");
        assert_eq!(subscription(1)["job"]["status"], "FAILED", "{seen}");
        assert_eq!(subscription(3)["job"]["status"], "DEAD", "{seen}");
        assert_eq!(subscription(3)["job"]["attempts"], 4, "{seen}");
        assert_eq!(subscription(5)["subscription"]["status"], "ACTIVE", "{seen}");
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1], "one at a time, then in a batch");
}

/// The domain's batch writes end each job exactly as its writes for one job do: six jobs
/// started together and settled together (a success with and without a reference, a
/// refusal, a retry, a job given up, another success) leave the same subscriptions,
/// histories, jobs, events, lines and orders as the same jobs started and settled one by one.
#[tokio::test]
async fn jobs_started_and_settled_together_end_as_jobs_started_and_settled_alone() {
    use switchyard::domain::fulfilment::{complete_job, complete_jobs, mark_all_started, mark_started};
    use switchyard::domain::jobs::Outcome;

    let outcomes = [
        Outcome::Succeeded { reference: Some("V-1".into()) },
        Outcome::Permanent { error: "refused".into() },
        Outcome::Succeeded { reference: None },
        Outcome::Transient { error: "busy".into(), retry_after: Some(Duration::from_secs(30)) },
        Outcome::Abandoned { error: "given up".into() },
        Outcome::Succeeded { reference: Some("V-6".into()) },
    ];
    let mut seen = Vec::new();
    for together in [false, true] {
        let app = spawn_app().await;
        let f = Fixture::build(&app).await;
        let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
        let subscriptions = six_subscriptions(&app, &f, &vendor).await;
        let claimed =
            switchyard::domain::jobs::claim_jobs_of(&app.domain, "w", &[JobKind::Provisioning], BATCH).await.unwrap();
        assert_eq!(claimed.len(), 6);
        let by_subscription = |n: usize| {
            let id: i64 = subscriptions[n].parse().unwrap();
            claimed.iter().find(|c| c.job.subscription_id == Some(id)).unwrap()
        };
        let settled: Vec<_> =
            outcomes.iter().enumerate().map(|(n, outcome)| (by_subscription(n), outcome.clone())).collect();
        if together {
            mark_all_started(&app.domain, &claimed.iter().collect::<Vec<_>>()).await.unwrap();
            let kept = complete_jobs(&app.domain, &settled).await.unwrap();
            assert_eq!(kept, [true; 6]);
        } else {
            for job in &claimed {
                mark_started(&app.domain, job).await.unwrap();
            }
            for (job, outcome) in settled {
                assert!(complete_job(&app.domain, job, outcome).await.unwrap());
            }
        }
        let ended = outcome(&app, &subscriptions).await;
        assert_eq!(ended["subscriptions"][0]["history"]["history"][1]["kind"], "PROVISIONED", "{ended}");
        assert_eq!(ended["subscriptions"][3]["job"]["status"], "QUEUED", "{ended}");
        assert_eq!(ended["orders"]["orders"]["edges"][0]["node"]["status"], "PARTIALLY_FAILED", "{ended}");
        seen.push(ended);
    }
    assert_eq!(seen[0], seen[1], "alone, then together");
}

/// Answers recorded together keep to each job's lease: the job another worker took over
/// after its lease ran out is left as that worker holds it (nothing of the answer is
/// written), the others are recorded.
#[tokio::test]
async fn an_answer_whose_lease_was_lost_is_not_recorded_with_the_others() {
    use switchyard::domain::fulfilment::{complete_jobs, mark_all_started};
    use switchyard::domain::jobs::{Outcome, claim_jobs_of, claim_next_job};

    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let subscriptions = six_subscriptions(&app, &f, &vendor).await;
    let claimed = claim_jobs_of(&app.domain, "w", &[JobKind::Provisioning], BATCH).await.unwrap();
    mark_all_started(&app.domain, &claimed.iter().collect::<Vec<_>>()).await.unwrap();
    app.advance(chrono::Duration::seconds(61));
    let taken = claim_next_job(&app.domain, "other").await.unwrap().unwrap();
    let answers: Vec<_> =
        claimed.iter().map(|job| (job, Outcome::Succeeded { reference: Some(format!("V-{}", job.job.id)) })).collect();
    let kept = complete_jobs(&app.domain, &answers).await.unwrap();
    let expected: Vec<bool> = claimed.iter().map(|job| job.job.id != taken.job.id).collect();
    assert_eq!(kept, expected);
    for subscription in &subscriptions {
        let state = job(&app, subscription).await;
        if subscription.parse::<i64>().ok() == taken.job.subscription_id {
            assert_eq!(state["job"]["status"], "RUNNING", "{state}");
            assert_eq!(state["job"]["attempts"], 2, "{state}");
            assert_eq!(state["subscription"]["status"], "PROVISIONING", "{state}");
            assert_eq!(state["subscription"]["vendorReference"], Value::Null, "{state}");
        } else {
            assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
            assert_eq!(state["subscription"]["status"], "ACTIVE", "{state}");
        }
    }
    let row = entity::job::Entity::find_by_id(taken.job.id).one(&app.domain.db).await.unwrap().unwrap();
    assert_eq!(row.locked_by.as_deref(), Some("other"), "the other worker still holds it");
}

/// A start comes too late for a job whose lease ran out and which another worker took over
/// and finished meanwhile: it is not started again (its line and order stay done, no
/// event), and the batch's other jobs are started.
#[tokio::test]
async fn a_job_finished_by_another_worker_is_not_started_again_by_a_late_batch() {
    use switchyard::domain::fulfilment::{complete_job, mark_all_started, mark_started};
    use switchyard::domain::jobs::{Outcome, claim_jobs_of, claim_next_job};

    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let subscriptions = six_subscriptions(&app, &f, &vendor).await;
    let claimed = claim_jobs_of(&app.domain, "late", &[JobKind::Provisioning], BATCH).await.unwrap();
    app.advance(chrono::Duration::seconds(61));
    let taken = claim_next_job(&app.domain, "other").await.unwrap().unwrap();
    assert!(mark_started(&app.domain, &taken).await.unwrap());
    assert!(complete_job(&app.domain, &taken, Outcome::Succeeded { reference: Some("V-other".into()) }).await.unwrap());
    let events_before = crate::helpers::count_rows(&app, "domain_events").await;
    let started = mark_all_started(&app.domain, &claimed.iter().collect::<Vec<_>>()).await.unwrap();
    for subscription in &subscriptions {
        let state = job(&app, subscription).await;
        if subscription.parse::<i64>().ok() == taken.job.subscription_id {
            assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
            assert_eq!(state["subscription"]["status"], "ACTIVE", "not started again: {state}");
        } else {
            assert_eq!(state["subscription"]["status"], "PROVISIONING", "{state}");
        }
    }
    let lines =
        app.data(&app.operator(), "{ orders(first: 10) { edges { node { lines { status } } } } }", json!({})).await;
    let succeeded = lines.to_string().matches("SUCCEEDED").count();
    assert_eq!(succeeded, 1, "the finished job's line stays SUCCEEDED: {lines}");
    // Five jobs' starts: a subscription change and a provisioning event each, and no other.
    assert_eq!(crate::helpers::count_rows(&app, "domain_events").await - events_before, 10);
    let expected: Vec<bool> = claimed.iter().map(|job| job.job.id != taken.job.id).collect();
    assert_eq!(started, expected, "started: the jobs whose lease holds");
}

/// Makes every update of subscription `id` fail (where `when` holds of the new row), as a
/// write that cannot be made: a trigger.
async fn refuse_updates(app: &TestApp, id: &str, when: &str) {
    let db = &app.domain.db;
    if crate::helpers::is_postgres() {
        db.execute_unprepared(
            "CREATE FUNCTION refuse_update() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ \
             LANGUAGE plpgsql",
        )
        .await
        .unwrap();
        db.execute_unprepared(&format!(
            "CREATE TRIGGER refuse BEFORE UPDATE ON subscriptions FOR EACH ROW WHEN (NEW.id = {id} AND {when}) \
             EXECUTE FUNCTION refuse_update()"
        ))
        .await
        .unwrap();
    } else {
        db.execute_unprepared(&format!(
            "CREATE TRIGGER refuse BEFORE UPDATE ON subscriptions WHEN NEW.id = {id} AND {when} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ))
        .await
        .unwrap();
    }
}

async fn allow_updates(app: &TestApp) {
    let drop =
        if crate::helpers::is_postgres() { "DROP TRIGGER refuse ON subscriptions" } else { "DROP TRIGGER refuse" };
    app.domain.db.execute_unprepared(drop).await.unwrap();
}

/// A batch whose start cannot be written together (one job's subscription refuses the
/// update) runs each job alone: the others are provisioned; that one is left to its lease,
/// and runs once its write can be made.
#[tokio::test]
async fn a_job_whose_start_cannot_be_written_does_not_hold_back_its_batch() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let subscriptions = six_subscriptions(&app, &f, &vendor).await;
    refuse_updates(&app, &subscriptions[2], "1 = 1").await;
    assert!(run_batch(&app).await);
    for (n, subscription) in subscriptions.iter().enumerate() {
        let state = job(&app, subscription).await;
        if n == 2 {
            assert_eq!(state["job"]["status"], "RUNNING", "left to its lease: {state}");
            assert_eq!(state["subscription"]["status"], "PENDING", "{state}");
        } else {
            assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
            assert_eq!(state["subscription"]["status"], "ACTIVE", "{state}");
        }
    }
    assert_eq!(vendor.calls().len(), 5, "no call for the job that could not start");
    allow_updates(&app).await;
    app.advance(chrono::Duration::seconds(61));
    assert_eq!(app.run_jobs().await, 1);
    let state = job(&app, &subscriptions[2]).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
    assert_eq!(state["job"]["attempts"], 2, "{state}");
}

/// Outcomes that cannot be recorded together (one subscription refuses to become ACTIVE)
/// are recorded each alone: the others are kept; that job is left to its lease, and its
/// vendor, asked again with the same request id, answers it once.
#[tokio::test]
async fn an_outcome_that_cannot_be_written_does_not_hold_back_its_batch() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let subscriptions = six_subscriptions(&app, &f, &vendor).await;
    refuse_updates(&app, &subscriptions[4], "NEW.status = 'ACTIVE'").await;
    assert!(run_batch(&app).await);
    for (n, subscription) in subscriptions.iter().enumerate() {
        let state = job(&app, subscription).await;
        if n == 4 {
            assert_eq!(state["job"]["status"], "RUNNING", "left to its lease: {state}");
            assert_eq!(state["subscription"]["status"], "PROVISIONING", "{state}");
        } else {
            assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
            assert_eq!(state["subscription"]["status"], "ACTIVE", "{state}");
        }
    }
    allow_updates(&app).await;
    app.advance(chrono::Duration::seconds(61));
    assert_eq!(app.run_jobs().await, 1);
    let state = job(&app, &subscriptions[4]).await;
    assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
    assert_eq!(vendor.references().len(), 6, "one reference a request id");
}

/// While the answers that came first wait for their write (here, one held up for 3 s by a
/// trigger), the calls still running go on and keep their leases renewed (no other worker
/// could take a job whose call runs), and every vendor call is made once.
#[tokio::test]
async fn while_a_batchs_first_answers_wait_for_their_write_its_slow_calls_keep_their_leases() {
    if !crate::helpers::is_postgres() {
        eprintln!("\n*** SKIPPED on SQLite: a write held up inside the database needs pg_sleep ***\n");
        return;
    }
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    let subscriptions = six_subscriptions(&app, &f, &vendor).await;
    vendor.delay(subscriptions[5].parse().unwrap(), Duration::from_millis(2_000));
    let db = &app.domain.db;
    db.execute_unprepared(
        "CREATE FUNCTION slow_update() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$ \
         LANGUAGE plpgsql",
    )
    .await
    .unwrap();
    db.execute_unprepared(&format!(
        "CREATE TRIGGER slow BEFORE UPDATE ON subscriptions FOR EACH ROW WHEN (NEW.id = {} AND NEW.status = 'ACTIVE') \
         EXECUTE FUNCTION slow_update()",
        subscriptions[0]
    ))
    .await
    .unwrap();
    let batch = tokio::spawn({
        let app_domain = std::sync::Arc::clone(&app.domain);
        async move {
            switchyard::workers::run_batch_of(
                &app_domain,
                "batch-worker",
                &reqwest::Client::new(),
                Duration::from_secs(5),
                &[JobKind::Provisioning],
                BATCH,
            )
            .await
            .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While the first answers' write sleeps, the clock passes the leases' first end: the
    // slow call's lease is renewed all the same.
    let slow: i64 = subscriptions[5].parse().unwrap();
    for _ in 0..2 {
        app.advance(chrono::Duration::seconds(45));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let row = entity::job::Entity::find()
            .filter(entity::job::Column::SubscriptionId.eq(slow))
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.locked_until.is_some_and(|until| until > app.clock.now()),
            "the slow call's lease was not renewed while other answers waited for their write: {row:?}"
        );
    }
    assert!(batch.await.unwrap());
    for subscription in &subscriptions {
        let state = job(&app, subscription).await;
        assert_eq!(state["job"]["status"], "SUCCEEDED", "{state}");
        assert_eq!(state["job"]["attempts"], 1, "{state}");
    }
    assert!(vendor.calls().values().all(|&calls| calls == 1), "each call made once: {:?}", vendor.calls());
}
