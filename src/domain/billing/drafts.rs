//! Gathering charges onto DRAFT invoices of both sides of the channel: a reseller's invoice
//! to each customer at retail (with the customer's tax rate) and the operator's invoice to
//! each reseller at wholesale, itemised by customer (reverse-charged).
//!
//! A charge remembers the invoice that bills it on each side (`customer_invoice_id`,
//! `reseller_invoice_id`): gathering *claims* it, guarded by the links it was read with,
//! inside the transaction that adds its line (`gather`), so a charge is on exactly one live
//! invoice per side, whatever runs race. Each invoice grows under a row lock. Only one DRAFT per period,
//! parties and currency is open at a time; once it is issued, later charges of the period
//! open a new draft, and voiding a draft releases its charges to the next run. A run for a
//! period gathers every charge of that period or earlier that is not on a live invoice yet.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use entity::enums::InvoiceStatus;
use entity::{charge, invoice};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::Domain;
use crate::domain::error::Result;

/// The counter key and recipient key of the operator.
pub const OPERATOR_KEY: &str = "OPERATOR";

fn reseller_key(id: i64) -> String {
    format!("RSL{id}")
}

fn customer_key(id: i64) -> String {
    format!("CUS{id}")
}

/// Customers whose invoice for `period` was issued (their period is closed: later changes
/// are charged on the next period, as adjustments).
pub async fn customers_with_closed_invoices(db: &DatabaseConnection, period: &str) -> Result<HashSet<i64>> {
    let ids: Vec<Option<i64>> = invoice::Entity::find()
        .select_only()
        .column(invoice::Column::RecipientCustomerId)
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::RecipientCustomerId.is_not_null())
        .filter(invoice::Column::CreditedInvoiceId.is_null())
        .filter(invoice::Column::Status.is_in([InvoiceStatus::Issued, InvoiceStatus::Paid]))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// Charges of `period` or earlier that are not on a live invoice of some side yet (the
/// condition matches the partial index `idx_charges_uninvoiced`).
pub(super) fn uninvoiced(period: &str) -> Condition {
    Condition::all().add(charge::Column::Period.lte(period)).add(
        Condition::any()
            .add(charge::Column::CustomerInvoiceId.is_null())
            .add(charge::Column::ResellerInvoiceId.is_null()),
    )
}

/// Which side of the channel an invoice bills.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Reseller → customer, at retail.
    Customer,
    /// Operator → reseller, at wholesale, itemised by customer.
    Reseller,
}

impl Side {
    /// The charge's column naming its invoice on this side.
    fn invoice_column(self) -> charge::Column {
        match self {
            Side::Customer => charge::Column::CustomerInvoiceId,
            Side::Reseller => charge::Column::ResellerInvoiceId,
        }
    }
}

/// Clears the invoice link of every charge on `invoice_id` (a voided draft), on both sides,
/// so the next run gathers them again.
pub async fn release_charges<C: ConnectionTrait>(db: &C, invoice_id: i64) -> Result<()> {
    for side in [Side::Customer, Side::Reseller] {
        let column = side.invoice_column();
        charge::Entity::update_many()
            .col_expr(column, Expr::value(Option::<i64>::None))
            .filter(column.eq(invoice_id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Customers handled per step of `invoice_period` (one transaction each): bounds memory
/// and a transaction's size whatever the run's.
const CUSTOMER_CHUNK: usize = 1000;

/// What gathering did: invoices created or extended, and the conversions it could not
/// make (`USD→EUR on 2026-11-02`): those charges wait for a rate, off the reseller's invoice.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Invoices created or extended.
    pub touched: usize,
    /// Missing exchange rates, each once.
    pub missing_rates: BTreeSet<String>,
    /// Invoices that would pass the largest amount: their new charges wait.
    pub unbillable: Vec<String>,
}

/// Gathers every charge of `period` or earlier that is not on a live invoice yet onto the
/// DRAFT invoices of `period`, on both sides. The operator invoices each reseller in the
/// reseller's currency: a charge in another currency is converted at the rate in force on
/// the day it starts. Works through the customers in chunks, one transaction each
/// (`gather`); a reseller's invoice grows by one chunk's lines at a time.
pub async fn invoice_period(
    domain: &Domain,
    period: &str,
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Gathered> {
    let rates = crate::domain::exchange_rates::all_rates(&domain.db).await?;
    let customers: Vec<i64> = charge::Entity::find()
        .select_only()
        .column(charge::Column::CustomerId)
        .distinct()
        .filter(uninvoiced(period))
        .order_by_asc(charge::Column::CustomerId)
        .into_tuple()
        .all(&domain.db)
        .await?;
    let step = super::gather::Step { period, run_id, now, rates: &rates };
    let mut gathered = Gathered::default();
    let mut resellers_touched = HashSet::new();
    for chunk in customers.chunks(CUSTOMER_CHUNK) {
        super::gather::gather(domain, &step, chunk, &mut gathered, &mut resellers_touched).await?;
    }
    Ok(gathered)
}

/// Who issues an invoice and who receives it.
pub(super) struct Parties {
    pub(super) issuer_key: String,
    pub(super) issuer_reseller_id: Option<i64>,
    pub(super) recipient_key: String,
    pub(super) recipient_reseller_id: Option<i64>,
    pub(super) recipient_customer_id: Option<i64>,
}

impl Parties {
    /// A reseller's invoice to one of its customers.
    pub(super) fn reseller_to_customer(reseller_id: i64, customer_id: i64) -> Self {
        Self {
            issuer_key: reseller_key(reseller_id),
            issuer_reseller_id: Some(reseller_id),
            recipient_key: customer_key(customer_id),
            recipient_reseller_id: None,
            recipient_customer_id: Some(customer_id),
        }
    }

    /// The operator's invoice to a reseller.
    pub(super) fn operator_to_reseller(reseller_id: i64) -> Self {
        Self {
            issuer_key: OPERATOR_KEY.to_owned(),
            issuer_reseller_id: None,
            recipient_key: reseller_key(reseller_id),
            recipient_reseller_id: Some(reseller_id),
            recipient_customer_id: None,
        }
    }
}
