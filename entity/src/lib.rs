//! SeaORM entities and their status enums: the shape of the tables, no business rules.
//!
//! One module per table. Money columns use [`DbDecimal`], exact on both backends.

mod decimal;
pub mod enums;

pub mod api_key;
pub mod audit_log;
pub mod billing_run;
pub mod charge;
pub mod customer;
pub mod customer_vendor_account;
pub mod domain_event;
pub mod exchange_rate;
pub mod invoice;
pub mod invoice_line;
pub mod job;
pub mod login_attempt;
pub mod offer;
pub mod order;
pub mod order_line;
pub mod price_point;
pub mod product;
pub mod reconciliation_finding;
pub mod reconciliation_import;
pub mod reconciliation_line;
pub mod reseller;
pub mod retail_price;
pub mod seat_batch;
pub mod subscription;
pub mod subscription_change;
pub mod tier;
pub mod usage_record;
pub mod user;
pub mod vendor;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod wholesale_price;

pub use decimal::DbDecimal;
