//! Reports for the operator as CSV (bearer token; the same rules as the API):
//! - `GET /reports/margin.csv?period=YYYY-MM&groupBy=reseller|customer|vendor|offer` — the
//!   period's margin report, amounts at the currency's minor units; with `&cost=vendor`, the
//!   cost is what the vendors' statements of the period actually charged.
//! - `GET /reports/reconciliation.csv?importId=N` (or `period=YYYY-MM`; narrowed by
//!   `category`, `status`, `resellerId`, `customerId`, `subscriptionId`) — what matching
//!   found, a line per finding with the rule that decided it, streamed a page at a time.

use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, web};

use super::caller::Caller;
use super::invoices::{escape_csv, failure};
use crate::domain::billing::margins::{MarginGroup, margin_report};
use crate::domain::money::format_minor_units;
use crate::domain::reconciliation::matching::Category;
use crate::domain::reconciliation::report::{FindingFilter, findings_after, vendor_margin};
use crate::domain::{Actor, Error};
use crate::state::AppState;

/// Query of `GET /reports/margin.csv`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginQuery {
    period: String,
    group_by: String,
    /// `charges` (the default: our charges' cost) or `vendor` (the statements' charges).
    cost: Option<String>,
}

/// GET /reports/margin.csv
pub async fn margin_csv(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    query: web::Query<MarginQuery>,
) -> HttpResponse {
    super::limits::export(&state, &request, caller, |actor| margin_csv_for(state.clone(), actor, query)).await
}

async fn margin_csv_for(state: web::Data<AppState>, actor: Actor, query: web::Query<MarginQuery>) -> HttpResponse {
    let by = match query.group_by.to_ascii_lowercase().as_str() {
        "reseller" => MarginGroup::Reseller,
        "customer" => MarginGroup::Customer,
        "vendor" => MarginGroup::Vendor,
        "offer" => MarginGroup::Offer,
        _ => return failure(Error::validation("groupBy", "one of reseller, customer, vendor, offer")),
    };
    let rows = match query.cost.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("charges") => margin_report(&state.domain, &actor, &query.period, by).await,
        Some("vendor") => vendor_margin(&state.domain, &actor, &query.period, by).await,
        Some(_) => return failure(Error::validation("cost", "charges or vendor")),
    };
    let rows = match rows {
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

/// Query of `GET /reports/reconciliation.csv`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingsQuery {
    import_id: Option<i64>,
    period: Option<String>,
    category: Option<String>,
    status: Option<String>,
    reseller_id: Option<i64>,
    customer_id: Option<i64>,
    subscription_id: Option<i64>,
}

const FINDINGS_HEADER: &str = "finding_id,import_id,category,status,amount,currency,vendor_amount,expected_amount,\
vendor_rows,vendor_quantity,our_quantity,billed_currency,cost_billed,wholesale_billed,retail_billed,subscription_id,\
reseller_id,customer_id,offer_id,subscription_reference,customer_external_id,sku,unit_kind,charge_start,charge_end,\
exchange_rate,rule,note,recovery_charge_id\n";

/// Findings per page of the export.
const FINDINGS_PAGE: u64 = 2_000;

/// GET /reports/reconciliation.csv
pub async fn reconciliation_csv(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: Caller,
    query: web::Query<FindingsQuery>,
) -> HttpResponse {
    super::limits::export(&state, &request, caller, |actor| reconciliation_csv_for(state.clone(), actor, query)).await
}

async fn reconciliation_csv_for(
    state: web::Data<AppState>,
    actor: Actor,
    query: web::Query<FindingsQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let category = match query.category.as_deref().map(|c| Category::parse(&c.to_ascii_uppercase())) {
        Some(None) => return failure(Error::validation("category", "not a category")),
        Some(Some(category)) => Some(category),
        None => None,
    };
    let filter = FindingFilter {
        import_id: query.import_id,
        period: query.period,
        category,
        status: query.status.map(|s| s.to_ascii_uppercase()),
        reseller_id: query.reseller_id,
        customer_id: query.customer_id,
        subscription_id: query.subscription_id,
    };
    // The first page now: a bad filter or a caller who may not is an error, not a CSV.
    let first = match findings_after(&state.domain, &actor, &filter, 0, FINDINGS_PAGE).await {
        Ok(page) => page,
        Err(error) => return failure(error),
    };
    let domain = std::sync::Arc::clone(&state.domain);
    let head = futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from(FINDINGS_HEADER)) });
    let pages = futures_util::stream::unfold(Some(first), move |page| {
        let (domain, actor, filter) = (domain.clone(), actor.clone(), filter.clone());
        async move {
            let page = page?;
            let last = page.last()?.id;
            let body = page.iter().map(finding_line).collect::<String>();
            let next = if (page.len() as u64) < FINDINGS_PAGE {
                Some(Vec::new())
            } else {
                match findings_after(&domain, &actor, &filter, last, FINDINGS_PAGE).await {
                    Ok(next) => Some(next),
                    Err(error) => {
                        tracing::error!(%error, "the reconciliation export stopped");
                        return Some((Err(actix_web::error::ErrorInternalServerError("export failed")), None));
                    }
                }
            };
            Some((Ok(web::Bytes::from(body)), next))
        }
    });
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").streaming(futures_util::StreamExt::chain(head, pages))
}

fn finding_line(f: &entity::reconciliation_finding::Model) -> String {
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let number = |v: Option<entity::DbDecimal>| v.map(|v| v.0.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        f.id,
        f.import_id,
        f.category,
        f.status,
        f.amount.0,
        f.currency,
        f.vendor_amount.0,
        number(f.expected_amount),
        f.vendor_rows,
        number(f.vendor_quantity),
        number(f.our_quantity),
        f.billed_currency.as_deref().unwrap_or_default(),
        f.cost_billed.0,
        f.wholesale_billed.0,
        f.retail_billed.0,
        id(f.subscription_id),
        id(f.reseller_id),
        id(f.customer_id),
        id(f.offer_id),
        escape_csv(&f.subscription_reference),
        escape_csv(&f.customer_external_id),
        escape_csv(&f.sku),
        f.unit_kind,
        f.charge_start.format("%Y-%m-%d"),
        f.charge_end.format("%Y-%m-%d"),
        f.exchange_rate.0,
        escape_csv(&f.rule),
        escape_csv(f.note.as_deref().unwrap_or_default()),
        id(f.recovery_charge_id),
    )
}
