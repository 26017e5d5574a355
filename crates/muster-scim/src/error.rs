//! The one protocol error type, shaped after RFC 7644 section 3.12.
//!
//! Every failure the protocol layer can report carries the HTTP status it maps
//! to, the `scimType` keyword where the RFC defines one, and a `detail` that
//! names the attribute or position at fault and what was expected.

use serde::{Deserialize, Serialize};

/// The `scimType` error keywords of RFC 7644 section 3.12 and RFC 9865.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    /// The filter syntax was invalid or a limit was exceeded.
    InvalidFilter,
    /// The request would return more results than the server allows.
    TooMany,
    /// A uniqueness constraint would be violated.
    Uniqueness,
    /// The request tried to modify an attribute its mutability forbids.
    Mutability,
    /// The request body did not conform to the message or resource schema.
    InvalidSyntax,
    /// A PATCH `path` was malformed.
    InvalidPath,
    /// A PATCH `path` matched nothing it could act on.
    NoTarget,
    /// A value had the wrong type, was missing or otherwise unacceptable.
    InvalidValue,
    /// The protocol version is not supported.
    InvalidVers,
    /// The request carried sensitive data in a place it must not (e.g. a URL).
    Sensitive,
    /// A paging cursor was malformed or unknown (RFC 9865).
    InvalidCursor,
    /// A paging cursor has expired (RFC 9865).
    ExpiredCursor,
}

impl ScimType {
    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
        }
    }
}

/// A SCIM protocol error: HTTP status, optional `scimType` and a human detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.map(ScimType::as_str).unwrap_or("error"))]
pub struct ScimError {
    /// HTTP status code the error maps to.
    pub status: u16,
    /// RFC 7644 `scimType`, where the RFC defines one for the situation.
    pub scim_type: Option<ScimType>,
    /// What was wrong, naming the attribute, path or position.
    pub detail: String,
}

impl ScimError {
    /// A 400 error with the given `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// `400 invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// `400 invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// `400 invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// `400 invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// `400 mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// `400 noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// `409 uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: detail.into(),
        }
    }

    /// An error with a status and no `scimType` (404, 412, 413, ...).
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// Prefixes the detail with context, keeping status and `scimType`.
    ///
    /// Used to say which PATCH operation or bulk operation failed.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }

    /// The RFC 7644 section 3.12 error body.
    pub fn to_response(&self) -> crate::message::ErrorResponse {
        crate::message::ErrorResponse::from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_status_and_type() {
        let error = ScimError::invalid_value("expected a string").context("Operations[1]");
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert_eq!(error.detail, "Operations[1]: expected a string");
    }
}
