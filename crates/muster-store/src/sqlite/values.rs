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
//!
//! Secrets stay out ([`NeverReturned`]): the values of attributes that are
//! never returned (the core `password`, always, and the paths the server
//! names on each write) give no index row at all, so no filter or sort can
//! probe them (`password sw "$argon2id$..."` was a prefix oracle on the
//! hash), and they are stripped from change record payloads. A User's
//! `password` must be an argon2 hash ([`check_password`]): the store never
//! keeps one in clear.

use std::borrow::Cow;

use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::read::USER;
use crate::StoreError;

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

/// The index rows of a canonical resource, without the rows of the paths
/// `never` covers (see [`NeverReturned`]).
pub(crate) fn index_rows(resource: &Map<String, Value>, never: &NeverReturned) -> Vec<ValueRow> {
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
    if !never.paths.is_empty() {
        rows.retain(|row| !never.covers(&row.path));
    }
    rows
}

/// The attribute index path of the core `password`, which is never
/// returned.
const PASSWORD: &str = "password";

/// How an argon2 hash in the PHC string format starts.
const ARGON2_PREFIXES: [&str; 3] = ["$argon2id$", "$argon2i$", "$argon2d$"];

/// The attributes whose values are never returned (`returned: never`), as
/// attribute index paths (ASCII lower case, see the module documentation):
/// their values give no index row and are stripped from change record
/// payloads. A path covers its sub-attributes (`urn:...:ext:secret`
/// covers `urn:...:ext:secret.pin`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NeverReturned {
    /// The covered index paths.
    paths: Vec<String>,
    /// The resource's core schema URN (its first `schemas` entry), lower
    /// case: a path written under it names a core attribute.
    core: Option<String>,
}

/// What stripping never-returned values did to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strip {
    /// Nothing was removed.
    Kept,
    /// Something was removed; the rest stays.
    Changed,
    /// The whole value goes (never returned, or nothing else was left).
    Remove,
}

impl NeverReturned {
    /// Covers nothing: what a stored resource's rows may be, whatever the
    /// rules were when they were written.
    pub(crate) const NOTHING: NeverReturned = NeverReturned {
        paths: Vec::new(),
        core: None,
    };

    /// The core `password` and the `listed` paths of a write of `resource`.
    ///
    /// `listed` holds canonical paths as the registry writes them, in any
    /// case: `urn:...:Ext:attr`, `urn:...:Ext:attr.sub`, or a core
    /// attribute, bare (`nickName`, `name.givenName`) or after its core
    /// schema URN.
    pub(crate) fn new(resource: &Map<String, Value>, listed: &[String]) -> Self {
        let core = resource
            .get("schemas")
            .and_then(|schemas| schemas.get(0))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let mut never = NeverReturned {
            paths: Vec::with_capacity(listed.len() + 1),
            core,
        };
        never.paths.push(PASSWORD.to_owned());
        for path in listed {
            let path = never.index_path(path);
            if !path.is_empty() && !never.paths.contains(&path) {
                never.paths.push(path);
            }
        }
        never
    }

    /// The attribute index path of a canonical path: ASCII lower case, a
    /// core schema URN prefix dropped.
    fn index_path(&self, path: &str) -> String {
        let path = path.to_ascii_lowercase();
        match path.rsplit_once(':') {
            Some((urn, attribute)) if self.is_core(urn) => attribute.to_owned(),
            _ => path,
        }
    }

    fn is_core(&self, urn: &str) -> bool {
        self.core.as_deref() == Some(urn)
            || [USER_SCHEMA, GROUP_SCHEMA]
                .iter()
                .any(|core| core.eq_ignore_ascii_case(urn))
    }

