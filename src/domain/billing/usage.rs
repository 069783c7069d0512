//! Usage records: accepted in batches, deduplicated by external id forever, and only for
//! time the subscription was in force (bought, not cancelled or ended, not in the future).
//!
//! A retry of an accepted record is reported as DUPLICATE — not an error, and never a
//! second charge — because the unique key (reseller, external id) outlives billing.

use crate::domain::ids::SubscriptionId;
use crate::domain::write::{Audit, Write};
use chrono::{DateTime, Utc};
use entity::enums::{Role, SubscriptionChangeKind, SubscriptionStatus};
use entity::{DbDecimal, offer, subscription, subscription_change, usage_record};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::money::parse_price;
use crate::domain::subscriptions::get_subscription;
use crate::domain::{Domain, validate};

/// Most records in one call.
pub const MAX_BATCH: usize = 1000;

/// Most units in one record: a billion (of GB, calls…), so a month's usage times its price
/// stays far inside what an amount may hold.
pub fn max_quantity() -> Decimal {
    Decimal::from(1_000_000_000)
}

/// One usage record as sent.
#[derive(Clone, Debug)]
pub struct NewUsage {
    /// The metered subscription.
    pub subscription_id: SubscriptionId,
    /// The sender's id for this record, unique forever.
    pub external_id: String,
    /// The meter, which must be the offer's.
    pub meter: String,
    /// Units used.
    pub quantity: Decimal,
    /// When the usage happened (UTC).
    pub occurred_at: DateTime<Utc>,
}

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageOutcome {
    /// Stored; it will be billed.
    Accepted,
    /// Seen before: nothing stored, nothing billed twice.
    Duplicate,
}

/// What a batch needs to know of a subscription, looked up once per batch: the row, its
/// offer's meter, and the span it was in force (from the vendor's provisioning — after a
/// refusal, the retry's — to its cancellation or its term's end; none for a refused purchase).
struct Life {
    subscription: subscription::Model,
    meter: Option<String>,
    provisioned: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
}

impl Life {
    async fn of<C: ConnectionTrait>(db: &C, subscription: subscription::Model) -> Result<Self> {
        let meter = offer::Entity::find_by_id(subscription.offer_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("offer"))?
            .usage_meter;
        let first = |kind: SubscriptionChangeKind, latest: bool| {
            let find = subscription_change::Entity::find()
                .filter(subscription_change::Column::SubscriptionId.eq(subscription.id))
                .filter(subscription_change::Column::Kind.eq(kind));
            let find = if latest {
                find.order_by_desc(subscription_change::Column::Id)
            } else {
                find.order_by_asc(subscription_change::Column::Id)
            };
            async move { Ok::<_, Error>(find.one(db).await?.map(|c| c.occurred_at)) }
        };
        let provisioned = first(SubscriptionChangeKind::Provisioned, false).await?;
        let ended = match subscription.status {
            SubscriptionStatus::Expired => subscription.term_end,
            SubscriptionStatus::Cancelled => first(SubscriptionChangeKind::Cancel, true).await?,
            _ => None,
        };
        Ok(Self { subscription, meter, provisioned, ended })
    }

    /// Why usage at `at` cannot belong to the subscription: before it was bought or
    /// provisioned, in the future, after it ended, or for a purchase the vendor refused.
    fn refuses(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> Option<&'static str> {
        if at < self.subscription.created_at {
            return Some("is before the subscription was bought");
        }
        if at > now {
            return Some("is in the future");
        }
        if self.provisioned.is_none_or(|p| at < p) {
            return Some("is before the vendor provisioned the subscription");
        }
        if self.subscription.status == SubscriptionStatus::Failed {
            return Some("the vendor refused the purchase: nothing was in force");
        }
        self.ended.filter(|end| at >= *end).map(|_| "is after the subscription ended")
    }
}

/// Records a batch of usage (the reseller of the subscriptions, or the operator).
pub async fn record_usage(domain: &Domain, actor: &Actor, records: Vec<NewUsage>) -> Result<Vec<UsageOutcome>> {
    actor.require_role(&[Role::Operator, Role::Reseller])?;
    if records.is_empty() || records.len() > MAX_BATCH {
        return Err(Error::validation("records", format!("send between 1 and {MAX_BATCH} records")));
    }
    let now = domain.clock.now();
    let w = Write::begin(domain).await?;
    let mut outcomes = Vec::with_capacity(records.len());
    let mut lives: std::collections::HashMap<i64, Life> = std::collections::HashMap::new();
    // An ended subscription billing skipped is planned again: its row is written (and, on
    // PostgreSQL, locked, in id order, once for the batch) before its records, so a run
    // settling it either sees the records or is undone by this.
    let mut ids: Vec<i64> = records.iter().map(|r| r.subscription_id.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    subscription::Entity::update_many()
        .col_expr(subscription::Column::BillingSettled, sea_orm::sea_query::Expr::value(false))
        .filter(subscription::Column::Id.is_in(ids))
        .exec(w.db())
        .await?;
    for (index, record) in records.into_iter().enumerate() {
        let field = |name: &str| format!("records[{index}].{name}");
        let external_id = validate::text(&record.external_id, 255, &field("externalId"))?;
        let quantity = parse_price(record.quantity, &field("quantity"))?;
        if quantity > max_quantity() {
            return Err(Error::validation(field("quantity"), format!("at most {} units per record", max_quantity())));
        }
        let life = match lives.entry(record.subscription_id.get()) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let subscription = get_subscription(w.db(), actor, record.subscription_id)
                    .await
                    .map_err(|_| Error::validation(field("subscriptionId"), "no such subscription"))?;
                slot.insert(Life::of(w.db(), subscription).await?)
            }
        };
        if life.meter.as_deref() != Some(record.meter.as_str()) {
            return Err(Error::validation(field("meter"), "the subscription's offer has no such meter"));
        }
        let occurred_at = crate::domain::clock::truncate_to_micros(record.occurred_at);
        if let Some(why) = life.refuses(occurred_at, now) {
            return Err(Error::validation(field("occurredAt"), why));
        }
        let subscription = &life.subscription;
        let inserted = usage_record::Entity::insert(usage_record::ActiveModel {
            id: NotSet,
            reseller_id: Set(subscription.reseller_id),
            customer_id: Set(subscription.customer_id),
            subscription_id: Set(subscription.id),
            external_id: Set(external_id),
            meter: Set(record.meter),
            quantity: Set(DbDecimal(quantity)),
            occurred_at: Set(occurred_at),
            received_at: Set(now),
            billed_period: Set(None),
            charge_id: Set(None),
        })
        .on_conflict(
            OnConflict::columns([usage_record::Column::ResellerId, usage_record::Column::ExternalId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(w.db())
        .await?;
        outcomes.push(if inserted == 1 { UsageOutcome::Accepted } else { UsageOutcome::Duplicate });
    }
    let accepted = outcomes.iter().filter(|o| **o == UsageOutcome::Accepted).count();
    w.commit(Audit::action(
        actor,
        "recordUsage",
        "usage_record",
        None,
        serde_json::json!({"accepted": accepted, "duplicates": outcomes.len() - accepted}),
    ))
    .await?;
    Ok(outcomes)
}
