//! Invoice exports for an authorized caller (bearer token, same scope as the API):
//! - `GET /invoices/{id}` — a printable HTML invoice;
//! - `GET /invoices/{id}/lines.csv` — the invoice's lines as CSV;
//! - `GET /invoices.csv?period=YYYY-MM` — every line of the period's invoices the caller sees.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use entity::{invoice, invoice_line};

use super::caller::Caller;
use crate::domain::billing::invoices;
use crate::domain::ids::InvoiceId;
use crate::domain::{Actor, Error};
use crate::state::AppState;

/// An export's error response: the status for the error's code, and the same error body as
/// the API's (`{"errors": [{"message", "extensions": {"code"}}]}`); internal causes are
/// logged, never sent.
pub(super) fn failure(error: Error) -> HttpResponse {
    let (status, message) = match &error {
        Error::Unauthenticated => return super::caller::Unauthenticated::default().error_response(),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, error.to_string()),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, error.to_string()),
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "invoice export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
        }
        Error::Validation { .. } | Error::InvalidTransition(_) | Error::Conflict { .. } => {
            (StatusCode::BAD_REQUEST, error.to_string())
        }
    };
    let body = serde_json::json!({ "errors": [crate::graphql::errors::request_error(message, error.code())] });
    HttpResponse::build(status).json(body)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A CSV field: quoted when it holds a separator, and a leading `=`, `+`, `-`, `@`, tab or
/// carriage return defused with `'` so a spreadsheet never runs it as a formula.
pub(super) fn escape_csv(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

const CSV_HEADER: &str = "invoice_id,invoice_number,period,currency,line_number,customer_id,subscription_id,description,quantity,unit_price,days_used,days_in_period,amount,tax\n";

fn csv_rows(out: &mut String, invoice: &invoice::Model, lines: &[invoice_line::Model]) {
    for line in lines.iter().filter(|l| l.invoice_id == invoice.id) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            invoice.id,
            invoice.number.as_deref().unwrap_or(""),
            invoice.period,
            invoice.currency,
            line.line_number,
            line.customer_id.map(|id| id.to_string()).unwrap_or_default(),
            line.subscription_id.map(|id| id.to_string()).unwrap_or_default(),
            escape_csv(&line.description),
            line.quantity.0,
            line.unit_price.0,
            line.days_used.map(|d| d.to_string()).unwrap_or_default(),
            line.days_in_period.map(|d| d.to_string()).unwrap_or_default(),
            line.amount.0,
            line.tax.0,
        );
    }
}

/// The invoice `id` and its lines, if the bearer may see it.
async fn load(state: &AppState, actor: &Actor, id: i64) -> Result<(invoice::Model, Vec<invoice_line::Model>), Error> {
    let invoice = invoices::get_invoice(&state.domain.db, actor, InvoiceId::new(id)).await?;
    let lines = invoices::lines_of(&state.domain, &[invoice.id]).await?;
    Ok((invoice, lines))
}

/// GET /invoices/{id}: printable HTML.
pub async fn html(state: web::Data<AppState>, caller: Caller, id: web::Path<i64>) -> HttpResponse {
    let Ok(actor) = caller.required() else { return failure(Error::Unauthenticated) };
    let (invoice, lines) = match load(&state, &actor, *id).await {
        Ok(loaded) => loaded,
        Err(error) => return failure(error),
    };
    let title = match (&invoice.kind, &invoice.number) {
        (entity::enums::InvoiceKind::CreditNote, Some(n)) => format!("Credit note {n}"),
        (_, Some(n)) => format!("Invoice {n}"),
        (_, None) => format!("Draft invoice #{}", invoice.id),
    };
    let mut rows = String::new();
    for line in &lines {
        let days = match (line.days_used, line.days_in_period) {
            (Some(used), Some(of)) => format!("{used}/{of}"),
            _ => String::new(),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            line.line_number,
            escape_html(&line.description),
            line.quantity.0,
            line.unit_price.0,
            days,
            line.amount.0
        );
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3em}}.n{{text-align:right}}</style></head>\
         <body><h1>{title}</h1><p>Period {period} · {issuer} → {recipient} · status {status:?}</p>\
         <table><tr><th>#</th><th>Description</th><th class=n>Qty</th><th class=n>Unit price</th><th class=n>Days</th><th class=n>Amount</th></tr>{rows}</table>\
         <p class=n>Subtotal {subtotal} {currency}<br>Tax ({rate}) {tax} {currency}<br><b>Total {total} {currency}</b></p></body></html>",
        period = escape_html(&invoice.period),
        issuer = escape_html(&invoice.issuer_key),
        recipient = escape_html(&invoice.recipient_key),
        status = invoice.status,
        subtotal = invoice.subtotal.0,
        rate = invoice.tax_rate.0,
        tax = invoice.tax.0,
        total = invoice.total.0,
        currency = escape_html(&invoice.currency),
    );
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

/// GET /invoices/{id}/lines.csv
pub async fn lines_csv(state: web::Data<AppState>, caller: Caller, id: web::Path<i64>) -> HttpResponse {
    let Ok(actor) = caller.required() else { return failure(Error::Unauthenticated) };
    let (invoice, lines) = match load(&state, &actor, *id).await {
        Ok(loaded) => loaded,
        Err(error) => return failure(error),
    };
    let mut out = CSV_HEADER.to_owned();
    csv_rows(&mut out, &invoice, &lines);
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out)
}

/// Query of `GET /invoices.csv`.
#[derive(serde::Deserialize)]
pub struct PeriodQuery {
    period: String,
}

/// GET /invoices.csv?period=YYYY-MM
pub async fn period_csv(state: web::Data<AppState>, caller: Caller, query: web::Query<PeriodQuery>) -> HttpResponse {
    let Ok(actor) = caller.required() else { return failure(Error::Unauthenticated) };
    let invoices = match invoices::invoices_of_period_with_lines(&state.domain, &actor, &query.period).await {
        Ok(invoices) => invoices,
        Err(error) => return failure(error),
    };
    let mut out = CSV_HEADER.to_owned();
    for (invoice, lines) in &invoices {
        csv_rows(&mut out, invoice, lines);
    }
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out)
}
