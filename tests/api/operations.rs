//! What the operations dashboard reads (#12): the job queue's health, jobs finished per
//! minute by outcome, billing runs, and recent orders — exact figures from known histories,
//! on the operator's side only, and recent orders scoped like every other read.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::orders::{order_input, place};
use crate::provisioning::{FakeVendor, SECRET, Script};

const HEALTH: &str = "{ queueHealth { counts { kind status count } oldestWaitingSeconds } }";

fn throughput(minutes: i64) -> String {
    format!("{{ jobThroughput(minutes: {minutes}) {{ minute succeeded failed dead }} }}")
}

async fn order(app: &TestApp, f: &Fixture, offer: i64, key: &str) -> Value {
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    place(app, &reseller, order_input(f.customer_a, &[(offer, 1)]), key).await
}

#[tokio::test]
async fn queue_health_counts_open_jobs_by_kind_and_status_and_the_longest_wait() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let empty = app.data(&operator, HEALTH, json!({})).await;
    assert_eq!(empty["queueHealth"], json!({"counts": [], "oldestWaitingSeconds": null}));

    order(&app, &f, f.offers_a[0], "wait-1").await;
    app.advance(chrono::Duration::seconds(30));
    order(&app, &f, f.offers_a[1], "wait-2").await;
    app.advance(chrono::Duration::seconds(60));
    let waiting = app.data(&operator, HEALTH, json!({})).await;
    assert_eq!(
        waiting["queueHealth"],
        json!({"counts": [{"kind": "PROVISIONING", "status": "QUEUED", "count": 2}], "oldestWaitingSeconds": 90})
    );

    assert_eq!(app.run_jobs().await, 2);
    let done = app.data(&operator, HEALTH, json!({})).await;
    assert_eq!(done["queueHealth"], json!({"counts": [], "oldestWaitingSeconds": null}), "finished jobs are not open");
}

#[tokio::test]
async fn job_throughput_counts_finished_jobs_per_minute_by_outcome() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    // 09:00 — one job succeeds (the sandbox vendor).
    order(&app, &f, f.offers_a[0], "ok").await;
    assert_eq!(app.run_jobs().await, 1);
    // 09:02 — vendor B answers 500 to every call (the job goes DEAD after its four attempts)
    // and then 422 (the next job FAILS at once).
    app.advance(chrono::Duration::minutes(2));
    let vendor = FakeVendor::start(Script::Always(500, "down")).await;
    app.data(
        &operator,
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": vendor.url(), "secret": SECRET}}),
    )
    .await;
    order(&app, &f, f.offer_b, "dead").await;
    assert_eq!(app.run_jobs().await, 4);
    vendor.set_script(Script::Always(422, "refused"));
    order(&app, &f, f.offer_b, "failed").await;
    assert_eq!(app.run_jobs().await, 1);
    app.advance(chrono::Duration::seconds(30));

    let series = app.data(&operator, &throughput(4), json!({})).await["jobThroughput"].clone();
    let minute = |m: u32, s: i64, f: i64, d: i64| json!({"minute": format!("2026-11-02T08:{m:02}:00+00:00"), "succeeded": s, "failed": f, "dead": d});
    let at = |m: u32, s: i64, f: i64, d: i64| json!({"minute": format!("2026-11-02T09:{m:02}:00+00:00"), "succeeded": s, "failed": f, "dead": d});
    assert_eq!(series, json!([minute(59, 0, 0, 0), at(0, 1, 0, 0), at(1, 0, 0, 0), at(2, 0, 1, 1)]));
    // The window's edge: over the last two minutes, the 09:00 job is left out.
    let last_two = app.data(&operator, &throughput(2), json!({})).await["jobThroughput"].clone();
    assert_eq!(last_two, json!([at(1, 0, 0, 0), at(2, 0, 1, 1)]));
    // Sixty minutes by default, the current one last.
    let hour = app.data(&operator, "{ jobThroughput { minute } }", json!({})).await["jobThroughput"].clone();
    assert_eq!(hour.as_array().map(Vec::len), Some(60));
    assert_eq!(hour[59]["minute"], "2026-11-02T09:02:00+00:00");

    for bad in [0, -1, 1441] {
        assert_eq!(app.error_code(Some(&operator), &throughput(bad), json!({})).await, "BAD_USER_INPUT", "{bad}");
    }
}

