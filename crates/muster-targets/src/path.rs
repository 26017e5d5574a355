//! Attribute paths into SCIM JSON, read and written without a schema (the
//! target's schema is not Muster's): `attr`, `attr.sub`, a URN-qualified
//! extension path, and `attr[sub eq "v" and ...].sub`, the form Entra ID
//! writes for one element of a multi-valued attribute.

use std::fmt;

use muster_scim::{CompareOp, Filter, FilterValue, PatchPath};
use serde_json::{Map, Value};

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    /// The extension URN holding the attribute, if any.
    schema: Option<String>,
    attribute: String,
    /// `sub eq "value"` pairs choosing one element of a multi-valued
    /// attribute.
    selector: Vec<(String, Value)>,
    sub_attribute: Option<String>,
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonPath {
    /// Parses a path; a value filter may only be `sub eq value` clauses
    /// joined by `and` (what selects one element to write).
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let parsed = PatchPath::parse(text).map_err(|error| error.detail)?;
        let mut selector = Vec::new();
        if let Some(filter) = &parsed.value_filter {
            collect_selector(filter, &mut selector).ok_or_else(|| {
                format!(
                    "'{text}': a value filter here may only join `sub eq \"value\"` clauses with \
                     `and`"
                )
            })?;
        }
        let sub_attribute = parsed
            .sub_attribute
            .or(parsed.attribute.sub_attribute.clone());
        Ok(JsonPath {
            text: text.trim().to_owned(),
            schema: parsed.attribute.schema,
            attribute: parsed.attribute.attribute,
            selector,
            sub_attribute,
        })
    }

    /// A path from its parts (already canonical).
    pub fn from_parts(schema: Option<&str>, attribute: &str, sub_attribute: Option<&str>) -> Self {
        let mut text = String::new();
        if let Some(schema) = schema {
            text.push_str(schema);
            text.push(':');
        }
        text.push_str(attribute);
        if let Some(sub) = sub_attribute {
            text.push('.');
            text.push_str(sub);
        }
        JsonPath {
            text,
            schema: schema.map(str::to_owned),
            attribute: attribute.to_owned(),
            selector: Vec::new(),
            sub_attribute: sub_attribute.map(str::to_owned),
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The extension URN, if the path is in one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The top-level attribute name.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// The sub-attribute name.
    pub fn sub_attribute(&self) -> Option<&str> {
        self.sub_attribute.as_deref()
    }

    /// Whether the path selects one element of a multi-valued attribute
    /// (`attr[type eq "work"].value`).
    pub fn has_selector(&self) -> bool {
        !self.selector.is_empty()
    }

    /// The multi-valued attribute a selector path points into, as a path
    /// (`phoneNumbers`, or URN-qualified in an extension).
    pub fn attribute_path(&self) -> String {
        match &self.schema {
            Some(urn) => format!("{urn}:{}", self.attribute),
            None => self.attribute.clone(),
        }
    }

    /// Fills in the element a selector path names: the selector's values
    /// and `value` at the sub-attribute (for a new element sent with `add`).
    pub fn write_element(&self, element: &mut Map<String, Value>, value: Value) {
        for (key, wanted) in &self.selector {
            element.insert(key.clone(), wanted.clone());
        }
        match (&self.sub_attribute, value) {
            (Some(sub), value) => {
                element.insert(sub.clone(), value);
            }
            (None, Value::Object(fields)) => element.extend(fields),
            (None, _) => {}
        }
    }

    /// The value at this path (`Null` when absent). A sub-attribute of a
    /// multi-valued attribute without a selector gives the array of the
    /// elements' values.
    pub fn read(&self, resource: &Value) -> Value {
        let container = match &self.schema {
            Some(urn) => get_ci(resource, urn),
            None => Some(resource),
        };
        let Some(value) = container.and_then(|c| get_ci(c, &self.attribute)) else {
            return Value::Null;
        };
        match value {
            Value::Array(elements) => {
                let chosen: Vec<&Value> = elements
                    .iter()
                    .filter(|element| self.selects(element))
                    .collect();
                match (&self.sub_attribute, self.selector.is_empty()) {
                    (None, true) => value.clone(),
                    (None, false) => chosen.first().map_or(Value::Null, |v| (*v).clone()),
                    (Some(sub), true) => {
                        let values: Vec<Value> = chosen
                            .iter()
                            .filter_map(|element| get_ci(element, sub).cloned())
                            .collect();
                        if values.is_empty() {
                            Value::Null
                        } else {
                            Value::Array(values)
                        }
                    }
                    (Some(sub), false) => chosen
                        .first()
                        .and_then(|element| get_ci(element, sub))
                        .cloned()
                        .unwrap_or(Value::Null),
                }
            }
            single => match &self.sub_attribute {
                None => single.clone(),
                Some(sub) => get_ci(single, sub).cloned().unwrap_or(Value::Null),
            },
        }
    }

    fn selects(&self, element: &Value) -> bool {
        self.selector.iter().all(|(key, wanted)| {
            get_ci(element, key).is_some_and(|value| match (value, wanted) {
                (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == b,
            })
        })
    }

    /// Writes `value` at this path into a resource being built (a POST
    /// body): a selector creates the element it selects.
    pub fn write(&self, resource: &mut Map<String, Value>, value: Value) {
        let container = match &self.schema {
            Some(urn) => object_entry(resource, urn),
            None => Some(resource),
        };
        let Some(container) = container else {
            return;
        };
        if self.selector.is_empty() {
            match &self.sub_attribute {
                None => {
                    container.insert(self.attribute.clone(), value);
                }
                Some(sub) => {
                    if let Some(object) = object_entry(container, &self.attribute) {
                        object.insert(sub.clone(), value);
                    }
                }
            }
            return;
        }
        let elements = container
            .entry(self.attribute.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if !elements.is_array() {
            *elements = Value::Array(Vec::new());
        }
        let Value::Array(elements) = elements else {
            return;
        };
        let position = elements.iter().position(|element| self.selects(element));
        let index = match position {
            Some(index) => index,
            None => {
                let element: Map<String, Value> = self
                    .selector
                    .iter()
                    .map(|(key, wanted)| (key.clone(), wanted.clone()))
                    .collect();
                elements.push(Value::Object(element));
                elements.len() - 1
            }
        };
        if let Some(Value::Object(element)) = elements.get_mut(index) {
            match &self.sub_attribute {
                Some(sub) => {
                    element.insert(sub.clone(), value);
                }
                None => {
                    if let Value::Object(fields) = value {
                        element.extend(fields);
                    }
                }
            }
        }
    }
}

fn collect_selector(filter: &Filter, selector: &mut Vec<(String, Value)>) -> Option<()> {
    match filter {
        Filter::And(operands) => operands
            .iter()
            .try_for_each(|operand| collect_selector(operand, selector)),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.schema.is_none() && path.sub_attribute.is_none() => {
            let value = match value {
                FilterValue::String(text) => Value::String(text.clone()),
                FilterValue::Boolean(flag) => Value::Bool(*flag),
                FilterValue::Number(number) => Value::Number(number.clone()),
                FilterValue::Null => return None,
            };
            selector.push((path.attribute.clone(), value));
            Some(())
        }
        _ => None,
    }
}

/// A key of an object, compared ASCII case-insensitively (SCIM names are).
pub fn get_ci<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

/// The object under `key`, made one when absent or not an object.
fn object_entry<'m>(
    map: &'m mut Map<String, Value>,
    key: &str,
) -> Option<&'m mut Map<String, Value>> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check_read(path: &str, resource: Value, expected: Value) {
        let parsed = JsonPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(parsed.read(&resource), expected, "{path}");
    }

    #[test]
    fn reads() {
        let user = json!({
            "userName": "ana",
            "name": {"givenName": "Ana"},
            "emails": [{"type": "home", "value": "a@home"}, {"type": "work", "value": "a@work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
        });
        check_read("userName", user.clone(), json!("ana"));
        check_read("USERNAME", user.clone(), json!("ana"));
        check_read("name.givenName", user.clone(), json!("Ana"));
        check_read("name.familyName", user.clone(), Value::Null);
        check_read(
            "emails[type eq \"work\"].value",
            user.clone(),
            json!("a@work"),
        );
        check_read("emails.value", user.clone(), json!(["a@home", "a@work"]));
        check_read(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            user,
            json!("Ops"),
        );
    }

    #[test]
    fn writes_build_a_body() {
        let mut body = Map::new();
        for (path, value) in [
            ("userName", json!("ana")),
            ("name.givenName", json!("Ana")),
            ("emails[type eq \"work\"].value", json!("a@work")),
            ("emails[type eq \"work\"].primary", json!(true)),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                json!("Ops"),
            ),
        ] {
            JsonPath::parse(path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .write(&mut body, value);
        }
        assert_eq!(
            Value::Object(body),
            json!({
                "userName": "ana",
                "name": {"givenName": "Ana"},
                "emails": [{"type": "work", "value": "a@work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
            })
        );
    }

    #[test]
    fn refuses_selectors_it_cannot_write() {
        assert!(JsonPath::parse("emails[type co \"w\"].value").is_err());
        assert!(JsonPath::parse("emails[type eq \"w\" or primary eq true]").is_err());
    }
}
