//! The in-memory filter evaluator: the reference semantics.
//!
//! Resources are canonical JSON (docs/CONTRIBUTING-AGENTS.md). Paths resolve
//! through the [`SchemaRegistry`], which gives both where the value sits and
//! its definition (type, `caseExact`); JSON keys are still looked up
//! case-insensitively should a resource not be quite canonical.
//!
//! Semantics (RFC 7644 section 3.4.2.2):
//! - a multi-valued attribute matches when any of its values matches;
//! - a complex attribute compared without a sub-attribute compares its
//!   `value` sub-attribute (`emails co "@x"` is `emails.value co "@x"`);
//! - strings compare case-insensitively (Unicode lower case) unless the
//!   attribute is `caseExact` (or binary); `gt`/`ge`/`lt`/`le` order strings
//!   by code point, numbers numerically and dateTime values as instants
//!   (falling back to strings when a side is not RFC 3339);
//! - `co`/`sw`/`ew` apply to strings only; booleans support `eq`/`ne` only;
//!   compared with a boolean attribute, the strings `"True"`/`"False"` (in
//!   any case) are booleans, as they are on input (Entra ID's
//!   `roles[primary eq "True"]`);
//! - `pr` means present and not null, `""`, `[]` or `{}`;
//! - `attr eq null` is `not (attr pr)`; `ne` is always `not (eq)`, so
//!   `emails.type ne "work"` matches when no email is of type work;
//! - a path the registry does not know matches nothing, whatever the
//!   operator (the server rejects such filters first with [`Filter::check`]).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ast::{CompareOp, Filter, FilterValue};
use crate::path::AttrPath;
use crate::schema::{Attribute, AttributeType, Container, ResourceType, SchemaRegistry};

impl Filter {
    /// Whether a resource (canonical JSON) matches this filter.
    pub fn matches(
        &self,
        resource: &Value,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
    ) -> bool {
        match self {
            Filter::And(operands) => operands
                .iter()
                .all(|operand| operand.matches(resource, registry, resource_type)),
            Filter::Or(operands) => operands
                .iter()
                .any(|operand| operand.matches(resource, registry, resource_type)),
            Filter::Not(operand) => !operand.matches(resource, registry, resource_type),
            Filter::Present(path) => locate(resource, registry, resource_type, path)
                .is_some_and(|target| target.present()),
            Filter::Compare { path, op, value } => locate(resource, registry, resource_type, path)
                .is_some_and(|target| target.compare(*op, value)),
            Filter::ValuePath { path, filter } => {
                let Some(target) = locate(resource, registry, resource_type, path) else {
                    return false;
                };
                if target.step.is_some() {
                    return false;
                }
                target.value.is_some_and(|value| {
                    elements(value).any(|element| filter.matches_element(element, target.attribute))
                })
            }
        }
    }

    /// Whether one element of a multi-valued complex attribute matches this
    /// value filter, whose paths name sub-attributes of `attribute`.
    ///
    /// For a multi-valued attribute that is not complex, the path `value`
    /// names the element itself. A value path inside a value filter, or a
    /// path that is not a sub-attribute of `attribute`, matches nothing.
    pub fn matches_element(&self, element: &Value, attribute: &Attribute) -> bool {
        match self {
            Filter::And(operands) => operands
                .iter()
                .all(|operand| operand.matches_element(element, attribute)),
            Filter::Or(operands) => operands
                .iter()
                .any(|operand| operand.matches_element(element, attribute)),
            Filter::Not(operand) => !operand.matches_element(element, attribute),
            Filter::Present(path) => {
                locate_in_element(element, attribute, path).is_some_and(|target| target.present())
            }
            Filter::Compare { path, op, value } => locate_in_element(element, attribute, path)
                .is_some_and(|target| target.compare(*op, value)),
            Filter::ValuePath { .. } => false,
        }
    }
}

/// The definition a path inside a value filter on `attribute` names: a
/// sub-attribute, or for a simple multi-valued attribute, `value` itself.
pub(super) fn element_definition<'a>(
    attribute: &'a Attribute,
    path: &AttrPath,
) -> Option<&'a Attribute> {
    if path.schema.is_some() || path.sub_attribute.is_some() {
        return None;
    }
    if attribute.is_complex() {
        attribute.sub_attribute(&path.attribute)
    } else if path.attribute.eq_ignore_ascii_case("value") {
        Some(attribute)
    } else {
        None
    }
}

/// What a path selects in a resource: the stored value of the top-level
/// attribute and, when the path names one, the sub-attribute to step into.
#[derive(Clone, Copy)]
pub(super) struct Target<'v, 'a> {
    /// The attribute as stored: one value, or an array of them. `None` when absent.
    pub(super) value: Option<&'v Value>,
    /// The attribute's definition.
    pub(super) attribute: &'a Attribute,
    /// The sub-attribute the path names, to be read from each element.
    pub(super) step: Option<&'a Attribute>,
}

