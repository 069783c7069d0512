//! Reconciliation as the API shows it (operator only): imports of vendors' statements, what
//! matching found, the report, and the statement rows behind a finding.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::reconciliation::matching::Category;
use crate::domain::reconciliation::report::{self, CategoryTotal, PartyTotal};
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::catalog::Money;
use crate::graphql::{ResultExt, actor, domain};

/// What a finding is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ReconciliationCategory")]
pub enum CategoryKind {
    /// The vendor charged what its own rule gives on our prices, and we billed it.
    Matched,
    /// The vendor charged; nobody was billed (leakage).
    Unbilled,
    /// Billed at wholesale for less than the vendor charged for the same service (leakage).
    Underbilled,
    /// Billed to a reseller for a subscription the vendor never provisioned, with no charge.
    Overbilled,
    /// The vendor charged for other seats, units or days than we have.
    QuantityMismatch,
    /// The vendor's price (or its amount) is not what our cost price in force gives.
    PriceMismatch,
    /// The vendor charged for a subscription we do not know.
    UnknownSubscription,
    /// A provisioned subscription we billed that the vendor did not charge (drift).
    MissingVendorCharge,
}

impl From<Category> for CategoryKind {
    fn from(category: Category) -> Self {
        match category {
            Category::Matched => Self::Matched,
            Category::Unbilled => Self::Unbilled,
            Category::Underbilled => Self::Underbilled,
            Category::Overbilled => Self::Overbilled,
            Category::QuantityMismatch => Self::QuantityMismatch,
            Category::PriceMismatch => Self::PriceMismatch,
            Category::UnknownSubscription => Self::UnknownSubscription,
            Category::MissingVendorCharge => Self::MissingVendorCharge,
        }
    }
}

impl From<CategoryKind> for Category {
    fn from(kind: CategoryKind) -> Self {
        match kind {
            CategoryKind::Matched => Self::Matched,
            CategoryKind::Unbilled => Self::Unbilled,
            CategoryKind::Underbilled => Self::Underbilled,
            CategoryKind::Overbilled => Self::Overbilled,
            CategoryKind::QuantityMismatch => Self::QuantityMismatch,
            CategoryKind::PriceMismatch => Self::PriceMismatch,
            CategoryKind::UnknownSubscription => Self::UnknownSubscription,
            CategoryKind::MissingVendorCharge => Self::MissingVendorCharge,
        }
    }
}

/// How a finding was resolved.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingStatus {
    Open,
    Explained,
    Recovered,
}

impl FindingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Explained => "EXPLAINED",
            Self::Recovered => "RECOVERED",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "EXPLAINED" => Self::Explained,
            "RECOVERED" => Self::Recovered,
            _ => Self::Open,
        }
    }
}

/// A vendor's statement, imported.
pub struct StatementImport(pub entity::reconciliation_import::Model);

#[Object]
impl StatementImport {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn vendor_id(&self) -> ID {
        ID(self.0.vendor_id.to_string())
    }
    /// `YYYY-MM`.
    async fn period(&self) -> &str {
        &self.0.period
    }
    /// The file's name as uploaded or given.
    async fn source_name(&self) -> &str {
        &self.0.source_name
    }
    /// PARTNER_CENTER.
    async fn format(&self) -> &str {
        &self.0.format
    }
    /// LOADING (rows being written), LOADED, IMPORTED, then MATCHED. An import cut short
    /// stays LOADING until the same file is imported again, which finishes it.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn row_count(&self) -> i32 {
        self.0.row_count
    }
    /// The SHA-256 of the file: the same content is imported once per vendor.
    async fn content_hash(&self) -> &str {
        &self.0.content_hash
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn matched_at(&self) -> Option<DateTime<Utc>> {
        self.0.matched_at
    }
    /// The largest difference of amounts matching accepted.
    async fn amount_tolerance(&self) -> DecimalScalar {
        DecimalScalar(self.0.amount_tolerance.0)
    }
    /// The largest difference of quantities matching accepted.
    async fn quantity_tolerance(&self) -> DecimalScalar {
        DecimalScalar(self.0.quantity_tolerance.0)
    }
    /// What matching found, summed.
    async fn report(&self, ctx: &Context<'_>) -> async_graphql::Result<ReconciliationReport> {
        let filter = report::FindingFilter { import_id: Some(self.0.id), ..Default::default() };
        report::report(domain(ctx), actor(ctx)?, &filter).await.map(ReconciliationReport).gql()
    }
}

