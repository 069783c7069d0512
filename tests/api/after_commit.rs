//! #9.20: a committed write is answered from what it wrote. When the database goes away
//! right after the commit (a proxy cuts every connection once the COMMIT is answered, and
//! refuses new ones), the response still carries the whole payload, with no INTERNAL error
//! on a nested field: the caller must not retry a write that happened because it was told it
//! failed.

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::cut_proxy::CutProxy;
use crate::helpers::{Fixture, TestApp, spawn_on};
use crate::orders::order_input;

const PLACE: &str = "mutation($input: PlaceOrderInput!, $key: String!) {
  placeOrder(input: $input, idempotencyKey: $key) { replayed order { id status currency
    totalWholesale { amount } customer { id name reseller { id name } vendorAccounts { externalId } }
    lines { lineNumber quantity status unitWholesale { amount } offer { sku prices { currency wholesale { amount } } }
            subscription { id status quantity orderId offer { sku } customer { id name }
                           history { kind quantityAfter statusAfter vendorOutcome } } } } } }";

const CHANGE: &str = "mutation($id: ID!, $key: String!) {
  changeSubscriptionQuantity(id: $id, quantity: 7, idempotencyKey: $key) { replayed warnings
    subscription { id status quantity offer { sku prices { currency retail { amount } } }
                   customer { id name reseller { id } vendorAccounts { externalId } } history { kind quantityAfter vendorOutcome } } } }";

/// A server on a throwaway cluster behind a cutting proxy, with the fixture, and a
/// catalog read so that the catalog is cached as it would be in a running server.
async fn server_behind_a_proxy(name: &str) -> (crate::pg_cluster::Cluster, CutProxy, TestApp, Fixture) {
    use sea_orm::ConnectionTrait;
    let cluster = crate::pg_cluster::Cluster::start();
    let admin = switchyard::db::connect(&cluster.url("postgres"), 1).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let proxy = CutProxy::start(cluster.port).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let app = spawn_on(&url, |_| {}).await;
    let f = Fixture::build(&app).await;
    (cluster, proxy, app, f)
}

fn assert_complete(body: &Value) {
    assert!(body.get("errors").is_none(), "errors after the commit: {body}");
}

#[tokio::test]
async fn an_order_committed_before_the_database_goes_away_is_answered_in_full() {
    let (cluster, proxy, app, f) = server_behind_a_proxy("placed").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let input = order_input(f.customer_a, &[(f.offers_a[0], 3), (f.offers_a[1], 2)]);
    proxy.arm();
    let (status, body) = app.post(Some(&reseller), PLACE, json!({"input": input, "key": "cut-1"})).await;
    assert!(proxy.is_cut(), "the proxy never saw the order's commit");
    assert_eq!(status, 200, "{body}");
    assert_complete(&body);
    let order = &body["data"]["placeOrder"]["order"];
    assert_eq!(order["customer"]["name"], "Customer A", "{body}");
    assert_eq!(order["customer"]["reseller"]["id"], f.reseller_a.to_string(), "{body}");
    assert_eq!(order["customer"]["vendorAccounts"][0]["externalId"], "tenant-Customer-A", "{body}");
    assert!(order["lines"][0]["offer"]["prices"].as_array().is_some_and(|p| !p.is_empty()), "{body}");
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2), "{body}");
    for line in order["lines"].as_array().unwrap() {
        let subscription = &line["subscription"];
        assert_eq!(subscription["status"], "PENDING", "{body}");
        assert_eq!(subscription["orderId"], order["id"], "{body}");
        assert_eq!(subscription["offer"]["sku"], line["offer"]["sku"], "{body}");
        assert_eq!(subscription["history"][0]["kind"], "PURCHASE", "{body}");
        assert_eq!(subscription["history"][0]["quantityAfter"], line["quantity"], "{body}");
    }
    // What was answered is what was committed.
    proxy.heal();
    let direct = switchyard::db::connect(&cluster.url("placed"), 1).await.unwrap();
    let stored = entity::order::Entity::find_by_id(order["id"].as_str().unwrap().parse::<i64>().unwrap());
    use sea_orm::EntityTrait;
    assert!(stored.one(&direct).await.unwrap().is_some());
}

#[tokio::test]
async fn a_change_committed_before_the_database_goes_away_is_answered_in_full() {
    let (_cluster, proxy, app, f) = server_behind_a_proxy("changed").await;
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let placed = crate::orders::place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 3)]), "k").await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].clone();
    app.run_jobs().await;
    proxy.arm();
    let (status, body) = app.post(Some(&reseller), CHANGE, json!({"id": subscription, "key": "seven"})).await;
    assert!(proxy.is_cut(), "the proxy never saw the change's commit");
    assert_eq!(status, 200, "{body}");
    assert_complete(&body);
    let changed = &body["data"]["changeSubscriptionQuantity"]["subscription"];
    assert_eq!(changed["quantity"], 7, "{body}");
    assert_eq!(changed["customer"]["name"], "Customer A", "{body}");
    assert_eq!(changed["customer"]["reseller"]["id"], f.reseller_a.to_string(), "{body}");
    assert_eq!(changed["customer"]["vendorAccounts"][0]["externalId"], "tenant-Customer-A", "{body}");
    let history = changed["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["quantityAfter"], 7, "{body}");
    assert_eq!(history.last().unwrap()["vendorOutcome"], "PENDING", "{body}");
}
