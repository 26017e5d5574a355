//! Sorting of resources (RFC 7644 section 3.4.2.3): `sortBy` resolved to a
//! [`SortKey`], `sortOrder` parsed to a [`SortOrder`], and one total order on
//! the extracted [`SortValue`]s that the in-memory sort and the storage layer
//! (which precomputes a sortable column with [`SortKey::extract`]) share.
//!
//! Rules, from the RFC:
//! - a multi-valued attribute sorts by its primary element, else its first;
//!   a complex attribute without a named sub-attribute sorts by its `value`
//!   sub-attribute (`emails` means `emails.value`) and is refused when it has
//!   none (`name` must be written `name.givenName`);
//! - strings compare case-insensitively unless the attribute is caseExact
//!   (references and binaries are always case-exact), by Unicode code point;
//!   numbers numerically, dateTimes as instants, booleans `false < true`;
//! - a resource without a value is "ordered last if ascending and first if
//!   descending": a missing value is greater than every value;
//! - ties keep the input order, in both directions.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{
    AttributeType, Container, ResolvedAttribute, ResolvedPath, ResourceType, SchemaRegistry,
};

/// `sortOrder`: ascending unless the client says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum SortOrder {
    /// Smallest first; resources without a value last.
    #[default]
    Ascending,
    /// Greatest first; resources without a value first.
    Descending,
}

impl SortOrder {
    /// Parses `ascending` or `descending`, case-insensitively and ignoring
    /// surrounding whitespace; anything else is `400 invalidValue`.
    pub fn parse(text: &str) -> Result<SortOrder, ScimError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("ascending") {
            Ok(SortOrder::Ascending)
        } else if trimmed.eq_ignore_ascii_case("descending") {
            Ok(SortOrder::Descending)
        } else {
            Err(ScimError::invalid_value(format!(
                "sortOrder must be 'ascending' or 'descending', got '{text}'"
            )))
        }
    }

    /// The `sortOrder` query parameter: absent means ascending (RFC 7644
    /// section 3.4.2.3).
    pub fn from_query(text: Option<&str>) -> Result<SortOrder, ScimError> {
        text.map_or(Ok(SortOrder::Ascending), SortOrder::parse)
    }

    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "ascending",
            SortOrder::Descending => "descending",
        }
    }

    /// Whether this is [`SortOrder::Descending`].
    pub fn is_descending(self) -> bool {
        self == SortOrder::Descending
    }
}

impl TryFrom<String> for SortOrder {
    type Error = ScimError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        SortOrder::parse(&text)
    }
}

/// A `sortBy` attribute resolved against a resource type: where its value
/// lives in canonical JSON and how that value compares.
///
/// Built only by [`SortKey::new`] / [`SortKey::parse`], so a key always names
/// a declared, returnable, non-complex target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    extension: Option<String>,
    attribute: String,
    sub_attribute: Option<String>,
    kind: AttributeType,
    case_exact: bool,
}

impl SortKey {
    /// Parses and resolves a `sortBy` value.
    ///
    /// A malformed or unknown path, a whole extension and a complex
    /// attribute with no `value` sub-attribute are `400 invalidValue`; a
    /// never-returned attribute or sub-attribute (sorting by `password`
    /// would leak its order) is `400 invalidFilter`, as in a filter.
    pub fn parse(
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        sort_by: &str,
    ) -> Result<SortKey, ScimError> {
        let text = sort_by.trim();
        let path = AttrPath::parse(text)
            .map_err(|error| ScimError::invalid_value(format!("sortBy: {}", error.detail)))?;
        SortKey::new(registry, resource_type, &path)
    }

