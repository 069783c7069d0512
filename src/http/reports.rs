//! Reports for the operator as CSV (bearer token; the same rules as the API):
//! - `GET /reports/margin.csv?period=YYYY-MM&groupBy=reseller|customer|vendor|offer` — the
//!   period's margin report, amounts at the currency's minor units.

use std::fmt::Write as _;

use actix_web::{HttpResponse, web};

use super::caller::Caller;
use super::invoices::{escape_csv, failure};
use crate::domain::Error;
use crate::domain::billing::margins::{MarginGroup, margin_report};
use crate::domain::money::format_minor_units;
use crate::state::AppState;

/// Query of `GET /reports/margin.csv`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginQuery {
    period: String,
    group_by: String,
}

/// GET /reports/margin.csv
pub async fn margin_csv(state: web::Data<AppState>, caller: Caller, query: web::Query<MarginQuery>) -> HttpResponse {
    let Ok(actor) = caller.required() else { return failure(Error::Unauthenticated) };
    let by = match query.group_by.to_ascii_lowercase().as_str() {
        "reseller" => MarginGroup::Reseller,
        "customer" => MarginGroup::Customer,
        "vendor" => MarginGroup::Vendor,
        "offer" => MarginGroup::Offer,
        _ => return failure(Error::validation("groupBy", "one of reseller, customer, vendor, offer")),
    };
    let rows = match margin_report(&state.domain, &actor, &query.period, by).await {
        Ok(rows) => rows,
        Err(error) => return failure(error),
    };
    let mut out =
        "period,group_by,id,name,currency,lines,cost,wholesale,retail,operator_margin,reseller_margin\n".to_owned();
    for row in &rows {
        let money = |amount| format_minor_units(amount, &row.currency);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            escape_csv(&query.period),
            query.group_by.to_ascii_lowercase(),
            row.id,
            escape_csv(&row.name),
            row.currency,
            row.lines,
            money(row.cost),
            money(row.wholesale),
            money(row.retail),
            money(row.operator_margin()),
            money(row.reseller_margin()),
        );
    }
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(out)
}
