//! The sync admin API (`admin` scope): downstream targets
//! (`/admin/v1/targets`), their dead letters, provision on demand, the
//! end-to-end explain of a user at a target, and `GET /metrics`. The
//! procedures are [`muster_sync::Targets`], shared with `muster target ...`
//! and `muster sync ...`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use muster_core::tokens::Client;
use muster_scim::{ScimError, ScimType};
use muster_store::ResourceId;
use muster_sync::{SyncError, Targets};
use muster_targets::{DocumentError, Problem, Secret, TargetDocument};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};
use crate::resources::actor;
use crate::AppState;

/// A sync error as a SCIM error: a refused document is `400 invalidValue`
/// naming every field and reason.
fn api_error(error: SyncError) -> ApiError {
    match error {
        SyncError::Document(refused) => {
            ScimError::invalid_value(format!("the target document was refused: {refused}")).into()
        }
        SyncError::NotFound(detail) => ScimError::status(404, detail).into(),
        SyncError::Store(error) => error.into(),
        SyncError::Core(error) => error.into(),
        SyncError::Config(detail) => ScimError::invalid_value(detail).into(),
        SyncError::Paused { target, reason } => {
            ScimError::status(409, format!("target {target} is paused: {reason}")).into()
        }
    }
}

/// Tells the engine a target changed, so its worker starts or stops now.
fn wake_engine(state: &AppState) {
    if let Some(sync) = &state.sync {
        sync.engine.wake();
    }
}

fn targets(state: &AppState) -> Result<&Targets, ApiError> {
    state
        .sync
        .as_ref()
        .map(|sync| &sync.targets)
        .ok_or_else(|| {
            ScimError::status(501, "the sync engine is not enabled on this server").into()
        })
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|error| muster_core::Error::Internal(format!("sync: {error}")).into())
}

/// The query parameters, or a `400 invalidValue` naming what the route
/// takes (`takes`).
fn options<T>(query: Result<Query<T>, QueryRejection>, takes: &str) -> Result<T, ApiError> {
    query.map(|Query(options)| options).map_err(|rejection| {
        ScimError::invalid_value(format!(
            "query parameters: {}; {takes}",
            rejection.body_text()
        ))
        .into()
    })
}

/// A dead letter's id from the path: a `400 invalidValue` naming the id
/// and what was expected, rather than axum's plain-text rejection.
fn letter_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>().map_err(|_| {
        ScimError::invalid_value(format!(
            "'{}' is not a dead letter id: expected a whole number from 0 to {}",
            id.chars().take(64).collect::<String>(),
            u64::MAX
        ))
        .into()
    })
}

/// `GET /admin/v1/targets`: every target, secrets redacted, with its state.
pub async fn list_targets(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let views = targets(&state)?
        .list(&client.tenant)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(json!({
        "totalResults": views.len(),
        "Resources": to_json(&views)?,
    })))
}

/// `GET /admin/v1/targets/{name}`.
pub async fn get_target(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(name): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let view = targets(&state)?
        .get(&client.tenant, &name)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(to_json(&view)?))
}

/// `PUT /admin/v1/targets/{name}` with a target document (JSON): `200`
/// with the stored target, secrets redacted.
pub async fn put_target(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(name): Path<String>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let document = TargetDocument::from_value(body).map_err(|refused| {
        ApiError::from(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("the target document was refused: {refused}"),
        ))
    })?;
    // `{"sealed": ...}` is how Muster stores a secret, never what a client
    // gives: refused rather than silently read as "keep the stored one".
    let planted: Vec<Problem> = document
        .secrets()
        .into_iter()
        .filter(|(_, secret)| matches!(secret, Secret::Sealed { .. }))
        .map(|(field, _)| {
            Problem::new(
                field,
                "{\"sealed\": ...} is how Muster stores a secret and is not taken from a \
                 client: give the secret's value, {\"env\": \"MUSTER_TARGET_...\"}, or \
                 {\"redacted\": true} to keep the stored one",
            )
        })
        .collect();
    if !planted.is_empty() {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!(
                "the target document was refused: {}",
                DocumentError { problems: planted }
            ),
        )
        .into());
    }
    let targets = targets(&state)?;
    // A secret kept as `{"redacted": true}` goes only where it went before.
    match targets.get(&client.tenant, &name).await {
        Ok(stored) => {
            let problems = document.kept_secret_problems(&stored.document);
            if !problems.is_empty() {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!(
                        "the target document was refused: {}",
                        DocumentError { problems }
                    ),
                )
                .into());
            }
        }
        Err(SyncError::NotFound(_)) => {}
        Err(error) => return Err(api_error(error)),
    }
    let view = targets
        .apply(
            &client.tenant,
            &actor(&client, &headers),
            Some(&name),
            document,
        )
        .await
        .map_err(api_error)?;
    wake_engine(&state);
    Ok(ScimResponse::ok(to_json(&view)?))
}