    /// Resolves an already parsed `sortBy` path; see [`SortKey::parse`].
    pub fn new(
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        path: &AttrPath,
    ) -> Result<SortKey, ScimError> {
        let resolved = match registry.resolve(resource_type, path) {
            Some(ResolvedPath::Attribute(resolved)) => resolved,
            Some(ResolvedPath::Extension(schema)) => {
                return Err(ScimError::invalid_value(format!(
                    "sortBy '{path}' names the whole extension {}; name one of its attributes",
                    schema.id
                )))
            }
            None => {
                return Err(ScimError::invalid_value(format!(
                    "sortBy: {}",
                    registry.unknown_attribute(resource_type, &path.to_string())
                )))
            }
        };
        let attribute = resolved.attribute;
        let sub_attribute = match resolved.sub_attribute {
            Some(sub) => Some(sub),
            None if attribute.is_complex() => Some(attribute.sub_attribute("value").ok_or_else(
                || {
                    ScimError::invalid_value(format!(
                        "sortBy '{path}' names the complex attribute '{}'; name one of its sub-attributes, e.g. '{}.{}'",
                        resolved.canonical_path(),
                        resolved.canonical_path(),
                        attribute
                            .sub_attributes
                            .first()
                            .map_or("value", |sub| sub.name.as_str())
                    ))
                },
            )?),
            None => None,
        };
        let target = sub_attribute.unwrap_or(attribute);
        ResolvedAttribute {
            sub_attribute,
            ..resolved
        }
        .check_returned()
        .map_err(|error| error.context(format!("sortBy '{path}'")))?;
        Ok(SortKey {
            extension: match resolved.container {
                Container::Core => None,
                Container::Extension(urn) => Some(urn.to_owned()),
            },
            attribute: attribute.name.clone(),
            sub_attribute: sub_attribute.map(|sub| sub.name.clone()),
            kind: target.kind,
            case_exact: target.case_exact
                || matches!(
                    target.kind,
                    AttributeType::Reference | AttributeType::Binary
                ),
        })
    }

    /// The canonical path sorted on, URN-qualified for extension attributes;
    /// `emails` reads `emails.value`.
    pub fn canonical_path(&self) -> String {
        let mut path = match &self.extension {
            Some(urn) => format!("{urn}:"),
            None => String::new(),
        };
        path.push_str(&self.attribute);
        if let Some(sub) = &self.sub_attribute {
            path.push('.');
            path.push_str(sub);
        }
        path
    }

    /// The declared type of the value sorted on.
    pub fn attribute_type(&self) -> AttributeType {
        self.kind
    }

    /// Whether strings compare case-sensitively.
    pub fn case_exact(&self) -> bool {
        self.case_exact
    }

    /// The value a resource (canonical JSON) sorts by, or `None` when it has
    /// none. Strings of case-insensitive attributes come back lower-cased, so
    /// a stored column of these values orders correctly by plain comparison.
    pub fn extract(&self, resource: &Value) -> Option<SortValue> {
        let mut container = resource.as_object()?;
        if let Some(urn) = &self.extension {
            container = member(container, urn)?.as_object()?;
        }
        let mut value = member(container, &self.attribute)?;
        if let Value::Array(elements) = value {
            value = chosen_element(elements)?;
        }
        if let Some(sub) = &self.sub_attribute {
            value = member(value.as_object()?, sub)?;
        }
        self.sort_value(value)
    }

