//! DataLoaders, built per request with the caller's scope (never shared across tenants).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::{customer_vendor_account, reseller};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::errors::to_graphql;
use crate::domain::{Actor, Domain, Error, customers};

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
        let visible: Vec<i64> =
            keys.iter().copied().filter(|id| actor.is_operator() || actor.reseller_id() == Some(*id)).collect();
        if visible.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = reseller::Entity::find()
            .filter(reseller::Column::Id.is_in(visible))
            .all(&self.domain.db)
            .await
            .map_err(|e| to_graphql(Error::from(e)))?;
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

/// Order lines by order id (orders were scoped already).
pub struct OrderLinesLoader {
    domain: Arc<Domain>,
}

impl OrderLinesLoader {
    /// A loader for one request.
    pub fn new(domain: Arc<Domain>) -> Self {
        Self { domain }
    }
}

impl Loader<i64> for OrderLinesLoader {
    type Value = Vec<entity::order_line::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let lines = crate::domain::orders::order_lines(&self.domain, keys).await.map_err(to_graphql)?;
        let mut map: HashMap<i64, Self::Value> = HashMap::new();
        for line in lines {
            map.entry(line.order_id).or_default().push(line);
        }
        Ok(map)
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
