//! Resource validation: a client's POST or PUT body becomes a resource in
//! canonical form (see `docs/CONTRIBUTING-AGENTS.md`, "Canonical resource
//! JSON"), or a 400 naming the attribute at fault and what was expected.
//!
//! What the validator does, in RFC 7643/7644 terms:
//! - names are matched case-insensitively and written in canonical case;
//!   extension attributes are accepted nested under their URN, as
//!   URN-qualified keys (`urn:...:User:department`) and as dotted keys
//!   (`name.givenName`);
//! - `schemas` must list the core schema; other URNs in it must be
//!   extensions of the resource type (Entra ID's
//!   [`ENTRA_GROUP_SCHEMA`](crate::schema::builtin::ENTRA_GROUP_SCHEMA) is
//!   accepted and dropped); the output's `schemas` is rebuilt from the
//!   extensions the resource actually carries;
//! - readOnly attributes (`id`, `meta`, `groups`, `members.display`, ...)
//!   are ignored (RFC 7644 section 3.3);
//! - `null`, `""`, `[]` and `{}` mean absent and are left out;
//! - values are type-checked (see [`value`]), required attributes must be
//!   present, and at most one value of a multi-valued attribute is primary.
//!
//! Unknown attributes are never dropped: they are `400 invalidSyntax` (the
//! body does not conform to the resource schema) with a "did you mean" and
//! how to declare them. The same name in a PATCH operation is `400
//! invalidPath`. Under [`UndeclaredPolicy::Capture`] they are instead kept
//! in an unmapped object apart from the resource ([`normalize_with`]).
//!
//! Canonical values (`work`, `home`, ...) are suggestions: other `type`
//! values are accepted.

mod undeclared;
mod value;

/// The most values one multi-valued attribute (or multi-valued
/// sub-attribute of one complex value) may hold, duplicates removed; more
/// is `400 invalidValue`, in a POST or PUT body and in the resource a PATCH
/// leaves (the PATCH then changes nothing). With each request body bounded
/// at the edge, this bounds how far repeated PATCHes can grow a resource.
/// A group's core `members` are exempt: they are kept as rows.
pub const MAX_VALUES: usize = 1000;

use std::cell::RefCell;

use serde_json::{Map, Value};

pub use undeclared::UndeclaredPolicy;
pub(crate) use undeclared::{Unmapped, Write};
pub use value::is_absent;
pub(crate) use value::{
    check_primary, dedup, describe, is_base64, is_primary, primary_name, same_value,
    truncate as truncate_text, Rules, Where,
};

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;
use crate::schema::builtin::ENTRA_GROUP_SCHEMA;
use crate::schema::{
    Attribute, Container, Mutability, ResolvedAttribute, ResolvedPath, ResourceType, Schema,
    SchemaExtension, SchemaRegistry,
};

/// Validates a client's POST or PUT body and returns it in canonical form.
///
/// readOnly attributes (`id`, `meta`, ...) are ignored; the server sets
/// them. Errors are `400` with `scimType` `invalidSyntax` (not an object,
/// unknown attribute, an attribute given twice) or `invalidValue` (bad
/// `schemas`, wrong type, required attribute missing, two primary values).
pub fn normalize(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    input: &Value,
) -> Result<Value, ScimError> {
    normalize_with(registry, resource_type, input, UndeclaredPolicy::Reject)
        .map(|normalized| normalized.resource)
}

/// The result of [`normalize_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The resource in canonical form: declared attributes only.
    pub resource: Value,
    /// The undeclared attributes captured under
    /// [`UndeclaredPolicy::Capture`], keyed by path (see below); always
    /// empty under [`UndeclaredPolicy::Reject`].
    pub unmapped: Map<String, Value>,
}

