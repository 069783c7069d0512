//! API keys: long-lived credentials for a reseller's storefront or back office (or the
//! operator's automation), used as a bearer token like a JWT. A key belongs to the user who
//! made it and acts with that user's role and organisation, narrowed to its scopes
//! (`domain::scopes`). Its secret is shown once, at creation or rotation: only its SHA-256
//! is stored, beside a visible prefix (`sy_1a2b3c4d`) that finds the row and names the key
//! in lists and logs. Keys are made, rotated and revoked by signed-in users only (a key
//! cannot make keys), each action audited; revoking takes effect on the key's next request
//! in every process (keys are looked up on each request, not cached). A key is honoured
//! only while its user and organisation are in good standing (`domain::standing`).

use chrono::{DateTime, Utc};
use entity::{api_key, user};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set};
use sha2::{Digest, Sha256};

use super::Domain;
use super::actor::{Actor, Role, Tenant};
use super::error::{Error, Result};
use super::scopes::Scopes;
use super::write::{Audit, Write};

/// What every key starts with, so a bearer token is told from a JWT at a glance.
pub const KEY_START: &str = "sy_";

/// Characters of the visible prefix after [`KEY_START`], and of the secret after it.
const PREFIX_CHARS: usize = 8;
const SECRET_CHARS: usize = 40;

/// `last_used_at` is written at most this often per key.
const LAST_USED_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A key as lists show it (never its secret).
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// `sy_` and eight characters: the start of the key.
    pub prefix: String,
    pub scopes: Scopes,
    /// The user it acts as.
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            scopes: Scopes::from_stored(&m.scopes),
            user_id: m.user_id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// A key just made: the secret is in `secret`, and nowhere else ever again.
#[derive(Clone, Debug)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

fn random_chars(n: usize) -> String {
    rand::rngs::OsRng.sample_iter(&Alphanumeric).take(n).map(|b| char::from(b).to_ascii_lowercase()).collect()
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `token` looks like a key (rather than a JWT).
pub fn is_key(token: &str) -> bool {
    token.starts_with(KEY_START)
}

/// The caller making or managing keys: a signed-in user with a user row.
fn session_user(actor: &Actor, what: &str) -> Result<i64> {
    actor.require_session(what)?;
    actor.user_id.ok_or_else(|| Error::Forbidden(format!("{what} needs a signed-in user (this token names none)")))
}

/// Whether `actor` may see and manage keys of `owner`: its own organisation's users' (the
/// operator: every key).
fn manages(actor: &Actor, owner: &user::Model) -> bool {
    actor.tenant == Tenant::Operator
        || (owner.role == actor.role()
            && owner.organization_id.is_some()
            && owner.organization_id == actor.organization_id())
}

fn validate_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::validation("name", "1 to 100 printable characters"));
    }
    Ok(name)
}

/// Makes a key for the signed-in caller, with `scopes` (names separated by spaces or commas).
pub async fn create(domain: &Domain, actor: &Actor, name: &str, scopes: &str) -> Result<IssuedKey> {
    let user_id = session_user(actor, "making an API key")?;
    // Keys are for the operator's automation and resellers' storefronts and back offices.
    actor.require_role(&[Role::Operator, Role::Reseller])?;
    let name = validate_name(name)?;
    let scopes = Scopes::parse(scopes, "scopes")?;
    if let Some(scope) = scopes.iter().find(|s| s.operator_only()).filter(|_| !actor.is_operator()) {
        return Err(Error::validation("scopes", format!("{} is the operator's only", scope.as_str())));
    }
    let w = Write::begin(domain).await?;
    let issued = insert(&w, user_id, name, scopes).await?;
    let details = serde_json::json!({"prefix": issued.key.prefix, "name": name, "scopes": scopes.to_string()});
    w.commit(Audit::action(actor, "createApiKey", "apiKey", issued.key.id, details)).await?;
    Ok(issued)
}

async fn insert(w: &Write<'_>, user_id: i64, name: &str, scopes: Scopes) -> Result<IssuedKey> {
    let prefix = format!("{KEY_START}{}", random_chars(PREFIX_CHARS));
    let secret = format!("{prefix}_{}", random_chars(SECRET_CHARS));
    let model = api_key::ActiveModel {
        id: NotSet,
        user_id: Set(user_id),
        name: Set(name.to_owned()),
        prefix: Set(prefix),
        key_hash: Set(hash(&secret)),
        created_at: Set(w.now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        scopes: Set(scopes.to_string()),
    }
    .insert(w.db())
    .await?;
    Ok(IssuedKey { key: model.into(), secret })
}

/// The keys the caller manages (its organisation's; the operator's: all), newest first.
pub async fn list(domain: &Domain, actor: &Actor) -> Result<Vec<ApiKey>> {
    actor.require_session("listing API keys")?;
    let mut query = api_key::Entity::find().order_by_desc(api_key::Column::Id);
    if actor.tenant != Tenant::Operator {
        // Users of the caller's own organisation, in its role.
        let owners = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Role.eq(actor.role()))
            .filter(user::Column::OrganizationId.eq(actor.organization_id()))
            .into_tuple::<i64>()
            .all(&domain.db)
            .await?;
        query = query.filter(api_key::Column::UserId.is_in(owners));
    }
    Ok(query.all(&domain.db).await?.into_iter().map(ApiKey::from).collect())
}

