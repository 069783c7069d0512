//! Output types for invoices, their lines, and billing previews.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{charge, invoice, invoice_line};

use super::catalog::Money;
use super::enums::{ChargeKind, InvoiceKind, InvoiceStatus};
use crate::domain::billing::invoices;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::{ResultExt, actor, domain, request};

/// An invoice or credit note.
pub struct Invoice(pub invoice::Model);

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> InvoiceKind {
        self.0.kind.into()
    }
    async fn status(&self) -> InvoiceStatus {
        self.0.status.into()
    }
    /// Assigned at issue: `PREFIX-YEAR-NNNNNN`, gapless per issuer and year.
    async fn number(&self) -> Option<&str> {
        self.0.number.as_deref()
    }
    /// The billing period, `YYYY-MM`.
    async fn period(&self) -> &str {
        &self.0.period
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The issuing reseller; none when the operator issued it.
    async fn issuer_reseller_id(&self) -> Option<ID> {
        self.0.issuer_reseller_id.map(|id| ID(id.to_string()))
    }
    /// The receiving reseller, for the operator's invoices.
    async fn recipient_reseller_id(&self) -> Option<ID> {
        self.0.recipient_reseller_id.map(|id| ID(id.to_string()))
    }
    /// The receiving customer, for a reseller's invoices.
    async fn recipient_customer_id(&self) -> Option<ID> {
        self.0.recipient_customer_id.map(|id| ID(id.to_string()))
    }
    /// The invoice a credit note credits.
    async fn credited_invoice_id(&self) -> Option<ID> {
        self.0.credited_invoice_id.map(|id| ID(id.to_string()))
    }
    async fn tax_rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.tax_rate.0)
    }
    async fn subtotal(&self) -> Option<Money> {
        Money::from_code(self.0.subtotal.0, &self.0.currency)
    }
    async fn tax(&self) -> Option<Money> {
        Money::from_code(self.0.tax.0, &self.0.currency)
    }
    /// Subtotal + tax, exactly.
    async fn total(&self) -> Option<Money> {
        Money::from_code(self.0.total.0, &self.0.currency)
    }
    async fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.0.issued_at
    }
    /// When payment is due (set at issue from the issuer's payment terms).
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvoiceLine>> {
        let lines = request(ctx)?.invoice_lines.load_one(self.0.id).await?.unwrap_or_default();
        let currency = self.0.currency.clone();
        Ok(lines.into_iter().map(|line| InvoiceLine(line, currency.clone())).collect())
    }
    async fn credit_notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invoice>> {
        let actor = actor(ctx)?;
        Ok(invoices::credit_notes_of(domain(ctx), actor, self.0.id).await.gql()?.into_iter().map(Invoice).collect())
    }
}

/// One invoice line with the inputs of its amount.
pub struct InvoiceLine(pub invoice_line::Model, pub String);

#[Object]
impl InvoiceLine {
    async fn line_number(&self) -> i32 {
        self.0.line_number
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The customer a line of the operator's invoice is for.
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|id| ID(id.to_string()))
    }
    async fn subscription_id(&self) -> Option<ID> {
        self.0.subscription_id.map(|id| ID(id.to_string()))
    }
    async fn quantity(&self) -> DecimalScalar {
        DecimalScalar(self.0.quantity.0)
    }
    /// The (prorated) unit price of this invoice's tier.
    async fn unit_price(&self) -> Option<Money> {
        Money::from_code(self.0.unit_price.0, &self.1)
    }
    async fn days_used(&self) -> Option<i32> {
        self.0.days_used
    }
    async fn days_in_period(&self) -> Option<i32> {
        self.0.days_in_period
    }
    async fn amount(&self) -> Option<Money> {
        Money::from_code(self.0.amount.0, &self.1)
    }
    /// For a line converted from another currency: that currency.
    async fn source_currency(&self) -> Option<&str> {
        self.0.source_currency.as_deref()
    }
    /// For a converted line: its amount in the source currency (amount = round(source
    /// amount × exchange rate) at this invoice's minor units).
    async fn source_amount(&self) -> Option<Money> {
        let (amount, currency) = (self.0.source_amount?, self.0.source_currency.as_deref()?);
        Money::from_code(amount.0, currency)
    }
    /// For a converted line: the rate applied, in force on the day the charge starts.
    async fn exchange_rate(&self) -> Option<DecimalScalar> {
        self.0.exchange_rate.map(|rate| DecimalScalar(rate.0))
    }
}

/// A charge a billing run writes (or would write), as its customer sees it.
#[derive(SimpleObject)]
pub struct PreviewLine {
    pub kind: ChargeKind,
    pub description: String,
    pub subscription_id: ID,
    pub quantity: DecimalScalar,
    pub days_used: Option<i32>,
    pub days_in_period: Option<i32>,
    pub unit_price: Option<Money>,
    pub amount: Option<Money>,
}

impl From<charge::Model> for PreviewLine {
    fn from(charge: charge::Model) -> Self {
        Self {
            kind: charge.kind.into(),
            description: charge.description,
            subscription_id: ID(charge.subscription_id.to_string()),
            quantity: DecimalScalar(charge.quantity.0),
            days_used: charge.days_used,
            days_in_period: charge.days_in_period,
            unit_price: Money::from_code(charge.unit_retail.0, &charge.currency),
            amount: Money::from_code(charge.amount_retail.0, &charge.currency),
        }
    }
}

