//! Resolving a finding (operator only): it is **explained** (with a note), or its leakage is
//! **recovered** — an UNBILLED or UNDERBILLED amount becomes a charge (ADJUSTMENT, key
//! `recovery:<finding>`) that the next billing run puts on the reseller's invoice, and on the
//! customer's when the operator says so, described with the statement and the finding it
//! comes from. A finding is resolved once: the update is conditional on it being OPEN, and
//! the charge's key is unique per subscription, so recovering twice is impossible even for
//! two operators at the same instant. A recovery is refused when the cycle's billing changed
//! since matching (BILLED_BY_NEXT_RUN, STALE_FINDING): it would bill the cycle twice. Every resolution writes an audit row and an event.

use chrono::Duration;
use entity::enums::ChargeKind;
use entity::{DbDecimal, charge, reconciliation_finding, reconciliation_import, subscription};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use super::matching::Category;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::billing::terms::Period;
use crate::domain::error::{Error, Result, map_unique_violation};
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::money::{Currency, round_to_minor_units};
use crate::domain::validate;
use crate::domain::write::{Audit, Write};

/// The longest note kept on a finding.
pub const MAX_NOTE: usize = 2_000;

/// An event about reconciliation: the operator's alone (it names no tenant).
pub fn reconciliation_event(status: &str, at: chrono::DateTime<chrono::Utc>, detail: serde_json::Value) -> DomainEvent {
    DomainEvent { detail: Some(detail.to_string()), ..DomainEvent::new(EventKind::ReconciliationChanged, status, at) }
}

/// Marks finding `id` explained, with `note` (required).
pub async fn explain_finding(
    domain: &Domain,
    actor: &Actor,
    id: i64,
    note: &str,
) -> Result<reconciliation_finding::Model> {
    actor.require_operator()?;
    let note = validate::text(note, MAX_NOTE, "note")?;
    let finding = find(domain, id).await?;
    let mut w = Write::begin(domain).await?;
    lock_import(&w, finding.import_id).await?;
    let now = w.now();
    let updated = reconciliation_finding::Entity::update_many()
        .col_expr(reconciliation_finding::Column::Status, Expr::value("EXPLAINED"))
        .col_expr(reconciliation_finding::Column::Note, Expr::value(Some(note.clone())))
        .col_expr(reconciliation_finding::Column::ResolvedByUserId, Expr::value(actor.user_id))
        .col_expr(reconciliation_finding::Column::ResolvedAt, Expr::value(Some(now)))
        .filter(reconciliation_finding::Column::Id.eq(id))
        .filter(reconciliation_finding::Column::Status.eq("OPEN"))
        .exec(w.db())
        .await?;
    if updated.rows_affected == 0 {
        w.rollback().await;
        return Err(already_resolved());
    }
    let detail = serde_json::json!({"importId": finding.import_id, "findingId": id, "category": finding.category});
    w.emit(DomainEvent {
        subscription_id: finding.subscription_id,
        ..reconciliation_event("EXPLAINED", now, detail.clone())
    })
    .await?;
    w.commit(Audit::action(actor, "explainFinding", "reconciliation_finding", id, serde_json::json!({"note": note})))
        .await?;
    find(domain, id).await
}

