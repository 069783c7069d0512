//! Orders: quoting, placing (idempotently), and deriving an order's status from its lines.
//!
//! `place_order` writes the order, its lines, one PENDING subscription per line (with its
//! purchase seat batch and change record), one provisioning job per line, and the events,
//! all in one transaction: no order without its jobs, no job without its order.
//!
//! Idempotency follows the Stripe model, with keys scoped to the customer ordered for: the
//! same key for the same customer with the same input returns the original order (marked as
//! a replay), whether the customer or its reseller sends it; the same key with another input
//! is CONFLICT (IDEMPOTENCY_KEY_REUSED); another customer's identical key — of the same
//! reseller too — is unrelated, so one customer never replays, nor learns of, another's
//! order. The unique index on (customer, key) decides races; the loser reads the winner's
//! order.

use crate::domain::Tenant;
use crate::domain::ids::{CustomerId, OfferId, OrderId};
use crate::domain::write::{Audit, Write};
use chrono::{DateTime, Utc};
use entity::enums::{
    CatalogStatus, OrderLineStatus, OrderStatus, ProvisioningAction, Role, SeatBatchSource, SubscriptionChangeKind,
    SubscriptionStatus,
};
use entity::{DbDecimal, customer, offer, order, order_line};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, NotSet, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Domain;
use super::actor::Actor;
use super::catalog::{self, resolve_reseller_prices};
use super::customers::get_customer;
use super::error::{Error, Result, map_unique_violation};
use super::events::{DomainEvent, EventKind};
use super::jobs::{self, NewJob};
use super::lifecycle::term_end;
use super::money::{Currency, MAX_QUANTITY, checked_total, max_storable};
use super::pricing::in_force;

/// Most lines in one order.
pub const MAX_LINES: usize = 100;
/// One requested line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLineInput {
    /// The offer.
    pub offer_id: OfferId,
    /// Seats or units.
    pub quantity: i32,
}

/// What a caller orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderInput {
    /// The customer it is for.
    pub customer_id: CustomerId,
    /// The lines.
    pub lines: Vec<OrderLineInput>,
    /// The buyer's purchase-order number.
    pub po_number: Option<String>,
}

/// A priced line: the three unit prices of the cascade and the line amounts.
#[derive(Clone, Debug, PartialEq)]
pub struct PricedLine {
    /// 1-based position.
    pub line_number: i32,
    /// The offer.
    pub offer: offer::Model,
    /// Seats or units.
    pub quantity: i32,
    /// Vendor → operator unit price.
    pub unit_cost: Decimal,
    /// Operator → reseller unit price.
    pub unit_wholesale: Decimal,
    /// Reseller → customer unit price.
    pub unit_retail: Decimal,
    /// Unit cost × quantity, rounded to minor units.
    pub amount_cost: Decimal,
    /// Unit wholesale × quantity, rounded.
    pub amount_wholesale: Decimal,
    /// Unit retail × quantity, rounded.
    pub amount_retail: Decimal,
}

/// A priced order, written or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    /// The customer.
    pub customer: customer::Model,
    /// The currency of every amount (the customer's).
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// Sum of line costs.
    pub total_cost: Decimal,
    /// Sum of line wholesale amounts.
    pub total_wholesale: Decimal,
    /// Sum of line retail amounts.
    pub total_retail: Decimal,
}

/// The result of `place_order`.
#[derive(Clone, Debug)]
pub struct PlacedOrder {
    /// The order (the original one on a replay).
    pub order: order::Model,
    /// Whether this call replayed an earlier one with the same key.
    pub replayed: bool,
    /// What the answer shows besides the order, read or written before the commit.
    pub shown: OrderShown,
}

