//! #11, API keys: a reseller's user makes a key (its secret shown once, stored hashed with a
//! visible prefix), the key works as a bearer token on HTTP and on the WebSocket within its
//! scopes, lists show it with its last use, rotation replaces it, revocation refuses it at
//! once, and a key can neither make keys nor reach another organisation's.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, Set};
use serde_json::{Value, json};
use switchyard::domain::{Actor, Role};

use crate::helpers::{Fixture, TestApp, spawn_app};
use crate::live::WsClient;
use crate::orders::order_input;

/// A signed-in user's token: a user row of `role` for `org`.
pub(crate) async fn user_token(app: &TestApp, email: &str, role: Role, org: Option<i64>) -> String {
    let now = Utc::now();
    let user = entity::user::ActiveModel {
        id: NotSet,
        email: Set(email.into()),
        display_name: Set(email.into()),
        password_hash: Set("unused".into()),
        role: Set(role),
        organization_id: Set(org),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.domain.db)
    .await
    .unwrap();
    let actor = Actor::from_role(Some(user.id), role, org).unwrap();
    app.state.auth.issue(&actor, Duration::from_secs(3600)).unwrap()
}

const CREATE: &str = "mutation($n: String!, $s: [String!]!) { createApiKey(name: $n, scopes: $s) { secret key { id name prefix scopes userId lastUsedAt revokedAt } } }";

