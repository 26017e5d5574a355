//! Schema evolution: what changes between two definitions of a schema, and
//! what becomes of the values stored under the old one.
//!
//! The server runs these before it replaces a declared schema: adding
//! attributes needs nothing; removing attributes that hold values needs
//! `--force`, and [`remove_attributes`] gives the values removed for the
//! audit trail; changing a type or plurality first runs [`convert_resource`]
//! over every stored resource (the dry run) and goes ahead only when all
//! convert. Nothing here drops a value silently: a value with no place in
//! the new schema is a failure until it is removed explicitly.
//!
//! Paths are canonical and URN-qualified, with names as the new schema
//! writes them: `urn:...:contoso:2.0:User:region`,
//! `urn:...:genesys:purecloud:2.0:User:customFields.BPO_Vendor_ID`.

use serde::Serialize;
use serde_json::{Map, Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::definition::value_expectation;
use super::model::{Attribute, AttributeType, Mutability, Schema};
use crate::path::AttrPath;
use crate::resource::{dedup, describe, is_absent, is_base64};

/// What changes between two definitions of a schema, by canonical path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaChanges {
    /// Attributes and sub-attributes the new definition adds.
    pub added: Vec<String>,
    /// Attributes and sub-attributes the new definition no longer has
    /// (including the sub-attributes of an attribute that stops being
    /// complex). Their stored values must be removed (`--force`).
    pub removed: Vec<String>,
    /// Attributes whose type changes: stored values must convert.
    pub type_changes: Vec<TypeChange>,
    /// Attributes that become single- or multi-valued: stored values must
    /// convert.
    pub multi_valued_changes: Vec<MultiValuedChange>,
    /// Any other property that changes (`name` in case only, `description`,
    /// `required`, `canonicalValues`, `caseExact`, `mutability`,
    /// `returned`, `uniqueness`, `referenceTypes`, and the schema's `id` in
    /// case only, reported at the schema URN).
    pub property_changes: Vec<PropertyChange>,
}

/// An attribute whose type changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeChange {
    /// The canonical path.
    pub path: String,
    /// The type in the old definition.
    pub old: AttributeType,
    /// The type in the new definition.
    pub new: AttributeType,
}

/// An attribute whose `multiValued` changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultiValuedChange {
    /// The canonical path.
    pub path: String,
    /// `multiValued` in the old definition.
    pub old: bool,
    /// `multiValued` in the new definition.
    pub new: bool,
}

/// Another property of an attribute that changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyChange {
    /// The canonical path (the schema URN for the schema's own `id`).
    pub path: String,
    /// The property as RFC 7643 section 7 names it (`required`, ...).
    pub property: &'static str,
    /// The old value, as the schema JSON writes it.
    pub old: Value,
    /// The new value, as the schema JSON writes it.
    pub new: Value,
}

impl SchemaChanges {
    /// Whether the two definitions are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.type_changes.is_empty()
            && self.multi_valued_changes.is_empty()
            && self.property_changes.is_empty()
    }

    /// Whether stored resources must go through [`convert_resource`]: a
    /// type or plurality changes, a name or the URN changes case (keys are
    /// rewritten), or an attribute becomes required (resources without a
    /// value would no longer be valid).
    pub fn rewrites_values(&self) -> bool {
        !self.type_changes.is_empty()
            || !self.multi_valued_changes.is_empty()
            || self.property_changes.iter().any(|change| {
                matches!(change.property, "name" | "id")
                    || (change.property == "required" && change.new == Value::Bool(true))
            })
    }
}

/// Compares two definitions of one schema, attributes matched by name
/// case-insensitively. Paths use the new definition's URN and names
/// (removed ones keep their old name), in declared order.
pub fn diff_schemas(old: &Schema, new: &Schema) -> SchemaChanges {
    let mut changes = SchemaChanges::default();
    property(&mut changes, &new.id, "id", &old.id, &new.id);
    diff_list(
        &format!("{}:", new.id),
        &old.attributes,
        &new.attributes,
        &mut changes,
    );
    changes
}

fn diff_list(prefix: &str, old: &[Attribute], new: &[Attribute], changes: &mut SchemaChanges) {
    for before in old {
        match find(new, &before.name) {
            Some(after) => {
                diff_attribute(&format!("{prefix}{}", after.name), before, after, changes)
            }
            None => changes.removed.push(format!("{prefix}{}", before.name)),
        }
    }
    for after in new {
        if find(old, &after.name).is_none() {
            changes.added.push(format!("{prefix}{}", after.name));
        }
    }
}

