//! The BulkRequest and BulkResponse messages (RFC 7644 section 3.7), and
//! what the server needs to run an operation without I/O: its target
//! ([`BulkOperation::target`]) and its `bulkId:` references resolved
//! ([`resolve_references`]).
//!
//! Architecture Invariant: reference resolution is bounded and iterative: at
//! most [`MAX_BULK_REFERENCES`] references per operation, text scanned in a
//! loop and JSON walked with an explicit work stack, so no request can
//! overflow the stack however many references it holds.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::members::{json_kind, Members};
use super::{integer_member, BULK_REQUEST_URN, BULK_RESPONSE_URN};
use crate::error::ScimError;
use crate::resource::truncate_text;

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

/// The most `bulkId:` references one bulk operation may hold, in its path
/// and its data together; more is `400 invalidValue`.
pub const MAX_BULK_REFERENCES: usize = 1000;

/// What starts a reference to another operation's resource (RFC 7644
/// section 3.7.2). The referenced bulkId runs from after it up to the next
/// `/`, `"` or whitespace, or the end of the text.
const REFERENCE_PREFIX: &str = "bulkId:";

/// Where a bulk operation applies: `POST /Users` is the `Users` endpoint;
/// `PUT`, `PATCH` and `DELETE /Users/<id>` also name the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BulkTarget {
    /// The endpoint, without slashes, as written (`Users`); which resource
    /// type it names is for the registry to say.
    pub endpoint: String,
    /// The resource's id: `Some` for PUT, PATCH and DELETE, `None` for POST.
    pub id: Option<String>,
}

impl BulkTarget {
    /// Splits `path` (`/Type` or `/Type/id`, references already resolved)
    /// and checks that it suits `method`: POST takes `/Type`; PUT, PATCH and
    /// DELETE take `/Type/id`. Anything else is `400 invalidSyntax` naming
    /// the method and the path. Leading slashes are skipped, a single
    /// trailing one is ignored; an id holds no `/`.
    pub fn parse(method: BulkMethod, path: &str) -> Result<BulkTarget, ScimError> {
        let trimmed = path.trim_start_matches('/');
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let (endpoint, id) = match trimmed.split_once('/') {
            Some((endpoint, id)) => (endpoint, Some(id)),
            None => (trimmed, None),
        };
        let fits = match (method, id) {
            (_, Some(id)) if id.is_empty() || id.contains('/') => false,
            (BulkMethod::Post, None) => true,
            (BulkMethod::Put | BulkMethod::Patch | BulkMethod::Delete, Some(_)) => true,
            (BulkMethod::Post, Some(_))
            | (BulkMethod::Put | BulkMethod::Patch | BulkMethod::Delete, None) => false,
        };
        if !fits || endpoint.is_empty() {
            return Err(ScimError::invalid_syntax(format!(
                "method '{}' with path '{}' is not a bulk operation (POST /Type, PUT|PATCH|DELETE /Type/id)",
                method.as_str(),
                truncate_text(path)
            )));
        }
        Ok(BulkTarget {
            endpoint: endpoint.to_owned(),
            id: id.map(str::to_owned),
        })
    }
}

impl BulkOperation {
    /// The endpoint and id this operation's `path` names, checked against
    /// its method ([`BulkTarget::parse`]). A reference in the path
    /// (`/Users/bulkId:u1`) is taken as written: for the id of the created
    /// resource, parse the path [`resolve_references`] returns.
    pub fn target(&self) -> Result<BulkTarget, ScimError> {
        BulkTarget::parse(self.method, &self.path)
    }

    /// How an error detail names this operation: its method, path and
    /// bulkId.
    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method.as_str(), truncate_text(&self.path));
        if let Some(bulk_id) = &self.bulk_id {
            text.push_str(&format!(" (bulkId '{}')", truncate_text(bulk_id)));
        }
        text
    }
}

/// The references in a text, in order: each as the byte range of the whole
/// `bulkId:<id>` and the id.
struct References<'t> {
    text: &'t str,
    position: usize,
}

impl<'t> References<'t> {
    fn new(text: &'t str) -> Self {
        References { text, position: 0 }
    }
}