/// [`normalize`] under a tenant's policy for undeclared attributes.
///
/// With [`UndeclaredPolicy::Reject`] this is [`normalize`]. With
/// [`UndeclaredPolicy::Capture`], a value no schema declares is moved, as
/// sent, into [`Normalized::unmapped`] instead of being refused, keyed by
/// its path: a top-level key as the client sent it (`foo`,
/// `urn:...:acme:2.0:User:foo`, or an undeclared extension URN with its
/// whole object, which may then also be listed in `schemas`); a key inside
/// a declared extension object as `<extension URN>:<key>`; a key inside a
/// declared complex value as `<attribute path>.<key>` (for a multi-valued
/// attribute, the list of the values its elements carried). Absent values
/// (`null`, `""`, ...) are nothing to capture. Everything declared is
/// validated exactly as by [`normalize`]: a wrong type is an error in both
/// modes. For a PUT, the new unmapped object replaces the stored one.
pub fn normalize_with(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    input: &Value,
    policy: UndeclaredPolicy,
) -> Result<Normalized, ScimError> {
    let unmapped = RefCell::new(Unmapped::new(Map::new(), Write::Body));
    let rules = Rules {
        registry,
        resource_type,
        keep_read_only: false,
        unknown: ScimType::InvalidSyntax,
        undeclared: match policy {
            UndeclaredPolicy::Reject => None,
            UndeclaredPolicy::Capture => Some(&unmapped),
        },
    };
    let object = input.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "a {} resource must be a JSON object, got {}",
            resource_type.id,
            describe(input)
        ))
    })?;
    check_schemas(&rules, object)?;
    let mut draft = Draft::new(registry, resource_type)?;
    draft.collect(&rules, object, true)?;
    let resource = draft.finish()?;
    Ok(Normalized {
        resource,
        unmapped: unmapped.into_inner().into_entries(),
    })
}

/// Re-validates a resource that already went through the server, such as
/// the result of a PATCH, and returns it in canonical form.
///
/// Unlike [`normalize`], readOnly values (`id`, `meta`, `groups`) are kept
/// as they are, and `schemas` is not required on input: it is rebuilt from
/// the extensions the resource carries.
pub fn canonicalize(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
) -> Result<Value, ScimError> {
    let object = resource.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "a {} resource must be a JSON object, got {}",
            resource_type.id,
            describe(resource)
        ))
    })?;
    let rules = Rules {
        registry,
        resource_type,
        keep_read_only: true,
        unknown: ScimType::InvalidSyntax,
        undeclared: None,
    };
    let mut draft = Draft::new(registry, resource_type)?;
    draft.collect(&rules, object, true)?;
    draft.finish()
}

/// A top-level attribute a PATCH wrote: the URN of its extension (`None`
/// for common and core attributes) and its definition.
pub(crate) type Touched<'r> = (Option<&'r str>, &'r Attribute);

/// Brings a patched resource back to canonical form: the attributes the
/// operations touched are re-validated (the others are canonical already,
/// as stored), empty extensions dropped, `schemas` rebuilt, required
/// attributes checked and keys put in declared order.
pub(crate) fn finish_patched(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    object: &mut Map<String, Value>,
    touched: &[Touched<'_>],
) -> Result<(), ScimError> {
    let core = registry.core_schema(resource_type).ok_or_else(|| {
        ScimError::status(
            500,
            format!(
                "resource type {} names core schema '{}', which is not registered",
                resource_type.id, resource_type.schema
            ),
        )
    })?;
    for (index, (urn, attribute)) in touched.iter().enumerate() {
        let seen = touched
            .iter()
            .take(index)
            .any(|(other_urn, other)| other_urn == urn && std::ptr::eq(*other, *attribute));
        if seen {
            continue;
        }
        let container = match urn {
            None => Some(&mut *object),
            Some(urn) => object.get_mut(*urn).and_then(Value::as_object_mut),
        };
        let Some(container) = container else {
            continue;
        };
        let Some(current) = container.get_mut(&attribute.name) else {
            continue;
        };
        let at = Where {
            urn: *urn,
            attribute: &attribute.name,
            sub: None,
        };
        if !tidy(attribute, at, current)? {
            container.shift_remove(&attribute.name);
        }
    }
    let mut schemas = vec![core.id.as_str()];
    for (schema, binding) in registry.extensions(resource_type) {
        let extension = match object.get_mut(&schema.id) {
            Some(Value::Object(extension)) if !extension.is_empty() => extension,
            Some(_) | None => {
                object.shift_remove(&schema.id);
                if binding.required {
                    return Err(ScimError::invalid_value(format!(
                        "required extension '{}' is missing: resource type {} requires it",
                        schema.id, resource_type.id
                    )));
                }
                continue;
            }
        };
        check_required(Some(&schema.id), &schema.attributes, |_, attribute| {
            lookup_in(extension, &attribute.name)
        })?;
        order_keys(extension, schema.attributes.iter().map(|a| a.name.as_str()));
        schemas.push(&schema.id);
    }
    check_required(None, registry.common_attributes(), |_, attribute| {
        lookup_in(object, &attribute.name)
    })?;
    check_required(None, &core.attributes, |_, attribute| {
        lookup_in(object, &attribute.name)
    })?;
    let unchanged = match object.get("schemas") {
        Some(Value::Array(current)) => {
            current.len() == schemas.len()
                && current
                    .iter()
                    .zip(&schemas)
                    .all(|(current, urn)| current.as_str() == Some(*urn))
        }
        Some(_) | None => false,
    };
    if !unchanged {
        let schemas = schemas
            .into_iter()
            .map(|urn| Value::String(urn.to_owned()))
            .collect();
        match object.get_mut("schemas") {
            Some(slot) => *slot = Value::Array(schemas),
            None => {
                object.insert("schemas".to_owned(), Value::Array(schemas));
            }
        }
    }
    let order = std::iter::once("schemas")
        .chain(registry.common_attributes().iter().map(|a| a.name.as_str()))
        .chain(core.attributes.iter().map(|a| a.name.as_str()))
        .chain(
            resource_type
                .schema_extensions
                .iter()
                .map(|extension| extension.schema.as_str()),
        );
    order_keys(object, order);
    Ok(())
}

fn lookup_in<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).filter(|value| !is_absent(value))
}

