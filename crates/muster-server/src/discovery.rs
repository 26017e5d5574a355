//! Discovery endpoints (RFC 7644 section 4): `/ServiceProviderConfig`,
//! `/Schemas` and `/ResourceTypes`, all read from the live schema registry so
//! a custom extension shows up as soon as it is declared.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use muster_scim::{ResourceType, Schema, ScimError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::media::ScimResponse;
use crate::resources::base_url;
use crate::AppState;

const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// `GET /ServiceProviderConfig`.
pub async fn service_provider_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ScimResponse {
    let config = &state.config;
    let base = base_url(&headers);
    ScimResponse::ok(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/muster-scim/muster#readme",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": config.max_bulk_operations,
            "maxPayloadSize": config.max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": config.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": config.default_page_size,
            "maxPageSize": config.max_page_size,
            "cursorTimeout": 3600,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token minted by 'muster token create'.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    }))
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
        "schemas": [LIST_RESPONSE],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    }))
}

/// `GET /Schemas`.
pub async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> ScimResponse {
    let base = base_url(&headers);
    let registry = state.registry();
    list(
        registry
            .schemas()
            .iter()
            .map(|schema| schema_json(schema, &base))
            .collect(),
    )
}

/// `GET /Schemas/{id}`.
pub async fn schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let registry = state.registry();
    let schema = registry
        .schema(&id)
        .ok_or_else(|| ScimError::status(404, format!("no schema '{id}'")))?;
    Ok(ScimResponse::ok(schema_json(schema, &base_url(&headers))))
}

/// `GET /ResourceTypes`.
pub async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> ScimResponse {
    let base = base_url(&headers);
    let registry = state.registry();
    list(
        registry
            .resource_types()
            .iter()
            .map(|rt| resource_type_json(rt, &base))
            .collect(),
    )
}

/// `GET /ResourceTypes/{id}`.
pub async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let registry = state.registry();
    let resource_type = registry
        .resource_type(&id)
        .ok_or_else(|| ScimError::status(404, format!("no resource type '{id}'")))?;
    Ok(ScimResponse::ok(resource_type_json(
        resource_type,
        &base_url(&headers),
    )))
}
