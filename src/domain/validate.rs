//! Small input parsers shared by the domain's write operations.

use super::error::{Error, Result};

/// A trimmed, non-empty string of at most `max` characters.
pub fn text(value: &str, max: usize, field: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Error::validation(field, format!("at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::validation(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A trimmed free text of at most `max` characters, possibly empty, possibly of several
/// lines: line breaks and tabs are kept, every other control character (NUL among them,
/// which PostgreSQL refuses in text) is refused.
pub fn free_text(value: &str, max: usize, field: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(Error::validation(field, format!("at most {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::validation(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An identifier-like code: letters, digits, `-`, `_` and `.`, 1 to `max` characters.
pub fn code(value: &str, max: usize, field: &str) -> Result<String> {
    let value = text(value, max, field)?;
    if value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')) {
        Ok(value)
    } else {
        Err(Error::validation(field, "only letters, digits, '-', '_', '.' and ':' are allowed"))
    }
}

/// An ISO 3166-1 alpha-2 country code (two upper-case letters).
pub fn country(value: &str, field: &str) -> Result<String> {
    if value.len() == 2 && value.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(value.to_owned())
    } else {
        Err(Error::validation(field, "must be an ISO 3166-1 alpha-2 code such as \"DE\""))
    }
}
