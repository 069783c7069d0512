//! The mutation root, merged from one object per area.

mod api_keys;
mod auth;
mod billing;
mod catalog;
mod customers;
mod orders;
mod reconciliation;
mod resellers;
mod webhooks;

use async_graphql::MergedObject;

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    api_keys::ApiKeysMutation,
    catalog::CatalogMutation,
    resellers::ResellersMutation,
    customers::CustomersMutation,
    orders::OrdersMutation,
    billing::BillingMutation,
    reconciliation::ReconciliationMutation,
    webhooks::WebhooksMutation,
);