/// Puts an object's keys in the given order (unknown keys last), moving
/// values only when they are out of order.
fn order_keys<'a>(object: &mut Map<String, Value>, order: impl Iterator<Item = &'a str> + Clone) {
    let mut remaining = order.clone();
    if object
        .keys()
        .all(|key| remaining.by_ref().any(|name| name == key))
    {
        return;
    }
    let rank = |key: &str| order.clone().position(|name| name == key);
    let mut entries: Vec<(String, Value)> = std::mem::take(object).into_iter().collect();
    entries.sort_by_key(|(key, _)| rank(key).unwrap_or(usize::MAX));
    object.extend(entries);
}

/// Tidies a value the PATCH operations wrote (each piece was checked on
/// the way in): emptied values dropped, sub-attributes in declared order,
/// exact duplicates removed, at most one primary. `false` means absent.
fn tidy(attribute: &Attribute, at: Where<'_>, value: &mut Value) -> Result<bool, ScimError> {
    let subs = || attribute.sub_attributes.iter().map(|sub| sub.name.as_str());
    match value {
        Value::Array(elements) if attribute.multi_valued => {
            for element in elements.iter_mut() {
                if let Value::Object(fields) = element {
                    order_keys(fields, subs());
                }
            }
            elements.retain(|element| !is_absent(element));
            value::dedup(elements);
            value::check_count(at, elements.len())?;
            check_primary(attribute, at, elements)?;
            for element in elements.iter() {
                check_sub_counts(attribute, at, element)?;
            }
        }
        Value::Object(fields) if attribute.is_complex() => {
            order_keys(fields, subs());
            check_sub_counts(attribute, at, value)?;
        }
        _ => {}
    }
    Ok(!is_absent(value))
}

/// [`MAX_VALUES`] for the multi-valued sub-attributes of one complex value.
fn check_sub_counts(attribute: &Attribute, at: Where<'_>, value: &Value) -> Result<(), ScimError> {
    for sub in attribute
        .sub_attributes
        .iter()
        .filter(|sub| sub.multi_valued)
    {
        if let Some(Value::Array(items)) = value.get(&sub.name) {
            value::check_count(at.sub(&sub.name), items.len())?;
        }
    }
    Ok(())
}

/// Whether a patched attribute differs from the original (absent and
/// missing are the same).
pub(crate) fn differs(original: &Value, patched: &Value, touched: &Touched<'_>) -> bool {
    let (urn, attribute) = touched;
    lookup(original, *urn, &attribute.name) != lookup(patched, *urn, &attribute.name)
}

