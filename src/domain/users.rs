//! Users and password login. Passwords are stored as argon2id hashes (PHC strings).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use entity::enums::Role;
use entity::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result};
use super::logins::{self, Subject};
use super::write::{Audit, Write};

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    /// Login name (stored lower-case).
    pub email: &'a str,
    /// Shown in the UI.
    pub display_name: &'a str,
    /// An argon2id PHC string from [`hash_password`].
    pub password_hash: String,
    /// The role the user acts in.
    pub role: Role,
    /// Its vendor, reseller or customer; none for the operator.
    pub organization_id: Option<i64>,
}

/// Creates a user (operator only), audited.
pub async fn create_user(domain: &Domain, actor: &Actor, input: NewUser<'_>) -> Result<user::Model> {
    actor.require_operator()?;
    // The same rule as tokens: every role but the operator acts for an organization.
    Actor::from_role(None, input.role, input.organization_id)
        .map_err(|_| Error::validation("organizationId", "required for this role"))?;
    let w = Write::begin(domain).await?;
    let now = w.now();
    let user = user::ActiveModel {
        id: NotSet,
        email: Set(input.email.trim().to_lowercase()),
        display_name: Set(input.display_name.to_owned()),
        password_hash: Set(input.password_hash),
        role: Set(input.role),
        organization_id: Set(input.organization_id),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        super::error::map_unique_violation(e, &[], Error::conflict("EMAIL_TAKEN", "a user with this email exists"))
    })?;
    w.commit(Audit::action(actor, "createUser", "user", user.id, serde_json::json!({"email": user.email}))).await?;
    Ok(user)
}

/// Checks an email and password from `client` (its address, when known); the user's actor
/// on success, Unauthenticated otherwise, RATE_LIMITED when the client, the account from
/// this client or the account from all clients has failed too often in the window
/// ([`super::logins`]).
pub async fn login(
    domain: &Domain,
    email: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> Result<(user::Model, Actor)> {
    let policy = domain.logins.policy();
    let from_client = Subject::account_from(email, client);
    let (account, client) = (Subject::account(email), Subject::client(client));
    let subjects = [&client, &from_client, &account];
    domain.logins.refused_lately(&subjects, domain.clock.now().timestamp())?;
    // Counted before the password is checked, so that concurrent guesses cannot all pass.
    let counted = logins::count_attempt(
        domain,
        &[
            (&client, policy.client_failures),
            (&from_client, policy.account_failures),
            (&account, policy.account_failures_total),
        ],
    )
    .await?;
    let checked = check(domain, email, password).await;
    let cleared = match &checked {
        Err(Error::Unauthenticated) => return checked,
        Ok(_) => Some(&from_client),
        // Not a failed guess (no turn to hash, a fault): no count keeps it.
        Err(_) => None,
    };
    if let Err(error) = logins::not_a_failure(domain, &counted, cleared).await {
        // The answer stands; the counts keep the attempt until its window ends.
        tracing::warn!(%error, "a login attempt could not be given back");
    }
    checked
}

/// Checks the password, in a hashing turn.
async fn check(domain: &Domain, email: &str, password: &str) -> Result<(user::Model, Actor)> {
    let email = email.trim().to_lowercase();
    // No stored address holds a NUL or runs past 320 bytes (and PostgreSQL refuses NUL in
    // text): such an address is simply unknown.
    let lookup = !email.contains('\0') && email.len() <= 320;
    let found =
        if lookup { user::Entity::find().filter(user::Column::Email.eq(email)).one(&domain.db).await? } else { None };
    let hash = found.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_owned();
    // An unknown email still costs one argon2 computation, so timing does not reveal it.
    let valid = domain
        .logins
        .hash(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => hash_password(&password).is_err(),
        })
        .await?;
    match found {
        Some(user) if valid && !user.disabled => {
            let actor = Actor::from_role(Some(user.id), user.role, user.organization_id)?;
            Ok((user, actor))
        }
        _ => Err(Error::Unauthenticated),
    }
}
