//! What a customer's invoice for a period will hold after a run (`previewBilling`): the
//! charges written for it and those a run would add now, planned as the run plans them, with
//! the invoice's totals.

use std::collections::HashMap;

use entity::{DbDecimal, charge, subscription};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::plan::Period;
use super::{drafts, invoices, plan_batch, plan_cutoff};
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::Result;
use crate::domain::ids::CustomerId;
use crate::domain::money::Currency;

/// What a customer's invoice for a period will hold after a billing run.
#[derive(Clone, Debug)]
pub struct BillingPreview {
    /// The period (`YYYY-MM`).
    pub period: String,
    /// The customer's currency.
    pub currency: Currency,
    /// The charges: those written already, then those a run would add now.
    pub lines: Vec<charge::Model>,
    /// Subtotal, tax (the customer's rate, the tax policy) and total of the retail amounts.
    pub totals: invoices::Totals,
}

/// What the customer's invoice for `period` will hold after a run: the charges already
/// written for it plus those a run would add now, with the invoice's totals (scoped: the
/// customer, its reseller, the operator).
pub async fn preview_billing(
    domain: &Domain,
    actor: &Actor,
    customer_id: CustomerId,
    period: &str,
) -> Result<BillingPreview> {
    let customer = crate::domain::customers::get_customer(&domain.db, actor, customer_id).await?;
    let currency = Currency::parse(&customer.currency, "currency")?;
    let period = Period::parse(period)?;
    let lines = preview_lines(domain, &customer, period).await?;
    // Lines on an issued invoice keep that invoice's rate; the rest go on the draft, which
    // follows the customer's current rate.
    let on_invoices: Vec<i64> = lines.iter().filter_map(|c| c.customer_invoice_id).collect();
    let issued_rates: HashMap<i64, Decimal> = entity::invoice::Entity::find()
        .filter(entity::invoice::Column::Id.is_in(on_invoices))
        .filter(entity::invoice::Column::Status.ne(entity::enums::InvoiceStatus::Draft))
        .all(&domain.db)
        .await?
        .into_iter()
        .map(|i| (i.id, i.tax_rate.0))
        .collect();
    let mut groups: std::collections::BTreeMap<Option<i64>, Vec<Decimal>> = std::collections::BTreeMap::new();
    for line in &lines {
        let issued = line.customer_invoice_id.filter(|id| issued_rates.contains_key(id));
        groups.entry(issued).or_default().push(line.amount_retail.0);
    }
    let mut totals = invoices::Totals { subtotal: Decimal::ZERO, tax: Decimal::ZERO, total: Decimal::ZERO };
    for (invoice, amounts) in groups {
        let rate = invoice.and_then(|id| issued_rates.get(&id).copied()).unwrap_or(customer.tax_rate.0);
        let group = invoices::totals(&amounts, rate, currency, domain.billing.tax);
        totals.subtotal += group.subtotal;
        totals.tax += group.tax;
        totals.total += group.total;
    }
    Ok(BillingPreview { period: period.label(), currency, lines, totals })
}

/// The charges of [`preview_billing`].
async fn preview_lines(
    domain: &Domain,
    customer: &entity::customer::Model,
    period: Period,
) -> Result<Vec<charge::Model>> {
    let label = period.label();
    let now = domain.clock.now();
    // The charges of this period or earlier that are on one of this period's invoices, or on
    // no live customer invoice yet (a run gathers those onto this period's draft).
    let period_invoices: Vec<i64> = entity::invoice::Entity::find()
        .select_only()
        .column(entity::invoice::Column::Id)
        .filter(entity::invoice::Column::RecipientCustomerId.eq(customer.id))
        .filter(entity::invoice::Column::Period.eq(label.clone()))
        .into_tuple()
        .all(&domain.db)
        .await?;
    let gathered = sea_orm::Condition::any()
        .add(charge::Column::CustomerInvoiceId.is_null())
        .add(charge::Column::CustomerInvoiceId.is_in(period_invoices));
    let mut lines = charge::Entity::find()
        .filter(charge::Column::CustomerId.eq(customer.id))
        .filter(charge::Column::Period.lte(label.clone()))
        .filter(charge::Column::BillsCustomer.eq(true))
        .filter(gathered)
        .order_by_asc(charge::Column::Id)
        .all(&domain.db)
        .await?;
    if drafts::customers_with_closed_invoices(&domain.db, &label).await?.contains(&customer.id) {
        return Ok(lines);
    }
    let subscriptions = subscription::Entity::find()
        .filter(subscription::Column::CustomerId.eq(customer.id))
        .filter(subscription::Column::CreatedAt.lt(plan_cutoff(period)))
        .order_by_asc(subscription::Column::Id)
        .all(&domain.db)
        .await?;
    let (planned, _, _) = plan_batch(domain, &subscriptions, period, domain.billing).await?;
    for subscription in &subscriptions {
        let Some((planned, _)) = planned.get(&subscription.id) else { continue };
        for line in planned {
            lines.push(charge::Model {
                id: 0,
                subscription_id: subscription.id,
                customer_id: subscription.customer_id,
                reseller_id: subscription.reseller_id,
                vendor_id: subscription.vendor_id,
                offer_id: subscription.offer_id,
                billing_run_id: None,
                period: label.clone(),
                kind: line.kind,
                charge_key: line.key.clone(),
                description: line.description.clone(),
                quantity: DbDecimal(line.quantity),
                days_used: line.days_used.and_then(|d| i32::try_from(d).ok()),
                days_in_period: line.days_in_period.and_then(|d| i32::try_from(d).ok()),
                service_start: line.service_start,
                service_end: line.service_end,
                currency: subscription.currency.clone(),
                unit_cost: DbDecimal(line.unit.0),
                unit_wholesale: DbDecimal(line.unit.1),
                unit_retail: DbDecimal(line.unit.2),
                amount_cost: DbDecimal(line.amount.0),
                amount_wholesale: DbDecimal(line.amount.1),
                amount_retail: DbDecimal(line.amount.2),
                created_at: now,
                customer_invoice_id: None,
                reseller_invoice_id: None,
                cycle_unit_cost: Some(DbDecimal(line.cycle_unit.0)),
                cycle_unit_wholesale: Some(DbDecimal(line.cycle_unit.1)),
                cycle_unit_retail: Some(DbDecimal(line.cycle_unit.2)),
                bills_customer: true,
            });
        }
    }
    Ok(lines)
}
