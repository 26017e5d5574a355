//! One PATCH operation applied to a working copy of a canonical resource.
//!
//! Every value written here has been through the same checks as a POST body
//! ([`Rules`]); each top-level attribute written is recorded in `touched`.
//! The working copy may hold transient non-canonical shapes (an empty
//! extension object, an emptied complex value, `schemas` out of date);
//! `resource::finish_patched` tidies the touched attributes after the last
//! operation.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::op::{PatchOpKind, PatchOperation};
use crate::error::ScimError;
use crate::filter::{CompareOp, Filter, FilterValue};
use crate::path::PatchPath;
use crate::resource::{
    describe, is_absent, is_primary, primary_name, resolve_in_extension, resolve_key, resolve_path,
    same_value, where_of, Rules, Touched, Where,
};
use crate::schema::{Attribute, Container, Mutability, ResolvedAttribute, ResolvedPath, Schema};

type Object = Map<String, Value>;

/// Applies one operation to `working` (the resource's top-level object).
pub(super) fn apply_operation<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    operation: &PatchOperation,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    let value = operation.value.as_ref();
    match (&operation.path, operation.op) {
        (None, PatchOpKind::Remove) => Err(ScimError::no_target(
            "'remove' needs a 'path' naming what to remove",
        )),
        (None, kind) => pathless(
            rules,
            working,
            kind,
            value.unwrap_or(&Value::Null),
            true,
            touched,
        ),
        (Some(path), kind) => with_path(rules, working, kind, path, value, touched),
    }
}

/// A path-less `add`/`replace`: each key of the value is a path.
fn pathless<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    kind: PatchOpKind,
    value: &Value,
    top: bool,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    let Value::Object(object) = value else {
        return Err(ScimError::invalid_value(format!(
            "a path-less {kind} expects an object whose keys are attribute paths, got {}",
            describe(value)
        )));
    };
    for (key, raw) in object {
        if key.eq_ignore_ascii_case("schemas") {
            // Derived from the attributes the resource carries.
            continue;
        }
        if top && key.eq_ignore_ascii_case(&rules.resource_type.schema) {
            pathless(rules, working, kind, raw, false, touched)?;
            continue;
        }
        match resolve_key(rules, key) {
            None => rules.undeclared(key, raw, false)?,
            Some(ResolvedPath::Extension(schema)) => {
                set_extension(rules, working, kind, schema, raw, touched)?;
            }
            Some(ResolvedPath::Attribute(resolved)) => {
                // As in a POST body, readOnly values are ignored.
                if !is_read_only(&resolved) {
                    set(rules, working, kind, &resolved, raw, touched)?;
                }
            }
        }
    }
    Ok(())
}

/// `add`/`replace` of a whole extension: each key of the object is an
/// attribute of the extension; an absent value clears the extension.
fn set_extension<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    kind: PatchOpKind,
    schema: &'r Schema,
    raw: &Value,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    match raw {
        Value::Object(inner) if !inner.is_empty() => {
            for (key, inner_raw) in inner {
                if key.eq_ignore_ascii_case("schemas") {
                    // Clients that model an extension as its own object
                    // (scim2-models does) send its URN along; anything
                    // else there is a mistake worth reporting.
                    check_extension_schemas(schema, inner_raw)?;
                    continue;
                }
                match resolve_in_extension(rules, schema, key) {
                    Some(resolved) => {
                        if !is_read_only(&resolved) {
                            set(rules, working, kind, &resolved, inner_raw, touched)?;
                        }
                    }
                    None => rules.undeclared(&format!("{}:{key}", schema.id), inner_raw, false)?,
                }
            }
            Ok(())
        }
        absent if is_absent(absent) => {
            remove_extension(working, schema, touched);
            Ok(())
        }
        other => Err(ScimError::invalid_value(format!(
            "'{}' expects an object of the schema's attributes, got {}",
            schema.id,
            describe(other)
        ))),
    }
}