pub(super) fn locate<'v, 'a>(
    resource: &'v Value,
    registry: &'a SchemaRegistry,
    resource_type: &'a ResourceType,
    path: &AttrPath,
) -> Option<Target<'v, 'a>> {
    let resolved = registry.resolve_attribute(resource_type, path)?;
    let container = match resolved.container {
        Container::Core => Some(resource),
        Container::Extension(urn) => member(resource, urn),
    };
    Some(Target {
        value: container.and_then(|container| member(container, &resolved.attribute.name)),
        attribute: resolved.attribute,
        step: resolved.sub_attribute,
    })
}

fn locate_in_element<'v, 'a>(
    element: &'v Value,
    attribute: &'a Attribute,
    path: &AttrPath,
) -> Option<Target<'v, 'a>> {
    let definition = element_definition(attribute, path)?;
    let value = if std::ptr::eq(definition, attribute) {
        Some(element)
    } else {
        member(element, &definition.name)
    };
    Some(Target {
        value,
        attribute: definition,
        step: None,
    })
}

impl Target<'_, '_> {
    /// Whether `test` holds for any value reached through `step`.
    fn any(&self, step: Option<&Attribute>, mut test: impl FnMut(&Value) -> bool) -> bool {
        let Some(value) = self.value else {
            return false;
        };
        elements(value).any(|element| match step {
            Some(sub) => {
                member(element, &sub.name).is_some_and(|value| elements(value).any(&mut test))
            }
            None => test(element),
        })
    }

    pub(super) fn present(&self) -> bool {
        self.any(self.step, is_present)
    }

    pub(super) fn compare(&self, op: CompareOp, literal: &FilterValue) -> bool {
        match (op, literal) {
            (CompareOp::Ne, _) => !self.compare(CompareOp::Eq, literal),
            (CompareOp::Eq, FilterValue::Null) => !self.present(),
            (_, FilterValue::Null) => false,
            _ => {
                let definition = match self.step {
                    Some(sub) => Some(sub),
                    None if self.attribute.is_complex() => self.attribute.sub_attribute("value"),
                    None => None,
                };
                match definition {
                    Some(sub) => {
                        self.any(Some(sub), |value| compare_value(value, sub, op, literal))
                    }
                    None if self.attribute.is_complex() => false,
                    None => self.any(None, |value| {
                        compare_value(value, self.attribute, op, literal)
                    }),
                }
            }
        }
    }
}

/// A member of a JSON object: the exact key first, then case-insensitively.
fn member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object: &Map<String, Value> = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

/// The values of an attribute: the elements of an array, or the value itself.
pub(super) fn elements(value: &Value) -> std::slice::Iter<'_, Value> {
    match value {
        Value::Array(items) => items.iter(),
        other => std::slice::from_ref(other).iter(),
    }
}

/// Present in the `pr` sense: not null, `""`, `[]` or `{}`.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => !members.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Compares one stored value with a non-null literal (`op` is not `ne`).
fn compare_value(
    value: &Value,
    definition: &Attribute,
    op: CompareOp,
    literal: &FilterValue,
) -> bool {
    match (value, literal) {
        (Value::String(actual), FilterValue::String(expected)) => {
            if definition.kind == AttributeType::DateTime && is_ordering(op) {
                if let (Some(actual), Some(expected)) = (date_time(actual), date_time(expected)) {
                    return ordering_matches(op, actual.cmp(&expected));
                }
            }
            let case_exact = definition.case_exact || definition.kind == AttributeType::Binary;
            compare_strings(actual, expected, op, case_exact)
        }
        (Value::Number(actual), FilterValue::Number(expected)) => {
            is_ordering(op)
                && compare_numbers(actual, expected)
                    .is_some_and(|order| ordering_matches(op, order))
        }
        (Value::Bool(actual), FilterValue::Boolean(expected)) => {
            op == CompareOp::Eq && actual == expected
        }
        (Value::Bool(actual), FilterValue::String(expected))
            if definition.kind == AttributeType::Boolean =>
        {
            op == CompareOp::Eq && boolean_text(expected) == Some(*actual)
        }
        _ => false,
    }
}