/// The key `id` with its owner, locked for change, if the caller manages it; NOT_FOUND
/// otherwise (another organisation's key is not told apart from none).
async fn managed(w: &Write<'_>, actor: &Actor, id: i64) -> Result<api_key::Model> {
    let not_found = || Error::NotFound("API key");
    let key = api_key::Entity::find_by_id(id).one(w.db()).await?.ok_or_else(not_found)?;
    let owner = user::Entity::find_by_id(key.user_id).one(w.db()).await?.ok_or_else(not_found)?;
    if !manages(actor, &owner) {
        return Err(not_found());
    }
    Ok(key)
}

/// Marks key `id` revoked unless it already was (by another request in between, too):
/// whether this call revoked it.
async fn mark_revoked(w: &Write<'_>, id: i64) -> Result<bool> {
    let revoked = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, sea_orm::sea_query::Expr::value(w.now()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(w.db())
        .await?;
    Ok(revoked.rows_affected == 1)
}

/// Revokes key `id` (any key of the caller's organisation): refused from its next request
/// on. Revoking it again changes nothing.
pub async fn revoke(domain: &Domain, actor: &Actor, id: i64) -> Result<ApiKey> {
    actor.require_session("revoking an API key")?;
    let w = Write::begin(domain).await?;
    let key = managed(&w, actor, id).await?;
    if !mark_revoked(&w, id).await? {
        w.rollback().await;
        return Ok(key.into());
    }
    let key = api_key::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("API key"))?;
    let details = serde_json::json!({"prefix": key.prefix});
    w.commit(Audit::action(actor, "revokeApiKey", "apiKey", key.id, details)).await?;
    Ok(key.into())
}

/// Replaces the caller's own key `id` by a new one with its name and scopes, revoking it, in
/// one transaction: the new secret is shown once. Only the key's user rotates it (a secret
/// acting as someone else is never handed out); others of the organisation may revoke it.
pub async fn rotate(domain: &Domain, actor: &Actor, id: i64) -> Result<IssuedKey> {
    let caller = session_user(actor, "rotating an API key")?;
    let w = Write::begin(domain).await?;
    let old = managed(&w, actor, id).await?;
    if old.user_id != caller {
        return Err(Error::Forbidden("only the key's own user may rotate it; revoke it instead".into()));
    }
    if !mark_revoked(&w, id).await? {
        return Err(Error::conflict("KEY_REVOKED", "a revoked key cannot be rotated; make a new one"));
    }
    let scopes = Scopes::from_stored(&old.scopes);
    let (user_id, name, prefix) = (old.user_id, old.name.clone(), old.prefix.clone());
    let issued = insert(&w, user_id, &name, scopes).await?;
    let details = serde_json::json!({"replaced": prefix, "prefix": issued.key.prefix});
    w.commit(Audit::action(actor, "rotateApiKey", "apiKey", issued.key.id, details)).await?;
    Ok(issued)
}

/// The caller a key stands for: its user's role and organisation with the key's scopes;
/// None for a key that is unknown, wrong or revoked, or whose user is gone. Records when
/// it was last used (at most once a minute).
pub async fn authenticate(domain: &Domain, secret: &str) -> Result<Option<Actor>> {
    let Some(prefix) = secret.get(..KEY_START.len() + PREFIX_CHARS).filter(|_| is_key(secret)) else {
        return Ok(None);
    };
    let Some(key) = api_key::Entity::find().filter(api_key::Column::Prefix.eq(prefix)).one(&domain.db).await? else {
        return Ok(None);
    };
    // Compared in constant time, as hashes: the row was found by its public prefix.
    let presented = hash(secret);
    let same = presented.len() == key.key_hash.len()
        && presented.bytes().zip(key.key_hash.bytes()).fold(0_u8, |diff, (a, b)| diff | (a ^ b)) == 0;
    if !same || key.revoked_at.is_some() {
        return Ok(None);
    }
    let Some(owner) = user::Entity::find_by_id(key.user_id).one(&domain.db).await? else {
        return Ok(None);
    };
    let now = domain.clock.now();
    if key.last_used_at.is_none_or(|at| now - at >= LAST_USED_EVERY)
        && let Err(error) = stamp_last_use(domain, key.id, now).await
    {
        // Only the time is lost; the caller is not refused for it.
        tracing::warn!(%error, key = %key.prefix, "could not record when an API key was used");
    }
    let actor = Actor::from_role(Some(owner.id), owner.role, owner.organization_id)?;
    Ok(Some(actor.through_key(key.id, Scopes::from_stored(&key.scopes))))
}

async fn stamp_last_use(domain: &Domain, id: i64, now: DateTime<Utc>) -> Result<()> {
    let w = Write::begin(domain).await?;
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
        .filter(api_key::Column::Id.eq(id))
        .exec(w.db())
        .await?;
    w.commit(Audit::Bookkeeping("when an API key was last used: not an action of its own")).await
}
