//! PATCH (RFC 7644 section 3.5.2): the PatchOp message and its application
//! to a canonical resource.
//!
//! Semantics, beyond the RFC's letter where identity providers need it:
//! - every path form: `attr`, `attr.sub`, URN-qualified names, a whole
//!   extension URN, `attr[filter]` and `attr[filter].sub`;
//! - a path-less `add`/`replace` takes a value whose keys are paths
//!   (`name.givenName`, `urn:...:User:department`, or an extension URN with
//!   an object), each applied as if it were the operation's path;
//! - `add` to a multi-valued attribute merges without duplicates (a value
//!   with the same `value` sub-attribute as an existing one is merged into
//!   it); `add` to a single-valued attribute replaces it; `add`/`replace`
//!   on a complex attribute merge sub-attributes (a primitive such as
//!   Entra ID's manager id stands for the whole `{"value": x}`);
//! - `replace` on a multi-valued attribute without a filter replaces all
//!   values; `add`/`replace` through `attr[filter].sub` when no value matches
//!   creates the value from the filter's `eq` clauses (what Entra ID expects
//!   of `emails[type eq "work"].value`);
//! - `remove` with a value list on a multi-valued attribute removes those
//!   values (matched on `value`); `null`, `""` and `[]` as a value clear;
//! - setting `primary` to true on one value sets it to false on the others;
//! - readOnly targets are `400 mutability`, and so is changing an immutable
//!   attribute that is already set; unknown paths are `400 invalidPath`
//!   with a "did you mean" (or, under [`UndeclaredPolicy::Capture`], set or
//!   remove an entry of the unmapped object: [`apply_patch_with`]); values
//!   are checked exactly as in [`crate::resource::normalize`];
//! - all or nothing: the operations run on a copy; the first failure is
//!   returned with its operation named (`Operations[1] (replace, active)`)
//!   and the input is untouched. The result is canonical: emptied values
//!   dropped, `schemas` rebuilt, required attributes still present.
//!
//! Whatever decides on an operation by its target (hashing `password`,
//! turning `members` into membership rows, ...) first resolves the
//! operations with [`canonical_operations`], which applies alike but
//! spells every target one way ([`targets`]).

mod apply;
mod canonical;
mod op;

pub use canonical::{canonical_operations, targets};
pub use op::{PatchOp, PatchOpKind, PatchOperation, MAX_PATCH_OPERATIONS, PATCH_OP_URN};

use std::cell::RefCell;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::resource::{
    check_immutable, describe, differs, finish_patched, has_immutable, Rules, UndeclaredPolicy,
    Unmapped, Write,
};
use crate::schema::{ResourceType, SchemaRegistry};

/// The result of [`apply_patch`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The patched resource, canonical.
    pub resource: Value,
    /// Whether the resource differs from the input (a PATCH that changes
    /// nothing need not bump the version).
    pub changed: bool,
}

/// The result of [`apply_patch_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// The patched resource, canonical: declared attributes only.
    pub resource: Value,
    /// Whether the resource differs from the input.
    pub changed: bool,
    /// The unmapped object after the operations.
    pub unmapped: Map<String, Value>,
    /// Whether the unmapped object differs from the input's.
    pub unmapped_changed: bool,
}

/// Applies PATCH operations to a canonical resource (as stored, with `id`
/// and `meta`), all or nothing.
pub fn apply_patch(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
    operations: &[PatchOperation],
) -> Result<PatchOutcome, ScimError> {
    let patched = apply_patch_with(
        registry,
        resource_type,
        resource,
        &Map::new(),
        operations,
        UndeclaredPolicy::Reject,
    )?;
    Ok(PatchOutcome {
        resource: patched.resource,
        changed: patched.changed,
    })
}

