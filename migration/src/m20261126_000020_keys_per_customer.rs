//! Uniqueness that told one tenant of another (#9.19):
//! - a vendor account's external id is unique per reseller (`reseller_id`, copied from the
//!   customer), no longer per vendor: a customer may buy through several resellers, and a
//!   conflict must not tell a reseller that another one has that tenant;
//! - an order's idempotency key is unique per customer, no longer per reseller: two
//!   customers of one reseller may use the same key (and one never replays the other's order).
//!
//! PostgreSQL alters the constraints in place. SQLite cannot drop a table constraint, so it
//! rebuilds both tables, keeping ids and AUTOINCREMENT counters; `orders` is referenced by
//! order lines, subscriptions and jobs, so its rows are copied aside, the table dropped and
//! made again with foreign keys deferred to the commit, by which time every referenced
//! order is back. Going down restores the old constraints, and refuses while rows that
//! only the new ones allow exist.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::ddl;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r#"
ALTER TABLE customer_vendor_accounts ADD COLUMN reseller_id BIGINT REFERENCES resellers(id);
UPDATE customer_vendor_accounts SET reseller_id =
    (SELECT customers.reseller_id FROM customers WHERE customers.id = customer_vendor_accounts.customer_id);
ALTER TABLE customer_vendor_accounts ALTER COLUMN reseller_id SET NOT NULL;
ALTER TABLE customer_vendor_accounts DROP CONSTRAINT uq_customer_vendor_accounts_external;
ALTER TABLE customer_vendor_accounts ADD CONSTRAINT uq_customer_vendor_accounts_reseller_external
    UNIQUE (reseller_id, vendor_id, external_id);
ALTER TABLE orders DROP CONSTRAINT uq_orders_reseller_idempotency_key;
ALTER TABLE orders ADD CONSTRAINT uq_orders_customer_idempotency_key UNIQUE (customer_id, idempotency_key);
DROP INDEX idx_orders_customer;
CREATE INDEX idx_orders_reseller ON orders(reseller_id)
"#;

const POSTGRES_DOWN: &str = r#"
DROP INDEX idx_orders_reseller;
CREATE INDEX idx_orders_customer ON orders(customer_id);
ALTER TABLE orders DROP CONSTRAINT uq_orders_customer_idempotency_key;
ALTER TABLE orders ADD CONSTRAINT uq_orders_reseller_idempotency_key UNIQUE (reseller_id, idempotency_key);
ALTER TABLE customer_vendor_accounts DROP CONSTRAINT uq_customer_vendor_accounts_reseller_external;
ALTER TABLE customer_vendor_accounts ADD CONSTRAINT uq_customer_vendor_accounts_external UNIQUE (vendor_id, external_id);
ALTER TABLE customer_vendor_accounts DROP COLUMN reseller_id
"#;

