//! Outbound webhooks: endpoints of a reseller (or of the operator) that receive the events
//! they may see — a reseller's endpoint only events naming that reseller, the operator's
//! every event — filtered by event type, each delivery signed per the Standard Webhooks
//! convention (`signing`), made through the durable job queue (`deliveries`: fanned out in
//! the transaction that records the events, so an event is delivered exactly when it
//! commits; retried with backoff; a log of every attempt; redelivered on demand).
//!
//! Managing endpoints needs the `webhooks:manage` scope (keys) and an operator or reseller
//! caller; another organisation's endpoint is NOT_FOUND. A secret is shown when it is made
//! and when it is rotated; a rotation keeps the previous secret signing for an overlap, so
//! receivers can switch without missing a delivery. An endpoint whose deliveries have failed
//! for `disable_after` is disabled and its owner told by a `webhook_endpoint.disabled` event.
//! Endpoint URLs must be `https` and resolve to public addresses only (no loopback, private
//! or link-local network: a tenant cannot make the server call inside the operator's
//! network), unless the deployment allows local endpoints (development and tests).

pub mod deliveries;
pub mod signing;

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::webhook_endpoint;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set};

use super::Domain;
use super::actor::{Actor, Role, Tenant};
use super::error::{Error, Result};
use super::scopes::Scope;
use super::write::{Audit, Write};

/// How webhooks are delivered in this deployment.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Local endpoints allowed (`http`, loopback and private addresses): development only.
    pub allow_local: bool,
    /// How long one try may take.
    pub timeout: Duration,
    /// The waits between tries; one try more than waits (5 tries over about a day).
    pub schedule: Vec<Duration>,
    /// An endpoint failing this long is disabled.
    pub disable_after: Duration,
    /// How long the log keeps a delivery that is no longer pending.
    pub log_retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            allow_local: false,
            timeout: Duration::from_secs(10),
            schedule: vec![minutes(1), minutes(15), minutes(120), minutes(20 * 60)],
            disable_after: Duration::from_secs(5 * 86_400),
            log_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

impl WebhookSettings {
    /// Tries a delivery gets.
    pub fn attempts(&self) -> i32 {
        i32::try_from(self.schedule.len() + 1).unwrap_or(i32::MAX)
    }

    /// The wait before the try after try `attempt` (1-based): the receiver's Retry-After
    /// when it sent one (at most a day), else the schedule's.
    pub fn retry_delay(&self, attempt: i32, retry_after: Option<Duration>) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
        let planned = self.schedule.get(index).or(self.schedule.last()).copied().unwrap_or(Duration::from_secs(60));
        retry_after.map_or(planned, |asked| asked.min(Duration::from_secs(86_400)))
    }
}

pub use super::fanout::{EVENT_TYPES, event_type};

