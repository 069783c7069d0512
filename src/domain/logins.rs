//! Login throttling: how many wrong passwords an account and a client may try, and how many
//! passwords this process hashes at once.
//!
//! - **Counts live in the database** (`login_attempts`), so every server process enforces
//!   the same limits. An attempt counts against its client (an IPv4 address, an IPv6 /56),
//!   against its account from that client, and against its account from all clients (an
//!   account is the SHA-256 of its lower-cased address, known or not: throttling must not
//!   tell which accounts exist, nor store guessed addresses). The tight limit is per account
//!   and client, so that someone guessing from one client locks the account for that client
//!   only; the total per account, higher, stops guessing spread over many clients, and the
//!   operator can clear an account's counts (`unlock`).
//! - **An attempt is counted before its password is checked**, against all its subjects in
//!   one transaction of atomic upserts that return the new counts: concurrent guesses cannot
//!   all slip under a limit. Past a limit the attempt is refused unchecked (RATE_LIMITED,
//!   with the seconds until the window ends) and nothing of it is kept, the right password
//!   refused too: otherwise guessing would merely be slowed.
//! - A process remembers for 30 s the subjects it saw refused and refuses them again
//!   without asking the database: a flood at a locked account costs no write. (So the
//!   operator's unlock reaches other processes within 30 s.)
//! - So the counts are of wrong passwords checked: a correct login clears its account's
//!   count from its client and gives its other attempts back; an attempt that fails for
//!   another reason (no turn to hash, a fault) gives all back — in one transaction, and only
//!   to the window it was counted in.
//! - **Hashing is bounded**: at most `concurrency` argon2 computations run at once in this
//!   process; a login waits `queue_wait` for a turn at most, then is refused as RATE_LIMITED.
//!   (One login per request is the GraphQL layer's rule, `graphql::mutation::auth`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::login_attempt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result};
use super::write::{Audit, Write};

/// The limits (`SWITCHYARD_LOGIN_*`).
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    /// Wrong passwords an account takes from one client per window.
    pub account_failures: u32,
    /// Wrong passwords an account takes from all clients together per window (the backstop
    /// against guessing spread over many clients).
    pub account_failures_total: u32,
    /// Failed logins a client makes per window, across accounts.
    pub client_failures: u32,
    /// The window the counts run over.
    pub window: Duration,
    /// Passwords hashed at once (0: one per core).
    pub concurrency: usize,
    /// The longest a login waits for a turn to hash.
    pub queue_wait: Duration,
}

/// The policy, this process's hashing turns, and the subjects it saw refused lately.
pub struct LoginGuard {
    policy: LoginPolicy,
    hashing: Arc<Semaphore>,
    /// Subjects refused lately: until when (domain-clock seconds) this process refuses them
    /// again without asking the database, and when their window ends.
    refused: Mutex<HashMap<String, (i64, i64)>>,
}

/// How long a process remembers a refusal (seconds): a flood of attempts at a locked
/// subject costs no write meanwhile, and an operator's unlock reaches other processes
/// within it.
const REMEMBERED_SECONDS: i64 = 30;

/// The most refusals remembered; past it, the expired ones are dropped, then all.
const REMEMBERED_MOST: usize = 100_000;

/// What an attempt is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

/// The hex SHA-256 of an address as logins read it (trimmed, lower-cased).
fn account_key(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// A client's key: an IPv4 address, or the /56 network of an IPv6 address (what a provider
/// commonly routes to one subscriber, so one line cannot pose as 256 clients); `None` (no
/// peer address known) is one shared client.
fn client_key(address: Option<IpAddr>) -> String {
    match address.map(canonical) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/56", s[0], s[1], s[2], s[3] & 0xff00)
        }
        None => "unknown".to_owned(),
    }
}

impl Subject {
    /// An account from every client together, by its address, whether or not it exists.
    pub fn account(email: &str) -> Self {
        Self(format!("account:{}", account_key(email)))
    }

    /// An account from one client.
    pub fn account_from(email: &str, client: Option<IpAddr>) -> Self {
        Self(format!("pair:{}:{}", account_key(email), client_key(client)))
    }

