use sea_orm_migration::prelude::*;

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"

CREATE TABLE vendors (
    id {id},
    code VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    connector_kind VARCHAR(32) NOT NULL,
    connector_settings {json} NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE TABLE products (
    id {id},
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    name VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE INDEX idx_products_vendor ON products(vendor_id);
CREATE TABLE offers (
    id {id},
    product_id BIGINT NOT NULL REFERENCES products(id),
    vendor_id BIGINT NOT NULL REFERENCES vendors(id),
    sku VARCHAR(100) NOT NULL,
    name VARCHAR(200) NOT NULL,
    unit VARCHAR(32) NOT NULL,
    term VARCHAR(8) NOT NULL,
    billing_frequency VARCHAR(16) NOT NULL,
    min_quantity INTEGER NOT NULL,
    max_quantity INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    usage_meter VARCHAR(100),
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    CONSTRAINT uq_offers_vendor_sku UNIQUE (vendor_id, sku),
    CONSTRAINT ck_offers_quantity CHECK (min_quantity >= 0 AND min_quantity <= max_quantity)
);
CREATE INDEX idx_offers_product ON offers(product_id);
CREATE TABLE price_points (
    id {id},
    offer_id BIGINT NOT NULL REFERENCES offers(id),
    currency CHAR(3) NOT NULL,
    cost {money} NOT NULL,
    list_price {money} NOT NULL,
    usage_unit_cost {money},
    usage_unit_list_price {money},
    effective_from {ts} NOT NULL,
    created_at {ts} NOT NULL,
    CONSTRAINT uq_price_points_offer_currency_from UNIQUE (offer_id, currency, effective_from)
);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ddl::drop_tables(manager, &["price_points", "offers", "products", "vendors"]).await
    }
}
