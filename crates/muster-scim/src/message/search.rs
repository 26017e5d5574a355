//! The SearchRequest message (RFC 7644 section 3.4.3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::members::{json_kind, Members};
use super::{integer_member, parse_integer, Paging, SEARCH_REQUEST_URN};
use crate::error::ScimError;
use crate::projection::Projection;
use crate::schema::{ResourceType, SchemaRegistry};
use crate::sort::{SortKey, SortOrder};

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