    /// A client, across accounts.
    pub fn client(address: Option<IpAddr>) -> Self {
        Self(format!("client:{}", client_key(address)))
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl LoginGuard {
    /// A guard with `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        let permits = match policy.concurrency {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        Self { policy, hashing: Arc::new(Semaphore::new(permits)), refused: Mutex::new(HashMap::new()) }
    }

    /// The policy in force.
    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    /// RATE_LIMITED if this process refused one of `subjects` lately (within
    /// [`REMEMBERED_SECONDS`]), without asking the database; `now` in domain-clock seconds.
    pub fn refused_lately(&self, subjects: &[&Subject], now: i64) -> Result<()> {
        let Ok(refused) = self.refused.lock() else { return Ok(()) };
        let window_ends = subjects
            .iter()
            .filter_map(|s| refused.get(&s.0))
            .filter(|(remembered_until, _)| *remembered_until > now)
            .map(|(_, window_ends)| *window_ends)
            .max();
        match window_ends {
            Some(ends) => Err(rate_limited(ends - now)),
            None => Ok(()),
        }
    }

    fn remember_refusal(&self, subject: &Subject, now: i64, window_ends: i64) {
        let Ok(mut refused) = self.refused.lock() else { return };
        if refused.len() >= REMEMBERED_MOST {
            refused.retain(|_, (until, _)| *until > now);
            if refused.len() >= REMEMBERED_MOST {
                refused.clear();
            }
        }
        refused.insert(subject.0.clone(), (window_ends.min(now + REMEMBERED_SECONDS), window_ends));
    }

    fn forget_account(&self, key: &str) {
        if let Ok(mut refused) = self.refused.lock() {
            let (account, pairs) = (format!("account:{key}"), format!("pair:{key}:"));
            refused.retain(|subject, _| *subject != account && !subject.starts_with(&pairs));
        }
    }

    /// Runs `hash` (an argon2 computation) on the blocking pool once a turn is free; waits
    /// `queue_wait` at most, then RATE_LIMITED.
    pub async fn hash<T: Send + 'static>(&self, hash: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let turn = tokio::time::timeout(self.policy.queue_wait, Arc::clone(&self.hashing).acquire_owned()).await;
        let Ok(Ok(turn)) = turn else {
            return Err(Error::RateLimited { retry_after: Duration::from_secs(1) });
        };
        // The turn goes with the computation: a login abandoned while it hashes (a closed
        // connection) does not free the turn before the hashing ends.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            hash()
        })
        .await
        .map_err(Error::internal)
    }
}

