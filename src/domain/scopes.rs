//! What an API key may do: its scopes, within what its user's role allows. A signed-in
//! user (a JWT) has every scope of its role; a key has only the scopes it was made with.
//! Each operation of the API needs one scope (or none, or a signed-in user), decided here in
//! one table ([`needed_for`]) and checked, like roles, before the operation runs; an
//! operation the table does not name is not open to keys at all.

use std::fmt;

use super::error::{Error, Result};

/// One thing a key may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read the catalog, prices, quotes and the channel's parties.
    CatalogRead,
    /// Change the catalog, prices, tiers and resellers (operator).
    CatalogWrite,
    /// Create and change customers and their prices.
    CustomersWrite,
    /// Place and read orders.
    OrdersWrite,
    /// Change and read subscriptions, their usage and provisioning.
    SubscriptionsWrite,
    /// Read invoices, charges, previews and margins.
    BillingRead,
    /// Run billing, set rates, issue, pay, void and credit invoices (operator).
    BillingWrite,
    /// Import and match vendor statements, resolve findings (operator).
    ReconciliationWrite,
    /// Manage webhook endpoints and read their deliveries.
    WebhooksManage,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 9] = [
        Self::CatalogRead,
        Self::CatalogWrite,
        Self::CustomersWrite,
        Self::OrdersWrite,
        Self::SubscriptionsWrite,
        Self::BillingRead,
        Self::BillingWrite,
        Self::ReconciliationWrite,
        Self::WebhooksManage,
    ];

    /// Its name: `area:access`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatalogRead => "catalog:read",
            Self::CatalogWrite => "catalog:write",
            Self::CustomersWrite => "customers:write",
            Self::OrdersWrite => "orders:write",
            Self::SubscriptionsWrite => "subscriptions:write",
            Self::BillingRead => "billing:read",
            Self::BillingWrite => "billing:write",
            Self::ReconciliationWrite => "reconciliation:write",
            Self::WebhooksManage => "webhooks:manage",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether only the operator may hold it.
    pub fn operator_only(self) -> bool {
        matches!(self, Self::CatalogWrite | Self::BillingWrite | Self::ReconciliationWrite)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    /// Whether `scope` is in the set.
    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes of names separated by blanks or commas; VALIDATION naming `field` for a
    /// name that is no scope, or for none at all.
    pub fn parse(names: &str, field: &str) -> Result<Self> {
        let mut set = Self::default();
        for name in names.split([' ', ',']).filter(|n| !n.is_empty()) {
            let scope = Scope::parse(name)
                .ok_or_else(|| Error::validation(field, format!("unknown scope {name:?} (known: {})", Self::all())))?;
            set.0 |= scope.bit();
        }
        if set.0 == 0 {
            return Err(Error::validation(field, "at least one scope is needed"));
        }
        Ok(set)
    }

    /// Every scope.
    pub fn all() -> Self {
        Self(Scope::ALL.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// The scopes in the set, in [`Scope::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.has(*s))
    }

    /// As stored, from what was stored: names separated by spaces; names no longer known
    /// are dropped (a key never gains a scope it was not given).
    pub fn from_stored(names: &str) -> Self {
        Self(names.split(' ').filter_map(Scope::parse).fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

/// What an operation needs of a caller beyond its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: any caller.
    Nothing,
    /// A key with this scope (a signed-in user has them all).
    Scope(Scope),
    /// A signed-in user: not open to keys (passwords, the keys themselves).
    Session,
}

/// What the API's root field `field` (a query, mutation or subscription) needs; None for a
/// field the table does not name, which keys may not use.
pub fn needed_for(field: &str) -> Option<Needs> {
    use Scope::{
        BillingRead, BillingWrite, CatalogRead, CatalogWrite, CustomersWrite, OrdersWrite, ReconciliationWrite,
        SubscriptionsWrite, WebhooksManage,
    };
    let scope = match field {
        "__typename" | "__schema" | "__type" | "me" | "liveCursor" => return Some(Needs::Nothing),
        "login" | "unlockLogin" | "apiKeys" | "createApiKey" | "revokeApiKey" | "rotateApiKey" => {
            return Some(Needs::Session);
        }
        "vendors" | "vendor" | "products" | "product" | "offers" | "offer" | "quoteOrder" | "exchangeRates"
        | "tiers" | "resellers" | "reseller" => CatalogRead,
        "createVendor" | "updateVendor" | "createProduct" | "updateProduct" | "createOffer" | "updateOffer"
        | "addPricePoint" | "createTier" | "updateTier" | "createReseller" | "updateReseller" | "setWholesalePrice" => {
            CatalogWrite
        }
        "customers" | "customer" | "createCustomer" | "updateCustomer" | "setRetailPrice" | "setRetailMarkup" => {
            CustomersWrite
        }
        "placeOrder" | "orders" | "recentOrders" | "order" | "orderStatus" => OrdersWrite,
        "subscriptions"
        | "subscription"
        | "changeSubscriptionQuantity"
        | "suspendSubscription"
        | "resumeSubscription"
        | "cancelSubscription"
        | "setAutoRenew"
        | "recordUsage"
        | "subscriptionChanged"
        | "provisioningStatus"
        | "liveEvents"
        | "queueHealth"
        | "jobThroughput"
        | "provisioningJobs"
        | "retryProvisioning"
        | "abandonProvisioningJob" => SubscriptionsWrite,
        "invoices" | "invoice" | "charges" | "previewBilling" | "marginReport" | "billingRuns" => BillingRead,
        "runBilling" | "setExchangeRate" | "issueInvoice" | "markInvoicePaid" | "voidInvoice" | "creditInvoice" => {
            BillingWrite
        }
        "importStatement"
        | "matchStatement"
        | "explainFinding"
        | "recoverFinding"
        | "statementImports"
        | "statementImport"
        | "reconciliationFindings"
        | "reconciliationFinding"
        | "reconciliationReport"
        | "vendorMarginReport" => ReconciliationWrite,
        "webhookEndpoints"
        | "createWebhookEndpoint"
        | "updateWebhookEndpoint"
        | "deleteWebhookEndpoint"
        | "rotateWebhookSecret"
        | "webhookDeliveries"
        | "redeliverWebhook" => WebhooksManage,
        _ => return None,
    };
    Some(Needs::Scope(scope))
}

/// What a key needs to see an object of the API's type `type_name` wherever it is reached
/// (`Order.customer`, `placeOrder { order { lines { subscription } } }`): the scope of the
/// area it belongs to, or nothing for plain values and pages; None for a type this table
/// does not know, which keys may not see. A connection or edge is its node's type.
pub fn needed_to_see(type_name: &str) -> Option<Needs> {
    use Scope::{
        BillingRead, BillingWrite, CatalogRead, CustomersWrite, OrdersWrite, ReconciliationWrite, SubscriptionsWrite,
        WebhooksManage,
    };
    let base = type_name.strip_suffix("Connection").or_else(|| type_name.strip_suffix("Edge")).unwrap_or(type_name);
    let scope = match base {
        "Money" | "PageInfo" | "Me" | "LoginPayload" | "ApiKey" | "IssuedApiKey" | "Query" | "Mutation"
        | "SubscriptionRoot" | "LiveEvent" | "MarginRow" | "Quote" | "QuoteLine" | "OrderLine" | "PreviewLine"
        | "InvoiceLine" | "StatementRow" => return Some(Needs::Nothing),
        "Vendor" | "Product" | "Offer" | "OfferPrice" | "PricePoint" | "Tier" | "Reseller" | "WholesalePrice"
        | "ExchangeRate" => CatalogRead,
        "Customer" | "VendorAccount" | "RetailPrice" => CustomersWrite,
        "Order" | "PlaceOrderPayload" => OrdersWrite,
        "Subscription"
        | "SubscriptionChange"
        | "SubscriptionPayload"
        | "ProvisioningJob"
        | "UsageRecordResult"
        | "QueueHealth"
        | "QueueCount"
        | "JobMinute" => SubscriptionsWrite,
        "Invoice" | "Charge" | "BillingPreview" | "BillingRun" => BillingRead,
        "BillingRunResult" => BillingWrite,
        "StatementImport"
        | "StatementImportPayload"
        | "ReconciliationFinding"
        | "ReconciliationReport"
        | "ReconciliationCategoryTotal"
        | "ReconciliationPartyTotal" => ReconciliationWrite,
        "WebhookEndpoint" | "WebhookEndpointWithSecret" | "WebhookDelivery" | "WebhookAttempt" => WebhooksManage,
        _ => return None,
    };
    Some(Needs::Scope(scope))
}

/// Refuses a key without `scope` to do `what`: FORBIDDEN naming the scope.
pub fn require(scopes: Option<Scopes>, scope: Scope, what: &str) -> Result<()> {
    match scopes {
        Some(granted) if !granted.has(scope) => {
            Err(Error::Forbidden(format!("this API key lacks the scope {} needed for {what}", scope.as_str())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_refuse_unknown_names() {
        let set = Scopes::parse("orders:write, catalog:read", "scopes").unwrap_or_default();
        assert!(set.has(Scope::CatalogRead) && set.has(Scope::OrdersWrite) && !set.has(Scope::BillingRead));
        assert_eq!(set.to_string(), "catalog:read orders:write");
        assert_eq!(Scopes::from_stored(&set.to_string()), set);
        assert!(Scopes::parse("catalog:read admin", "scopes").is_err());
        assert!(Scopes::parse(" ", "scopes").is_err());
        assert_eq!(
            Scopes::from_stored("catalog:read gone:away"),
            Scopes::parse("catalog:read", "s").unwrap_or_default()
        );
    }
}
