//! Rate limits: a token bucket per user's API keys, per signed-in user (or development
//! token's role and organisation) and per client address for anonymous calls, each kind with
//! its own policy (`SWITCHYARD_RATE_LIMIT_KEY`, `_USER`, `_ANONYMOUS`: `tokens/seconds`, the
//! bucket's size and the time it takes to fill from empty). A request takes one token to be
//! admitted; each GraphQL operation costs at least one (the first one's is the admission's)
//! and, once validated, its complexity (one token per [`COMPLEXITY_PER_TOKEN`]); an export
//! costs [`EXPORT_COST`]. An operation dearer than a whole bucket is refused for good, not
//! told to retry. Refused credentials cost the client's address a token. The buckets are
//! this process's: with several processes behind a load balancer, each enforces its share
//! (documented in the README). Memory is bounded: at [`MAX_SUBJECTS`] subjects, full buckets
//! are dropped (a full bucket is the same as none), then the longest unused.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Complexity one token pays for.
pub const COMPLEXITY_PER_TOKEN: usize = 100;
/// Subjects tracked before full buckets are dropped.
pub const MAX_SUBJECTS: usize = 100_000;
/// What an export (a CSV, a printable invoice) costs: it reads a period's rows.
pub const EXPORT_COST: u32 = 5;

/// A kind of caller's limit as configured: a policy, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<Policy>);

impl Limit {
    /// `tokens/seconds` (`600/60`); `off` (or `0`) for no limit.
    pub fn parse(text: &str) -> Result<Self, String> {
        Policy::parse(text).map(Self)
    }
}

/// How much a kind of caller may do: `tokens` at once, refilled evenly over `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub tokens: u32,
    pub window: Duration,
}

impl Policy {
    /// `tokens/seconds` (`600/60`); `off` (or `0`) for no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        let refused = || format!("{text:?}: expected tokens/seconds (600/60) or off");
        let (tokens, seconds) = text.split_once('/').ok_or_else(refused)?;
        let tokens: u32 = tokens.trim().parse().map_err(|_| refused())?;
        let seconds: u32 = seconds.trim().parse().map_err(|_| refused())?;
        if tokens == 0 || seconds == 0 || seconds > 86_400 {
            return Err(refused());
        }
        Ok(Some(Self { tokens, window: Duration::from_secs(u64::from(seconds)) }))
    }

    fn per_second(self) -> f64 {
        f64::from(self.tokens) / self.window.as_secs_f64()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tokens, self.window.as_secs())
    }
}

/// Whose bucket a request takes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The API keys of one user, by the user's id (a user making more keys does not get
    /// more to spend); a key without a user (none is made so) by its own id.
    Key(String),
    /// A signed-in user, by id; a development token by role and organisation.
    User(String),
    /// An anonymous caller, by address (IPv6 by its /64).
    Address(String),
    /// Credentials refused from an address (IPv6 by its /64): a bucket of its own, under the
    /// anonymous policy, so anonymous traffic from a shared address (a NAT) does not lock
    /// valid credentials out, and guessing does not spend anonymous callers' tokens.
    Refused(String),
}

impl Subject {
    /// An anonymous caller at `address` (unknown: one shared bucket).
    pub fn address(address: Option<IpAddr>) -> Self {
        // An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is its IPv4 address.
        let address = address.map(|a| match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        });
        Self::Address(match address {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(v4) => v4.to_string(),
            None => "unknown".into(),
        })
    }

    /// The bucket of refused credentials from `address`.
    pub fn refused(address: Option<IpAddr>) -> Self {
        match Self::address(address) {
            Self::Address(key) => Self::Refused(key),
            other => other,
        }
    }

    /// The bucket of a caller with credentials: its user's API keys', else its user's (a
    /// development token's: its role and organisation's).
    pub fn of(actor: &crate::domain::Actor) -> Self {
        match (actor.api_key_id, actor.user_id) {
            (Some(_), Some(user)) => Self::Key(format!("user:{user}")),
            (Some(key), None) => Self::Key(format!("key:{key}")),
            (None, Some(user)) => Self::User(user.to_string()),
            (None, None) => Self::User(format!("{:?}:{}", actor.role(), actor.organization_id().unwrap_or(0))),
        }
    }

    /// The policy's name in the `RateLimit` headers.
    pub fn policy_name(&self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::User(_) => "user",
            Self::Address(_) => "anonymous",
            Self::Refused(_) => "refused",
        }
    }
}

/// What a subject has left under its policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub policy: Policy,
    pub name: &'static str,
    /// Whole tokens left.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub full_in: u64,
    /// When refused: seconds until the asked-for tokens are there.
    pub retry_after: Option<u64>,
    /// Refused because the asked-for tokens are more than the bucket holds: never granted.
    pub beyond_capacity: bool,
}

