//! Wire messages of RFC 7644: ListResponse, PatchOp, SearchRequest,
//! BulkRequest/BulkResponse and Error, the ServiceProviderConfig body, and
//! the paging arithmetic.
//!
//! Response types are plain serde structs named and cased exactly as the
//! RFC. Request messages are read by hand (`from_json`, also behind their
//! `Deserialize`) so member names match case-insensitively and every error
//! names the member, and the operation index for bulk.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::projection::Projection;
use crate::schema::{ResourceType, SchemaRegistry};
use crate::sort::{SortKey, SortOrder};

/// URN of the Error message.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The RFC 7644 section 3.12 error body; `status` is a string on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// Always `[ERROR_URN]`.
    pub schemas: Vec<String>,
    /// The HTTP status, as a string.
    pub status: String,
    /// The `scimType` keyword, where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<ScimType>,
    /// What went wrong.
    pub detail: String,
}

impl From<&ScimError> for ErrorResponse {
    fn from(error: &ScimError) -> Self {
        ErrorResponse {
            schemas: vec![ERROR_URN.to_owned()],
            status: error.status.to_string(),
            scim_type: error.scim_type,
            detail: error.detail.clone(),
        }
    }
}

/// URN of the ListResponse message.
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// URN of the SearchRequest message.
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// URN of the BulkRequest message.
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// URN of the BulkResponse message.
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// URN of the ServiceProviderConfig schema.
pub const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

// ---------------------------------------------------------------------------
// ListResponse and paging
// ---------------------------------------------------------------------------

/// A page of query results (RFC 7644 section 3.4.2, RFC 9865 section 2).
///
/// `Resources` is always written, empty or not: some clients index it
/// without checking. `startIndex` is absent with cursor paging, and the
/// cursors are absent when there is no such page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T = Value> {
    /// Always `[LIST_RESPONSE_URN]`.
    pub schemas: Vec<String>,
    /// How many resources match the query in all.
    pub total_results: u64,
    /// How many resources this page holds.
    #[serde(default)]
    pub items_per_page: u64,
    /// The 1-based index of the first resource of this page (index paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    /// The resources of this page.
    #[serde(rename = "Resources", alias = "resources", default = "Vec::new")]
    pub resources: Vec<T>,
    /// The cursor of the next page (RFC 9865).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The cursor of the previous page (RFC 9865).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    /// An index-paged response; `itemsPerPage` is the length of `resources`.
    pub fn new(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        ListResponse {
            schemas: vec![LIST_RESPONSE_URN.to_owned()],
            total_results,
            items_per_page: resources.len() as u64,
            start_index: Some(start_index.max(1)),
            resources,
            next_cursor: None,
            previous_cursor: None,
        }
    }

    /// A cursor-paged response (RFC 9865): no `startIndex`, and
    /// `nextCursor` when more results remain.
    pub fn with_cursor(resources: Vec<T>, total_results: u64, next_cursor: Option<String>) -> Self {
        ListResponse {
            start_index: None,
            next_cursor,
            ..ListResponse::new(resources, total_results, 1)
        }
    }
}

/// Index paging (RFC 7644 section 3.4.2.4), already normalised: a
/// `start_index` of at least 1 and a `count` within the server's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Paging {
    /// The 1-based index of the first result.
    pub start_index: u64,
    /// The maximum number of results; 0 asks for `totalResults` only.
    pub count: u64,
}

impl Paging {
    /// Normalises paging values: a `start_index` below 1 is 1; an absent
    /// `count` is `default_count`; a negative one is 0; any count is capped at
    /// `max_count` (a server may return fewer than asked).
    pub fn new(
        start_index: Option<i64>,
        count: Option<i64>,
        default_count: u64,
        max_count: u64,
    ) -> Paging {
        let start_index = start_index.map_or(1, |index| index.max(1).unsigned_abs());
        let count = count.map_or(default_count, |count| count.max(0).unsigned_abs());
        Paging {
            start_index,
            count: count.min(max_count),
        }
    }