/// Checks a PUT: an immutable attribute that is set on the `existing`
/// resource must have the same value in the `replacement` (RFC 7643
/// section 7, "immutable"); otherwise `400 mutability`.
///
/// Both resources are canonical. For a multi-valued complex attribute with
/// immutable sub-attributes (a group's `members.value`), values may be added
/// and removed whole, so only singular attributes and singular complex
/// attributes' sub-attributes are compared. A multi-valued attribute that is
/// itself immutable is compared as a set.
pub fn check_immutable(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    existing: &Value,
    replacement: &Value,
) -> Result<(), ScimError> {
    for (urn, attribute) in declared(registry, resource_type) {
        let at = Where {
            urn,
            attribute: &attribute.name,
            sub: None,
        };
        let before = lookup(existing, urn, &attribute.name);
        let after = lookup(replacement, urn, &attribute.name);
        if attribute.mutability == Mutability::Immutable {
            if let Some(before) = before {
                let unchanged = match after {
                    Some(after) if attribute.multi_valued => same_set(before, after),
                    Some(after) => before == after,
                    None => false,
                };
                if !unchanged {
                    return Err(immutable_error(at));
                }
            }
            continue;
        }
        if attribute.multi_valued || !attribute.is_complex() {
            continue;
        }
        for sub in &attribute.sub_attributes {
            if sub.mutability != Mutability::Immutable {
                continue;
            }
            if let Some(old) = before.and_then(|object| object.get(&sub.name)) {
                if after.and_then(|object| object.get(&sub.name)) != Some(old) {
                    return Err(immutable_error(at.sub(&sub.name)));
                }
            }
        }
    }
    Ok(())
}

/// Whether a resource type declares anything [`check_immutable`] guards.
pub(crate) fn has_immutable(registry: &SchemaRegistry, resource_type: &ResourceType) -> bool {
    declared(registry, resource_type).any(|(_, attribute)| {
        attribute.mutability == Mutability::Immutable
            || (!attribute.multi_valued
                && attribute
                    .sub_attributes
                    .iter()
                    .any(|sub| sub.mutability == Mutability::Immutable))
    })
}

fn immutable_error(at: Where<'_>) -> ScimError {
    ScimError::mutability(format!(
        "attribute '{at}' is immutable: it is already set and cannot be changed or removed"
    ))
}

/// Every top-level attribute of a resource type with the URN of the
/// extension it belongs to (`None` for common and core attributes).
fn declared<'r>(
    registry: &'r SchemaRegistry,
    resource_type: &'r ResourceType,
) -> impl Iterator<Item = (Option<&'r str>, &'r Attribute)> + 'r {
    let core = registry
        .core_schema(resource_type)
        .map(|schema| schema.attributes.as_slice())
        .unwrap_or_default();
    registry
        .common_attributes()
        .iter()
        .chain(core)
        .map(|attribute| (None, attribute))
        .chain(registry.extensions(resource_type).flat_map(|(schema, _)| {
            schema
                .attributes
                .iter()
                .map(|attribute| (Some(schema.id.as_str()), attribute))
        }))
}

/// The value of a top-level attribute of a canonical resource.
fn lookup<'v>(resource: &'v Value, urn: Option<&str>, name: &str) -> Option<&'v Value> {
    match urn {
        None => resource.get(name),
        Some(urn) => resource.get(urn).and_then(|extension| extension.get(name)),
    }
    .filter(|value| !is_absent(value))
}

