//! Operator mutations: tiers, resellers and explicit wholesale prices.

use async_graphql::{Context, ID, InputObject, Object, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::resellers::{self, NewReseller, NewWholesalePrice, ResellerChanges, WholesaleTarget};
use crate::graphql::parse_id;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::enums::OrganizationStatus;
use crate::graphql::types::parties::{Reseller, Tier};
use crate::graphql::{ResultExt, actor, domain};

/// Input of `createTier`.
#[derive(InputObject)]
pub struct CreateTierInput {
    pub name: String,
    /// Markup over cost (0.15 = 15 %).
    pub markup: DecimalScalar,
}

/// Input of `updateTier`.
#[derive(InputObject)]
pub struct UpdateTierInput {
    pub name: Option<String>,
    pub markup: Option<DecimalScalar>,
}

/// Input of `createReseller`.
#[derive(InputObject)]
pub struct CreateResellerInput {
    pub name: String,
    pub tier_id: ID,
    /// ISO 4217 code it is invoiced in.
    pub currency: String,
    /// Its partner id at vendors (Microsoft MPN id).
    pub external_partner_id: Option<String>,
    /// Prefix of its invoice numbers (upper-case letters and digits).
    pub invoice_prefix: String,
}

/// Input of `updateReseller`.
#[derive(InputObject)]
pub struct UpdateResellerInput {
    pub name: Option<String>,
    pub tier_id: Option<ID>,
    pub external_partner_id: Option<String>,
    pub invoice_prefix: Option<String>,
    pub status: Option<OrganizationStatus>,
    /// For its invoices (an empty string clears a field).
    pub legal_name: Option<String>,
    pub address: Option<String>,
    pub tax_id: Option<String>,
    /// Days its customers have to pay its invoices (1 to 365; 30 unless set).
    pub payment_terms_days: Option<i32>,
}

/// Whom a wholesale price applies to: exactly one of a reseller or a tier.
#[derive(OneofObject)]
pub enum WholesaleTargetInput {
    ResellerId(ID),
    TierId(ID),
}

/// Input of `setWholesalePrice`.
#[derive(InputObject)]
pub struct SetWholesalePriceInput {
    pub offer_id: ID,
    pub target: WholesaleTargetInput,
    pub currency: String,
    pub price: DecimalScalar,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// An explicit wholesale price as stored.
#[derive(SimpleObject)]
pub struct WholesalePrice {
    pub id: ID,
    pub offer_id: ID,
    pub reseller_id: Option<ID>,
    pub tier_id: Option<ID>,
    pub currency: String,
    pub price: DecimalScalar,
    pub effective_from: DateTime<Utc>,
}

#[derive(Default)]
pub struct ResellersMutation;

#[Object]
impl ResellersMutation {
    /// Creates a pricing tier (operator).
    async fn create_tier(&self, ctx: &Context<'_>, input: CreateTierInput) -> async_graphql::Result<Tier> {
        resellers::create_tier(domain(ctx), actor(ctx)?, &input.name, input.markup.0).await.map(Tier).gql()
    }

    /// Updates a tier (operator).
    async fn update_tier(&self, ctx: &Context<'_>, id: ID, input: UpdateTierInput) -> async_graphql::Result<Tier> {
        let id = parse_id(&id, "id")?;
        resellers::update_tier(domain(ctx), actor(ctx)?, id, input.name, input.markup.map(|m| m.0))
            .await
            .map(Tier)
            .gql()
    }

    /// Creates a reseller (operator).
    async fn create_reseller(&self, ctx: &Context<'_>, input: CreateResellerInput) -> async_graphql::Result<Reseller> {
        let input = NewReseller {
            name: input.name,
            tier_id: parse_id(&input.tier_id, "input.tierId")?,
            currency: input.currency,
            external_partner_id: input.external_partner_id,
            invoice_prefix: input.invoice_prefix,
        };
        resellers::create_reseller(domain(ctx), actor(ctx)?, input).await.map(Reseller).gql()
    }

    /// Updates a reseller: the operator anything; a reseller its own legal details and
    /// payment terms.
    async fn update_reseller(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateResellerInput,
    ) -> async_graphql::Result<Reseller> {
        let id = parse_id(&id, "id")?;
        let changes = ResellerChanges {
            name: input.name,
            tier_id: input.tier_id.map(|t| parse_id(&t, "input.tierId")).transpose()?,
            external_partner_id: input.external_partner_id,
            invoice_prefix: input.invoice_prefix,
            status: input.status.map(Into::into),
            legal: crate::domain::customers::LegalDetails {
                legal_name: input.legal_name,
                address: input.address,
                tax_id: input.tax_id,
            },
            payment_terms_days: input.payment_terms_days,
        };
        resellers::update_reseller(domain(ctx), actor(ctx)?, id, changes).await.map(Reseller).gql()
    }

    /// Sets an explicit wholesale price for a reseller or a tier (operator).
    async fn set_wholesale_price(
        &self,
        ctx: &Context<'_>,
        input: SetWholesalePriceInput,
    ) -> async_graphql::Result<WholesalePrice> {
        let target = match &input.target {
            WholesaleTargetInput::ResellerId(id) => WholesaleTarget::Reseller(parse_id(id, "input.target.resellerId")?),
            WholesaleTargetInput::TierId(id) => WholesaleTarget::Tier(parse_id(id, "input.target.tierId")?),
        };
        let new = NewWholesalePrice {
            offer_id: parse_id(&input.offer_id, "input.offerId")?,
            target,
            currency: input.currency,
            price: input.price.0,
            effective_from: input.effective_from,
        };
        let row = resellers::set_wholesale_price(domain(ctx), actor(ctx)?, new).await.gql()?;
        Ok(WholesalePrice {
            id: ID(row.id.to_string()),
            offer_id: ID(row.offer_id.to_string()),
            reseller_id: row.reseller_id.map(|id| ID(id.to_string())),
            tier_id: row.tier_id.map(|id| ID(id.to_string())),
            currency: row.currency,
            price: DecimalScalar(row.price.0),
            effective_from: row.effective_from,
        })
    }
}
