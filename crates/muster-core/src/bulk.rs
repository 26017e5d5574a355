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
use crate::{Error, Session, INTERNAL_DETAIL};

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
        Err(error) => BulkOperationResponse::failure(
            operation,
            &server_error_detail(error.into_scim(), &session.actor().request_id),
        ),
    }
}

/// A `5xx` for one operation worded as a top-level `5xx` answer is: the
/// generic detail and the request id, so the operator can find the cause
/// in the log (a `503` says to retry). The original detail is logged, never
/// sent. Other errors are returned as they are.
fn server_error_detail(mut error: ScimError, request_id: &str) -> ScimError {
    if error.status < 500 {
        return error;
    }
    tracing::warn!(
        status = error.status,
        detail = %error.detail,
        request_id,
        "bulk operation failed"
    );
    let generic = if error.status == 503 {
        "Muster is busy; retry this operation shortly"
    } else {
        INTERNAL_DETAIL
    };
    error.detail = if request_id.is_empty() {
        generic.to_owned()
    } else {
        format!("{generic} (request id {request_id})")
    };
    error.scim_type = None;
    error
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-operation `5xx` carries the generic detail and the request id,
    /// as a top-level `5xx` does; the cause never leaves the server.
    #[test]
    fn server_errors_name_the_request_id() {
        let check = |error: ScimError, request_id: &str, expected: &str| {
            let status = error.status;
            let mapped = server_error_detail(error, request_id);
            assert_eq!(mapped.status, status);
            assert_eq!(mapped.detail, expected);
        };
        check(
            ScimError::status(500, "disk I/O error at /var/lib/muster"),
            "req-1",
            &format!("{INTERNAL_DETAIL} (request id req-1)"),
        );
        check(
            ScimError::status(503, "Muster is busy (writer queue); retry shortly"),
            "req-2",
            "Muster is busy; retry this operation shortly (request id req-2)",
        );
        check(ScimError::status(500, "secret cause"), "", INTERNAL_DETAIL);
        check(
            ScimError::invalid_value("attribute 'emails' holds at most 1000 values"),
            "req-3",
            "attribute 'emails' holds at most 1000 values",
        );
        check(
            ScimError::status(404, "no such User"),
            "req-4",
            "no such User",
        );
    }
}
