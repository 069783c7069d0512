//! #9.10 and #9.11: live events are never lost silently. Every event has a cursor (its
//! place in the outbox, increasing in commit order); a subscriber that falls behind is
//! caught up from the outbox, a subscription resumes after a cursor, events committed while
//! PostgreSQL's LISTEN connection is down are relayed from the outbox, and a cursor older
//! than what the outbox keeps is told so (EVENTS_LOST), never skipped.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::domain::events::{DomainEvent, EventKind};
use switchyard::domain::{Audit, Write};

use crate::helpers::{TestApp, spawn_app_with, spawn_on};
use crate::live::WsClient;

const LIVE: &str = "subscription($after: String) { provisioningStatus(after: $after) { eventId cursor status jobId } }";

/// Commits `count` synthetic provisioning events, `per_write` to a transaction; their job ids
/// number them from `first`.
async fn commit_events(app: &TestApp, first: i64, count: i64, per_write: i64) {
    let mut next = first;
    while next < first + count {
        let mut w = Write::begin(&app.domain).await.unwrap();
        let now = w.now();
        let last = (next + per_write).min(first + count);
        for n in next..last {
            let event = DomainEvent {
                job_id: Some(n),
                vendor_id: Some(1),
                ..DomainEvent::new(EventKind::ProvisioningStatusChanged, "RUNNING", now)
            };
            w.emit(event).await.unwrap();
        }
        w.commit(Audit::Bookkeeping("test events")).await.unwrap();
        next = last;
    }
}

/// The job id of the events that only tell a test its stream is live.
const SENTINEL: &str = "-1";

/// Reads `count` events of subscription "1" (`next` payloads; sentinels skipped), failing on
/// anything else.
async fn read_events(client: &mut WsClient, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < count {
        let message = client.next_within(Duration::from_secs(20)).await;
        let message = message.unwrap_or_else(|()| panic!("only {} of {count} events came", events.len()));
        let message = message.unwrap_or_else(|| panic!("closed after {} of {count} events", events.len()));
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        let event = message["payload"]["data"]["provisioningStatus"].clone();
        if event["jobId"] != SENTINEL {
            events.push(event);
        }
    }
    events
}

/// Every event once, in commit order: job ids `first..first + count` and increasing cursors.
fn assert_in_order(events: &[Value], first: i64) {
    let cursors: Vec<i64> = events.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors not increasing: {cursors:?}");
    let jobs: Vec<i64> = events.iter().map(|e| e["jobId"].as_str().unwrap().parse().unwrap()).collect();
    let expected: Vec<i64> = (first..first + events.len() as i64).collect();
    assert_eq!(jobs, expected, "events lost, repeated or out of order");
    let ids: HashSet<&str> = events.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len());
}

/// An operator's stream of every provisioning event, live: it has passed on a sentinel
/// event committed after it was asked for. Also the events it passed on before (replayed).
async fn subscribe_replaying(app: &TestApp, after: Option<&str>) -> (WsClient, Vec<Value>) {
    let mut client = WsClient::init(app, &app.operator()).await;
    client.subscribe("1", LIVE, json!({"after": after})).await;
    let mut before = Vec::new();
    for _ in 0..100 {
        commit_events(app, -1, 1, 1).await;
        loop {
            match client.next_within(Duration::from_millis(200)).await {
                Ok(Some(message)) => {
                    assert_eq!(message["type"], "next", "{message}");
                    let event = message["payload"]["data"]["provisioningStatus"].clone();
                    if event["jobId"] == SENTINEL {
                        return (client, before);
                    }
                    before.push(event);
                }
                Ok(None) => panic!("closed while subscribing"),
                Err(()) => break,
            }
        }
    }
    panic!("the stream never went live");
}

/// [`subscribe_replaying`] from now on.
async fn subscribe(app: &TestApp, after: Option<&str>) -> WsClient {
    let (client, before) = subscribe_replaying(app, after).await;
    assert!(before.is_empty(), "{before:?}");
    client
}