/// Whether two multi-valued values hold the same elements, in any order.
fn same_set(left: &Value, right: &Value) -> bool {
    let items = |value: &Value| match value {
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    let (left, right) = (items(left), items(right));
    left.len() == right.len()
        && left.iter().all(|item| right.contains(item))
        && right.iter().all(|item| left.contains(item))
}

/// Checks the `schemas` member of client input: present, lists the core
/// schema, and names nothing the resource type does not know (unless
/// undeclared attributes are captured: then an unknown URN is dropped and
/// its object captured).
fn check_schemas(rules: &Rules<'_>, object: &Map<String, Value>) -> Result<(), ScimError> {
    let registry = rules.registry;
    let resource_type = rules.resource_type;
    let schemas = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("schemas"))
        .map(|(_, value)| value);
    let Some(schemas) = schemas else {
        return Err(ScimError::invalid_value(format!(
            "required attribute 'schemas' is missing; it must list \"{}\"",
            resource_type.schema
        )));
    };
    let items = match schemas {
        Value::Array(items) => items.as_slice(),
        Value::String(_) => std::slice::from_ref(schemas),
        other => {
            return Err(ScimError::invalid_value(format!(
                "attribute 'schemas' expects a list of schema URNs, got {}",
                describe(other)
            )))
        }
    };
    let mut has_core = false;
    for item in items {
        let Value::String(urn) = item else {
            return Err(ScimError::invalid_value(format!(
                "attribute 'schemas' expects a list of schema URNs, got a list holding {}",
                describe(item)
            )));
        };
        if urn.eq_ignore_ascii_case(&resource_type.schema) {
            has_core = true;
        } else if urn.eq_ignore_ascii_case(ENTRA_GROUP_SCHEMA)
            || rules.captures()
            || registry
                .extensions(resource_type)
                .any(|(schema, _)| schema.id.eq_ignore_ascii_case(urn))
        {
            // A known extension (kept if the body carries its attributes),
            // Entra ID's extra group schema (accepted and dropped), or an
            // undeclared extension whose object is captured.
        } else {
            let mut known = vec![resource_type.schema.as_str()];
            known.extend(
                registry
                    .extensions(resource_type)
                    .map(|(s, _)| s.id.as_str()),
            );
            return Err(ScimError::invalid_value(format!(
                "schema {} in 'schemas' is not a schema of resource type {}; it knows {}",
                describe(item).trim_start_matches("the string "),
                resource_type.id,
                known.join(", ")
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_value(format!(
            "attribute 'schemas' must include the core schema \"{}\" of resource type {}",
            resource_type.schema, resource_type.id
        )));
    }
    Ok(())
}

/// A resource being assembled: one slot per declared attribute, so that the
/// output comes out in declared order whatever the input order.
struct Draft<'r> {
    resource_type: &'r ResourceType,
    common: &'r [Attribute],
    common_slots: Vec<Option<Value>>,
    core: &'r Schema,
    core_slots: Vec<Option<Value>>,
    extensions: Vec<Extension<'r>>,
}

struct Extension<'r> {
    schema: &'r Schema,
    binding: &'r SchemaExtension,
    slots: Vec<Option<Value>>,
}

impl<'r> Draft<'r> {
    fn new(
        registry: &'r SchemaRegistry,
        resource_type: &'r ResourceType,
    ) -> Result<Self, ScimError> {
        let core = registry.core_schema(resource_type).ok_or_else(|| {
            ScimError::status(
                500,
                format!(
                    "resource type {} names core schema '{}', which is not registered",
                    resource_type.id, resource_type.schema
                ),
            )
        })?;
        let common = registry.common_attributes();
        Ok(Draft {
            resource_type,
            common,
            common_slots: vec![None; common.len()],
            core,
            core_slots: vec![None; core.attributes.len()],
            extensions: registry
                .extensions(resource_type)
                .map(|(schema, binding)| Extension {
                    schema,
                    binding,
                    slots: vec![None; schema.attributes.len()],
                })
                .collect(),
        })
    }

    /// Takes every member of a resource object into its slot.
    fn collect(
        &mut self,
        rules: &Rules<'r>,
        object: &Map<String, Value>,
        top: bool,
    ) -> Result<(), ScimError> {
        for (key, raw) in object {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if top && key.eq_ignore_ascii_case(&self.resource_type.schema) {
                // The core attributes nested under the core URN.
                match raw {
                    Value::Object(inner) => self.collect(rules, inner, false)?,
                    other if is_absent(other) => {}
                    other => return Err(extension_expects_object(key, other)),
                }
                continue;
            }
            match resolve_key(rules, key) {
                None => rules.undeclared(key, raw, false)?,
                Some(ResolvedPath::Extension(schema)) => match raw {
                    Value::Object(inner) => {
                        for (inner_key, inner_raw) in inner {
                            match resolve_in_extension(rules, schema, inner_key) {
                                Some(resolved) => self.put(rules, resolved, inner_raw)?,
                                None => rules.undeclared(
                                    &format!("{}:{inner_key}", schema.id),
                                    inner_raw,
                                    false,
                                )?,
                            }
                        }
                    }
                    other if is_absent(other) => {}
                    other => return Err(extension_expects_object(&schema.id, other)),
                },
                Some(ResolvedPath::Attribute(resolved)) => self.put(rules, resolved, raw)?,
            }
        }
        Ok(())
    }

    /// Checks one attribute's value and merges it into its slot.
    fn put(
        &mut self,
        rules: &Rules<'r>,
        resolved: ResolvedAttribute<'r>,
        raw: &Value,
    ) -> Result<(), ScimError> {
        let attribute = resolved.attribute;
        let at = where_of(&resolved);
        if rules.ignores(attribute) {
            return Ok(());
        }
        let canonical = match resolved.sub_attribute {
            None => rules.value(attribute, at, raw)?,
            Some(sub) => {
                if rules.ignores(sub) {
                    return Ok(());
                }
                let mut wrapper = Map::new();
                wrapper.insert(sub.name.clone(), raw.clone());
                rules.value(attribute, at, &Value::Object(wrapper))?
            }
        };
        let Some(canonical) = canonical else {
            return Ok(());
        };
        let slot = self.slot(&resolved).ok_or_else(|| {
            ScimError::status(500, format!("attribute '{at}' resolved outside its schema"))
        })?;
        merge_into(slot, attribute, at, canonical)
    }

    fn slot(&mut self, resolved: &ResolvedAttribute<'_>) -> Option<&mut Option<Value>> {
        let name = resolved.attribute.name.as_str();
        match resolved.container {
            Container::Core => {
                if let Some(index) = self.common.iter().position(|a| a.name == name) {
                    return self.common_slots.get_mut(index);
                }
                let index = self.core.attributes.iter().position(|a| a.name == name)?;
                self.core_slots.get_mut(index)
            }
            Container::Extension(urn) => {
                let extension = self
                    .extensions
                    .iter_mut()
                    .find(|extension| extension.schema.id == urn)?;
                let index = extension
                    .schema
                    .attributes
                    .iter()
                    .position(|a| a.name == name)?;
                extension.slots.get_mut(index)
            }
        }
    }

    /// Assembles the canonical resource and checks what only the whole
    /// resource can tell: required attributes and extensions.
    fn finish(self) -> Result<Value, ScimError> {
        let mut output = Map::new();
        let mut schemas = vec![Value::String(self.core.id.clone())];
        let present_extensions: Vec<bool> = self
            .extensions
            .iter()
            .map(|extension| extension.slots.iter().any(Option::is_some))
            .collect();
        for (extension, present) in self.extensions.iter().zip(&present_extensions) {
            if *present {
                schemas.push(Value::String(extension.schema.id.clone()));
            }
        }
        output.insert("schemas".to_owned(), Value::Array(schemas));
        check_required(None, self.common, |index, _| {
            slot_value(&self.common_slots, index)
        })?;
        check_required(None, &self.core.attributes, |index, _| {
            slot_value(&self.core_slots, index)
        })?;
        place(&mut output, self.common, self.common_slots);
        place(&mut output, &self.core.attributes, self.core_slots);
        for (extension, present) in self.extensions.into_iter().zip(present_extensions) {
            if !present {
                if extension.binding.required {
                    return Err(ScimError::invalid_value(format!(
                        "required extension '{}' is missing: resource type {} requires it",
                        extension.schema.id, self.resource_type.id
                    )));
                }
                continue;
            }
            let urn = extension.schema.id.as_str();
            check_required(Some(urn), &extension.schema.attributes, |index, _| {
                slot_value(&extension.slots, index)
            })?;
            let mut object = Map::new();
            place(&mut object, &extension.schema.attributes, extension.slots);
            output.insert(extension.schema.id.clone(), Value::Object(object));
        }
        Ok(Value::Object(output))
    }
}

fn place(output: &mut Map<String, Value>, attributes: &[Attribute], slots: Vec<Option<Value>>) {
    for (attribute, slot) in attributes.iter().zip(slots) {
        if let Some(value) = slot {
            output.insert(attribute.name.clone(), value);
        }
    }
}

/// Required attributes must be present, and so must required
/// sub-attributes of present complex values. readOnly ones are the
/// server's to set and are not checked; nor is anything when the
/// attribute declares nothing required. `value_of` gives an attribute's
/// current value.
fn check_required<'v>(
    urn: Option<&str>,
    attributes: &[Attribute],
    value_of: impl Fn(usize, &Attribute) -> Option<&'v Value>,
) -> Result<(), ScimError> {
    for (index, attribute) in attributes.iter().enumerate() {
        let read_only = attribute.mutability == Mutability::ReadOnly;
        let has_required_sub = || attribute.sub_attributes.iter().any(|sub| sub.required);
        if read_only || !(attribute.required || has_required_sub()) {
            continue;
        }
        let at = Where {
            urn,
            attribute: &attribute.name,
            sub: None,
        };
        match value_of(index, attribute) {
            None if attribute.required => {
                return Err(ScimError::invalid_value(format!(
                    "required attribute '{at}' is missing"
                )))
            }
            None => {}
            Some(value) if attribute.is_complex() => {
                let elements = match value {
                    Value::Array(elements) => elements.as_slice(),
                    single => std::slice::from_ref(single),
                };
                for sub in &attribute.sub_attributes {
                    if !sub.required || sub.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    if elements
                        .iter()
                        .any(|element| element.get(&sub.name).is_none())
                    {
                        return Err(ScimError::invalid_value(format!(
                            "required attribute '{}' is missing",
                            at.sub(&sub.name)
                        )));
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn slot_value(slots: &[Option<Value>], index: usize) -> Option<&Value> {
    slots.get(index).and_then(Option::as_ref)
}

/// Merges a value into a slot that may already hold one from another form
/// of the same name (`name` and `name.givenName`, or keys differing in case).
fn merge_into(
    slot: &mut Option<Value>,
    attribute: &Attribute,
    at: Where<'_>,
    new: Value,
) -> Result<(), ScimError> {
    match slot {
        None => {
            *slot = Some(new);
            Ok(())
        }
        Some(existing) if *existing == new => Ok(()),
        Some(Value::Object(existing)) if !attribute.multi_valued && new.is_object() => {
            if let Value::Object(new) = new {
                for (key, value) in new {
                    match existing.get(&key) {
                        Some(old) if *old != value => {
                            let sub = attribute
                                .sub_attribute(&key)
                                .map_or(key.as_str(), |sub| sub.name.as_str());
                            return Err(given_twice(at.sub(sub)));
                        }
                        Some(_) => {}
                        None => {
                            existing.insert(key, value);
                        }
                    }
                }
            }
            reorder(existing, attribute);
            Ok(())
        }
        Some(_) => Err(given_twice(at)),
    }
}

fn given_twice(at: Where<'_>) -> ScimError {
    ScimError::invalid_syntax(format!(
        "attribute '{at}' is given more than once with different values (names are case-insensitive)"
    ))
}

/// Puts a complex value's sub-attributes in declared order.
pub(crate) fn reorder(object: &mut Map<String, Value>, attribute: &Attribute) {
    let mut ordered = Map::new();
    for sub in &attribute.sub_attributes {
        if let Some(value) = object.remove(&sub.name) {
            ordered.insert(sub.name.clone(), value);
        }
    }
    ordered.append(object);
    *object = ordered;
}

fn extension_expects_object(urn: &str, got: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "'{urn}' expects an object of the schema's attributes, got {}",
        describe(got)
    ))
}

/// Resolves a JSON key naming an attribute (`userName`, `name.givenName`,
/// `urn:...:User:department`) or a whole extension (`urn:...:User`).
///
/// Same answers as `AttrPath::parse` then [`SchemaRegistry::resolve`]
/// (a unit test checks this), without allocating: this runs for every key
/// of every body.
pub(crate) fn resolve_key<'r>(rules: &Rules<'r>, key: &str) -> Option<ResolvedPath<'r>> {
    let (schema, rest) = match key.rfind(':') {
        Some(colon) => (Some(key.get(..colon)?), key.get(colon + 1..)?),
        None => (None, key),
    };
    let (attribute, sub) = match rest.split_once('.') {
        Some((attribute, sub)) => (attribute, Some(sub)),
        None => (rest, None),
    };
    resolve_parts(rules, schema, attribute, sub)
}

/// [`SchemaRegistry::resolve`] for a parsed path, without allocating.
pub(crate) fn resolve_path<'r>(rules: &Rules<'r>, path: &AttrPath) -> Option<ResolvedPath<'r>> {
    resolve_parts(
        rules,
        path.schema.as_deref(),
        &path.attribute,
        path.sub_attribute.as_deref(),
    )
}

