//! Group membership in SCIM messages, translated to membership row changes.
//!
//! Members are kept as rows, not in the resource JSON, so patching a
//! 50,000-member group never loads its member list: operations on `members`
//! become [`MemberChange`]s and the rest stay ordinary PATCH operations.

use muster_scim::patch::{targets, PatchOpKind, PatchOperation};
use muster_scim::{Filter, FilterValue, ResourceType, SchemaRegistry, ScimError};
use muster_store::{Member, MemberChange, ResourceId};
use serde_json::Value;

/// Whether the resource type's core schema has a `members` attribute
/// (membership is kept as rows, not in the JSON).
pub(crate) fn has_members(registry: &SchemaRegistry, rt: &ResourceType) -> bool {
    registry
        .core_schema(rt)
        .and_then(|schema| schema.attribute("members"))
        .is_some()
}

/// Takes `members` out of a canonical resource: they are stored as rows.
pub(crate) fn split_members(mut resource: Value) -> Result<(Value, Vec<Member>), ScimError> {
    let members = match resource.as_object_mut().and_then(|o| o.remove("members")) {
        Some(list) => members_from_value(&list)?,
        None => Vec::new(),
    };
    Ok((resource, members))
}

fn members_from_value(list: &Value) -> Result<Vec<Member>, ScimError> {
    let items: Vec<&Value> = match list {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    items
        .into_iter()
        .map(|item| {
            let value = match item {
                Value::Object(object) => object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                    .map(|(_, v)| v),
                other => Some(other),
            };
            match value {
                Some(Value::String(id)) if !id.is_empty() => Ok(Member {
                    value: ResourceId(id.clone()),
                    kind: None,
                }),
                _ => Err(ScimError::invalid_value(format!(
                    "attribute 'members' expects elements with a string 'value' (the member's id), got {item}"
                ))),
            }
        })
        .collect()
}

/// Splits PATCH operations on `members` off into membership changes. The
/// operations must be canonical ([`muster_scim::canonical_operations`]):
/// every spelling of `members` (URN-qualified, a path-less value key, nested
/// under the core schema URN) is then the path `members`.
pub(crate) fn split_member_operations(
    operations: Vec<PatchOperation>,
) -> Result<(Vec<MemberChange>, Vec<PatchOperation>), ScimError> {
    let mut changes = Vec::new();
    let mut rest = Vec::new();
    for (index, operation) in operations.into_iter().enumerate() {
        if targets(&operation, "members") {
            let change = member_change(&operation)
                .map_err(|error| error.context(format!("Operations[{index}]")))?;
            changes.push(change);
        } else {
            rest.push(operation);
        }
    }
    Ok((changes, rest))
}

fn member_change(operation: &PatchOperation) -> Result<MemberChange, ScimError> {
    let path = operation.path.as_ref();
    let filter = path.and_then(|p| p.value_filter.as_ref());
    if path.is_some_and(|p| p.attribute.sub_attribute.is_some() || p.sub_attribute.is_some()) {
        return Err(ScimError::invalid_path(
            "members sub-attributes cannot be patched; add or remove whole members",
        ));
    }
    match (operation.op, filter) {
        (PatchOpKind::Remove, Some(filter)) => {
            let mut ids = Vec::new();
            member_ids_from_filter(filter, &mut ids)?;
            Ok(MemberChange::Remove(ids))
        }
        (PatchOpKind::Remove, None) => match &operation.value {
            None | Some(Value::Null) => Ok(MemberChange::ReplaceAll(Vec::new())),
            Some(value) => Ok(MemberChange::Remove(
                members_from_value(value)?
                    .into_iter()
                    .map(|m| m.value)
                    .collect(),
            )),
        },
        (PatchOpKind::Add, None) => Ok(MemberChange::Add(members_from_value(
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (PatchOpKind::Replace, None) => Ok(MemberChange::ReplaceAll(members_from_value(
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (PatchOpKind::Add | PatchOpKind::Replace, Some(_)) => Err(ScimError::invalid_path(
            "members[filter] can only be removed; add members with path 'members' and a value list",
        )),
    }
}

/// Collects the ids of `value eq "id"` clauses joined by `or`.
fn member_ids_from_filter(filter: &Filter, ids: &mut Vec<ResourceId>) -> Result<(), ScimError> {
    match filter {
        Filter::Or(operands) => operands
            .iter()
            .try_for_each(|operand| member_ids_from_filter(operand, ids)),
        Filter::Compare {
            path,
            op: muster_scim::CompareOp::Eq,
            value: FilterValue::String(id),
        } if path.attribute.eq_ignore_ascii_case("value") && path.sub_attribute.is_none() => {
            ids.push(ResourceId(id.clone()));
            Ok(())
        }
        other => Err(ScimError::invalid_path(format!(
            "members filter '{other}' is not supported; use members[value eq \"<id>\"]"
        ))),
    }
}
