//! Live status over WebSocket with real graphql-transport-ws (and legacy graphql-ws)
//! clients: event order, tenant isolation, protocol close codes, token expiry.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchyard::domain::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Fixture, TestApp, spawn, spawn_app};
use crate::orders::{order_input, place};

pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, protocol: &str) -> Self {
        Self::connect_to(&app.address, protocol).await
    }

    /// Connects to the server at `address` (`http://host:port`).
    pub async fn connect_to(address: &str, protocol: &str) -> Self {
        let url = address.replace("http://", "ws://") + "/graphql";
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Self { stream }
    }

    /// Connects and completes `connection_init` with `token`.
    pub async fn init(app: &TestApp, token: &str) -> Self {
        Self::init_at(&app.address, token).await
    }

    /// [`WsClient::init`] for the server at `address`.
    pub async fn init_at(address: &str, token: &str) -> Self {
        let mut client = Self::connect_to(address, "graphql-transport-ws").await;
        client.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})).await;
        assert_eq!(client.next().await.unwrap()["type"], "connection_ack");
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.stream.send(Message::Text(message.to_string().into())).await.unwrap();
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})).await;
    }

    /// The next message's text as it came, or None when nothing came within `wait`.
    pub async fn next_text_within(&mut self, wait: Duration) -> Option<String> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await.ok()? {
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => panic!("the server closed the connection"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON message within 5 s; `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(Duration::from_secs(5)).await.expect("no message within 5 s")
    }

    /// The next JSON message, `Ok(None)` on close, `Err` when nothing came in time.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(Message::Text(text)))) => return Ok(Some(serde_json::from_str(&text).unwrap())),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return Ok(None),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Reads until the server closes; the close code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await.expect("no close within 5 s") {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("{error}"),
            }
        }
    }
}

const PROVISIONING: &str = "subscription($c: ID) { provisioningStatus(customerId: $c) { eventId kind status orderId subscriptionId customerId } }";

#[tokio::test]
async fn a_dashboard_sees_its_order_provision_and_nothing_of_other_tenants() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let token_a = app.token(Role::Reseller, Some(f.reseller_a));
    let token_b = app.token(Role::Reseller, Some(f.reseller_b));
    let mut a = WsClient::init(&app, &token_a).await;
    a.subscribe("1", PROVISIONING, json!({"c": f.customer_a.to_string()})).await;
    let mut b = WsClient::init(&app, &token_b).await;
    b.subscribe("1", PROVISIONING, json!({"c": f.customer_b.to_string()})).await;
    // B asking for A's customer is refused like a missing customer.
    b.subscribe("2", PROVISIONING, json!({"c": f.customer_a.to_string()})).await;
    let refused = b.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "2");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let placed = place(&app, &token_a, order_input(f.customer_a, &[(f.offers_a[0], 2)]), "live").await;
    let order_id = placed["order"]["id"].clone();
    app.run_jobs().await;
    let mut statuses = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while statuses.len() < 3 {
        let message = a.next().await.unwrap();
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["provisioningStatus"];
        assert_eq!(event["orderId"], order_id);
        assert!(ids.insert(event["eventId"].as_str().unwrap().to_owned()), "event ids are unique");
        statuses.push(event["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["PENDING", "PROVISIONING", "ACTIVE"]);
    assert_eq!(b.next_within(Duration::from_millis(300)).await, Err(()), "B receives nothing of A's");

    // An order's own status stream.
    let mut watcher = WsClient::init(&app, &token_a).await;
    watcher
        .subscribe("o", "subscription($o: ID!) { orderStatus(orderId: $o) { status } }", json!({"o": order_id}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = place(&app, &token_a, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "live-2").await;
    app.run_jobs().await;
    assert_eq!(watcher.next_within(Duration::from_millis(300)).await, Err(()), "another order's changes are not sent");
    assert_ne!(second["order"]["id"], order_id);

    // A customer's subscription changes, seen by the customer itself.
    let customer = app.token(Role::Customer, Some(f.customer_a));
    let mut own = WsClient::init(&app, &customer).await;
    own.subscribe(
        "s",
        "subscription($c: ID!) { subscriptionChanged(customerId: $c) { status subscriptionId quantity } }",
        json!({"c": f.customer_a.to_string()}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let subscription = placed["order"]["lines"][0]["subscription"]["id"].clone();
    app.data(
        &token_a,
        "mutation($id: ID!) { suspendSubscription(id: $id, idempotencyKey: \"s\") { replayed } }",
        json!({"id": subscription}),
    )
    .await;
    let message = own.next().await.unwrap();
    assert_eq!(
        message["payload"]["data"]["subscriptionChanged"],
        json!({"status": "SUSPENDED", "subscriptionId": subscription, "quantity": 2})
    );
}

/// Every way a client may hand its token to `connection_init` is accepted: as an
/// `Authorization` value or bare, under `authorization`, `Authorization` or `token`.
#[tokio::test]
async fn connection_init_accepts_the_token_in_every_documented_form() {
    let app = spawn_app().await;
    let token = app.operator();
    for payload in [
        json!({"authorization": format!("Bearer {token}")}),
        json!({"Authorization": format!("bearer {token}")}),
        json!({"authorization": token}),
        json!({"token": token}),
        json!({"token": format!("Bearer {token}")}),
    ] {
        let mut client = WsClient::connect(&app, "graphql-transport-ws").await;
        client.send(json!({"type": "connection_init", "payload": payload})).await;
        assert_eq!(client.next().await.unwrap()["type"], "connection_ack", "{payload}");
    }
}

#[tokio::test]
async fn protocol_violations_close_with_the_specified_codes() {
    let app = spawn(|config| config.ws_init_timeout = Duration::from_millis(200), 0, None).await;
    let token = app.operator();

    let mut silent = WsClient::connect(&app, "graphql-transport-ws").await;
    assert_eq!(silent.close_code().await, 4408, "no connection_init in time");

    let mut eager = WsClient::connect(&app, "graphql-transport-ws").await;
    eager.subscribe("1", "subscription { provisioningStatus { status } }", json!({})).await;
    assert_eq!(eager.close_code().await, 4401, "subscribe before init");

    let mut forged = WsClient::connect(&app, "graphql-transport-ws").await;
    forged.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer not-a-token"}})).await;
    assert_eq!(forged.close_code().await, 4403, "bad token");

    let mut twice = WsClient::init(&app, &token).await;
    twice.send(json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(twice.close_code().await, 4429);

    let mut duplicate = WsClient::init(&app, &token).await;
    duplicate.subscribe("same", "subscription { provisioningStatus { status } }", json!({})).await;
    duplicate.subscribe("same", "subscription { provisioningStatus { status } }", json!({})).await;
    assert_eq!(duplicate.close_code().await, 4409);

    let mut client = WsClient::init(&app, &token).await;
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await.unwrap()["type"], "pong");
    for id in 0..20 {
        client.subscribe(&id.to_string(), "subscription { provisioningStatus { status } }", json!({})).await;
    }
    client.subscribe("one-too-many", "subscription { provisioningStatus { status } }", json!({})).await;
    let refused = client.next().await.unwrap();
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["id"], "one-too-many");
    client.send(json!({"type": "bogus"})).await;
    assert_eq!(client.close_code().await, 4400);
}

#[tokio::test]
async fn streams_end_when_the_token_expires() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let short = app
        .state
        .auth
        .issue(
            &switchyard::domain::Actor::from_role(None, Role::Reseller, Some(f.reseller_a)).unwrap(),
            Duration::from_secs(2),
        )
        .unwrap();
    let mut client = WsClient::init(&app, &short).await;
    client.subscribe("1", PROVISIONING, json!({"c": f.customer_a.to_string()})).await;
    let complete = client.next_within(Duration::from_secs(4)).await.unwrap().unwrap();
    assert_eq!(complete, json!({"type": "complete", "id": "1"}));
    assert_eq!(client.close_code().await, 4403);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let token = app.token(Role::Reseller, Some(f.reseller_a));
    let mut client = WsClient::connect(&app, "graphql-ws").await;
    client.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})).await;
    assert_eq!(client.next().await.unwrap()["type"], "connection_ack");
    client.send(json!({"id": "1", "type": "start", "payload": {"query": PROVISIONING, "variables": {"c": f.customer_a.to_string()}}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    place(&app, &token, order_input(f.customer_a, &[(f.offers_a[0], 1)]), "legacy").await;
    let message = client.next().await.unwrap();
    assert_eq!(message["type"], "data");
    assert_eq!(message["payload"]["data"]["provisioningStatus"]["status"], "PENDING");
    client.send(json!({"id": "1", "type": "stop"})).await;
    assert_eq!(client.next().await.unwrap(), json!({"type": "complete", "id": "1"}));
}

/// A frame larger than the server takes (64 KiB) closes with 1009 "message too big", not
/// without a code (issue #9, item 20).
#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let app = spawn_app().await;
    let mut client = WsClient::init(&app, &app.operator()).await;
    client.send(json!({"type": "ping", "payload": {"padding": "x".repeat(70 * 1024)}})).await;
    assert_eq!(client.close_code().await, 1009);
}

/// A subscription's messages keep the fields in the order it asked for them (GraphQL's
/// response is an ordered map), as HTTP answers do: they are serialized once, straight from
/// the executor's values, not through a JSON tree that sorts its keys.
#[tokio::test]
async fn subscription_messages_keep_the_fields_in_the_order_asked() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let token = app.token(Role::Reseller, Some(f.reseller_a));
    let mut client = WsClient::init(&app, &token).await;
    client
        .subscribe(
            "1",
            "subscription($c: ID) { provisioningStatus(customerId: $c) { zebra: status apple: status } }",
            json!({"c": f.customer_a.to_string()}),
        )
        .await;
    // The subscription listens once the server has read its customer: order until it hears.
    let mut heard = None;
    for attempt in 0..10 {
        place(&app, &token, order_input(f.customer_a, &[(f.offers_a[0], 1)]), &format!("ordered-{attempt}")).await;
        heard = client.next_text_within(Duration::from_secs(1)).await;
        if heard.is_some() {
            break;
        }
    }
    let text = heard.expect("no message for ten orders");
    assert!(text.contains("\"next\""), "{text}");
    let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} in {text}"));
    assert!(at("type") < at("id") && at("id") < at("payload"), "{text}");
    assert!(at("zebra") < at("apple"), "{text}");
}

/// The cursor a dashboard starts from (`liveCursor`), read as `token`.
async fn live_cursor(app: &TestApp, token: &str) -> String {
    app.data(token, "{ liveCursor }", json!({})).await["liveCursor"].as_str().unwrap().to_owned()
}

/// Dashboards asking the same operation share one rendering of each event (#13): twelve
/// operator dashboards and a reseller's, three orders, six renderings (one per event for the
/// operator's dashboards, one per event for the reseller's). The operator's dashboards differ
/// in what only decides which events come (`after`, `kinds`), as real dashboards do, and
/// still share. Each dashboard receives each event it may see once, under its own operation
/// id; another reseller's hears nothing.
#[tokio::test]
async fn an_event_is_rendered_once_for_all_the_dashboards_asking_the_same() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let operator = app.token(Role::Operator, None);
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let other = app.token(Role::Reseller, Some(f.reseller_b));
    const FEED: &str = "subscription($after: String, $kinds: [LiveEventKind!]) { liveEvents(after: $after, kinds: $kinds) { eventId kind orderId detail } }";
    // Subscribed after this cursor: nothing placed after it is missed, however late the
    // server registers a stream.
    let after = live_cursor(&app, &operator).await;
    let mut dashboards = Vec::new();
    for index in 0..12 {
        let kinds =
            if index % 2 == 0 { json!(["ORDER_PLACED"]) } else { json!(["ORDER_PLACED", "WEBHOOK_ENDPOINT_DISABLED"]) };
        let mut client = WsClient::init(&app, &operator).await;
        client.subscribe(&format!("op-{index}"), FEED, json!({"after": after, "kinds": kinds})).await;
        dashboards.push((format!("op-{index}"), client));
    }
    let mut own = WsClient::init(&app, &reseller).await;
    own.subscribe("mine", FEED, json!({"after": after, "kinds": ["ORDER_PLACED"]})).await;
    dashboards.push(("mine".to_owned(), own));
    let mut elsewhere = WsClient::init(&app, &other).await;
    elsewhere.subscribe("theirs", FEED, json!({"after": after, "kinds": ["ORDER_PLACED"]})).await;

    let before = app.state.live.rendered();
    let mut orders = Vec::new();
    for index in 0..3 {
        let placed =
            place(&app, &reseller, order_input(f.customer_a, &[(f.offers_a[0], 1)]), &format!("shared-{index}")).await;
        orders.push(placed["order"]["id"].clone());
    }
    for (id, client) in &mut dashboards {
        let mut heard = Vec::new();
        for _ in 0..3 {
            let text = client.next_text_within(Duration::from_secs(5)).await.expect("an event within 5 s");
            let message: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(message["type"], "next", "{text}");
            assert_eq!(message["id"], id.as_str(), "{text}");
            heard.push(message["payload"]["data"]["liveEvents"]["orderId"].clone());
        }
        assert_eq!(heard, orders, "{id} hears each order once, in order");
        assert_eq!(client.next_within(Duration::from_millis(100)).await, Err(()), "{id} hears nothing more");
    }
    assert_eq!(elsewhere.next_within(Duration::from_millis(100)).await, Err(()), "another reseller hears nothing");
    assert_eq!(
        app.state.live.rendered() - before,
        6,
        "three events, rendered once for the operator's twelve dashboards and once for the reseller's"
    );
}

/// A payload is shared only by callers who read it alike: the operator's dashboards get a
/// vendor's raw error, the reseller's its reason, from the same operation on the same event.
#[tokio::test]
async fn dashboards_of_other_roles_never_share_a_payload() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    // Nothing listens there: provisioning at vendor B fails with an error naming the URL.
    app.data(
        &app.operator(),
        "mutation($id: ID!, $settings: JSON!) { updateVendor(id: $id, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"id": f.vendor_b.to_string(), "settings": {"url": "http://127.0.0.1:9/provision?key=SECRET", "secret": "s"}}),
    )
    .await;
    let operator = app.operator();
    let reseller = app.token(Role::Reseller, Some(f.reseller_b));
    const FEED: &str = "subscription($after: String) { liveEvents(after: $after, kinds: [PROVISIONING_STATUS_CHANGED]) { status detail } }";
    let after = live_cursor(&app, &operator).await;
    let mut dashboards = Vec::new();
    for (index, token) in [&operator, &reseller, &operator, &reseller].into_iter().enumerate() {
        let mut client = WsClient::init(&app, token).await;
        client.subscribe("1", FEED, json!({"after": after})).await;
        dashboards.push((index % 2 == 0, client));
    }
    place(&app, &reseller, order_input(f.customer_b, &[(f.offer_b, 2)]), "failing").await;
    app.run_jobs().await;
    for (is_operator, client) in &mut dashboards {
        let detail = loop {
            let message = client.next().await.unwrap();
            assert_eq!(message["type"], "next", "{message}");
            if let Some(detail) = message["payload"]["data"]["liveEvents"]["detail"].as_str() {
                break detail.to_owned();
            }
        };
        if *is_operator {
            assert!(detail.contains("127.0.0.1:9"), "the operator reads the vendor's error: {detail}");
        } else {
            assert!(!detail.contains("127.0.0.1") && !detail.contains("SECRET"), "the reseller reads {detail}");
        }
    }
}

/// A subscription selects exactly one root field (GraphQL's "single root field" rule): two,
/// or `__typename`, are refused before anything runs.
#[tokio::test]
async fn a_subscription_of_more_than_one_root_field_is_refused() {
    let app = spawn_app().await;
    let mut client = WsClient::init(&app, &app.operator()).await;
    for (id, query) in [
        ("two", "subscription { a: liveEvents { kind } b: liveEvents { status } }"),
        ("typename", "subscription { __typename liveEvents { kind } }"),
        (
            "fragment",
            "subscription { ...F liveEvents { kind } } fragment F on SubscriptionRoot { liveEvents { status } }",
        ),
        ("none", "subscription { __typename }"),
        // async-graphql would open no stream for a root field inside a fragment.
        ("inline", "subscription { ... on SubscriptionRoot { liveEvents { kind } } }"),
    ] {
        client.subscribe(id, query, json!({})).await;
        let refused = client.next().await.unwrap();
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["id"], id, "{refused}");
        assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    }
}

/// A document of fragments nested in fragments, thousands of levels deep in one 64 KiB
/// message, is refused with an error; reading it does not overflow the server's stack
/// (async-graphql limits a document's depth only after the server has read it).
#[tokio::test]
async fn a_document_nested_thousands_deep_is_refused_without_harm() {
    let app = spawn_app().await;
    let mut client = WsClient::init(&app, &app.operator()).await;
    let mut document = String::from("subscription { liveEvents { ...F0 } }");
    let mut depth = 0;
    for index in 0.. {
        let fragment =
            format!(" fragment F{index} on LiveEvent {{ {}...F{} {} }}", "a{".repeat(50), index + 1, "}".repeat(50));
        if document.len() + fragment.len() > 60 * 1024 {
            break;
        }
        document.push_str(&fragment);
        depth += 50;
    }
    assert!(depth > 12_000, "{depth} levels");
    // It parses (each definition is within the parser's own nesting limit): the server reads it.
    assert!(async_graphql::parser::parse_query(&document).is_ok());
    client.subscribe("deep", &document, json!({})).await;
    let refused = client.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "deep");
    // The server is still there.
    client.subscribe("after", "subscription { liveEvents { kind } }", json!({})).await;
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await.unwrap()["type"], "pong");
}
