//! Which values an audit entry never holds: the core `password` always,
//! and every path the tenant's schemas declare `returned: never` or
//! `mutability: writeOnly`. Their values are replaced by [`REDACTED`], so
//! the entry still says that they changed, never what they were.

use serde_json::{Map, Value};

/// What stands in an entry for a secret value.
pub const REDACTED: &str = "[redacted]";

/// The core schemas: a path under one of them names a core attribute.
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:user",
    "urn:ietf:params:scim:schemas:core:2.0:group",
];

/// The secret paths of one write, in lower case (`password`,
/// `urn:...:ext:pin`, `urn:...:ext:secret.code`); a path covers its
/// sub-attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    paths: Vec<String>,
}

impl Redaction {
    /// The core `password` and `listed` (canonical paths as the schema
    /// registry writes them, in any case; a core attribute bare or after
    /// its schema URN).
    pub fn new(listed: &[String]) -> Self {
        let mut paths = vec!["password".to_owned()];
        for path in listed {
            let path = normal(path);
            if !path.is_empty() && !paths.contains(&path) {
                paths.push(path);
            }
        }
        Redaction { paths }
    }

    /// Whether the value at `path` (a path as [`crate::diff`] writes it) is
    /// secret.
    pub fn covers(&self, path: &str) -> bool {
        let path = normal(path);
        self.paths.iter().any(|secret| {
            path.strip_prefix(secret.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }

    /// Whether a secret path lies beneath `path`.
    fn beneath(&self, path: &str) -> Option<char> {
        let path = normal(path);
        self.paths.iter().find_map(|secret| {
            let separator = secret.strip_prefix(path.as_str())?.chars().next()?;
            matches!(separator, ':' | '.').then_some(separator)
        })
    }

    /// `value` (found at `path`) with every secret in it replaced by
    /// [`REDACTED`].
    pub fn apply(&self, path: &str, value: &Value) -> Value {
        if self.covers(path) {
            return Value::from(REDACTED);
        }
        let Some(separator) = self.beneath(path) else {
            return value.clone();
        };
        match value {
            Value::Object(members) => Value::Object(self.members(path, separator, members)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| match item {
                        Value::Object(members) => {
                            Value::Object(self.members(path, separator, members))
                        }
                        other => other.clone(),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn members(
        &self,
        path: &str,
        separator: char,
        members: &Map<String, Value>,
    ) -> Map<String, Value> {
        members
            .iter()
            .map(|(name, member)| {
                let child = format!("{path}{separator}{name}");
                (name.clone(), self.apply(&child, member))
            })
            .collect()
    }
}

/// A path in lower case, a core schema prefix dropped.
fn normal(path: &str) -> String {
    let path = path.to_ascii_lowercase();
    match path.rsplit_once(':') {
        Some((urn, attribute)) if CORE_SCHEMAS.contains(&urn) => attribute.to_owned(),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{Redaction, REDACTED};

    fn check(listed: &[&str], path: &str, value: Value, expected: Value) {
        let listed: Vec<String> = listed.iter().map(|path| (*path).to_owned()).collect();
        assert_eq!(
            Redaction::new(&listed).apply(path, &value),
            expected,
            "{path}"
        );
    }

    #[test]
    fn secrets_are_replaced() {
        let ext = "urn:example:ext:2.0:User";
        check(&[], "password", json!("$argon2id$x"), json!(REDACTED));
        check(&[], "PASSWORD", json!("$argon2id$x"), json!(REDACTED));
        check(
            &[],
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            json!("x"),
            json!(REDACTED),
        );
        check(
            &[&format!("{ext}:pin")],
            &format!("{ext}:PIN"),
            json!("1234"),
            json!(REDACTED),
        );
        check(
            &[&format!("{ext}:secret.code")],
            &format!("{ext}:secret"),
            json!([{"code": "1", "label": "a"}, {"label": "b"}]),
            json!([{"code": REDACTED, "label": "a"}, {"label": "b"}]),
        );
        check(
            &[&format!("{ext}:secret.code")],
            &format!("{ext}:secret"),
            json!({"code": "1", "label": "a"}),
            json!({"code": REDACTED, "label": "a"}),
        );
        check(&["nickName"], "displayName", json!("x"), json!("x"));
        check(&["nick"], "nickName", json!("x"), json!("x"));
    }
}
