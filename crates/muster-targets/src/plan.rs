//! What to send a SCIM target: the body of a create, and the PATCH
//! operations that take the target from what it was last sent to what the
//! mappings give now (nothing when nothing changed).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::compile::Mapped;
use crate::path::JsonPath;

/// The core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The PATCH message schema URN.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most member ids in one PATCH operation.
pub const MEMBERS_PER_OPERATION: usize = 500;

/// The body creating a resource with the mapped values (nulls left out).
pub fn create_body(core_schema: &str, mapped: &Mapped) -> Value {
    let mut body = Map::new();
    let mut schemas = vec![core_schema.to_owned()];
    for (target, value) in &mapped.values {
        if value.is_null() {
            continue;
        }
        if let Ok(path) = JsonPath::parse(target) {
            if let Some(urn) = path.schema() {
                if !schemas.iter().any(|known| known.eq_ignore_ascii_case(urn)) {
                    schemas.push(urn.to_owned());
                }
            }
            path.write(&mut body, value.clone());
        }
    }
    let mut ordered = Map::new();
    ordered.insert("schemas".into(), json!(schemas));
    ordered.extend(body);
    Value::Object(ordered)
}

/// The PATCH operations taking the target from `sent` (what it holds, as
/// last sent or read; `None` when unknown) to `mapped`: `replace` for a
/// changed value, `remove` for a value mapped to null that the target may
/// hold. With `sent` unknown every value is replaced and every null removed.
///
/// A value for one element of a multi-valued attribute
/// (`phoneNumbers[type eq "work"].value`) that the target is known not to
/// hold is added as a whole element (`add` on `phoneNumbers`): a `replace`
/// whose filter matches nothing is `400 noTarget` (RFC 7644 section
/// 3.5.2.3). Values for the same element go in one element.
pub fn patch_operations(mapped: &Mapped, sent: Option<&Map<String, Value>>) -> Vec<Value> {
    let mut operations = Vec::new();
    let mut elements: Vec<(String, String, Map<String, Value>)> = Vec::new();
    for (target, value) in &mapped.values {
        let previous = sent.map(|sent| sent.get(target).unwrap_or(&Value::Null));
        if previous == Some(value) {
            continue;
        }
        if value.is_null() {
            if previous.is_none_or(|previous| !previous.is_null()) {
                operations.push(json!({"op": "remove", "path": target}));
            }
            continue;
        }
        let absent = previous.is_some_and(Value::is_null);
        match JsonPath::parse(target) {
            Ok(path) if absent && path.has_selector() => {
                let attribute = path.attribute_path();
                let selector = selector_key(target);
                let position = elements
                    .iter()
                    .position(|(known, key, _)| *known == attribute && *key == selector);
                let index = match position {
                    Some(index) => index,
                    None => {
                        elements.push((attribute, selector, Map::new()));
                        elements.len() - 1
                    }
                };
                if let Some((_, _, element)) = elements.get_mut(index) {
                    path.write_element(element, value.clone());
                }
            }
            _ => operations.push(json!({"op": "replace", "path": target, "value": value})),
        }
    }
    for (attribute, _, element) in elements {
        operations.push(json!({"op": "add", "path": attribute, "value": [element]}));
    }
    operations
}