    /// Parses the `startIndex` and `count` query parameters, then
    /// normalises as [`Paging::new`]. A value that is not an integer is
    /// `400 invalidValue` naming the parameter; an integer too large to
    /// represent saturates.
    pub fn from_query(
        start_index: Option<&str>,
        count: Option<&str>,
        default_count: u64,
        max_count: u64,
    ) -> Result<Paging, ScimError> {
        let start_index = start_index
            .map(|text| parse_integer("startIndex", text))
            .transpose()?;
        let count = count.map(|text| parse_integer("count", text)).transpose()?;
        Ok(Paging::new(start_index, count, default_count, max_count))
    }

    /// How many results precede this page (`start_index - 1`).
    pub fn offset(&self) -> u64 {
        self.start_index.saturating_sub(1)
    }

    /// This page of a complete, ordered result list.
    pub fn window<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = usize::try_from(self.offset())
            .unwrap_or(usize::MAX)
            .min(items.len());
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        let rest = items.get(start..).unwrap_or_default();
        rest.get(..count.min(rest.len())).unwrap_or_default()
    }
}

/// Parses an optionally signed decimal integer, saturating at the `i64`
/// range; surrounding whitespace is ignored.
fn parse_integer(name: &str, text: &str) -> Result<i64, ScimError> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ScimError::invalid_value(format!(
            "{name} must be an integer, got '{text}'"
        )));
    }
    let magnitude = digits.bytes().fold(0_i64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'))
    });
    Ok(if negative { -magnitude } else { magnitude })
}

/// Reads a JSON integer member (or a string holding one), saturating.
fn integer_member(name: &str, value: &Value) -> Result<i64, ScimError> {
    match value {
        // JSON does not tell integers from decimals: `10.0` is 10; integers
        // beyond the i64 range saturate (`as` saturates from f64).
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_u64().map(|_| i64::MAX))
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0)
                    .map(|float| float as i64)
            })
            .ok_or_else(|| {
                ScimError::invalid_value(format!("{name} must be an integer, got {number}"))
            }),
        Value::String(text) => parse_integer(name, text),
        other => Err(ScimError::invalid_value(format!(
            "{name} must be an integer, got {}",
            json_kind(other)
        ))),
    }
}

// ---------------------------------------------------------------------------
// Reading request messages
// ---------------------------------------------------------------------------

/// The JSON type of a value, for error details.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The non-null members of a request message, found case-insensitively
/// under their canonical names. Unknown and repeated members are
/// `400 invalidSyntax`.
struct Members<'v> {
    found: Vec<(&'static str, &'v Value)>,
}

