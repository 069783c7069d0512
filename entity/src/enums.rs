//! Status and kind enums shared by the entities, stored as their upper-case names.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The role a user acts in; decides what the user may see and do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    #[sea_orm(string_value = "OPERATOR")]
    Operator,
    #[sea_orm(string_value = "VENDOR")]
    Vendor,
    #[sea_orm(string_value = "RESELLER")]
    Reseller,
    #[sea_orm(string_value = "CUSTOMER")]
    Customer,
}

/// Whether a product or offer can be sold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CatalogStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "RETIRED")]
    Retired,
}

/// Whether a vendor, reseller or customer is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrganizationStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "INACTIVE")]
    Inactive,
}

/// The commitment term of an offer (ISO 8601 durations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Term {
    #[sea_orm(string_value = "P1M")]
    P1m,
    #[sea_orm(string_value = "P1Y")]
    P1y,
    #[sea_orm(string_value = "P3Y")]
    P3y,
}

/// How often recurring fees are billed, independent of the term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingFrequency {
    #[sea_orm(string_value = "MONTHLY")]
    Monthly,
    #[sea_orm(string_value = "ANNUAL")]
    Annual,
    #[sea_orm(string_value = "UPFRONT")]
    Upfront,
}

/// How Switchyard reaches a vendor's provisioning system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectorKind {
    #[sea_orm(string_value = "SANDBOX")]
    Sandbox,
    #[sea_orm(string_value = "HTTP")]
    Http,
}

/// An order's status, derived from its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    #[sea_orm(string_value = "PROCESSING")]
    Processing,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "PARTIALLY_FAILED")]
    PartiallyFailed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// An order line's provisioning status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderLineStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PROVISIONING")]
    Provisioning,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// The subscription lifecycle states of DOMAIN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "PROVISIONING")]
    Provisioning,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "SUSPENDED")]
    Suspended,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// What a recorded subscription change was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionChangeKind {
    #[sea_orm(string_value = "PURCHASE")]
    Purchase,
    #[sea_orm(string_value = "PROVISIONED")]
    Provisioned,
    #[sea_orm(string_value = "PROVISIONING_FAILED")]
    ProvisioningFailed,
    #[sea_orm(string_value = "QUANTITY_INCREASE")]
    QuantityIncrease,
    #[sea_orm(string_value = "QUANTITY_DECREASE")]
    QuantityDecrease,
    #[sea_orm(string_value = "SUSPEND")]
    Suspend,
    #[sea_orm(string_value = "RESUME")]
    Resume,
    #[sea_orm(string_value = "CANCEL")]
    Cancel,
    #[sea_orm(string_value = "RENEW")]
    Renew,
    #[sea_orm(string_value = "EXPIRE")]
    Expire,
    #[sea_orm(string_value = "AUTO_RENEW_CHANGED")]
    AutoRenewChanged,
    /// The subscription went back to what the vendor has after it refused a change (or an
    /// operator declared an unconfirmed change not made); informational for billing.
    #[sea_orm(string_value = "REVERTED")]
    Reverted,
}

/// What the vendor did with a change that needed a call to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VendorOutcome {
    /// Its job has not finished: billing holds the change (and every later one) until it has.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The vendor made it.
    #[sea_orm(string_value = "DONE")]
    Done,
    /// The vendor refused it: it was reverted and is never billed.
    #[sea_orm(string_value = "REFUSED")]
    Refused,
    /// Every attempt ended without an answer: nobody knows; the subscription is out of sync
    /// and billing holds the change until an operator's retry or abandon settles it.
    #[sea_orm(string_value = "UNCONFIRMED")]
    Unconfirmed,
}

/// Where a batch of seats came from; each batch has its own 168 h window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatBatchSource {
    #[sea_orm(string_value = "PURCHASE")]
    Purchase,
    #[sea_orm(string_value = "RENEWAL")]
    Renewal,
    #[sea_orm(string_value = "INCREASE")]
    Increase,
}

/// The vendor action a provisioning job performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProvisioningAction {
    #[sea_orm(string_value = "PURCHASE")]
    Purchase,
    #[sea_orm(string_value = "CHANGE_QUANTITY")]
    ChangeQuantity,
    #[sea_orm(string_value = "SUSPEND")]
    Suspend,
    #[sea_orm(string_value = "RESUME")]
    Resume,
    #[sea_orm(string_value = "CANCEL")]
    Cancel,
    #[sea_orm(string_value = "RENEW")]
    Renew,
}

/// What a job in the durable queue does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    /// A call to a vendor's connector for a subscription (purchase, change, renewal…).
    #[sea_orm(string_value = "PROVISIONING")]
    Provisioning,
    /// A signed POST of an event to a webhook endpoint.
    #[sea_orm(string_value = "WEBHOOK_DELIVERY")]
    WebhookDelivery,
}

/// A job's state in the durable queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "INQUIRE")]
    Inquire,
    #[sea_orm(string_value = "DEAD")]
    Dead,
}

/// A billing run's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingRunStatus {
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// The kind of a billed charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargeKind {
    #[sea_orm(string_value = "RECURRING")]
    Recurring,
    #[sea_orm(string_value = "PRORATION")]
    Proration,
    #[sea_orm(string_value = "REFUND")]
    Refund,
    #[sea_orm(string_value = "USAGE")]
    Usage,
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
}

/// An invoice or a credit note against one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceKind {
    #[sea_orm(string_value = "INVOICE")]
    Invoice,
    #[sea_orm(string_value = "CREDIT_NOTE")]
    CreditNote,
}

/// Invoice lifecycle: DRAFT → ISSUED → PAID, or VOID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "ISSUED")]
    Issued,
    #[sea_orm(string_value = "PAID")]
    Paid,
    #[sea_orm(string_value = "VOID")]
    Void,
}
