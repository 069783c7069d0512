//! Reseller mutations: customers, retail prices and the default retail markup.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::customers::{self, CustomerChanges, NewCustomer, NewRetailPrice, VendorAccount};
use crate::graphql::parse_id;
use crate::graphql::scalars::DecimalScalar;
use crate::graphql::types::enums::OrganizationStatus;
use crate::graphql::types::parties::{Customer, Reseller};
use crate::graphql::{ResultExt, actor, domain};

/// A customer's id at one vendor.
#[derive(InputObject)]
pub struct VendorAccountInput {
    pub vendor_id: ID,
    /// The customer's id there (its Microsoft tenant id, say).
    pub external_id: String,
}

/// Input of `createCustomer`.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// The owning reseller: implied for a reseller caller, required for the operator.
    pub reseller_id: Option<ID>,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 4217 code it is invoiced in.
    pub currency: String,
    /// Tax rate (0.23 = 23 %).
    pub tax_rate: DecimalScalar,
    #[graphql(default)]
    pub vendor_accounts: Vec<VendorAccountInput>,
}

/// Input of `updateCustomer`.
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    pub name: Option<String>,
    pub country: Option<String>,
    pub tax_rate: Option<DecimalScalar>,
    pub status: Option<OrganizationStatus>,
    /// Accounts to add or replace, per vendor.
    #[graphql(default)]
    pub vendor_accounts: Vec<VendorAccountInput>,
    /// For its invoices (an empty string clears a field).
    pub legal_name: Option<String>,
    pub address: Option<String>,
    pub tax_id: Option<String>,
}

/// Input of `setRetailPrice`.
#[derive(InputObject)]
pub struct SetRetailPriceInput {
    pub offer_id: ID,
    pub currency: String,
    pub price: DecimalScalar,
    /// When it takes effect; now when absent.
    pub effective_from: Option<DateTime<Utc>>,
}

/// An explicit retail price as stored.
#[derive(SimpleObject)]
pub struct RetailPrice {
    pub id: ID,
    pub offer_id: ID,
    pub currency: String,
    pub price: DecimalScalar,
    pub effective_from: DateTime<Utc>,
}

fn vendor_accounts(inputs: Vec<VendorAccountInput>) -> async_graphql::Result<Vec<VendorAccount>> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, a)| {
            Ok(VendorAccount {
                vendor_id: parse_id(&a.vendor_id, &format!("input.vendorAccounts[{index}].vendorId"))?,
                external_id: a.external_id,
            })
        })
        .collect()
}

#[derive(Default)]
pub struct CustomersMutation;

#[Object]
impl CustomersMutation {
    /// Creates a customer of the calling reseller.
    async fn create_customer(&self, ctx: &Context<'_>, input: CreateCustomerInput) -> async_graphql::Result<Customer> {
        let new = NewCustomer {
            reseller_id: input.reseller_id.map(|id| parse_id(&id, "input.resellerId")).transpose()?,
            name: input.name,
            country: input.country,
            currency: input.currency,
            tax_rate: input.tax_rate.0,
            vendor_accounts: vendor_accounts(input.vendor_accounts)?,
        };
        customers::create_customer(domain(ctx), actor(ctx)?, new).await.map(Customer::read).gql()
    }

    /// Updates a customer of the calling reseller.
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCustomerInput,
    ) -> async_graphql::Result<Customer> {
        let id = parse_id(&id, "id")?;
        let changes = CustomerChanges {
            name: input.name,
            country: input.country,
            tax_rate: input.tax_rate.map(|t| t.0),
            status: input.status.map(Into::into),
            vendor_accounts: vendor_accounts(input.vendor_accounts)?,
            legal: customers::LegalDetails {
                legal_name: input.legal_name,
                address: input.address,
                tax_id: input.tax_id,
            },
        };
        customers::update_customer(domain(ctx), actor(ctx)?, id, changes).await.map(Customer::read).gql()
    }

    /// Sets the calling reseller's retail price for an offer.
    async fn set_retail_price(
        &self,
        ctx: &Context<'_>,
        input: SetRetailPriceInput,
    ) -> async_graphql::Result<RetailPrice> {
        let new = NewRetailPrice {
            offer_id: parse_id(&input.offer_id, "input.offerId")?,
            currency: input.currency,
            price: input.price.0,
            effective_from: input.effective_from,
        };
        let row = customers::set_retail_price(domain(ctx), actor(ctx)?, new).await.gql()?;
        Ok(RetailPrice {
            id: ID(row.id.to_string()),
            offer_id: ID(row.offer_id.to_string()),
            currency: row.currency,
            price: DecimalScalar(row.price.0),
            effective_from: row.effective_from,
        })
    }

    /// Sets (or clears with null) the calling reseller's default markup over wholesale.
    async fn set_retail_markup(
        &self,
        ctx: &Context<'_>,
        markup: Option<DecimalScalar>,
    ) -> async_graphql::Result<Reseller> {
        customers::set_retail_markup(domain(ctx), actor(ctx)?, markup.map(|m| m.0)).await.map(Reseller).gql()
    }
}
