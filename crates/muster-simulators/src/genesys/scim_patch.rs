//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON: ops add, replace, remove;
//! paths `attr`, `attr.sub`, `attr[sub eq "v"]`, `attr[sub eq "v"].sub`, each optionally
//! prefixed by an extension URN. The patched JSON is then applied like a PUT.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::errors::scim_error;

/// Extension URNs the simulator knows (lower case).
pub(crate) const EXTENSIONS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:user",
];

/// Get a key case-insensitively.
pub(crate) fn geti<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The existing key matching `key` case-insensitively, or `key` itself.
fn key_in(obj: &Map<String, Value>, key: &str) -> String {
    obj.keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// A parsed PATCH path.
#[derive(Debug, PartialEq)]
struct PatchPath {
    /// The extension URN (as written) holding the attribute, if any.
    container: Option<String>,
    attr: String,
    filter: Option<(String, String)>,
    sub: Option<String>,
}

fn invalid_path(path: &str) -> Response {
    scim_error(
        StatusCode::BAD_REQUEST,
        Some("invalidPath"),
        &format!("Unsupported PATCH path: {path}"),
    )
}

fn parse_path(path: &str) -> Result<PatchPath, Response> {
    let lower = path.to_ascii_lowercase();
    let (container, rest) = match EXTENSIONS
        .iter()
        .find(|urn| lower.starts_with(*urn) && lower.as_bytes().get(urn.len()) == Some(&b':'))
    {
        Some(urn) => (
            Some(path.get(..urn.len()).unwrap_or_default().to_string()),
            path.get(urn.len() + 1..).unwrap_or_default(),
        ),
        None => (None, path),
    };
    let (attr, filter, sub) = if let Some(open) = rest.find('[') {
        let close = rest.find(']').ok_or_else(|| invalid_path(path))?;
        let attr = rest.get(..open).unwrap_or_default();
        let inner = rest.get(open + 1..close).unwrap_or_default();
        let after = rest.get(close + 1..).unwrap_or_default();
        let sub = after.strip_prefix('.').map(str::to_string);
        if !after.is_empty() && sub.is_none() {
            return Err(invalid_path(path));
        }
        let filter = parse_eq(inner).ok_or_else(|| invalid_path(path))?;
        (attr.to_string(), Some(filter), sub)
    } else if let Some((a, s)) = rest.split_once('.') {
        (a.to_string(), None, Some(s.to_string()))
    } else {
        (rest.to_string(), None, None)
    };
    if attr.is_empty() {
        return Err(invalid_path(path));
    }
    Ok(PatchPath {
        container,
        attr,
        filter,
        sub,
    })
}

/// Parse `name eq "value"` (or an unquoted value).
pub(crate) fn parse_eq(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let (name, rest) = s.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace)?;
    if !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((name.to_string(), value.replace("\\\"", "\"")))
}

fn element_matches(el: &Value, filter: &(String, String)) -> bool {
    el.as_object()
        .and_then(|o| geti(o, &filter.0))
        .is_some_and(|v| match v {
            Value::String(s) => s.eq_ignore_ascii_case(&filter.1),
            other => serde_json::to_string(other).is_ok_and(|s| s == filter.1),
        })
}

/// Apply the `Operations` of a PatchOp body to `doc`.
pub(crate) fn apply_patch(doc: &mut Value, body: &Value) -> Result<(), Response> {
    let ops = body
        .as_object()
        .and_then(|o| geti(o, "Operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                "PATCH body needs Operations",
            )
        })?;
    for op in ops {
        let obj = op.as_object().ok_or_else(|| {
            scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                "an operation must be an object",
            )
        })?;
        let name = geti(obj, "op")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let path = geti(obj, "path").and_then(Value::as_str);
        let value = geti(obj, "value").cloned().unwrap_or(Value::Null);
        match (name.as_str(), path) {
            ("add" | "replace", None) => merge_root(doc, &value, name == "add")?,
            ("add" | "replace", Some(p)) => set_path(doc, &parse_path(p)?, value, name == "add"),
            ("remove", Some(p)) => remove_path(doc, &parse_path(p)?, &value),
            ("remove", None) => {
                return Err(scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("noTarget"),
                    "remove needs a path",
                ))
            }
            _ => {
                return Err(scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidSyntax"),
                    &format!("unsupported op {name:?}: use add, replace or remove"),
                ))
            }
        }
    }
    Ok(())
}

fn merge_root(doc: &mut Value, value: &Value, add: bool) -> Result<(), Response> {
    let Some(map) = value.as_object() else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "an op without path needs an object value",
        ));
    };
    for (k, v) in map {
        if let Some(p) = parse_path(k).ok().filter(|p| p.container.is_some()) {
            // "urn:...:User:department": value
            set_path(doc, &p, v.clone(), add);
        } else if EXTENSIONS.iter().any(|u| k.eq_ignore_ascii_case(u)) {
            if let Some(ext) = v.as_object() {
                for (ek, ev) in ext {
                    let p = PatchPath {
                        container: Some(k.clone()),
                        attr: ek.clone(),
                        filter: None,
                        sub: None,
                    };
                    set_path(doc, &p, ev.clone(), add);
                }
            }
        } else {
            let p = parse_path(k)?;
            set_path(doc, &p, v.clone(), add);
        }
    }
    Ok(())
}

