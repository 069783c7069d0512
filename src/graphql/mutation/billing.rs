//! Billing mutations: runs, the invoice lifecycle, credit notes and usage.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::billing::usage::{self, NewUsage, UsageOutcome};
use crate::domain::billing::{issuing, run_billing};
use crate::domain::exchange_rates::{self, NewExchangeRate};
use crate::graphql::parse_id;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::billing::{BillingRunResult, ExchangeRate, Invoice};
use crate::graphql::{ResultExt, actor, domain};

/// One usage record.
#[derive(InputObject)]
pub struct UsageRecordInput {
    pub subscription_id: ID,
    /// Your id for this record; a record with an id seen before is a duplicate, forever.
    pub external_id: String,
    pub meter: String,
    pub quantity: DecimalScalar,
    pub occurred_at: DateTime<Utc>,
}

/// A dated exchange rate.
#[derive(InputObject)]
pub struct ExchangeRateInput {
    /// ISO 4217 code converted from.
    pub from: String,
    /// ISO 4217 code converted to.
    pub to: String,
    /// Units of `to` per unit of `from`.
    pub rate: DecimalScalar,
    /// When it takes effect; now when omitted.
    pub effective_from: Option<DateTime<Utc>>,
}

/// A line of an invoice to credit.
#[derive(InputObject)]
pub struct CreditLineInput {
    /// The invoice line's number.
    pub line_number: i32,
    /// How much of its quantity to credit; all that is left of it when omitted.
    pub quantity: Option<DecimalScalar>,
}

/// Whether a usage record was stored.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UsageRecordStatus {
    Accepted,
    Duplicate,
}

/// The outcome of one usage record.
#[derive(SimpleObject)]
pub struct UsageRecordResult {
    pub external_id: String,
    pub status: UsageRecordStatus,
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Bills a period (`YYYY-MM`) for every subscription (operator). Running it again adds
    /// nothing; a crashed run completes when run again.
    async fn run_billing(&self, ctx: &Context<'_>, period: String) -> async_graphql::Result<BillingRunResult> {
        let summary = run_billing(domain(ctx), actor(ctx)?, &period).await.gql()?;
        Ok(BillingRunResult {
            period: summary.period,
            subscriptions: summary.subscriptions,
            charges_created: summary.charges_created,
            invoices_touched: summary.invoices_touched,
            missing_exchange_rates: summary.missing_exchange_rates,
            unbillable: summary.unbillable,
        })
    }

    /// Records a dated exchange rate (operator): one unit of `from` is `rate` units of `to`
    /// from `effectiveFrom` (now when omitted) on.
    async fn set_exchange_rate(
        &self,
        ctx: &Context<'_>,
        input: ExchangeRateInput,
    ) -> async_graphql::Result<ExchangeRate> {
        let input = NewExchangeRate {
            from: input.from,
            to: input.to,
            rate: input.rate.0,
            effective_from: input.effective_from,
        };
        exchange_rates::set_exchange_rate(domain(ctx), actor(ctx)?, input).await.map(ExchangeRate).gql()
    }

    /// Issues a DRAFT invoice, assigning its number (the issuer or the operator).
    async fn issue_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        let id = parse_id(&id, "id")?;
        issuing::issue_invoice(domain(ctx), actor(ctx)?, id).await.map(Invoice).gql()
    }

    /// Marks an ISSUED invoice paid.
    async fn mark_invoice_paid(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        let id = parse_id(&id, "id")?;
        issuing::mark_paid(domain(ctx), actor(ctx)?, id).await.map(Invoice).gql()
    }

    /// Voids a DRAFT invoice and releases its charges to the next run (an issued invoice is
    /// corrected with a credit note).
    async fn void_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        let id = parse_id(&id, "id")?;
        issuing::void_invoice(domain(ctx), actor(ctx)?, id).await.map(Invoice).gql()
    }

    /// Credits an ISSUED or PAID invoice with a DRAFT credit note referencing it: the chosen
    /// lines and quantities, or everything left of it when `lines` is omitted. Credit notes
    /// never credit more than a line's quantity or amount; a credit note is not credited.
    async fn credit_invoice(
        &self,
        ctx: &Context<'_>,
        id: ID,
        lines: Option<Vec<CreditLineInput>>,
    ) -> async_graphql::Result<Invoice> {
        let id = parse_id(&id, "id")?;
        let lines = lines.map(|lines| {
            lines
                .into_iter()
                .map(|l| issuing::CreditLine { line_number: l.line_number, quantity: l.quantity.map(|q| q.0) })
                .collect()
        });
        issuing::credit_invoice(domain(ctx), actor(ctx)?, id, lines).await.map(Invoice).gql()
    }

    /// Records usage in a batch; a record whose external id was seen before is DUPLICATE.
    async fn record_usage(
        &self,
        ctx: &Context<'_>,
        records: Vec<UsageRecordInput>,
    ) -> async_graphql::Result<Vec<UsageRecordResult>> {
        let mut parsed = Vec::with_capacity(records.len());
        let mut external_ids = Vec::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            external_ids.push(record.external_id.clone());
            parsed.push(NewUsage {
                subscription_id: parse_id(&record.subscription_id, &format!("records[{index}].subscriptionId"))?,
                external_id: record.external_id,
                meter: record.meter,
                quantity: record.quantity.0,
                occurred_at: record.occurred_at,
            });
        }
        let outcomes = usage::record_usage(domain(ctx), actor(ctx)?, parsed).await.gql()?;
        Ok(external_ids
            .into_iter()
            .zip(outcomes)
            .map(|(external_id, outcome)| UsageRecordResult {
                external_id,
                status: match outcome {
                    UsageOutcome::Accepted => UsageRecordStatus::Accepted,
                    UsageOutcome::Duplicate => UsageRecordStatus::Duplicate,
                },
            })
            .collect())
    }
}
