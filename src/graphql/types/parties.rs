//! Output types for tiers, resellers, customers and the caller itself.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use std::sync::Arc;

use entity::{customer, reseller, tier};

use super::enums::{OrganizationStatus, Role};
use super::orders::Written;
use crate::domain::Actor;
use crate::domain::catalog::direct::Needed;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::{actor, request, snapshot};

/// A reseller pricing tier.
pub struct Tier(pub tier::Model);

#[Object]
impl Tier {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Markup over cost (0.15 = 15 %).
    async fn markup(&self) -> DecimalScalar {
        DecimalScalar(self.0.markup.0)
    }
}

/// A reseller.
pub struct Reseller(pub reseller::Model);

#[Object]
impl Reseller {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// For its invoices: legal name, postal address, tax id, payment terms in days.
    async fn legal_name(&self) -> Option<&str> {
        self.0.legal_name.as_deref()
    }
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    async fn tax_id(&self) -> Option<&str> {
        self.0.tax_id.as_deref()
    }
    async fn payment_terms_days(&self) -> i32 {
        self.0.payment_terms_days
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The currency it is invoiced in.
    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Its partner id at vendors (Microsoft MPN id).
    async fn external_partner_id(&self) -> Option<&str> {
        self.0.external_partner_id.as_deref()
    }

    /// Prefix of the invoice numbers it issues.
    async fn invoice_prefix(&self) -> &str {
        &self.0.invoice_prefix
    }

    /// Its default retail markup over wholesale, if set.
    async fn default_retail_markup(&self) -> Option<DecimalScalar> {
        self.0.default_retail_markup.map(|m| DecimalScalar(m.0))
    }

    async fn status(&self) -> OrganizationStatus {
        self.0.status.into()
    }

    /// Its pricing tier: the operator only (the markup would reveal the operator's cost).
    async fn tier(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Tier>> {
        if !actor(ctx)?.is_operator() {
            return Ok(None);
        }
        let snapshot = snapshot(ctx, Needed::Vendors).await?;
        Ok(snapshot.tiers.get(&self.0.tier_id).cloned().map(Tier))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A customer's id at one vendor.
#[derive(SimpleObject)]
pub struct VendorAccount {
    /// The vendor.
    pub vendor_id: ID,
    /// The customer's id there (its Microsoft tenant id, say).
    pub external_id: String,
}

/// An end customer.
/// A customer; with what a write left when it is part of that write's answer.
pub struct Customer(pub customer::Model, pub Option<Arc<Written>>);

impl Customer {
    /// A customer read from the database: its nested fields are read too.
    pub fn read(customer: customer::Model) -> Self {
        Self(customer, None)
    }
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// For its invoices: legal name, postal address, tax id.
    async fn legal_name(&self) -> Option<&str> {
        self.0.legal_name.as_deref()
    }
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    async fn tax_id(&self) -> Option<&str> {
        self.0.tax_id.as_deref()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// ISO 3166-1 alpha-2 country.
    async fn country(&self) -> &str {
        &self.0.country
    }

    /// The currency it is invoiced in.
    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Its tax rate (0.23 = 23 %).
    async fn tax_rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.tax_rate.0)
    }

    async fn status(&self) -> OrganizationStatus {
        self.0.status.into()
    }

    /// The owning reseller, if the caller may see it (operator and that reseller).
    async fn reseller(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Reseller>> {
        let caller = actor(ctx)?;
        if let Some(written) = self.1.as_ref().and_then(|w| w.reseller(caller, self.0.reseller_id)) {
            return Ok(written.cloned().map(Reseller));
        }
        Ok(request(ctx)?.resellers.load_one(self.0.reseller_id).await?.map(Reseller))
    }

    /// Its ids at vendors.
    async fn vendor_accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VendorAccount>> {
        let accounts = match self.1.as_ref().and_then(|w| w.vendor_accounts(self.0.id)) {
            Some(written) => written.to_vec(),
            None => request(ctx)?.vendor_accounts.load_one(self.0.id).await?.unwrap_or_default(),
        };
        Ok(accounts
            .into_iter()
            .map(|a| VendorAccount { vendor_id: ID(a.vendor_id.to_string()), external_id: a.external_id })
            .collect())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The authenticated caller.
pub struct Me(pub Actor);

#[Object]
impl Me {
    /// The user id, absent for development tokens.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ID(id.to_string()))
    }

    async fn role(&self) -> Role {
        self.0.role().into()
    }

    /// The organization acted for: vendor, reseller or customer id; none for the operator.
    async fn organization_id(&self) -> Option<ID> {
        self.0.organization_id().map(|id| ID(id.to_string()))
    }
}