impl<'t> Iterator for References<'t> {
    type Item = (usize, usize, &'t str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.text.get(self.position..)?;
        let start = self.position + rest.find(REFERENCE_PREFIX)?;
        let id_start = start + REFERENCE_PREFIX.len();
        let tail = self.text.get(id_start..)?;
        let length = tail
            .find(|c: char| c == '/' || c == '"' || c.is_whitespace())
            .unwrap_or(tail.len());
        let end = id_start + length;
        self.position = end;
        Some((start, end, tail.get(..length)?))
    }
}

/// The distinct bulkIds `operation` references (`bulkId:<id>` in its path or
/// in any string of its data, not in member names), each once, in order of
/// first appearance: the path first, then the data in document order.
///
/// The server can compare them with the bulkIds the request's POST
/// operations declare to fail an operation whose references can never be
/// resolved before running anything. More than [`MAX_BULK_REFERENCES`]
/// references (counted with repeats) is `400 invalidValue`; the scan stops
/// there, so a hostile operation costs no more than that.
pub fn referenced_bulk_ids(operation: &BulkOperation) -> Result<Vec<&str>, ScimError> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut count = 0usize;
    for_each_text(operation, &mut |text| {
        for (_, _, id) in References::new(text) {
            count += 1;
            if count > MAX_BULK_REFERENCES {
                return Err(ScimError::invalid_value(format!(
                    "the operation {} holds more than {MAX_BULK_REFERENCES} 'bulkId:' references; at most {MAX_BULK_REFERENCES} are allowed per operation",
                    operation.describe()
                )));
            }
            if seen.insert(id) {
                ids.push(id);
            }
        }
        Ok(())
    })?;
    Ok(ids)
}

/// Calls `visit` on the operation's path, then on every string of its data
/// in document order, with an explicit work stack (no recursion); stops at
/// the first error.
fn for_each_text<'o>(
    operation: &'o BulkOperation,
    visit: &mut dyn FnMut(&'o str) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    visit(&operation.path)?;
    let Some(data) = &operation.data else {
        return Ok(());
    };
    let mut stack: Vec<&'o Value> = vec![data];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => visit(text)?,
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(members) => stack.extend(members.values().rev()),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

/// The operation's path and data with every `bulkId:<id>` reference
/// replaced by the id of the resource that operation created (`created`
/// maps bulkIds to resource ids), as the server runs it.
///
/// `Ok(None)` while a referenced bulkId is not in `created` yet (the
/// operation waits; one that waits for ever references a bulkId no
/// operation creates, or is part of a cycle). More than
/// [`MAX_BULK_REFERENCES`] references is `400 invalidValue` naming the
/// operation and the limit, whatever `created` holds. Text is scanned in a
/// loop and the data walked with an explicit stack: time is linear in the
/// operation's size and the stack does not grow with the references.
pub fn resolve_references(
    operation: &BulkOperation,
    created: &HashMap<String, String>,
) -> Result<Option<(String, Option<Value>)>, ScimError> {
    let ids = referenced_bulk_ids(operation)?;
    if ids.iter().any(|id| !created.contains_key(*id)) {
        return Ok(None);
    }
    let path = replace_references(&operation.path, created).into_owned();
    let data = operation.data.as_ref().map(|data| {
        let mut data = data.clone();
        if !ids.is_empty() {
            replace_in_value(&mut data, created);
        }
        data
    });
    Ok(Some((path, data)))
}

/// `text` with each reference replaced by its created id (a reference not
/// in `created` is left as written).
fn replace_references<'t>(text: &'t str, created: &HashMap<String, String>) -> Cow<'t, str> {
    let mut references = References::new(text).peekable();
    if references.peek().is_none() {
        return Cow::Borrowed(text);
    }
    let mut replaced = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, id) in references {
        replaced.push_str(text.get(copied..start).unwrap_or_default());
        match created.get(id) {
            Some(resource_id) => replaced.push_str(resource_id),
            None => replaced.push_str(text.get(start..end).unwrap_or_default()),
        }
        copied = end;
    }
    replaced.push_str(text.get(copied..).unwrap_or_default());
    Cow::Owned(replaced)
}

