//! Validation against the server's context: every attribute a `when` or a
//! table key reads is declared (and may be read), and every group a `when`
//! names exists.

use muster_scim::schema::Container;
use muster_scim::{
    AttrPath, AttributeType, CompareOp, Filter, FilterValue, ResourceType, SchemaRegistry,
};

use crate::error::{did_you_mean, ErrorKind, Location, RuleError, RuleErrors};
use crate::ruleset::{Condition, RuleSet};
use crate::schema::CONTACT_CENTER_URN;

impl RuleSet {
    /// Checks the rule set against the schemas of `resource_type` (the
    /// User type) and the display names of the groups that exist.
    ///
    /// Refused, each with the rule id, the line and a "did you mean":
    /// an attribute no schema declares, one never returned (`password`),
    /// one of the computed contact-center extension (rules cannot read what
    /// they compute), a table key that is complex or multi-valued, and a
    /// group (`groups[display eq "X"]`, `groups.display eq "X"`) that does
    /// not exist.
    pub fn validate(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        groups: &[String],
    ) -> Result<(), RuleErrors> {
        let mut errors = Vec::new();
        let known_groups: std::collections::HashSet<String> =
            groups.iter().map(|group| group.to_lowercase()).collect();
        let conditions = self
            .rules
            .iter()
            .filter_map(|rule| rule.when.as_ref().map(|when| (&rule.id, when)))
            .chain(
                self.tables
                    .iter()
                    .filter_map(|table| table.when.as_ref().map(|when| (&table.id, when))),
            );
        for (id, when) in conditions {
            let error = |kind: ErrorKind, message: String| RuleError {
                kind,
                rule: Some(id.clone()),
                location: when.location.clone(),
                field: when.field.clone(),
                message,
            };
            if let Err(refused) = when.filter.check(registry, resource_type) {
                errors.push(error(ErrorKind::UnknownAttribute, refused.detail));
                continue;
            }
            let mut paths = Vec::new();
            paths_of(&when.filter, &mut paths);
            for path in paths {
                if reads_computed(registry, resource_type, path) {
                    errors.push(error(
                        ErrorKind::UnknownAttribute,
                        format!("'{path}' is computed by the rules themselves; a rule cannot depend on it"),
                    ));
                }
            }
            check_groups(when, groups, &known_groups, &mut |message| {
                errors.push(error(ErrorKind::UnknownGroup, message));
            });
        }
        for table in &self.tables {
            if let Err(message) = check_key(registry, resource_type, &table.key) {
                errors.push(RuleError {
                    kind: ErrorKind::UnknownAttribute,
                    rule: Some(table.id.clone()),
                    location: table.key_location.clone(),
                    field: table.key_field.clone(),
                    message,
                });
            }
        }
        errors.sort_by_key(|error| {
            error
                .location
                .as_ref()
                .map_or((usize::MAX, 0), |location: &Location| {
                    (location.line, location.column)
                })
        });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuleErrors(errors))
        }
    }
}

/// Every attribute path a filter names at the resource level (value paths
/// by their attribute).
fn paths_of<'f>(filter: &'f Filter, paths: &mut Vec<&'f AttrPath>) {
    match filter {
        Filter::And(operands) | Filter::Or(operands) => {
            for operand in operands {
                paths_of(operand, paths);
            }
        }
        Filter::Not(operand) => paths_of(operand, paths),
        Filter::Present(path) | Filter::Compare { path, .. } | Filter::ValuePath { path, .. } => {
            paths.push(path)
        }
    }
}

fn reads_computed(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    path: &AttrPath,
) -> bool {
    registry
        .resolve_attribute(resource_type, path)
        .is_some_and(|resolved| {
            matches!(resolved.container, Container::Extension(urn) if urn.eq_ignore_ascii_case(CONTACT_CENTER_URN))
        })
}

/// Reports each group a condition names by display that is not known.
fn check_groups(
    when: &Condition,
    groups: &[String],
    known: &std::collections::HashSet<String>,
    report: &mut dyn FnMut(String),
) {
    let mut named = Vec::new();
    named_groups(&when.filter, false, &mut named);
    for name in named {
        if !known.contains(&name.to_lowercase()) {
            report(format!(
                "no group has the display name '{name}'{}",
                did_you_mean(name, groups.iter().map(String::as_str))
            ));
        }
    }
}

fn is_groups(path: &AttrPath) -> bool {
    path.attribute.eq_ignore_ascii_case("groups")
        && path.schema.as_deref().is_none_or(|schema| {
            schema.eq_ignore_ascii_case(muster_scim::schema::builtin::USER_SCHEMA)
        })
}

/// Group display names compared with `eq` or `ne`, at the resource level
/// (`groups.display eq "X"`) or inside `groups[...]` (`inside`).
fn named_groups<'f>(filter: &'f Filter, inside: bool, names: &mut Vec<&'f str>) {
    match filter {
        Filter::And(operands) | Filter::Or(operands) => {
            for operand in operands {
                named_groups(operand, inside, names);
            }
        }
        Filter::Not(operand) => named_groups(operand, inside, names),
        Filter::Present(_) => {}
        Filter::Compare {
            path,
            op: CompareOp::Eq | CompareOp::Ne,
            value: FilterValue::String(name),
        } => {
            let display = |name: &str| name.eq_ignore_ascii_case("display");
            let names_display = if inside {
                path.schema.is_none() && path.sub_attribute.is_none() && display(&path.attribute)
            } else {
                is_groups(path) && path.sub_attribute.as_deref().is_some_and(display)
            };
            if names_display {
                names.push(name);
            }
        }
        Filter::Compare { .. } => {}
        Filter::ValuePath { path, filter } => {
            if !inside && is_groups(path) {
                named_groups(filter, true, names);
            }
        }
    }
}

/// Why a table key cannot be looked up, if it cannot.
fn check_key(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    path: &AttrPath,
) -> Result<(), String> {
    let Some(resolved) = registry.resolve_attribute(resource_type, path) else {
        return Err(registry.unknown_attribute(resource_type, &path.to_string()));
    };
    let canonical = resolved.canonical_path();
    if resolved.is_never_returned() {
        return Err(format!(
            "'{canonical}' is never returned (returned: never); rules cannot read it"
        ));
    }
    if matches!(resolved.container, Container::Extension(urn) if urn.eq_ignore_ascii_case(CONTACT_CENTER_URN))
    {
        return Err(format!(
            "'{canonical}' is computed by the rules themselves; a table cannot look it up"
        ));
    }
    if resolved.attribute.multi_valued {
        return Err(format!(
            "'{canonical}' is multi-valued; a table key must hold one value (match one of several values with a rule's when instead)"
        ));
    }
    let target = resolved.target();
    match target.kind {
        AttributeType::String
        | AttributeType::Reference
        | AttributeType::Integer
        | AttributeType::Boolean => Ok(()),
        AttributeType::Complex => {
            let subs: Vec<String> = target
                .sub_attributes
                .iter()
                .map(|sub| format!("'{canonical}.{}'", sub.name))
                .collect();
            Err(format!(
                "'{canonical}' is complex; look up one of its sub-attributes ({})",
                subs.join(", ")
            ))
        }
        AttributeType::Decimal | AttributeType::DateTime | AttributeType::Binary => Err(format!(
            "'{canonical}' is of type {}; a table key is a string, reference, integer or boolean",
            target.kind.as_str()
        )),
    }
}