/// Accepts a `schemas` member inside an extension value only when it names
/// that extension.
fn check_extension_schemas(schema: &Schema, raw: &Value) -> Result<(), ScimError> {
    let names_extension = match raw {
        Value::Array(items) => items.iter().all(|item| {
            item.as_str()
                .is_some_and(|urn| urn.eq_ignore_ascii_case(&schema.id))
        }),
        Value::String(urn) => urn.eq_ignore_ascii_case(&schema.id),
        _ => false,
    };
    if names_extension {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "'{}.schemas' may only list \"{}\", got {raw}",
            schema.id, schema.id
        )))
    }
}

fn with_path<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    kind: PatchOpKind,
    path: &PatchPath,
    value: Option<&Value>,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    let target = &path.attribute;
    let plain = path.value_filter.is_none() && path.sub_attribute.is_none();
    if plain
        && target.schema.is_none()
        && target.sub_attribute.is_none()
        && target.attribute.eq_ignore_ascii_case("schemas")
    {
        return schemas_operation(rules, kind, value);
    }
    let Some(resolved) = resolve_path(rules, target) else {
        return undeclared_path(rules, kind, path, value);
    };
    let resolved = match resolved {
        ResolvedPath::Extension(schema) => {
            if !plain {
                return Err(ScimError::invalid_path(format!(
                    "'{}' names a whole extension; a value filter selects values of a multi-valued attribute",
                    schema.id
                )));
            }
            return match kind {
                PatchOpKind::Remove => {
                    remove_extension(working, schema, touched);
                    Ok(())
                }
                PatchOpKind::Add | PatchOpKind::Replace => set_extension(
                    rules,
                    working,
                    kind,
                    schema,
                    value.unwrap_or(&Value::Null),
                    touched,
                ),
            };
        }
        ResolvedPath::Attribute(resolved) => resolved,
    };
    if is_read_only(&resolved) {
        return Err(ScimError::mutability(format!(
            "attribute '{}' is readOnly: the server sets it",
            resolved.canonical_path()
        )));
    }
    let Some(filter) = &path.value_filter else {
        return match kind {
            PatchOpKind::Remove => remove(rules, working, &resolved, value, touched),
            PatchOpKind::Add | PatchOpKind::Replace => set(
                rules,
                working,
                kind,
                &resolved,
                value.unwrap_or(&Value::Null),
                touched,
            ),
        };
    };
    let attribute = resolved.attribute;
    let at = where_of(&resolved);
    if !attribute.multi_valued {
        return Err(ScimError::invalid_path(format!(
            "'{at}' is single-valued; a [filter] selects values of a multi-valued attribute"
        )));
    }
    let sub = match &path.sub_attribute {
        None => None,
        Some(name) => Some(
            attribute
                .sub_attribute(name)
                .ok_or_else(|| rules.unknown_attribute(&format!("{at}.{name}")))?,
        ),
    };
    if let Some(sub) = sub {
        if sub.mutability == Mutability::ReadOnly {
            return Err(ScimError::mutability(format!(
                "attribute '{}' is readOnly: the server sets it",
                at.sub(&sub.name)
            )));
        }
    }
    touched.push((at.urn, attribute));
    let object = container(working, &resolved)?;
    let mut elements = take_elements(object, attribute);
    let result = filtered(
        rules,
        &mut elements,
        kind,
        attribute,
        at,
        filter,
        sub,
        value,
    );
    put_elements(object, attribute, elements);
    result
}

/// An operation whose path no schema declares: refused, or (capturing) it
/// sets or removes that path's entry of the unmapped object, whole: a value
/// filter cannot select inside a captured value.
fn undeclared_path(
    rules: &Rules<'_>,
    kind: PatchOpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let target = path.attribute.to_string();
    if !rules.captures() {
        return Err(rules.unknown_attribute(&target));
    }
    if path.value_filter.is_some() {
        return Err(ScimError::invalid_path(format!(
            "'{target}' is not declared by any schema: its captured value is kept whole among the unmapped attributes, so a value filter cannot select in it"
        )));
    }
    match kind {
        PatchOpKind::Remove => rules.forget(&target),
        PatchOpKind::Add | PatchOpKind::Replace => {
            rules.undeclared(&target, value.unwrap_or(&Value::Null), false)
        }
    }
}

