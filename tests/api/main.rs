//! Integration tests: the real server on a random port, a fresh database per test, real
//! GraphQL documents over HTTP. SQLite by default; PostgreSQL when `DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod helpers;

mod admission;
mod after_commit;
mod api_keys;
mod auth;
mod bad_input;
mod billing;
mod billing_defects;
mod browser;
mod catalog;
mod catalog_delta;
mod catalog_direct;
mod cors;
mod cut_proxy;
mod documents;
mod event_delivery;
mod fuzz;
mod graphql_http_audit;
mod http;
mod introspection;
mod layering;
mod leakage;
mod leaks;
mod live;
mod live_events;
mod logins;
mod metrics;
mod operations;
mod orders;
mod overflow;
mod pages;
mod persisted;
mod pg_cluster;
mod processes;
mod provisioning;
mod rate_limits;
mod reconciliation;
mod reconciliation_api;
mod reliability;
mod reports;
mod request_ids;
mod scale;
mod shutdown;
mod simulation;
mod startup;
mod statement_generator;
mod storage;
mod subscriptions;
mod tenancy;
mod vendor_sync;
mod webhooks;
mod workers;
mod writes;
