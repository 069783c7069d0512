//! Writing a charge checks less, and checks more (#13, billing 100,000 subscriptions): on
//! PostgreSQL each foreign key costs every inserted row a lookup and a row lock in the table
//! it names, and these were most of a charge's write.
//! - A charge's customer, reseller, vendor and offer are its subscription's (a subscription
//!   never changes them): one foreign key on all five columns to the subscription's own now
//!   checks that, where five checked only that each row exists somewhere.
//! - A charge key is unique per subscription (`uq_charges_subscription_key`, migration 12),
//!   which makes the first table's `UNIQUE (subscription_id, period, charge_key)` redundant.
//!
//! SQLite keeps its constraints as they are: a table's constraint changes there only by
//! rebuilding the table, and its foreign keys lock nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE UNIQUE INDEX uq_subscriptions_parties ON subscriptions(id, customer_id, reseller_id, vendor_id, offer_id);
ALTER TABLE charges ADD CONSTRAINT fk_charges_subscription_parties
    FOREIGN KEY (subscription_id, customer_id, reseller_id, vendor_id, offer_id)
    REFERENCES subscriptions(id, customer_id, reseller_id, vendor_id, offer_id);
ALTER TABLE charges
    DROP CONSTRAINT charges_subscription_id_fkey,
    DROP CONSTRAINT charges_customer_id_fkey,
    DROP CONSTRAINT charges_reseller_id_fkey,
    DROP CONSTRAINT charges_vendor_id_fkey,
    DROP CONSTRAINT charges_offer_id_fkey,
    DROP CONSTRAINT uq_charges_subscription_period_key";

const DOWN: &str = "
ALTER TABLE charges
    ADD CONSTRAINT charges_subscription_id_fkey FOREIGN KEY (subscription_id) REFERENCES subscriptions(id),
    ADD CONSTRAINT charges_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers(id),
    ADD CONSTRAINT charges_reseller_id_fkey FOREIGN KEY (reseller_id) REFERENCES resellers(id),
    ADD CONSTRAINT charges_vendor_id_fkey FOREIGN KEY (vendor_id) REFERENCES vendors(id),
    ADD CONSTRAINT charges_offer_id_fkey FOREIGN KEY (offer_id) REFERENCES offers(id),
    ADD CONSTRAINT uq_charges_subscription_period_key UNIQUE (subscription_id, period, charge_key);
ALTER TABLE charges DROP CONSTRAINT fk_charges_subscription_parties;
DROP INDEX uq_subscriptions_parties";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        ddl::run(manager, DOWN).await
    }
}
