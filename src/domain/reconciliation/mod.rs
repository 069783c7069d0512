//! Reconciliation of vendors' statements (DOMAIN.md, "Reconciliation"; issue #10): what a
//! vendor billed the operator, matched against what was provisioned and billed downstream.
//! So far: reading and checking a statement (`statement`, format-independent), its first
//! format, Partner Center's new-commerce reconciliation file (`partner_center`), and the
//! import that stores a checked file once (`import`), matching its rows against our
//! subscriptions and charges (`matcher`, which reads and writes) and judging each group
//! (`matching`, a pure function). The report builds on the findings.

mod charged;
pub mod import;
pub mod matcher;
pub mod matching;
#[cfg(test)]
mod model;
pub mod partner_center;
pub mod report;
pub mod resolution;
mod sides;
pub mod statement;
