//! #11, CORS: off by default (no CORS header, so a browser keeps other sites' pages out);
//! with `SWITCHYARD_CORS_ORIGINS`, the origins listed — and only they — get preflights
//! answered and responses they can read. A malformed origin is refused at startup.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

const SHOP: &str = "https://shop.example";

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}/graphql", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

fn allowed(response: &reqwest::Response) -> Option<String> {
    response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = spawn_app().await;
    assert_eq!(allowed(&preflight(&app, SHOP).await), None);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", SHOP)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(allowed(&response), None);
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_and_others_do_not() {
    let app =
        spawn_app_with(|config| config.cors_origins = vec![SHOP.to_owned(), "http://localhost:5173".to_owned()]).await;
    let answered = preflight(&app, SHOP).await;
    assert!(answered.status().is_success(), "{}", answered.status());
    assert_eq!(allowed(&answered).as_deref(), Some(SHOP));
    let header =
        |name: &str| answered.headers().get(name).map(|v| v.to_str().unwrap().to_ascii_lowercase()).unwrap_or_default();
    assert!(header("access-control-allow-methods").contains("post"), "{:?}", answered.headers());
    assert!(header("access-control-allow-headers").contains("authorization"), "{:?}", answered.headers());
    assert_eq!(header("access-control-max-age"), "600");
    // The request itself: readable by the page, with the headers it may read named.
    let token = app.operator();
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", SHOP)
        .bearer_auth(&token)
        .json(&json!({"query": "{ me { role } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&response).as_deref(), Some(SHOP));
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("ratelimit") && exposed.contains("x-request-id"), "{exposed}");
    // Another origin: no allowance, so its browser refuses the page the answer.
    let refused = preflight(&app, "https://evil.example").await;
    assert_eq!(allowed(&refused), None);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://evil.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&response), None);
}

#[test]
fn a_malformed_origin_is_refused_when_configured() {
    use switchyard::config::parse_origin;
    assert_eq!(parse_origin(" https://shop.example ").unwrap(), "https://shop.example");
    assert!(parse_origin("http://localhost:5173").is_ok());
    assert!(parse_origin("http://[::1]:8080").is_ok() && parse_origin("http://[::1]").is_ok());
    for bad in [
        "shop.example",
        "https://shop.example/",
        "https://shop.example/path",
        "ftp://shop.example",
        "*",
        "https://user@shop.example",
        "",
    ] {
        assert!(parse_origin(bad).is_err(), "{bad}");
    }
}