    /// Whether the values at an attribute index path (lower case) are never
    /// returned.
    pub(crate) fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|never| {
            path.strip_prefix(never.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }

    /// The separator (`:` under an extension URN, `.` under an attribute)
    /// after `path` of a covered path that lies beneath it, if any.
    fn beneath(&self, path: &str) -> Option<char> {
        self.paths.iter().find_map(|never| {
            let separator = never.strip_prefix(path)?.chars().next()?;
            matches!(separator, ':' | '.').then_some(separator)
        })
    }

    /// Whether a resource holds any value to strip.
    fn holds_any(&self, object: &Map<String, Value>) -> bool {
        object.keys().any(|key| {
            let path = key.to_ascii_lowercase();
            self.covers(&path) || self.beneath(&path).is_some()
        })
    }

    /// The text of a resource for a change record payload: `text` (the
    /// resource's own JSON text) when `object` holds no never-returned
    /// value, else the text of a copy without them.
    pub(crate) fn payload_text<'a>(
        &self,
        object: &Map<String, Value>,
        text: &'a str,
    ) -> Result<Cow<'a, str>, StoreError> {
        if !self.holds_any(object) {
            return Ok(Cow::Borrowed(text));
        }
        let mut copy = object.clone();
        self.strip_resource(&mut copy);
        serde_json::to_string(&copy)
            .map(Cow::Owned)
            .map_err(|error| StoreError::Database(format!("cannot serialise a payload: {error}")))
    }

    /// Removes the never-returned values from a resource's attributes,
    /// and what that leaves empty; whether it removed any.
    pub(crate) fn strip_resource(&self, object: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        object.retain(|key, value| {
            let path = key.to_ascii_lowercase();
            if NOT_INDEXED.contains(&path.as_str()) {
                return true;
            }
            keep(self.strip_at(&path, value), &mut changed)
        });
        changed
    }

    /// Removes the never-returned values from what a schema rewrite
    /// removed (the change record's `"removed"`): a list of `{"path": ..,
    /// "value": ..}` (as the server's rewrite gives it) or an object keyed
    /// by path. An entry whose path is never returned goes, and so does
    /// one left empty. Whether it removed any.
    pub(crate) fn strip_removed(&self, removed: &mut Value) -> bool {
        let mut changed = false;
        match removed {
            Value::Array(entries) => entries.retain_mut(|entry| {
                let Some(entry) = entry.as_object_mut() else {
                    return true;
                };
                let Some(path) = entry.get("path").and_then(Value::as_str) else {
                    return true;
                };
                let path = self.index_path(path);
                match entry.get_mut("value") {
                    Some(value) => keep(self.strip_at(&path, value), &mut changed),
                    None => keep(
                        if self.covers(&path) {
                            Strip::Remove
                        } else {
                            Strip::Kept
                        },
                        &mut changed,
                    ),
                }
            }),
            Value::Object(entries) => entries.retain(|path, value| {
                let path = self.index_path(path);
                keep(self.strip_at(&path, value), &mut changed)
            }),
            _ => {}
        }
        changed
    }

    /// Strips the value at an index path. Recurses only towards a covered
    /// path, one path segment a level, so its depth is bounded by the
    /// covered paths, whatever the value's.
    fn strip_at(&self, path: &str, value: &mut Value) -> Strip {
        if self.covers(path) {
            return Strip::Remove;
        }
        let Some(separator) = self.beneath(path) else {
            return Strip::Kept;
        };
        match value {
            Value::Object(members) => self.strip_members(path, separator, members),
            // The elements of a multi-valued attribute share its path.
            Value::Array(items) => {
                let mut changed = false;
                items.retain_mut(|item| match item {
                    Value::Object(members) => {
                        keep(self.strip_members(path, separator, members), &mut changed)
                    }
                    _ => true,
                });
                emptied(changed, items.is_empty())
            }
            _ => Strip::Kept,
        }
    }

    fn strip_members(
        &self,
        path: &str,
        separator: char,
        members: &mut Map<String, Value>,
    ) -> Strip {
        let mut changed = false;
        members.retain(|name, member| {
            let child = format!("{path}{separator}{}", name.to_ascii_lowercase());
            keep(self.strip_at(&child, member), &mut changed)
        });
        emptied(changed, members.is_empty())
    }
}

/// Whether a value stays after stripping; notes a change.
fn keep(strip: Strip, changed: &mut bool) -> bool {
    if strip != Strip::Kept {
        *changed = true;
    }
    strip != Strip::Remove
}

