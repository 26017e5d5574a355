//! Soft-deleted users over the admin API (`admin` scope):
//! `GET /admin/v1/users/deleted`, `POST /admin/v1/users/{id}/restore` and
//! `POST /admin/v1/users/{id}/purge`. The procedures are
//! [`muster_core::lifecycle`]'s and [`muster_core::Session::restore_user`],
//! shared with `muster user deleted|restore|purge`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use muster_core::lifecycle::{deleted_users, purge_user};
use muster_core::tokens::Client;
use serde_json::json;

use crate::error::ApiError;
use crate::media::ScimResponse;
use crate::resources::{actor, session};
use crate::AppState;

/// The most tombstones one listing returns (newest first).
pub const MAX_LISTED: u64 = 10_000;

/// `GET /admin/v1/users/deleted`: the tenant's soft-deleted users, newest
/// first: id, `userName` (unless purged), when and by whom deleted, when
/// the retention ends, when and by whom purged.
pub async fn list_deleted(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let rows = deleted_users(state.store(), &client.tenant, MAX_LISTED).await?;
    Ok(ScimResponse::ok(json!({
        "totalResults": rows.len(),
        "Resources": rows,
    })))
}

/// `POST /admin/v1/users/{id}/restore` (`{id}`: the deleted user's id or
/// `userName`): the user as restored, with its `ETag` and `Location`.
pub async fn restore(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rendered = session.restore_user(&id).await?;
    Ok(ScimResponse {
        status: StatusCode::OK,
        etag: Some(muster_core::etag(rendered.version)),
        location: Some(rendered.location),
        body: rendered.body.unwrap_or_default(),
    })
}

/// `POST /admin/v1/users/{id}/purge`: erases a deleted user's personal
/// data now; answers with its skeleton.
pub async fn purge(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let actor = actor(&client, &headers);
    let purged = purge_user(state.store(), &client.tenant, &actor, &id).await?;
    Ok(ScimResponse::ok(json!(purged)))
}

/// Where the lifecycle semantics are described (README section
/// "Lifecycle: deactivate, delete, restore, purge"); `/ServiceProviderConfig`
/// names it as its `documentationUri`.
pub const LIFECYCLE_DOCUMENTATION_URI: &str =
    "https://github.com/muster-scim/muster#lifecycle-deactivate-delete-restore-purge";

/// `GET /admin/v1/lifecycle`: what `DELETE`, `active` false and an
/// offboarding lock mean in the caller's tenant (its `deleteMeans` and
/// retention, what a Group `DELETE` does), and where that is documented.
/// Kept out of `/ServiceProviderConfig`, whose schema strict clients hold
/// to the letter.
pub async fn lifecycle(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let settings =
        muster_core::lifecycle::lifecycle_settings(state.store(), &client.tenant).await?;
    Ok(ScimResponse::ok(json!({
        "documentationUri": LIFECYCLE_DOCUMENTATION_URI,
        "userDelete": settings.delete_means.as_str(),
        "softDeleteRetentionDays": settings.retention_days,
        "restoreByExternalId": true,
        "groupDelete": "hardDelete",
        "deactivate": {
            "entitlementsReleased": "immediately",
            "dataKept": true,
            "deliveredToTargets": "first, ahead of other changes",
        },
        "offboardingLock": {
            "reactivationWhileLocked": "ignored: active stays false, the rest of the write applies",
        },
    })))
}