/// What the customer's invoice for a period will hold after a billing run.
#[derive(SimpleObject)]
pub struct BillingPreview {
    pub period: String,
    pub lines: Vec<PreviewLine>,
    pub subtotal: Option<Money>,
    pub tax: Option<Money>,
    pub total: Option<Money>,
}

/// What a billing run did.
#[derive(SimpleObject)]
pub struct BillingRunResult {
    pub period: String,
    pub subscriptions: usize,
    pub charges_created: usize,
    pub invoices_touched: usize,
    /// Conversions that found no exchange rate in force (`USD→EUR on 2026-11-02`): those
    /// charges wait, off the reseller's invoice, until the operator records a rate.
    pub missing_exchange_rates: Vec<String>,
    /// What could not be billed, and why (a subscription whose amounts pass the largest
    /// amount, an invoice that would): everything else was billed; those wait.
    pub unbillable: Vec<String>,
}

/// A dated exchange rate: one unit of `from` is `rate` units of `to` from `effectiveFrom` on.
pub struct ExchangeRate(pub entity::exchange_rate::Model);

#[Object]
impl ExchangeRate {
    async fn from(&self) -> &str {
        &self.0.from_currency
    }
    async fn to(&self) -> &str {
        &self.0.to_currency
    }
    async fn rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.rate.0)
    }
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
}

/// What a margin report groups by.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum MarginGroupBy {
    Reseller,
    Customer,
    Vendor,
    Offer,
}

impl From<MarginGroupBy> for crate::domain::billing::margins::MarginGroup {
    fn from(by: MarginGroupBy) -> Self {
        match by {
            MarginGroupBy::Reseller => Self::Reseller,
            MarginGroupBy::Customer => Self::Customer,
            MarginGroupBy::Vendor => Self::Vendor,
            MarginGroupBy::Offer => Self::Offer,
        }
    }
}

/// One group of a period's margin report, in one currency (the customers').
pub struct MarginRow(pub crate::domain::billing::margins::MarginRow);

#[Object]
impl MarginRow {
    /// The reseller, customer, vendor or offer.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Charged lines in the group.
    async fn lines(&self) -> usize {
        self.0.lines
    }
    /// What the vendor charges the operator.
    async fn cost(&self) -> Option<Money> {
        Money::from_code(self.0.cost, &self.0.currency)
    }
    /// What the operator charges resellers.
    async fn wholesale(&self) -> Option<Money> {
        Money::from_code(self.0.wholesale, &self.0.currency)
    }
    /// What resellers charge customers.
    async fn retail(&self) -> Option<Money> {
        Money::from_code(self.0.retail, &self.0.currency)
    }
    /// Wholesale − cost.
    async fn operator_margin(&self) -> Option<Money> {
        Money::from_code(self.0.operator_margin(), &self.0.currency)
    }
    /// Retail − wholesale.
    async fn reseller_margin(&self) -> Option<Money> {
        Money::from_code(self.0.reseller_margin(), &self.0.currency)
    }
}

/// A charged line at all three prices (operator only).
pub struct Charge(pub charge::Model);

#[Object]
impl Charge {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn period(&self) -> &str {
        &self.0.period
    }
    async fn kind(&self) -> ChargeKind {
        self.0.kind.into()
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn subscription_id(&self) -> ID {
        ID(self.0.subscription_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.0.customer_id.to_string())
    }
    async fn reseller_id(&self) -> ID {
        ID(self.0.reseller_id.to_string())
    }
    async fn vendor_id(&self) -> ID {
        ID(self.0.vendor_id.to_string())
    }
    async fn offer_id(&self) -> ID {
        ID(self.0.offer_id.to_string())
    }
    async fn quantity(&self) -> DecimalScalar {
        DecimalScalar(self.0.quantity.0)
    }
    async fn days_used(&self) -> Option<i32> {
        self.0.days_used
    }
    async fn days_in_period(&self) -> Option<i32> {
        self.0.days_in_period
    }
    async fn service_start(&self) -> DateTime<Utc> {
        self.0.service_start
    }
    async fn service_end(&self) -> DateTime<Utc> {
        self.0.service_end
    }
    async fn unit_cost(&self) -> Option<Money> {
        Money::from_code(self.0.unit_cost.0, &self.0.currency)
    }
    async fn unit_wholesale(&self) -> Option<Money> {
        Money::from_code(self.0.unit_wholesale.0, &self.0.currency)
    }
    async fn unit_retail(&self) -> Option<Money> {
        Money::from_code(self.0.unit_retail.0, &self.0.currency)
    }
    async fn cost(&self) -> Option<Money> {
        Money::from_code(self.0.amount_cost.0, &self.0.currency)
    }
    async fn wholesale(&self) -> Option<Money> {
        Money::from_code(self.0.amount_wholesale.0, &self.0.currency)
    }
    async fn retail(&self) -> Option<Money> {
        Money::from_code(self.0.amount_retail.0, &self.0.currency)
    }
}