/// An endpoint as the API shows it (its secret only when made or rotated).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: i64,
    /// The owner; None: the operator.
    pub reseller_id: Option<i64>,
    pub url: String,
    pub description: String,
    /// The types it receives; empty: all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for Endpoint {
    fn from(m: webhook_endpoint::Model) -> Self {
        Self {
            id: m.id,
            reseller_id: m.reseller_id,
            url: m.url,
            description: m.description,
            event_types: m.event_types.split_whitespace().map(str::to_owned).collect(),
            enabled: m.enabled,
            disabled_reason: m.disabled_reason,
            failing_since: m.failing_since,
            previous_secret_until: m.previous_secret_until,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// An endpoint with its secret, just made or rotated.
#[derive(Clone, Debug)]
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: String,
}

/// What an endpoint is made or changed with.
#[derive(Clone, Debug, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// The caller managing webhooks: an operator or a reseller (a key with `webhooks:manage`);
/// the owner its endpoints get.
fn manager(actor: &Actor, what: &str) -> Result<Option<i64>> {
    actor.require_role(&[Role::Operator, Role::Reseller])?;
    actor.require_scope(Scope::WebhooksManage, what)?;
    Ok(actor.reseller_id())
}

/// Endpoint `id` if the caller manages it (the operator: any); NOT_FOUND otherwise.
async fn managed<C: sea_orm::ConnectionTrait>(db: &C, actor: &Actor, id: i64) -> Result<webhook_endpoint::Model> {
    let owner = manager(actor, "managing webhook endpoints")?;
    let endpoint = webhook_endpoint::Entity::find_by_id(id).one(db).await?;
    endpoint
        .filter(|e| actor.tenant == Tenant::Operator || e.reseller_id == owner)
        .ok_or(Error::NotFound("webhook endpoint"))
}

/// The endpoints the caller manages (the operator: every one), oldest first.
pub async fn list(domain: &Domain, actor: &Actor) -> Result<Vec<Endpoint>> {
    let owner = manager(actor, "listing webhook endpoints")?;
    let mut find = webhook_endpoint::Entity::find().order_by_asc(webhook_endpoint::Column::Id);
    if actor.tenant != Tenant::Operator {
        find = find.filter(webhook_endpoint::Column::ResellerId.eq(owner));
    }
    Ok(find.all(&domain.db).await?.into_iter().map(Endpoint::from).collect())
}

/// Whether `address` is one a tenant's endpoint must not reach: anything but a public
/// unicast address — this machine, private, shared, benchmarking or link-local networks,
/// documentation, multicast and reserved ranges; in IPv6, anything outside global unicast
/// (2000::/3), and the IPv4 address inside a mapped, 6to4 or Teredo one is judged as IPv4
/// (NAT64 prefixes are outside 2000::/3: refused).
pub fn is_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 192 && b == 88 && c == 99)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            };
            match s[0] {
                // 6to4: the IPv4 address is the next 32 bits.
                0x2002 => is_local(embedded(s[1], s[2])),
                // Teredo: the client's address, inverted, is the last 32 bits.
                0x2001 if s[1] == 0 => is_local(embedded(!s[6], !s[7])),
                // Documentation, and ORCHIDv2 and the other IETF assignments of 2001::/23.
                0x2001 if s[1] == 0x0db8 || s[1] < 0x0200 => true,
                first => (first & 0xe000) != 0x2000,
            }
        }
    }
}