/// The boolean a string spells: `"true"` or `"false"` in any case.
fn boolean_text(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Whether `op` is decided by an ordering (`eq`, `ne`, `gt`, `ge`, `lt`, `le`).
fn is_ordering(op: CompareOp) -> bool {
    match op {
        CompareOp::Eq
        | CompareOp::Ne
        | CompareOp::Gt
        | CompareOp::Ge
        | CompareOp::Lt
        | CompareOp::Le => true,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Whether `actual` compared to the literal as `order` satisfies `op`.
fn ordering_matches(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_strings(actual: &str, expected: &str, op: CompareOp, case_exact: bool) -> bool {
    if case_exact {
        return match op {
            CompareOp::Co => actual.contains(expected),
            CompareOp::Sw => actual.starts_with(expected),
            CompareOp::Ew => actual.ends_with(expected),
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Lt
            | CompareOp::Le => ordering_matches(op, actual.cmp(expected)),
        };
    }
    if actual.is_ascii() && expected.is_ascii() {
        let actual_bytes = actual.as_bytes();
        let expected_bytes = expected.as_bytes();
        let prefix = actual_bytes.get(..expected_bytes.len());
        let suffix = actual_bytes
            .len()
            .checked_sub(expected_bytes.len())
            .and_then(|start| actual_bytes.get(start..));
        return match op {
            CompareOp::Eq => actual.eq_ignore_ascii_case(expected),
            CompareOp::Sw => {
                prefix.is_some_and(|prefix| prefix.eq_ignore_ascii_case(expected_bytes))
            }
            CompareOp::Ew => {
                suffix.is_some_and(|suffix| suffix.eq_ignore_ascii_case(expected_bytes))
            }
            CompareOp::Co => {
                expected_bytes.is_empty()
                    || actual_bytes
                        .windows(expected_bytes.len())
                        .any(|window| window.eq_ignore_ascii_case(expected_bytes))
            }
            CompareOp::Ne | CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let order = actual_bytes
                    .iter()
                    .map(u8::to_ascii_lowercase)
                    .cmp(expected_bytes.iter().map(u8::to_ascii_lowercase));
                ordering_matches(op, order)
            }
        };
    }
    compare_strings(&actual.to_lowercase(), &expected.to_lowercase(), op, true)
}

fn compare_numbers(actual: &Number, expected: &Number) -> Option<Ordering> {
    if let (Some(actual), Some(expected)) = (actual.as_i64(), expected.as_i64()) {
        return Some(actual.cmp(&expected));
    }
    if let (Some(actual), Some(expected)) = (actual.as_u64(), expected.as_u64()) {
        return Some(actual.cmp(&expected));
    }
    actual.as_f64()?.partial_cmp(&expected.as_f64()?)
}

fn date_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_comparisons() {
        use CompareOp::*;
        let table = [
            ("Alice", Eq, "alice", false, true),
            ("Alice", Eq, "alice", true, false),
            ("Straße", Eq, "STRASSE", false, false),
            ("ÉCOLE", Eq, "école", false, true),
            ("ÉCOLE", Sw, "éc", false, true),
            ("alice@Contoso.com", Co, "@contoso", false, true),
            ("alice@Contoso.com", Ew, ".COM", false, true),
            ("a", Ew, "abc", false, false),
            ("b", Gt, "A", false, true),
            ("b", Gt, "A", true, true),
            ("B", Gt, "a", true, false),
            ("abc", Le, "ABC", false, true),
            ("x", Co, "", false, true),
        ];
        for (actual, op, expected, case_exact, result) in table {
            assert_eq!(
                compare_strings(actual, expected, op, case_exact),
                result,
                "{actual} {op:?} {expected} caseExact={case_exact}"
            );
        }
    }

    #[test]
    fn boolean_attributes_compare_with_true_and_false_strings() {
        use CompareOp::*;
        let flag = Attribute::new("primary", AttributeType::Boolean);
        let text = Attribute::new("nickName", AttributeType::String);
        let s = |text: &str| FilterValue::String(text.to_owned());
        let table = [
            (&flag, Value::Bool(true), Eq, s("True"), true),
            (&flag, Value::Bool(true), Eq, s("TRUE"), true),
            (&flag, Value::Bool(true), Eq, s("true"), true),
            (&flag, Value::Bool(true), Eq, s("False"), false),
            (&flag, Value::Bool(false), Eq, s("false"), true),
            (&flag, Value::Bool(false), Eq, s("True"), false),
            (&flag, Value::Bool(true), Eq, s("yes"), false),
            (&flag, Value::Bool(true), Eq, s("1"), false),
            (&flag, Value::Bool(true), Co, s("True"), false),
            (&flag, Value::Bool(true), Gt, s("False"), false),
            (&text, Value::Bool(true), Eq, s("True"), false),
            (&text, Value::String("True".to_owned()), Eq, s("true"), true),
        ];
        for (definition, value, op, literal, expected) in table {
            assert_eq!(
                compare_value(&value, definition, op, &literal),
                expected,
                "{value} {op:?} {literal} ({:?})",
                definition.kind
            );
        }
    }

    #[test]
    fn numbers_compare_across_representations() {
        let n = |text: &str| serde_json::from_str::<Number>(text).unwrap();
        assert_eq!(compare_numbers(&n("2"), &n("2.0")), Some(Ordering::Equal));
        assert_eq!(
            compare_numbers(&n("-1"), &n("18446744073709551615")),
            Some(Ordering::Less)
        );
        assert_eq!(compare_numbers(&n("10"), &n("9")), Some(Ordering::Greater));
    }
}