impl Standing {
    /// The IETF `RateLimit-Policy` header's value (draft-ietf-httpapi-ratelimit-headers).
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.name, self.policy.tokens, self.policy.window.as_secs())
    }

    /// The IETF `RateLimit` header's value.
    pub fn limit_header(&self) -> String {
        format!("\"{}\";r={};t={}", self.name, self.remaining, self.full_in)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The process's buckets, with the policies per kind of subject (None: unlimited).
pub struct Limiter {
    key: Option<Policy>,
    user: Option<Policy>,
    anonymous: Option<Policy>,
    buckets: Mutex<HashMap<Subject, Bucket>>,
    max_subjects: usize,
}

impl Limiter {
    /// A limiter with these policies.
    pub fn new(key: Limit, user: Limit, anonymous: Limit) -> Self {
        Self::bounded(key, user, anonymous, MAX_SUBJECTS)
    }

    /// A limiter with these policies tracking at most `max_subjects` subjects.
    pub fn bounded(key: Limit, user: Limit, anonymous: Limit, max_subjects: usize) -> Self {
        Self {
            key: key.0,
            user: user.0,
            anonymous: anonymous.0,
            buckets: Mutex::new(HashMap::new()),
            max_subjects: max_subjects.max(1),
        }
    }

    fn policy(&self, subject: &Subject) -> Option<Policy> {
        match subject {
            Subject::Key(_) => self.key,
            Subject::User(_) => self.user,
            Subject::Address(_) | Subject::Refused(_) => self.anonymous,
        }
    }

    /// Takes `cost` tokens from `subject`'s bucket if it has them (nothing otherwise); what
    /// is left either way, or None when its kind is not limited.
    pub fn take(&self, subject: &Subject, cost: u32) -> Option<Standing> {
        let policy = self.policy(subject)?;
        let now = Instant::now();
        let capacity = f64::from(policy.tokens);
        let rate = policy.per_second();
        let Ok(mut buckets) = self.buckets.lock() else { return None };
        if buckets.len() >= self.max_subjects && !buckets.contains_key(subject) {
            // Each bucket judged by its own kind's policy (a full one is the same as none).
            buckets.retain(|held, b| {
                self.policy(held).is_some_and(|p| {
                    b.tokens + now.duration_since(b.at).as_secs_f64() * p.per_second() < f64::from(p.tokens)
                })
            });
            if buckets.len() >= self.max_subjects {
                // Still full of spending subjects: the tenth used longest ago go (their
                // buckets refill as new; everyone else keeps theirs).
                let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
                let cut = (ages.len() / 10).max(1);
                let (_, oldest_kept, _) = ages.select_nth_unstable(cut - 1);
                let oldest_kept = *oldest_kept;
                buckets.retain(|_, b| b.at > oldest_kept);
            }
        }
        let bucket = buckets.entry(subject.clone()).or_insert(Bucket { tokens: capacity, at: now });
        let tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(capacity);
        let cost = f64::from(cost);
        let beyond_capacity = cost > capacity;
        let granted = tokens >= cost && !beyond_capacity;
        let left = if granted { tokens - cost } else { tokens };
        *bucket = Bucket { tokens: left, at: now };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "bounded by the policy's u32")]
        let seconds = |missing: f64| (missing.max(0.0) / rate).ceil() as u64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0 ≤ left ≤ capacity")]
        let remaining = left.floor() as u32;
        Some(Standing {
            policy,
            name: subject.policy_name(),
            remaining,
            full_in: seconds(capacity - left),
            retry_after: (!granted).then(|| seconds(cost.min(capacity) - tokens).max(1)),
            beyond_capacity,
        })
    }
}

/// What one operation of `complexity` costs, at least one token.
pub fn cost_of(complexity: usize) -> u32 {
    u32::try_from(complexity.div_ceil(COMPLEXITY_PER_TOKEN).max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_refuse_nonsense() {
        assert_eq!(Policy::parse("600/60"), Ok(Some(Policy { tokens: 600, window: Duration::from_secs(60) })));
        assert_eq!(Policy::parse("off"), Ok(None));
        for bad in ["600", "0/60", "600/0", "a/b", "600/100000"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_grants_until_empty_and_says_when_to_come_back() {
        let policy = Limit::parse("10/10").unwrap_or(Limit(None));
        let limiter = Limiter::new(policy, Limit(None), Limit(None));
        let key = Subject::Key("user:1".into());
        let first = limiter.take(&key, 4);
        assert_eq!(first.as_ref().map(|s| (s.remaining, s.retry_after)), Some((6, None)));
        assert_eq!(limiter.take(&key, 6).map(|s| s.remaining), Some(0));
        let refused = limiter.take(&key, 3);
        assert_eq!(refused.as_ref().and_then(|s| s.retry_after), Some(3), "{refused:?}");
        assert_eq!(refused.map(|s| s.limit_header()), Some("\"key\";r=0;t=10".to_owned()));
        // Other subjects and unlimited kinds are untouched.
        assert_eq!(limiter.take(&Subject::Key("user:2".into()), 1).map(|s| s.remaining), Some(9));
        // More than the bucket holds is refused for good.
        assert_eq!(limiter.take(&Subject::Key("user:3".into()), 11).map(|s| s.beyond_capacity), Some(true));
        assert_eq!(limiter.take(&Subject::User("1".into()), 1_000), None);
        assert_eq!(cost_of(0), 1);
        assert_eq!(cost_of(250), 3);
    }

    #[test]
    fn an_ipv4_client_seen_through_an_ipv6_socket_is_its_ipv4_address() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let plain: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        assert_eq!(Subject::address(Some(mapped)), Subject::address(Some(plain)));
        let v6: IpAddr = "2001:db8:1:2:3::9".parse().unwrap_or(plain);
        assert_eq!(Subject::address(Some(v6)), Subject::Address("2001:db8:1:2::/64".into()));
    }

    #[test]
    fn a_full_table_drops_the_longest_unused_not_everyone() {
        let limit = Limit::parse("10/3600").unwrap_or(Limit(None));
        let limiter = Limiter::bounded(Limit(None), Limit(None), limit, 10);
        let at = |n: u8| Subject::address(Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, n))));
        for n in 0..10 {
            limiter.take(&at(n), 5);
        }
        // An eleventh subject: the oldest spender's bucket goes, the others keep theirs.
        limiter.take(&at(10), 1);
        assert_eq!(limiter.take(&at(9), 1).map(|s| s.remaining), Some(4));
        assert_eq!(limiter.take(&at(0), 1).map(|s| s.remaining), Some(9), "dropped: a new bucket");
    }
}