/// A URL endpoints may have: `https` (`http` too where local endpoints are allowed),
/// no credentials in it, a host that is not a local address written out.
fn validate_url(settings: &WebhookSettings, url: &str) -> Result<String> {
    let refused = |why: &str| Error::validation("url", why);
    let url = url.trim();
    if url.len() > 2_000 {
        return Err(refused("at most 2,000 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| refused(&format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if settings.allow_local => {}
        _ => return Err(refused("must be an https URL")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("must not carry credentials; the signature authenticates us"));
    }
    let local_host = match parsed.host() {
        None => return Err(refused("has no host")),
        Some(url::Host::Ipv4(v4)) => is_local(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => is_local(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost"),
    };
    if local_host && !settings.allow_local {
        return Err(refused("must be a public address"));
    }
    Ok(parsed.to_string())
}

fn validate_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(Error::validation("description", "at most 200 printable characters"));
    }
    Ok(description.to_owned())
}

fn validate_types(types: &[String]) -> Result<String> {
    let mut names: Vec<&str> = Vec::new();
    for name in types.iter().map(|t| t.trim()) {
        if !EVENT_TYPES.contains(&name) {
            let known = EVENT_TYPES.join(", ");
            return Err(Error::validation("eventTypes", format!("{name:?} is not an event type (one of {known})")));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names.join(" "))
}

/// Endpoints one organisation may have.
const MAX_ENDPOINTS: u64 = 20;

/// Makes an endpoint for the caller's organisation; its secret is in the answer.
pub async fn create(domain: &Domain, actor: &Actor, input: EndpointInput) -> Result<WithSecret> {
    let owner = manager(actor, "making a webhook endpoint")?;
    let url = validate_url(&domain.webhooks, input.url.as_deref().unwrap_or_default())?;
    let description = validate_description(input.description.as_deref().unwrap_or_default())?;
    let event_types = validate_types(input.event_types.as_deref().unwrap_or_default())?;
    let w = Write::begin(domain).await?;
    let existing = webhook_endpoint::Entity::find()
        .filter(match owner {
            Some(reseller) => webhook_endpoint::Column::ResellerId.eq(reseller),
            None => webhook_endpoint::Column::ResellerId.is_null(),
        })
        .count(w.db())
        .await?;
    if existing >= MAX_ENDPOINTS {
        return Err(Error::validation("url", format!("an organisation has at most {MAX_ENDPOINTS} endpoints")));
    }
    let secret = signing::new_secret();
    let now = w.now();
    let model = webhook_endpoint::ActiveModel {
        id: NotSet,
        reseller_id: Set(owner),
        url: Set(url.clone()),
        description: Set(description),
        event_types: Set(event_types.clone()),
        secret: Set(secret.clone()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        enabled: Set(input.enabled.unwrap_or(true)),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await?;
    let details = serde_json::json!({"url": url, "eventTypes": event_types});
    w.commit(Audit::action(actor, "createWebhookEndpoint", "webhookEndpoint", model.id, details)).await?;
    Ok(WithSecret { endpoint: model.into(), secret })
}

/// Changes what is given of endpoint `id`; enabling it again forgets its failures.
pub async fn update(domain: &Domain, actor: &Actor, id: i64, input: EndpointInput) -> Result<Endpoint> {
    let w = Write::begin(domain).await?;
    let current = managed(w.db(), actor, id).await?;
    let mut model: webhook_endpoint::ActiveModel = current.clone().into();
    if let Some(url) = &input.url {
        let url = validate_url(&domain.webhooks, url)?;
        if url != current.url {
            // Another receiver: its health is its own.
            model.failing_since = Set(None);
        }
        model.url = Set(url);
    }
    if let Some(description) = &input.description {
        model.description = Set(validate_description(description)?);
    }
    if let Some(types) = &input.event_types {
        model.event_types = Set(validate_types(types)?);
    }
    if let Some(enabled) = input.enabled {
        model.enabled = Set(enabled);
        if enabled && !current.enabled {
            model.disabled_reason = Set(None);
            model.failing_since = Set(None);
        }
    }
    model.updated_at = Set(w.now());
    let updated = model.update(w.db()).await?;
    let details = serde_json::json!({
        "url": updated.url, "eventTypes": updated.event_types, "enabled": updated.enabled,
    });
    w.commit(Audit::action(actor, "updateWebhookEndpoint", "webhookEndpoint", id, details)).await?;
    Ok(updated.into())
}

/// Deletes endpoint `id` with its delivery log; deliveries still queued are dropped.
pub async fn delete(domain: &Domain, actor: &Actor, id: i64) -> Result<Endpoint> {
    let w = Write::begin(domain).await?;
    let endpoint = managed(w.db(), actor, id).await?;
    deliveries::forget_endpoint(&w, id).await?;
    webhook_endpoint::Entity::delete_by_id(id).exec(w.db()).await?;
    let details = serde_json::json!({"url": endpoint.url});
    w.commit(Audit::action(actor, "deleteWebhookEndpoint", "webhookEndpoint", id, details)).await?;
    Ok(endpoint.into())
}

/// The longest overlap a rotation may ask for.
const MAX_OVERLAP_HOURS: i32 = 7 * 24;

/// Gives endpoint `id` a new secret; the previous one still signs for `overlap_hours`
/// (deliveries carry both signatures meanwhile). The new secret is in the answer.
pub async fn rotate_secret(domain: &Domain, actor: &Actor, id: i64, overlap_hours: i32) -> Result<WithSecret> {
    if !(0..=MAX_OVERLAP_HOURS).contains(&overlap_hours) {
        return Err(Error::validation("overlapHours", format!("0 to {MAX_OVERLAP_HOURS}")));
    }
    let w = Write::begin(domain).await?;
    let current = managed(w.db(), actor, id).await?;
    let secret = signing::new_secret();
    let now = w.now();
    let until = now + chrono::Duration::hours(i64::from(overlap_hours));
    let mut model: webhook_endpoint::ActiveModel = current.clone().into();
    model.previous_secret = Set((overlap_hours > 0).then(|| current.secret.clone()));
    model.previous_secret_until = Set((overlap_hours > 0).then_some(until));
    model.secret = Set(secret.clone());
    model.updated_at = Set(now);
    let updated = model.update(w.db()).await?;
    let details = serde_json::json!({"overlapHours": overlap_hours});
    w.commit(Audit::action(actor, "rotateWebhookSecret", "webhookEndpoint", id, details)).await?;
    Ok(WithSecret { endpoint: updated.into(), secret })
}

#[cfg(test)]
mod tests {
    use super::is_local;

    #[test]
    fn only_public_unicast_addresses_are_not_local() {
        let local = |text: &str| is_local(text.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        for address in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.1.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.1.2.3",
            "198.18.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fec0::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a00:5",
            "64:ff9b:1::1",
            "2002:a00:5::1",
            "2001:db8::1",
            "2001::f5ff:fffa",
            "ff02::1",
        ] {
            assert!(local(address), "{address} must be refused");
        }
        for address in ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::200e", "2002:5db8:d70e::1"]
        {
            assert!(!local(address), "{address} is public");
        }
    }
}