fn diff_attribute(path: &str, old: &Attribute, new: &Attribute, changes: &mut SchemaChanges) {
    if old.kind != new.kind {
        changes.type_changes.push(TypeChange {
            path: path.to_owned(),
            old: old.kind,
            new: new.kind,
        });
    }
    if old.multi_valued != new.multi_valued {
        changes.multi_valued_changes.push(MultiValuedChange {
            path: path.to_owned(),
            old: old.multi_valued,
            new: new.multi_valued,
        });
    }
    property(changes, path, "name", &old.name, &new.name);
    property(
        changes,
        path,
        "description",
        &old.description,
        &new.description,
    );
    property(changes, path, "required", &old.required, &new.required);
    property(
        changes,
        path,
        "canonicalValues",
        &old.canonical_values,
        &new.canonical_values,
    );
    property(changes, path, "caseExact", &old.case_exact, &new.case_exact);
    property(
        changes,
        path,
        "mutability",
        &old.mutability,
        &new.mutability,
    );
    property(changes, path, "returned", &old.returned, &new.returned);
    property(
        changes,
        path,
        "uniqueness",
        &old.uniqueness,
        &new.uniqueness,
    );
    property(
        changes,
        path,
        "referenceTypes",
        &old.reference_types,
        &new.reference_types,
    );
    let prefix = format!("{path}.");
    match (old.is_complex(), new.is_complex()) {
        (true, true) => diff_list(&prefix, &old.sub_attributes, &new.sub_attributes, changes),
        (true, false) => changes.removed.extend(
            old.sub_attributes
                .iter()
                .map(|sub| format!("{prefix}{}", sub.name)),
        ),
        (false, true) => changes.added.extend(
            new.sub_attributes
                .iter()
                .map(|sub| format!("{prefix}{}", sub.name)),
        ),
        (false, false) => {}
    }
}

fn property<T: Serialize + PartialEq>(
    changes: &mut SchemaChanges,
    path: &str,
    property: &'static str,
    old: &T,
    new: &T,
) {
    if old != new {
        changes.property_changes.push(PropertyChange {
            path: path.to_owned(),
            property,
            old: serde_json::to_value(old).unwrap_or(Value::Null),
            new: serde_json::to_value(new).unwrap_or(Value::Null),
        });
    }
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

/// A stored value that does not fit the new schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversionFailure {
    /// The canonical path of the value.
    pub path: String,
    /// The value as stored (`null` for a required value that is missing).
    pub value: Value,
    /// Why it does not convert.
    pub reason: String,
}

/// A value taken out of a resource by [`remove_attributes`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemovedValue {
    /// The path as given.
    pub path: String,
    /// The value removed (for a sub-attribute of a multi-valued attribute,
    /// the list of the values its elements held).
    pub value: Value,
}