/// What stripping did to a container.
fn emptied(changed: bool, empty: bool) -> Strip {
    match (changed, empty) {
        (false, _) => Strip::Kept,
        (true, false) => Strip::Changed,
        (true, true) => Strip::Remove,
    }
}

/// Whether a text is an argon2 hash in the PHC string format:
/// `$argon2id$` (or `$argon2i$`, `$argon2d$`), an optional `v=<version>`,
/// the parameters (`m=..,t=..,p=..`), then the salt and the hash, each
/// non-empty and in the PHC alphabets.
pub(crate) fn is_argon2_hash(text: &str) -> bool {
    let Some(rest) = ARGON2_PREFIXES
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
    else {
        return false;
    };
    let fields: Vec<&str> = rest.split('$').collect();
    let (parameters, salt, hash) = match fields.as_slice() {
        [version, parameters, salt, hash] => {
            let digits = version.strip_prefix("v=").unwrap_or_default();
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return false;
            }
            (*parameters, *salt, *hash)
        }
        [parameters, salt, hash] => (*parameters, *salt, *hash),
        _ => return false,
    };
    let parameter = |pair: &str| {
        pair.split_once('=').is_some_and(|(name, value)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && !value.is_empty()
                && value.bytes().all(|byte| {
                    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'+' | b'.' | b'-')
                })
        })
    };
    let base64 = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'+'))
    };
    parameters.split(',').all(parameter)
        && !salt.is_empty()
        && salt
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'+' | b'.' | b'-'))
        && base64(hash)
}

