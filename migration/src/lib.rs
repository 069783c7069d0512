//! Schema migrations for Switchyard: append-only history, one change per file.
//!
//! Migrations are frozen: they never import the `entity` crate, so a later change to an
//! entity cannot silently rewrite history. The initial schema is written as portable DDL
//! with a few type placeholders (see [`ddl`]) because two column types differ per backend:
//! money is exact `NUMERIC` on PostgreSQL but `TEXT` on SQLite (SQLite has no exact decimal
//! type, and a `REAL` column goes through `f64`).

pub use sea_orm_migration::prelude::*;

mod ddl;
mod m20261125_000001_create_catalog;
mod m20261125_000002_create_parties;
mod m20261125_000003_create_orders_and_subscriptions;
mod m20261125_000004_create_provisioning_jobs;
mod m20261125_000005_create_billing;
mod m20261125_000006_create_usage_and_reconciliation;
mod m20261125_000007_create_events_webhooks_audit;
mod m20261125_000008_add_invoice_line_charge_unique;
mod m20261125_000009_add_invoice_line_charge_index;
mod m20261125_000010_generalize_jobs;
mod m20261125_000011_charges_remember_invoices;
mod m20261125_000012_charge_key_unique_per_subscription;
mod m20261126_000013_changes_record_prices;
mod m20261126_000014_exchange_rates;
mod m20261126_000015_subscriptions_billing_settled;
mod m20261126_000016_invoices_people_can_send;
mod m20261126_000017_changes_follow_the_vendor;
mod m20261126_000018_outbox_horizon;
mod m20261126_000019_login_attempts;
mod m20261126_000020_keys_per_customer;
mod m20261126_000021_statement_imports;
mod m20261126_000022_reconciliation_findings;
mod m20261127_000023_api_key_scopes;
mod m20261127_000024_webhooks;
mod m20261127_000025_jobs_finished_index;
mod m20261127_000026_jobs_due_index;
mod m20261127_000027_catalog_version;
mod m20261127_000028_wholesale_prices_by_reseller;
mod m20261127_000029_charges_checked_once;
mod m20261128_000030_catalog_changes;

/// The ordered list of every migration.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_catalog::Migration),
            Box::new(m20261125_000002_create_parties::Migration),
            Box::new(m20261125_000003_create_orders_and_subscriptions::Migration),
            Box::new(m20261125_000004_create_provisioning_jobs::Migration),
            Box::new(m20261125_000005_create_billing::Migration),
            Box::new(m20261125_000006_create_usage_and_reconciliation::Migration),
            Box::new(m20261125_000007_create_events_webhooks_audit::Migration),
            Box::new(m20261125_000008_add_invoice_line_charge_unique::Migration),
            Box::new(m20261125_000009_add_invoice_line_charge_index::Migration),
            Box::new(m20261125_000010_generalize_jobs::Migration),
            Box::new(m20261125_000011_charges_remember_invoices::Migration),
            Box::new(m20261125_000012_charge_key_unique_per_subscription::Migration),
            Box::new(m20261126_000013_changes_record_prices::Migration),
            Box::new(m20261126_000014_exchange_rates::Migration),
            Box::new(m20261126_000015_subscriptions_billing_settled::Migration),
            Box::new(m20261126_000016_invoices_people_can_send::Migration),
            Box::new(m20261126_000017_changes_follow_the_vendor::Migration),
            Box::new(m20261126_000018_outbox_horizon::Migration),
            Box::new(m20261126_000019_login_attempts::Migration),
            Box::new(m20261126_000020_keys_per_customer::Migration),
            Box::new(m20261126_000021_statement_imports::Migration),
            Box::new(m20261126_000022_reconciliation_findings::Migration),
            Box::new(m20261127_000023_api_key_scopes::Migration),
            Box::new(m20261127_000024_webhooks::Migration),
            Box::new(m20261127_000025_jobs_finished_index::Migration),
            Box::new(m20261127_000026_jobs_due_index::Migration),
            Box::new(m20261127_000027_catalog_version::Migration),
            Box::new(m20261127_000028_wholesale_prices_by_reseller::Migration),
            Box::new(m20261127_000029_charges_checked_once::Migration),
            Box::new(m20261128_000030_catalog_changes::Migration),
        ]
    }
}
