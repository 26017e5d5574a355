//! The BulkRequest and BulkResponse messages (RFC 7644 section 3.7).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::members::{json_kind, Members};
use super::{integer_member, BULK_REQUEST_URN, BULK_RESPONSE_URN};
use crate::error::ScimError;

/// The HTTP method of a bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BulkMethod {
    /// Create a resource.
    Post,
    /// Replace a resource.
    Put,
    /// Modify a resource.
    Patch,
    /// Delete a resource.
    Delete,
}

impl BulkMethod {
    /// Parses `POST`, `PUT`, `PATCH` or `DELETE`, case-insensitively;
    /// anything else is `400 invalidValue`.
    pub fn parse(text: &str) -> Result<BulkMethod, ScimError> {
        [
            BulkMethod::Post,
            BulkMethod::Put,
            BulkMethod::Patch,
            BulkMethod::Delete,
        ]
        .into_iter()
        .find(|method| method.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "method must be POST, PUT, PATCH or DELETE, got '{text}'"
            ))
        })
    }

    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }

    /// Whether the operation must carry `data`.
    pub fn needs_data(self) -> bool {
        match self {
            BulkMethod::Post | BulkMethod::Put | BulkMethod::Patch => true,
            BulkMethod::Delete => false,
        }
    }
}

/// A `POST /Bulk` body (RFC 7644 section 3.7).
///
/// Read by [`BulkRequest::from_json`]: member names case-insensitive, errors
/// naming the operation (`Operations[2].method: ...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Value")]
pub struct BulkRequest {
    /// `[BULK_REQUEST_URN]`.
    pub schemas: Vec<String>,
    /// Stop after this many errors (at least 1); absent means never stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on_errors: Option<u64>,
    /// The operations, in request order.
    #[serde(rename = "Operations")]
    pub operations: Vec<BulkOperation>,
}

/// One operation of a [`BulkRequest`].
///
/// Invariants after [`BulkRequest::from_json`]: `path` starts with `/`;
/// a POST has a `bulk_id`; POST, PUT and PATCH have `data`, a JSON object;
/// `bulk_id`s are unique within the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    /// The method.
    pub method: BulkMethod,
    /// The client's id for the operation, referable as `bulkId:<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// The resource version (ETag) the operation applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The endpoint (`/Users`) or resource path (`/Users/<id>`).
    pub path: String,
    /// The resource (POST, PUT) or PatchOp (PATCH) body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl BulkRequest {
    const MEMBERS: &'static [&'static str] = &["schemas", "failOnErrors", "Operations"];

    /// A request with the given operations.
    pub fn new(operations: Vec<BulkOperation>) -> Self {
        BulkRequest {
            schemas: vec![BULK_REQUEST_URN.to_owned()],
            fail_on_errors: None,
            operations,
        }
    }

    /// Reads a BulkRequest body; see [`BulkOperation`] for what is checked.
    pub fn from_json(value: &Value) -> Result<BulkRequest, ScimError> {
        let members = Members::read(value, "BulkRequest", Self::MEMBERS)?;
        members.check_schemas("BulkRequest", BULK_REQUEST_URN)?;
        let fail_on_errors = match members.get("failOnErrors") {
            None => None,
            Some(value) => {
                let limit = integer_member("failOnErrors", value)?;
                if limit < 1 {
                    return Err(ScimError::invalid_value(format!(
                        "failOnErrors must be a positive integer, got {limit}"
                    )));
                }
                Some(limit.unsigned_abs())
            }
        };
        let items = match members.get("Operations") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "BulkRequest: Operations must be an array, got {}",
                    json_kind(other)
                )))
            }
            None => {
                return Err(ScimError::invalid_syntax(
                    "BulkRequest: 'Operations' is required (an array of operations)",
                ))
            }
        };
        let mut operations: Vec<BulkOperation> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let context = format!("Operations[{index}]");
            let operation = BulkOperation::from_json(item, &context)?;
            if let Some(bulk_id) = &operation.bulk_id {
                if let Some(first) = operations
                    .iter()
                    .position(|earlier| earlier.bulk_id.as_ref() == Some(bulk_id))
                {
                    return Err(ScimError::invalid_value(format!(
                        "{context}.bulkId: '{bulk_id}' is already used by Operations[{first}]"
                    )));
                }
            }
            operations.push(operation);
        }
        Ok(BulkRequest {
            schemas: vec![BULK_REQUEST_URN.to_owned()],
            fail_on_errors,
            operations,
        })
    }

    /// Refuses more than `max_operations` operations with `413` (RFC 7644
    /// section 3.7.4), naming the limit.
    pub fn check_max_operations(&self, max_operations: usize) -> Result<(), ScimError> {
        if self.operations.len() > max_operations {
            return Err(ScimError::status(
                413,
                format!(
                    "the bulk request has {} operations; the limit (maxOperations) is {max_operations}",
                    self.operations.len()
                ),
            ));
        }
        Ok(())
    }
}