#[tokio::test]
async fn the_machinery_is_the_operators_alone_and_recent_orders_are_the_callers_newest_first() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    let reseller_a = app.token(Role::Reseller, Some(f.reseller_a));
    let reseller_b = app.token(Role::Reseller, Some(f.reseller_b));
    for token in
        [&reseller_a, &app.token(Role::Customer, Some(f.customer_a)), &app.token(Role::Vendor, Some(f.vendor_a))]
    {
        for query in [HEALTH, &throughput(60), "{ billingRuns { id } }"] {
            assert_eq!(app.error_code(Some(token), query, json!({})).await, "FORBIDDEN", "{query}");
        }
    }

    // Billing runs, newest first.
    for period in ["2026-10", "2026-11"] {
        app.data(&operator, "mutation($p: String!) { runBilling(period: $p) { period } }", json!({"p": period})).await;
    }
    let runs = app.data(&operator, "{ billingRuns(first: 5) { period status finishedAt } }", json!({})).await;
    let periods: Vec<&str> =
        runs["billingRuns"].as_array().unwrap().iter().filter_map(|r| r["period"].as_str()).collect();
    assert_eq!(periods, ["2026-11", "2026-10"]);
    assert_eq!(runs["billingRuns"][0]["status"], "COMPLETED");
    let one = app.data(&operator, "{ billingRuns(first: 1) { period } }", json!({})).await;
    assert_eq!(one["billingRuns"], json!([{"period": "2026-11"}]));

    // Recent orders: the caller's own, newest first.
    let first = order(&app, &f, f.offers_a[0], "first").await["order"]["id"].clone();
    let second = order(&app, &f, f.offers_a[1], "second").await["order"]["id"].clone();
    let other =
        place(&app, &reseller_b, order_input(f.customer_b, &[(f.offer_b, 1)]), "other").await["order"]["id"].clone();
    let recent = |token: String| {
        let app = &app;
        async move {
            let data = app.data(&token, "{ recentOrders(first: 10) { id } }", json!({})).await;
            data["recentOrders"].as_array().unwrap().iter().map(|o| o["id"].clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(recent(reseller_a.clone()).await, [second.clone(), first.clone()]);
    assert_eq!(recent(operator.clone()).await, [other.clone(), second.clone(), first]);
    assert_eq!(recent(reseller_b.clone()).await, [other]);
    let newest = app.data(&operator, "{ recentOrders(first: 1) { id } }", json!({})).await;
    assert_eq!(newest["recentOrders"].as_array().map(Vec::len), Some(1));
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    assert_eq!(app.error_code(Some(&vendor), "{ recentOrders { id } }", json!({})).await, "FORBIDDEN");
}

#[tokio::test]
async fn invoices_and_statement_imports_page_newest_first_when_asked() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.operator();
    for (key, offer) in [("a", f.offers_a[0]), ("b", f.offers_a[1])] {
        order(&app, &f, offer, key).await;
    }
    app.run_jobs().await;
    app.data(&operator, "mutation { runBilling(period: \"2026-11\") { period } }", json!({})).await;
    let page = |newest: bool, after: Option<String>| {
        let app = &app;
        let operator = operator.clone();
        async move {
            let data = app
                .data(
                    &operator,
                    "query($n: Boolean!, $a: String) { invoices(first: 1, after: $a, newestFirst: $n) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } }",
                    json!({"n": newest, "a": after}),
                )
                .await;
            data["invoices"].clone()
        }
    };
    let all: Vec<i64> = {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let p = page(false, after).await;
            ids.push(p["nodes"][0]["id"].as_str().unwrap().parse::<i64>().unwrap());
            if p["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = p["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        ids
    };
    assert!(all.len() >= 2, "{all:?}");
    let mut newest = Vec::new();
    let mut after = None;
    loop {
        let p = page(true, after).await;
        assert_eq!(p["totalCount"], json!(all.len()));
        newest.push(p["nodes"][0]["id"].as_str().unwrap().parse::<i64>().unwrap());
        if p["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = p["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(newest, reversed, "newest first walks the same invoices backwards");
    let imports =
        app.data(&operator, "{ statementImports(first: 5, newestFirst: true) { totalCount } }", json!({})).await;
    assert_eq!(imports["statementImports"]["totalCount"], 0);
}
