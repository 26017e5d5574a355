//! `ApiError`: the one place where errors become HTTP responses.
//!
//! Every failure is answered with an RFC 7644 section 3.12 body in
//! `application/scim+json`. Server-side failures (5xx) are logged with their
//! cause and answered with a generic detail, never the internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_scim::ScimError;
use muster_store::StoreError;

use crate::media::SCIM_JSON;

/// An error answered as a SCIM Error response.
#[derive(Debug)]
pub struct ApiError {
    error: ScimError,
    /// Extra headers (e.g. `WWW-Authenticate` on 401).
    www_authenticate: Option<&'static str>,
}

impl ApiError {
    /// `401` with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: &str) -> Self {
        ApiError {
            error: ScimError::status(401, detail),
            www_authenticate: Some("Bearer realm=\"muster\""),
        }
    }

    /// `403`: authenticated, but the token lacks the scope.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ScimError::status(403, detail).into()
    }

    /// `404` naming what was not found.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError::status(404, detail).into()
    }

    /// The protocol error inside.
    pub fn scim_error(&self) -> &ScimError {
        &self.error
    }
}

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        ApiError {
            error,
            www_authenticate: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let scim = match error {
            StoreError::NotFound(detail) => ScimError::status(404, detail),
            StoreError::Conflict(detail) => ScimError::uniqueness(detail),
            StoreError::PreconditionFailed { current } => ScimError::status(
                412,
                format!(
                    "If-Match does not match the current version W/\"{current}\"; read the resource again and retry"
                ),
            ),
            StoreError::Scim(scim) => scim,
            StoreError::Database(cause) => {
                tracing::error!(%cause, "storage failure");
                ScimError::status(500, "internal storage error; see the server log")
            }
        };
        scim.into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.error.to_response()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