/// `schemas` is derived from the attributes a resource carries: adding a
/// known URN is accepted and changes nothing (so is an unknown one when
/// undeclared attributes are captured); removing is refused.
fn schemas_operation(
    rules: &Rules<'_>,
    kind: PatchOpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if kind == PatchOpKind::Remove {
        return Err(ScimError::mutability(
            "'schemas' is derived from the attributes the resource carries; remove the extension's attributes instead",
        ));
    }
    let items = match value {
        Some(Value::Array(items)) => items.as_slice(),
        Some(single) => std::slice::from_ref(single),
        None => &[],
    };
    let registry = rules.registry;
    let resource_type = rules.resource_type;
    for item in items {
        let known = match item {
            Value::String(_) if rules.captures() => true,
            Value::String(urn) => {
                urn.eq_ignore_ascii_case(&resource_type.schema)
                    || urn.eq_ignore_ascii_case(crate::schema::builtin::ENTRA_GROUP_SCHEMA)
                    || registry
                        .extensions(resource_type)
                        .any(|(schema, _)| schema.id.eq_ignore_ascii_case(urn))
            }
            _ => false,
        };
        if !known {
            return Err(ScimError::invalid_value(format!(
                "{} is not a schema of resource type {}",
                describe(item),
                resource_type.id
            )));
        }
    }
    Ok(())
}

/// Removes a whole extension object.
fn remove_extension<'r>(working: &mut Object, schema: &'r Schema, touched: &mut Vec<Touched<'r>>) {
    working.shift_remove(&schema.id);
    touched.extend(
        schema
            .attributes
            .iter()
            .map(|attribute| (Some(schema.id.as_str()), attribute)),
    );
}

fn is_read_only(resolved: &ResolvedAttribute<'_>) -> bool {
    resolved.attribute.mutability == Mutability::ReadOnly
        || resolved
            .sub_attribute
            .is_some_and(|sub| sub.mutability == Mutability::ReadOnly)
}

/// The object an attribute lives in: the resource, or its extension's
/// object (created when missing).
fn container<'m>(
    working: &'m mut Object,
    resolved: &ResolvedAttribute<'_>,
) -> Result<&'m mut Object, ScimError> {
    match resolved.container {
        Container::Core => Ok(working),
        Container::Extension(urn) => {
            if !working.contains_key(urn) {
                working.insert(urn.to_owned(), Value::Object(Map::new()));
            }
            let Some(entry) = working.get_mut(urn) else {
                return Err(ScimError::status(
                    500,
                    format!("extension '{urn}' vanished"),
                ));
            };
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            entry.as_object_mut().ok_or_else(|| {
                ScimError::status(500, format!("extension '{urn}' is not an object"))
            })
        }
    }
}

/// Sets a member, reusing the key when it is already there.
fn put(object: &mut Object, name: &str, value: Value) {
    match object.get_mut(name) {
        Some(slot) => *slot = value,
        None => {
            object.insert(name.to_owned(), value);
        }
    }
}

/// Takes the values of a multi-valued attribute out of its object, as a
/// list (empty when absent); [`put_elements`] puts them back.
fn take_elements(object: &mut Object, attribute: &Attribute) -> Vec<Value> {
    match object.get_mut(&attribute.name).map(std::mem::take) {
        Some(Value::Array(elements)) => elements,
        Some(single) if !is_absent(&single) => vec![single],
        Some(_) | None => Vec::new(),
    }
}

/// Puts a multi-valued attribute's values back; no values means absent.
fn put_elements(object: &mut Object, attribute: &Attribute, elements: Vec<Value>) {
    if elements.is_empty() {
        object.shift_remove(&attribute.name);
    } else {
        put(object, &attribute.name, Value::Array(elements));
    }
}