impl<'v> Members<'v> {
    fn read(
        value: &'v Value,
        message: &str,
        allowed: &[&'static str],
    ) -> Result<Members<'v>, ScimError> {
        let object = value.as_object().ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "{message} must be a JSON object, got {}",
                json_kind(value)
            ))
        })?;
        let mut found: Vec<(&'static str, &'v Value)> = Vec::with_capacity(object.len());
        let mut seen: Vec<&'static str> = Vec::with_capacity(object.len());
        for (key, value) in object {
            let Some(name) = allowed.iter().find(|name| name.eq_ignore_ascii_case(key)) else {
                return Err(ScimError::invalid_syntax(format!(
                    "{message}: unknown member '{key}'; expected one of {}",
                    allowed.join(", ")
                )));
            };
            if seen.contains(name) {
                return Err(ScimError::invalid_syntax(format!(
                    "{message}: member '{name}' appears twice (member names are case-insensitive)"
                )));
            }
            seen.push(name);
            if !value.is_null() {
                found.push((name, value));
            }
        }
        Ok(Members { found })
    }

    fn get(&self, name: &str) -> Option<&'v Value> {
        self.found
            .iter()
            .find(|(found, _)| *found == name)
            .map(|(_, value)| *value)
    }

    /// An optional string member.
    fn string(&self, name: &str) -> Result<Option<String>, ScimError> {
        self.get(name)
            .map(|value| match value {
                Value::String(text) => Ok(text.clone()),
                other => Err(ScimError::invalid_value(format!(
                    "{name} must be a string, got {}",
                    json_kind(other)
                ))),
            })
            .transpose()
    }

    /// An optional list of strings; a single (comma-separated) string is
    /// accepted for the convenience of clients that copy the query form.
    fn string_list(&self, name: &str) -> Result<Vec<String>, ScimError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(vec![text.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(ScimError::invalid_value(format!(
                        "{name}[{index}] must be a string, got {}",
                        json_kind(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(ScimError::invalid_value(format!(
                "{name} must be an array of strings, got {}",
                json_kind(other)
            ))),
        }
    }

    /// Checks `schemas`, when present, lists `urn`. An absent `schemas` is
    /// tolerated: the message type is already known from the endpoint.
    fn check_schemas(&self, message: &str, urn: &str) -> Result<(), ScimError> {
        let Some(value) = self.get("schemas") else {
            return Ok(());
        };
        let lists_urn = value.as_array().is_some_and(|schemas| {
            schemas
                .iter()
                .any(|schema| schema.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
        });
        if lists_urn {
            Ok(())
        } else {
            Err(ScimError::invalid_syntax(format!(
                "{message}: schemas must be an array listing '{urn}', got {value}"
            )))
        }
    }
}

// ---------------------------------------------------------------------------
// SearchRequest
// ---------------------------------------------------------------------------

/// A query sent as `POST .search` (RFC 7644 section 3.4.3), with RFC 9865's
/// `cursor`.
///
/// Read by [`SearchRequest::from_json`]: member names case-insensitive,
/// `null` members absent, unknown members refused. `startIndex` below 1 is
/// read as 1 and a negative `count` as 0 (RFC 7644 section 3.4.2.4); the
/// server's default and maximum apply in [`SearchRequest::paging`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Value")]
pub struct SearchRequest {
    /// `[SEARCH_REQUEST_URN]`.
    pub schemas: Vec<String>,
    /// Attribute names to return (see [`crate::Projection`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Attribute names to leave out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_attributes: Vec<String>,
    /// The filter, unparsed (parse with [`crate::Filter::parse_with`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute to sort by (see [`SortKey`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<String>,
    /// The sort direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<SortOrder>,
    /// The 1-based index of the first result, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    /// The page size asked for, at least 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// RFC 9865 cursor; `Some("")` asks for the first cursor page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl SearchRequest {
    const MEMBERS: &'static [&'static str] = &[
        "schemas",
        "attributes",
        "excludedAttributes",
        "filter",
        "sortBy",
        "sortOrder",
        "startIndex",
        "count",
        "cursor",
    ];

    /// An empty request (every member absent).
    pub fn new() -> Self {
        SearchRequest {
            schemas: vec![SEARCH_REQUEST_URN.to_owned()],
            ..SearchRequest::default()
        }
    }

    /// Reads a SearchRequest body. Errors are `400 invalidSyntax` for the
    /// message's shape and `400 invalidValue` for a member's value, and name
    /// the member.
    pub fn from_json(value: &Value) -> Result<SearchRequest, ScimError> {
        let members = Members::read(value, "SearchRequest", Self::MEMBERS)?;
        members.check_schemas("SearchRequest", SEARCH_REQUEST_URN)?;
        let sort_order = members
            .get("sortOrder")
            .map(|value| match value {
                Value::String(text) => SortOrder::parse(text),
                other => Err(ScimError::invalid_value(format!(
                    "sortOrder must be 'ascending' or 'descending', got {}",
                    json_kind(other)
                ))),
            })
            .transpose()?;
        let start_index = members
            .get("startIndex")
            .map(|value| integer_member("startIndex", value))
            .transpose()?
            .map(|index| index.max(1).unsigned_abs());
        let count = members
            .get("count")
            .map(|value| integer_member("count", value))
            .transpose()?
            .map(|count| count.max(0).unsigned_abs());
        Ok(SearchRequest {
            schemas: vec![SEARCH_REQUEST_URN.to_owned()],
            attributes: members.string_list("attributes")?,
            excluded_attributes: members.string_list("excludedAttributes")?,
            filter: members.string("filter")?,
            sort_by: members.string("sortBy")?,
            sort_order,
            start_index,
            count,
            cursor: members.string("cursor")?,
        })
    }

    /// Reads the query parameters of `GET /{endpoint}` (RFC 7644 section
    /// 3.4.2): parameter names are matched case-insensitively, unknown
    /// parameters are ignored (they may belong to a proxy), and a repeated
    /// parameter is `400 invalidValue`. `attributes` and
    /// `excludedAttributes` are comma-separated lists.
    pub fn from_query<'q, I>(parameters: I) -> Result<SearchRequest, ScimError>
    where
        I: IntoIterator<Item = (&'q str, &'q str)>,
    {
        let mut found: [Option<&str>; 8] = [None; 8];
        for (name, value) in parameters {
            let Some(index) = Self::MEMBERS[1..]
                .iter()
                .position(|member| member.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            if found[index].replace(value).is_some() {
                return Err(ScimError::invalid_value(format!(
                    "query parameter '{}' is given more than once",
                    Self::MEMBERS[index + 1]
                )));
            }
        }
        let [attributes, excluded, filter, sort_by, sort_order, start_index, count, cursor] = found;
        let list = |text: Option<&str>| -> Vec<String> {
            text.map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        let integer =
            |name: &str, text: Option<&str>| text.map(|text| parse_integer(name, text)).transpose();
        Ok(SearchRequest {
            schemas: vec![SEARCH_REQUEST_URN.to_owned()],
            attributes: list(attributes),
            excluded_attributes: list(excluded),
            filter: filter.map(str::to_owned),
            sort_by: sort_by
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned),
            sort_order: sort_order.map(SortOrder::parse).transpose()?,
            start_index: integer("startIndex", start_index)?
                .map(|index| index.max(1).unsigned_abs()),
            count: integer("count", count)?.map(|count| count.max(0).unsigned_abs()),
            cursor: cursor.map(str::to_owned),
        })
    }

    /// The index paging asked for, with the server's default and maximum.
    pub fn paging(&self, default_count: u64, max_count: u64) -> Paging {
        let to_signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Paging::new(
            self.start_index.map(to_signed),
            self.count.map(to_signed),
            default_count,
            max_count,
        )
    }

    /// The projection asked for, resolved against `resource_type`.
    pub fn projection(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
    ) -> Result<Projection, ScimError> {
        Projection::from_lists(
            registry,
            resource_type,
            &self.attributes,
            &self.excluded_attributes,
        )
    }

    /// The sort asked for, resolved against `resource_type`; `None` without
    /// `sortBy` (a `sortOrder` alone has no effect).
    pub fn sort(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
    ) -> Result<Option<(SortKey, SortOrder)>, ScimError> {
        self.sort_by
            .as_deref()
            .map(|sort_by| {
                SortKey::parse(registry, resource_type, sort_by)
                    .map(|key| (key, self.sort_order.unwrap_or_default()))
            })
            .transpose()
    }
}

impl TryFrom<Value> for SearchRequest {
    type Error = ScimError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        SearchRequest::from_json(&value)
    }
}

// ---------------------------------------------------------------------------
// Bulk
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// ServiceProviderConfig
// ---------------------------------------------------------------------------

/// The limits a [`ServiceProviderConfig`] advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceProviderLimits {
    /// Most operations in one bulk request.
    pub max_bulk_operations: u64,
    /// Largest request body, in bytes.
    pub max_payload_size: u64,
    /// Most resources one query returns (`filter.maxResults`).
    pub max_results: u64,
    /// Page size when a query gives no `count`.
    pub default_page_size: u64,
    /// Largest page size a query may ask for.
    pub max_page_size: u64,
    /// Whether RFC 9865 cursor paging is offered.
    pub cursor_paging: bool,
    /// Seconds a cursor stays valid, when cursors expire.
    pub cursor_timeout: Option<u64>,
}

/// The `/ServiceProviderConfig` body (RFC 7643 section 5, RFC 9865
/// section 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// `[SERVICE_PROVIDER_CONFIG_URN]`.
    pub schemas: Vec<String>,
    /// Human-readable help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// PATCH support.
    pub patch: Supported,
    /// Bulk support and limits.
    pub bulk: BulkConfig,
    /// Filter support and limit.
    pub filter: FilterConfig,
    /// Password change support.
    pub change_password: Supported,
    /// Sort support.
    pub sort: Supported,
    /// ETag support.
    pub etag: Supported,
    /// How clients authenticate.
    pub authentication_schemes: Vec<AuthenticationScheme>,
    /// Paging methods and sizes (RFC 9865).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PaginationConfig>,
    /// `resourceType` and `location`, filled in by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A `{"supported": bool}` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Supported {
    /// Whether the feature is supported.
    pub supported: bool,
}

/// The `bulk` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkConfig {
    /// Whether bulk is supported.
    pub supported: bool,
    /// Most operations in one request.
    pub max_operations: u64,
    /// Largest request body, in bytes.
    pub max_payload_size: u64,
}