impl TryFrom<Value> for BulkRequest {
    type Error = ScimError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        BulkRequest::from_json(&value)
    }
}

impl BulkOperation {
    const MEMBERS: &'static [&'static str] = &["method", "bulkId", "version", "path", "data"];

    fn from_json(value: &Value, context: &str) -> Result<BulkOperation, ScimError> {
        let members = Members::read(value, context, Self::MEMBERS)?;
        let field = |name: &str| format!("{context}.{name}");
        let method = match members
            .string("method")
            .map_err(|error| error.context(context))?
        {
            Some(text) => BulkMethod::parse(&text).map_err(|error| error.context(context))?,
            None => {
                return Err(ScimError::invalid_syntax(format!(
                    "{context}: 'method' is required (POST, PUT, PATCH or DELETE)"
                )))
            }
        };
        let path = members
            .string("path")
            .map_err(|error| error.context(context))?
            .ok_or_else(|| ScimError::invalid_syntax(format!("{context}: 'path' is required")))?;
        if !path.starts_with('/') {
            return Err(ScimError::invalid_value(format!(
                "{}: must start with '/' (e.g. '/Users' or '/Users/<id>'), got '{path}'",
                field("path")
            )));
        }
        let bulk_id = members
            .string("bulkId")
            .map_err(|error| error.context(context))?;
        if bulk_id.as_deref() == Some("") {
            return Err(ScimError::invalid_value(format!(
                "{}: must not be empty",
                field("bulkId")
            )));
        }
        if method == BulkMethod::Post && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "{context}: 'bulkId' is required for POST"
            )));
        }
        let version = members
            .string("version")
            .map_err(|error| error.context(context))?;
        let data = members.get("data").cloned();
        match (&data, method.needs_data()) {
            (None, true) => {
                return Err(ScimError::invalid_syntax(format!(
                    "{context}: 'data' is required for {}",
                    method.as_str()
                )))
            }
            (Some(data), true) if !data.is_object() => {
                return Err(ScimError::invalid_value(format!(
                    "{}: must be an object, got {}",
                    field("data"),
                    json_kind(data)
                )))
            }
            _ => {}
        }
        Ok(BulkOperation {
            method,
            bulk_id,
            version,
            path,
            data,
        })
    }
}

/// A `POST /Bulk` response (RFC 7644 section 3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkResponse {
    /// `[BULK_RESPONSE_URN]`.
    pub schemas: Vec<String>,
    /// One result per operation performed, in request order.
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<BulkOperationResponse>,
}

impl BulkResponse {
    /// A response with the given results.
    pub fn new(operations: Vec<BulkOperationResponse>) -> Self {
        BulkResponse {
            schemas: vec![BULK_RESPONSE_URN.to_owned()],
            operations,
        }
    }
}

/// The result of one bulk operation; `status` is a string on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperationResponse {
    /// The operation's method.
    pub method: BulkMethod,
    /// The operation's `bulkId`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// The resource's version after the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The resource's URI (absent when the operation failed to create it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The HTTP status, as a string.
    pub status: String,
    /// The response body: the RFC 7644 section 3.12 error when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

impl BulkOperationResponse {
    /// A successful result for `operation`.
    pub fn success(
        operation: &BulkOperation,
        status: u16,
        location: Option<String>,
        version: Option<String>,
        response: Option<Value>,
    ) -> Self {
        BulkOperationResponse {
            method: operation.method,
            bulk_id: operation.bulk_id.clone(),
            version,
            location,
            status: status.to_string(),
            response,
        }
    }

    /// A failed result for `operation`: the error's status, and its error
    /// body as `response`.
    pub fn failure(operation: &BulkOperation, error: &ScimError) -> Self {
        BulkOperationResponse {
            method: operation.method,
            bulk_id: operation.bulk_id.clone(),
            version: None,
            location: None,
            status: error.status.to_string(),
            response: serde_json::to_value(error.to_response()).ok(),
        }
    }
}
