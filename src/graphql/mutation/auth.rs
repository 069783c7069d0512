//! `login`: exchanges an email and password for a bearer token.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::AuthKeys;
use crate::domain::users;
use crate::graphql::types::parties::Me;
use crate::graphql::{ResultExt, domain};

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
    /// Logs in with email and password. Wrong credentials get UNAUTHENTICATED.
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<LoginPayload> {
        let keys = ctx.data_unchecked::<Arc<AuthKeys>>();
        let (_, actor) = users::login(domain(ctx), &email, &password).await.gql()?;
        let token = keys.issue(&actor, keys.login_token_ttl).gql()?;
        let ttl = chrono::Duration::from_std(keys.login_token_ttl).unwrap_or_default();
        Ok(LoginPayload { token, expires_at: Utc::now() + ttl, me: Me(actor) })
    }
}
