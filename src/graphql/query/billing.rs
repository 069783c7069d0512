//! Billing queries: invoices and previews.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::billing::invoices::{self, InvoiceFilter};
use crate::domain::billing::margins;
use crate::domain::billing::{plan::Period, preview_billing};
use crate::domain::pagination::PageRequest;
use crate::graphql::parse_id;
use crate::graphql::types::billing::{
    BillingPreview, Charge, ExchangeRate, Invoice, MarginGroupBy, MarginRow, PreviewLine,
};
use crate::graphql::types::catalog::Money;
use crate::graphql::types::enums::InvoiceStatus;
use crate::graphql::types::{PageConnection, connection};
use crate::graphql::{ResultExt, actor, domain};

/// Filters for `invoices`.
#[derive(InputObject, Default)]
pub struct InvoiceFilterInput {
    pub status: Option<InvoiceStatus>,
    /// `YYYY-MM`.
    pub period: Option<String>,
    pub customer_id: Option<ID>,
    pub reseller_id: Option<ID>,
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// Invoices the caller may see: a customer its issued invoices; a reseller those it
    /// issued and those the operator issued to it; the operator all. Oldest first, or newest
    /// first.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<InvoiceFilterInput>,
        #[graphql(default = false)] newest_first: bool,
    ) -> async_graphql::Result<PageConnection<Invoice>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?.newest_first(newest_first);
        let filter = filter.unwrap_or_default();
        let filter = InvoiceFilter {
            status: filter.status.map(Into::into),
            period: filter.period.map(|p| Period::parse(&p).map(|p| p.label())).transpose().gql()?,
            customer_id: filter.customer_id.map(|id| parse_id(&id, "filter.customerId")).transpose()?,
            reseller_id: filter.reseller_id.map(|id| parse_id(&id, "filter.resellerId")).transpose()?,
        };
        let page = invoices::list_invoices(domain(ctx), actor(ctx)?, &filter, page).await.gql()?;
        Ok(connection(page, |i| i.id, Invoice))
    }

    /// One invoice.
    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        let id = parse_id(&id, "id")?;
        invoices::get_invoice(&domain(ctx).db, actor(ctx)?, id).await.map(Invoice).gql()
    }

    /// The charges billed in a period's runs, each at cost, wholesale and retail (operator).
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn charges(
        &self,
        ctx: &Context<'_>,
        period: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PageConnection<Charge>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let page = margins::charges_of_period(domain(ctx), actor(ctx)?, &period, page).await.gql()?;
        Ok(connection(page, |c| c.id, Charge))
    }

    /// A period's margin report (operator): per reseller, customer, vendor or offer and
    /// currency, the charges' cost, wholesale and retail, and both margins.
    async fn margin_report(
        &self,
        ctx: &Context<'_>,
        period: String,
        group_by: MarginGroupBy,
    ) -> async_graphql::Result<Vec<MarginRow>> {
        let rows = margins::margin_report(domain(ctx), actor(ctx)?, &period, group_by.into()).await.gql()?;
        Ok(rows.into_iter().map(MarginRow).collect())
    }

    /// The exchange rates the operator maintains, optionally between two currencies, oldest
    /// first (operator and resellers).
    async fn exchange_rates(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
    ) -> async_graphql::Result<Vec<ExchangeRate>> {
        let rates = crate::domain::exchange_rates::list_exchange_rates(
            domain(ctx),
            actor(ctx)?,
            from.as_deref(),
            to.as_deref(),
        )
        .await
        .gql()?;
        Ok(rates.into_iter().map(ExchangeRate).collect())
    }

    /// Exactly what the customer's invoice for `period` will hold after a billing run.
    async fn preview_billing(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        period: String,
    ) -> async_graphql::Result<BillingPreview> {
        let customer_id = parse_id(&customer_id, "customerId")?;
        let preview = preview_billing(domain(ctx), actor(ctx)?, customer_id, &period).await.gql()?;
        let (currency, totals) = (preview.currency, preview.totals);
        Ok(BillingPreview {
            period: preview.period,
            lines: preview.lines.into_iter().map(PreviewLine::from).collect(),
            subtotal: Some(Money::new(totals.subtotal, currency)),
            tax: Some(Money::new(totals.tax, currency)),
            total: Some(Money::new(totals.total, currency)),
        })
    }
}
