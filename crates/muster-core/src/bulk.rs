//! Bulk (RFC 7644 section 3.7).
//!
//! Each operation runs through the same [`Session`] function as its
//! single-resource endpoint and commits on its own, so a crash mid-request
//! leaves whole operations applied or not, never half of one. `bulkId:`
//! references in paths and data are resolved to the ids of resources
//! created earlier in the request; an operation whose reference is not yet
//! known waits until it is.

use std::collections::HashMap;

use muster_scim::message::{
    resolve_references, BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest,
    BulkResponse, BulkTarget,
};
use muster_scim::projection::Projection;
use muster_scim::{ResourceType, ScimError};
use muster_store::Precondition;
use serde_json::Value;

use crate::resources::{etag, precondition_from_text};
use crate::{Error, Session};

/// Runs a bulk request: every operation in dependency order, stopping after
/// `failOnErrors` failures.
pub async fn run_bulk(session: &Session<'_>, request: &BulkRequest) -> Result<BulkResponse, Error> {
    request.check_max_operations(session.service().limits().max_bulk_operations)?;
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<BulkOperationResponse>> = vec![None; request.operations.len()];
    let mut pending: Vec<usize> = (0..request.operations.len()).collect();
    let mut errors = 0u64;
    let fail_on_errors = request.fail_on_errors.unwrap_or(u64::MAX);
    'passes: while !pending.is_empty() {
        let mut progressed = false;
        let mut still_pending = Vec::new();
        for index in pending {
            let Some(operation) = request.operations.get(index) else {
                continue;
            };
            let response = match resolve_references(operation, &created) {
                Ok(Some((path, data))) => run(session, operation, &path, data).await,
                Ok(None) => {
                    still_pending.push(index);
                    continue;
                }
                Err(error) => BulkOperationResponse::failure(operation, &error),
            };
            progressed = true;
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
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(response);
            }
            if errors >= fail_on_errors {
                break 'passes;
            }
        }
        if !progressed {
            for index in still_pending {
                let Some(operation) = request.operations.get(index) else {
                    continue;
                };
                let error = ScimError::invalid_value(
                    "a bulkId this operation references is not created by any other operation of the request (or the references form a cycle)",
                );
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(BulkOperationResponse::failure(operation, &error));
                }
            }
            break;
        }
        pending = still_pending;
    }
    Ok(BulkResponse::new(results.into_iter().flatten().collect()))
}

async fn run(
    session: &Session<'_>,
    operation: &BulkOperation,
    path: &str,
    data: Option<Value>,
) -> BulkOperationResponse {
    match execute(session, operation, path, data).await {
        Ok(response) => response,
        Err(error) => BulkOperationResponse::failure(operation, &error.into_scim()),
    }
}

async fn execute(
    session: &Session<'_>,
    operation: &BulkOperation,
    path: &str,
    data: Option<Value>,
) -> Result<BulkOperationResponse, Error> {
    let target = BulkTarget::parse(operation.method, path)?;
    let rt: ResourceType = session.resource_type(&target.endpoint)?;
    let id = target.id.as_deref();
    let projection = Projection::default();
    let precondition = match &operation.version {
        Some(version) => precondition_from_text(version)?,
        None => Precondition::None,
    };
    let data = || {
        data.clone().ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "{} operations need 'data'",
                operation.method.as_str()
            ))
        })
    };
    let (status, rendered) = match (operation.method, id) {
        (BulkMethod::Post, None) => (201, session.create(&rt, data()?, &projection).await?),
        (BulkMethod::Put, Some(id)) => (
            200,
            session
                .replace(&rt, id, precondition, data()?, &projection)
                .await?,
        ),
        (BulkMethod::Patch, Some(id)) => {
            let rendered = session
                .patch(&rt, id, precondition, data()?, &projection, false)
                .await?;
            (204, rendered)
        }
        (BulkMethod::Delete, Some(id)) => {
            session.delete(&rt, id, precondition).await?;
            return Ok(BulkOperationResponse::success(
                operation,
                204,
                Some(session.location(&rt, id)),
                None,
                None,
            ));
        }
        (BulkMethod::Post, Some(_)) | (_, None) => {
            return Err(ScimError::invalid_syntax(format!(
                "method '{}' with path '{path}' is not a bulk operation (POST /Type, PUT|PATCH|DELETE /Type/id)",
                operation.method.as_str()
            ))
            .into())
        }
    };
    Ok(BulkOperationResponse::success(
        operation,
        status,
        Some(rendered.location),
        Some(etag(rendered.version)),
        rendered.body,
    ))
}
