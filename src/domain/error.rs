//! The one error type of the domain layer; `graphql::errors` maps it to `extensions.code`.

use sea_orm::{DbErr, SqlErr};

/// Everything a domain operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credentials, or credentials that could not be verified.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is authenticated but its role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or belongs to another tenant (the two are indistinguishable).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with existing state (a duplicate SKU, a reused key).
    #[error("{message}")]
    Conflict {
        /// A machine-readable reason, sent as `extensions.reason`.
        reason: &'static str,
        /// What conflicted, for a person.
        message: String,
    },
    /// An input failed validation; `field` is its path in the input (`input.minQuantity`).
    #[error("{field}: {message}")]
    Validation {
        /// Path of the offending input field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The object's current state does not allow the operation.
    #[error("{0}")]
    InvalidTransition(String),
    /// A file (a vendor's statement) refused whole: its errors by row and column (the first
    /// ones), and how many it has.
    #[error("the file was refused: {total} errors, the first at row {}", errors.first().map_or(0, |e| e.row))]
    Rejected {
        /// The errors reported, in file order.
        errors: Vec<FileError>,
        /// How many errors the file has in all.
        total: usize,
    },
    /// Too many attempts (logins): the caller may try again after `retry_after`.
    #[error("too many attempts; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long to wait, sent as `extensions.retryAfter` (whole seconds, at least 1).
        retry_after: std::time::Duration,
    },
    /// The database could not be reached (a restart, a failover, the pool exhausted): the
    /// caller may try again (with the same idempotency key, for a write). The cause is logged,
    /// never sent.
    #[error("the database is unavailable; try again")]
    Unavailable(#[source] Cause),
    /// A fault the caller cannot fix; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// What is wrong with a file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The row (the header is row 1; 0 for the file as a whole).
    pub row: u64,
    /// The column, when one is at fault.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl FileError {
    /// An error in `column` of `row`.
    pub fn at(row: u64, column: &str, message: impl Into<String>) -> Self {
        Self { row, column: Some(column.to_owned()), message: message.into() }
    }
}

/// The boxed cause of an internal error, so `Error` stays small and `Send + Sync`.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The domain's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation failure of the input field at `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    /// A conflict with a machine-readable reason.
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { reason, message: message.into() }
    }

    /// The error's stable code, as clients see it (`extensions.code` in GraphQL; the
    /// `code` of an export's error body): UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT,
    /// BAD_USER_INPUT (validation and invalid transitions), RATE_LIMITED, UNAVAILABLE or
    /// INTERNAL.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict { .. } => "CONFLICT",
            Self::Validation { .. } | Self::InvalidTransition(_) | Self::Rejected { .. } => "BAD_USER_INPUT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// An internal error from any cause.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) { Self::Unavailable(Box::new(error)) } else { Self::Internal(Box::new(error)) }
    }
}

/// Whether a database error means the database could not be reached or could not take the
/// work right now (worth trying again), rather than a fault in what was asked.
fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else { return false };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Database(database) => {
            let Some(code) = database.code() else { return false };
            if database.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // SQLite: busy or locked past the busy timeout (5, 6 and their extended codes).
                code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
            } else {
                // PostgreSQL: connection exceptions (08…, but not a protocol violation, a
                // bug), shutting down or starting up (57P01-03), too many connections (53300).
                (code.starts_with("08") && code != "08P01")
                    || ["57P01", "57P02", "57P03", "53300"].contains(&code.as_ref())
            }
        }
        _ => false,
    }
}

/// Whether `error` is PostgreSQL ending a transaction that lost to a concurrent one (a
/// deadlock, 40P01, or a serialization failure, 40001): trying the whole transaction again
/// is the remedy.
pub fn lost_to_a_concurrent_transaction(error: &Error) -> bool {
    use sea_orm::RuntimeErr;
    let Error::Internal(cause) = error else { return false };
    let Some(DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        cause.downcast_ref::<DbErr>()
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(database) = sqlx.as_ref() else { return false };
    database.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>().is_some()
        && database.code().is_some_and(|code| code == "40P01" || code == "40001")
}

/// Maps a unique-constraint violation to `conflict`, anything else to `Internal`.
///
/// Constraint names are matched as substrings of the database's message, which both
/// PostgreSQL and SQLite include (SQLite names the columns instead, so callers pass both).
pub fn map_unique_violation(error: DbErr, needles: &[&str], conflict: Error) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message))
            if needles.is_empty() || needles.iter().any(|needle| message.contains(needle)) =>
        {
            conflict
        }
        _ => Error::from(error),
    }
}