/// Converts a stored value (canonical for its old definition) to the new
/// definition of its attribute, or says why it does not convert.
///
/// - any scalar to string (numbers and booleans printed); strings to
///   reference; base64 strings to binary;
/// - to integer: integers, decimals with no fractional part (`2.0` is `2`,
///   `2.5` fails), strings holding an integer (`"42"`);
/// - to decimal: numbers (an integer stays as it is), numeric strings;
/// - to boolean: booleans, `"true"`/`"false"` in any case;
/// - to dateTime: strings that are RFC 3339 (`xsd:dateTime`) values;
/// - a single value to multi-valued: wrapped in a list; multi-valued to
///   single: a list of one value, not of several;
/// - complex to complex: each sub-attribute converted, and one the new
///   definition lacks fails; complex to anything else, or back, fails.
pub fn convert_value(attribute: &Attribute, value: &Value) -> Result<Value, String> {
    let mut failures = Vec::new();
    match convert(attribute, value, &attribute.name, &mut failures) {
        Some(converted) if failures.is_empty() => Ok(converted),
        Some(_) | None => Err(failures
            .into_iter()
            .map(|failure| {
                if failure.path == attribute.name {
                    failure.reason
                } else {
                    format!("'{}': {}", failure.path, failure.reason)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Rewrites one stored resource (canonical JSON, the extension's attributes
/// in an object under its URN) from the `old` definition of an extension
/// schema to the `new` one: values converted by [`convert_value`], keys in
/// the new names and declared order, the URN as the new definition writes
/// it (in the key and in `schemas`).
///
/// Fails with every value that does not convert, every value whose
/// attribute the new definition lacks (remove those first with
/// [`remove_attributes`]), and every attribute the new definition makes
/// required that the resource lacks. A resource that does not carry the
/// extension comes back unchanged.
pub fn convert_resource(
    old: &Schema,
    new: &Schema,
    resource: &Value,
) -> Result<Value, Vec<ConversionFailure>> {
    let Value::Object(object) = resource else {
        return Err(vec![failure(
            &new.id,
            resource,
            format!("a resource is a JSON object, not {}", describe(resource)),
        )]);
    };
    let is_extension_key =
        |key: &str| key.eq_ignore_ascii_case(&old.id) || key.eq_ignore_ascii_case(&new.id);
    let Some((key, extension)) = object.iter().find(|(key, _)| is_extension_key(key)) else {
        return Ok(resource.clone());
    };
    let Value::Object(extension) = extension else {
        return Err(vec![failure(
            &new.id,
            extension,
            format!(
                "expected an object of the schema's attributes, got {}",
                describe(extension)
            ),
        )]);
    };
    let mut failures = Vec::new();
    let mut slots: Vec<Option<Value>> = vec![None; new.attributes.len()];
    for (name, value) in extension {
        let target = new
            .attributes
            .iter()
            .zip(slots.iter_mut())
            .find(|(attribute, _)| attribute.name.eq_ignore_ascii_case(name));
        let Some((attribute, slot)) = target else {
            failures.push(failure(
                &format!("{}:{name}", new.id),
                value,
                not_declared(),
            ));
            continue;
        };
        let path = format!("{}:{}", new.id, attribute.name);
        *slot = convert(attribute, value, &path, &mut failures);
    }
    check_required(
        &format!("{}:", new.id),
        &new.attributes,
        &slots,
        &mut failures,
    );
    if !failures.is_empty() {
        return Err(failures);
    }
    let mut converted = Map::new();
    for (attribute, slot) in new.attributes.iter().zip(slots) {
        if let Some(value) = slot {
            converted.insert(attribute.name.clone(), value);
        }
    }
    let carried = !converted.is_empty();
    let mut output = Map::new();
    for (name, value) in object {
        if name == key {
            if carried {
                output.insert(
                    new.id.clone(),
                    Value::Object(std::mem::take(&mut converted)),
                );
            }
        } else if name == "schemas" {
            output.insert(name.clone(), rename_schema(value, old, new, carried));
        } else {
            output.insert(name.clone(), value.clone());
        }
    }
    Ok(Value::Object(output))
}

/// `schemas` with the extension's URN written as the new definition writes
/// it (or left out when the resource no longer carries the extension).
fn rename_schema(schemas: &Value, old: &Schema, new: &Schema, carried: bool) -> Value {
    let Value::Array(items) = schemas else {
        return schemas.clone();
    };
    Value::Array(
        items
            .iter()
            .filter_map(|item| match item {
                Value::String(text)
                    if text.eq_ignore_ascii_case(&old.id) || text.eq_ignore_ascii_case(&new.id) =>
                {
                    carried.then(|| Value::String(new.id.clone()))
                }
                other => Some(other.clone()),
            })
            .collect(),
    )
}

fn not_declared() -> String {
    "not declared by the new schema; remove its values first (with --force, which records them in the audit trail)".to_owned()
}

fn failure(path: &str, value: &Value, reason: String) -> ConversionFailure {
    ConversionFailure {
        path: path.to_owned(),
        value: value.clone(),
        reason,
    }
}

/// Required attributes (not readOnly: the server sets those) must have a
/// value after conversion.
fn check_required(
    prefix: &str,
    attributes: &[Attribute],
    slots: &[Option<Value>],
    failures: &mut Vec<ConversionFailure>,
) {
    for (attribute, slot) in attributes.iter().zip(slots) {
        if attribute.required && attribute.mutability != Mutability::ReadOnly && slot.is_none() {
            failures.push(failure(
                &format!("{prefix}{}", attribute.name),
                &Value::Null,
                "required by the new schema, and this resource has no value".to_owned(),
            ));
        }
    }
}

/// Converts a value of `attribute` (single or multi), recording failures
/// under `path`; `None` when anything failed.
fn convert(
    attribute: &Attribute,
    value: &Value,
    path: &str,
    failures: &mut Vec<ConversionFailure>,
) -> Option<Value> {
    if !attribute.multi_valued {
        let single = match value {
            Value::Array(items) => match items.as_slice() {
                [one] => one,
                _ => {
                    failures.push(failure(
                        path,
                        value,
                        format!(
                            "holds {} values; the new schema makes it single-valued",
                            items.len()
                        ),
                    ));
                    return None;
                }
            },
            single => single,
        };
        return convert_one(attribute, single, path, failures);
    }
    let items = match value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let before = failures.len();
    let mut converted: Vec<Value> = items
        .iter()
        .filter_map(|item| convert_one(attribute, item, path, failures))
        .collect();
    if failures.len() > before {
        return None;
    }
    dedup(&mut converted);
    Some(Value::Array(converted))
}

/// Converts one value (an element, for a multi-valued attribute).
fn convert_one(
    attribute: &Attribute,
    value: &Value,
    path: &str,
    failures: &mut Vec<ConversionFailure>,
) -> Option<Value> {
    if !attribute.is_complex() {
        return match scalar(attribute.kind, value) {
            Ok(converted) => Some(converted),
            Err(reason) => {
                failures.push(failure(path, value, reason));
                None
            }
        };
    }
    let Value::Object(fields) = value else {
        failures.push(failure(
            path,
            value,
            format!(
                "{} does not convert to a complex value (an object of sub-attributes)",
                describe(value)
            ),
        ));
        return None;
    };
    let before = failures.len();
    let mut slots: Vec<Option<Value>> = vec![None; attribute.sub_attributes.len()];
    for (name, field) in fields {
        let target = attribute
            .sub_attributes
            .iter()
            .zip(slots.iter_mut())
            .find(|(sub, _)| sub.name.eq_ignore_ascii_case(name));
        match target {
            Some((sub, slot)) => {
                *slot = convert(sub, field, &format!("{path}.{}", sub.name), failures);
            }
            None => failures.push(failure(&format!("{path}.{name}"), field, not_declared())),
        }
    }
    check_required(
        &format!("{path}."),
        &attribute.sub_attributes,
        &slots,
        failures,
    );
    if failures.len() > before {
        return None;
    }
    let mut converted = Map::new();
    for (sub, slot) in attribute.sub_attributes.iter().zip(slots) {
        if let Some(value) = slot {
            converted.insert(sub.name.clone(), value);
        }
    }
    Some(Value::Object(converted))
}

/// Converts one non-complex value to `kind`.
fn scalar(kind: AttributeType, value: &Value) -> Result<Value, String> {
    let fails = || {
        Err(format!(
            "{} does not convert to {}",
            describe(value),
            value_expectation(kind)
        ))
    };
    match (kind, value) {
        (_, Value::Object(_)) => Err(format!(
            "a complex value does not convert to {}",
            value_expectation(kind)
        )),
        (_, Value::Array(_)) => Err("a list inside a list does not convert to a value".to_owned()),
        (AttributeType::String, Value::String(_))
        | (AttributeType::Reference, Value::String(_))
        | (AttributeType::Boolean, Value::Bool(_))
        | (AttributeType::Decimal, Value::Number(_)) => Ok(value.clone()),
        (AttributeType::String, Value::Number(number)) => Ok(Value::String(number.to_string())),
        (AttributeType::String, Value::Bool(flag)) => Ok(Value::String(flag.to_string())),
        (AttributeType::Binary, Value::String(text)) if is_base64(text) => Ok(value.clone()),
        (AttributeType::DateTime, Value::String(text))
            if OffsetDateTime::parse(text, &Rfc3339).is_ok() =>
        {
            Ok(value.clone())
        }
        (AttributeType::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (AttributeType::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (AttributeType::Integer, Value::Number(number)) => {
            if number.is_i64() || number.is_u64() {
                return Ok(value.clone());
            }
            match number.as_f64().and_then(whole) {
                Some(whole) => Ok(Value::Number(whole)),
                None => Err(format!(
                    "{} does not convert to an integer: it has a fractional part or is too large",
                    describe(value)
                )),
            }
        }
        (AttributeType::Integer, Value::String(text)) => {
            if let Ok(integer) = text.parse::<i64>() {
                return Ok(Value::Number(integer.into()));
            }
            match text.parse::<f64>().ok().and_then(whole) {
                Some(whole) => Ok(Value::Number(whole)),
                None => fails(),
            }
        }
        (AttributeType::Decimal, Value::String(text)) => {
            match text.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(number) => Ok(Value::Number(number)),
                None => fails(),
            }
        }
        (
            AttributeType::String
            | AttributeType::Reference
            | AttributeType::Binary
            | AttributeType::DateTime
            | AttributeType::Boolean
            | AttributeType::Integer
            | AttributeType::Decimal
            | AttributeType::Complex,
            _,
        ) => fails(),
    }
}

/// A float with no fractional part, as an integer when exactly
/// representable (below 2^53 in magnitude).
fn whole(number: f64) -> Option<Number> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (number.is_finite() && number.fract() == 0.0 && number.abs() < EXACT)
        .then(|| Number::from(number as i64))
}

/// Removes attribute values from a stored resource (canonical JSON) and
/// returns what was removed, for the audit trail of a forced removal.
///
/// Each path is a canonical path as [`diff_schemas`] reports it
/// (`urn:...:User:region`, `urn:...:User:customFields.BPO_Vendor_ID`, a
/// core path such as `title`), or a whole extension URN; names match
/// case-insensitively. A sub-attribute is removed from every element of a
/// multi-valued attribute. What is left empty is removed too (an emptied
/// complex value or element, an emptied extension, whose URN also leaves
/// `schemas`). A path that names nothing in the resource removes nothing.
pub fn remove_attributes<S: AsRef<str>>(resource: &mut Value, paths: &[S]) -> Vec<RemovedValue> {
    let Some(object) = resource.as_object_mut() else {
        return Vec::new();
    };
    let core = object
        .get("schemas")
        .and_then(|schemas| schemas.get(0))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut removed = Vec::new();
    let mut emptied = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if let Some(key) = key_of(object, path).filter(|key| key.contains(':')) {
            if let Some(value) = object.shift_remove(&key) {
                removed.push(RemovedValue {
                    path: path.to_owned(),
                    value,
                });
                emptied.push(key);
            }
            continue;
        }
        let Ok(parsed) = AttrPath::parse(path) else {
            continue;
        };
        let (container, extension) = match &parsed.schema {
            None => (Some(&mut *object), None),
            Some(urn)
                if core
                    .as_deref()
                    .is_some_and(|core| core.eq_ignore_ascii_case(urn)) =>
            {
                (Some(&mut *object), None)
            }
            Some(urn) => match key_of(object, urn) {
                Some(key) => (
                    object.get_mut(&key).and_then(Value::as_object_mut),
                    Some(key),
                ),
                None => (None, None),
            },
        };
        let Some(container) = container else {
            continue;
        };
        if let Some(value) = take(container, &parsed) {
            removed.push(RemovedValue {
                path: path.to_owned(),
                value,
            });
        }
        if container.is_empty() {
            if let Some(key) = extension {
                emptied.push(key);
            }
        }
    }
    for key in emptied {
        if object.get(&key).is_none_or(is_absent) {
            object.shift_remove(&key);
            if let Some(Value::Array(schemas)) = object.get_mut("schemas") {
                schemas.retain(|urn| urn.as_str() != Some(key.as_str()));
            }
        }
    }
    removed
}

/// The key of `object` equal to `name`, case-insensitively.
fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
}

/// Takes an attribute or sub-attribute out of its container.
fn take(container: &mut Map<String, Value>, path: &AttrPath) -> Option<Value> {
    let key = key_of(container, &path.attribute)?;
    let Some(sub) = &path.sub_attribute else {
        return container.shift_remove(&key);
    };
    let value = container.get_mut(&key)?;
    let taken = match value {
        Value::Object(fields) => key_of(fields, sub).and_then(|name| fields.shift_remove(&name)),
        Value::Array(elements) => {
            let mut values = Vec::new();
            for element in elements.iter_mut() {
                if let Value::Object(fields) = element {
                    if let Some(value) =
                        key_of(fields, sub).and_then(|name| fields.shift_remove(&name))
                    {
                        values.push(value);
                    }
                }
            }
            elements.retain(|element| !is_absent(element));
            (!values.is_empty()).then_some(Value::Array(values))
        }
        _ => None,
    };
    if is_absent(value) {
        container.shift_remove(&key);
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers() {
        assert_eq!(whole(2.0), Some(Number::from(2)));
        assert_eq!(whole(-7.0), Some(Number::from(-7)));
        assert_eq!(whole(2.5), None);
        assert_eq!(whole(f64::NAN), None);
        assert_eq!(whole(1e300), None);
    }

    #[test]
    fn scalars() {
        use AttributeType::*;
        let check = |kind, value: Value, expected: Option<Value>| {
            assert_eq!(scalar(kind, &value).ok(), expected, "{value} to {kind:?}");
        };
        check(String, json!(4.5), Some(json!("4.5")));
        check(String, json!(false), Some(json!("false")));
        check(Integer, json!("-12"), Some(json!(-12)));
        check(Integer, json!("2.0"), Some(json!(2)));
        check(Integer, json!(true), None);
        check(Decimal, json!("2.5"), Some(json!(2.5)));
        check(Decimal, json!("NaN"), None);
        check(Boolean, json!("TRUE"), Some(json!(true)));
        check(Boolean, json!(1), None);
        check(Binary, json!("aGVsbG8="), Some(json!("aGVsbG8=")));
        check(Binary, json!("not base64!"), None);
        check(Reference, json!(5), None);
        check(Complex, json!("x"), None);
    }
}