fn container_mut<'a>(
    doc: &'a mut Value,
    container: Option<&str>,
) -> Option<&'a mut Map<String, Value>> {
    let root = doc.as_object_mut()?;
    match container {
        None => Some(root),
        Some(urn) => {
            let key = key_in(root, urn);
            let entry = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            entry.as_object_mut()
        }
    }
}

fn set_path(doc: &mut Value, p: &PatchPath, value: Value, add: bool) {
    let Some(obj) = container_mut(doc, p.container.as_deref()) else {
        return;
    };
    let key = key_in(obj, &p.attr);
    match (&p.filter, &p.sub) {
        (Some(filter), sub) => {
            let arr = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !arr.is_array() {
                *arr = Value::Array(Vec::new());
            }
            let Some(items) = arr.as_array_mut() else {
                return;
            };
            let mut found = false;
            for el in items.iter_mut().filter(|el| element_matches(el, filter)) {
                found = true;
                match (sub, el.as_object_mut()) {
                    (Some(sub), Some(o)) => {
                        let k = key_in(o, sub);
                        o.insert(k, value.clone());
                    }
                    _ => *el = value.clone(),
                }
            }
            if !found {
                let mut el = Map::new();
                el.insert(filter.0.clone(), Value::String(filter.1.clone()));
                match sub {
                    Some(sub) => {
                        el.insert(sub.clone(), value);
                    }
                    None => {
                        if let Some(v) = value.as_object() {
                            el.extend(v.clone());
                        }
                    }
                }
                items.push(Value::Object(el));
            }
        }
        (None, Some(sub)) => {
            let target = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(o) = target.as_object_mut() {
                let k = key_in(o, sub);
                o.insert(k, value);
            }
        }
        (None, None) => match (obj.get_mut(&key), value) {
            (Some(Value::Array(existing)), Value::Array(new)) if add => {
                for v in new {
                    if !existing.contains(&v) {
                        existing.push(v);
                    }
                }
            }
            (_, value) => {
                obj.insert(key, value);
            }
        },
    }
}

fn remove_path(doc: &mut Value, p: &PatchPath, value: &Value) {
    let Some(obj) = container_mut(doc, p.container.as_deref()) else {
        return;
    };
    let key = key_in(obj, &p.attr);
    match (&p.filter, &p.sub) {
        (Some(filter), None) => {
            if let Some(Value::Array(items)) = obj.get_mut(&key) {
                items.retain(|el| !element_matches(el, filter));
            }
        }
        (Some(filter), Some(sub)) => {
            if let Some(Value::Array(items)) = obj.get_mut(&key) {
                for el in items.iter_mut().filter(|el| element_matches(el, filter)) {
                    if let Some(o) = el.as_object_mut() {
                        let k = key_in(o, sub);
                        o.remove(&k);
                    }
                }
            }
        }
        (None, Some(sub)) => {
            if let Some(Value::Object(o)) = obj.get_mut(&key) {
                let k = key_in(o, sub);
                o.remove(&k);
            }
        }
        (None, None) => {
            // `remove members` with a value list removes those members only.
            match (obj.get_mut(&key), value) {
                (Some(Value::Array(items)), Value::Array(gone)) if !gone.is_empty() => {
                    items.retain(|el| {
                        !gone
                            .iter()
                            .any(|g| g.get("value").is_some() && g.get("value") == el.get("value"))
                    });
                }
                _ => {
                    obj.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(doc: Value, ops: Value, want: Value) {
        let mut doc = doc;
        apply_patch(&mut doc, &json!({ "Operations": ops })).expect("patch applies");
        assert_eq!(doc, want);
    }

    #[test]
    fn patches() {
        check(
            json!({"title": "a"}),
            json!([{"op": "Replace", "path": "title", "value": "b"}]),
            json!({"title": "b"}),
        );
        check(
            json!({"emails": [{"type": "other", "value": "x"}]}),
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "w"}]),
            json!({"emails": [{"type": "other", "value": "x"}, {"type": "work", "value": "w"}]}),
        );
        check(
            json!({}),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"}]),
            json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}}),
        );
        check(
            json!({"members": [{"value": "a"}, {"value": "b"}]}),
            json!([{"op": "remove", "path": "members[value eq \"a\"]"}]),
            json!({"members": [{"value": "b"}]}),
        );
        check(
            json!({"members": [{"value": "a"}]}),
            json!([{"op": "add", "path": "members", "value": [{"value": "b"}]}]),
            json!({"members": [{"value": "a"}, {"value": "b"}]}),
        );
        check(
            json!({"active": true}),
            json!([{"op": "replace", "value": {"active": false}}]),
            json!({"active": false}),
        );
    }
}
