//! Switchyard: a GraphQL billing and provisioning backend for cloud channel marketplaces.
//!
//! Layers depend one way: `http` → `graphql` → `domain` → `entity`. See ARCHITECTURE.md.

pub mod auth;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod rate_limit;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod vendors;
pub mod workers;
