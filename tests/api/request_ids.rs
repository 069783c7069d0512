//! #11, request ids and logs: every response carries `X-Request-Id` (the caller's when sane,
//! else a fresh one); with `SWITCHYARD_LOG_FORMAT=json` a real process logs JSON lines, and
//! the lines of a request carry its id and the trace id of its W3C `traceparent`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::processes::Process;

fn id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_response_carries_the_callers_request_id_or_a_fresh_one() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let body = json!({"query": "{ __typename }"});
    let given = app.client.post(&url).header("x-request-id", "order-42/retry-1").json(&body).send().await.unwrap();
    assert_eq!(id_of(&given), "order-42/retry-1");
    let (first, second) = (
        app.client.post(&url).json(&body).send().await.unwrap(),
        app.client.post(&url).json(&body).send().await.unwrap(),
    );
    assert!(generated(&id_of(&first)) && id_of(&first) != id_of(&second), "{} {}", id_of(&first), id_of(&second));
    // One that cannot be logged or echoed safely is replaced.
    for bad in ["has spaces", &"x".repeat(129)] {
        let response = app.client.post(&url).header("x-request-id", bad).json(&body).send().await.unwrap();
        assert!(generated(&id_of(&response)), "{bad} → {}", id_of(&response));
    }
    // Every route, refusals too.
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert!(generated(&id_of(&health)));
    let refused = app.client.post(&url).bearer_auth("not-a-token").json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(generated(&id_of(&refused)));
}

#[tokio::test]
async fn json_logs_name_the_request_id_and_trace_id_of_each_request() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("switchyard-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stderr.log");
    let logs = std::fs::File::create(&path).unwrap();
    let env = [("SWITCHYARD_LOG_FORMAT", "json"), ("RUST_LOG", "info,sqlx=warn")];
    let mut process = Process::start_logging("serve", app.database_url(), &env, logs.into()).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/graphql", process.address))
        .header("x-request-id", "checkout-7")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&response), "checkout-7");
    process.signal("TERM");
    process.wait_exit(Duration::from_secs(20)).await.expect("the process did not exit");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(lines.len() > 2, "{text}");
    let served = lines
        .iter()
        .find(|l| l["message"] == "request served" && l["span"]["request_id"] == "checkout-7")
        .unwrap_or_else(|| panic!("no access line of the request: {text}"));
    let span = &served["span"];
    assert_eq!(span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!((span["method"].as_str(), span["path"].as_str()), (Some("POST"), Some("/graphql")));
    assert_eq!(served["status"].as_u64(), Some(200));
    assert!(served["level"] == "INFO" && served["timestamp"].is_string(), "{served}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_websocket_connection_logs_under_its_handshakes_request_id() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("switchyard-ws-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stderr.log");
    let logs = std::fs::File::create(&path).unwrap();
    let env = [("SWITCHYARD_LOG_FORMAT", "json"), ("RUST_LOG", "info,sqlx=warn")];
    let mut process = Process::start_logging("serve", app.database_url(), &env, logs.into()).await;
    let mut request = (process.address.replace("http://", "ws://") + "/graphql").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("x-request-id", "live-9".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // No connection_init within the timeout is not waited for: a bad token closes it (4403).
    futures_util::SinkExt::send(
        &mut socket,
        tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}}).to_string().into(),
        ),
    )
    .await
    .unwrap();
    while socket.next().await.is_some_and(|m| m.is_ok()) {}
    process.signal("TERM");
    process.wait_exit(Duration::from_secs(20)).await.expect("the process did not exit");
    let text = std::fs::read_to_string(&path).unwrap();
    let closed = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "websocket closed")
        .unwrap_or_else(|| panic!("no websocket line: {text}"));
    assert_eq!(closed["span"]["request_id"], "live-9", "{closed}");
    assert_eq!(closed["code"], 4403, "{closed}");
    let _ = std::fs::remove_dir_all(&dir);
}
