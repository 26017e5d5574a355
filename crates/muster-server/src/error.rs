//! `ApiError`: the one place where errors become HTTP responses.
//!
//! Every failure is answered with an RFC 7644 section 3.12 body in
//! `application/scim+json`. Server-side failures (5xx) are logged with their
//! cause where they happen ([`muster_core::Error::into_scim`]) and answered
//! with a generic detail and the request id (`auth::authenticate_and_log`),
//! never the internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_scim::ScimError;

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
}

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        ApiError {
            error,
            www_authenticate: None,
        }
    }
}

impl From<muster_core::Error> for ApiError {
    fn from(error: muster_core::Error) -> Self {
        error.into_scim().into()
    }
}

impl From<muster_store::StoreError> for ApiError {
    fn from(error: muster_store::StoreError) -> Self {
        muster_core::Error::from(error).into()
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
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Busy queues drain in milliseconds; a second is a polite wait.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