/// The window in whole seconds (one at least).
fn window_seconds(domain: &Domain) -> i64 {
    i64::try_from(domain.logins.policy.window.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// An attempt counted against its subjects: each with the start of the window it was
/// counted in.
#[derive(Debug)]
pub struct Counted(Vec<(Subject, i64)>);

/// Counts one attempt against every one of `subjects` (with its limit), at the domain
/// clock's now, in one transaction: all are counted, or — when one has reached its limit —
/// none, and the attempt is RATE_LIMITED until that subject's window ends (and remembered).
pub async fn count_attempt(domain: &Domain, subjects: &[(&Subject, u32)]) -> Result<Counted> {
    let now = domain.clock.now().timestamp();
    let window = window_seconds(domain);
    let sql = "INSERT INTO login_attempts (subject, failures, window_started_unix) VALUES ($1, 1, $2) \
         ON CONFLICT (subject) DO UPDATE SET \
         failures = CASE WHEN login_attempts.window_started_unix <= $3 THEN 1 \
                         ELSE login_attempts.failures + 1 END, \
         window_started_unix = CASE WHEN login_attempts.window_started_unix <= $3 THEN $2 \
                                    ELSE login_attempts.window_started_unix END \
         RETURNING failures, window_started_unix";
    let w = Write::begin(domain).await?;
    let backend = w.db().get_database_backend();
    let mut counted = Vec::with_capacity(subjects.len());
    for (subject, limit) in subjects {
        let values = vec![subject.0.clone().into(), now.into(), now.saturating_sub(window).into()];
        let row = w
            .db()
            .query_one_raw(statement(backend, sql, values))
            .await?
            .ok_or_else(|| Error::internal("the login count upsert returned no row"))?;
        let failures: i64 = row.try_get::<i64>("", "failures")?;
        let started: i64 = row.try_get::<i64>("", "window_started_unix")?;
        if failures > i64::from(*limit) {
            // Nothing of this attempt is kept: the counts stay at their limits.
            w.rollback().await;
            let window_ends = started.saturating_add(window);
            domain.logins.remember_refusal(subject, now, window_ends);
            return Err(rate_limited(window_ends.saturating_sub(now)));
        }
        counted.push(((*subject).clone(), started));
    }
    w.commit(Audit::Bookkeeping("a login attempt is counted")).await?;
    Ok(Counted(counted))
}

/// RATE_LIMITED for `seconds` (one at least).
fn rate_limited(seconds: i64) -> Error {
    Error::RateLimited { retry_after: Duration::from_secs(u64::try_from(seconds.max(1)).unwrap_or(1)) }
}

/// Settles an attempt that was no failed guess, in one transaction: `cleared` (the account
/// from the client that logged in) is cleared, every other subject gets its attempt back —
/// in the window it was counted in only, so an attempt never comes off a later window.
pub async fn not_a_failure(domain: &Domain, counted: &Counted, cleared: Option<&Subject>) -> Result<()> {
    let w = Write::begin(domain).await?;
    for (subject, started) in &counted.0 {
        if Some(subject) == cleared {
            login_attempt::Entity::delete_by_id(subject.0.clone()).exec(w.db()).await?;
            continue;
        }
        login_attempt::Entity::update_many()
            .col_expr(
                login_attempt::Column::Failures,
                sea_orm::sea_query::ExprTrait::sub(Expr::col(login_attempt::Column::Failures), 1),
            )
            .filter(login_attempt::Column::Subject.eq(subject.0.as_str()))
            .filter(login_attempt::Column::WindowStartedUnix.eq(*started))
            .filter(login_attempt::Column::Failures.gt(0))
            .exec(w.db())
            .await?;
    }
    w.commit(Audit::Bookkeeping("a login attempt that was no failed guess is given back")).await
}

/// Clears every count of the account `email` (from all clients and from each), so that its
/// logins no longer wait: the operator's remedy for an account locked by someone else's
/// guesses. How many counts were cleared.
pub async fn unlock(domain: &Domain, actor: &Actor, email: &str) -> Result<u64> {
    actor.require_operator()?;
    // What no login can use: a NUL (PostgreSQL refuses it in the audit row) or an address
    // past 320 bytes.
    if email.contains('\0') || email.len() > 320 {
        return Err(Error::validation("email", "not an email address"));
    }
    let key = account_key(email);
    let w = Write::begin(domain).await?;
    let deleted = login_attempt::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(login_attempt::Column::Subject.eq(format!("account:{key}")))
                .add(login_attempt::Column::Subject.starts_with(format!("pair:{key}:"))),
        )
        .exec(w.db())
        .await?;
    let details = serde_json::json!({"email": email.trim().to_lowercase(), "cleared": deleted.rows_affected});
    w.commit(Audit::action(actor, "unlockLogin", "login", None, details)).await?;
    // Other processes forget their refusals within REMEMBERED_SECONDS.
    domain.logins.forget_account(&key);
    Ok(deleted.rows_affected)
}

/// Deletes the counts whose window has ended; how many.
pub async fn prune(domain: &Domain) -> Result<u64> {
    let cutoff = domain.clock.now().timestamp().saturating_sub(window_seconds(domain));
    let w = Write::begin(domain).await?;
    let deleted = login_attempt::Entity::delete_many()
        .filter(login_attempt::Column::WindowStartedUnix.lte(cutoff))
        .exec(w.db())
        .await?;
    w.commit(Audit::Bookkeeping("login counts whose window ended are dropped")).await?;
    Ok(deleted.rows_affected)
}

/// A statement written with `$n` placeholders, for either backend (SQLite reads them as
/// `?n`).
fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn guard(concurrency: usize, queue_wait: Duration) -> LoginGuard {
        LoginGuard::new(LoginPolicy {
            account_failures: 10,
            account_failures_total: 100,
            client_failures: 100,
            window: Duration::from_secs(900),
            concurrency,
            queue_wait,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_passwords_are_hashed_at_once_than_the_concurrency_allows() {
        let guard = Arc::new(guard(2, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let hashes = (0..12).map(|_| {
            let (guard, running, most) = (Arc::clone(&guard), Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(async move {
                guard
                    .hash(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            })
        });
        for hash in futures_util::future::join_all(hashes).await {
            assert!(matches!(hash, Ok(Ok(()))));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_login_that_waits_too_long_for_a_turn_is_rate_limited() {
        let guard = Arc::new(guard(1, Duration::from_millis(50)));
        let busy = Arc::clone(&guard);
        let first = tokio::spawn(async move { busy.hash(|| std::thread::sleep(Duration::from_millis(500))).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = guard.hash(|| ()).await;
        assert!(matches!(second, Err(Error::RateLimited { .. })), "{second:?}");
        assert!(matches!(first.await, Ok(Ok(()))));
        assert!(guard.hash(|| ()).await.is_ok());
    }

    #[tokio::test]
    async fn a_login_abandoned_while_it_hashes_keeps_its_turn_until_the_hashing_ends() {
        let guard = Arc::new(guard(1, Duration::from_millis(100)));
        let abandoned = Arc::clone(&guard);
        let first =
            tokio::spawn(async move { abandoned.hash(|| std::thread::sleep(Duration::from_millis(600))).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.abort();
        // The first hash still runs: no second one starts.
        let second = guard.hash(|| ()).await;
        assert!(matches!(second, Err(Error::RateLimited { .. })), "{second:?}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(guard.hash(|| ()).await.is_ok());
    }

    #[test]
    fn clients_are_addresses_and_ipv6_networks() {
        let client = |s: &str| Subject::client(s.parse().ok());
        assert_eq!(client("203.0.113.7"), client("::ffff:203.0.113.7"));
        assert_ne!(client("203.0.113.7"), client("203.0.113.8"));
        assert_eq!(client("2001:db8:0:1::1"), client("2001:db8:0:1:ffff::2"));
        assert_eq!(client("2001:db8:0:1::1"), client("2001:db8:0:ff::1"), "one /56");
        assert_ne!(client("2001:db8:0:1::1"), client("2001:db8:0:100::1"));
        assert_eq!(Subject::account(" Rita@Example.test"), Subject::account("rita@example.test"));
        let from = |s: &str| Subject::account_from("rita@example.test", s.parse().ok());
        assert_eq!(from("2001:db8:0:1::1"), from("2001:db8:0:2::2"));
        assert_ne!(from("203.0.113.7"), from("203.0.113.8"));
    }
}
