//! DataLoaders, built per request with the caller's scope (never shared across tenants).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::{customer_vendor_account, reseller};

use super::errors::to_graphql;
use crate::domain::{Actor, Domain, customers, resellers};

/// Resellers by id, limited to what the caller may see (operator: all; reseller: itself).
pub struct ResellerLoader {
    domain: Arc<Domain>,
    scope: Option<Actor>,
}

impl ResellerLoader {
    /// A loader for one request's caller.
    pub fn new(domain: Arc<Domain>, scope: Option<Actor>) -> Self {
        Self { domain, scope }
    }
}

impl Loader<i64> for ResellerLoader {
    type Value = reseller::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let Some(actor) = self.scope.as_ref() else {
            return Ok(HashMap::new());
        };
        let rows = resellers::resellers_by_ids(&self.domain, actor, keys).await.map_err(to_graphql)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// Vendor accounts of customers, by customer id. Callers reach a customer only through a
/// scoped query, so the key itself is already authorized.
pub struct VendorAccountLoader {
    domain: Arc<Domain>,
}

impl VendorAccountLoader {
    /// A loader for one request.
    pub fn new(domain: Arc<Domain>) -> Self {
        Self { domain }
    }
}

impl Loader<i64> for VendorAccountLoader {
    type Value = Vec<customer_vendor_account::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        customers::vendor_accounts_by_customer(&self.domain, keys).await.map_err(to_graphql)
    }
}

/// Subscriptions by id, within the caller's scope.
pub struct SubscriptionLoader {
    domain: Arc<Domain>,
    scope: Option<Actor>,
}

impl SubscriptionLoader {
    /// A loader for one request's caller.
    pub fn new(domain: Arc<Domain>, scope: Option<Actor>) -> Self {
        Self { domain, scope }
    }
}

impl Loader<i64> for SubscriptionLoader {
    type Value = entity::subscription::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let Some(actor) = self.scope.as_ref() else { return Ok(HashMap::new()) };
        let rows =
            crate::domain::subscriptions::subscriptions_by_ids(&self.domain, actor, keys).await.map_err(to_graphql)?;
        Ok(rows.into_iter().map(|s| (s.id, s)).collect())
    }
}

/// Customers by id, within the caller's scope.
pub struct CustomerLoader {
    domain: Arc<Domain>,
    scope: Option<Actor>,
}

impl CustomerLoader {
    /// A loader for one request's caller.
    pub fn new(domain: Arc<Domain>, scope: Option<Actor>) -> Self {
        Self { domain, scope }
    }
}

impl Loader<i64> for CustomerLoader {
    type Value = entity::customer::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let Some(actor) = self.scope.as_ref() else { return Ok(HashMap::new()) };
        customers::customers_by_ids(&self.domain, actor, keys).await.map_err(to_graphql)
    }
}

/// Loads child rows of already-authorized parents by parent id, with one query per batch.
macro_rules! children_loader {
    ($(#[$doc:meta])* $name:ident, $model:ty, $parent:ident, $load:path) => {
        $(#[$doc])*
        pub struct $name {
            domain: Arc<Domain>,
        }

        impl $name {
            /// A loader for one request.
            pub fn new(domain: Arc<Domain>) -> Self {
                Self { domain }
            }
        }

        impl Loader<i64> for $name {
            type Value = Vec<$model>;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
                let rows = $load(&self.domain, keys).await.map_err(to_graphql)?;
                let mut map: HashMap<i64, Self::Value> = HashMap::new();
                for row in rows {
                    map.entry(row.$parent).or_default().push(row);
                }
                Ok(map)
            }
        }
    };
}

children_loader!(
    /// Subscription change histories by subscription id.
    HistoryLoader,
    entity::subscription_change::Model,
    subscription_id,
    crate::domain::subscriptions::histories
);
children_loader!(
    /// Invoice lines by invoice id.
    InvoiceLinesLoader,
    entity::invoice_line::Model,
    invoice_id,
    crate::domain::billing::invoices::lines_of
);
children_loader!(
    /// Order lines by order id.
    OrderLinesLoader,
    entity::order_line::Model,
    order_id,
    crate::domain::orders::order_lines
);