fn resolve_parts<'r>(
    rules: &Rules<'r>,
    schema: Option<&str>,
    attribute: &str,
    sub: Option<&str>,
) -> Option<ResolvedPath<'r>> {
    let registry = rules.registry;
    let resource_type = rules.resource_type;
    let Some(urn) = schema else {
        return core_attribute(rules, attribute, sub);
    };
    if sub.is_none() {
        let whole = registry
            .extensions(resource_type)
            .find(|(extension, _)| is_joined(&extension.id, urn, attribute));
        if let Some((extension, _)) = whole {
            return Some(ResolvedPath::Extension(extension));
        }
    }
    let (container, definition) = if urn.eq_ignore_ascii_case(&resource_type.schema) {
        let core = registry.core_schema(resource_type)?;
        (Container::Core, core.attribute(attribute)?)
    } else {
        let (extension, _) = registry
            .extensions(resource_type)
            .find(|(extension, _)| extension.id.eq_ignore_ascii_case(urn))?;
        (
            Container::Extension(extension.id.as_str()),
            extension.attribute(attribute)?,
        )
    };
    let sub_attribute = match sub {
        None => None,
        Some(sub) => Some(definition.sub_attribute(sub)?),
    };
    Some(ResolvedPath::Attribute(ResolvedAttribute {
        container,
        attribute: definition,
        sub_attribute,
    }))
}