#[tokio::test]
async fn a_stalled_subscriber_gets_every_event_in_order_from_the_outbox() {
    // A bus of 8 events: a subscriber that stops reading falls behind at once.
    let app = spawn_app_with(|server| server.event_buffer = 8).await;
    let mut client = subscribe(&app, None).await;
    // 3,000 events while the client reads nothing (its socket buffers fill up).
    commit_events(&app, 0, 3000, 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = read_events(&mut client, 3000).await;
    assert_in_order(&events, 0);
}

#[tokio::test]
async fn a_subscription_resumes_after_its_cursor_without_loss_or_repeat() {
    let app = crate::helpers::spawn_app().await;
    let mut first = subscribe(&app, None).await;
    commit_events(&app, 0, 5, 1).await;
    let seen = read_events(&mut first, 5).await;
    assert_in_order(&seen, 0);
    drop(first);
    // Gone while 5 more are committed; back after the third it saw.
    commit_events(&app, 5, 5, 2).await;
    let cursor = seen[2]["cursor"].as_str().unwrap().to_owned();
    let (mut again, early) = subscribe_replaying(&app, Some(&cursor)).await;
    let replayed = [early.clone(), read_events(&mut again, 7 - early.len()).await].concat();
    assert_in_order(&replayed, 3);
    // And live after the replay, without repeating it.
    commit_events(&app, 10, 3, 1).await;
    let live = read_events(&mut again, 3).await;
    assert_in_order(&[replayed, live].concat(), 3);
}

#[tokio::test]
async fn events_committed_while_the_listen_connection_is_down_are_relayed_from_the_outbox() {
    use sea_orm::ConnectionTrait;
    // LISTEN is PostgreSQL's: a throwaway cluster, whichever backend the suite runs on.
    let cluster = crate::pg_cluster::Cluster::start();
    let sql = |text: &str| sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, text.to_owned());
    let admin = switchyard::db::connect(&cluster.url("postgres"), 1).await.unwrap();
    admin.execute_raw(sql("CREATE DATABASE events")).await.unwrap();
    // The subscriber's server logs in as a role of its own, so that the test can keep that
    // server, and it alone, from connecting again.
    admin.execute_raw(sql("CREATE ROLE subscriber LOGIN SUPERUSER")).await.unwrap();
    // The subscriber's server hears of another server's commits only through the database.
    let app = spawn_on(&cluster.url_as("subscriber", "events"), |_| {}).await;
    let writer = spawn_on(&cluster.url("events"), |_| {}).await;
    let mut client = subscribe(&app, None).await;
    let kill_listeners = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
        WHERE datname = 'events' AND query ILIKE 'LISTEN%'";
    let mut killed = 0;
    for round in 0..21 {
        // Every fourth batch, and the last (no notification follows it), is committed while
        // the LISTEN connections are down: cut, and noticed, but not reconnected yet.
        if round % 4 == 0 || round == 20 {
            killed += admin.query_all_raw(sql(kill_listeners)).await.unwrap().len();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        commit_events(&writer, round * 50, 50, 10).await;
    }
    assert!(killed >= 6, "the listeners' connections were cut {killed} times");
    let events = read_events(&mut client, 1050).await;
    assert_in_order(&events, 0);
    // And a batch committed while the subscriber's listener cannot come back at all (its role
    // may no longer log in; the connections it has stay): no notification ever tells of it.
    // The writer, another role, connects as it needs.
    let subscribers_listener = "SELECT pid FROM pg_stat_activity \
        WHERE datname = 'events' AND query ILIKE 'LISTEN%' AND usename = 'subscriber'";
    for _ in 0..100 {
        if !admin.query_all_raw(sql(subscribers_listener)).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.execute_raw(sql("ALTER ROLE subscriber NOLOGIN")).await.unwrap();
    let cut = admin.query_all_raw(sql(&format!("{kill_listeners} AND usename = 'subscriber'"))).await.unwrap();
    assert_eq!(cut.len(), 1, "the subscriber's listener, back after the last cut, is cut again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    commit_events(&writer, 1050, 50, 10).await;
    let unannounced = read_events(&mut client, 50).await;
    admin.execute_raw(sql("ALTER ROLE subscriber LOGIN")).await.unwrap();
    assert_in_order(&[events, unannounced].concat(), 0);
}

#[tokio::test]
async fn a_cursor_older_than_the_kept_events_is_told_they_are_lost() {
    let app = crate::helpers::spawn_app().await;
    let mut client = subscribe(&app, None).await;
    commit_events(&app, 0, 10, 5).await;
    let seen = read_events(&mut client, 10).await;
    drop(client);
    // Eight days later, with a week's retention, the outbox no longer has them.
    app.advance(chrono::Duration::days(8));
    let pruned = switchyard::domain::outbox::prune(&app.domain, Duration::from_secs(7 * 86_400)).await.unwrap();
    assert!(pruned >= 10, "{pruned}");
    let first = seen[0]["cursor"].as_str().unwrap();
    let mut late = WsClient::init(&app, &app.operator()).await;
    late.subscribe("1", LIVE, json!({"after": first})).await;
    // graphql-transport-ws's `error` message: the operation ends with it.
    let message = late.next().await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "EVENTS_LOST", "{message}");
    // A cursor that missed nothing resumes quietly.
    let last = seen[9]["cursor"].as_str().unwrap();
    let (mut current, early) = subscribe_replaying(&app, Some(last)).await;
    assert!(early.is_empty(), "{early:?}");
    commit_events(&app, 10, 1, 1).await;
    assert_in_order(&read_events(&mut current, 1).await, 10);
}

/// Writers committing at once through two servers: the outbox hands out sequences in commit
/// order, so a subscriber, which reads after the last one it saw, misses none.
#[tokio::test]
async fn events_of_concurrent_writers_reach_a_subscriber_all_in_commit_order() {
    use sea_orm::ConnectionTrait;
    let cluster = crate::pg_cluster::Cluster::start();
    let admin = switchyard::db::connect(&cluster.url("postgres"), 1).await.unwrap();
    admin.execute_unprepared("CREATE DATABASE concurrent").await.unwrap();
    let app = spawn_on(&cluster.url("concurrent"), |_| {}).await;
    let other = spawn_on(&cluster.url("concurrent"), |_| {}).await;
    let mut client = subscribe(&app, None).await;
    let writers = (0..8).map(|writer| {
        let server = if writer % 2 == 0 { &app } else { &other };
        async move {
            for write in 0..40 {
                commit_events(server, writer * 1000 + write * 2, 2, 2).await;
            }
        }
    });
    futures_util::future::join_all(writers).await;
    let events = read_events(&mut client, 640).await;
    let cursors: Vec<i64> = events.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors not increasing");
    let jobs: HashSet<i64> = events.iter().map(|e| e["jobId"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(jobs.len(), 640, "every event once");
}

/// A client that has seen no event yet starts from `liveCursor`, so even its first
/// reconnect loses nothing; a cursor past the last event is refused, not silently waited on.
#[tokio::test]
async fn a_client_starts_from_the_live_cursor_and_a_cursor_from_the_future_is_refused() {
    let app = crate::helpers::spawn_app().await;
    commit_events(&app, 100, 3, 3).await;
    let start = app.data(&app.operator(), "{ liveCursor }", json!({})).await["liveCursor"].as_str().unwrap().to_owned();
    // Gone before any event came: what was committed meanwhile is replayed from the start.
    commit_events(&app, 0, 4, 2).await;
    let (mut client, early) = subscribe_replaying(&app, Some(&start)).await;
    let replayed = [early.clone(), read_events(&mut client, 4 - early.len()).await].concat();
    assert_in_order(&replayed, 0);
    let ahead = (start.parse::<i64>().unwrap() + 1_000_000).to_string();
    let mut refused = WsClient::init(&app, &app.operator()).await;
    refused.subscribe("1", LIVE, json!({"after": ahead})).await;
    let message = refused.next().await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{message}");
}
