//! The rule index: which rules a user can possibly match, found from the
//! user's values, so evaluation runs the filter of those rules only.
//!
//! A rule is indexed when its `when` cannot hold unless some attribute
//! equals some string: `title eq "Level 2 Support"`,
//! `groups[display eq "Group_CC_Agents_Tier1"]` (read as `groups.display eq
//! ...`), an `and` with such an operand, an `or` all of whose operands are
//! such. Other rules are tested for every user.
//!
//! Architecture Invariant: the index only ever skips rules that cannot
//! match; the filter decides every rule it keeps. Values are compared
//! lower-cased, which finds every case-insensitive match and so also every
//! `caseExact` one; a path the registry cannot resolve, or a dateTime one
//! (compared as instants, not text), makes every rule indexed under it a
//! candidate. The property tests compare indexed evaluation with testing
//! every rule.

use std::collections::HashMap;

use muster_scim::{
    AttrPath, AttributeType, CompareOp, Filter, FilterValue, ResourceType, SchemaRegistry,
};
use serde_json::Value;

use crate::ruleset::Rule;
use crate::values::{attribute_value, elements, member};

/// Rules by the (path, lower-cased value) one of which their `when` needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// The distinct paths (by lower-cased text).
    paths: Vec<IndexedPath>,
    /// Rules tested for every user.
    always: Vec<usize>,
}

#[derive(Debug, Clone)]
struct IndexedPath {
    path: AttrPath,
    /// Lower-cased value to the rules that need it.
    rules: HashMap<String, Vec<usize>>,
}

impl RuleIndex {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let mut index = RuleIndex::default();
        let mut slots: HashMap<String, usize> = HashMap::new();
        for (position, rule) in rules.iter().enumerate() {
            let needs = rule.when.as_ref().and_then(|when| required(&when.filter));
            let Some(needs) = needs else {
                index.always.push(position);
                continue;
            };
            for (path, value) in needs {
                let key = path.to_string().to_lowercase();
                let slot = *slots.entry(key).or_insert_with(|| {
                    index.paths.push(IndexedPath {
                        path,
                        rules: HashMap::new(),
                    });
                    index.paths.len() - 1
                });
                if let Some(entry) = index.paths.get_mut(slot) {
                    let list = entry.rules.entry(value).or_default();
                    if list.last() != Some(&position) {
                        list.push(position);
                    }
                }
            }
        }
        index
    }

    /// Whether rule `position` is indexed (not tested for every user).
    #[cfg(test)]
    pub(crate) fn is_indexed(&self, position: usize) -> bool {
        !self.always.contains(&position)
    }

    /// Per rule, whether `user` can match it.
    pub(crate) fn candidates(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        user: &Value,
        count: usize,
    ) -> Vec<bool> {
        let mut candidates = vec![false; count];
        let mut mark = |rules: &[usize]| {
            for position in rules {
                if let Some(slot) = candidates.get_mut(*position) {
                    *slot = true;
                }
            }
        };
        mark(&self.always);
        for entry in &self.paths {
            match texts(registry, resource_type, user, &entry.path) {
                Some(values) => {
                    for value in values {
                        if let Some(rules) = entry.rules.get(&value) {
                            mark(rules);
                        }
                    }
                }
                None => {
                    for rules in entry.rules.values() {
                        mark(rules);
                    }
                }
            }
        }
        candidates
    }
}

/// The (path, lower-cased value) pairs one of which `filter` needs to hold,
/// when it plainly needs one.
fn required(filter: &Filter) -> Option<Vec<(AttrPath, String)>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: FilterValue::String(value),
        } => Some(vec![(path.clone(), value.to_lowercase())]),
        Filter::ValuePath { path, filter } if path.sub_attribute.is_none() => {
            required_in_element(filter).map(|needs| {
                needs
                    .into_iter()
                    .map(|(sub, value)| {
                        let path = AttrPath {
                            sub_attribute: Some(sub.to_owned()),
                            ..path.clone()
                        };
                        (path, value)
                    })
                    .collect()
            })
        }
        Filter::And(operands) => operands.iter().find_map(required),
        Filter::Or(operands) => {
            let mut all = Vec::new();
            for operand in operands {
                all.extend(required(operand)?);
            }
            Some(all)
        }
        Filter::Not(_) | Filter::Present(_) | Filter::Compare { .. } | Filter::ValuePath { .. } => {
            None
        }
    }
}

/// The same inside a value path: (sub-attribute, lower-cased value).
fn required_in_element(filter: &Filter) -> Option<Vec<(&str, String)>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: FilterValue::String(value),
        } if path.schema.is_none() && path.sub_attribute.is_none() => {
            Some(vec![(path.attribute.as_str(), value.to_lowercase())])
        }
        Filter::And(operands) => operands.iter().find_map(required_in_element),
        Filter::Or(operands) => {
            let mut all = Vec::new();
            for operand in operands {
                all.extend(required_in_element(operand)?);
            }
            Some(all)
        }
        Filter::Not(_) | Filter::Present(_) | Filter::Compare { .. } | Filter::ValuePath { .. } => {
            None
        }
    }
}

/// Every value at `path` a string literal could equal, lower-cased:
/// strings, and booleans as `true`/`false`. `None` when the registry cannot
/// resolve the path or it compares otherwise than as text (dateTime): then
/// nothing may be skipped.
fn texts(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    user: &Value,
    path: &AttrPath,
) -> Option<Vec<String>> {
    let resolved = registry.resolve_attribute(resource_type, path)?;
    let target = match resolved.sub_attribute {
        Some(sub) => sub,
        None if resolved.attribute.is_complex() => resolved.attribute.sub_attribute("value")?,
        None => resolved.attribute,
    };
    if target.kind == AttributeType::DateTime {
        return None;
    }
    let step = (!std::ptr::eq(target, resolved.attribute)).then_some(target.name.as_str());
    let mut found = Vec::new();
    let Some(value) = attribute_value(user, &resolved) else {
        return Some(found);
    };
    for element in elements(value) {
        let inner = match step {
            Some(step) => member(element, step),
            None => Some(element),
        };
        for item in inner.into_iter().flat_map(elements) {
            match item {
                Value::String(text) => found.push(text.to_lowercase()),
                Value::Bool(flag) => found.push(flag.to_string()),
                Value::Null | Value::Number(_) | Value::Array(_) | Value::Object(_) => {}
            }
        }
    }
    Some(found)
}