    fn sort_value(&self, value: &Value) -> Option<SortValue> {
        match value {
            Value::String(text) => {
                if self.kind == AttributeType::DateTime {
                    if let Ok(instant) = OffsetDateTime::parse(text, &Rfc3339) {
                        return Some(SortValue::DateTime(instant));
                    }
                }
                Some(SortValue::String(if self.case_exact {
                    text.clone()
                } else {
                    text.to_lowercase()
                }))
            }
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Some(SortValue::Integer(integer)),
                None => number.as_f64().map(SortValue::Decimal),
            },
            Value::Bool(flag) => Some(SortValue::Boolean(*flag)),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// The element a multi-valued attribute sorts by: the one marked
/// `"primary": true`, else the first.
fn chosen_element(elements: &[Value]) -> Option<&Value> {
    elements
        .iter()
        .find(|element| {
            element
                .as_object()
                .and_then(|object| member(object, "primary"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .or_else(|| elements.first())
}

/// A member of a JSON object by name: the canonical key first, then a
/// case-insensitive match for resources not yet in canonical case.
pub(crate) fn member<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A value extracted for sorting, with a total order.
///
/// Values of one key normally share a variant. Should data disagree with its
/// schema, variants still order totally: booleans, then numbers, then
/// dateTimes, then strings. Integers and decimals compare numerically.
#[derive(Debug, Clone)]
pub enum SortValue {
    /// A string, already lower-cased when the attribute is not caseExact.
    String(String),
    /// A JSON integer.
    Integer(i64),
    /// A JSON number that is not an `i64`.
    Decimal(f64),
    /// A dateTime, compared as an instant whatever its offset.
    DateTime(OffsetDateTime),
    /// A boolean; `false` sorts before `true`.
    Boolean(bool),
}

impl SortValue {
    fn rank(&self) -> u8 {
        match self {
            SortValue::Boolean(_) => 0,
            SortValue::Integer(_) | SortValue::Decimal(_) => 1,
            SortValue::DateTime(_) => 2,
            SortValue::String(_) => 3,
        }
    }
}

impl Ord for SortValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortValue::String(a), SortValue::String(b)) => a.cmp(b),
            (SortValue::Integer(a), SortValue::Integer(b)) => a.cmp(b),
            (SortValue::Decimal(a), SortValue::Decimal(b)) => a.total_cmp(b),
            // Mixed numbers: numerically, an integer before an equal decimal.
            (SortValue::Integer(a), SortValue::Decimal(b)) => {
                (*a as f64).total_cmp(b).then(Ordering::Less)
            }
            (SortValue::Decimal(a), SortValue::Integer(b)) => {
                a.total_cmp(&(*b as f64)).then(Ordering::Greater)
            }
            (SortValue::DateTime(a), SortValue::DateTime(b)) => a.cmp(b),
            (SortValue::Boolean(a), SortValue::Boolean(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for SortValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortValue {}

/// Compares two extracted values in `order`, a missing value being greater
/// than any value (last ascending, first descending).
pub fn compare(a: Option<&SortValue>, b: Option<&SortValue>, order: SortOrder) -> Ordering {
    let ascending = match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match order {
        SortOrder::Ascending => ascending,
        SortOrder::Descending => ascending.reverse(),
    }
}

/// Sorts canonical resources by `key` in `order`, stably.
pub fn sort_resources(resources: &mut [Value], key: &SortKey, order: SortOrder) {
    sort_by_key(resources, key, order, |resource| resource);
}

/// Sorts any items holding a canonical resource (e.g. stored rows) by `key`
/// in `order`, stably; each resource's value is extracted once.
pub fn sort_by_key<T>(
    items: &mut [T],
    key: &SortKey,
    order: SortOrder,
    resource: impl Fn(&T) -> &Value,
) {
    items.sort_by_cached_key(|item| Ranked {
        value: key.extract(resource(item)),
        order,
    });
}

/// A sort value with its direction, ordered as [`compare`] says.
struct Ranked {
    value: Option<SortValue>,
    order: SortOrder,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self.value.as_ref(), other.value.as_ref(), self.order)
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_order_parses_case_insensitively() {
        assert_eq!(SortOrder::from_query(None).unwrap(), SortOrder::Ascending);
        assert_eq!(
            SortOrder::from_query(Some(" DESCENDING ")).unwrap(),
            SortOrder::Descending
        );
        let error = SortOrder::parse("down").unwrap_err();
        assert_eq!(error.scim_type, Some(crate::ScimType::InvalidValue));
        assert!(error.detail.contains("'down'"), "{}", error.detail);
    }

    #[test]
    fn mixed_numbers_order_numerically() {
        let mut values = vec![
            SortValue::Decimal(2.5),
            SortValue::Integer(3),
            SortValue::Integer(2),
            SortValue::Decimal(-1.0),
        ];
        values.sort();
        let expected = vec![
            SortValue::Decimal(-1.0),
            SortValue::Integer(2),
            SortValue::Decimal(2.5),
            SortValue::Integer(3),
        ];
        assert_eq!(values, expected);
    }

    #[test]
    fn missing_is_greatest() {
        let one = SortValue::Integer(1);
        assert_eq!(
            compare(Some(&one), None, SortOrder::Ascending),
            Ordering::Less
        );
        assert_eq!(
            compare(Some(&one), None, SortOrder::Descending),
            Ordering::Greater
        );
    }
}