/// What matching found for one vendor subscription, charge cycle and kind of unit.
pub struct Finding(pub entity::reconciliation_finding::Model);

#[Object(name = "ReconciliationFinding")]
impl Finding {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn import_id(&self) -> ID {
        ID(self.0.import_id.to_string())
    }
    async fn category(&self) -> Option<CategoryKind> {
        Category::parse(&self.0.category).map(Into::into)
    }
    async fn status(&self) -> FindingStatus {
        FindingStatus::parse(&self.0.status)
    }
    /// The amount of the category: the leakage for UNBILLED and UNDERBILLED; what the vendor
    /// charged over what its rule gives on our prices for a mismatch; the vendor's charge for
    /// MATCHED and UNKNOWN_SUBSCRIPTION; what the reseller was billed for OVERBILLED; what
    /// the vendor's rule gives for MISSING_VENDOR_CHARGE.
    async fn amount(&self) -> Option<Money> {
        Money::from_code(self.0.amount.0, &self.0.currency)
    }
    /// The rule that decided the category, with its numbers.
    async fn rule(&self) -> &str {
        &self.0.rule
    }
    async fn subscription_id(&self) -> Option<ID> {
        self.0.subscription_id.map(|id| ID(id.to_string()))
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|id| ID(id.to_string()))
    }
    async fn reseller_id(&self) -> Option<ID> {
        self.0.reseller_id.map(|id| ID(id.to_string()))
    }
    async fn offer_id(&self) -> Option<ID> {
        self.0.offer_id.map(|id| ID(id.to_string()))
    }
    /// The vendor's id of the subscription ("" for a cycle the vendor did not charge).
    async fn subscription_reference(&self) -> &str {
        &self.0.subscription_reference
    }
    /// The customer's tenant id at the vendor, when the rows named no subscription we know.
    async fn customer_external_id(&self) -> &str {
        &self.0.customer_external_id
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// SEATS or USAGE.
    async fn unit_kind(&self) -> &str {
        &self.0.unit_kind
    }
    async fn charge_start(&self) -> NaiveDate {
        self.0.charge_start.date_naive()
    }
    /// The cycle's last day.
    async fn charge_end(&self) -> NaiveDate {
        self.0.charge_end.date_naive()
    }
    /// The statement's rows summed (0 for a cycle only we charged).
    async fn vendor_rows(&self) -> i32 {
        self.0.vendor_rows
    }
    async fn vendor_amount(&self) -> Option<Money> {
        Money::from_code(self.0.vendor_amount.0, &self.0.currency)
    }
    /// What the vendor should have charged, by its own rule, from our cost prices.
    async fn expected_amount(&self) -> Option<Money> {
        self.0.expected_amount.and_then(|a| Money::from_code(a.0, &self.0.currency))
    }
    /// The statement's rate from the vendor's pricing currency to `amount`'s.
    async fn exchange_rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.exchange_rate.0)
    }
    async fn vendor_quantity(&self) -> Option<DecimalScalar> {
        self.0.vendor_quantity.map(|q| DecimalScalar(q.0))
    }
    async fn our_quantity(&self) -> Option<DecimalScalar> {
        self.0.our_quantity.map(|q| DecimalScalar(q.0))
    }
    /// What our charges for the cycle cost, in the subscription's currency.
    async fn cost_billed(&self) -> Option<Money> {
        self.billed(self.0.cost_billed.0)
    }
    /// What the reseller was billed for the cycle.
    async fn wholesale_billed(&self) -> Option<Money> {
        self.billed(self.0.wholesale_billed.0)
    }
    /// What the customer was billed for the cycle.
    async fn retail_billed(&self) -> Option<Money> {
        self.billed(self.0.retail_billed.0)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// The charge that recovers the amount, once recovered.
    async fn recovery_charge_id(&self) -> Option<ID> {
        self.0.recovery_charge_id.map(|id| ID(id.to_string()))
    }
    /// Whether the recovery is billed on to the customer too.
    async fn recovery_bills_customer(&self) -> bool {
        self.0.recovery_customer_charge
    }
    /// The statement's rows behind the finding, as the file had them.
    async fn rows(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StatementRow>> {
        let rows = report::finding_rows(domain(ctx), actor(ctx)?, &self.0).await.gql()?;
        Ok(rows.into_iter().map(StatementRow).collect())
    }
}

impl Finding {
    fn billed(&self, amount: rust_decimal::Decimal) -> Option<Money> {
        self.0.billed_currency.as_deref().and_then(|currency| Money::from_code(amount, currency))
    }
}

/// A row of a vendor's statement.
pub struct StatementRow(pub entity::reconciliation_line::Model);

#[Object]
impl StatementRow {
    /// Its row in the file (the header is row 1).
    async fn row_number(&self) -> i32 {
        self.0.row_number
    }
    async fn charge_type(&self) -> &str {
        &self.0.charge_type
    }
    async fn quantity(&self) -> DecimalScalar {
        DecimalScalar(self.0.quantity.0)
    }
    async fn unit_price(&self) -> DecimalScalar {
        DecimalScalar(self.0.unit_price.0)
    }
    async fn effective_unit_price(&self) -> DecimalScalar {
        DecimalScalar(self.0.effective_unit_price.0)
    }
    async fn subtotal(&self) -> Option<Money> {
        Money::from_code(self.0.subtotal.0, &self.0.currency)
    }
    /// Every column as the file had it.
    async fn raw(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.raw.clone())
    }
}

