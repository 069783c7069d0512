//! Invoice exports for an authorized caller (bearer token, same scope as the API):
//! - `GET /invoices/{id}` — a printable HTML invoice;
//! - `GET /invoices/{id}/lines.csv` — the invoice's lines as CSV;
//! - `GET /invoices.csv?period=YYYY-MM` — every line of the period's invoices the caller sees.
//!
//! Every CSV row carries its invoice's header (number, kind, status, side — sale, purchase
//! or the channel's —, issuer, recipient, dates, currency) and totals; amounts are at the
//! currency's minor units.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use entity::{invoice, invoice_line};

use super::caller::Caller;
use crate::domain::billing::invoices;
use crate::domain::ids::InvoiceId;
use crate::domain::money::format_minor_units;
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
        Error::Validation { .. } | Error::InvalidTransition(_) | Error::Conflict { .. } | Error::Rejected { .. } => {
            (StatusCode::BAD_REQUEST, error.to_string())
        }
        Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, error.to_string()),
        Error::Unavailable(cause) => {
            tracing::warn!(error = %cause, "invoice export: the database is unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
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

const CSV_HEADER: &str = "invoice_id,invoice_number,kind,status,side,issuer,recipient,issuer_name,recipient_name,\
issue_date,due_date,period,currency,\
line_number,customer_id,subscription_id,product,service_start,service_end,description,quantity,cycle_unit_price,unit_price,\
days_used,days_in_period,amount,tax,source_currency,source_amount,exchange_rate,invoice_subtotal,invoice_tax,invoice_total\n";

fn day(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Whose side of the channel an invoice is for the caller: what it sells, what it buys,
/// or (the operator looking at a reseller's invoice to a customer) the channel's.
fn side(actor: &Actor, invoice: &invoice::Model) -> &'static str {
    match actor.tenant {
        crate::domain::Tenant::Operator if invoice.issuer_reseller_id.is_none() => "sale",
        crate::domain::Tenant::Operator => "channel",
        crate::domain::Tenant::Reseller(id) if invoice.issuer_reseller_id == Some(id.get()) => "sale",
        _ => "purchase",
    }
}

fn csv_rows(
    out: &mut String,
    actor: &Actor,
    invoice: &invoice::Model,
    names: &std::collections::HashMap<i64, (String, String)>,
    lines: &[invoice_line::Model],
) {
    let (issuer_name, recipient_name) = names.get(&invoice.id).cloned().unwrap_or_default();
    let money = |amount: rust_decimal::Decimal| format_minor_units(amount, &invoice.currency);
    for line in lines.iter().filter(|l| l.invoice_id == invoice.id) {
        let source_money = match (&line.source_amount, &line.source_currency) {
            (Some(amount), Some(code)) => format_minor_units(amount.0, code),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            invoice.id,
            invoice.number.as_deref().unwrap_or(""),
            match invoice.kind {
                entity::enums::InvoiceKind::Invoice => "INVOICE",
                entity::enums::InvoiceKind::CreditNote => "CREDIT_NOTE",
            },
            crate::domain::billing::issuing::status_name(invoice.status),
            side(actor, invoice),
            escape_csv(&invoice.issuer_key),
            escape_csv(&invoice.recipient_key),
            escape_csv(&issuer_name),
            escape_csv(&recipient_name),
            day(invoice.issued_at),
            day(invoice.due_at),
            invoice.period,
            invoice.currency,
            line.line_number,
            line.customer_id.map(|id| id.to_string()).unwrap_or_default(),
            line.subscription_id.map(|id| id.to_string()).unwrap_or_default(),
            escape_csv(line.product_name.as_deref().unwrap_or("")),
            day(line.service_start),
            day(line.service_end),
            escape_csv(&line.description),
            line.quantity.0,
            line.cycle_unit_price.map(|p| p.0.normalize().to_string()).unwrap_or_default(),
            line.unit_price.0.normalize(),
            line.days_used.map(|d| d.to_string()).unwrap_or_default(),
            line.days_in_period.map(|d| d.to_string()).unwrap_or_default(),
            money(line.amount.0),
            money(line.tax.0),
            line.source_currency.as_deref().unwrap_or(""),
            source_money,
            line.exchange_rate.map(|r| r.0.normalize().to_string()).unwrap_or_default(),
            money(invoice.subtotal.0),
            money(invoice.tax.0),
            money(invoice.total.0),
        );
    }
}

/// The invoice `id` and its lines, if the bearer may see it.
async fn load(state: &AppState, actor: &Actor, id: i64) -> Result<(invoice::Model, Vec<invoice_line::Model>), Error> {
    invoices::invoice_with_lines(&state.domain, actor, InvoiceId::new(id)).await
}

fn party_html(title: &str, party: &invoices::Party) -> String {
    let mut html = format!("<div class=party><h2>{title}</h2><p><b>{}</b>", escape_html(&party.legal_name));
    for line in party.address.lines().filter(|l| !l.trim().is_empty()) {
        let _ = write!(html, "<br>{}", escape_html(line));
    }
    if !party.country.is_empty() {
        let _ = write!(html, "<br>{}", escape_html(&party.country));
    }
    if !party.tax_id.is_empty() {
        let _ = write!(html, "<br>Tax id {}", escape_html(&party.tax_id));
    }
    html.push_str("</p></div>");
    html
}

const STYLE: &str = "@page{margin:15mm}\
body{font-family:Helvetica,Arial,sans-serif;font-size:10pt;color:#111;max-width:180mm;margin:0 auto}\
h1{font-size:18pt;margin:0 0 4mm}h2{font-size:9pt;text-transform:uppercase;color:#555;margin:0 0 1mm}\
.parties{display:flex;justify-content:space-between;gap:10mm;margin:6mm 0}.party{flex:1}\
table{border-collapse:collapse;width:100%}td,th{padding:1.5mm 1mm;vertical-align:top;border-bottom:.2mm solid #ccc}\
th{text-align:left;font-size:8.5pt;color:#555}.n{text-align:right;white-space:nowrap}thead{display:table-header-group}\
tr{page-break-inside:avoid}.meta td{border:none;padding:.5mm 2mm .5mm 0}.totals{width:auto;margin-left:auto;margin-top:4mm}\
.totals td{border:none}.small{font-size:8.5pt;color:#555}.d{white-space:nowrap}";

/// GET /invoices/{id}: a printable HTML invoice (A4 or Letter): the parties with their
/// legal names, addresses and tax ids, number, dates, and per line the product, service
/// period, quantity, undiscounted price per cycle, days and amount, then subtotal, tax at
/// its rate and total, every amount at the currency's minor units.
pub async fn html(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    id: web::Path<i64>,
) -> HttpResponse {
    super::limits::export(&state, &request, caller, |actor| html_for(state.clone(), actor, id)).await
}

async fn html_for(state: web::Data<AppState>, actor: Actor, id: web::Path<i64>) -> HttpResponse {
    let (invoice, lines) = match load(&state, &actor, *id).await {
        Ok(loaded) => loaded,
        Err(error) => return failure(error),
    };
    let (issuer, recipient, credited) = match invoices::parties_of(&state.domain, &invoice).await {
        Ok(parties) => parties,
        Err(error) => return failure(error),
    };
    let currency = escape_html(&invoice.currency);
    let money = |amount: rust_decimal::Decimal| format_minor_units(amount, &invoice.currency);
    let title = match (&invoice.kind, &invoice.number) {
        (entity::enums::InvoiceKind::CreditNote, Some(n)) => format!("Credit note {}", escape_html(n)),
        (_, Some(n)) => format!("Invoice {}", escape_html(n)),
        (_, None) => format!("Draft invoice #{}", invoice.id),
    };
    let mut rows = String::new();
    for line in &lines {
        let days = match (line.days_used, line.days_in_period) {
            (Some(used), Some(of)) => format!("{used}/{of}"),
            _ => String::new(),
        };
        let period = match (line.service_start, line.service_end) {
            (Some(start), Some(end)) => {
                // The last day covered, inclusive.
                let last = (end - chrono::Duration::days(1)).max(start);
                format!(
                    "<span class=d>{}</span> – <span class=d>{}</span>",
                    start.format("%Y-%m-%d"),
                    last.format("%Y-%m-%d")
                )
            }
            _ => String::new(),
        };
        // Lines billed before the price per cycle was kept show their prorated unit price,
        // marked: their amount is that × quantity.
        let unit = match line.cycle_unit_price {
            Some(price) => price.0.normalize().to_string(),
            None => format!("{} *", line.unit_price.0.normalize()),
        };
        let converted = match (&line.source_currency, &line.source_amount, &line.exchange_rate) {
            (Some(code), Some(amount), Some(rate)) => format!(
                "<br><span class=small>converted from {} {} at {}</span>",
                format_minor_units(amount.0, code),
                escape_html(code),
                rate.0
            ),
            _ => String::new(),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td><b>{}</b><br><span class=small>{}</span>{converted}</td><td>{period}</td>\
             <td class=n>{}</td><td class=n>{}</td><td class=n>{days}</td><td class=n>{}</td></tr>",
            line.line_number,
            escape_html(line.product_name.as_deref().unwrap_or("")),
            escape_html(&line.description),
            line.quantity.0.normalize(),
            unit,
            money(line.amount.0),
        );
    }
    let credits =
        credited.map(|number| format!("<p><b>Credits invoice {}</b></p>", escape_html(&number))).unwrap_or_default();
    let rate = (invoice.tax_rate.0 * rust_decimal::Decimal::ONE_HUNDRED).normalize();
    let reverse_charge =
        if invoice.issuer_reseller_id.is_none() && invoice.tax.0.is_zero() { " (reverse charge)" } else { "" };
    let page = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1>{credits}\
         <table class=meta><tr><td>Number</td><td>{number}</td></tr><tr><td>Issue date</td><td>{issued}</td></tr>\
         <tr><td>Due date</td><td>{due}</td></tr><tr><td>Billing period</td><td>{period}</td></tr>\
         <tr><td>Currency</td><td>{currency}</td></tr><tr><td>Status</td><td>{status:?}</td></tr></table>\
         <div class=parties>{from}{to}</div>\
         <table class=lines><thead><tr><th>#</th><th>Product</th><th>Service period</th><th class=n>Quantity</th>\
         <th class=n>Unit price per cycle</th><th class=n>Days</th><th class=n>Amount ({currency})</th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <table class=totals><tr><td>Subtotal</td><td class=n>{subtotal} {currency}</td></tr>\
         <tr><td>Tax at {rate} %{reverse_charge}</td><td class=n>{tax} {currency}</td></tr>\
         <tr><td><b>Total</b></td><td class=n><b>{total} {currency}</b></td></tr></table>\
         <p class=small>{rule} A converted line: round(its amount in the source currency × the rate). \
         * A prorated unit price: the amount is that × quantity.</p></body></html>",
        rule = match state.domain.billing.rounding {
            crate::domain::billing::proration::ProrationRounding::RoundPerUnitThenMultiply => {
                "Each line: round(unit price per cycle × days used ÷ days in the cycle) at the currency's minor \
                 units, × quantity (hours for a refund by the hour)."
            }
            crate::domain::billing::proration::ProrationRounding::RoundPerLine => {
                "Each line: round(unit price per cycle × days used ÷ days in the cycle × quantity) at the \
                 currency's minor units (hours for a refund by the hour)."
            }
        },
        number = escape_html(invoice.number.as_deref().unwrap_or("(draft: numbered when issued)")),
        issued = day(invoice.issued_at),
        due = day(invoice.due_at),
        period = escape_html(&invoice.period),
        status = invoice.status,
        from = party_html("From", &issuer),
        to = party_html("To", &recipient),
        subtotal = money(invoice.subtotal.0),
        tax = money(invoice.tax.0),
        total = money(invoice.total.0),
    );
    // Opened directly (a link, a bookmark), the document loads nothing and runs nothing: its
    // own inline styles only. (The dashboard opens it from memory, under its own policy.)
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
        ))
        .body(page)
}

