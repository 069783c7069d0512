//! Reconciliation mutations (operator only): importing a vendor's statement (a multipart
//! upload, the GraphQL multipart request spec), matching it again with tolerances, and
//! resolving findings.

use async_graphql::{Context, ID, Object, SimpleObject, Upload};

use crate::domain::ids::{FindingId, StatementImportId, VendorId};
use crate::domain::reconciliation::import::import_statement;
use crate::domain::reconciliation::matcher::match_import;
use crate::domain::reconciliation::matching::Tolerances;
use crate::domain::reconciliation::partner_center::PartnerCenter;
use crate::domain::reconciliation::resolution::{explain_finding, recover_finding};
use crate::graphql::parse_id;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::reconciliation::{Finding, StatementImport};
use crate::graphql::{ResultExt, actor, domain};

/// An import, and whether the same file had been imported before (then nothing was written).
#[derive(SimpleObject)]
pub struct StatementImportPayload {
    pub import: StatementImport,
    pub replayed: bool,
}

#[derive(Default)]
pub struct ReconciliationMutation;

#[Object]
impl ReconciliationMutation {
    /// Imports a vendor's statement (Partner Center's new-commerce reconciliation CSV) sent
    /// as a multipart upload, and matches it. The whole file is checked first: a file with
    /// errors is BAD_USER_INPUT with `extensions.errors` (row, column, message; the first
    /// 100) and `extensions.total`, and nothing is written. The same file again returns the
    /// earlier import (`replayed`). `period` (`YYYY-MM`) defaults to the month most of its
    /// charges start in.
    async fn import_statement(
        &self,
        ctx: &Context<'_>,
        vendor_id: ID,
        file: Upload,
        period: Option<String>,
    ) -> async_graphql::Result<StatementImportPayload> {
        let actor = actor(ctx)?;
        actor.require_operator().gql()?;
        let vendor_id = parse_id::<VendorId>(&vendor_id, "vendorId")?;
        let upload = file.value(ctx)?;
        let name = upload.filename.clone();
        let outcome =
            import_statement(domain(ctx), actor, vendor_id, &name, period.as_deref(), &PartnerCenter, upload.content)
                .await
                .gql()?;
        Ok(StatementImportPayload { import: StatementImport(outcome.import), replayed: outcome.replayed })
    }

    /// Matches an import again, with tolerances (each 0 when omitted): its findings are
    /// replaced. Refused (CONFLICT) once one of them was resolved (FINDINGS_RESOLVED), and
    /// while its rows are not all loaded (NOT_LOADED).
    async fn match_statement(
        &self,
        ctx: &Context<'_>,
        import_id: ID,
        amount_tolerance: Option<DecimalScalar>,
        quantity_tolerance: Option<DecimalScalar>,
    ) -> async_graphql::Result<StatementImport> {
        let id = parse_id::<StatementImportId>(&import_id, "importId")?;
        let tolerances = Tolerances {
            amount: amount_tolerance.map(|t| t.0).unwrap_or_default(),
            quantity: quantity_tolerance.map(|t| t.0).unwrap_or_default(),
        };
        match_import(domain(ctx), actor(ctx)?, id.get(), Some(tolerances)).await.map(StatementImport).gql()
    }

    /// Marks a finding explained, with a note.
    async fn explain_finding(&self, ctx: &Context<'_>, id: ID, note: String) -> async_graphql::Result<Finding> {
        let id = parse_id::<FindingId>(&id, "id")?;
        explain_finding(domain(ctx), actor(ctx)?, id.get(), &note).await.map(Finding).gql()
    }

    /// Recovers an UNBILLED or UNDERBILLED finding: a charge the next billing run puts on
    /// the reseller's invoice, and on the customer's when `billCustomer`. Once.
    async fn recover_finding(
        &self,
        ctx: &Context<'_>,
        id: ID,
        bill_customer: bool,
        note: Option<String>,
    ) -> async_graphql::Result<Finding> {
        let id = parse_id::<FindingId>(&id, "id")?;
        recover_finding(domain(ctx), actor(ctx)?, id.get(), bill_customer, note.as_deref()).await.map(Finding).gql()
    }
}
