//! Reading values at an attribute path in a canonical resource, the way
//! muster-scim's evaluator reads them: resolved through the registry, JSON
//! keys matched exactly first and then case-insensitively, a multi-valued
//! attribute read element by element.
//!
//! Bounded: at most [`MAX_SHOWN_VALUES`] values are collected for an
//! explanation.

use muster_scim::schema::{Container, ResolvedAttribute};
use muster_scim::{AttrPath, ResourceType, SchemaRegistry};
use serde_json::{Map, Value};

/// The most values an explanation shows for one path.
pub const MAX_SHOWN_VALUES: usize = 20;

/// A member of a JSON object: the exact key first, then case-insensitively.
pub(crate) fn member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object: &Map<String, Value> = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

/// The values of an attribute: the elements of an array, or the value itself.
pub(crate) fn elements(value: &Value) -> std::slice::Iter<'_, Value> {
    match value {
        Value::Array(items) => items.iter(),
        other => std::slice::from_ref(other).iter(),
    }
}

/// The stored value of a resolved attribute (one value or an array).
pub(crate) fn attribute_value<'v>(
    resource: &'v Value,
    resolved: &ResolvedAttribute<'_>,
) -> Option<&'v Value> {
    let container = match resolved.container {
        Container::Core => Some(resource),
        Container::Extension(urn) => member(resource, urn),
    };
    container.and_then(|container| member(container, &resolved.attribute.name))
}

/// The values at `path`, flattened (each element of a multi-valued
/// attribute; its sub-attribute when the path names one), at most
/// [`MAX_SHOWN_VALUES`]. A complex attribute named without a sub-attribute
/// gives its `value` sub-attribute when it has one, as filters compare it.
/// The path's canonical spelling comes back with them (the path as written
/// when the registry does not know it).
pub(crate) fn values_at(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
    path: &AttrPath,
    compare: bool,
) -> (String, Vec<Value>) {
    let Some(resolved) = registry.resolve_attribute(resource_type, path) else {
        return (path.to_string(), Vec::new());
    };
    let step = match resolved.sub_attribute {
        Some(sub) => Some(sub.name.as_str()),
        None if compare && resolved.attribute.is_complex() => resolved
            .attribute
            .sub_attribute("value")
            .map(|sub| sub.name.as_str()),
        None => None,
    };
    let mut canonical = resolved.canonical_path();
    if resolved.sub_attribute.is_none() {
        if let Some(step) = step {
            canonical.push('.');
            canonical.push_str(step);
        }
    }
    let mut found = Vec::new();
    if let Some(value) = attribute_value(resource, &resolved) {
        collect(value, step, &mut found);
    }
    (canonical, found)
}

/// The values of the elements of `value` (stepping into `step`), bounded.
pub(crate) fn collect(value: &Value, step: Option<&str>, found: &mut Vec<Value>) {
    for element in elements(value) {
        let inner = match step {
            Some(step) => member(element, step),
            None => Some(element),
        };
        for item in inner.into_iter().flat_map(elements) {
            if found.len() >= MAX_SHOWN_VALUES {
                return;
            }
            if !item.is_null() {
                found.push(item.clone());
            }
        }
    }
}

/// The value a table looks up: the text of the first non-empty string,
/// integer, decimal or boolean at `path`, trimmed; `None` when there is none.
pub(crate) fn key_value(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
    path: &AttrPath,
) -> Option<String> {
    let resolved = registry.resolve_attribute(resource_type, path)?;
    let value = attribute_value(resource, &resolved)?;
    let step = resolved.sub_attribute.map(|sub| sub.name.as_str());
    elements(value)
        .filter_map(|element| match step {
            Some(step) => member(element, step),
            None => Some(element),
        })
        .flat_map(elements)
        .find_map(|item| match item {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "ana",
            "title": "Level 2 Support",
            "emails": [{"value": "a@x.com", "type": "work"}, {"value": "b@x.com"}],
            "groups": [{"value": "1", "display": "Group_CC_Agents_Tier1"}, {"value": "2", "display": "Genesys_Cloud_Users"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": " CC-4100 ", "department": ""}
        })
    }

    #[test]
    fn values_at_paths() {
        let registry = SchemaRegistry::builtin();
        let Some(user_type) = registry.resource_type("User") else {
            panic!("User");
        };
        let check = |path: &str, compare: bool, expected_path: &str, expected: Value| {
            let Ok(parsed) = AttrPath::parse(path) else {
                panic!("{path}");
            };
            let (canonical, values) = values_at(&registry, user_type, &user(), &parsed, compare);
            assert_eq!(canonical, expected_path, "{path}");
            assert_eq!(Value::Array(values), expected, "{path}");
        };
        check("TITLE", true, "title", json!(["Level 2 Support"]));
        check(
            "emails",
            true,
            "emails.value",
            json!(["a@x.com", "b@x.com"]),
        );
        check("emails.type", true, "emails.type", json!(["work"]));
        check(
            "groups.display",
            true,
            "groups.display",
            json!(["Group_CC_Agents_Tier1", "Genesys_Cloud_Users"]),
        );
        check("nickName", true, "nickName", json!([]));
        check("bogus", true, "bogus", json!([]));
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            json!([" CC-4100 "]),
        );
    }

    #[test]
    fn key_values() {
        let registry = SchemaRegistry::builtin();
        let Some(user_type) = registry.resource_type("User") else {
            panic!("User");
        };
        let check = |path: &str, expected: Option<&str>| {
            let Ok(parsed) = AttrPath::parse(path) else {
                panic!("{path}");
            };
            assert_eq!(
                key_value(&registry, user_type, &user(), &parsed).as_deref(),
                expected,
                "{path}"
            );
        };
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            Some("CC-4100"),
        );
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            None,
        );
        check("title", Some("Level 2 Support"));
        check("nickName", None);
    }
}
