//! The query root, merged from one object per area.

mod api_keys;
mod billing;
mod catalog;
mod operations;
pub mod orders;
mod parties;
mod reconciliation;
mod webhooks;

use async_graphql::MergedObject;

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(
    catalog::CatalogQuery,
    parties::PartiesQuery,
    orders::OrdersQuery,
    billing::BillingQuery,
    reconciliation::ReconciliationQuery,
    api_keys::ApiKeysQuery,
    webhooks::WebhooksQuery,
    operations::OperationsQuery,
);
