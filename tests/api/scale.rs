//! Several Switchyard processes on one PostgreSQL act as one: events cross processes
//! through LISTEN/NOTIFY, and workers in every process share the queue without ever
//! claiming a job twice. (PostgreSQL only: on SQLite there is one process.)

use std::time::Duration;

use serde_json::json;
use switchyard::domain::Role;

use crate::helpers::{Fixture, is_postgres, spawn, spawn_app};
use crate::live::WsClient;
use crate::orders::{order_input, place};
use crate::provisioning::{FakeVendor, Script, order_from_http_vendor};

#[tokio::test]
async fn a_subscriber_on_one_instance_sees_changes_made_on_another() {
    if !is_postgres() {
        eprintln!("skipped: several processes share a queue and events only on PostgreSQL");
        return;
    }
    let a = spawn_app().await;
    let f = Fixture::build(&a).await;
    let b = spawn(|_| {}, 0, Some(&a)).await;
    let token = a.token(Role::Reseller, Some(f.reseller_a));
    let mut client = WsClient::init(&a, &token).await;
    client
        .subscribe(
            "1",
            "subscription($c: ID) { provisioningStatus(customerId: $c) { status } }",
            json!({"c": f.customer_a.to_string()}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    place(&b, &token, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "cross").await;
    b.run_jobs().await;
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        let message = client.next().await.unwrap();
        statuses.push(message["payload"]["data"]["provisioningStatus"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["PENDING", "PROVISIONING", "ACTIVE"]);
}

#[tokio::test]
async fn workers_in_several_processes_never_claim_a_job_twice() {
    if !is_postgres() {
        eprintln!("skipped: several processes share a queue and events only on PostgreSQL");
        return;
    }
    let first = spawn_app().await;
    let f = Fixture::build(&first).await;
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    order_from_http_vendor(&first, &f, &vendor).await;
    let reseller = first.token(Role::Reseller, Some(f.reseller_b));
    for index in 0..59 {
        place(&first, &reseller, order_input(f.customer_b, &[(f.offer_b, 1)]), &format!("bulk-{index}")).await;
    }
    // Three more processes with three workers each race for the 60 jobs.
    let processes = futures_util::future::join_all((0..3).map(|_| spawn(|_| {}, 3, Some(&first)))).await;
    let done = first
        .wait_for(&first.operator(), "{ provisioningJobs(status: SUCCEEDED) { totalCount } }", json!({}), |d| {
            d["provisioningJobs"]["totalCount"] == 60
        })
        .await;
    assert_eq!(done["provisioningJobs"]["totalCount"], 60);
    let calls = vendor.calls();
    assert_eq!(calls.len(), 60, "one request id per job");
    assert!(calls.values().all(|n| *n == 1), "no job ran twice: {calls:?}");
    let attempts = first
        .data(&first.operator(), "{ provisioningJobs(first: 100) { edges { node { attempts } } } }", json!({}))
        .await;
    assert!(attempts["provisioningJobs"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["attempts"] == 1));
    drop(processes);
}