/// [`apply_patch`] under a tenant's policy for undeclared attributes, with
/// the resource's current `unmapped` object (see
/// [`crate::resource::normalize_with`] for its keys).
///
/// With [`UndeclaredPolicy::Reject`] this is [`apply_patch`] and `unmapped`
/// comes back unchanged. With [`UndeclaredPolicy::Capture`], an operation
/// whose path no schema declares sets (`add`, `replace`) or removes
/// (`remove`, or a `null`/`""`/`[]` value) that path's entry, keyed by the
/// path as sent and matched case-insensitively; so does each undeclared
/// key of a path-less value, and undeclared members inside a declared
/// value are captured as [`crate::resource::normalize_with`] does. `add`
/// appends to a captured list and merges into a captured object; `replace`
/// replaces. A value filter on an undeclared path is `400 invalidPath`.
/// Declared attributes are validated as usual; all or nothing.
pub fn apply_patch_with(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &Value,
    unmapped: &Map<String, Value>,
    operations: &[PatchOperation],
    policy: UndeclaredPolicy,
) -> Result<Patched, ScimError> {
    let Value::Object(original) = resource else {
        return Err(ScimError::invalid_syntax(format!(
            "the resource to patch must be a JSON object, got {}",
            describe(resource)
        )));
    };
    let captured = RefCell::new(Unmapped::new(unmapped.clone(), Write::Replace));
    let rules = Rules {
        registry,
        resource_type,
        keep_read_only: false,
        unknown: ScimType::InvalidPath,
        undeclared: match policy {
            UndeclaredPolicy::Reject => None,
            UndeclaredPolicy::Capture => Some(&captured),
        },
    };
    let guard_immutable = has_immutable(registry, resource_type);
    let mut working = original.clone();
    let mut touched = Vec::new();
    for (index, operation) in operations.iter().enumerate() {
        let context = |error: ScimError| error.context(operation.context(index));
        if policy == UndeclaredPolicy::Reject
            && forget_captured(registry, resource_type, &captured, operation)
        {
            // Values captured earlier stay removable after the tenant
            // switched back to `reject`.
            continue;
        }
        if let Ok(mut captured) = captured.try_borrow_mut() {
            captured.begin(match operation.op {
                PatchOpKind::Add => Write::Add,
                PatchOpKind::Remove | PatchOpKind::Replace => Write::Replace,
            });
        }
        if guard_immutable {
            let before = Value::Object(working.clone());
            apply::apply_operation(&rules, &mut working, operation, &mut touched)
                .map_err(context)?;
            let after = Value::Object(std::mem::take(&mut working));
            let checked = check_immutable(registry, resource_type, &before, &after);
            if let Value::Object(object) = after {
                working = object;
            }
            checked.map_err(context)?;
        } else {
            apply::apply_operation(&rules, &mut working, operation, &mut touched)
                .map_err(context)?;
        }
    }
    finish_patched(registry, resource_type, &mut working, &touched)
        .map_err(|error| error.context("the resource after the operations"))?;
    let patched = Value::Object(working);
    let changed = patched.get("schemas") != resource.get("schemas")
        || touched
            .iter()
            .any(|attribute| differs(resource, &patched, attribute));
    let captured = captured.into_inner().into_entries();
    Ok(Patched {
        resource: patched,
        changed,
        unmapped_changed: captured != *unmapped,
        unmapped: captured,
    })
}

/// Under `reject`, a `remove` of an undeclared path that holds a captured
/// value removes it (and nothing else may touch captured values). Returns
/// whether the operation was such a removal.
fn forget_captured(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    captured: &RefCell<Unmapped>,
    operation: &PatchOperation,
) -> bool {
    let Some(path) = &operation.path else {
        return false;
    };
    if operation.op != PatchOpKind::Remove
        || path.value_filter.is_some()
        || path.sub_attribute.is_some()
        || registry.resolve(resource_type, &path.attribute).is_some()
    {
        return false;
    }
    let Ok(mut captured) = captured.try_borrow_mut() else {
        return false;
    };
    let target = path.attribute.to_string();
    if !captured.holds(&target) {
        return false;
    }
    captured.remove(&target);
    true
}
