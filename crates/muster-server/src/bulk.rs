//! `POST /Bulk` (RFC 7644 section 3.7): parsed here, run by
//! [`muster_core::bulk::run_bulk`].

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Extension;
use muster_core::tokens::Client;
use muster_scim::message::BulkRequest;

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};
use crate::resources::session;
use crate::AppState;

/// `POST /Bulk`.
pub async fn bulk(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let request = BulkRequest::from_json(&body)?;
    let session = session(&state, &client, &headers).await?;
    let response = muster_core::bulk::run_bulk(&session, &request).await?;
    let body = serde_json::to_value(response)
        .map_err(|error| muster_core::Error::Internal(format!("bulk response: {error}")))?;
    Ok(ScimResponse::ok(body))
}
