//! The attribute index: every value of a stored resource as rows of
//! `resource_values`, so that filters and sorting run in SQL.
//!
//! Indexing needs no schema, so any attribute of any extension registered at
//! run time is indexed the moment it is stored. Whether a row also enters
//! the lookup index (`indexed`) is the tenant's index rules' call
//! (`rules.rs`): a custom attribute that is not searchable stays out of it. A resource's JSON is walked
//! the way the filter evaluator reads it:
//!
//! - a top-level key gives the path `key` (lower-cased); an object under a
//!   key starting with `urn:` is an extension, whose keys give `urn:key`;
//! - an array contributes one *element* per item (`element` = index); any
//!   other value is element 0;
//! - an element that is an object also gives rows for its members, at
//!   `path.sub` with the same `element`; an array there gives one row per item
//!   (`item` = 1, 2, ...), a single value gives `item` = 0.
//!
//! Each row records whether its value is present in the `pr` sense and its
//! value in typed columns: strings lower-cased (`value_lower`, always set for
//! strings) plus the exact text only when it differs (`value_exact`), a
//! sortable instant when the string is RFC 3339 (`value_time`), numbers and
//! booleans. Whether a comparison is case-exact, or a dateTime comparison, is
//! decided at query time from the registry.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A typed scalar as stored in the value columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// Null, an object or an array: no comparable value.
    None,
    /// A boolean.
    Bool(bool),
    /// A number that fits an `i64`.
    Integer(i64),
    /// Any other number.
    Real(f64),
    /// A string.
    Text {
        /// Unicode lower case.
        lower: String,
        /// The text itself, when it differs from `lower`.
        exact: Option<String>,
        /// [`sortable_instant`] of the text, when it is RFC 3339.
        time: Option<String>,
    },
}

/// One row of the attribute index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValueRow {
    /// The lower-cased canonical path (`emails.value`, `urn:...:user:department`).
    pub path: String,
    /// The index within a multi-valued attribute; 0 for a single value.
    pub element: i64,
    /// The index (from 1) within an array-valued sub-attribute; 0 otherwise.
    pub item: i64,
    /// Present in the `pr` sense: not null, `""`, `[]` or `{}`.
    pub present: bool,
    /// The comparable value.
    pub value: Scalar,
}

/// Top-level keys not indexed: `id` and `meta` are columns of the resource
/// row; `schemas` is no attribute of any schema, so no filter can name it.
const NOT_INDEXED: [&str; 3] = ["id", "meta", "schemas"];

/// The index rows of a canonical resource.
pub(crate) fn index_rows(resource: &Map<String, Value>) -> Vec<ValueRow> {
    let mut rows = Vec::new();
    for (key, value) in resource {
        let path = key.to_ascii_lowercase();
        if NOT_INDEXED.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(extension) if path.starts_with("urn:") => {
                for (name, value) in extension {
                    let path = format!("{path}:{}", name.to_ascii_lowercase());
                    attribute_rows(&mut rows, &path, value);
                }
            }
            _ => attribute_rows(&mut rows, &path, value),
        }
    }
    rows
}

fn attribute_rows(rows: &mut Vec<ValueRow>, path: &str, value: &Value) {
    match value {
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                element_rows(rows, path, to_i64(index), element);
            }
        }
        other => element_rows(rows, path, 0, other),
    }
}

fn element_rows(rows: &mut Vec<ValueRow>, path: &str, element: i64, value: &Value) {
    rows.push(row(path.to_owned(), element, 0, value));
    if let Value::Object(members) = value {
        for (name, sub_value) in members {
            let sub_path = format!("{path}.{}", name.to_ascii_lowercase());
            match sub_value {
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        rows.push(row(sub_path.clone(), element, to_i64(index + 1), item));
                    }
                }
                other => rows.push(row(sub_path, element, 0, other)),
            }
        }
    }
}

fn row(path: String, element: i64, item: i64, value: &Value) -> ValueRow {
    ValueRow {
        path,
        element,
        item,
        present: is_present(value),
        value: scalar(value),
    }
}