/// Recovers finding `id`'s leakage: a charge the next run bills to the reseller, and to the
/// customer when `bill_customer`. Only UNBILLED and UNDERBILLED findings, once.
pub async fn recover_finding(
    domain: &Domain,
    actor: &Actor,
    id: i64,
    bill_customer: bool,
    note: Option<&str>,
) -> Result<reconciliation_finding::Model> {
    actor.require_operator()?;
    let note = note.map(|n| validate::free_text(n, MAX_NOTE, "note")).transpose()?.filter(|n| !n.is_empty());
    let finding = find(domain, id).await?;
    let category = Category::parse(&finding.category).ok_or_else(|| Error::internal("a finding of no category"))?;
    if finding.status != "OPEN" {
        return Err(already_resolved());
    }
    if !category.is_leakage() || finding.amount.0 <= Decimal::ZERO {
        return Err(Error::conflict(
            "NOT_RECOVERABLE",
            format!("only an UNBILLED or UNDERBILLED amount can be recovered; this finding is {}", finding.category),
        ));
    }
    // Usage of a month still open may yet be recorded, and then billed by the next run.
    if finding.unit_kind == "USAGE"
        && domain.clock.now().date_naive() < super::sides::usage_run(finding.charge_end.date_naive()).start
    {
        return Err(Error::conflict(
            "CYCLE_OPEN",
            "the cycle's usage may still be recorded: recover it once its month has ended",
        ));
    }
    let subscription_id = finding.subscription_id.ok_or_else(|| Error::internal("leakage without a subscription"))?;
    let subscription = subscription::Entity::find_by_id(subscription_id)
        .one(&domain.db)
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    let import = reconciliation_import::Entity::find_by_id(finding.import_id)
        .one(&domain.db)
        .await?
        .ok_or(Error::NotFound("import"))?;
    let amount = in_subscription_currency(&finding, &subscription.currency)?;
    let mut w = Write::begin(domain).await?;
    lock_import(&w, finding.import_id).await?;
    // Under the import's lock: resolved meanwhile (another operator) is ALREADY_RESOLVED.
    let current = find_in(&w, id).await?;
    // The subscription's row is held (as every change of it holds it), so what is charged
    // and planned for it cannot change before this commits.
    let held =
        crate::domain::write::locking(subscription::Entity::find_by_id(subscription.id), w.db()).one(w.db()).await?;
    let checked = match (current.status.as_str(), held) {
        ("OPEN", Some(subscription)) => unchanged_since_matching(domain, &finding, &subscription, &import).await,
        ("OPEN", None) => Err(Error::NotFound("subscription")),
        _ => Err(already_resolved()),
    };
    if let Err(error) = checked {
        w.rollback().await;
        return Err(error);
    }
    let now = w.now();
    let period = Period::containing(now.date_naive()).label();
    // The vendor's cost of an unbilled cycle was on no charge of ours; an underbilled one's was.
    let cost = if category == Category::Unbilled { amount } else { Decimal::ZERO };
    let retail = if bill_customer { amount } else { Decimal::ZERO };
    // Shown on invoices (the customer's too, when it bills the customer): the service and a
    // reference, not the operator's statement.
    let description = format!(
        "Recovered: service {} – {} charged by the vendor and not billed before (reconciliation R{id})",
        finding.charge_start.date_naive(),
        finding.charge_end.date_naive(),
    );
    let inserted = charge::ActiveModel {
        id: NotSet,
        subscription_id: Set(subscription.id),
        customer_id: Set(subscription.customer_id),
        reseller_id: Set(subscription.reseller_id),
        vendor_id: Set(subscription.vendor_id),
        offer_id: Set(subscription.offer_id),
        billing_run_id: Set(None),
        period: Set(period),
        kind: Set(ChargeKind::Adjustment),
        // One recovery per cycle, whichever statement found it.
        charge_key: Set(format!("recovery:{}:{}", finding.charge_end.date_naive(), finding.unit_kind)),
        description: Set(description),
        quantity: Set(DbDecimal(Decimal::ONE)),
        days_used: Set(None),
        days_in_period: Set(None),
        service_start: Set(finding.charge_start),
        service_end: Set(finding.charge_end + Duration::days(1)),
        currency: Set(subscription.currency.clone()),
        unit_cost: Set(DbDecimal(cost)),
        unit_wholesale: Set(DbDecimal(amount)),
        unit_retail: Set(DbDecimal(retail)),
        amount_cost: Set(DbDecimal(cost)),
        amount_wholesale: Set(DbDecimal(amount)),
        amount_retail: Set(DbDecimal(retail)),
        created_at: Set(now),
        customer_invoice_id: Set(None),
        reseller_invoice_id: Set(None),
        cycle_unit_cost: Set(None),
        cycle_unit_wholesale: Set(None),
        cycle_unit_retail: Set(None),
        bills_customer: Set(bill_customer),
    }
    .insert(w.db())
    .await;
    let charge = match inserted {
        Ok(charge) => charge,
        Err(error) => {
            w.rollback().await;
            return Err(map_unique_violation(
                error,
                &[
                    "uq_charges_subscription_key",
                    "uq_charges_subscription_period_key",
                    "charges.subscription_id, charges.charge_key",
                    "charges.subscription_id, charges.period, charges.charge_key",
                ],
                already_resolved(),
            ));
        }
    };
    let updated = reconciliation_finding::Entity::update_many()
        .col_expr(reconciliation_finding::Column::Status, Expr::value("RECOVERED"))
        .col_expr(reconciliation_finding::Column::Note, Expr::value(note.clone()))
        .col_expr(reconciliation_finding::Column::ResolvedByUserId, Expr::value(actor.user_id))
        .col_expr(reconciliation_finding::Column::ResolvedAt, Expr::value(Some(now)))
        .col_expr(reconciliation_finding::Column::RecoveryChargeId, Expr::value(Some(charge.id)))
        .col_expr(reconciliation_finding::Column::RecoveryCustomerCharge, Expr::value(bill_customer))
        .filter(reconciliation_finding::Column::Id.eq(id))
        .filter(reconciliation_finding::Column::Status.eq("OPEN"))
        .exec(w.db())
        .await?;
    if updated.rows_affected == 0 {
        w.rollback().await;
        return Err(already_resolved());
    }
    let detail = serde_json::json!({
        "importId": finding.import_id, "findingId": id, "category": finding.category, "chargeId": charge.id,
        "amount": amount.to_string(), "currency": subscription.currency, "billsCustomer": bill_customer,
    });
    w.emit(DomainEvent {
        subscription_id: Some(subscription.id),
        ..reconciliation_event("RECOVERED", now, detail.clone())
    })
    .await?;
    w.commit(Audit::action(actor, "recoverFinding", "reconciliation_finding", id, detail)).await?;
    find(domain, id).await
}

