//! The mutation root, merged from one object per area.

mod auth;
mod billing;
mod catalog;
mod customers;
mod orders;
mod reconciliation;
mod resellers;

use async_graphql::MergedObject;

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    catalog::CatalogMutation,
    resellers::ResellersMutation,
    customers::CustomersMutation,
    orders::OrdersMutation,
    billing::BillingMutation,
    reconciliation::ReconciliationMutation,
);
