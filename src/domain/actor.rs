//! Who is calling: the verified actor and the tenant scope every domain function applies.
//!
//! An [`Actor`] is built only from verified token claims. Its organization id means, by role:
//! OPERATOR — none (one operator runs the marketplace); VENDOR — the vendor id;
//! RESELLER — the reseller id; CUSTOMER — the customer id.

pub use entity::enums::Role;

use super::error::{Error, Result};

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The user behind the call; `None` for development tokens minted by the CLI.
    pub user_id: Option<i64>,
    /// The role the caller acts in.
    pub role: Role,
    /// The caller's organization (see the module doc).
    pub organization_id: Option<i64>,
}

impl Actor {
    /// The operator, acting as a system user (CLI commands, seeding, workers).
    pub fn system() -> Self {
        Self { user_id: None, role: Role::Operator, organization_id: None }
    }

    /// Whether the caller is the operator.
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Refuses anyone but the operator.
    pub fn require_operator(&self) -> Result<()> {
        if self.is_operator() { Ok(()) } else { Err(forbidden(self.role)) }
    }

    /// Refuses any role not in `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.role) { Ok(()) } else { Err(forbidden(self.role)) }
    }

    /// The vendor the caller acts for, if it is a vendor.
    pub fn vendor_id(&self) -> Option<i64> {
        (self.role == Role::Vendor).then_some(self.organization_id).flatten()
    }

    /// The reseller the caller acts for, if it is a reseller.
    pub fn reseller_id(&self) -> Option<i64> {
        (self.role == Role::Reseller).then_some(self.organization_id).flatten()
    }

    /// The customer the caller acts for, if it is a customer.
    pub fn customer_id(&self) -> Option<i64> {
        (self.role == Role::Customer).then_some(self.organization_id).flatten()
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