/// GET /invoices/{id}/lines.csv
pub async fn lines_csv(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    id: web::Path<i64>,
) -> HttpResponse {
    super::limits::export(&state, &request, caller, |actor| lines_csv_for(state.clone(), actor, id)).await
}

async fn lines_csv_for(state: web::Data<AppState>, actor: Actor, id: web::Path<i64>) -> HttpResponse {
    let (invoice, lines) = match load(&state, &actor, *id).await {
        Ok(loaded) => loaded,
        Err(error) => return failure(error),
    };
    let names = match invoices::party_names(&state.domain, &[&invoice]).await {
        Ok(names) => names,
        Err(error) => return failure(error),
    };
    let mut out = CSV_HEADER.to_owned();
    csv_rows(&mut out, &actor, &invoice, &names, &lines);
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out)
}

/// Query of `GET /invoices.csv`.
#[derive(serde::Deserialize)]
pub struct PeriodQuery {
    period: String,
}

/// GET /invoices.csv?period=YYYY-MM
pub async fn period_csv(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    query: web::Query<PeriodQuery>,
) -> HttpResponse {
    super::limits::export(&state, &request, caller, |actor| period_csv_for(state.clone(), actor, query)).await
}

async fn period_csv_for(state: web::Data<AppState>, actor: Actor, query: web::Query<PeriodQuery>) -> HttpResponse {
    let invoices = match invoices::invoices_of_period_with_lines(&state.domain, &actor, &query.period).await {
        Ok(invoices) => invoices,
        Err(error) => return failure(error),
    };
    let all: Vec<&invoice::Model> = invoices.iter().map(|(invoice, _)| invoice).collect();
    let names = match invoices::party_names(&state.domain, &all).await {
        Ok(names) => names,
        Err(error) => return failure(error),
    };
    let mut out = CSV_HEADER.to_owned();
    for (invoice, lines) in &invoices {
        csv_rows(&mut out, &actor, invoice, &names, lines);
    }
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out)
}
