//! The attribute-level difference of two canonical resources.
//!
//! An attribute is a top-level key (`userName`, `emails`), an attribute
//! of an extension (`urn:...:enterprise:2.0:User:department`), or a
//! sub-attribute of a singular complex attribute (`name.givenName`,
//! `urn:...:User:manager.value`). A multi-valued attribute is compared
//! whole. `id`, `meta`, `members` and the computed `groups` are not
//! attributes of a change (membership has its own delta).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::redact::Redaction;

/// Keys no attribute change is reported for.
const OUTSIDE: [&str; 4] = ["id", "meta", "members", "groups"];

/// One attribute whose value differs; `None` where it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// The attribute's path, in the resource's own spelling.
    pub path: String,
    /// The value before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The attributes that differ between `before` and `after` (either absent
/// for a create or a delete), in the order `after` then `before` hold
/// them, with every value `redaction` covers replaced by
/// [`crate::REDACTED`].
pub fn diff(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    redaction: &Redaction,
) -> Vec<AttributeChange> {
    let mut changes = Vec::new();
    for (key, before_value, after_value) in pairs(before, after) {
        if OUTSIDE
            .iter()
            .any(|outside| key.eq_ignore_ascii_case(outside))
        {
            continue;
        }
        let separator = if key
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"))
        {
            ':'
        } else {
            '.'
        };
        walk(
            key,
            separator,
            before_value,
            after_value,
            1,
            redaction,
            &mut changes,
        );
    }
    changes
}

/// Compares the values at `path`, descending into objects while `depth`
/// allows (an extension's attributes, then their sub-attributes).
fn walk(
    path: &str,
    separator: char,
    before: Option<&Value>,
    after: Option<&Value>,
    depth: u8,
    redaction: &Redaction,
    changes: &mut Vec<AttributeChange>,
) {
    if before == after {
        return;
    }
    let descend = depth > 0
        && matches!(before, None | Some(Value::Object(_)))
        && matches!(after, None | Some(Value::Object(_)));
    if descend {
        let before = before.and_then(Value::as_object);
        let after = after.and_then(Value::as_object);
        // An extension's attributes may be complex: one level more.
        let deeper = if separator == ':' { 1 } else { 0 };
        for (name, before_value, after_value) in pairs(before, after) {
            let child = format!("{path}{separator}{name}");
            walk(
                &child,
                '.',
                before_value,
                after_value,
                deeper,
                redaction,
                changes,
            );
        }
        return;
    }
    changes.push(AttributeChange {
        path: path.to_owned(),
        before: before.map(|value| redaction.apply(path, value)),
        after: after.map(|value| redaction.apply(path, value)),
    });
}

/// The keys of `after` then those only `before` has, with both values.
fn pairs<'a>(
    before: Option<&'a Map<String, Value>>,
    after: Option<&'a Map<String, Value>>,
) -> Vec<(&'a str, Option<&'a Value>, Option<&'a Value>)> {
    let mut pairs = Vec::new();
    if let Some(after) = after {
        for (key, value) in after {
            pairs.push((
                key.as_str(),
                before.and_then(|before| before.get(key)),
                Some(value),
            ));
        }
    }
    if let Some(before) = before {
        for (key, value) in before {
            if after.is_none_or(|after| !after.contains_key(key)) {
                pairs.push((key.as_str(), Some(value), None));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{diff, AttributeChange};
    use crate::{Redaction, REDACTED};

    fn check(before: Value, after: Value, listed: &[&str], expected: Value) {
        let listed: Vec<String> = listed.iter().map(|path| (*path).to_owned()).collect();
        let changes = diff(
            before.as_object(),
            after.as_object(),
            &Redaction::new(&listed),
        );
        let got = serde_json::to_value(&changes).unwrap_or(Value::Null);
        assert_eq!(got, expected);
        let _: Vec<AttributeChange> = serde_json::from_value(got).unwrap_or_default();
    }

    #[test]
    fn attribute_level() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        check(
            json!({"userName": "a", "name": {"givenName": "A", "familyName": "F"},
                   "meta": {"version": "W/\"1\""}, "id": "1",
                   ext: {"department": "Ops", "manager": {"value": "m1"}}}),
            json!({"userName": "b", "name": {"givenName": "A"},
                   "meta": {"version": "W/\"2\""}, "id": "1",
                   ext: {"department": "Ops", "manager": {"value": "m2"}},
                   "emails": [{"value": "x@example.com"}]}),
            &[],
            json!([
                {"path": "userName", "before": "a", "after": "b"},
                {"path": "name.familyName", "before": "F"},
                {"path": format!("{ext}:manager.value"), "before": "m1", "after": "m2"},
                {"path": "emails", "after": [{"value": "x@example.com"}]},
            ]),
        );
    }

    #[test]
    fn create_and_delete() {
        check(
            Value::Null,
            json!({"userName": "a", "password": "$argon2id$h"}),
            &[],
            json!([{"path": "userName", "after": "a"}, {"path": "password", "after": REDACTED}]),
        );
        check(
            json!({"userName": "a"}),
            Value::Null,
            &[],
            json!([{"path": "userName", "before": "a"}]),
        );
    }

    #[test]
    fn secrets_redacted_everywhere() {
        let ext = "urn:example:ext:2.0:User";
        check(
            json!({"password": "$argon2id$a", ext: {"pin": "1"}}),
            json!({"password": "$argon2id$b", ext: {"pin": "2", "cards": [{"code": "9", "n": 1}]}}),
            &[&format!("{ext}:PIN"), &format!("{ext}:cards.code")],
            json!([
                {"path": "password", "before": REDACTED, "after": REDACTED},
                {"path": format!("{ext}:pin"), "before": REDACTED, "after": REDACTED},
                {"path": format!("{ext}:cards"), "after": [{"code": REDACTED, "n": 1}]},
            ]),
        );
        // A whole extension removed or replaced by a scalar is still redacted.
        check(
            json!({ext: {"pin": "1"}}),
            json!({}),
            &[&format!("{ext}:pin")],
            json!([{"path": format!("{ext}:pin"), "before": REDACTED}]),
        );
        check(
            json!({ext: {"pin": "1"}}),
            json!({ext: "odd"}),
            &[&format!("{ext}:pin")],
            json!([{"path": ext, "before": {"pin": REDACTED}, "after": "odd"}]),
        );
    }
}
