//! Reconciliation of vendors' statements (DOMAIN.md, "Reconciliation"; issue #10): what a
//! vendor billed the operator, matched against what was provisioned and billed downstream.
//! So far: reading and checking a statement (`statement`, format-independent) and its
//! first format, Partner Center's new-commerce reconciliation file (`partner_center`). The
//! import, the matcher and the report build on them.

pub mod partner_center;
pub mod statement;
