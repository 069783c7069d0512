//! Authentication: JWT negatives (none, expired, wrong key/audience/issuer, future nbf),
//! anonymous callers, and password login.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{EncodingKey, Header, encode};
use sea_orm::{ActiveModelTrait, NotSet, Set};
use serde_json::{Value, json};
use switchyard::domain::Role;
use switchyard::domain::users::hash_password;

use crate::helpers::{TEST_SECRET, TestApp, spawn_app};

fn claims(overrides: Value) -> Value {
    let now = Utc::now().timestamp();
    let mut claims = json!({"sub": "cli", "iss": "switchyard", "aud": "switchyard-api", "exp": now + 600,
                            "nbf": now - 5, "iat": now, "role": "OPERATOR"});
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

async fn status_and_code(app: &TestApp, token: &str) -> (u16, String) {
    let (status, body) = app.post(Some(token), "{ me { role } }", json!({})).await;
    (status, body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned())
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let good = sign(&claims(json!({})), TEST_SECRET);
    let data = app.data(&good, "{ me { role } }", json!({})).await;
    assert_eq!(data["me"]["role"], "OPERATOR");

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let unsigned = format!("{header}.{payload}.");
    let past = Utc::now().timestamp() - 3600;
    let cases = [
        ("alg none", unsigned),
        ("wrong key", sign(&claims(json!({})), "another-secret-another-secret-another-secret")),
        ("expired", sign(&claims(json!({"exp": past})), TEST_SECRET)),
        ("wrong audience", sign(&claims(json!({"aud": "someone-else"})), TEST_SECRET)),
        ("wrong issuer", sign(&claims(json!({"iss": "evil"})), TEST_SECRET)),
        ("no subject", sign(&claims(json!({"sub": null})), TEST_SECRET)),
        ("no expiry", sign(&claims(json!({"exp": null})), TEST_SECRET)),
        ("not yet valid", sign(&claims(json!({"nbf": Utc::now().timestamp() + 3600})), TEST_SECRET)),
        ("reseller without organization", sign(&claims(json!({"role": "RESELLER"})), TEST_SECRET)),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        assert_eq!(status_and_code(&app, &token).await, (401, "UNAUTHENTICATED".to_owned()), "{name}");
    }
    // A token signed with HS512 is refused even with the right secret: the algorithm is pinned.
    let hs512 = encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &claims(json!({})),
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(status_and_code(&app, &hs512).await.0, 401);
}

#[tokio::test]
async fn anonymous_callers_get_unauthenticated() {
    let app = spawn_app().await;
    for query in [
        "{ me { role } }",
        "{ offers { totalCount } }",
        "{ customers { totalCount } }",
        r#"mutation { createTier(input: {name: "x", markup: "0.1"}) { id } }"#,
    ] {
        let (status, body) = app.post(None, query, json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{query}: {body}");
    }
}

/// Rita, a user of `reseller` with the password "correct horse battery staple".
async fn rita(app: &TestApp, reseller: i64) -> entity::user::Model {
    let now = Utc::now();
    entity::user::ActiveModel {
        id: NotSet,
        email: Set("rita@reseller.test".into()),
        display_name: Set("Rita".into()),
        password_hash: Set(hash_password("correct horse battery staple").unwrap()),
        role: Set(Role::Reseller),
        organization_id: Set(Some(reseller)),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.domain.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn login_issues_a_token_for_the_users_role() {
    let app = spawn_app().await;
    let fixture = crate::helpers::Fixture::build(&app).await;
    rita(&app, fixture.reseller_a).await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token me { role organizationId userId } } }";
    let (_, body) =
        app.post(None, login, json!({"e": "Rita@Reseller.test", "p": "correct horse battery staple"})).await;
    let token = body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    assert_eq!(body["data"]["login"]["me"]["role"], "RESELLER");
    let data = app.data(&token, "{ me { role organizationId } customers { totalCount } }", json!({})).await;
    assert_eq!(data["me"]["organizationId"], fixture.reseller_a.to_string());
    assert_eq!(data["customers"]["totalCount"], 1);

    for (email, password) in [("rita@reseller.test", "wrong"), ("nobody@reseller.test", "correct horse battery staple")]
    {
        let (_, body) = app.post(None, login, json!({"e": email, "p": password})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(body["data"], Value::Null);
    }
}

#[tokio::test]
async fn rs256_keys_sign_and_verify_tokens() {
    use switchyard::auth::AuthKeys;
    use switchyard::config::JwtAlgorithm;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut config = crate::helpers::auth_config();
    config.jwt_algorithm = JwtAlgorithm::Rs256;
    config.jwt_public_key_file = Some(fixtures.join("rsa-public.pem"));
    config.jwt_private_key_file = Some(fixtures.join("rsa-private.pem"));
    let keys = AuthKeys::from_config(&config).unwrap();
    let actor = switchyard::domain::Actor::from_role(None, Role::Operator, None).unwrap();
    let token = keys.issue(&actor, std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(keys.verify(&token).unwrap().actor, actor);
    // The EdDSA-signed token of another deployment is refused.
    config.jwt_algorithm = JwtAlgorithm::EdDsa;
    config.jwt_public_key_file = Some(fixtures.join("ed25519-public.pem"));
    config.jwt_private_key_file = Some(fixtures.join("ed25519-private.pem"));
    let other = AuthKeys::from_config(&config).unwrap().issue(&actor, std::time::Duration::from_secs(60)).unwrap();
    assert!(keys.verify(&other).is_err());
}

#[tokio::test]
async fn eddsa_keys_sign_and_verify_tokens() {
    use switchyard::auth::AuthKeys;
    use switchyard::config::JwtAlgorithm;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut config = crate::helpers::auth_config();
    config.jwt_algorithm = JwtAlgorithm::EdDsa;
    config.jwt_public_key_file = Some(fixtures.join("ed25519-public.pem"));
    config.jwt_private_key_file = Some(fixtures.join("ed25519-private.pem"));
    let keys = AuthKeys::from_config(&config).unwrap();
    let actor = switchyard::domain::Actor::from_role(Some(7), Role::Vendor, Some(3)).unwrap();
    let token = keys.issue(&actor, std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(keys.verify(&token).unwrap().actor, actor);
    // An HS256 token is refused by an EdDSA deployment, even one signed with its public key bytes.
    let public = std::fs::read(fixtures.join("ed25519-public.pem")).unwrap();
    let forged = encode(&Header::default(), &claims(json!({})), &EncodingKey::from_secret(&public)).unwrap();
    assert!(keys.verify(&forged).is_err());
    // Verification alone needs no private key; issuing then fails cleanly.
    config.jwt_private_key_file = None;
    let verify_only = AuthKeys::from_config(&config).unwrap();
    assert!(verify_only.verify(&token).is_ok());
    assert!(verify_only.issue(&actor, std::time::Duration::from_secs(60)).is_err());
}

/// The secret the source used to fall back on when none was configured: public knowledge.
const PUBLISHED_DEVELOPMENT_SECRET: &str = "switchyard-development-secret-do-not-use-in-production";

/// Without SWITCHYARD_JWT_SECRET a server on the embedded database makes a random secret
/// of its own, kept in its data directory (readable by its owner only), and keeps using it;
/// an operator token signed with the secret once published in the source is refused
/// (issue #9, item 17).
#[tokio::test]
async fn without_a_configured_secret_the_embedded_server_keeps_a_random_one_of_its_own() {
    use std::os::unix::fs::PermissionsExt;
    use switchyard::startup::{Application, Overrides, Settings};

    let data_dir =
        std::env::temp_dir().join(format!("switchyard-secret-{}-{}", std::process::id(), rand::random::<u32>()));
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = None;
    settings.database.data_dir = data_dir.clone();
    settings.auth.jwt_secret = None;
    settings.auth.jwt_algorithm = switchyard::config::JwtAlgorithm::Hs256;
    settings.provisioning = crate::helpers::provisioning_config(0);
    let app = Application::build(settings.clone(), Overrides::default()).await.expect("starts without a secret");
    let file = data_dir.join("jwt-secret");
    let kept = std::fs::read_to_string(&file).expect("the secret is kept in the data directory");
    assert!(kept.trim().len() >= 64, "{} characters", kept.trim().len());
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(app.serve(listener).unwrap());
    let client = reqwest::Client::new();
    let me = |token: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body: Value = client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"query": "{ me { role } }"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body
        }
    };
    let forged = me(sign(&claims(json!({})), PUBLISHED_DEVELOPMENT_SECRET)).await;
    assert_eq!(forged["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{forged}");
    let genuine = me(sign(&claims(json!({})), kept.trim())).await;
    assert_eq!(genuine["data"]["me"]["role"], "OPERATOR", "{genuine}");
    // Started again, it keeps the same secret.
    drop(Application::build(settings, Overrides::default()).await.unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Processes sharing a PostgreSQL database must share their secret: without one configured,
/// a server refuses to start (issue #9, item 17).
#[tokio::test]
async fn without_a_configured_secret_a_server_on_postgresql_refuses_to_start() {
    use switchyard::startup::{Application, Overrides, Settings};

    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = Some("postgres://postgres@127.0.0.1:5432/postgres".into());
    settings.auth.jwt_secret = None;
    settings.auth.jwt_algorithm = switchyard::config::JwtAlgorithm::Hs256;
    settings.provisioning = crate::helpers::provisioning_config(0);
    let refused = Application::build(settings, Overrides::default()).await.err().expect("refused").to_string();
    assert!(refused.contains("SWITCHYARD_JWT_SECRET"), "{refused}");
}

/// A suspended reseller, its customers and a disabled user are refused at once (within the
/// standing cache, here 0 s), not when their tokens expire; reactivated, they work again
/// (issue #9, item 18).
#[tokio::test]
async fn suspended_organisations_and_disabled_users_are_refused_before_their_tokens_expire() {
    use sea_orm::{ActiveModelTrait, EntityTrait};

    let app = crate::helpers::spawn_app_with(|server| server.standing_ttl = std::time::Duration::ZERO).await;
    let f = crate::helpers::Fixture::build(&app).await;
    let user = rita(&app, f.reseller_a).await;
    let rita = app
        .state
        .auth
        .issue(
            &switchyard::domain::Actor::from_role(Some(user.id), Role::Reseller, Some(f.reseller_a)).unwrap(),
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let reseller = app.token(Role::Reseller, Some(f.reseller_a));
    let customer = app.token(Role::Customer, Some(f.customer_a));
    for token in [&rita, &reseller, &customer] {
        assert_eq!(status_and_code(&app, token).await.1, "none");
    }
    let status = |value: &str| json!({"id": f.reseller_a.to_string(), "input": {"status": value}});
    let update =
        "mutation($id: ID!, $input: UpdateResellerInput!) { updateReseller(id: $id, input: $input) { status } }";
    app.data(&app.operator(), update, status("INACTIVE")).await;
    for token in [&rita, &reseller, &customer] {
        assert_eq!(status_and_code(&app, token).await, (401, "UNAUTHENTICATED".to_owned()));
    }
    app.data(&app.operator(), update, status("ACTIVE")).await;
    for token in [&rita, &reseller, &customer] {
        assert_eq!(status_and_code(&app, token).await.1, "none");
    }
    // A disabled user is refused; the reseller's other callers are not.
    let mut disabled: entity::user::ActiveModel =
        entity::user::Entity::find_by_id(user.id).one(&app.domain.db).await.unwrap().unwrap().into();
    disabled.disabled = Set(true);
    disabled.update(&app.domain.db).await.unwrap();
    assert_eq!(status_and_code(&app, &rita).await, (401, "UNAUTHENTICATED".to_owned()));
    assert_eq!(status_and_code(&app, &reseller).await.1, "none");
}

/// A kept secret that someone else could have written is not trusted: a file others may
/// read or write, or a link, stops the start with a clear reason.
#[tokio::test]
async fn a_kept_secret_others_could_have_written_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use switchyard::startup::{Application, Overrides, Settings};

    let data_dir =
        std::env::temp_dir().join(format!("switchyard-planted-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let file = data_dir.join("jwt-secret");
    std::fs::write(&file, "planted-planted-planted-planted-planted-planted\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut settings = Settings::from_environment().unwrap();
    settings.database.database_url = None;
    settings.database.data_dir = data_dir.clone();
    settings.auth.jwt_secret = None;
    settings.auth.jwt_algorithm = switchyard::config::JwtAlgorithm::Hs256;
    settings.provisioning = crate::helpers::provisioning_config(0);
    let refused = Application::build(settings.clone(), Overrides::default()).await.err().expect("refused").to_string();
    assert!(refused.contains("owner only"), "{refused}");
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &file).unwrap();
    let refused = Application::build(settings, Overrides::default()).await.err().expect("refused").to_string();
    assert!(refused.contains("not a regular file"), "{refused}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// #9.18: a token lives at most `SWITCHYARD_JWT_MAX_LIFETIME` (24 h by default): one
/// signed with a correct key but expiring later is refused, `exp = i64::MAX` included, as
/// is issuing one.
#[tokio::test]
async fn a_token_living_longer_than_the_maximum_lifetime_is_refused() {
    let app = spawn_app().await;
    let now = Utc::now().timestamp();
    let within = sign(&claims(json!({"exp": now + 23 * 3600})), TEST_SECRET);
    assert_eq!(status_and_code(&app, &within).await.0, 200);
    for exp in [now + 30 * 86_400, i64::MAX] {
        let forever = sign(&claims(json!({"exp": exp})), TEST_SECRET);
        assert_eq!(status_and_code(&app, &forever).await, (401, "UNAUTHENTICATED".to_owned()), "exp {exp}");
    }
    let actor = switchyard::domain::Actor::from_role(None, Role::Operator, None).unwrap();
    let long = app.state.auth.issue(&actor, std::time::Duration::from_secs(30 * 86_400));
    assert!(long.is_err(), "a 30-day token was issued");
}
