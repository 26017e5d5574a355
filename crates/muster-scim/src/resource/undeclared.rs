//! Attributes no schema declares: refused (the default) or captured in the
//! resource's "unmapped" object, per tenant policy.
//!
//! The unmapped object is kept apart from the canonical resource, so a
//! captured value is never returned, filtered or sorted on as if declared.
//! Keys are paths: the key exactly as the client sent it at the top level
//! (`foo`, `urn:...:acme:2.0:User:foo`, or a whole undeclared extension URN
//! holding its object), and the canonical container joined with the key as
//! sent below a declared one (`urn:...:contoso:2.0:User:foo` inside a
//! declared extension object, `name.foo` inside a declared complex value).
//! An undeclared sub-attribute of a multi-valued attribute is captured as the
//! list of the values its elements carried.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::value::is_absent;
use crate::error::ScimError;

/// What a tenant does with an attribute no schema declares.
///
/// In neither mode is a value a client sends accepted and lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UndeclaredPolicy {
    /// `400` naming the full path, with a "did you mean" when a declared
    /// path is close and how to declare it. The default.
    #[default]
    Reject,
    /// Kept in the resource's unmapped object, apart from declared
    /// attributes; everything declared is still validated.
    Capture,
}

impl UndeclaredPolicy {
    /// The policy's name in configuration: `reject` or `capture`.
    pub fn as_str(self) -> &'static str {
        match self {
            UndeclaredPolicy::Reject => "reject",
            UndeclaredPolicy::Capture => "capture",
        }
    }

    /// Parses `reject` or `capture`, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        [UndeclaredPolicy::Reject, UndeclaredPolicy::Capture]
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(name))
    }
}

/// How captured values are written: as a POST/PUT body (each key once), or
/// as a PATCH `add` (merged into what is there) or `replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// A whole body: the unmapped object starts empty.
    Body,
    /// PATCH `add`: lists are appended to, objects merged.
    Add,
    /// PATCH `replace` (and `remove`): values replace what is there.
    Replace,
}

/// The unmapped object being built by one body or one PATCH.
#[derive(Debug)]
pub(crate) struct Unmapped {
    entries: Map<String, Value>,
    write: Write,
    /// Keys written by the current body or operation.
    written: Vec<String>,
}

impl Unmapped {
    /// Starts from `entries` (empty for a body, the stored ones for PATCH).
    pub fn new(entries: Map<String, Value>, write: Write) -> Self {
        Unmapped {
            entries,
            write,
            written: Vec::new(),
        }
    }

    /// Starts the next PATCH operation.
    pub fn begin(&mut self, write: Write) {
        self.write = write;
        self.written.clear();
    }

    /// The unmapped object.
    pub fn into_entries(self) -> Map<String, Value> {
        self.entries
    }