pub(crate) async fn create(app: &TestApp, token: &str, scopes: &[&str]) -> (String, Value) {
    let data = app.data(token, CREATE, json!({"n": "storefront", "s": scopes})).await;
    let issued = &data["createApiKey"];
    (issued["secret"].as_str().unwrap().to_owned(), issued["key"].clone())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_reseller_key_acts_within_its_scopes_until_it_is_revoked() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let rita = user_token(&app, "rita@a.test", Role::Reseller, Some(f.reseller_a)).await;
    let (secret, key) = create(&app, &rita, &["catalog:read", "orders:write"]).await;
    let prefix = key["prefix"].as_str().unwrap();
    assert!(prefix.starts_with("sy_") && prefix.len() == 11 && secret.starts_with(&format!("{prefix}_")), "{key}");
    assert_eq!(key["scopes"], json!(["catalog:read", "orders:write"]));
    // Stored hashed: the secret is nowhere in the database.
    let row = entity::api_key::Entity::find().one(&app.domain.db).await.unwrap().unwrap();
    assert_ne!(row.key_hash, secret);
    assert!(!row.key_hash.contains(&secret[prefix.len() + 1..]));

    // Within its scopes, as Rita's reseller.
    let data = app.data(&secret, "{ me { role organizationId } products(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(data["me"]["organizationId"], f.reseller_a.to_string());
    let input = order_input(f.customer_a, &[(f.offers_a[0], 1)]);
    let place = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i, idempotencyKey: \"k\") { order { id } } }";
    let placed = app.data(&secret, place, json!({"i": input})).await;
    assert!(placed["placeOrder"]["order"]["id"].is_string(), "{placed}");
    // Nested, another area's objects are refused field by field: the order is seen, its
    // customer and subscriptions are not (no customers:write, no subscriptions:write).
    let nested = "{ orders(first: 5) { nodes { id customer { name } lines { offer { name } subscription { id } } } } }";
    let (_, body) = app.post(Some(&secret), nested, json!({})).await;
    let order = &body["data"]["orders"]["nodes"][0];
    assert!(order["id"].is_string(), "{body}");
    assert_eq!(order["customer"], Value::Null, "{body}");
    assert!(order["lines"][0]["offer"]["name"].is_string(), "{body}");
    assert_eq!(order["lines"][0]["subscription"], Value::Null, "{body}");
    let refusals: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(refusals.iter().any(|m| m.contains("customers:write")), "{body}");
    assert!(refusals.iter().any(|m| m.contains("subscriptions:write")), "{body}");
    assert!(body["errors"].as_array().unwrap().iter().all(|e| e["extensions"]["code"] == "FORBIDDEN"), "{body}");
    // What the key did is audited with the key.
    let through_key = entity::audit_log::Entity::find()
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.action == "placeOrder")
        .unwrap();
    assert_eq!(through_key.actor_api_key_id.map(|id| id.to_string()), key["id"].as_str().map(str::to_owned));
    // Past them: refused before anything runs, naming the scope.
    let (_, body) = app.post(Some(&secret), "{ invoices(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("billing:read"), "{body}");
    // A fragment does not hide a field.
    let (_, body) = app
        .post(Some(&secret), "query { ...F } fragment F on Query { customers(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // A key cannot make keys, nor list them.
    let (_, body) = app.post(Some(&secret), CREATE, json!({"n": "more", "s": ["catalog:read"]})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // Nor print invoices.
    let status = app
        .client
        .get(format!("{}/invoices.csv?period=2026-12", app.address))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);

    // On the WebSocket too, within its scopes.
    let mut live = WsClient::init(&app, &secret).await;
    live.subscribe("p", "subscription { provisioningStatus { subscriptionId } }", json!({})).await;
    let refused = live.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    // Another user of the same reseller may revoke Rita's key but not rotate it (a secret
    // acting as Rita would be handed to someone else).
    let colleague = user_token(&app, "carl@a.test", Role::Reseller, Some(f.reseller_a)).await;
    let rotate = "mutation($id: ID!) { rotateApiKey(id: $id) { secret } }";
    let (_, body) = app.post(Some(&colleague), rotate, json!({"id": key["id"]})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // Listed with its last use; another reseller's user does not see it, nor revoke it.
    let listed = app.data(&rita, "{ apiKeys { id prefix lastUsedAt revokedAt } }", json!({})).await;
    assert_eq!(listed["apiKeys"][0]["prefix"], prefix);
    assert!(listed["apiKeys"][0]["lastUsedAt"].is_string(), "{listed}");
    let other = user_token(&app, "otto@b.test", Role::Reseller, Some(f.reseller_b)).await;
    assert_eq!(app.data(&other, "{ apiKeys { id } }", json!({})).await["apiKeys"], json!([]));
    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }";
    let (_, body) = app.post(Some(&other), revoke, json!({"id": key["id"]})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Rotated: the old secret is refused — on the open WebSocket too, at its next subscribe —
    // and the new one works with the same scopes.
    let rotated = app
        .data(&rita, "mutation($id: ID!) { rotateApiKey(id: $id) { secret key { scopes } } }", json!({"id": key["id"]}))
        .await;
    let new_secret = rotated["rotateApiKey"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["rotateApiKey"]["key"]["scopes"], json!(["catalog:read", "orders:write"]));
    let (status, body) = app.post(Some(&secret), "{ me { role } }", json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    live.subscribe("o", "subscription { orderStatus(orderId: \"1\") { status } }", json!({})).await;
    assert_eq!(live.close_code().await, 4403);
    assert_eq!(app.data(&new_secret, "{ me { role } }", json!({})).await["me"]["role"], "RESELLER");

    // Revoked: refused at once; a secret with a known prefix but wrong rest is refused too.
    let new_id = app.data(&rita, "{ apiKeys { id revokedAt } }", json!({})).await["apiKeys"][0]["id"].clone();
    let revoked = app.data(&rita, revoke, json!({"id": new_id})).await;
    assert!(revoked["revokeApiKey"]["revokedAt"].is_string());
    let (status, _) = app.post(Some(&new_secret), "{ me { role } }", json!({})).await;
    assert_eq!(status, 401);
    let forged = format!("{}_{}", &new_secret[..11], "a".repeat(40));
    let (status, _) = app.post(Some(&forged), "{ me { role } }", json!({})).await;
    assert_eq!(status, 401);

    // Each action is in the audit log.
    let actions: Vec<String> = entity::audit_log::Entity::find()
        .all(&app.domain.db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.contains("ApiKey"))
        .collect();
    assert_eq!(actions, ["createApiKey", "rotateApiKey", "revokeApiKey"]);
}

#[tokio::test]
async fn keys_need_known_scopes_and_a_signed_in_user() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let rita = user_token(&app, "rita@a.test", Role::Reseller, Some(f.reseller_a)).await;
    for scopes in [json!(["catalog:read", "root"]), json!([])] {
        let (_, body) = app.post(Some(&rita), CREATE, json!({"n": "x", "s": scopes})).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    // Operator scopes are the operator's; customers and vendors make no keys.
    let (_, body) = app.post(Some(&rita), CREATE, json!({"n": "x", "s": ["billing:write"]})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let customer = user_token(&app, "cora@c.test", Role::Customer, Some(f.customer_a)).await;
    let (_, body) = app.post(Some(&customer), CREATE, json!({"n": "x", "s": ["catalog:read"]})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // A development token names no user: it cannot own a key.
    let dev = app.token(Role::Reseller, Some(f.reseller_a));
    let (_, body) = app.post(Some(&dev), CREATE, json!({"n": "x", "s": ["catalog:read"]})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}
