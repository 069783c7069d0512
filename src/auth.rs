//! JWT bearer tokens: issuing (login, the `token` command) and verifying.
//!
//! One algorithm is pinned; `exp`, `iss`, `aud` and `sub` are required and checked, `nbf`
//! too when present, with a small leeway. The tenant comes only from verified claims.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::config::{AuthConfig, DatabaseConfig, JwtAlgorithm};
use crate::domain::{Actor, Error, Role};

/// The settings with an HS256 secret: the configured one; else, on SQLite, a random one
/// kept in the data directory (`jwt-secret`, made at the first start, readable by its owner
/// only), shared by every command on that data directory. With PostgreSQL there is no such
/// fallback: processes sharing a database must share a configured secret, so starting
/// without one is refused. (There is no built-in secret: one in the source is everyone's.)
pub fn with_secret(auth: &AuthConfig, database: &DatabaseConfig) -> Result<AuthConfig, String> {
    let mut auth = auth.clone();
    if auth.jwt_algorithm != JwtAlgorithm::Hs256 || auth.jwt_secret.is_some() {
        return Ok(auth);
    }
    if database.database_url.as_deref().is_some_and(|url| url.starts_with("postgres")) {
        return Err("set SWITCHYARD_JWT_SECRET (32 bytes or more): processes sharing a PostgreSQL database \
                    must share it, so none is made up"
            .into());
    }
    auth.jwt_secret = Some(kept_secret(&database.data_dir)?);
    Ok(auth)
}

/// The secret kept in `data_dir/jwt-secret`, made if absent. Two processes making it at
/// once agree: each writes its own file and links it into place only if none is there.
fn kept_secret(data_dir: &std::path::Path) -> Result<String, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("jwt-secret");
    let read = |path: &std::path::Path| -> Result<String, String> {
        use std::os::unix::fs::PermissionsExt;
        // Only a regular file of ours that no one else can read or write is trusted: a
        // planted or linked secret would let its author sign any token.
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !meta.file_type().is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!("{} must be readable by its owner only (chmod 600)", path.display()));
        }
        let secret = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let secret = secret.trim().to_owned();
        if secret.len() < 32 {
            return Err(format!("{} holds fewer than 32 bytes", path.display()));
        }
        Ok(secret)
    };
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let secret: String = rand::random::<[u8; 32]>().iter().map(|byte| format!("{byte:02x}")).collect();
    let draft = data_dir.join(format!("jwt-secret.{}.{}", std::process::id(), rand::random::<u32>()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut file| file.write_all(format!("{secret}\n").as_bytes()).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&draft, &path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "made a JWT secret for this data directory");
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(error) => Err(format!("cannot keep a JWT secret in {}: {error}", path.display())),
    }
}

/// The claims Switchyard signs and expects.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// `user:<id>` for a user, `cli` for a development token.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Not valid before (seconds since the epoch).
    pub nbf: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// The role the bearer acts in.
    pub role: Role,
    /// The bearer's organization (see `domain::actor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<i64>,
}

/// A verified token: who it is for and when it stops being valid.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The caller.
    pub actor: Actor,
    /// Expiry, in seconds since the epoch.
    pub expires_at: i64,
}

/// Keys and rules for issuing and verifying tokens; built once at start-up.
pub struct AuthKeys {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Lifetime of tokens issued by login.
    pub login_token_ttl: Duration,
    /// The longest a token may live, in seconds.
    max_lifetime: i64,
    /// Clock skew tolerated, in seconds.
    leeway: i64,
}

impl AuthKeys {
    /// Builds the keys from configuration; fails on unreadable or invalid key files.
    pub fn from_config(config: &AuthConfig) -> Result<Self, String> {
        let (algorithm, encoding, decoding) = match config.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let Some(secret) = config.jwt_secret.as_deref() else {
                    return Err("no JWT secret: set SWITCHYARD_JWT_SECRET".into());
                };
                if secret.len() < 32 {
                    return Err("the JWT secret must be at least 32 bytes".into());
                }
                (
                    Algorithm::HS256,
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                    DecodingKey::from_secret(secret.as_bytes()),
                )
            }
            kind @ (JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa) => {
                let public = read(config.jwt_public_key_file.as_ref(), "--jwt-public-key-file")?;
                let private = match config.jwt_private_key_file.as_ref() {
                    Some(path) => Some(read(Some(path), "--jwt-private-key-file")?),
                    None => None,
                };
                if kind == JwtAlgorithm::Rs256 {
                    (
                        Algorithm::RS256,
                        private.map(|p| EncodingKey::from_rsa_pem(&p)).transpose().map_err(|e| e.to_string())?,
                        DecodingKey::from_rsa_pem(&public).map_err(|e| e.to_string())?,
                    )
                } else {
                    (
                        Algorithm::EdDSA,
                        private.map(|p| EncodingKey::from_ed_pem(&p)).transpose().map_err(|e| e.to_string())?,
                        DecodingKey::from_ed_pem(&public).map_err(|e| e.to_string())?,
                    )
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = config.jwt_leeway_seconds;
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            login_token_ttl: config.login_token_ttl.min(config.jwt_max_lifetime),
            max_lifetime: i64::try_from(config.jwt_max_lifetime.as_secs()).unwrap_or(i64::MAX),
            leeway: i64::try_from(config.jwt_leeway_seconds).unwrap_or(0),
        })
    }

    /// Signs a token for `actor`, valid for `ttl`.
    pub fn issue(&self, actor: &Actor, ttl: Duration) -> Result<String, Error> {
        if i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX) > self.max_lifetime {
            return Err(Error::validation(
                "ttl",
                format!("is longer than SWITCHYARD_JWT_MAX_LIFETIME ({} s)", self.max_lifetime),
            ));
        }
        let encoding =
            self.encoding.as_ref().ok_or_else(|| Error::internal("no private key is configured to sign tokens"))?;
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: actor.user_id.map_or_else(|| "cli".to_owned(), |id| format!("user:{id}")),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            nbf: now,
            iat: now,
            role: actor.role(),
            org: actor.organization_id(),
        };
        encode(&Header::new(self.algorithm), &claims, encoding).map_err(Error::internal)
    }

    /// Verifies a bearer token; any failure is Unauthenticated.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|error| {
            tracing::debug!(%error, "token refused");
            Error::Unauthenticated
        })?;
        let claims = data.claims;
        // A token valid for longer than any this server issues: refused, whoever signed it.
        if claims.exp.saturating_sub(Utc::now().timestamp()) > self.max_lifetime.saturating_add(self.leeway) {
            tracing::debug!(exp = claims.exp, "token refused: it lives longer than the maximum lifetime");
            return Err(Error::Unauthenticated);
        }
        let user_id = match claims.sub.as_str() {
            "cli" => None,
            sub => Some(sub.strip_prefix("user:").and_then(|id| id.parse().ok()).ok_or(Error::Unauthenticated)?),
        };
        Ok(VerifiedToken { actor: Actor::from_role(user_id, claims.role, claims.org)?, expires_at: claims.exp })
    }
}

fn read(path: Option<&std::path::PathBuf>, flag: &str) -> Result<Vec<u8>, String> {
    let path = path.ok_or_else(|| format!("{flag} is required for this algorithm"))?;
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
