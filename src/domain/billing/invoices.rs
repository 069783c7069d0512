//! Invoices and credit notes: gathering charges onto DRAFT invoices, issuing with gapless
//! numbers, paying, voiding, crediting, and who may see which.
//!
//! An invoice changes only while it is a DRAFT; issuing freezes it. Numbers are assigned at
//! issue from a counter per issuer and year, incremented in the issuing transaction (an
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING` that holds the counter row until commit), so
//! a rolled-back issue leaves no gap and concurrent issues never share a number. The prefix
//! is read at issue time: changing it never renumbers old invoices.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Utc};
use entity::enums::{InvoiceKind, InvoiceStatus, Role};
use entity::{DbDecimal, charge, invoice, invoice_line, reseller};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    NotSet, QueryFilter, QueryOrder, QuerySelect, Select, Set, Statement,
};
use serde_json::json;

use super::proration::{TaxPolicy, tax};
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::money::{Currency, round_to_minor_units};
use crate::domain::pagination::{MAX_PAGE_SIZE, Page, PageRequest, fetch_page};
use crate::domain::{Domain, audit};

/// The counter key and recipient key of the operator.
pub const OPERATOR_KEY: &str = "OPERATOR";

fn reseller_key(id: i64) -> String {
    format!("RSL{id}")
}

fn customer_key(id: i64) -> String {
    format!("CUS{id}")
}

/// Customers whose invoice for `period` is no longer a draft (their period is closed).
pub async fn customers_with_closed_invoices(db: &DatabaseConnection, period: &str) -> Result<HashSet<i64>> {
    let ids: Vec<Option<i64>> = invoice::Entity::find()
        .select_only()
        .column(invoice::Column::RecipientCustomerId)
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::RecipientCustomerId.is_not_null())
        .filter(invoice::Column::Status.ne(InvoiceStatus::Draft))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// Which tier an invoice bills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// Reseller → customer, at retail.
    Customer,
    /// Operator → reseller, at wholesale, itemised by customer.
    Reseller,
}

/// Customers handled per step of `invoice_period`: bounds memory whatever the run's size.
const CUSTOMER_CHUNK: usize = 1000;

/// Gathers every charge of `period` onto DRAFT invoices of both tiers; how many invoices
/// were created or extended. Works through the customers in chunks; a reseller's invoice
/// grows by one chunk's lines at a time.
pub async fn invoice_period(domain: &Domain, period: &str, run_id: Option<i64>, now: DateTime<Utc>) -> Result<usize> {
    // Only customers with a charge not yet on both tiers' invoices: a re-run skips the rest.
    let backend = domain.db.get_database_backend();
    let placeholder = if backend == DbBackend::Postgres { "$1" } else { "?1" };
    let sql = format!(
        "SELECT DISTINCT c.customer_id AS customer_id FROM charges c WHERE c.period = {placeholder} \
         AND (SELECT COUNT(*) FROM invoice_lines l WHERE l.charge_id = c.id) < 2 ORDER BY c.customer_id"
    );
    let customers: Vec<i64> = domain
        .db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [period.into()]))
        .await?
        .iter()
        .map(|row| row.try_get::<i64>("", "customer_id"))
        .collect::<std::result::Result<_, _>>()?;
    let mut touched_resellers = HashSet::new();
    let mut touched = 0;
    for chunk in customers.chunks(CUSTOMER_CHUNK) {
        let charges = charge::Entity::find()
            .filter(charge::Column::Period.eq(period))
            .filter(charge::Column::CustomerId.is_in(chunk.iter().copied()))
            .order_by_asc(charge::Column::CustomerId)
            .order_by_asc(charge::Column::Id)
            .all(&domain.db)
            .await?;
        let mut by_customer: BTreeMap<(i64, i64, String), Vec<&charge::Model>> = BTreeMap::new();
        let mut by_reseller: BTreeMap<(i64, String), Vec<&charge::Model>> = BTreeMap::new();
        for charge in &charges {
            by_customer
                .entry((charge.customer_id, charge.reseller_id, charge.currency.clone()))
                .or_default()
                .push(charge);
            by_reseller.entry((charge.reseller_id, charge.currency.clone())).or_default().push(charge);
        }
        let customer_rates: std::collections::HashMap<i64, Decimal> = entity::customer::Entity::find()
            .filter(entity::customer::Column::Id.is_in(chunk.iter().copied()))
            .all(&domain.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c.tax_rate.0))
            .collect();
        for ((customer_id, reseller_id, currency), lines) in by_customer {
            let rate = customer_rates.get(&customer_id).copied().unwrap_or_default();
            let parties = Parties::reseller_to_customer(reseller_id, customer_id);
            let changed =
                add_to_invoice(domain, Tier::Customer, &parties, period, &currency, rate, &lines, run_id, now).await?;
            touched += usize::from(changed);
        }
        for ((reseller_id, currency), lines) in by_reseller {
            let parties = Parties::operator_to_reseller(reseller_id);
            // B2B within the channel: reverse charge, no tax on the operator's invoice.
            let changed =
                add_to_invoice(domain, Tier::Reseller, &parties, period, &currency, Decimal::ZERO, &lines, run_id, now)
                    .await?;
            if changed && touched_resellers.insert((reseller_id, currency)) {
                touched += 1;
            }
        }
    }
    Ok(touched)
}

/// Who issues an invoice and who receives it.
struct Parties {
    issuer_key: String,
    issuer_reseller_id: Option<i64>,
    recipient_key: String,
    recipient_reseller_id: Option<i64>,
    recipient_customer_id: Option<i64>,
}

impl Parties {
    /// A reseller's invoice to one of its customers.
    fn reseller_to_customer(reseller_id: i64, customer_id: i64) -> Self {
        Self {
            issuer_key: reseller_key(reseller_id),
            issuer_reseller_id: Some(reseller_id),
            recipient_key: customer_key(customer_id),
            recipient_reseller_id: None,
            recipient_customer_id: Some(customer_id),
        }
    }

    /// The operator's invoice to a reseller.
    fn operator_to_reseller(reseller_id: i64) -> Self {
        Self {
            issuer_key: OPERATOR_KEY.to_owned(),
            issuer_reseller_id: None,
            recipient_key: reseller_key(reseller_id),
            recipient_reseller_id: Some(reseller_id),
            recipient_customer_id: None,
        }
    }
}

async fn find_invoice<C: ConnectionTrait>(
    db: &C,
    parties: &Parties,
    period: &str,
    currency: &str,
    lock: bool,
) -> Result<Option<invoice::Model>> {
    let mut find = invoice::Entity::find()
        .filter(invoice::Column::Period.eq(period))
        .filter(invoice::Column::IssuerKey.eq(parties.issuer_key.clone()))
        .filter(invoice::Column::RecipientKey.eq(parties.recipient_key.clone()))
        .filter(invoice::Column::Currency.eq(currency))
        .filter(invoice::Column::CreditedInvoiceId.is_null());
    if lock && db.get_database_backend() == DbBackend::Postgres {
        find = find.lock_exclusive();
    }
    Ok(find.one(db).await?)
}

/// Adds the charges not on it yet to the DRAFT invoice between `parties`, creating it if
/// needed, and recomputes its totals; `false` when nothing changed (or it is closed). Two
/// runs creating the same invoice at once: the loser's insert violates the unique index,
/// and it tries again, finding the winner's invoice.
#[expect(clippy::too_many_arguments, reason = "the invoice's identity and contents")]
async fn add_to_invoice(
    domain: &Domain,
    tier: Tier,
    parties: &Parties,
    period: &str,
    currency: &str,
    tax_rate: Decimal,
    charges: &[&charge::Model],
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_add_to_invoice(domain, tier, parties, period, currency, tax_rate, charges, run_id, now).await {
            Err(Error::Conflict { reason: "INVOICE_RACE", .. }) if attempt < 3 => continue,
            other => return other,
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "the invoice's identity and contents")]
async fn try_add_to_invoice(
    domain: &Domain,
    tier: Tier,
    parties: &Parties,
    period: &str,
    currency: &str,
    tax_rate: Decimal,
    charges: &[&charge::Model],
    run_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let txn = crate::domain::begin_write(&domain.db).await?;
    let invoice = match find_invoice(&txn, parties, period, currency, true).await? {
        Some(existing) => existing,
        None => invoice::ActiveModel {
            id: NotSet,
            kind: Set(InvoiceKind::Invoice),
            issuer_key: Set(parties.issuer_key.clone()),
            issuer_reseller_id: Set(parties.issuer_reseller_id),
            recipient_key: Set(parties.recipient_key.clone()),
            recipient_reseller_id: Set(parties.recipient_reseller_id),
            recipient_customer_id: Set(parties.recipient_customer_id),
            credited_invoice_id: Set(None),
            billing_run_id: Set(run_id),
            period: Set(period.to_owned()),
            currency: Set(currency.to_owned()),
            status: Set(InvoiceStatus::Draft),
            number: Set(None),
            number_year: Set(None),
            tax_rate: Set(DbDecimal(tax_rate)),
            subtotal: Set(DbDecimal(Decimal::ZERO)),
            tax: Set(DbDecimal(Decimal::ZERO)),
            total: Set(DbDecimal(Decimal::ZERO)),
            issued_at: Set(None),
            paid_at: Set(None),
            voided_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            crate::domain::error::map_unique_violation(
                e,
                &["uq_invoices_period_parties", "invoices.period"],
                Error::conflict("INVOICE_RACE", "raced"),
            )
        })?,
    };
    if invoice.status != InvoiceStatus::Draft {
        return Ok(false);
    }
    let existing =
        invoice_line::Entity::find().filter(invoice_line::Column::InvoiceId.eq(invoice.id)).all(&txn).await?;
    let present: HashSet<i64> = existing.iter().filter_map(|l| l.charge_id).collect();
    let mut next = existing.iter().map(|l| l.line_number).max().unwrap_or(0);
    let currency_code = Currency::parse(currency, "currency")?;
    let mut new_lines = Vec::new();
    let mut ordered: Vec<&&charge::Model> = charges.iter().filter(|c| !present.contains(&c.id)).collect();
    ordered.sort_by_key(|c| (c.customer_id, c.id));
    for charge in ordered {
        next += 1;
        let (unit_price, amount) = match tier {
            Tier::Customer => (charge.unit_retail.0, charge.amount_retail.0),
            Tier::Reseller => (charge.unit_wholesale.0, charge.amount_wholesale.0),
        };
        let line_tax = match domain.billing.tax {
            TaxPolicy::PerLine => round_to_minor_units(amount * tax_rate, currency_code),
            TaxPolicy::PerInvoice => Decimal::ZERO,
        };
        new_lines.push(invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(invoice.id),
            line_number: Set(next),
            charge_id: Set(Some(charge.id)),
            customer_id: Set(Some(charge.customer_id)),
            subscription_id: Set(Some(charge.subscription_id)),
            description: Set(charge.description.clone()),
            quantity: Set(charge.quantity),
            unit_price: Set(DbDecimal(unit_price)),
            days_used: Set(charge.days_used),
            days_in_period: Set(charge.days_in_period),
            amount: Set(DbDecimal(amount)),
            tax: Set(DbDecimal(line_tax)),
            unit_cost: Set(charge.unit_cost),
            unit_wholesale: Set(charge.unit_wholesale),
            unit_retail: Set(charge.unit_retail),
        });
    }
    if new_lines.is_empty() {
        txn.rollback().await.ok();
        return Ok(false);
    }
    for chunk in new_lines.chunks(200) {
        invoice_line::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    let amounts: Vec<Decimal> = invoice_line::Entity::find()
        .select_only()
        .column(invoice_line::Column::Amount)
        .filter(invoice_line::Column::InvoiceId.eq(invoice.id))
        .into_tuple::<DbDecimal>()
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| d.0)
        .collect();
    let totals = totals(&amounts, tax_rate, currency_code, domain.billing.tax);
    let mut model: invoice::ActiveModel = invoice.into();
    model.kind = Set(if totals.total < Decimal::ZERO { InvoiceKind::CreditNote } else { InvoiceKind::Invoice });
    model.subtotal = Set(DbDecimal(totals.subtotal));
    model.tax = Set(DbDecimal(totals.tax));
    model.total = Set(DbDecimal(totals.total));
    model.updated_at = Set(now);
    model.update(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// An invoice's subtotal, tax and total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the (rounded) lines.
    pub subtotal: Decimal,
    /// Tax per the policy.
    pub tax: Decimal,
    /// Subtotal + tax, exactly.
    pub total: Decimal,
}

/// Totals of rounded line amounts.
pub fn totals(lines: &[Decimal], rate: Decimal, currency: Currency, policy: TaxPolicy) -> Totals {
    let subtotal: Decimal = lines.iter().sum();
    let tax = tax(lines, rate, currency, policy);
    Totals { subtotal, tax, total: subtotal + tax }
}

/// The invoices `actor` may see.
fn scoped(actor: &Actor) -> Result<Select<invoice::Entity>> {
    let org = actor.organization_id.unwrap_or(0);
    Ok(match actor.role {
        Role::Operator => invoice::Entity::find(),
        Role::Reseller => invoice::Entity::find().filter(
            sea_orm::Condition::any()
                .add(invoice::Column::IssuerResellerId.eq(org))
                .add(invoice::Column::RecipientResellerId.eq(org)),
        ),
        Role::Customer => invoice::Entity::find()
            .filter(invoice::Column::RecipientCustomerId.eq(org))
            .filter(invoice::Column::Status.ne(InvoiceStatus::Draft)),
        Role::Vendor => return Err(Error::Forbidden("vendors do not see invoices".into())),
    })
}

/// Filters for the invoice list.
#[derive(Clone, Debug, Default)]
pub struct InvoiceFilter {
    /// Only this status.
    pub status: Option<InvoiceStatus>,
    /// Only this period (`YYYY-MM`).
    pub period: Option<String>,
    /// Only invoices to this customer.
    pub customer_id: Option<i64>,
    /// Only invoices from or to this reseller.
    pub reseller_id: Option<i64>,
}

/// A page of the invoices the caller may see.
pub async fn list_invoices(
    domain: &Domain,
    actor: &Actor,
    filter: &InvoiceFilter,
    page: PageRequest,
) -> Result<Page<invoice::Model>> {
    let mut select = scoped(actor)?;
    if let Some(status) = filter.status {
        select = select.filter(invoice::Column::Status.eq(status));
    }
    if let Some(period) = &filter.period {
        select = select.filter(invoice::Column::Period.eq(period.clone()));
    }
    if let Some(id) = filter.customer_id {
        select = select.filter(invoice::Column::RecipientCustomerId.eq(id));
    }
    if let Some(id) = filter.reseller_id {
        select = select.filter(
            sea_orm::Condition::any()
                .add(invoice::Column::IssuerResellerId.eq(id))
                .add(invoice::Column::RecipientResellerId.eq(id)),
        );
    }
    fetch_page(&domain.db, select, invoice::Column::Id, page).await
}

/// An invoice the caller may see, else NotFound.
pub async fn get_invoice<C: ConnectionTrait>(db: &C, actor: &Actor, id: i64) -> Result<invoice::Model> {
    scoped(actor)
        .map_err(|_| Error::NotFound("invoice"))?
        .filter(invoice::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("invoice"))
}

/// The lines of invoices the caller already may see.
pub async fn lines_of(domain: &Domain, invoice_ids: &[i64]) -> Result<Vec<invoice_line::Model>> {
    Ok(invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.is_in(invoice_ids.iter().copied()))
        .order_by_asc(invoice_line::Column::InvoiceId)
        .order_by_asc(invoice_line::Column::LineNumber)
        .all(&domain.db)
        .await?)
}

/// Every invoice of `period` (`YYYY-MM`) the caller may see, in id order, each with its
/// lines (the period export). Read a page at a time, so no one statement carries a period.
pub async fn invoices_of_period_with_lines(
    domain: &Domain,
    actor: &Actor,
    period: &str,
) -> Result<Vec<(invoice::Model, Vec<invoice_line::Model>)>> {
    let period = super::plan::Period::parse(period)?.label();
    let filter = InvoiceFilter { period: Some(period), ..InvoiceFilter::default() };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = list_invoices(domain, actor, &filter, PageRequest { first: MAX_PAGE_SIZE, after }).await?;
        let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
        let mut lines = lines_of(domain, &ids).await?.into_iter().peekable();
        for invoice in page.items {
            let mut own = Vec::new();
            while let Some(line) = lines.next_if(|line| line.invoice_id == invoice.id) {
                own.push(line);
            }
            out.push((invoice, own));
        }
        if !page.has_next_page {
            return Ok(out);
        }
        after = ids.last().copied();
    }
}

/// Credit notes against an invoice.
pub async fn credit_notes_of(domain: &Domain, invoice_id: i64) -> Result<Vec<invoice::Model>> {
    Ok(invoice::Entity::find().filter(invoice::Column::CreditedInvoiceId.eq(invoice_id)).all(&domain.db).await?)
}

/// Whether `actor` issues (and so manages) this invoice: its issuing reseller, or the operator.
fn require_issuer(actor: &Actor, invoice: &invoice::Model) -> Result<()> {
    if actor.is_operator() || (actor.reseller_id().is_some() && invoice.issuer_reseller_id == actor.reseller_id()) {
        Ok(())
    } else {
        Err(Error::Forbidden("only the issuer manages this invoice".into()))
    }
}

fn status_name(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Draft => "DRAFT",
        InvoiceStatus::Issued => "ISSUED",
        InvoiceStatus::Paid => "PAID",
        InvoiceStatus::Void => "VOID",
    }
}

async fn locked_invoice(txn: &DatabaseTransaction, actor: &Actor, id: i64) -> Result<invoice::Model> {
    let visible = get_invoice(txn, actor, id).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        return invoice::Entity::find_by_id(visible.id)
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(Error::NotFound("invoice"));
    }
    Ok(visible)
}

/// Issues a DRAFT invoice: assigns the next number of its issuer and year.
pub async fn issue_invoice(domain: &Domain, actor: &Actor, id: i64) -> Result<invoice::Model> {
    let now = domain.clock.now();
    let txn = crate::domain::begin_write(&domain.db).await?;
    let invoice = locked_invoice(&txn, actor, id).await?;
    require_issuer(actor, &invoice)?;
    if invoice.status != InvoiceStatus::Draft {
        return Err(Error::InvalidTransition(format!(
            "only a DRAFT invoice can be issued; this one is {}",
            status_name(invoice.status)
        )));
    }
    let prefix = match invoice.issuer_reseller_id {
        Some(reseller_id) => {
            reseller::Entity::find_by_id(reseller_id)
                .one(&txn)
                .await?
                .ok_or(Error::NotFound("reseller"))?
                .invoice_prefix
        }
        None => domain.operator_invoice_prefix.clone(),
    };
    let year = now.year();
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO invoice_counters (issuer_key, year, last_value) VALUES ($1, $2, 1) \
             ON CONFLICT (issuer_key, year) DO UPDATE SET last_value = invoice_counters.last_value + 1 RETURNING last_value"
        }
        _ => {
            "INSERT INTO invoice_counters (issuer_key, year, last_value) VALUES (?1, ?2, 1) \
             ON CONFLICT (issuer_key, year) DO UPDATE SET last_value = invoice_counters.last_value + 1 RETURNING last_value"
        }
    };
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [invoice.issuer_key.clone().into(), year.into()]))
        .await?
        .ok_or_else(|| Error::internal("the invoice counter returned nothing"))?;
    let value: i64 = row.try_get("", "last_value")?;
    let number = format!("{prefix}-{year}-{value:06}");
    let mut model: invoice::ActiveModel = invoice.into();
    model.status = Set(InvoiceStatus::Issued);
    model.number = Set(Some(number.clone()));
    model.number_year = Set(Some(year));
    model.issued_at = Set(Some(now));
    model.updated_at = Set(now);
    let issued = model.update(&txn).await?;
    audit::record(&txn, actor, "issueInvoice", "invoice", Some(id), json!({"number": number}), now).await?;
    txn.commit().await?;
    Ok(issued)
}

/// Marks an ISSUED invoice PAID.
pub async fn mark_paid(domain: &Domain, actor: &Actor, id: i64) -> Result<invoice::Model> {
    set_status(domain, actor, id, InvoiceStatus::Paid, &[InvoiceStatus::Issued], "markInvoicePaid").await
}

/// Voids a DRAFT or ISSUED invoice (an issued one keeps its number; nothing is renumbered).
pub async fn void_invoice(domain: &Domain, actor: &Actor, id: i64) -> Result<invoice::Model> {
    set_status(domain, actor, id, InvoiceStatus::Void, &[InvoiceStatus::Draft, InvoiceStatus::Issued], "voidInvoice")
        .await
}

async fn set_status(
    domain: &Domain,
    actor: &Actor,
    id: i64,
    to: InvoiceStatus,
    from: &[InvoiceStatus],
    action: &str,
) -> Result<invoice::Model> {
    let now = domain.clock.now();
    let txn = crate::domain::begin_write(&domain.db).await?;
    let invoice = locked_invoice(&txn, actor, id).await?;
    require_issuer(actor, &invoice)?;
    if !from.contains(&invoice.status) {
        return Err(Error::InvalidTransition(format!(
            "cannot mark a {} invoice {}",
            status_name(invoice.status),
            status_name(to)
        )));
    }
    let mut model: invoice::ActiveModel = invoice.into();
    model.status = Set(to);
    match to {
        InvoiceStatus::Paid => model.paid_at = Set(Some(now)),
        InvoiceStatus::Void => model.voided_at = Set(Some(now)),
        _ => {}
    }
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    audit::record(&txn, actor, action, "invoice", Some(id), json!({}), now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Credits an ISSUED or PAID invoice in full: a DRAFT credit note with every line negated,
/// referencing it (issue it to number it). One full credit note per invoice.
pub async fn credit_invoice(domain: &Domain, actor: &Actor, id: i64) -> Result<invoice::Model> {
    let now = domain.clock.now();
    let txn = crate::domain::begin_write(&domain.db).await?;
    let original = locked_invoice(&txn, actor, id).await?;
    require_issuer(actor, &original)?;
    if !matches!(original.status, InvoiceStatus::Issued | InvoiceStatus::Paid) {
        return Err(Error::InvalidTransition(format!(
            "only ISSUED or PAID invoices are credited; this one is {}",
            status_name(original.status)
        )));
    }
    let exists = invoice::Entity::find().filter(invoice::Column::CreditedInvoiceId.eq(original.id)).one(&txn).await?;
    if exists.is_some() {
        return Err(Error::conflict("ALREADY_CREDITED", "this invoice already has a credit note"));
    }
    let note = invoice::ActiveModel {
        id: NotSet,
        kind: Set(InvoiceKind::CreditNote),
        issuer_key: Set(original.issuer_key.clone()),
        issuer_reseller_id: Set(original.issuer_reseller_id),
        recipient_key: Set(original.recipient_key.clone()),
        recipient_reseller_id: Set(original.recipient_reseller_id),
        recipient_customer_id: Set(original.recipient_customer_id),
        credited_invoice_id: Set(Some(original.id)),
        billing_run_id: Set(None),
        period: Set(original.period.clone()),
        currency: Set(original.currency.clone()),
        status: Set(InvoiceStatus::Draft),
        number: Set(None),
        number_year: Set(None),
        tax_rate: Set(original.tax_rate),
        subtotal: Set(DbDecimal(-original.subtotal.0)),
        tax: Set(DbDecimal(-original.tax.0)),
        total: Set(DbDecimal(-original.total.0)),
        issued_at: Set(None),
        paid_at: Set(None),
        voided_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let lines = invoice_line::Entity::find().filter(invoice_line::Column::InvoiceId.eq(original.id)).all(&txn).await?;
    let negated: Vec<invoice_line::ActiveModel> = lines
        .into_iter()
        .map(|line| invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(note.id),
            line_number: Set(line.line_number),
            charge_id: Set(None),
            customer_id: Set(line.customer_id),
            subscription_id: Set(line.subscription_id),
            description: Set(format!("credit: {}", line.description)),
            quantity: Set(DbDecimal(-line.quantity.0)),
            unit_price: Set(line.unit_price),
            days_used: Set(line.days_used),
            days_in_period: Set(line.days_in_period),
            amount: Set(DbDecimal(-line.amount.0)),
            tax: Set(DbDecimal(-line.tax.0)),
            unit_cost: Set(line.unit_cost),
            unit_wholesale: Set(line.unit_wholesale),
            unit_retail: Set(line.unit_retail),
        })
        .collect();
    for chunk in negated.chunks(200) {
        invoice_line::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    audit::record(&txn, actor, "creditInvoice", "invoice", Some(original.id), json!({"creditNoteId": note.id}), now)
        .await?;
    txn.commit().await?;
    Ok(note)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Subtotal is the sum of the lines and subtotal + tax is the total, exactly, under
        /// both tax policies.
        #[test]
        fn totals_add_up(lines in proptest::collection::vec(-100_000_i64..1_000_000, 0..30), rate in 0_i64..=27) {
            let usd = Currency::parse("USD", "c").unwrap_or_else(|_| unreachable!());
            let lines: Vec<Decimal> = lines.into_iter().map(|c| Decimal::new(c, 2)).collect();
            for policy in [TaxPolicy::PerInvoice, TaxPolicy::PerLine] {
                let t = totals(&lines, Decimal::new(rate, 2), usd, policy);
                prop_assert_eq!(t.subtotal, lines.iter().sum::<Decimal>());
                prop_assert_eq!(t.subtotal + t.tax, t.total);
                prop_assert!(t.tax.scale() <= 2);
            }
        }
    }
}
