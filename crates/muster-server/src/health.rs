//! Health checks and the SCIM-shaped 404 and 405 answers.

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use muster_scim::ScimError;
use muster_store::TenantId;

use crate::error::ApiError;
use crate::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers a read.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .store()
        .list_tokens(&TenantId::default_tenant())
        .await?;
    Ok("ready\n")
}

/// Any path no route serves.
pub async fn not_found(uri: Uri) -> impl IntoResponse {
    ApiError::not_found(format!("no such endpoint '{}'", uri.path()))
}

/// A known path with a method it does not support.
pub async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::from(ScimError::status(
        405,
        format!("method {method} is not supported on '{}'", uri.path()),
    ))
}