/// `add`/`replace` of a resolved attribute or sub-attribute (no filter).
fn set<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    kind: PatchOpKind,
    resolved: &ResolvedAttribute<'r>,
    raw: &Value,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    let attribute = resolved.attribute;
    let at = where_of(resolved);
    touched.push((at.urn, attribute));
    let object = container(working, resolved)?;
    if let Some(sub) = resolved.sub_attribute {
        return set_sub(rules, object, attribute, at, sub, raw);
    }
    if attribute.is_complex() && !attribute.multi_valued {
        if let Value::Object(fields) = raw {
            if !fields.is_empty() {
                return merge_complex(rules, object, attribute, at, fields, raw);
            }
        }
    }
    match rules.value(attribute, at, raw)? {
        None => {
            object.shift_remove(&attribute.name);
        }
        Some(Value::Array(new)) if kind == PatchOpKind::Add && attribute.multi_valued => {
            let mut elements = take_elements(object, attribute);
            add_elements(attribute, &mut elements, new);
            put_elements(object, attribute, elements);
        }
        Some(new) => {
            put(object, &attribute.name, new);
        }
    }
    Ok(())
}

/// `add`/`replace` of a singular complex attribute with an object: the
/// given sub-attributes are set (absent ones cleared), the others kept
/// (RFC 7644 section 3.5.2.3).
fn merge_complex(
    rules: &Rules<'_>,
    object: &mut Object,
    attribute: &Attribute,
    at: Where<'_>,
    fields: &Object,
    raw: &Value,
) -> Result<(), ScimError> {
    // Checked whole first, so errors are those of a POST body.
    let canonical = rules.value(attribute, at, raw)?;
    let entry = object
        .entry(attribute.name.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    let Some(current) = entry.as_object_mut() else {
        return Ok(());
    };
    for (key, field) in fields {
        if is_absent(field) {
            if let Some(sub) = attribute.sub_attribute(key) {
                if !rules.ignores(sub) {
                    current.shift_remove(&sub.name);
                }
            }
        }
    }
    if let Some(Value::Object(canonical)) = canonical {
        for (key, value) in canonical {
            insert_in_order(current, attribute, &key, value);
        }
    }
    Ok(())
}

/// `add`/`replace` of `attr.sub` without a filter: on a singular complex
/// attribute, the sub-attribute; on a multi-valued one, the sub-attribute of
/// every value (a first value is created if there is none).
fn set_sub(
    rules: &Rules<'_>,
    object: &mut Object,
    attribute: &Attribute,
    at: Where<'_>,
    sub: &Attribute,
    raw: &Value,
) -> Result<(), ScimError> {
    let new = rules.value(sub, at.sub(&sub.name), raw)?;
    if attribute.multi_valued {
        let mut elements = take_elements(object, attribute);
        if elements.is_empty() {
            if let Some(new) = new {
                let mut element = Map::new();
                element.insert(sub.name.clone(), new);
                elements.push(Value::Object(element));
            }
        } else {
            for element in elements.iter() {
                check_immutable_field(element, at, sub, new.as_ref())?;
            }
            for element in elements.iter_mut() {
                set_field(element, attribute, &sub.name, new.clone());
            }
            let touched: Vec<usize> = (0..elements.len()).collect();
            promote_primary(attribute, &mut elements, &touched);
            elements.retain(|element| !is_absent(element));
        }
        put_elements(object, attribute, elements);
        return Ok(());
    }
    let entry = object
        .entry(attribute.name.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    set_field(entry, attribute, &sub.name, new);
    Ok(())
}

/// An immutable sub-attribute of an existing value (a group's
/// `members.value`) cannot be rewritten in place once set; whole values may
/// still be added and removed.
fn check_immutable_field(
    element: &Value,
    at: Where<'_>,
    sub: &Attribute,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    if sub.mutability != Mutability::Immutable {
        return Ok(());
    }
    match element.get(&sub.name) {
        Some(old) if !is_absent(old) && Some(old) != new => Err(ScimError::mutability(format!(
            "attribute '{}' is immutable: it is already set and cannot be changed or removed; remove the value and add a new one instead",
            at.sub(&sub.name)
        ))),
        Some(_) | None => Ok(()),
    }
}

/// Sets (or with `None` removes) one sub-attribute of a complex value.
fn set_field(target: &mut Value, attribute: &Attribute, name: &str, new: Option<Value>) {
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(object) = target.as_object_mut() {
        match new {
            Some(new) => insert_in_order(object, attribute, name, new),
            None => {
                object.shift_remove(name);
            }
        }
    }
}

/// Inserts a sub-attribute where declared order puts it, so that a value
/// built or changed here needs no reordering afterwards.
fn insert_in_order(object: &mut Object, attribute: &Attribute, name: &str, value: Value) {
    if let Some(slot) = object.get_mut(name) {
        *slot = value;
        return;
    }
    let rank = |key: &str| {
        attribute
            .sub_attributes
            .iter()
            .position(|sub| sub.name == key)
    };
    let index = match rank(name) {
        Some(wanted) => object
            .keys()
            .position(|key| rank(key).is_none_or(|other| other > wanted))
            .unwrap_or(object.len()),
        None => object.len(),
    };
    object.shift_insert(index, name.to_owned(), value);
}

/// `add` to a multi-valued attribute: new values are appended unless
/// already there; a value with the same `value` sub-attribute as an existing
/// one is merged into it.
///
/// Existing values are looked up by a key ([`SameKey`]), so adding n values
/// to m costs O(n + m), not O(n * m): one request adding 20,000 emails must
/// not hold a worker for seconds.
fn add_elements(attribute: &Attribute, elements: &mut Vec<Value>, new: Vec<Value>) {
    let mut touched = Vec::with_capacity(new.len());
    let mut same = SameKey::index(attribute, elements);
    for element in new {
        match same.find(attribute, elements, &element) {
            Some(index) => {
                if let (Some(Value::Object(existing)), Value::Object(fields)) =
                    (elements.get_mut(index), element)
                {
                    for (key, value) in fields {
                        insert_in_order(existing, attribute, &key, value);
                    }
                }
                touched.push(index);
            }
            None => {
                same.note(attribute, &element, elements.len());
                elements.push(element);
                touched.push(elements.len() - 1);
            }
        }
    }
    promote_primary(attribute, elements, &touched);
}

/// The positions of a multi-valued attribute's values by what makes two
/// values the same for `add` ([`find_same`]): a simple value by its
/// comparable form, a complex one by its `value` sub-attribute, and an
/// element without one by its exact content.
struct SameKey {
    positions: HashMap<String, Vec<usize>>,
}

impl SameKey {
    fn index(attribute: &Attribute, elements: &[Value]) -> SameKey {
        let mut same = SameKey {
            positions: HashMap::with_capacity(elements.len()),
        };
        for (position, element) in elements.iter().enumerate() {
            same.note(attribute, element, position);
        }
        same
    }

    fn note(&mut self, attribute: &Attribute, element: &Value, position: usize) {
        self.positions
            .entry(same_key(attribute, element))
            .or_default()
            .push(position);
    }

    /// What [`find_same`] finds, looking only at the values with the same
    /// key: an exact duplicate first, else the first value that is the same.
    fn find(&self, attribute: &Attribute, elements: &[Value], element: &Value) -> Option<usize> {
        let candidates = self.positions.get(&same_key(attribute, element))?;
        let value = |position: &usize| elements.get(*position);
        candidates
            .iter()
            .find(|position| value(position) == Some(element))
            .or_else(|| {
                candidates.iter().find(|position| {
                    value(position).is_some_and(|existing| {
                        find_same(attribute, std::slice::from_ref(existing), element).is_some()
                    })
                })
            })
            .copied()
    }
}

/// The key two values share when [`find_same`] may call them the same (a
/// necessary condition; [`SameKey::find`] then decides exactly).
fn same_key(attribute: &Attribute, element: &Value) -> String {
    let comparable = |attribute: &Attribute, value: &Value| match value {
        Value::String(text) if !attribute.case_exact => format!("s{}", text.to_lowercase()),
        other => format!("v{other}"),
    };
    if !attribute.is_complex() {
        return comparable(attribute, element);
    }
    let by_value = attribute
        .sub_attribute("value")
        .and_then(|sub| Some((sub, element.get(&sub.name)?)));
    match (by_value, element) {
        (Some((sub, value)), _) => format!("value:{}", comparable(sub, value)),
        // Only an exact duplicate is the same: key by the sorted members.
        (None, Value::Object(fields)) => {
            let mut members: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            members.sort_unstable();
            format!("exact:{}", members.join("\u{1f}"))
        }
        (None, other) => format!("exact:{other}"),
    }
}

/// The index of an existing value that `element` duplicates.
fn find_same(attribute: &Attribute, elements: &[Value], element: &Value) -> Option<usize> {
    if let Some(index) = elements.iter().position(|existing| existing == element) {
        return Some(index);
    }
    if !attribute.is_complex() {
        return elements
            .iter()
            .position(|existing| same_value(attribute, existing, element));
    }
    let value_sub = attribute.sub_attribute("value")?;
    let wanted = element.get(&value_sub.name)?;
    elements.iter().position(|existing| {
        existing
            .get(&value_sub.name)
            .is_some_and(|value| same_value(value_sub, value, wanted))
    })
}

/// The most values a `remove` may designate by sub-attributes other than
/// `value`: each is compared with every stored value.
const MAX_DESIGNATED_WITHOUT_VALUE: usize = 100;

/// The values a `remove` designates, looked up by key where they name a
/// `value` (or are simple values), so removing n values from m costs
/// O(n + m).
struct Designated {
    keys: std::collections::HashSet<String>,
    others: Vec<Value>,
}

impl Designated {
    fn new(attribute: &Attribute, items: Vec<Value>) -> Result<Designated, ScimError> {
        let mut keys = std::collections::HashSet::with_capacity(items.len());
        let mut others = Vec::new();
        let by_value = attribute.sub_attribute("value");
        for item in items {
            match (attribute.is_complex(), by_value, &item) {
                (false, _, _) => {
                    keys.insert(same_key(attribute, &item));
                }
                (true, Some(sub), Value::Object(fields)) if fields.contains_key(&sub.name) => {
                    keys.insert(same_key(attribute, &item));
                }
                _ => others.push(item),
            }
        }
        if others.len() > MAX_DESIGNATED_WITHOUT_VALUE {
            return Err(ScimError::invalid_value(format!(
                "attribute '{}': a remove designates at most {MAX_DESIGNATED_WITHOUT_VALUE} values by sub-attributes other than 'value', got {}",
                attribute.name,
                others.len()
            )));
        }
        Ok(Designated { keys, others })
    }

    /// Whether `element` is one of the designated values ([`designates`]).
    fn designates(&self, attribute: &Attribute, element: &Value) -> bool {
        self.keys.contains(&same_key(attribute, element))
            || self
                .others
                .iter()
                .any(|item| designates(attribute, item, element))
    }
}

/// Whether a value given to `remove` designates an existing value: by its
/// `value` sub-attribute when given, otherwise by every sub-attribute given.
fn designates(attribute: &Attribute, item: &Value, element: &Value) -> bool {
    if item == element {
        return true;
    }
    let Value::Object(fields) = item else {
        return same_value(attribute, item, element);
    };
    let compare = |key: &String, wanted: &Value| {
        let sub = attribute.sub_attribute(key);
        element.get(key).is_some_and(|value| match sub {
            Some(sub) => same_value(sub, value, wanted),
            None => value == wanted,
        })
    };
    if let Some(value_sub) = attribute.sub_attribute("value") {
        if let Some((key, wanted)) = fields.get_key_value(&value_sub.name) {
            return compare(key, wanted);
        }
    }
    !fields.is_empty() && fields.iter().all(|(key, wanted)| compare(key, wanted))
}

/// When exactly one of the values just written is primary, the others stop
/// being primary (RFC 7644 section 3.5.2).
fn promote_primary(attribute: &Attribute, elements: &mut [Value], touched: &[usize]) {
    let Some(primary) = primary_name(attribute) else {
        return;
    };
    let mut winners = touched
        .iter()
        .copied()
        .filter(|index| elements.get(*index).is_some_and(|e| is_primary(e, primary)));
    let Some(winner) = winners.next() else {
        return;
    };
    if winners.any(|other| other != winner) {
        return;
    }
    for (index, element) in elements.iter_mut().enumerate() {
        if index != winner && is_primary(element, primary) {
            set_field(element, attribute, primary, Some(Value::Bool(false)));
        }
    }
}

/// `remove` without a filter.
fn remove<'r>(
    rules: &Rules<'r>,
    working: &mut Object,
    resolved: &ResolvedAttribute<'r>,
    value: Option<&Value>,
    touched: &mut Vec<Touched<'r>>,
) -> Result<(), ScimError> {
    let attribute = resolved.attribute;
    let at = where_of(resolved);
    touched.push((at.urn, attribute));
    let object = container(working, resolved)?;
    match resolved.sub_attribute {
        None => match value.filter(|value| !is_absent(value)) {
            Some(raw) if attribute.multi_valued => {
                // Non-standard but common: `remove members` with a list of
                // the members to remove.
                let items = match raw {
                    Value::Array(items) => items.as_slice(),
                    single => std::slice::from_ref(single),
                };
                // Designating values captures nothing.
                let designating = Rules {
                    undeclared: None,
                    ..*rules
                };
                let mut designated = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(item) = designating.single(attribute, at, item)? {
                        designated.push(item);
                    }
                }
                let designated = Designated::new(attribute, designated)?;
                if let Some(Value::Array(elements)) = object.get_mut(&attribute.name) {
                    elements.retain(|element| !designated.designates(attribute, element));
                }
            }
            _ => {
                object.shift_remove(&attribute.name);
            }
        },
        Some(sub) => match object.get_mut(&attribute.name) {
            Some(Value::Array(elements)) => {
                for element in elements.iter_mut() {
                    set_field(element, attribute, &sub.name, None);
                }
                elements.retain(|element| !is_absent(element));
            }
            Some(complex @ Value::Object(_)) => set_field(complex, attribute, &sub.name, None),
            _ => {}
        },
    }
    Ok(())
}

