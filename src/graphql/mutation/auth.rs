//! `login`: exchanges an email and password for a bearer token.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::AuthKeys;
use crate::domain::Error;
use crate::domain::{logins, users};
use crate::graphql::types::parties::Me;
use crate::graphql::{LoginAllowance, ResultExt, actor, domain};

/// A bearer token and whom it is for.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The user it was issued to.
    pub me: Me,
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Logs in with email and password. Wrong credentials get UNAUTHENTICATED; an account or
    /// a client that failed too often in the window gets RATE_LIMITED (`retryAfter` seconds),
    /// the right password too. One login per request: others in the same document or batch
    /// get BAD_USER_INPUT unchecked.
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<LoginPayload> {
        let keys = ctx.data_unchecked::<Arc<AuthKeys>>();
        // Every entry point gives its requests an allowance; one without is refused.
        let allowance = ctx.data::<LoginAllowance>()?;
        if !allowance.take() {
            return Err(Error::validation("login", "one login per request")).gql();
        }
        let (_, actor) = users::login(domain(ctx), &email, &password, allowance.client).await.gql()?;
        let token = keys.issue(&actor, keys.login_token_ttl).gql()?;
        let ttl = chrono::Duration::from_std(keys.login_token_ttl).unwrap_or_default();
        Ok(LoginPayload { token, expires_at: Utc::now() + ttl, me: Me(actor) })
    }

    /// Clears the failed-login counts of an account, from every client, so that its logins
    /// no longer wait (operator): for an account locked by someone else's guesses. Whether
    /// there was anything to clear (an unknown address is answered alike).
    async fn unlock_login(&self, ctx: &Context<'_>, email: String) -> async_graphql::Result<bool> {
        logins::unlock(domain(ctx), actor(ctx)?, &email).await.map(|cleared| cleared > 0).gql()
    }
}