/// The `filter` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterConfig {
    /// Whether filtering is supported.
    pub supported: bool,
    /// Most resources one query returns.
    pub max_results: u64,
}

/// One `authenticationSchemes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationScheme {
    /// `oauthbearertoken`, `httpbasic`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The specification's URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    /// Help for this scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether this is the preferred scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// The RFC 9865 `pagination` capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginationConfig {
    /// Whether cursor paging is supported.
    pub cursor: bool,
    /// Whether index paging is supported.
    pub index: bool,
    /// `index` or `cursor`: what a query without paging parameters gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pagination_method: Option<String>,
    /// Page size when a query gives no `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_page_size: Option<u64>,
    /// Largest page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_page_size: Option<u64>,
    /// Seconds a cursor stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_timeout: Option<u64>,
}

impl ServiceProviderConfig {
    /// Muster's capabilities with the given limits: PATCH, bulk, filter,
    /// sort and ETags supported, password change not, index paging (the
    /// default) and cursor paging as `limits` says, bearer-token
    /// authentication.
    pub fn new(limits: &ServiceProviderLimits) -> Self {
        ServiceProviderConfig {
            schemas: vec![SERVICE_PROVIDER_CONFIG_URN.to_owned()],
            documentation_uri: None,
            patch: Supported { supported: true },
            bulk: BulkConfig {
                supported: true,
                max_operations: limits.max_bulk_operations,
                max_payload_size: limits.max_payload_size,
            },
            filter: FilterConfig {
                supported: true,
                max_results: limits.max_results,
            },
            change_password: Supported { supported: false },
            sort: Supported { supported: true },
            etag: Supported { supported: true },
            authentication_schemes: vec![AuthenticationScheme {
                kind: "oauthbearertoken".to_owned(),
                name: "OAuth Bearer Token".to_owned(),
                description: "Authentication with a bearer token in the Authorization header."
                    .to_owned(),
                spec_uri: Some("https://www.rfc-editor.org/rfc/rfc6750".to_owned()),
                documentation_uri: None,
                primary: Some(true),
            }],
            pagination: Some(PaginationConfig {
                cursor: limits.cursor_paging,
                index: true,
                default_pagination_method: Some("index".to_owned()),
                default_page_size: Some(limits.default_page_size),
                max_page_size: Some(limits.max_page_size),
                cursor_timeout: limits.cursor_timeout.filter(|_| limits.cursor_paging),
            }),
            meta: None,
        }
    }
}
