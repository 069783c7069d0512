//! A DRAFT invoice's totals: its rate, tax and total always agree with its lines. Lines are
//! added to what the database sums of them (not read back); a changed tax rate or policy
//! re-taxes every line. A draft's kind follows the sign of its total.

use chrono::{DateTime, Utc};
use entity::enums::InvoiceKind;
use entity::{DbDecimal, invoice, invoice_line};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Set};

use super::invoices::{self, totals};
use super::proration::TaxPolicy;
use crate::domain::error::{Error, Result};
use crate::domain::money::{Currency, checked_total, max_storable, round_to_minor_units};

/// The conflict reason of totals that would pass the largest amount an invoice may hold.
pub const TOO_LARGE: &str = "AMOUNT_TOO_LARGE";

fn too_large() -> Error {
    Error::conflict(TOO_LARGE, format!("its total would be larger than an amount may be ({})", max_storable()))
}

/// Brings a DRAFT's tax rate, line taxes (per-line policy) and totals to `rate`: a draft
/// follows its recipient's current rate until it is issued, and its rate, tax and total
/// always agree. Its kind follows the sign of its total.
pub async fn refresh_totals<C: ConnectionTrait>(
    db: &C,
    invoice: invoice::Model,
    rate: Decimal,
    policy: TaxPolicy,
    now: DateTime<Utc>,
) -> Result<invoice::Model> {
    let lines: Vec<(i64, Decimal, Decimal)> = invoice_line::Entity::find()
        .select_only()
        .column(invoice_line::Column::Id)
        .column(invoice_line::Column::Amount)
        .column(invoice_line::Column::Tax)
        .filter(invoice_line::Column::InvoiceId.eq(invoice.id))
        .into_tuple::<(i64, DbDecimal, DbDecimal)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, amount, tax)| (id, amount.0, tax.0))
        .collect();
    update_totals(db, invoice, &lines, rate, policy, now).await
}

/// The sums of a draft's lines, from the database.
#[derive(Default)]
pub(super) struct LinesHeld {
    amount: Decimal,
    tax: Decimal,
    pub(super) last_line: i32,
}

impl LinesHeld {
    pub(super) async fn of<C: ConnectionTrait>(db: &C, invoice_id: i64) -> Result<Self> {
        let lines = invoice_line::Entity::find().filter(invoice_line::Column::InvoiceId.eq(invoice_id));
        if db.get_database_backend() == DbBackend::Postgres {
            // NUMERIC sums exactly.
            let sums: Option<(Option<DbDecimal>, Option<DbDecimal>, Option<i32>)> = lines
                .select_only()
                .column_as(invoice_line::Column::Amount.sum(), "amount")
                .column_as(invoice_line::Column::Tax.sum(), "tax")
                .column_as(invoice_line::Column::LineNumber.max(), "last_line")
                .into_tuple()
                .one(db)
                .await?;
            let (amount, tax, last_line) = sums.unwrap_or_default();
            return Ok(Self {
                amount: amount.map(|a| a.0).unwrap_or_default(),
                tax: tax.map(|t| t.0).unwrap_or_default(),
                last_line: last_line.unwrap_or(0),
            });
        }
        // SQLite keeps decimals as text and would sum them as floating point: the two
        // columns are read and summed here.
        let rows: Vec<(DbDecimal, DbDecimal, i32)> = lines
            .select_only()
            .column(invoice_line::Column::Amount)
            .column(invoice_line::Column::Tax)
            .column(invoice_line::Column::LineNumber)
            .into_tuple()
            .all(db)
            .await?;
        Ok(rows.into_iter().fold(Self::default(), |held, (amount, tax, number)| Self {
            amount: held.amount + amount.0,
            tax: held.tax + tax.0,
            last_line: held.last_line.max(number),
        }))
    }