/// The orders table as of migration 3, with `{unique}` for its idempotency constraint.
const SQLITE_ORDERS: &str = r#"
CREATE TABLE orders (
    id {id},
    reseller_id BIGINT NOT NULL REFERENCES resellers(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    placed_by_user_id BIGINT REFERENCES users(id),
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    po_number VARCHAR(100),
    status VARCHAR(24) NOT NULL,
    currency CHAR(3) NOT NULL,
    total_cost {money} NOT NULL,
    total_wholesale {money} NOT NULL,
    total_retail {money} NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    {unique}
)
"#;

const ORDER_COLUMNS: &str = "id, reseller_id, customer_id, placed_by_user_id, idempotency_key, request_hash, po_number, \
    status, currency, total_cost, total_wholesale, total_retail, created_at, updated_at";

/// The statements that rebuild SQLite's `orders` with `unique` as its idempotency constraint
/// and `index` as its lookup index.
fn sqlite_orders(unique: &str, index: &str) -> String {
    let create = SQLITE_ORDERS.replace("{unique}", unique);
    format!(
        "PRAGMA defer_foreign_keys = ON;
         CREATE TABLE orders_before_20 AS SELECT * FROM orders;
         CREATE TABLE orders_sequence_before_20 AS SELECT seq FROM sqlite_sequence WHERE name = 'orders';
         DROP TABLE orders;
         {create};
         INSERT INTO orders ({ORDER_COLUMNS}) SELECT {ORDER_COLUMNS} FROM orders_before_20;
         DELETE FROM sqlite_sequence WHERE name = 'orders';
         INSERT INTO sqlite_sequence (name, seq) SELECT 'orders', seq FROM orders_sequence_before_20;
         DROP TABLE orders_before_20;
         DROP TABLE orders_sequence_before_20;
         {index}"
    )
}

/// The statements that rebuild SQLite's `customer_vendor_accounts` (nothing references it)
/// as `create`, filled by `insert`.
fn sqlite_accounts(create: &str, insert: &str) -> String {
    format!(
        "CREATE TABLE accounts_sequence_before_20 AS SELECT seq FROM sqlite_sequence WHERE name = 'customer_vendor_accounts';
         {create};
         {insert};
         DROP TABLE customer_vendor_accounts;
         ALTER TABLE customer_vendor_accounts_new RENAME TO customer_vendor_accounts;
         DELETE FROM sqlite_sequence WHERE name = 'customer_vendor_accounts';
         INSERT INTO sqlite_sequence (name, seq) SELECT 'customer_vendor_accounts', seq FROM accounts_sequence_before_20;
         DROP TABLE accounts_sequence_before_20"
    )
}

fn sqlite_up() -> String {
    let accounts = sqlite_accounts(
        "CREATE TABLE customer_vendor_accounts_new (
            id {id},
            customer_id BIGINT NOT NULL REFERENCES customers(id),
            reseller_id BIGINT NOT NULL REFERENCES resellers(id),
            vendor_id BIGINT NOT NULL REFERENCES vendors(id),
            external_id VARCHAR(128) NOT NULL,
            created_at {ts} NOT NULL,
            CONSTRAINT uq_customer_vendor_accounts_customer UNIQUE (customer_id, vendor_id),
            CONSTRAINT uq_customer_vendor_accounts_reseller_external UNIQUE (reseller_id, vendor_id, external_id)
        )",
        "INSERT INTO customer_vendor_accounts_new (id, customer_id, reseller_id, vendor_id, external_id, created_at)
         SELECT a.id, a.customer_id, c.reseller_id, a.vendor_id, a.external_id, a.created_at
         FROM customer_vendor_accounts a JOIN customers c ON c.id = a.customer_id",
    );
    let orders = sqlite_orders(
        "CONSTRAINT uq_orders_customer_idempotency_key UNIQUE (customer_id, idempotency_key)",
        "CREATE INDEX idx_orders_reseller ON orders(reseller_id)",
    );
    format!("{accounts};\n{orders}")
}

fn sqlite_down() -> String {
    let accounts = sqlite_accounts(
        "CREATE TABLE customer_vendor_accounts_new (
            id {id},
            customer_id BIGINT NOT NULL REFERENCES customers(id),
            vendor_id BIGINT NOT NULL REFERENCES vendors(id),
            external_id VARCHAR(128) NOT NULL,
            created_at {ts} NOT NULL,
            CONSTRAINT uq_customer_vendor_accounts_customer UNIQUE (customer_id, vendor_id),
            CONSTRAINT uq_customer_vendor_accounts_external UNIQUE (vendor_id, external_id)
        )",
        "INSERT INTO customer_vendor_accounts_new (id, customer_id, vendor_id, external_id, created_at)
         SELECT id, customer_id, vendor_id, external_id, created_at FROM customer_vendor_accounts",
    );
    let orders = sqlite_orders(
        "CONSTRAINT uq_orders_reseller_idempotency_key UNIQUE (reseller_id, idempotency_key)",
        "CREATE INDEX idx_orders_customer ON orders(customer_id)",
    );
    format!("{accounts};\n{orders}")
}

/// Rows the old constraints cannot hold: a tenant at two resellers, a key at two customers
/// of one reseller.
const ONLY_NEW_CONSTRAINTS_ALLOW: &str = "SELECT
    (SELECT COUNT(*) FROM (SELECT 1 FROM customer_vendor_accounts GROUP BY vendor_id, external_id HAVING COUNT(*) > 1) a)
  + (SELECT COUNT(*) FROM (SELECT 1 FROM orders GROUP BY reseller_id, idempotency_key HAVING COUNT(*) > 1) o) AS clashes";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => ddl::run(manager, POSTGRES_UP).await,
            _ => ddl::run(manager, &sqlite_up()).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let row =
            manager.get_connection().query_one_raw(Statement::from_string(backend, ONLY_NEW_CONSTRAINTS_ALLOW)).await?;
        let clashes: i64 = match row {
            Some(row) => row.try_get("", "clashes")?,
            None => 0,
        };
        if clashes > 0 {
            return Err(DbErr::Migration(format!(
                "{clashes} external ids or idempotency keys are shared in ways the earlier constraints forbid"
            )));
        }
        match backend {
            DbBackend::Postgres => ddl::run(manager, POSTGRES_DOWN).await,
            _ => ddl::run(manager, &sqlite_down()).await,
        }
    }
}