/// The `[...]` part of a path, which tells elements apart.
fn selector_key(target: &str) -> String {
    match (target.find('['), target.rfind(']')) {
        (Some(open), Some(close)) if open < close => target
            .get(open..=close)
            .unwrap_or_default()
            .to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The values `target` holds after a successful delivery of `mapped` over
/// `sent`: the mapped values, and for attributes whose mapping failed,
/// what was there before.
pub fn after_delivery(mapped: &Mapped, sent: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut now = mapped.values.clone();
    if let Some(sent) = sent {
        for (target, _) in &mapped.errors {
            if let Some(previous) = sent.get(target) {
                now.insert(target.clone(), previous.clone());
            }
        }
    }
    now
}

/// What a target holds of the mapped attributes, read from its copy of a
/// resource (for a match found by lookup).
pub fn read_back(mapped: &Mapped, remote: &Value) -> Map<String, Value> {
    mapped
        .values
        .keys()
        .filter_map(|target| {
            let path = JsonPath::parse(target).ok()?;
            Some((target.clone(), normalise_remote(path.read(remote))))
        })
        .collect()
}

/// A remote value compared like a mapped one: empty is absent.
fn normalise_remote(value: Value) -> Value {
    match &value {
        Value::String(text) if text.is_empty() => Value::Null,
        Value::Array(items) if items.is_empty() => Value::Null,
        _ => value,
    }
}

/// The PATCH operations taking a group's members at the target from `sent`
/// to `desired` (target ids), in operations of at most
/// [`MEMBERS_PER_OPERATION`] ids.
pub fn member_operations(desired: &BTreeSet<String>, sent: &BTreeSet<String>) -> Vec<Value> {
    let mut operations = Vec::new();
    let added: Vec<&String> = desired.difference(sent).collect();
    for chunk in added.chunks(MEMBERS_PER_OPERATION) {
        let values: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
        operations.push(json!({"op": "add", "path": "members", "value": values}));
    }
    for id in sent.difference(desired) {
        operations.push(json!({
            "op": "remove",
            "path": format!("members[value eq {}]", quote(id)),
        }));
    }
    operations
}

/// The PATCH message for `operations`.
pub fn patch_body(operations: Vec<Value>) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// A string as a SCIM filter literal.
pub fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(values: Value) -> Mapped {
        Mapped {
            values: values.as_object().cloned().unwrap_or_default(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn patch_sends_only_what_changed_and_clears_nulls() {
        let now = mapped(json!({"title": "Lead", "nickName": null, "userName": "ana"}));
        let sent = json!({"title": "Agent", "nickName": "Annie", "userName": "ana"});
        assert_eq!(
            patch_operations(&now, sent.as_object()),
            vec![
                json!({"op": "replace", "path": "title", "value": "Lead"}),
                json!({"op": "remove", "path": "nickName"}),
            ]
        );
        let same = json!({"title": "Lead", "nickName": null, "userName": "ana"});
        assert!(patch_operations(&now, same.as_object()).is_empty());
    }

    #[test]
    fn an_element_the_target_lacks_is_added_whole() {
        let now = mapped(json!({
            "phoneNumbers[type eq \"work\"].value": "tel:+1555",
            "phoneNumbers[type eq \"work\"].primary": true,
            "emails[type eq \"work\"].value": "a@work",
        }));
        let sent = json!({
            "phoneNumbers[type eq \"work\"].value": null,
            "emails[type eq \"work\"].value": "old@work",
        });
        assert_eq!(
            patch_operations(&now, sent.as_object()),
            vec![
                json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@work"}),
                json!({"op": "add", "path": "phoneNumbers",
                       "value": [{"type": "work", "value": "tel:+1555", "primary": true}]}),
            ]
        );
    }

    #[test]
    fn unknown_state_sends_everything() {
        let now = mapped(json!({"title": "Lead", "nickName": null}));
        assert_eq!(patch_operations(&now, None).len(), 2);
    }

    #[test]
    fn create_body_nests_paths_and_lists_extensions() {
        let now = mapped(json!({
            "userName": "ana",
            "nickName": null,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"
        }));
        assert_eq!(
            create_body(USER_SCHEMA, &now),
            json!({
                "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "ana",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
            })
        );
    }

    #[test]
    fn members_added_in_chunks_and_removed_by_filter() {
        let desired: BTreeSet<String> = (0..501).map(|n| format!("u{n:03}")).collect();
        let sent: BTreeSet<String> = ["gone".to_owned()].into();
        let operations = member_operations(&desired, &sent);
        assert_eq!(operations.len(), 3);
        assert_eq!(
            operations.last(),
            Some(&json!({"op": "remove", "path": "members[value eq \"gone\"]"}))
        );
    }
}