    /// Whether the draft's row agrees with its lines at `rate` under `policy` (per line:
    /// each line taxed, the tax their sum; per invoice: lines untaxed), so that new lines
    /// can be added to its totals.
    pub(super) fn agrees_with(&self, invoice: &invoice::Model, rate: Decimal, policy: TaxPolicy) -> bool {
        let taxed = match policy {
            TaxPolicy::PerLine => self.tax == invoice.tax.0,
            TaxPolicy::PerInvoice => self.tax.is_zero(),
        };
        invoice.tax_rate.0 == rate && self.amount == invoice.subtotal.0 && taxed
    }
}

/// A draft's totals after adding lines (amount, tax at the draft's rate) to what its lines
/// held, which agreed with its row; `AMOUNT_TOO_LARGE` when they would pass the largest
/// amount. Nothing is written.
pub(super) fn added_totals(
    invoice: &invoice::Model,
    held: &LinesHeld,
    added: &[(Decimal, Decimal)],
    policy: TaxPolicy,
) -> Result<invoices::Totals> {
    let currency = Currency::parse(&invoice.currency, "currency")?;
    let rate = invoice.tax_rate.0;
    let subtotal = checked_total(std::iter::once(held.amount).chain(added.iter().map(|(amount, _)| *amount)))
        .ok_or_else(too_large)?;
    let tax = match policy {
        TaxPolicy::PerInvoice => subtotal.checked_mul(rate).map(|tax| round_to_minor_units(tax, currency)),
        TaxPolicy::PerLine => checked_total(std::iter::once(held.tax).chain(added.iter().map(|(_, tax)| *tax))),
    }
    .ok_or_else(too_large)?;
    let total = checked_total([subtotal, tax]).ok_or_else(too_large)?;
    Ok(invoices::Totals { subtotal, tax, total })
}

/// [`refresh_totals`] with the draft's lines known: (id, amount, tax).
async fn update_totals<C: ConnectionTrait>(
    db: &C,
    invoice: invoice::Model,
    lines: &[(i64, Decimal, Decimal)],
    rate: Decimal,
    policy: TaxPolicy,
    now: DateTime<Utc>,
) -> Result<invoice::Model> {
    let currency = Currency::parse(&invoice.currency, "currency")?;
    // Per line: each line taxed at the rate; per invoice: lines carry no tax of their own
    // (which also undoes taxes left from a per-line policy).
    for (id, amount, tax) in lines {
        let due = match policy {
            TaxPolicy::PerLine => round_to_minor_units(*amount * rate, currency),
            TaxPolicy::PerInvoice => Decimal::ZERO,
        };
        if due != *tax {
            invoice_line::Entity::update_many()
                .col_expr(invoice_line::Column::Tax, Expr::value(DbDecimal(due)))
                .filter(invoice_line::Column::Id.eq(*id))
                .exec(db)
                .await?;
        }
    }
    let amounts: Vec<Decimal> = lines.iter().map(|(_, amount, _)| *amount).collect();
    // Each line is within bounds; the sums are checked before they are computed.
    let subtotal = checked_total(amounts.iter().copied()).ok_or_else(too_large)?;
    if subtotal.checked_mul(rate).and_then(|tax| checked_total([subtotal, tax])).is_none() {
        return Err(too_large());
    }
    write_totals(db, invoice, totals(&amounts, rate, currency, policy), rate, now).await
}

/// Writes a draft's rate and totals; its kind follows the sign of its total.
pub(super) async fn write_totals<C: ConnectionTrait>(
    db: &C,
    invoice: invoice::Model,
    totals: invoices::Totals,
    rate: Decimal,
    now: DateTime<Utc>,
) -> Result<invoice::Model> {
    let mut model: invoice::ActiveModel = invoice.into();
    model.kind = Set(if totals.total < Decimal::ZERO { InvoiceKind::CreditNote } else { InvoiceKind::Invoice });
    model.tax_rate = Set(DbDecimal(rate));
    model.subtotal = Set(DbDecimal(totals.subtotal));
    model.tax = Set(DbDecimal(totals.tax));
    model.total = Set(DbDecimal(totals.total));
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}
