//! `POST /Bulk` (RFC 7644 section 3.7).
//!
//! Each operation runs through the same code as its single-resource endpoint
//! and commits on its own, so a crash mid-request leaves whole operations
//! applied or not, never half of one. `bulkId:` references in paths and data
//! are resolved to the ids of resources created earlier in the request; an
//! operation whose reference is not yet known waits until it is.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Extension;
use muster_scim::message::{
    BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest, BulkResponse,
};
use muster_scim::projection::Projection;
use muster_scim::{ResourceType, ScimError};
use muster_store::Precondition;
use serde_json::Value;

use crate::auth::Client;
use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};
use crate::resources::{self, Context};
use crate::AppState;

/// `POST /Bulk`.
pub async fn bulk(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ApiError> {
    let request = BulkRequest::from_json(&body)?;
    request.check_max_operations(state.config.max_bulk_operations)?;
    let ctx = Context::load(state, client, &headers).await?;
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<BulkOperationResponse>> = vec![None; request.operations.len()];
    let mut pending: Vec<usize> = (0..request.operations.len()).collect();
    let mut errors = 0u64;
    let fail_on_errors = request.fail_on_errors.unwrap_or(u64::MAX);
    'passes: while !pending.is_empty() {
        let mut progressed = false;
        let mut still_pending = Vec::new();
        for index in pending {
            let operation = &request.operations[index];
            let (path, data) = match resolve_references(operation, &created) {
                Some(resolved) => resolved,
                None => {
                    still_pending.push(index);
                    continue;
                }
            };
            progressed = true;
            let response = run(&ctx, operation, &path, data).await;
            if let (Some(bulk_id), Some(location)) = (&operation.bulk_id, &response.location) {
                if response.status.starts_with('2') {
                    if let Some(id) = location.rsplit('/').next() {
                        created.insert(bulk_id.clone(), id.to_owned());
                    }
                }
            }
            if !response.status.starts_with('2') {
                errors += 1;
            }
            results[index] = Some(response);
            if errors >= fail_on_errors {
                break 'passes;
            }
        }
        if !progressed {
            for index in still_pending {
                let operation = &request.operations[index];
                let error = ScimError::invalid_value(
                    "a bulkId this operation references is not created by any other operation of the request (or the references form a cycle)",
                );
                results[index] = Some(BulkOperationResponse::failure(operation, &error));
            }
            break;
        }
        pending = still_pending;
    }
    let operations = results.into_iter().flatten().collect();
    let response = serde_json::to_value(BulkResponse::new(operations))
        .map_err(|error| ScimError::status(500, format!("bulk response: {error}")))?;
    Ok(ScimResponse::ok(response))
}

/// The operation's path and data with `bulkId:` references replaced, or
/// `None` while a referenced bulkId has not been created yet.
fn resolve_references(
    operation: &BulkOperation,
    created: &HashMap<String, String>,
) -> Option<(String, Option<Value>)> {
    let path = replace_in_text(&operation.path, created)?;
    let data = match &operation.data {
        Some(data) => Some(replace_in_value(data, created)?),
        None => None,
    };
    Some((path, data))
}

fn replace_in_text(text: &str, created: &HashMap<String, String>) -> Option<String> {
    let Some(start) = text.find("bulkId:") else {
        return Some(text.to_owned());
    };
    let reference_end = text[start + 7..]
        .find(|c: char| c == '/' || c == '"' || c.is_whitespace())
        .map_or(text.len(), |end| start + 7 + end);
    let bulk_id = &text[start + 7..reference_end];
    let id = created.get(bulk_id)?;
    let rest = replace_in_text(&text[reference_end..], created)?;
    Some(format!("{}{id}{rest}", &text[..start]))
}

fn replace_in_value(value: &Value, created: &HashMap<String, String>) -> Option<Value> {
    Some(match value {
        Value::String(text) => Value::String(replace_in_text(text, created)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| replace_in_value(item, created))
                .collect::<Option<_>>()?,
        ),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, item)| Some((key.clone(), replace_in_value(item, created)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

async fn run(
    ctx: &Context,
    operation: &BulkOperation,
    path: &str,
    data: Option<Value>,
) -> BulkOperationResponse {
    match execute(ctx, operation, path, data).await {
        Ok(response) => response,
        Err(error) => BulkOperationResponse::failure(operation, error.scim_error()),
    }
}

async fn execute(
    ctx: &Context,
    operation: &BulkOperation,
    path: &str,
    data: Option<Value>,
) -> Result<BulkOperationResponse, ApiError> {
    let trimmed = path.trim_start_matches('/');
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((endpoint, id)) => (endpoint, Some(id)),
        None => (trimmed, None),
    };
    let rt: ResourceType = ctx.resource_type(endpoint)?;
    let projection = Projection::default();
    let precondition = match &operation.version {
        Some(version) => resources::precondition_from_text(version)?,
        None => Precondition::None,
    };
    let data = || {
        data.clone().ok_or_else(|| {
            ApiError::from(ScimError::invalid_syntax(format!(
                "{} operations need 'data'",
                operation.method.as_str()
            )))
        })
    };
    let location = |id: &str| format!("{}{}/{id}", ctx.base, rt.endpoint);
    let reply = match (operation.method, id) {
        (BulkMethod::Post, None) => {
            resources::create_resource(ctx, &rt, data()?, &projection).await?
        }
        (BulkMethod::Put, Some(id)) => {
            resources::replace_resource(ctx, &rt, id, precondition, data()?, &projection).await?
        }
        (BulkMethod::Patch, Some(id)) => {
            resources::patch_resource(ctx, &rt, id, precondition, data()?, &projection, false)
                .await?
        }
        (BulkMethod::Delete, Some(id)) => {
            let status = resources::delete_resource(ctx, &rt, id, precondition).await?;
            return Ok(BulkOperationResponse::success(
                operation,
                status.as_u16(),
                Some(location(id)),
                None,
                None,
            ));
        }
        (method, _) => {
            return Err(ScimError::invalid_syntax(format!(
                "method '{}' with path '{path}' is not a bulk operation (POST /Type, PUT|PATCH|DELETE /Type/id)",
                method.as_str()
            ))
            .into())
        }
    };
    let id = id.map(str::to_owned).or_else(|| {
        reply
            .body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let status = reply.status.as_u16();
    Ok(BulkOperationResponse::success(
        operation,
        status,
        id.as_deref().map(location),
        reply.etag,
        (!reply.body.is_null()).then_some(reply.body),
    ))
}