/// Whether `whole` is `prefix:rest`, case-insensitively.
fn is_joined(whole: &str, prefix: &str, rest: &str) -> bool {
    whole.len() == prefix.len() + 1 + rest.len()
        && whole
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        && whole.get(prefix.len()..=prefix.len()) == Some(":")
        && whole
            .get(prefix.len() + 1..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(rest))
}

/// A core or common attribute by name (as `SchemaRegistry::resolve` finds
/// it for a path without a URN), with an optional sub-attribute.
fn core_attribute<'r>(
    rules: &Rules<'r>,
    name: &str,
    sub: Option<&str>,
) -> Option<ResolvedPath<'r>> {
    let attribute = rules
        .registry
        .core_schema(rules.resource_type)
        .and_then(|core| core.attribute(name))
        .or_else(|| {
            rules
                .registry
                .common_attributes()
                .iter()
                .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
        })?;
    let sub_attribute = match sub {
        None => None,
        Some(sub) => Some(attribute.sub_attribute(sub)?),
    };
    Some(ResolvedPath::Attribute(ResolvedAttribute {
        container: Container::Core,
        attribute,
        sub_attribute,
    }))
}

/// Resolves a key found inside an extension object (`department`,
/// `manager.value`) against that extension; `None` when the extension does
/// not declare it (the caller refuses or captures `<URN>:<key>`).
pub(crate) fn resolve_in_extension<'r>(
    rules: &Rules<'r>,
    schema: &'r Schema,
    key: &str,
) -> Option<ResolvedAttribute<'r>> {
    let mut path = AttrPath::parse(key).ok()?;
    match &path.schema {
        Some(urn) if !urn.eq_ignore_ascii_case(&schema.id) => return None,
        Some(_) => {}
        None => path.schema = Some(schema.id.clone()),
    }
    rules.registry.resolve_attribute(rules.resource_type, &path)
}

