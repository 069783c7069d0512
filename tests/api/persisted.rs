//! #11, persisted queries and HTTP caching: Apollo's automatic persisted queries round trip
//! (hash only → PERSISTED_QUERY_NOT_FOUND → document and hash → hash only works), over POST
//! and GET; a catalog GET carries an ETag and `Cache-Control: private` and answers 304 to a
//! matching `If-None-Match`; per-caller data over GET is `no-store`.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Fixture, TestApp, spawn_app};

const CATALOG: &str = "query Catalog { products(first: 2) { totalCount edges { node { name } } } }";

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn post(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response =
        app.client.post(format!("{}/graphql", app.address)).bearer_auth(token).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get(app: &TestApp, token: &str, params: &[(&str, String)], if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/graphql", app.address)).bearer_auth(token).query(params);
    if let Some(tag) = if_none_match {
        request = request.header("If-None-Match", tag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_automatic_persisted_query_round_trips_over_post_and_get() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
    let hash = hex::encode(Sha256::digest(CATALOG.as_bytes()));

    // Unknown: the client is asked for the document.
    let (status, body) =
        post(&app, &reseller, json!({"operationName": "Catalog", "extensions": persisted(&hash)})).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    // A document that is not its hash is refused.
    let wrong = json!({"query": "{ products(first: 1) { totalCount } }", "extensions": persisted(&hash)});
    assert_eq!(post(&app, &reseller, wrong).await.0, 400);
    // Registered with its document, then the hash alone is enough.
    let (_, full) = post(&app, &reseller, json!({"query": CATALOG, "extensions": persisted(&hash)})).await;
    assert!(full["data"]["products"]["totalCount"].as_i64().unwrap() > 0, "{full}");
    let (_, short) = post(&app, &reseller, json!({"operationName": "Catalog", "extensions": persisted(&hash)})).await;
    assert_eq!(short["data"], full["data"]);

    // Over GET, by URL alone: cacheable, with a validator.
    let params = [("operationName", "Catalog".to_owned()), ("extensions", persisted(&hash).to_string())];
    let first = get(&app, &reseller, &params, None).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let cache_control = first.headers()["cache-control"].to_str().unwrap().to_owned();
    // Prices are the caller's organisation's: no shared cache may keep them (unless the
    // deployment says its CDN keys by Authorization: SWITCHYARD_CATALOG_SHARED_CACHE).
    assert!(cache_control.starts_with("private, max-age="), "{cache_control}");
    assert!(first.headers()["vary"].to_str().unwrap().contains("Authorization"));
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["data"], full["data"]);
    // The client has it: 304, no body.
    let again = get(&app, &reseller, &params, Some(&etag)).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    // A stale validator gets the body.
    assert_eq!(get(&app, &reseller, &params, Some("\"stale\"")).await.status(), 200);

    // Per-caller data is never cacheable.
    let mine = get(&app, &reseller, &[("query", "{ customers(first: 1) { totalCount } }".to_owned())], None).await;
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.headers()["cache-control"], "no-store");
    assert!(mine.headers().get("etag").is_none());
}

#[tokio::test]
async fn a_deployment_whose_cdn_keys_by_authorization_may_let_it_share_catalog_pages() {
    let app = crate::helpers::spawn_app_with(|c| c.catalog_shared_cache = true).await;
    let f = Fixture::build(&app).await;
    let reseller = app.token(switchyard::domain::Role::Reseller, Some(f.reseller_a));
    let page = get(&app, &reseller, &[("query", CATALOG.to_owned())], None).await;
    assert_eq!(page.status(), 200);
    let cache_control = page.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache_control.starts_with("public, max-age="), "{cache_control}");
    assert!(page.headers()["vary"].to_str().unwrap().contains("Authorization"));
}
