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

mod bulk;
mod config;
mod members;
mod search;

pub use bulk::{referenced_bulk_ids, resolve_references, BulkTarget, MAX_BULK_REFERENCES};
pub use bulk::{BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest, BulkResponse};
pub use config::{
    AuthenticationScheme, BulkConfig, FilterConfig, PaginationConfig, ServiceProviderConfig,
    ServiceProviderLimits, Supported,
};
pub use search::SearchRequest;

use members::json_kind;

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

/// The longest `detail` an error body carries: a detail quotes what it
/// refuses, and a 50 KB `sortBy` must not come back as a 50 KB answer.
pub const MAX_DETAIL_CHARS: usize = 2000;

impl From<&ScimError> for ErrorResponse {
    fn from(error: &ScimError) -> Self {
        ErrorResponse {
            schemas: vec![ERROR_URN.to_owned()],
            status: error.status.to_string(),
            scim_type: error.scim_type,
            detail: bounded_detail(&error.detail),
        }
    }
}

/// `detail`, cut to [`MAX_DETAIL_CHARS`] characters with a note of how much
/// was left out.
fn bounded_detail(detail: &str) -> String {
    match detail.char_indices().nth(MAX_DETAIL_CHARS) {
        None => detail.to_owned(),
        Some((cut, _)) => format!(
            "{}... ({} more characters)",
            detail.get(..cut).unwrap_or_default(),
            detail.get(cut..).unwrap_or_default().chars().count()
        ),
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
    /// normalises as [`Paging::new`]. A value that is not an integer, or
    /// one beyond the 64-bit range, is `400 invalidValue` naming the
    /// parameter.
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
    let magnitude = digits.bytes().try_fold(0_i64, |value, digit| {
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
    });
    match magnitude {
        Some(magnitude) if negative => Ok(-magnitude),
        Some(magnitude) => Ok(magnitude),
        None => Err(out_of_range(name, text)),
    }
}

fn out_of_range(name: &str, text: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "{name} {text} is out of range: at most {} digits ({})",
        i64::MAX.to_string().len(),
        i64::MAX
    ))
}

/// Reads a JSON integer member (or a string holding one); one beyond the
/// 64-bit range is `400 invalidValue`, never a silent clamp.
fn integer_member(name: &str, value: &Value) -> Result<i64, ScimError> {
    match value {
        // JSON does not tell integers from decimals: `10.0` is 10.
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Ok(integer),
            None if number.is_u64() => Err(out_of_range(name, &number.to_string())),
            None => match number.as_f64() {
                Some(float) if float.fract() == 0.0 && float.abs() < 9.0e18 => Ok(float as i64),
                Some(float) if float.fract() == 0.0 => Err(out_of_range(name, &number.to_string())),
                _ => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer, got {number}"
                ))),
            },
        },
        Value::String(text) => parse_integer(name, text),
        other => Err(ScimError::invalid_value(format!(
            "{name} must be an integer, got {}",
            json_kind(other)
        ))),
    }
}
