//! Discovery endpoints (RFC 7644 section 4): `/ServiceProviderConfig`,
//! `/Schemas` and `/ResourceTypes`, all read from the live schema registry so
//! a custom extension shows up as soon as it is declared.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Extension;
use muster_scim::message::LIST_RESPONSE_URN;
use muster_scim::{
    ResourceType, Schema, SchemaRegistry, ScimError, ServiceProviderConfig, ServiceProviderLimits,
};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::media::ScimResponse;
use crate::AppState;
use muster_core::tokens::Client;

/// How long a cursor stays valid, in seconds. Cursors are keyset positions
/// that never expire; this is the minimum a client may rely on.
const CURSOR_TIMEOUT_SECS: u64 = 3600;

/// `GET /ServiceProviderConfig`: the limits the server enforces.
pub async fn service_provider_config(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let config = &state.config;
    let to_u64 = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
    let mut document = ServiceProviderConfig::new(&ServiceProviderLimits {
        max_bulk_operations: to_u64(config.limits.max_bulk_operations),
        max_payload_size: to_u64(config.max_payload_bytes),
        max_results: config.limits.max_page_size,
        default_page_size: config.limits.default_page_size,
        max_page_size: config.limits.max_page_size,
        cursor_paging: true,
        cursor_timeout: Some(CURSOR_TIMEOUT_SECS),
    });
    document.documentation_uri = Some(crate::lifecycle::LIFECYCLE_DOCUMENTATION_URI.to_owned());
    document.meta = Some(json!({
        "resourceType": "ServiceProviderConfig",
        "location": format!("{}/ServiceProviderConfig", state.scim_base(&headers, &client.tenant)),
    }));
    let body = serde_json::to_value(document)
        .map_err(|error| muster_core::Error::Internal(format!("ServiceProviderConfig: {error}")))?;
    Ok(ScimResponse::ok(body))
}

fn schema_json(schema: &Schema, base: &str) -> Value {
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "schemas".into(),
            json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]),
        );
        object.insert(
            "meta".into(),
            json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{}", schema.id)}),
        );
    }
    value
}

fn resource_type_json(resource_type: &ResourceType, base: &str) -> Value {
    let mut value = serde_json::to_value(resource_type).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "schemas".into(),
            json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]),
        );
        object.insert(
            "meta".into(),
            json!({
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", resource_type.id),
            }),
        );
    }
    value
}

fn list(resources: Vec<Value>) -> ScimResponse {
    ScimResponse::ok(json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    }))
}

/// `GET /Schemas`.
pub async fn schemas(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let base = state.scim_base(&headers, &client.tenant);
    let registry = registry(&state, &client).await?;
    Ok(list(
        registry
            .schemas()
            .iter()
            .map(|schema| schema_json(schema, &base))
            .collect(),
    ))
}

/// `GET /Schemas/{id}`.
pub async fn schema(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let registry = registry(&state, &client).await?;
    let schema = registry
        .schema(&id)
        .ok_or_else(|| ScimError::status(404, format!("no schema '{id}'")))?;
    Ok(ScimResponse::ok(schema_json(
        schema,
        &state.scim_base(&headers, &client.tenant),
    )))
}

/// `GET /ResourceTypes`.
pub async fn resource_types(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let base = state.scim_base(&headers, &client.tenant);
    let registry = registry(&state, &client).await?;
    Ok(list(
        registry
            .resource_types()
            .iter()
            .map(|rt| resource_type_json(rt, &base))
            .collect(),
    ))
}

/// `GET /ResourceTypes/{id}`.
pub async fn resource_type(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let registry = registry(&state, &client).await?;
    let resource_type = registry
        .resource_type(&id)
        .ok_or_else(|| ScimError::status(404, format!("no resource type '{id}'")))?;
    Ok(ScimResponse::ok(resource_type_json(
        resource_type,
        &state.scim_base(&headers, &client.tenant),
    )))
}

/// The caller's tenant's registry: built-in schemas plus its extensions.
async fn registry(state: &AppState, client: &Client) -> Result<Arc<SchemaRegistry>, ApiError> {
    let view = state.service.view(&client.tenant).await?;
    Ok(Arc::clone(&view.registry))
}
