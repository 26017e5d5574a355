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

/// The `/ServiceProviderConfig` extension that says what `DELETE` and
/// `active` mean in the tenant, and where that is documented.
pub const LIFECYCLE_URN: &str =
    "urn:muster:params:scim:schemas:extension:lifecycle:2.0:ServiceProviderConfig";

/// Where the lifecycle semantics are described (README section
/// "Lifecycle: deactivate, delete, restore, purge").
pub const LIFECYCLE_DOCUMENTATION_URI: &str =
    "https://github.com/muster-scim/muster#lifecycle-deactivate-delete-restore-purge";

/// Adds [`LIFECYCLE_URN`] to a `/ServiceProviderConfig` body: the tenant's
/// `deleteMeans` and retention, what a Group `DELETE` does, and the
/// documentation's address.
pub async fn describe_lifecycle(
    state: &AppState,
    tenant: &muster_store::TenantId,
    body: &mut serde_json::Value,
) -> Result<(), ApiError> {
    let settings = muster_core::lifecycle::lifecycle_settings(state.store(), tenant).await?;
    let Some(object) = body.as_object_mut() else {
        return Ok(());
    };
    if let Some(schemas) = object
        .get_mut("schemas")
        .and_then(serde_json::Value::as_array_mut)
    {
        schemas.push(json!(LIFECYCLE_URN));
    }
    object.insert(
        LIFECYCLE_URN.to_owned(),
        json!({
            "documentationUri": LIFECYCLE_DOCUMENTATION_URI,
            "userDelete": settings.delete_means.as_str(),
            "softDeleteRetentionDays": settings.retention_days,
            "restoreByExternalId": true,
            "groupDelete": "hardDelete",
        }),
    );
    Ok(())
}
