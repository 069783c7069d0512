//! Dated exchange rates the operator maintains (Partner Center's `PCToBCExchangeRate`): one
//! unit of one currency is `rate` units of another from an instant on. Billing converts a
//! charge into the reseller's currency at the rate in force on the day the charge starts;
//! with no rate in force it reports the gap and guesses nothing.

use chrono::{DateTime, NaiveDate, Utc};
use entity::exchange_rate;
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use super::Domain;
use super::actor::Actor;
use super::error::{Error, Result, map_unique_violation};
use super::money::{Currency, parse_rate};
use super::write::{Audit, Write};
use entity::DbDecimal;
use entity::enums::Role;

/// The largest rate accepted (1 unit of a currency worth a million of another).
pub fn max_rate() -> Decimal {
    Decimal::from(1_000_000)
}

/// A rate to record.
#[derive(Clone, Debug)]
pub struct NewExchangeRate {
    /// ISO 4217 code converted from.
    pub from: String,
    /// ISO 4217 code converted to.
    pub to: String,
    /// Units of `to` per unit of `from`.
    pub rate: Decimal,
    /// When it takes effect (now when omitted).
    pub effective_from: Option<DateTime<Utc>>,
}

/// Records a dated rate (operator only). A rate from the same instant already recorded is a
/// CONFLICT: rates are history, and lines converted at the old one keep it.
pub async fn set_exchange_rate(domain: &Domain, actor: &Actor, input: NewExchangeRate) -> Result<exchange_rate::Model> {
    actor.require_operator()?;
    let from = Currency::parse(&input.from, "input.from")?;
    let to = Currency::parse(&input.to, "input.to")?;
    if from == to {
        return Err(Error::validation("input.to", "must differ from input.from"));
    }
    let rate = parse_rate(input.rate, max_rate(), "input.rate")?;
    if rate.is_zero() {
        return Err(Error::validation("input.rate", "must be more than 0"));
    }
    let w = Write::begin(domain).await?;
    let now = w.now();
    let model = exchange_rate::ActiveModel {
        id: NotSet,
        from_currency: Set(from.code().to_owned()),
        to_currency: Set(to.code().to_owned()),
        rate: Set(DbDecimal(rate)),
        effective_from: Set(crate::domain::clock::truncate_to_micros(input.effective_from.unwrap_or(now))),
        created_at: Set(now),
    }
    .insert(w.db())
    .await
    .map_err(|e| {
        map_unique_violation(
            e,
            &["uq_exchange_rates", "exchange_rates.from_currency"],
            Error::conflict("RATE_EXISTS", "a rate between these currencies from that instant exists"),
        )
    })?;
    let details = serde_json::json!({"from": model.from_currency, "to": model.to_currency, "rate": rate.to_string()});
    w.commit(Audit::action(actor, "setExchangeRate", "exchange_rate", Some(model.id), details)).await?;
    Ok(model)
}

/// The recorded rates, optionally between two currencies, oldest first (the operator and
/// resellers, whose invoices they convert).
pub async fn list_exchange_rates(
    domain: &Domain,
    actor: &Actor,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<exchange_rate::Model>> {
    actor.require_role(&[Role::Operator, Role::Reseller])?;
    let mut select = exchange_rate::Entity::find();
    if let Some(from) = from {
        select = select.filter(exchange_rate::Column::FromCurrency.eq(Currency::parse(from, "from")?.code()));
    }
    if let Some(to) = to {
        select = select.filter(exchange_rate::Column::ToCurrency.eq(Currency::parse(to, "to")?.code()));
    }
    Ok(select
        .order_by_asc(exchange_rate::Column::FromCurrency)
        .order_by_asc(exchange_rate::Column::ToCurrency)
        .order_by_asc(exchange_rate::Column::EffectiveFrom)
        .all(&domain.db)
        .await?)
}

/// Every recorded rate, to convert a run's charges.
pub async fn all_rates<C: ConnectionTrait>(db: &C) -> Result<Rates> {
    Ok(Rates(exchange_rate::Entity::find().order_by_asc(exchange_rate::Column::EffectiveFrom).all(db).await?))
}

/// Recorded rates, oldest first.
pub struct Rates(Vec<exchange_rate::Model>);

impl Rates {
    /// The rate from `from` to `to` in force at the start of `day` (UTC), if any.
    pub fn in_force(&self, from: &str, to: &str, day: NaiveDate) -> Option<Decimal> {
        let start = day.and_hms_opt(0, 0, 0)?.and_utc();
        self.0
            .iter()
            .rfind(|r| r.from_currency == from && r.to_currency == to && r.effective_from <= start)
            .map(|r| r.rate.0)
    }
}