/// What an answer about an order shows besides its row — its customer, lines, their
/// subscriptions and those subscriptions' histories — as the write that made them wrote
/// them (a replay reads them back), so that the answer to a committed order needs no
/// further read.
#[derive(Clone, Debug)]
pub struct OrderShown {
    /// The customer ordered for, with its reseller and vendor accounts.
    pub customer: super::customers::CustomerShown,
    /// The lines, by line number.
    pub lines: Vec<order_line::Model>,
    /// The lines' subscriptions.
    pub subscriptions: Vec<entity::subscription::Model>,
    /// Their recorded changes, oldest first.
    pub histories: Vec<entity::subscription_change::Model>,
}

impl OrderShown {
    /// Reads what an answer about `order`, placed for `customer` (already read), shows,
    /// through `db`.
    pub async fn read<C: ConnectionTrait>(db: &C, order: &order::Model, customer: &customer::Model) -> Result<Self> {
        use entity::{subscription, subscription_change};
        let customer = super::customers::CustomerShown::of(db, customer.clone()).await?;
        let lines = order_line::Entity::find()
            .filter(order_line::Column::OrderId.eq(order.id))
            .order_by_asc(order_line::Column::LineNumber)
            .all(db)
            .await?;
        let ids: Vec<i64> = lines.iter().filter_map(|l| l.subscription_id).collect();
        let subscriptions =
            subscription::Entity::find().filter(subscription::Column::Id.is_in(ids.iter().copied())).all(db).await?;
        let histories = subscription_change::Entity::find()
            .filter(subscription_change::Column::SubscriptionId.is_in(ids))
            .order_by_asc(subscription_change::Column::Id)
            .all(db)
            .await?;
        Ok(Self { customer, lines, subscriptions, histories })
    }
}

/// Refuses callers who do not order: only resellers, and customers for themselves.
fn require_buyer(actor: &Actor) -> Result<()> {
    actor.require_role(&[Role::Reseller, Role::Customer])
}

/// Prices `input` for `actor` now, checking everything `place_order` checks.
pub async fn quote_order(domain: &Domain, actor: &Actor, input: &OrderInput) -> Result<Quote> {
    require_buyer(actor)?;
    price(domain, actor, input, domain.clock.now()).await
}

async fn price(domain: &Domain, actor: &Actor, input: &OrderInput, at: DateTime<Utc>) -> Result<Quote> {
    if input.lines.is_empty() {
        return Err(Error::validation("input.lines", "an order needs at least one line"));
    }
    if input.lines.len() > MAX_LINES {
        return Err(Error::validation("input.lines", format!("at most {MAX_LINES} lines")));
    }
    if let Some(po) = &input.po_number {
        super::validate::text(po, 100, "input.poNumber")?;
    }
    let customer = get_customer(&domain.db, actor, input.customer_id).await?;
    if customer.status != entity::enums::OrganizationStatus::Active {
        return Err(Error::InvalidTransition("the customer is inactive".into()));
    }
    let currency = Currency::parse(&customer.currency, "input.customerId")?;
    let snapshot = domain.catalog.snapshot(&domain.db).await?;
    let pricing =
        domain.catalog.reseller_pricing(&domain.db, customer.reseller_id).await?.ok_or(Error::NotFound("reseller"))?;
    let mut lines = Vec::with_capacity(input.lines.len());
    for (index, line) in input.lines.iter().enumerate() {
        let field = |name: &str| format!("input.lines[{index}].{name}");
        let offer = catalog::get_offer(actor, &snapshot, line.offer_id)
            .map_err(|_| Error::validation(field("offerId"), "no such offer"))?;
        if offer.status != CatalogStatus::Active {
            return Err(Error::validation(field("offerId"), "the offer is retired"));
        }
        let max = offer.max_quantity.min(MAX_QUANTITY);
        if line.quantity < offer.min_quantity.max(1) || line.quantity > max {
            return Err(Error::validation(
                field("quantity"),
                format!("must be between {} and {max}", offer.min_quantity.max(1)),
            ));
        }
        let points: Vec<_> = snapshot
            .price_points
            .get(&offer.id)
            .into_iter()
            .flatten()
            .filter(|p| p.currency == currency.code())
            .collect();
        let point = in_force(&points, at)
            .ok_or_else(|| Error::validation(field("offerId"), format!("the offer has no {currency} price")))?;
        let (unit_wholesale, unit_retail) = resolve_reseller_prices(&snapshot, offer, point, &pricing, at);
        // A whole cycle is priced by the proration rule with every day used, so a quote and
        // the invoice of a full cycle agree to the cent under either rounding policy.
        let quantity = Decimal::from(line.quantity);
        let cycle =
            |unit| super::billing::proration::prorate(unit, quantity, 1, 1, currency, domain.billing.rounding).amount;
        lines.push(PricedLine {
            line_number: i32::try_from(index + 1).unwrap_or(i32::MAX),
            offer: offer.clone(),
            quantity: line.quantity,
            unit_cost: point.cost.0,
            unit_wholesale,
            unit_retail,
            amount_cost: cycle(point.cost.0),
            amount_wholesale: cycle(unit_wholesale),
            amount_retail: cycle(unit_retail),
        });
    }
    // Each line is within bounds (prices, markups and quantities are); their sums are checked.
    let total = |amount: fn(&PricedLine) -> Decimal| {
        checked_total(lines.iter().map(amount)).ok_or_else(|| {
            Error::validation(
                "input.lines",
                format!("the order's total is larger than an amount may be ({})", max_storable()),
            )
        })
    };
    Ok(Quote {
        total_cost: total(|l| l.amount_cost)?,
        total_wholesale: total(|l| l.amount_wholesale)?,
        total_retail: total(|l| l.amount_retail)?,
        customer,
        currency,
        lines,
    })
}