/// Findings of one category in one currency.
pub struct CategoryTotalRow(pub CategoryTotal);

#[Object(name = "ReconciliationCategoryTotal")]
impl CategoryTotalRow {
    async fn category(&self) -> CategoryKind {
        self.0.category.into()
    }
    async fn findings(&self) -> u64 {
        self.0.findings
    }
    async fn amount(&self) -> Option<Money> {
        Money::from_code(self.0.amount, &self.0.currency)
    }
}

/// A vendor's, reseller's or customer's findings in one currency.
pub struct PartyTotalRow(pub PartyTotal);

#[Object(name = "ReconciliationPartyTotal")]
impl PartyTotalRow {
    /// None for charges of a subscription we do not know.
    async fn id(&self) -> Option<ID> {
        self.0.id.map(|id| ID(id.to_string()))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn findings(&self) -> u64 {
        self.0.findings
    }
    /// Findings that are not MATCHED.
    async fn flagged(&self) -> u64 {
        self.0.flagged
    }
    async fn vendor_amount(&self) -> Option<Money> {
        Money::from_code(self.0.vendor_amount, &self.0.currency)
    }
    async fn leakage(&self) -> Option<Money> {
        Money::from_code(self.0.leakage, &self.0.currency)
    }
    async fn recovered(&self) -> Option<Money> {
        Money::from_code(self.0.recovered, &self.0.currency)
    }
}

/// What reconciliation found, summed: per category, per vendor, reseller and customer.
pub struct ReconciliationReport(pub report::Report);

#[Object]
impl ReconciliationReport {
    async fn categories(&self) -> Vec<CategoryTotalRow> {
        self.0.categories.iter().cloned().map(CategoryTotalRow).collect()
    }
    async fn vendors(&self) -> Vec<PartyTotalRow> {
        self.0.vendors.iter().cloned().map(PartyTotalRow).collect()
    }
    async fn resellers(&self) -> Vec<PartyTotalRow> {
        self.0.resellers.iter().cloned().map(PartyTotalRow).collect()
    }
    async fn customers(&self) -> Vec<PartyTotalRow> {
        self.0.customers.iter().cloned().map(PartyTotalRow).collect()
    }
    /// UNBILLED and UNDERBILLED amounts, per currency.
    async fn leakage(&self) -> Vec<Money> {
        self.0.leakage.iter().filter_map(|(currency, amount)| Money::from_code(*amount, currency)).collect()
    }
    /// Leakage recovered, per currency.
    async fn recovered(&self) -> Vec<Money> {
        self.0.recovered.iter().filter_map(|(currency, amount)| Money::from_code(*amount, currency)).collect()
    }
}
