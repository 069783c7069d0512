//! Issuing, paying, voiding and crediting invoices.
//!
//! An invoice changes only while it is a DRAFT; issuing freezes it. Numbers are assigned at
//! issue from a counter per issuer and year, incremented in the issuing transaction (an
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING` that holds the counter row until commit), so
//! a rolled-back issue leaves no gap and concurrent issues never share a number. The prefix
//! is read at issue time: changing it never renumbers old invoices. Only the issuer (its
//! reseller, or the operator) manages an invoice.

use crate::domain::ids::InvoiceId;
use chrono::Datelike;
use entity::enums::{InvoiceKind, InvoiceStatus};
use entity::{DbDecimal, customer, invoice, invoice_line, reseller};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, NotSet, QueryFilter,
    QuerySelect, Set, Statement,
};
use serde_json::json;
use std::collections::HashMap;

use super::invoices::get_invoice;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::write::{Audit, Write};

/// Whether `actor` issues (and so manages) this invoice: its issuing reseller, or the operator.
fn require_issuer(actor: &Actor, invoice: &invoice::Model) -> Result<()> {
    if actor.is_operator() || (actor.reseller_id().is_some() && invoice.issuer_reseller_id == actor.reseller_id()) {
        Ok(())
    } else {
        Err(Error::Forbidden("only the issuer manages this invoice".into()))
    }
}

/// An invoice status as the API spells it.
pub fn status_name(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Draft => "DRAFT",
        InvoiceStatus::Issued => "ISSUED",
        InvoiceStatus::Paid => "PAID",
        InvoiceStatus::Void => "VOID",
    }
}

async fn locked_invoice(txn: &DatabaseTransaction, actor: &Actor, id: InvoiceId) -> Result<invoice::Model> {
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
pub async fn issue_invoice(domain: &Domain, actor: &Actor, id: InvoiceId) -> Result<invoice::Model> {
    let now = domain.clock.now();
    let w = Write::begin(domain).await?;
    let invoice = locked_invoice(w.db(), actor, id).await?;
    require_issuer(actor, &invoice)?;
    if invoice.status != InvoiceStatus::Draft {
        return Err(Error::InvalidTransition(format!(
            "only a DRAFT invoice can be issued; this one is {}",
            status_name(invoice.status)
        )));
    }
    // An invoice to a customer is taxed at the customer's rate when it is issued (the draft
    // followed it so far); a credit note keeps the rate of the invoice it credits.
    let invoice = match invoice.recipient_customer_id {
        Some(customer_id) if invoice.credited_invoice_id.is_none() => {
            let rate = customer::Entity::find_by_id(customer_id)
                .one(w.db())
                .await?
                .ok_or(Error::NotFound("customer"))?
                .tax_rate
                .0;
            super::draft_totals::refresh_totals(w.db(), invoice, rate, domain.billing.tax, now).await?
        }
        _ => invoice,
    };
    let (prefix, terms) = match invoice.issuer_reseller_id {
        Some(reseller_id) => {
            let issuer =
                reseller::Entity::find_by_id(reseller_id).one(w.db()).await?.ok_or(Error::NotFound("reseller"))?;
            (issuer.invoice_prefix, issuer.payment_terms_days)
        }
        None => (domain.operator_invoice_prefix.clone(), domain.operator.payment_terms_days),
    };
    let is_credit_note = invoice.credited_invoice_id.is_some();
    let year = now.year();
    let backend = w.db().get_database_backend();
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
    let row = w
        .db()
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [invoice.issuer_key.clone().into(), year.into()]))
        .await?
        .ok_or_else(|| Error::internal("the invoice counter returned nothing"))?;
    let value: i64 = row.try_get("", "last_value")?;
    let number = format!("{prefix}-{year}-{value:06}");
    let issuing = invoice.clone();
    let mut model: invoice::ActiveModel = invoice.into();
    model.status = Set(InvoiceStatus::Issued);
    model.number = Set(Some(number.clone()));
    model.number_year = Set(Some(year));
    model.issued_at = Set(Some(now));
    // The parties as they are now: an issued invoice never changes, whatever their records do.
    let parties = super::invoices::current_parties(w.db(), domain, &issuing).await?;
    model.parties = Set(Some(json!([parties.0, parties.1])));
    // Due after the issuer's payment terms (a credit note is due at once).
    let terms = if is_credit_note { 0 } else { terms };
    model.due_at = Set(Some(now + chrono::Duration::days(i64::from(terms))));
    model.updated_at = Set(now);
    let issued = model.update(w.db()).await?;
    w.commit(Audit::action(actor, "issueInvoice", "invoice", id, json!({"number": number}))).await?;
    Ok(issued)
}

/// Marks an ISSUED invoice PAID.
pub async fn mark_paid(domain: &Domain, actor: &Actor, id: InvoiceId) -> Result<invoice::Model> {
    set_status(domain, actor, id.get(), InvoiceStatus::Paid, &[InvoiceStatus::Issued], "markInvoicePaid").await
}

/// Voids a DRAFT invoice and releases its charges to the next run. An issued invoice is
/// never voided: it is corrected by a credit note.
pub async fn void_invoice(domain: &Domain, actor: &Actor, id: InvoiceId) -> Result<invoice::Model> {
    set_status(domain, actor, id.get(), InvoiceStatus::Void, &[InvoiceStatus::Draft], "voidInvoice").await
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
    let w = Write::begin(domain).await?;
    let invoice = locked_invoice(w.db(), actor, InvoiceId::new(id)).await?;
    require_issuer(actor, &invoice)?;
    if !from.contains(&invoice.status) {
        let hint = if to == InvoiceStatus::Void && invoice.status != InvoiceStatus::Void {
            "; an issued invoice is corrected by a credit note"
        } else {
            ""
        };
        return Err(Error::InvalidTransition(format!(
            "cannot mark a {} invoice {}{hint}",
            status_name(invoice.status),
            status_name(to)
        )));
    }
    if to == InvoiceStatus::Void {
        super::drafts::release_charges(w.db(), invoice.id).await?;
    }
    let mut model: invoice::ActiveModel = invoice.into();
    model.status = Set(to);
    match to {
        InvoiceStatus::Paid => model.paid_at = Set(Some(now)),
        InvoiceStatus::Void => model.voided_at = Set(Some(now)),
        _ => {}
    }
    model.updated_at = Set(now);
    let updated = model.update(w.db()).await?;
    w.commit(Audit::action(actor, action, "invoice", Some(id), json!({}))).await?;
    Ok(updated)
}

/// A line to credit: the original line's number and how much of its quantity (all that is
/// left when `None`).
#[derive(Clone, Debug)]
pub struct CreditLine {
    /// The credited invoice's line number.
    pub line_number: i32,
    /// Quantity to credit, positive; `None` for what is left of the line.
    pub quantity: Option<Decimal>,
}

/// Credits an ISSUED or PAID invoice with a DRAFT credit note referencing it (issue it to
/// number it): the chosen lines and quantities, or everything left of it when `lines` is
/// `None`. What all its live credit notes credit never exceeds a line's quantity or amount;
/// a credit note is not itself credited.
pub async fn credit_invoice(
    domain: &Domain,
    actor: &Actor,
    id: InvoiceId,
    lines: Option<Vec<CreditLine>>,
) -> Result<invoice::Model> {
    let now = domain.clock.now();
    let w = Write::begin(domain).await?;
    let original = locked_invoice(w.db(), actor, id).await?;
    require_issuer(actor, &original)?;
    if !matches!(original.status, InvoiceStatus::Issued | InvoiceStatus::Paid) {
        return Err(Error::InvalidTransition(format!(
            "only ISSUED or PAID invoices are credited; this one is {}",
            status_name(original.status)
        )));
    }
    if original.kind == InvoiceKind::CreditNote {
        return Err(Error::InvalidTransition("a credit note is not itself credited".into()));
    }
    let originals =
        invoice_line::Entity::find().filter(invoice_line::Column::InvoiceId.eq(original.id)).all(w.db()).await?;
    // What live credit notes credited so far: per line number (quantity, amount, tax) and in
    // all (subtotal, tax), in the invoice's own sign.
    let notes = invoice::Entity::find()
        .filter(invoice::Column::CreditedInvoiceId.eq(original.id))
        .filter(invoice::Column::Status.ne(InvoiceStatus::Void))
        .all(w.db())
        .await?;
    let credited_subtotal: Decimal = notes.iter().map(|n| -n.subtotal.0).sum();
    let credited_tax: Decimal = notes.iter().map(|n| -n.tax.0).sum();
    let note_ids: Vec<i64> = notes.iter().map(|n| n.id).collect();
    let mut credited: HashMap<i32, (Decimal, Decimal, Decimal)> = HashMap::new();
    for line in invoice_line::Entity::find().filter(invoice_line::Column::InvoiceId.is_in(note_ids)).all(w.db()).await?
    {
        let entry = credited.entry(line.line_number).or_default();
        entry.0 -= line.quantity.0;
        entry.1 -= line.amount.0;
        entry.2 -= line.tax.0;
    }
    let currency = crate::domain::money::Currency::parse(&original.currency, "currency")?;
    let rate = original.tax_rate.0;
    let round = |value: Decimal| crate::domain::money::round_to_minor_units(value, currency);
    // Per chosen line: (line, quantity, amount, tax) credited now, in the line's own sign.
    // Amounts and taxes are cumulative shares of the line, less what was credited before,
    // so crediting a line piece by piece never drifts past it.
    let mut chosen: Vec<(&invoice_line::Model, Decimal, Decimal, Decimal)> = Vec::new();
    let share = |line: &invoice_line::Model, quantity: Decimal| {
        let (quantity_before, amount_before, tax_before) = credited.get(&line.line_number).copied().unwrap_or_default();
        let whole = line.quantity.0.abs();
        let after = quantity_before.abs() + quantity;
        let amount_after = if after >= whole { line.amount.0 } else { round(line.amount.0 * after / whole) };
        let tax_after = if after >= whole { line.tax.0 } else { round(amount_after * rate) };
        (amount_after - amount_before, tax_after - tax_before)
    };
    let left = |line: &invoice_line::Model| {
        let quantity_before = credited.get(&line.line_number).map_or(Decimal::ZERO, |c| c.0.abs());
        line.quantity.0.abs() - quantity_before
    };
    match lines {
        None => {
            for line in &originals {
                let quantity = left(line);
                let (amount, tax) = share(line, quantity);
                if quantity > Decimal::ZERO || amount != Decimal::ZERO {
                    chosen.push((line, quantity, amount, tax));
                }
            }
            if chosen.is_empty() {
                return Err(Error::conflict("ALREADY_CREDITED", "nothing is left of this invoice to credit"));
            }
        }
        Some(requested) => {
            if requested.is_empty() {
                return Err(Error::validation("lines", "name at least one line"));
            }
            for (index, request) in requested.iter().enumerate() {
                let field = |name: &str| format!("lines[{index}].{name}");
                let line = originals
                    .iter()
                    .find(|l| l.line_number == request.line_number)
                    .ok_or_else(|| Error::validation(field("lineNumber"), "the invoice has no such line"))?;
                if chosen.iter().any(|(l, ..)| l.line_number == line.line_number) {
                    return Err(Error::validation(field("lineNumber"), "each line at most once"));
                }
                let quantity_left = left(line);
                let quantity = request.quantity.unwrap_or(quantity_left);
                if quantity <= Decimal::ZERO || quantity > quantity_left {
                    return Err(Error::validation(
                        field("quantity"),
                        format!("must be more than 0 and at most the {quantity_left} left of the line"),
                    ));
                }
                let (amount, tax) = share(line, quantity);
                chosen.push((line, quantity, amount, tax));
            }
        }
    }
    // The note as a whole: it must reduce what is owed, and all notes together never credit
    // more than the invoice's subtotal or tax (an invoice may mix charges and refunds).
    let amount: Decimal = chosen.iter().map(|(_, _, amount, _)| *amount).sum();
    let subtotal_after = credited_subtotal + amount;
    let tax_after = match domain.billing.tax {
        super::proration::TaxPolicy::PerLine => credited_tax + chosen.iter().map(|(.., tax)| *tax).sum::<Decimal>(),
        super::proration::TaxPolicy::PerInvoice if subtotal_after == original.subtotal.0 => original.tax.0,
        super::proration::TaxPolicy::PerInvoice => round(subtotal_after * rate),
    };
    if amount <= Decimal::ZERO {
        return Err(Error::validation("lines", "a credit note must reduce what is owed"));
    }
    if subtotal_after > original.subtotal.0 || tax_after > original.tax.0 {
        return Err(Error::validation("lines", "would credit more than is left of the invoice"));
    }
    let totals = super::invoices::Totals {
        subtotal: -amount,
        tax: -(tax_after - credited_tax),
        total: -amount - (tax_after - credited_tax),
    };
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
        subtotal: Set(DbDecimal(totals.subtotal)),
        tax: Set(DbDecimal(totals.tax)),
        total: Set(DbDecimal(totals.total)),
        issued_at: Set(None),
        paid_at: Set(None),
        voided_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        due_at: Set(None),
        parties: Set(None),
    }
    .insert(w.db())
    .await?;
    let negated: Vec<invoice_line::ActiveModel> = chosen
        .iter()
        .map(|(line, quantity, amount, tax)| invoice_line::ActiveModel {
            id: NotSet,
            invoice_id: Set(note.id),
            line_number: Set(line.line_number),
            charge_id: Set(None),
            customer_id: Set(line.customer_id),
            subscription_id: Set(line.subscription_id),
            description: Set(format!("credit: {}", line.description)),
            quantity: Set(DbDecimal(if line.quantity.0.is_sign_negative() { *quantity } else { -*quantity })),
            unit_price: Set(line.unit_price),
            days_used: Set(line.days_used),
            days_in_period: Set(line.days_in_period),
            amount: Set(DbDecimal(-*amount)),
            tax: Set(DbDecimal(match domain.billing.tax {
                super::proration::TaxPolicy::PerLine => -*tax,
                super::proration::TaxPolicy::PerInvoice => Decimal::ZERO,
            })),
            unit_cost: Set(line.unit_cost),
            unit_wholesale: Set(line.unit_wholesale),
            unit_retail: Set(line.unit_retail),
            // A credit is in the invoice's currency; the rate the line was converted at stays for reference.
            source_currency: Set(line.source_currency.clone()),
            source_amount: Set(None),
            exchange_rate: Set(line.exchange_rate),
            service_start: Set(line.service_start),
            service_end: Set(line.service_end),
            product_name: Set(line.product_name.clone()),
            cycle_unit_price: Set(line.cycle_unit_price),
        })
        .collect();
    for chunk in negated.chunks(200) {
        invoice_line::Entity::insert_many(chunk.to_vec()).exec_without_returning(w.db()).await?;
    }
    let details = json!({"creditNoteId": note.id, "lines": chosen.len(), "total": note.total.0.to_string()});
    w.commit(Audit::action(actor, "creditInvoice", "invoice", Some(original.id), details)).await?;
    Ok(note)
}