/// The SHA-256 of the canonical input, to tell a replay from a reused key.
pub fn request_hash(input: &OrderInput) -> String {
    let canonical = json!({
        "customerId": input.customer_id,
        "lines": input.lines.iter().map(|l| json!([l.offer_id, l.quantity])).collect::<Vec<_>>(),
        "poNumber": input.po_number,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

async fn find_by_key<C: ConnectionTrait>(db: &C, customer_id: i64, key: &str) -> Result<Option<order::Model>> {
    Ok(order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(order::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

async fn replay_or_conflict(
    domain: &Domain,
    existing: order::Model,
    hash: &str,
    customer: &customer::Model,
) -> Result<PlacedOrder> {
    if existing.request_hash == hash {
        let shown = OrderShown::read(&domain.db, &existing, customer).await?;
        Ok(PlacedOrder { order: existing, replayed: true, shown })
    } else {
        Err(Error::conflict("IDEMPOTENCY_KEY_REUSED", "this idempotency key was used for a different order"))
    }
}

/// Places an order: see the module documentation.
pub async fn place_order(
    domain: &Domain,
    actor: &Actor,
    input: OrderInput,
    idempotency_key: &str,
) -> Result<PlacedOrder> {
    require_buyer(actor)?;
    let key = super::validate::text(idempotency_key, 255, "idempotencyKey")?;
    let hash = request_hash(&input);
    let now = domain.clock.now();
    let quote = price(domain, actor, &input, now).await?;
    let reseller_id = quote.customer.reseller_id;
    if let Some(existing) = find_by_key(&domain.db, quote.customer.id, &key).await? {
        return replay_or_conflict(domain, existing, &hash, &quote.customer).await;
    }
    // Read before the write, which then holds its transaction (on SQLite, the process's
    // write turn) for its own statements only: the answer is made of this and what it writes.
    // A vendor account changed while this order waits for its turn is the next order's: the
    // job's customerExternalId is the one read here (on PostgreSQL no lock held it before
    // either), and a vendor that needs the tenant answers with it.
    let customer = super::customers::CustomerShown::of(&domain.db, quote.customer.clone()).await?;
    let mut w = Write::begin(domain).await?;
    let inserted = order::ActiveModel {
        id: NotSet,
        reseller_id: Set(reseller_id),
        customer_id: Set(quote.customer.id),
        placed_by_user_id: Set(actor.user_id),
        idempotency_key: Set(key.clone()),
        request_hash: Set(hash.clone()),
        po_number: Set(input.po_number.clone()),
        status: Set(OrderStatus::Processing),
        currency: Set(quote.currency.code().to_owned()),
        total_cost: Set(DbDecimal(quote.total_cost)),
        total_wholesale: Set(DbDecimal(quote.total_wholesale)),
        total_retail: Set(DbDecimal(quote.total_retail)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(w.db())
    .await;
    let order = match inserted {
        Ok(order) => order,
        Err(error) => {
            let conflict = map_unique_violation(
                error,
                &["uq_orders_customer_idempotency_key", "orders.customer_id, orders.idempotency_key"],
                Error::conflict("IDEMPOTENCY_KEY_RACE", "raced"),
            );
            w.rollback().await;
            return match conflict {
                Error::Conflict { reason: "IDEMPOTENCY_KEY_RACE", .. } => {
                    let existing =
                        find_by_key(&domain.db, quote.customer.id, &key).await?.ok_or(Error::NotFound("order"))?;
                    replay_or_conflict(domain, existing, &hash, &quote.customer).await
                }
                other => Err(other),
            };
        }
    };
    let mut events = vec![DomainEvent {
        reseller_id: Some(reseller_id),
        customer_id: Some(quote.customer.id),
        order_id: Some(order.id),
        ..DomainEvent::new(EventKind::OrderPlaced, "PROCESSING", now)
    }];
    let mut shown = OrderShown { customer, lines: Vec::new(), subscriptions: Vec::new(), histories: Vec::new() };
    for line in &quote.lines {
        events.push(write_line(&mut w, actor, &quote, &order, line, &mut shown, now).await?);
    }
    w.emit_all(events).await?;
    w.commit(Audit::action(actor, "placeOrder", "order", Some(order.id), json!({"lines": quote.lines.len()}))).await?;
    Ok(PlacedOrder { order, replayed: false, shown })
}

/// Writes one line: the line, its subscription, seat batch, change record and job; adds
/// the rows written to `shown` and returns the line's event.
async fn write_line(
    w: &mut Write<'_>,
    actor: &Actor,
    quote: &Quote,
    order: &order::Model,
    line: &PricedLine,
    shown: &mut OrderShown,
    now: DateTime<Utc>,
) -> Result<DomainEvent> {
    let offer = &line.offer;
    let subscription = entity::subscription::ActiveModel {
        id: NotSet,
        customer_id: Set(quote.customer.id),
        reseller_id: Set(quote.customer.reseller_id),
        vendor_id: Set(offer.vendor_id),
        offer_id: Set(offer.id),
        order_id: Set(Some(order.id)),
        quantity: Set(line.quantity),
        status: Set(SubscriptionStatus::Pending),
        term: Set(offer.term),
        billing_frequency: Set(offer.billing_frequency),
        term_start: Set(Some(now)),
        term_end: Set(Some(term_end(offer.term, now))),
        auto_renew: Set(true),
        vendor_reference: Set(None),
        update_count: Set(0),
        currency: Set(quote.currency.code().to_owned()),
        unit_cost: Set(DbDecimal(line.unit_cost)),
        unit_wholesale: Set(DbDecimal(line.unit_wholesale)),
        unit_retail: Set(DbDecimal(line.unit_retail)),
        prices_locked_at: Set(now),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        billing_settled: Set(false),
        sync_issue: Set(None),
    }
    .insert(w.db())
    .await?;
    let written_line = order_line::ActiveModel {
        id: NotSet,
        order_id: Set(order.id),
        line_number: Set(line.line_number),
        offer_id: Set(offer.id),
        subscription_id: Set(Some(subscription.id)),
        quantity: Set(line.quantity),
        currency: Set(quote.currency.code().to_owned()),
        unit_cost: Set(DbDecimal(line.unit_cost)),
        unit_wholesale: Set(DbDecimal(line.unit_wholesale)),
        unit_retail: Set(DbDecimal(line.unit_retail)),
        status: Set(OrderLineStatus::Pending),
        created_at: Set(now),
    }
    .insert(w.db())
    .await?;
    super::lifecycle::add_seat_batch(w.db(), subscription.id, SeatBatchSource::Purchase, line.quantity, now).await?;
    let change = super::lifecycle::record_change(
        w.db(),
        &subscription,
        actor,
        SubscriptionChangeKind::Purchase,
        (0, line.quantity),
        (SubscriptionStatus::Pending, SubscriptionStatus::Pending),
        None,
        now,
    )
    .await?;
    let external_id = shown
        .customer
        .vendor_accounts
        .iter()
        .find(|account| account.vendor_id == offer.vendor_id)
        .map(|account| account.external_id.clone());
    let payload = json!({"sku": offer.sku, "quantity": line.quantity, "customerExternalId": external_id,
                         "term": subscription.term, "billingFrequency": subscription.billing_frequency});
    let job = jobs::enqueue(w, NewJob::provisioning(&subscription, ProvisioningAction::Purchase, payload)).await?;
    let event = DomainEvent {
        vendor_id: Some(offer.vendor_id),
        reseller_id: Some(subscription.reseller_id),
        customer_id: Some(subscription.customer_id),
        order_id: Some(order.id),
        subscription_id: Some(subscription.id),
        job_id: Some(job.id),
        quantity: Some(subscription.quantity),
        ..DomainEvent::new(EventKind::ProvisioningStatusChanged, "PENDING", now)
    };
    shown.lines.push(written_line);
    shown.subscriptions.push(subscription);
    shown.histories.push(change);
    Ok(event)
}

/// The status an order derives from its lines' statuses.
pub fn derive_status(lines: &[OrderLineStatus]) -> OrderStatus {
    let done = |s: &&OrderLineStatus| matches!(s, OrderLineStatus::Succeeded | OrderLineStatus::Failed);
    if lines.is_empty() || !lines.iter().all(|s| done(&s)) {
        OrderStatus::Processing
    } else if lines.iter().all(|s| *s == OrderLineStatus::Succeeded) {
        OrderStatus::Completed
    } else if lines.iter().all(|s| *s == OrderLineStatus::Failed) {
        OrderStatus::Failed
    } else {
        OrderStatus::PartiallyFailed
    }
}

/// Sets the line of `subscription_id` to `status` and re-derives its order's status; the
/// order event when it changed.
pub async fn update_line_status(
    txn: &DatabaseTransaction,
    order_id: i64,
    subscription_id: i64,
    status: OrderLineStatus,
    now: DateTime<Utc>,
) -> Result<Option<DomainEvent>> {
    // Lock the order first: two workers finishing two lines at once must not both derive
    // the status from a view that misses the other's line (SQLite serializes writers anyway).
    let mut find_order = order::Entity::find_by_id(order_id);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        find_order = find_order.lock_exclusive();
    }
    let order = find_order.one(txn).await?.ok_or(Error::NotFound("order"))?;
    let lines = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(order_id))
        .order_by_asc(order_line::Column::LineNumber)
        .all(txn)
        .await?;
    let mut statuses = Vec::with_capacity(lines.len());
    for line in lines {
        if line.subscription_id == Some(subscription_id) && line.status != status {
            let mut model: order_line::ActiveModel = line.into();
            model.status = Set(status);
            model.update(txn).await?;
            statuses.push(status);
        } else {
            statuses.push(line.status);
        }
    }
    let derived = derive_status(&statuses);
    if derived == order.status {
        return Ok(None);
    }
    let (reseller_id, customer_id) = (order.reseller_id, order.customer_id);
    let mut model: order::ActiveModel = order.into();
    model.status = Set(derived);
    model.updated_at = Set(now);
    model.update(txn).await?;
    Ok(Some(DomainEvent {
        reseller_id: Some(reseller_id),
        customer_id: Some(customer_id),
        order_id: Some(order_id),
        ..DomainEvent::new(EventKind::OrderStatusChanged, order_status_name(derived), now)
    }))
}

/// The order status's name as the API spells it.
pub fn order_status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Processing => "PROCESSING",
        OrderStatus::Completed => "COMPLETED",
        OrderStatus::PartiallyFailed => "PARTIALLY_FAILED",
        OrderStatus::Failed => "FAILED",
    }
}

/// An order the caller may see (operator: any; reseller: its own; customer: its own).
pub async fn get_order(domain: &Domain, actor: &Actor, id: OrderId) -> Result<order::Model> {
    let order = order::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("order"))?;
    if can_see(actor, &order) { Ok(order) } else { Err(Error::NotFound("order")) }
}

fn can_see(actor: &Actor, order: &order::Model) -> bool {
    actor.is_operator()
        || actor.reseller_id() == Some(order.reseller_id)
        || actor.customer_id() == Some(order.customer_id)
}

/// A page of the orders the caller may see, newest last.
pub async fn list_orders(
    domain: &Domain,
    actor: &Actor,
    customer_id: Option<CustomerId>,
    page: super::pagination::PageRequest,
) -> Result<super::pagination::Page<order::Model>> {
    let mut select = visible_orders(actor)?;
    if let Some(customer_id) = customer_id {
        select = select.filter(order::Column::CustomerId.eq(customer_id));
    }
    super::pagination::fetch_page(&domain.db, select, order::Column::Id, page).await
}

/// The caller's `limit` (1 to 100) most recent orders, newest first.
pub async fn recent_orders(domain: &Domain, actor: &Actor, limit: u64) -> Result<Vec<order::Model>> {
    let newest = visible_orders(actor)?.order_by_desc(order::Column::Id).limit(limit.clamp(1, 100));
    Ok(newest.all(&domain.db).await?)
}

fn visible_orders(actor: &Actor) -> Result<sea_orm::Select<order::Entity>> {
    Ok(match actor.tenant {
        Tenant::Operator => order::Entity::find(),
        Tenant::Reseller(reseller) => order::Entity::find().filter(order::Column::ResellerId.eq(reseller)),
        Tenant::Customer(customer) => order::Entity::find().filter(order::Column::CustomerId.eq(customer)),
        Tenant::Vendor(_) => return Err(Error::Forbidden("vendors do not see orders".into())),
    })
}

/// The lines of an order (the caller has already been allowed to see the order).
pub async fn order_lines(domain: &Domain, order_ids: &[i64]) -> Result<Vec<order_line::Model>> {
    Ok(order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(order_ids.iter().copied()))
        .order_by_asc(order_line::Column::LineNumber)
        .all(&domain.db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderLineStatus as L;

    #[test]
    fn order_status_derives_from_lines() {
        assert_eq!(derive_status(&[L::Pending, L::Succeeded]), OrderStatus::Processing);
        assert_eq!(derive_status(&[L::Provisioning]), OrderStatus::Processing);
        assert_eq!(derive_status(&[L::Succeeded, L::Succeeded]), OrderStatus::Completed);
        assert_eq!(derive_status(&[L::Failed, L::Failed]), OrderStatus::Failed);
        assert_eq!(derive_status(&[L::Succeeded, L::Failed]), OrderStatus::PartiallyFailed);
    }

    #[test]
    fn the_request_hash_depends_on_every_input() {
        let input = OrderInput {
            customer_id: CustomerId::new(1),
            lines: vec![OrderLineInput { offer_id: OfferId::new(2), quantity: 3 }],
            po_number: None,
        };
        let mut other = input.clone();
        other.lines[0].quantity = 4;
        assert_eq!(request_hash(&input), request_hash(&input.clone()));
        assert_ne!(request_hash(&input), request_hash(&other));
        other = input.clone();
        other.po_number = Some("PO-1".into());
        assert_ne!(request_hash(&input), request_hash(&other));
    }
}
