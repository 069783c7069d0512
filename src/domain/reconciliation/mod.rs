//! Reconciliation of vendors' statements (DOMAIN.md, "Reconciliation"; issue #10): what a
//! vendor billed the operator, matched against what was provisioned and billed downstream.
//! So far: reading and checking a statement (`statement`, format-independent), its first
//! format, Partner Center's new-commerce reconciliation file (`partner_center`), and the
//! import that stores a checked file once (`import`). The matcher and the report build on
//! them.

pub mod import;
pub mod partner_center;
pub mod statement;
