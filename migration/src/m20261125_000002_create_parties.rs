use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE tiers (
    id {id},
    name VARCHAR(100) NOT NULL UNIQUE,
    markup {money} NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE TABLE resellers (
    id {id},
    name VARCHAR(200) NOT NULL,
    tier_id BIGINT NOT NULL REFERENCES tiers(id),
    currency CHAR(3) NOT NULL,
    external_partner_id VARCHAR(64) UNIQUE,
    default_retail_markup {money},
    invoice_prefix VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE INDEX idx_resellers_tier ON resellers(tier_id);
CREATE TABLE wholesale_prices (
    id {id},
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    reseller_id BIGINT REFERENCES resellers(id),
    tier_id BIGINT REFERENCES tiers(id),
    currency CHAR(3) NOT NULL,
    price {money} NOT NULL,
    effective_from {ts} NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT ck_wholesale_prices_target CHECK ((reseller_id IS NULL) <> (tier_id IS NULL))
);
CREATE UNIQUE INDEX uq_wholesale_prices_reseller ON wholesale_prices(offer_id, reseller_id, currency, effective_from) WHERE reseller_id IS NOT NULL;
CREATE UNIQUE INDEX uq_wholesale_prices_tier ON wholesale_prices(offer_id, tier_id, currency, effective_from) WHERE tier_id IS NOT NULL;
CREATE TABLE retail_prices (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    currency CHAR(3) NOT NULL,
    price {money} NOT NULL,
    effective_from {ts} NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT uq_retail_prices UNIQUE (reseller_id, offer_id, currency, effective_from)
);
CREATE INDEX idx_retail_prices_offer ON retail_prices(offer_id);
CREATE TABLE customers (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    name VARCHAR(200) NOT NULL,
    country CHAR(2) NOT NULL,
    currency CHAR(3) NOT NULL,
    tax_rate {money} NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE INDEX idx_customers_reseller ON customers(reseller_id);
CREATE TABLE customer_vendor_accounts (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    external_id VARCHAR(128) NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT uq_customer_vendor_accounts_customer UNIQUE (customer_id, vendor_id),
    CONSTRAINT uq_customer_vendor_accounts_external UNIQUE (vendor_id, external_id)
);
CREATE TABLE users (
    id {id},
    email VARCHAR(254) NOT NULL UNIQUE,
    display_name VARCHAR(200) NOT NULL,
    password_hash TEXT NOT NULL,
    role VARCHAR(16) NOT NULL,
    organization_id BIGINT,
    disabled BOOLEAN NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE TABLE api_keys (
    id {id},
    user_id BIGINT NOT NULL REFERENCES users(id),
    name VARCHAR(100) NOT NULL,
    prefix VARCHAR(16) NOT NULL UNIQUE,
    key_hash CHAR(64) NOT NULL,
    created_at {ts} NOT NULL,
    last_used_at {ts},
    revoked_at {ts}
);
CREATE INDEX idx_api_keys_user ON api_keys(user_id);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(
            manager,
            &[
                "api_keys",
                "users",
                "customer_vendor_accounts",
                "customers",
                "retail_prices",
                "wholesale_prices",
                "resellers",
                "tiers",
            ],
        )
        .await
    }
}