/// `DELETE /admin/v1/targets/{name}`: `204`.
pub async fn delete_target(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    targets(&state)?
        .remove(&client.tenant, &actor(&client, &headers), &name)
        .await
        .map_err(api_error)?;
    wake_engine(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/v1/targets/{name}/resume`: resumes a paused target,
/// confirming the removals that paused it.
pub async fn resume_target(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let targets = targets(&state)?;
    targets
        .resume(&client.tenant, &actor(&client, &headers), &name)
        .await
        .map_err(api_error)?;
    let view = targets
        .get(&client.tenant, &name)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(to_json(&view)?))
}

/// Query parameters of the dead-letter list.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LetterOptions {
    /// Only this target's.
    target: Option<String>,
}

/// `GET /admin/v1/sync/dead-letters[?target=T]`.
pub async fn dead_letters(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    query: Result<Query<LetterOptions>, QueryRejection>,
) -> Result<ScimResponse, ApiError> {
    let options = options(query, "the list takes only target (a target's name)")?;
    let letters = targets(&state)?
        .dead_letters(&client.tenant, options.target.as_deref())
        .await
        .map_err(api_error)?;
    let resources: Vec<Value> = letters
        .iter()
        .map(|letter| {
            json!({
                "id": letter.id,
                "target": letter.target,
                "resourceType": letter.resource_type,
                "resourceId": letter.resource_id.0,
                "request": letter.request,
                "response": letter.response,
                "reason": letter.reason,
                "at": letter.at,
            })
        })
        .collect();
    Ok(ScimResponse::ok(json!({
        "totalResults": resources.len(),
        "Resources": resources,
    })))
}

/// `POST /admin/v1/sync/dead-letters/{id}/retry`: delivers the resource
/// again now.
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let id = letter_id(&id)?;
    let delivered = targets(&state)?
        .retry(&client.tenant, id)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(to_json(&delivered)?))
}

/// `DELETE /admin/v1/sync/dead-letters/{id}`: discards it.
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = letter_id(&id)?;
    targets(&state)?
        .discard(&client.tenant, id)
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query parameters of provision on demand.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ProvisionOptions {
    /// Only show the requests that would be sent.
    dry_run: bool,
}

/// `POST /admin/v1/users/{id}/targets/{name}/provision[?dryRun=true]`:
/// delivers one user to one target now (`{id}` is an id or a userName).
pub async fn provision_user(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path((user, name)): Path<(String, String)>,
    query: Result<Query<ProvisionOptions>, QueryRejection>,
) -> Result<ScimResponse, ApiError> {
    let options = options(query, "provision takes only dryRun (true or false)")?;
    let targets = targets(&state)?;
    let id = targets
        .find_user(&client.tenant, &user)
        .await
        .map_err(api_error)?;
    let delivered = targets
        .deliver_one(&client.tenant, &name, "User", &id, options.dry_run)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(to_json(&delivered)?))
}

/// `GET /admin/v1/users/{id}/targets/{name}`: the end-to-end explain of
/// one user at one target (`{id}` is an id or a userName).
pub async fn explain_user(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path((user, name)): Path<(String, String)>,
) -> Result<ScimResponse, ApiError> {
    let targets = targets(&state)?;
    let id: ResourceId = targets
        .find_user(&client.tenant, &user)
        .await
        .map_err(api_error)?;
    let explanation = targets
        .explain(&client.tenant, &name, &id)
        .await
        .map_err(api_error)?;
    Ok(ScimResponse::ok(to_json(&explanation)?))
}

/// `GET /metrics`: the sync engine's metrics in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .sync
        .as_ref()
        .map(|sync| sync.engine.metrics().encode())
        .unwrap_or_default();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
