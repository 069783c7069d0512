//! Turning domain errors into GraphQL errors with `extensions.code`, in one place.
//!
//! Codes: UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, RATE_LIMITED (with
//! `retryAfter` in seconds), UNAVAILABLE (the database could not be reached: try again), INTERNAL.
//! Internal causes are logged here and replaced by "internal error"; they are never sent.

use async_graphql::{ErrorExtensions, Response, ServerError, Value};

use crate::domain::Error;

/// Converts a domain error to a GraphQL error carrying its code ([`Error::code`]).
pub fn to_graphql(error: Error) -> async_graphql::Error {
    let code = error.code();
    match error {
        Error::Conflict { reason, message } => async_graphql::Error::new(message).extend_with(|_, e| {
            e.set("code", code);
            e.set("reason", reason);
        }),
        Error::Validation { field, message } => {
            async_graphql::Error::new(format!("{field}: {message}")).extend_with(|_, e| {
                e.set("code", code);
                e.set("field", field.as_str());
            })
        }
        Error::Rejected { ref errors, total } => {
            let listed: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| serde_json::json!({"row": e.row, "column": e.column, "message": e.message}))
                .collect();
            let listed = async_graphql::Value::from_json(serde_json::Value::Array(listed)).unwrap_or_default();
            async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("total", total as u64);
                e.set("errors", listed);
            })
        }
        Error::RateLimited { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("retryAfter", seconds);
            })
        }
        Error::Unavailable(cause) => {
            tracing::warn!(error = %cause, "the database is unavailable");
            async_graphql::Error::new("the database is unavailable; try again").extend_with(|_, e| e.set("code", code))
        }
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "internal error");
            async_graphql::Error::new("internal error").extend_with(|_, e| e.set("code", code))
        }
        other => {
            let message = other.to_string();
            async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
        }
    }
}

/// `.gql()` on a domain result: the only way resolvers surface domain errors.
pub trait ResultExt<T> {
    /// Maps the error with [`to_graphql`].
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}

/// Gives every error in a response a code. Request errors (parse, validation, limits) and
/// argument coercion failures are BAD_USER_INPUT; any other uncoded error came from a path
/// that bypassed [`to_graphql`], so its message is logged and hidden as INTERNAL.
pub fn finalize(response: &mut Response) {
    for error in &mut response.errors {
        if error_code(error).is_some() {
            continue;
        }
        // Errors outside any field (no path) are request errors: parse, validation, limits.
        if error.path.is_empty() || is_input_error(&error.message) {
            set_code(error, "BAD_USER_INPUT");
        } else {
            tracing::error!(message = %error.message, "uncoded resolver error");
            error.message = "internal error".into();
            set_code(error, "INTERNAL");
        }
    }
}

/// Puts `request_id` in the extensions of every INTERNAL error of `response` (after
/// [`finalize`]): what a caller reports, and what the request's log lines carry.
pub fn tag_internal(response: &mut Response, request_id: Option<&str>) {
    let Some(id) = request_id else { return };
    for error in &mut response.errors {
        if error_code(error).is_some_and(|code| *code == Value::from("INTERNAL")) {
            error.extensions.get_or_insert_with(Default::default).set("requestId", id);
        }
    }
}

/// The `extensions.code` of an error, if set.
pub fn error_code(error: &ServerError) -> Option<&Value> {
    error.extensions.as_ref().and_then(|e| e.get("code"))
}

fn set_code(error: &mut ServerError, code: &str) {
    error.extensions.get_or_insert_with(Default::default).set("code", code);
}

/// Argument coercion failures, as async-graphql words them: a value of the wrong type
/// (`Expected input type "DateTime", found 1700000000.`), one its scalar refuses (`Failed to
/// parse …`, `Invalid value …`), or a variable the request never defined.
fn is_input_error(message: &str) -> bool {
    message.starts_with("Failed to parse")
        || message.starts_with("Invalid value")
        || message.starts_with("Expected input type")
        || (message.starts_with("Variable ") && message.contains(" is not defined"))
}

/// A request-level error with a code, for the HTTP layer.
pub fn request_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    set_code(&mut error, code);
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::FileError;

    #[test]
    fn an_internal_error_names_its_request_and_others_do_not() {
        let mut internal = ServerError::new("boom", None);
        internal.path = vec![async_graphql::PathSegment::Field("order".into())];
        let mut response = Response::from_errors(vec![internal, ServerError::new("Unknown field", None)]);
        finalize(&mut response);
        tag_internal(&mut response, Some("req-1"));
        let ids: Vec<Option<&Value>> =
            response.errors.iter().map(|e| e.extensions.as_ref().and_then(|x| x.get("requestId"))).collect();
        assert_eq!(ids, [Some(&Value::from("req-1")), None]);
        assert_eq!(response.errors[0].message, "internal error", "the cause stays in the logs");
    }

    /// A refused file reaches the client with its errors by row and column and their count.
    #[test]
    fn a_refused_file_lists_its_errors_by_row_and_column() {
        let refused = Error::Rejected {
            errors: vec![
                FileError::at(3, "Subtotal", "does not follow"),
                FileError { row: 0, column: None, message: "empty".into() },
            ],
            total: 7,
        };
        let error = to_graphql(refused).into_server_error(async_graphql::Pos::default());
        let extensions = serde_json::to_value(error.extensions).unwrap_or_default();
        assert_eq!(extensions["code"], "BAD_USER_INPUT");
        assert_eq!(extensions["total"], 7);
        assert_eq!(
            extensions["errors"][0],
            serde_json::json!({"row": 3, "column": "Subtotal", "message": "does not follow"})
        );
        assert_eq!(extensions["errors"][1]["column"], serde_json::Value::Null);
        assert!(error.message.contains("7 errors"), "{}", error.message);
    }
}