/// An operation through `attr[filter]` or `attr[filter].sub`.
#[allow(clippy::too_many_arguments)]
fn filtered(
    rules: &Rules<'_>,
    elements: &mut Vec<Value>,
    kind: PatchOpKind,
    attribute: &Attribute,
    at: Where<'_>,
    filter: &Filter,
    sub: Option<&Attribute>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let matched: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, element)| filter.matches_element(element, attribute))
        .map(|(index, _)| index)
        .collect();
    let raw = value.unwrap_or(&Value::Null);
    let no_match = || {
        ScimError::no_target(format!(
            "no value of '{at}' matches [{filter}], and the filter does not say what to create (use eq clauses joined by 'and')"
        ))
    };
    let touched = match (kind, sub) {
        (PatchOpKind::Remove, None) => {
            let mut index = 0;
            elements.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
            return Ok(());
        }
        (PatchOpKind::Remove, Some(sub)) => {
            for index in &matched {
                if let Some(element) = elements.get(*index) {
                    check_immutable_field(element, at, sub, None)?;
                }
            }
            for index in &matched {
                if let Some(element) = elements.get_mut(*index) {
                    set_field(element, attribute, &sub.name, None);
                }
            }
            elements.retain(|element| !is_absent(element));
            return Ok(());
        }
        (PatchOpKind::Add | PatchOpKind::Replace, Some(sub)) => {
            let new = rules.value(sub, at.sub(&sub.name), raw)?;
            if matched.is_empty() {
                // Entra ID: `emails[type eq "work"].value` on a user with no
                // work email creates {"type": "work", "value": ...}.
                let Some(new) = new else {
                    return Ok(());
                };
                let mut element =
                    element_from_filter(rules, attribute, at, filter)?.ok_or_else(no_match)?;
                insert_in_order(&mut element, attribute, &sub.name, new);
                elements.push(Value::Object(element));
                vec![elements.len() - 1]
            } else {
                for index in &matched {
                    if let Some(element) = elements.get(*index) {
                        check_immutable_field(element, at, sub, new.as_ref())?;
                    }
                }
                for index in &matched {
                    if let Some(element) = elements.get_mut(*index) {
                        set_field(element, attribute, &sub.name, new.clone());
                    }
                }
                matched
            }
        }
        (PatchOpKind::Add | PatchOpKind::Replace, None) => {
            let new = rules.single(attribute, at, raw)?;
            if matched.is_empty() {
                let Some(new) = new else {
                    return Ok(());
                };
                if kind == PatchOpKind::Replace {
                    return Err(ScimError::no_target(format!(
                        "no value of '{at}' matches [{filter}]"
                    )));
                }
                let created = match new {
                    Value::Object(fields) => {
                        let mut element = element_from_filter(rules, attribute, at, filter)?
                            .ok_or_else(no_match)?;
                        for (key, field) in fields {
                            insert_in_order(&mut element, attribute, &key, field);
                        }
                        Value::Object(element)
                    }
                    primitive => primitive,
                };
                elements.push(created);
                vec![elements.len() - 1]
            } else {
                for index in &matched {
                    let Some(element) = elements.get_mut(*index) else {
                        continue;
                    };
                    match (&new, kind, element.as_object_mut()) {
                        (Some(Value::Object(fields)), PatchOpKind::Add, Some(existing)) => {
                            for (key, field) in fields {
                                insert_in_order(existing, attribute, key, field.clone());
                            }
                        }
                        (Some(new), _, _) => *element = new.clone(),
                        (None, _, _) => *element = Value::Null,
                    }
                }
                matched
            }
        }
    };
    promote_primary(attribute, elements, &touched);
    elements.retain(|element| !is_absent(element));
    Ok(())
}

