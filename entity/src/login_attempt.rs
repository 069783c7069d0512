//! Failed logins counted against an account or a client in the current window
//! (`domain::logins`): one row per subject.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_attempts")]
pub struct Model {
    /// `account:<sha-256 of the address>` or `client:<address or /64>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    /// Attempts counted in the window (one past the limit at most).
    pub failures: i64,
    /// When the window began, in seconds since the epoch.
    pub window_started_unix: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