    /// Records the value of an undeclared path. `element` marks one element
    /// of a multi-valued attribute's values: elements are collected in a
    /// list. An absent value (`null`, `""`, `[]`, `{}`) clears the entry in
    /// a PATCH and is nothing in a body. Keys match case-insensitively.
    pub fn put(&mut self, path: &str, value: &Value, element: bool) -> Result<(), ScimError> {
        let existing = self
            .entries
            .keys()
            .find(|key| key.eq_ignore_ascii_case(path))
            .cloned();
        let again = existing
            .as_ref()
            .is_some_and(|key| self.written.contains(key));
        if is_absent(value) {
            if !element && !again && self.write != Write::Body {
                if let Some(key) = existing {
                    self.entries.shift_remove(&key);
                }
            }
            return Ok(());
        }
        let key = existing.unwrap_or_else(|| path.to_owned());
        if again {
            return match self.entries.get_mut(&key) {
                Some(Value::Array(items)) if element => {
                    items.push(value.clone());
                    check_count(path, "values", items.len())
                }
                Some(current) if current == value => Ok(()),
                Some(_) | None => Err(ScimError::invalid_syntax(format!(
                    "attribute '{path}' is given more than once with different values (names are case-insensitive)"
                ))),
            };
        }
        let new = if element {
            Value::Array(vec![value.clone()])
        } else {
            value.clone()
        };
        match (self.write, self.entries.get_mut(&key)) {
            (Write::Add, Some(Value::Array(items))) => {
                let added = match new {
                    Value::Array(added) => added,
                    single => vec![single],
                };
                for item in added {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                check_count(path, "values", items.len())?;
            }
            (Write::Add, Some(Value::Object(fields))) if new.is_object() => {
                if let Value::Object(added) = new {
                    for (name, field) in added {
                        if is_absent(&field) {
                            fields.shift_remove(&name);
                        } else {
                            fields.insert(name, field);
                        }
                    }
                }
                check_count(path, "members", fields.len())?;
            }
            (_, Some(slot)) => *slot = new,
            (_, None) => {
                self.entries.insert(key.clone(), new);
                if self.entries.len() > super::MAX_VALUES {
                    return Err(ScimError::invalid_value(format!(
                        "a resource holds at most {} undeclared attributes; this request would give it {}",
                        super::MAX_VALUES,
                        self.entries.len()
                    )));
                }
            }
        }
        self.written.push(key);
        Ok(())
    }

    /// Whether an entry is kept for `path` (case-insensitively).
    pub fn holds(&self, path: &str) -> bool {
        self.entries
            .keys()
            .any(|key| key.eq_ignore_ascii_case(path))
    }

    /// Removes the entry of an undeclared path (PATCH `remove`).
    pub fn remove(&mut self, path: &str) {
        let existing = self
            .entries
            .keys()
            .find(|key| key.eq_ignore_ascii_case(path))
            .cloned();
        if let Some(key) = existing {
            self.entries.shift_remove(&key);
        }
    }
}

/// Captured values are bounded like declared ones ([`super::MAX_VALUES`]):
/// repeated PATCH `add`s cannot grow a captured list or object, nor the
/// number of captured attributes, without bound. On error the whole body or
/// PATCH is refused, so nothing is stored.
fn check_count(what: &str, unit: &str, count: usize) -> Result<(), ScimError> {
    if count <= super::MAX_VALUES {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "undeclared attribute '{}' holds at most {} {unit}; this request would give it {count}",
        super::value::truncate(what),
        super::MAX_VALUES
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn policy_names() {
        assert_eq!(
            UndeclaredPolicy::parse("CAPTURE"),
            Some(UndeclaredPolicy::Capture)
        );
        assert_eq!(UndeclaredPolicy::parse("drop"), None);
        assert_eq!(UndeclaredPolicy::default(), UndeclaredPolicy::Reject);
    }

    #[test]
    fn body_writes() {
        let mut unmapped = Unmapped::new(Map::new(), Write::Body);
        unmapped.put("foo", &json!(1), false).unwrap();
        unmapped.put("FOO", &json!(1), false).unwrap();
        assert!(unmapped.put("Foo", &json!(2), false).is_err());
        unmapped.put("emails.kind", &json!("a"), true).unwrap();
        unmapped.put("emails.kind", &json!("b"), true).unwrap();
        unmapped.put("bar", &json!(null), false).unwrap();
        assert_eq!(
            Value::Object(unmapped.into_entries()),
            json!({"foo": 1, "emails.kind": ["a", "b"]})
        );
    }

    #[test]
    fn patch_writes() {
        let stored = entries(json!({"tags": ["a"], "obj": {"x": 1}, "n": 1, "gone": 2}));
        let mut unmapped = Unmapped::new(stored, Write::Add);
        unmapped.put("TAGS", &json!(["b", "a"]), false).unwrap();
        unmapped
            .put("obj", &json!({"y": 2, "x": null}), false)
            .unwrap();
        unmapped.begin(Write::Replace);
        unmapped.put("n", &json!(5), false).unwrap();
        unmapped.put("gone", &json!(""), false).unwrap();
        unmapped.begin(Write::Replace);
        unmapped.remove("OBJ");
        assert_eq!(
            Value::Object(unmapped.into_entries()),
            json!({"tags": ["a", "b"], "n": 5})
        );
    }
}
