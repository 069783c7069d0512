//! Reconciliation queries (operator only): imports, findings, reports and the margin from
//! the vendors' actual charges.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::ids::{CustomerId, FindingId, ResellerId, StatementImportId, SubscriptionId, VendorId};
use crate::domain::pagination::PageRequest;
use crate::domain::reconciliation::report::{self, FindingFilter};
use crate::graphql::parse_id;
use crate::graphql::types::billing::{MarginGroupBy, MarginRow};
use crate::graphql::types::reconciliation::{
    CategoryKind, Finding, FindingStatus, ReconciliationReport, StatementImport,
};
use crate::graphql::types::{PageConnection, connection};
use crate::graphql::{ResultExt, actor, domain};

/// Which findings: those of one import, or of every import of a period; then narrowed.
#[derive(InputObject, Default)]
pub struct FindingFilterInput {
    pub import_id: Option<ID>,
    /// `YYYY-MM`: every import of the period.
    pub period: Option<String>,
    pub category: Option<CategoryKind>,
    pub status: Option<FindingStatus>,
    pub reseller_id: Option<ID>,
    pub customer_id: Option<ID>,
    pub subscription_id: Option<ID>,
}

impl FindingFilterInput {
    /// The domain's filter.
    pub fn parse(self) -> async_graphql::Result<FindingFilter> {
        Ok(FindingFilter {
            import_id: self
                .import_id
                .map(|id| parse_id::<StatementImportId>(&id, "filter.importId"))
                .transpose()?
                .map(|i| i.get()),
            period: self.period,
            category: self.category.map(Into::into),
            status: self.status.map(|s| s.as_str().to_owned()),
            reseller_id: self
                .reseller_id
                .map(|id| parse_id::<ResellerId>(&id, "filter.resellerId"))
                .transpose()?
                .map(|i| i.get()),
            customer_id: self
                .customer_id
                .map(|id| parse_id::<CustomerId>(&id, "filter.customerId"))
                .transpose()?
                .map(|i| i.get()),
            subscription_id: self
                .subscription_id
                .map(|id| parse_id::<SubscriptionId>(&id, "filter.subscriptionId"))
                .transpose()?
                .map(|i| i.get()),
        })
    }
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Vendors' statements imported, of one vendor if given; oldest first, or newest first.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn statement_imports(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        vendor_id: Option<ID>,
        #[graphql(default = false)] newest_first: bool,
    ) -> async_graphql::Result<PageConnection<StatementImport>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?.newest_first(newest_first);
        let vendor = vendor_id.map(|id| parse_id::<VendorId>(&id, "vendorId")).transpose()?.map(|v| v.get());
        let page = report::list_imports(domain(ctx), actor(ctx)?, vendor, page).await.gql()?;
        Ok(connection(page, |i| i.id, StatementImport))
    }

    /// One import.
    async fn statement_import(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<StatementImport> {
        let id = parse_id::<StatementImportId>(&id, "id")?;
        report::get_import(domain(ctx), actor(ctx)?, id.get()).await.map(StatementImport).gql()
    }

    /// What matching found, filtered (CSV: `GET /reports/reconciliation.csv`).
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn reconciliation_findings(
        &self,
        ctx: &Context<'_>,
        filter: FindingFilterInput,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PageConnection<Finding>> {
        let page = PageRequest::parse(first, after.as_deref()).gql()?;
        let filter = filter.parse()?;
        let page = report::findings(domain(ctx), actor(ctx)?, &filter, page).await.gql()?;
        Ok(connection(page, |f| f.id, Finding))
    }

    /// One finding.
    async fn reconciliation_finding(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Finding> {
        let id = parse_id::<FindingId>(&id, "id")?;
        report::finding(domain(ctx), actor(ctx)?, id.get()).await.map(Finding).gql()
    }

    /// Totals of what matching found: per category, vendor, reseller and customer.
    async fn reconciliation_report(
        &self,
        ctx: &Context<'_>,
        filter: FindingFilterInput,
    ) -> async_graphql::Result<ReconciliationReport> {
        let filter = filter.parse()?;
        report::report(domain(ctx), actor(ctx)?, &filter).await.map(ReconciliationReport).gql()
    }

    /// A period's margin from the vendors' actual charges (the statements imported for it):
    /// per group and currency, what the vendors charged (cost), and what was billed at
    /// wholesale and retail for the same cycles (CSV: `GET /reports/margin.csv?cost=vendor`).
    async fn vendor_margin_report(
        &self,
        ctx: &Context<'_>,
        period: String,
        group_by: MarginGroupBy,
    ) -> async_graphql::Result<Vec<MarginRow>> {
        let rows = report::vendor_margin(domain(ctx), actor(ctx)?, &period, group_by.into()).await.gql()?;
        Ok(rows.into_iter().map(MarginRow).collect())
    }
}