/// Refuses a User whose top-level `password` (the key in any case) is not
/// an argon2 hash ([`is_argon2_hash`]): the server hashes passwords before
/// they reach the store, so a clear-text one here is the server's fault,
/// not its client's ([`StoreError::Refused`]). `subject` names the
/// resource in the error, which never holds the value. Other resource
/// types pass.
pub(crate) fn check_password(
    resource_type: &str,
    content: &Map<String, Value>,
    subject: &str,
) -> Result<(), StoreError> {
    if resource_type != USER {
        return Ok(());
    }
    let clear = content.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case(PASSWORD) && !value.as_str().is_some_and(is_argon2_hash)
    });
    if clear {
        return Err(StoreError::Refused(format!(
            "{subject}: its password is not an argon2 hash (a PHC string starting with \
             $argon2id$, $argon2i$ or $argon2d$); the store never keeps a password in clear, \
             so nothing was written"
        )));
    }
    Ok(())
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
        index_rows(&map, &NeverReturned::NOTHING)
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

    /// An argon2id hash in the PHC string format the `argon2` crate writes.
    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wYhO5p6y0aD0Ff0dGq9m6bP3jTDN1qkUPbo3Jc0vR0E";
    const EXT: &str = "urn:x:params:scim:schemas:extension:acme:2.0:User";

    fn object(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    #[test]
    fn argon2_hashes_are_told_from_anything_else() {
        let table = [
            (HASH, true),
            ("$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", true),
            ("$argon2d$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g", true),
            (
                "$argon2id$v=19$m=19456,t=2,p=1,keyid=a1$c2FsdA$aGFzaA",
                true,
            ),
            ("", false),
            ("correct horse", false),
            ("$argon2id$", false),
            ("$argon2id$correct horse", false),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$", false),
            ("$argon2id$v=19$m=19456,t=2,p=1$$aGFzaA", false),
            ("$argon2id$v=x$m=19456,t=2,p=1$c2FsdA$aGFzaA", false),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFz aA", false),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA$extra", false),
            ("$argon2id$v=19$m=,t=2$c2FsdA$aGFzaA", false),
            ("$argon2x$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", false),
            (
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                false,
            ),
            (" $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", false),
        ];
        for (text, expected) in table {
            assert_eq!(is_argon2_hash(text), expected, "{text}");
        }
    }

    #[test]
    fn only_users_need_a_hashed_password() {
        let check = |resource_type: &str, resource: Value| {
            check_password(resource_type, &object(resource), "User 1")
        };
        assert!(check("User", json!({"userName": "a"})).is_ok());
        assert!(check("User", json!({"userName": "a", "password": HASH})).is_ok());
        assert!(check("Group", json!({"password": "correct horse"})).is_ok());
        for refused in [
            json!({"password": "correct horse"}),
            json!({"Password": "correct horse"}),
            json!({"password": HASH, "PASSWORD": "correct horse"}),
            json!({"password": 42}),
            json!({"password": null}),
        ] {
            match check("User", refused.clone()) {
                Err(StoreError::Refused(text)) => {
                    assert!(text.starts_with("User 1: "), "{text}");
                    assert!(!text.contains("correct horse"), "{text}");
                }
                other => panic!("{refused} gave {other:?}"),
            }
        }
    }

    #[test]
    fn never_returned_values_give_no_index_row() {
        let resource = object(json!({
            "schemas": [USER_SCHEMA, EXT],
            "userName": "bjensen",
            "Password": HASH,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            EXT: {"secret": "s3", "region": "EU",
                  "badges": [{"pin": "1234", "site": "Oslo"}, {"pin": ["9"]}]},
        }));
        let listed = [
            format!("{EXT}:Secret"),
            format!("{EXT}:badges.PIN"),
            format!("{USER_SCHEMA}:name.familyName"),
        ];
        let never = NeverReturned::new(&resource, &listed);
        let paths: Vec<String> = index_rows(&resource, &never)
            .into_iter()
            .map(|row| row.path)
            .collect();
        let ext = EXT.to_ascii_lowercase();
        let expected = [
            "username".to_owned(),
            "name".to_owned(),
            "name.givenname".to_owned(),
            format!("{ext}:region"),
            format!("{ext}:badges"),
            format!("{ext}:badges.site"),
            format!("{ext}:badges"),
        ];
        assert_eq!(paths, expected);
        // The password always, even with nothing listed.
        let bare = NeverReturned::new(&resource, &[]);
        assert!(index_rows(&resource, &bare)
            .iter()
            .all(|row| !row.path.starts_with("password")));
        assert!(bare.covers("password") && bare.covers("password.x"));
        assert!(!bare.covers("passwords") && !bare.covers("name.password"));
    }

    #[test]
    fn never_returned_values_are_stripped_from_payloads() {
        let resource = object(json!({
            "schemas": [USER_SCHEMA, EXT],
            "id": "1",
            "userName": "bjensen",
            "password": HASH,
            EXT: {"secret": "s3",
                  "badges": [{"pin": "1234", "site": "Oslo"}, {"pin": "9"}]},
            "meta": {"version": "W/\"1\""},
        }));
        let listed = [format!("{EXT}:secret"), format!("{EXT}:badges.pin")];
        let never = NeverReturned::new(&resource, &listed);
        let text = serde_json::to_string(&resource).unwrap();
        let shown = never.payload_text(&resource, &text).unwrap();
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(
            shown,
            json!({
                "schemas": [USER_SCHEMA, EXT],
                "id": "1",
                "userName": "bjensen",
                EXT: {"badges": [{"site": "Oslo"}]},
                "meta": {"version": "W/\"1\""},
            })
        );
        // Nothing to strip: the text itself, not a copy.
        let plain = object(json!({"userName": "b", "name": {"givenName": "B"}}));
        assert!(matches!(
            never.payload_text(&plain, "same").unwrap(),
            Cow::Borrowed("same")
        ));
        // A rewrite's removed values: whole extensions and attributes.
        let mut removed = json!([
            {"path": format!("{EXT}:secret"), "value": "s3"},
            {"path": EXT, "value": {"secret": "s3", "region": "EU"}},
            {"path": format!("{EXT}:badges"), "value": [{"pin": "1"}]},
            {"path": format!("{EXT}:region"), "value": "EU"},
            {"path": "Password", "value": HASH},
        ]);
        assert!(never.strip_removed(&mut removed));
        assert_eq!(
            removed,
            json!([
                {"path": EXT, "value": {"region": "EU"}},
                {"path": format!("{EXT}:region"), "value": "EU"},
            ])
        );
        let mut untouched = json!([{"path": format!("{EXT}:region"), "value": "EU"}]);
        assert!(!never.strip_removed(&mut untouched));
    }
}