/// Refuses a recovery the finding no longer stands for: what we charged for its cycle,
/// plus what the next billing run would bill for it, must be what matching counted as
/// billed. Otherwise the cycle was billed since (a run in between, late usage):
/// BILLED_BY_NEXT_RUN when the next run bills it — lag, not leakage — and STALE_FINDING when
/// a run did; recovering either would bill it twice. Matching again shows what is left.
async fn unchanged_since_matching(
    domain: &Domain,
    finding: &reconciliation_finding::Model,
    subscription: &subscription::Model,
    import: &reconciliation_import::Model,
) -> Result<()> {
    let now = domain.clock.now();
    let last_day = finding.charge_end.date_naive();
    let cycle_end = finding.charge_end + Duration::days(1);
    let usage = finding.unit_kind == "USAGE";
    let mut next_run = Period::containing(now.date_naive()).max(Period::parse(&import.period)?);
    if usage {
        next_run = next_run.max(super::sides::usage_run(last_day));
    }
    let charged = super::charged::our_groups(domain, &[subscription.id], &import.period, Some((last_day, last_day)))
        .await?
        .get(&(subscription.id, last_day, usage))
        .map_or(Decimal::ZERO, |group| group.side.wholesale);
    let pending = crate::domain::billing::pending_charges(domain, &[subscription.id], next_run).await?;
    let pending = pending
        .get(&subscription.id)
        .into_iter()
        .flatten()
        .filter(|l| l.service_end == cycle_end && (l.kind == ChargeKind::Usage || l.key.starts_with("usage:")) == usage)
        .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.amount.1))
        .ok_or_else(|| Error::validation("amount", "too large"))?;
    let billed = charged.checked_add(pending).ok_or_else(|| Error::validation("amount", "too large"))?;
    if billed == finding.wholesale_billed.0 {
        return Ok(());
    }
    if !pending.is_zero() {
        return Err(Error::conflict(
            "BILLED_BY_NEXT_RUN",
            "the next billing run bills this cycle: match the statement again after it",
        ));
    }
    Err(Error::conflict(
        "STALE_FINDING",
        "this cycle was billed since the statement was matched: match it again to see what is left",
    ))
}

/// The finding's amount in the subscription's currency: as it is when the statement billed
/// in it; at the statement's rate when the subscription's currency is the one the vendor
/// priced in (rounded to its minor units).
fn in_subscription_currency(finding: &reconciliation_finding::Model, currency: &str) -> Result<Decimal> {
    let code = Currency::parse(currency, "currency")?;
    if finding.currency == currency {
        return Ok(round_to_minor_units(finding.amount.0, code));
    }
    let rate = finding.exchange_rate.0;
    if finding.pricing_currency == currency && rate > Decimal::ZERO {
        let converted = finding.amount.0.checked_div(rate).ok_or_else(|| Error::validation("amount", "too large"))?;
        return Ok(round_to_minor_units(converted, code));
    }
    Err(Error::conflict(
        "NO_CONVERSION",
        format!("the finding is in {}, the subscription in {currency}: no rate converts it", finding.currency),
    ))
}

/// Holds the import's row until the transaction ends (PostgreSQL; SQLite writes one at a
/// time): a resolution and matching the import again do not interleave.
pub(super) async fn lock_import(w: &Write<'_>, import_id: i64) -> Result<Option<reconciliation_import::Model>> {
    Ok(crate::domain::write::locking(reconciliation_import::Entity::find_by_id(import_id), w.db()).one(w.db()).await?)
}

async fn find_in(w: &Write<'_>, id: i64) -> Result<reconciliation_finding::Model> {
    reconciliation_finding::Entity::find_by_id(id).one(w.db()).await?.ok_or(Error::NotFound("finding"))
}

async fn find(domain: &Domain, id: i64) -> Result<reconciliation_finding::Model> {
    reconciliation_finding::Entity::find_by_id(id).one(&domain.db).await?.ok_or(Error::NotFound("finding"))
}

fn already_resolved() -> Error {
    Error::conflict("ALREADY_RESOLVED", "this finding was resolved already")
}
