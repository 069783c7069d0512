//! Whether a verified caller is still in good standing: its organisation exists and is
//! ACTIVE (a vendor, a reseller, or a customer and its reseller) and its user, if the token
//! names one, exists and is not disabled. A token outlives such changes (up to its expiry);
//! this check, on every request and WebSocket handshake, makes them take effect within the
//! cache's few seconds. A token for an organisation that never existed is refused the same
//! way, instead of failing later on a foreign key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entity::enums::{OrganizationStatus, Role};
use entity::{customer, reseller, user, vendor};
use sea_orm::EntityTrait;

use super::Domain;
use super::actor::Actor;
use super::error::Result;

/// Most callers remembered before the cache starts over.
const CAPACITY: usize = 10_000;

/// Who a token speaks for: role, organisation and user.
type Caller = (Role, Option<i64>, Option<i64>);

/// Recent answers per caller, for `ttl`.
pub struct Standing {
    ttl: Duration,
    answers: Mutex<HashMap<Caller, (Instant, bool)>>,
}

impl Standing {
    /// A cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, answers: Mutex::new(HashMap::new()) }
    }

    /// Whether `actor` may act now.
    pub async fn check(&self, domain: &Domain, actor: &Actor) -> Result<bool> {
        let key = (actor.role(), actor.organization_id(), actor.user_id);
        if let Ok(answers) = self.answers.lock()
            && let Some((at, good)) = answers.get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(*good);
        }
        let good = look_up(domain, actor).await?;
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= CAPACITY {
                answers.clear();
            }
            answers.insert(key, (Instant::now(), good));
        }
        Ok(good)
    }
}

async fn look_up(domain: &Domain, actor: &Actor) -> Result<bool> {
    let db = &domain.db;
    let active = |status: OrganizationStatus| status == OrganizationStatus::Active;
    if let Some(user_id) = actor.user_id {
        match user::Entity::find_by_id(user_id).one(db).await? {
            Some(user) if !user.disabled => {}
            _ => return Ok(false),
        }
    }
    let organisation = match (actor.role(), actor.organization_id()) {
        (Role::Operator, _) => true,
        (Role::Vendor, Some(id)) => vendor::Entity::find_by_id(id).one(db).await?.is_some_and(|v| active(v.status)),
        (Role::Reseller, Some(id)) => reseller::Entity::find_by_id(id).one(db).await?.is_some_and(|r| active(r.status)),
        (Role::Customer, Some(id)) => match customer::Entity::find_by_id(id).one(db).await? {
            Some(customer) if active(customer.status) => {
                reseller::Entity::find_by_id(customer.reseller_id).one(db).await?.is_some_and(|r| active(r.status))
            }
            _ => false,
        },
        _ => false,
    };
    Ok(organisation)
}