fn to_i64(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// The typed scalar of a JSON value.
pub(crate) fn scalar(value: &Value) -> Scalar {
    match value {
        Value::Bool(flag) => Scalar::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Scalar::Integer(integer),
            None => number.as_f64().map_or(Scalar::None, Scalar::Real),
        },
        Value::String(text) => {
            let lower = text.to_lowercase();
            let exact = (lower != *text).then(|| text.clone());
            Scalar::Text {
                time: sortable_instant(text),
                lower,
                exact,
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => Scalar::None,
    }
}

/// Present in the `pr` sense: not null, `""`, `[]` or `{}` (an array is
/// present when one of its items is).
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => !members.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Offset that makes every RFC 3339 instant's nanosecond count positive.
const INSTANT_OFFSET: i128 = 1_000_000_000_000_000_000_000;

/// An RFC 3339 text as a fixed-width decimal string whose text order is the
/// order of the instants, whatever offset and precision it was written in;
/// `None` when the text is not RFC 3339.
pub(crate) fn sortable_instant(text: &str) -> Option<String> {
    // Cheap pre-check: RFC 3339 starts with four digits and a dash.
    let bytes = text.as_bytes();
    let looks_like_date = bytes.len() >= 20
        && bytes
            .get(..4)
            .is_some_and(|year| year.iter().all(u8::is_ascii_digit))
        && bytes.get(4) == Some(&b'-');
    if !looks_like_date {
        return None;
    }
    let instant = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(format!(
        "{:022}",
        instant.unix_timestamp_nanos() + INSTANT_OFFSET
    ))
}

/// The current time as `meta` writes it: RFC 3339 UTC with milliseconds.
pub(crate) fn now_text() -> String {
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows_of(resource: Value) -> Vec<(String, i64, i64, bool, Scalar)> {
        let Value::Object(map) = resource else {
            unreachable!()
        };
        index_rows(&map)
            .into_iter()
            .map(|row| (row.path, row.element, row.item, row.present, row.value))
            .collect()
    }

    fn text(lower: &str, exact: Option<&str>) -> Scalar {
        Scalar::Text {
            lower: lower.to_owned(),
            exact: exact.map(str::to_owned),
            time: None,
        }
    }

    #[test]
    fn walks_like_the_evaluator() {
        let rows = rows_of(json!({
            "schemas": ["urn:x"],
            "id": "1",
            "meta": {"version": "W/\"1\""},
            "userName": "Bjensen",
            "emails": [{"value": "b@x.org", "primary": true}, {}],
            "urn:x:Ext": {"Tags": ["a", ""], "manager": {"value": "m1"}},
            "n": {"list": [1, 2.5]},
        }));
        let expected = vec![
            (
                "username".into(),
                0,
                0,
                true,
                text("bjensen", Some("Bjensen")),
            ),
            ("emails".into(), 0, 0, true, Scalar::None),
            ("emails.value".into(), 0, 0, true, text("b@x.org", None)),
            ("emails.primary".into(), 0, 0, true, Scalar::Bool(true)),
            ("emails".into(), 1, 0, false, Scalar::None),
            ("urn:x:ext:tags".into(), 0, 0, true, text("a", None)),
            ("urn:x:ext:tags".into(), 1, 0, false, text("", None)),
            ("urn:x:ext:manager".into(), 0, 0, true, Scalar::None),
            (
                "urn:x:ext:manager.value".into(),
                0,
                0,
                true,
                text("m1", None),
            ),
            ("n".into(), 0, 0, true, Scalar::None),
            ("n.list".into(), 0, 1, true, Scalar::Integer(1)),
            ("n.list".into(), 0, 2, true, Scalar::Real(2.5)),
        ];
        assert_eq!(rows, expected);
    }

    #[test]
    fn instants_sort_as_text() {
        let table = [
            ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000000001Z"),
            ("2024-01-01T01:00:00+02:00", "2024-01-01T00:00:00Z"),
            ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
            ("1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"),
        ];
        for (earlier, later) in table {
            let (a, b) = (sortable_instant(earlier), sortable_instant(later));
            assert!(a.is_some() && a < b, "{earlier} < {later}: {a:?} {b:?}");
        }
        assert_eq!(sortable_instant("not a date at all, no"), None);
        assert_eq!(
            sortable_instant("2024-01-01T00:00:00Z"),
            sortable_instant("2024-01-01T01:00:00.000+01:00")
        );
    }
}