/// The value a filter of `eq` clauses joined by `and` describes
/// (`type eq "work"` gives `{"type": "work"}`), or `None` when the filter
/// says something else (`or`, `co`, ...).
fn element_from_filter(
    rules: &Rules<'_>,
    attribute: &Attribute,
    at: Where<'_>,
    filter: &Filter,
) -> Result<Option<Object>, ScimError> {
    let mut element = Map::new();
    let described = collect_eq(rules, attribute, at, filter, &mut element)?;
    Ok(described.then_some(element))
}

fn collect_eq(
    rules: &Rules<'_>,
    attribute: &Attribute,
    at: Where<'_>,
    filter: &Filter,
    element: &mut Object,
) -> Result<bool, ScimError> {
    match filter {
        Filter::And(operands) => {
            for operand in operands {
                if !collect_eq(rules, attribute, at, operand, element)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub_attribute.is_none() => {
            let Some(sub) = attribute.sub_attribute(&path.attribute) else {
                return Err(rules.unknown_attribute(&format!("{at}.{}", path.attribute)));
            };
            if rules.ignores(sub) {
                return Ok(true);
            }
            let literal = match value {
                FilterValue::String(text) => Value::String(text.clone()),
                FilterValue::Boolean(flag) => Value::Bool(*flag),
                FilterValue::Number(number) => Value::Number(number.clone()),
                FilterValue::Null => return Ok(true),
            };
            let Some(canonical) = rules.value(sub, at.sub(&sub.name), &literal)? else {
                return Ok(true);
            };
            match element.get(&sub.name) {
                Some(existing) if *existing != canonical => Ok(false),
                _ => {
                    insert_in_order(element, attribute, &sub.name, canonical);
                    Ok(true)
                }
            }
        }
        Filter::Compare { .. }
        | Filter::Or(_)
        | Filter::Not(_)
        | Filter::Present(_)
        | Filter::ValuePath { .. } => Ok(false),
    }
}