/// The error-detail location of a resolved attribute (without its
/// sub-attribute: values are checked from the top-level attribute down).
pub(crate) fn where_of<'r>(resolved: &ResolvedAttribute<'r>) -> Where<'r> {
    Where {
        urn: match resolved.container {
            Container::Core => None,
            Container::Extension(urn) => Some(urn),
        },
        attribute: &resolved.attribute.name,
        sub: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation-free resolution answers exactly as the registry does.
    #[test]
    fn resolve_key_agrees_with_the_registry() {
        let registry = SchemaRegistry::builtin();
        for resource_type in registry.resource_types() {
            let rules = Rules {
                registry: &registry,
                resource_type,
                keep_read_only: false,
                unknown: ScimType::InvalidSyntax,
                undeclared: None,
            };
            let mut keys = registry.attribute_paths(resource_type);
            keys.extend(
                resource_type
                    .schema_extensions
                    .iter()
                    .map(|e| e.schema.clone()),
            );
            keys.push(resource_type.schema.clone());
            keys.extend(
                registry
                    .attribute_paths(resource_type)
                    .iter()
                    .map(|path| format!("{}:{path}", resource_type.schema)),
            );
            let variants: Vec<String> = keys
                .iter()
                .flat_map(|key| [key.to_uppercase(), key.to_lowercase(), format!("{key}x")])
                .collect();
            keys.extend(variants);
            keys.extend(
                [
                    "",
                    ":",
                    "a:",
                    ":a",
                    "a.b.c",
                    "name.",
                    ".name",
                    "foo:bar",
                    "urn:x:y",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.x",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0",
                    "urn:ietf:params:scim:schemas:core:2.0:User:id",
                    "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
                    "name givenName",
                    "émails",
                    "emails.value.x",
                    "$ref",
                    "members.$ref",
                ]
                .map(str::to_owned),
            );
            for key in keys {
                let expected = AttrPath::parse(&key)
                    .ok()
                    .and_then(|path| registry.resolve(resource_type, &path));
                assert_eq!(resolve_key(&rules, &key), expected, "{key}");
                if let Ok(path) = AttrPath::parse(&key) {
                    assert_eq!(resolve_path(&rules, &path), expected, "{key}");
                }
            }
        }
    }
}
