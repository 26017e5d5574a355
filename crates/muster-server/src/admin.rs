//! The admin API (`/admin/v1`, `admin` scope): custom schemas declared at
//! run time, the attribute explain table, tenant settings, and the values a
//! resource holds outside its schemas. The procedures are `muster-core`'s
//! ([`muster_core::schemas`], [`muster_core::explain`],
//! [`muster_core::settings`]), shared with the `muster` CLI.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use muster_core::explain::explain;
use muster_core::schemas::{apply_schema, remove_schema, ApplyOptions, SchemaReport};
use muster_core::settings::{put_settings as store_settings, settings, Settings};
use muster_core::tokens::Client;
use muster_scim::{remove_never_returned, ScimError};
use muster_store::{ResourceId, SchemaRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};
use crate::resources::{actor, session};
use crate::AppState;

/// A stored custom schema as the admin API shows it.
fn schema_json(record: &SchemaRecord) -> Value {
    json!({
        "id": record.urn,
        "resourceType": record.resource_type,
        "required": record.required,
        "searchable": record.searchable,
        "updated": record.updated,
        "updatedBy": record.client,
        "schema": record.document,
    })
}

/// `GET /admin/v1/schemas`: the tenant's custom schemas.
pub async fn list_schemas(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let records = state.store().list_schemas(&client.tenant).await?;
    let items: Vec<Value> = records.iter().map(schema_json).collect();
    Ok(ScimResponse::ok(json!({
        "totalResults": items.len(),
        "Resources": items,
    })))
}

/// `GET /admin/v1/schemas/{urn}`.
pub async fn get_schema(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(urn): Path<String>,
) -> Result<ScimResponse, ApiError> {
    state
        .store()
        .list_schemas(&client.tenant)
        .await?
        .iter()
        .find(|record| record.urn.eq_ignore_ascii_case(&urn))
        .map(|record| ScimResponse::ok(schema_json(record)))
        .ok_or_else(|| ApiError::not_found(format!("no custom schema '{urn}'")))
}

/// `PUT /admin/v1/schemas/{urn}?resourceType=&required=&force=&dryRun=`:
/// `201` when declared, `200` when changed or on a dry run, with the report.
pub async fn put_schema(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(urn): Path<String>,
    query: Result<Query<ApplyOptions>, QueryRejection>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let options = query_options(query)?;
    let actor = actor(&client, &headers);
    let report = apply_schema(
        state.store(),
        &client.tenant,
        &actor,
        &body,
        Some(&urn),
        &options,
    )
    .await?;
    state.service.invalidate(&client.tenant);
    let status = if report.created && report.applied {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ScimResponse {
        status,
        ..ScimResponse::ok(report_json(&report)?)
    })
}

/// Query parameters of `DELETE /admin/v1/schemas/{urn}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RemoveOptions {
    /// Remove the values stored under the schema too.
    force: bool,
    /// Only report.
    dry_run: bool,
}

/// `DELETE /admin/v1/schemas/{urn}?force=&dryRun=`.
pub async fn delete_schema(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(urn): Path<String>,
    query: Result<Query<RemoveOptions>, QueryRejection>,
) -> Result<ScimResponse, ApiError> {
    let options = query_options(query)?;
    let actor = actor(&client, &headers);
    let report = remove_schema(
        state.store(),
        &client.tenant,
        &actor,
        &urn,
        options.force,
        options.dry_run,
    )
    .await?;
    state.service.invalidate(&client.tenant);
    Ok(ScimResponse::ok(report_json(&report)?))
}

/// The options of a query string, or a SCIM error body saying what is
/// wrong with them (`?dryRun=yes`), not axum's plain-text rejection.
fn query_options<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(options)| options).map_err(|rejection| {
        ScimError::invalid_value(format!(
            "query parameters: {}; force and dryRun take true or false, required true or false, resourceType a resource type",
            rejection.body_text()
        ))
        .into()
    })
}

fn report_json(report: &SchemaReport) -> Result<Value, ApiError> {
    serde_json::to_value(report)
        .map_err(|error| muster_core::Error::Internal(format!("schema report: {error}")).into())
}

/// `GET /admin/v1/attributes`: the explain table.
pub async fn attributes(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let view = state.service.view(&client.tenant).await?;
    let usage = state.store().attribute_usage(&client.tenant).await?;
    let schemas = state.store().list_schemas(&client.tenant).await?;
    let rows = explain(&view.registry, &usage, &schemas);
    Ok(ScimResponse::ok(json!({
        "totalResults": rows.len(),
        "Resources": rows,
    })))
}

/// `GET /admin/v1/settings`.
pub async fn get_settings(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let settings = settings(state.store(), &client.tenant).await?;
    Ok(ScimResponse::ok(json!(settings)))
}

/// `PUT /admin/v1/settings` with `{"undeclaredAttributes": "reject" | "capture"}`.
pub async fn put_settings(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let settings = Settings::from_json(body)?;
    let actor = actor(&client, &headers);
    store_settings(state.store(), &client.tenant, &actor, &settings).await?;
    state.service.invalidate(&client.tenant);
    Ok(ScimResponse::ok(json!(settings)))
}

/// `GET /admin/v1/resources/{endpoint}/{id}`: a resource as stored, with
/// the undeclared values captured for it (never shown to SCIM clients).
pub async fn stored_resource(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path((endpoint, id)): Path<(String, String)>,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let rt = session.resource_type(&endpoint)?;
    let stored = state
        .store()
        .get(&client.tenant, &rt.id, &ResourceId(id), false)
        .await?;
    let mut resource = stored.resource;
    remove_never_returned(session.registry(), &rt, &mut resource);
    Ok(ScimResponse::ok(json!({
        "resourceType": rt.id,
        "id": stored.id.0,
        "version": stored.version,
        "resource": resource,
        "unmapped": Value::Object(Map::clone(&stored.unmapped)),
    })))
}
