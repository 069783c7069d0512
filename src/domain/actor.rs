//! Who is calling: the verified actor and the tenant scope every domain function applies.
//!
//! An [`Actor`] is built only from verified token claims (or a user row at login). Its
//! [`Tenant`] is the operator (the whole marketplace) or one vendor, reseller or customer,
//! with that organization's typed id: there is no "no organization" stand-in to filter by.

pub use entity::enums::Role;

use super::error::{Error, Result};
use super::ids::{CustomerId, ResellerId, VendorId};
use super::scopes::{Scope, Scopes};

/// Whose data a caller acts on: the marketplace (operator) or one organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    /// The operator: the whole marketplace.
    Operator,
    /// One vendor: its own catalog.
    Vendor(VendorId),
    /// One reseller: its customers, orders and prices.
    Reseller(ResellerId),
    /// One customer: itself.
    Customer(CustomerId),
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The user behind the call; `None` for development tokens minted by the CLI.
    pub user_id: Option<i64>,
    /// Whom the caller acts for.
    pub tenant: Tenant,
    /// An API key's scopes; None for a signed-in user, who has every scope of its role.
    pub scopes: Option<Scopes>,
    /// The API key the caller came with, if any (audited with each action).
    pub api_key_id: Option<i64>,
}

impl Actor {
    /// The operator, acting as a system user (CLI commands, seeding, workers).
    pub fn system() -> Self {
        Self { user_id: None, tenant: Tenant::Operator, scopes: None, api_key_id: None }
    }

    /// An actor from a role and an organization id as tokens and user rows carry them;
    /// Unauthenticated when a role other than the operator's has no organization.
    pub fn from_role(user_id: Option<i64>, role: Role, organization_id: Option<i64>) -> Result<Self> {
        let org = || organization_id.ok_or(Error::Unauthenticated);
        let tenant = match role {
            Role::Operator => Tenant::Operator,
            Role::Vendor => Tenant::Vendor(VendorId::new(org()?)),
            Role::Reseller => Tenant::Reseller(ResellerId::new(org()?)),
            Role::Customer => Tenant::Customer(CustomerId::new(org()?)),
        };
        Ok(Self { user_id, tenant, scopes: None, api_key_id: None })
    }

    /// The role the caller acts in.
    pub fn role(&self) -> Role {
        match self.tenant {
            Tenant::Operator => Role::Operator,
            Tenant::Vendor(_) => Role::Vendor,
            Tenant::Reseller(_) => Role::Reseller,
            Tenant::Customer(_) => Role::Customer,
        }
    }

    /// The organization's id as tokens and the audit log store it (none for the operator).
    pub fn organization_id(&self) -> Option<i64> {
        match self.tenant {
            Tenant::Operator => None,
            Tenant::Vendor(id) => Some(id.get()),
            Tenant::Reseller(id) => Some(id.get()),
            Tenant::Customer(id) => Some(id.get()),
        }
    }

    /// Whether the caller is the operator.
    pub fn is_operator(&self) -> bool {
        self.tenant == Tenant::Operator
    }

    /// Refuses anyone but the operator.
    pub fn require_operator(&self) -> Result<()> {
        if self.is_operator() { Ok(()) } else { Err(forbidden(self.role())) }
    }

    /// The same caller acting through the API key `key_id` with `scopes`.
    pub fn through_key(self, key_id: i64, scopes: Scopes) -> Self {
        Self { scopes: Some(scopes), api_key_id: Some(key_id), ..self }
    }

    /// Refuses an API key without `scope` to do `what` (a signed-in user has every scope).
    pub fn require_scope(&self, scope: Scope, what: &str) -> Result<()> {
        super::scopes::require(self.scopes, scope, what)
    }

    /// Refuses API keys: `what` needs a signed-in user.
    pub fn require_session(&self, what: &str) -> Result<()> {
        match self.scopes {
            Some(_) => Err(Error::Forbidden(format!("{what} needs a signed-in user, not an API key"))),
            None => Ok(()),
        }
    }

    /// Refuses any role not in `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.role()) { Ok(()) } else { Err(forbidden(self.role())) }
    }

    /// The vendor the caller acts for, if it is a vendor.
    pub fn vendor_id(&self) -> Option<i64> {
        if let Tenant::Vendor(id) = self.tenant { Some(id.get()) } else { None }
    }

    /// The reseller the caller acts for, if it is a reseller.
    pub fn reseller_id(&self) -> Option<i64> {
        if let Tenant::Reseller(id) = self.tenant { Some(id.get()) } else { None }
    }

    /// The customer the caller acts for, if it is a customer.
    pub fn customer_id(&self) -> Option<i64> {
        if let Tenant::Customer(id) = self.tenant { Some(id.get()) } else { None }
    }

    /// Whether the caller sees the operator's cost on orders, subscriptions and quotes (the
    /// operator only; a vendor sees cost in its catalog, not on the channel's orders).
    pub fn sees_order_cost(&self) -> bool {
        self.is_operator()
    }

    /// Whether the caller sees wholesale prices on orders, subscriptions and quotes (the
    /// operator and resellers; never customers).
    pub fn sees_order_wholesale(&self) -> bool {
        self.is_operator() || self.reseller_id().is_some()
    }

    /// Whether the caller may read and write `vendor_id`'s catalog (operator or that vendor).
    pub fn manages_vendor(&self, vendor_id: i64) -> bool {
        self.is_operator() || self.vendor_id() == Some(vendor_id)
    }
}

fn forbidden(role: Role) -> Error {
    Error::Forbidden(format!("the {} role may not do this", role_name(role)))
}

/// The role's name as the API spells it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Operator => "OPERATOR",
        Role::Vendor => "VENDOR",
        Role::Reseller => "RESELLER",
        Role::Customer => "CUSTOMER",
    }
}