/// Replaces the references in every string of `value`, walking it with an
/// explicit work stack.
fn replace_in_value(value: &mut Value, created: &HashMap<String, String>) {
    let mut stack = vec![value];
    while let Some(node) = stack.pop() {
        match node {
            Value::String(text) => {
                if let Cow::Owned(replaced) = replace_references(text, created) {
                    *text = replaced;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(members) => stack.extend(members.values_mut()),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::error::ScimType;

    fn operation(method: BulkMethod, path: &str, data: Option<Value>) -> BulkOperation {
        BulkOperation {
            method,
            bulk_id: Some("op-1".to_owned()),
            version: None,
            path: path.to_owned(),
            data,
        }
    }

    fn created(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(bulk_id, id)| ((*bulk_id).to_owned(), (*id).to_owned()))
            .collect()
    }

    #[test]
    fn targets() {
        use BulkMethod::*;
        let not_bulk = |method: &str, path: &str| {
            Err(format!(
                "method '{method}' with path '{path}' is not a bulk operation (POST /Type, PUT|PATCH|DELETE /Type/id)"
            ))
        };
        type Expected = Result<(&'static str, Option<&'static str>), String>;
        let table: Vec<(BulkMethod, &str, Expected)> = vec![
            (Post, "/Users", Ok(("Users", None))),
            (Post, "/Users/", Ok(("Users", None))),
            (Post, "//Groups", Ok(("Groups", None))),
            (Put, "/Users/2819c223", Ok(("Users", Some("2819c223")))),
            (Patch, "/Groups/g-1", Ok(("Groups", Some("g-1")))),
            (Delete, "/Users/u-1/", Ok(("Users", Some("u-1")))),
            (Post, "/Users/u-1", not_bulk("POST", "/Users/u-1")),
            (Put, "/Users", not_bulk("PUT", "/Users")),
            (Patch, "/Users/", not_bulk("PATCH", "/Users/")),
            (Delete, "/Users//", not_bulk("DELETE", "/Users//")),
            (Delete, "/Users/a/b", not_bulk("DELETE", "/Users/a/b")),
            (Post, "/", not_bulk("POST", "/")),
            (Delete, "//u-1", not_bulk("DELETE", "//u-1")),
        ];
        for (method, path, expected) in table {
            let actual = operation(method, path, None).target();
            match expected {
                Ok((endpoint, id)) => assert_eq!(
                    actual,
                    Ok(BulkTarget {
                        endpoint: endpoint.to_owned(),
                        id: id.map(str::to_owned),
                    }),
                    "{method:?} {path}"
                ),
                Err(detail) => {
                    let error = actual.unwrap_err();
                    assert_eq!(error.status, 400, "{method:?} {path}");
                    assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
                    assert_eq!(error.detail, detail);
                }
            }
        }
    }

    #[test]
    fn references_resolve_in_the_path_and_every_string_of_the_data() {
        let data = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{
                "op": "add",
                "path": "members",
                "value": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}, {"value": "bulkId:u1"}],
                "bulkId:u1": "keys are left alone"
            }],
            "note": "bulkId:u1/bulkId:u2 \"bulkId:u1\"\tbulkId:u2",
            "count": 3,
            "flag": true,
            "nothing": null
        });
        let op = operation(BulkMethod::Patch, "/Groups/bulkId:g1", Some(data));
        assert_eq!(referenced_bulk_ids(&op), Ok(vec!["g1", "u1", "u2"]));
        let all = created(&[("g1", "G-9"), ("u1", "U-1"), ("u2", "U-2"), ("x", "X")]);
        let (path, data) = resolve_references(&op, &all).unwrap().unwrap();
        assert_eq!(path, "/Groups/G-9");
        assert_eq!(
            data,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{
                    "op": "add",
                    "path": "members",
                    "value": [{"value": "U-1"}, {"value": "U-2"}, {"value": "U-1"}],
                    "bulkId:u1": "keys are left alone"
                }],
                "note": "U-1/U-2 \"U-1\"\tU-2",
                "count": 3,
                "flag": true,
                "nothing": null
            }))
        );
    }

    #[test]
    fn an_operation_waits_while_a_reference_is_not_created() {
        let op = operation(
            BulkMethod::Put,
            "/Users/bulkId:u1",
            Some(json!({"manager": {"value": "bulkId:boss"}})),
        );
        assert_eq!(
            resolve_references(&op, &created(&[("u1", "U-1")])),
            Ok(None)
        );
        assert_eq!(
            resolve_references(&op, &created(&[("boss", "B")])),
            Ok(None)
        );
        let resolved = resolve_references(&op, &created(&[("u1", "U-1"), ("boss", "B")]));
        assert_eq!(
            resolved,
            Ok(Some((
                "/Users/U-1".to_owned(),
                Some(json!({"manager": {"value": "B"}}))
            )))
        );
        // An empty reference names no bulkId a request can declare.
        let empty = operation(BulkMethod::Delete, "/Users/bulkId:", None);
        assert_eq!(referenced_bulk_ids(&empty), Ok(vec![""]));
        assert_eq!(
            resolve_references(&empty, &created(&[("u1", "U-1")])),
            Ok(None)
        );
    }

    #[test]
    fn an_operation_without_references_comes_back_as_is() {
        let data = json!({"userName": "bjensen", "emails": [{"value": "bulkid:no"}]});
        let op = operation(BulkMethod::Post, "/Users", Some(data.clone()));
        assert_eq!(referenced_bulk_ids(&op), Ok(vec![]));
        assert_eq!(
            resolve_references(&op, &HashMap::new()),
            Ok(Some(("/Users".to_owned(), Some(data))))
        );
        let delete = operation(BulkMethod::Delete, "/Users/u-1", None);
        assert_eq!(
            resolve_references(&delete, &HashMap::new()),
            Ok(Some(("/Users/u-1".to_owned(), None)))
        );
    }

    /// Runs `work`, which must finish within a second even in a debug build.
    fn quickly<T>(what: &str, work: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = work();
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(1), "{what} took {elapsed:?}");
        result
    }

    #[test]
    fn twenty_thousand_references_in_one_string_are_refused_without_overflow() {
        let text = "bulkId:u1 ".repeat(20_000);
        let op = operation(
            BulkMethod::Post,
            "/Users",
            Some(json!({"displayName": text})),
        );
        let expected = "the operation POST /Users (bulkId 'op-1') holds more than 1000 'bulkId:' references; at most 1000 are allowed per operation";
        for result in [
            quickly("resolve", || {
                resolve_references(&op, &created(&[("u1", "U")]))
            })
            .map(|_| ()),
            quickly("resolve, nothing created", || {
                resolve_references(&op, &HashMap::new())
            })
            .map(|_| ()),
            quickly("referenced ids", || referenced_bulk_ids(&op)).map(|_| ()),
        ] {
            let error = result.unwrap_err();
            assert_eq!(error.status, 400);
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
            assert_eq!(error.detail, expected);
        }
    }

    #[test]
    fn the_limit_counts_the_path_and_all_strings_together() {
        let members: Vec<Value> = (0..MAX_BULK_REFERENCES)
            .map(|index| json!({"value": format!("bulkId:u{index}")}))
            .collect();
        let op = operation(
            BulkMethod::Patch,
            "/Groups/bulkId:g",
            Some(json!({"Operations": [{"op": "add", "value": members}]})),
        );
        let error = quickly("resolve", || resolve_references(&op, &HashMap::new())).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(
            error.detail.starts_with(
                "the operation PATCH /Groups/bulkId:g (bulkId 'op-1') holds more than 1000"
            ),
            "{}",
            error.detail
        );
    }

    #[test]
    fn one_thousand_references_resolve() {
        let text = "bulkId:u1/".repeat(MAX_BULK_REFERENCES - 1);
        let op = operation(
            BulkMethod::Put,
            "/Users/bulkId:u1",
            Some(json!({"displayName": text})),
        );
        let (path, data) = quickly("resolve", || {
            resolve_references(&op, &created(&[("u1", "2819c223")]))
        })
        .unwrap()
        .unwrap();
        assert_eq!(path, "/Users/2819c223");
        assert_eq!(
            data,
            Some(json!({"displayName": "2819c223/".repeat(MAX_BULK_REFERENCES - 1)}))
        );
        let distinct: Vec<Value> = (0..MAX_BULK_REFERENCES)
            .map(|index| json!(format!("bulkId:u{index}")))
            .collect();
        let op = operation(BulkMethod::Post, "/Users", Some(json!({"x": distinct})));
        let ids = referenced_bulk_ids(&op).unwrap();
        assert_eq!(ids.len(), MAX_BULK_REFERENCES);
        assert_eq!(ids.first(), Some(&"u0"));
        assert_eq!(ids.last(), Some(&"u999"));
    }
}
