//! Filters evaluated many at a time against one resource, each attribute
//! path resolved and looked up once.
//!
//! [`Filter::matches`] resolves every path it meets through the
//! [`SchemaRegistry`] (schema lookup, case-insensitive name matching) and
//! then looks the attribute up in the resource's JSON. A caller that tests
//! many filters against the same resource (a rule set: hundreds of
//! conditions over a handful of attributes) pays that for every comparison.
//! Here the caller numbers the distinct paths of all its filters once, in a
//! [`FilterPaths`], and compiles each filter to a [`CompiledFilter`] naming
//! paths by number; to match, it wraps the resource in a [`LocatedResource`],
//! which resolves and looks up each path the first time a filter needs it and
//! remembers the answer for the others.
//!
//! Architecture Invariant: a compiled filter matches a resource exactly when
//! the filter it was compiled from does ([`Filter::matches`] with the same
//! registry and resource type); only the work is shared. Paths are resolved
//! against the registry given to [`LocatedResource::new`], never cached
//! across resources, so a registry change is seen by the next resource.

use std::cell::OnceCell;
use std::collections::HashMap;

use serde_json::Value;

use super::ast::{CompareOp, Filter, FilterValue};
use super::eval::{elements, locate, Target};
use crate::path::AttrPath;
use crate::schema::{ResourceType, SchemaRegistry};

/// The distinct top-level attribute paths of a set of filters, numbered in
/// the order first seen. Compile every filter of the set with the same
/// `FilterPaths` ([`FilterPaths::compile`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterPaths {
    paths: Vec<AttrPath>,
    slots: HashMap<AttrPath, usize>,
}

impl FilterPaths {
    /// No paths yet.
    pub fn new() -> Self {
        FilterPaths::default()
    }

    /// How many distinct paths the compiled filters name.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no compiled filter names a path.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The paths, by number.
    pub fn paths(&self) -> &[AttrPath] {
        &self.paths
    }

    /// Compiles `filter`, numbering the paths it names that this set does
    /// not have yet. The result is only meaningful with this set (a
    /// [`LocatedResource`] built from it).
    pub fn compile(&mut self, filter: &Filter) -> CompiledFilter {
        CompiledFilter(self.node(filter))
    }

    fn slot(&mut self, path: &AttrPath) -> usize {
        if let Some(slot) = self.slots.get(path) {
            return *slot;
        }
        let slot = self.paths.len();
        self.paths.push(path.clone());
        self.slots.insert(path.clone(), slot);
        slot
    }

    fn node(&mut self, filter: &Filter) -> Node {
        match filter {
            Filter::And(operands) => {
                Node::And(operands.iter().map(|operand| self.node(operand)).collect())
            }
            Filter::Or(operands) => {
                Node::Or(operands.iter().map(|operand| self.node(operand)).collect())
            }
            Filter::Not(operand) => Node::Not(Box::new(self.node(operand))),
            Filter::Present(path) => Node::Present(self.slot(path)),
            Filter::Compare { path, op, value } => Node::Compare {
                slot: self.slot(path),
                op: *op,
                value: value.clone(),
            },
            Filter::ValuePath { path, filter } => Node::ValuePath {
                slot: self.slot(path),
                filter: filter.clone(),
            },
        }
    }
}

/// A filter whose top-level paths are numbers in a [`FilterPaths`]; made by
/// [`FilterPaths::compile`], matched with [`CompiledFilter::matches`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledFilter(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Present(usize),
    Compare {
        slot: usize,
        op: CompareOp,
        value: FilterValue,
    },
    /// Value filters name sub-attributes, resolved from the attribute's
    /// definition without the registry: kept as they are.
    ValuePath {
        slot: usize,
        filter: Box<Filter>,
    },
}

/// A resource (canonical JSON) about to be matched against the compiled
/// filters of one [`FilterPaths`]: each path is resolved and looked up the
/// first time a filter needs it, then remembered.
pub struct LocatedResource<'v, 'r, 'p> {
    resource: &'v Value,
    registry: &'r SchemaRegistry,
    resource_type: &'r ResourceType,
    paths: &'p FilterPaths,
    located: Vec<OnceCell<Option<Target<'v, 'r>>>>,
}

impl<'v, 'r, 'p> LocatedResource<'v, 'r, 'p> {
    /// Wraps `resource`, whose paths (those of `paths`) will resolve
    /// against `registry` and `resource_type`.
    pub fn new(
        resource: &'v Value,
        registry: &'r SchemaRegistry,
        resource_type: &'r ResourceType,
        paths: &'p FilterPaths,
    ) -> Self {
        LocatedResource {
            resource,
            registry,
            resource_type,
            paths,
            located: (0..paths.len()).map(|_| OnceCell::new()).collect(),
        }
    }

    /// The resource.
    pub fn resource(&self) -> &'v Value {
        self.resource
    }

    /// Where path `slot` leads in the resource; `None` when the registry
    /// does not know it (or the slot is not one of the set's).
    fn target(&self, slot: usize) -> Option<Target<'v, 'r>> {
        let cell = self.located.get(slot)?;
        *cell.get_or_init(|| {
            let path = self.paths.paths.get(slot)?;
            locate(self.resource, self.registry, self.resource_type, path)
        })
    }
}

impl CompiledFilter {
    /// Whether the resource matches: the same answer as [`Filter::matches`]
    /// gives for the filter this was compiled from, with the registry and
    /// resource type of `resource`. `resource` must have been built from the
    /// [`FilterPaths`] that compiled this filter.
    pub fn matches(&self, resource: &LocatedResource<'_, '_, '_>) -> bool {
        self.0.matches(resource)
    }
}

impl Node {
    fn matches(&self, resource: &LocatedResource<'_, '_, '_>) -> bool {
        match self {
            Node::And(operands) => operands.iter().all(|operand| operand.matches(resource)),
            Node::Or(operands) => operands.iter().any(|operand| operand.matches(resource)),
            Node::Not(operand) => !operand.matches(resource),
            Node::Present(slot) => resource
                .target(*slot)
                .is_some_and(|target| target.present()),
            Node::Compare { slot, op, value } => resource
                .target(*slot)
                .is_some_and(|target| target.compare(*op, value)),
            Node::ValuePath { slot, filter } => {
                let Some(target) = resource.target(*slot) else {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// Every filter, compiled into one shared set, gives the answer of
    /// `Filter::matches`, on resources that do and do not match.
    #[test]
    fn compiled_filters_match_as_the_evaluator_does() {
        let registry = SchemaRegistry::builtin();
        let Some(users) = registry.resource_type("User") else {
            panic!("no User type");
        };
        let filters = [
            r#"userName eq "ana""#,
            r#"USERNAME eq "ANA""#,
            r#"userName ne "ana""#,
            r#"title sw "Level""#,
            r#"title co "2 sup""#,
            r#"title ew "Support" and active eq true"#,
            r#"title eq "x" or active eq false"#,
            r#"not (title pr)"#,
            r#"nickName pr"#,
            r#"nickName eq null"#,
            r#"emails co "@contoso""#,
            r#"emails.type eq "work""#,
            r#"emails[type eq "work" and primary eq true]"#,
            r#"emails[type eq "home"]"#,
            r#"emails[type eq "work"].value co "contoso""#,
            r#"groups[display eq "Group_CC_Agents_Tier1"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department sw "Sales""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "CC-4100""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#,
            r#"noSuchAttribute eq "x""#,
            r#"not (noSuchAttribute eq "x")"#,
            r#"meta.lastModified gt "2020-01-01T00:00:00Z""#,
        ];
        let resources = [
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "ana",
                "title": "Level 2 Support",
                "active": true,
                "emails": [
                    {"value": "ana@contoso.com", "type": "work", "primary": true},
                    {"value": "ana@home.example", "type": "home"}
                ],
                "groups": [{"value": "g1", "display": "Group_CC_Agents_Tier1"}],
                "meta": {"lastModified": "2024-05-01T10:00:00Z"},
                ENTERPRISE: {"department": "Sales Ops", "costCenter": "CC-4100",
                             "manager": {"value": "m1"}}
            }),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bo",
                "nickName": "B",
                "active": false,
                "emails": [{"value": "bo@example.org"}]
            }),
            json!({}),
        ];
        let mut paths = FilterPaths::new();
        let mut parsed: Vec<Filter> = filters
            .iter()
            .map(|text| match Filter::parse(text) {
                Ok(filter) => filter,
                Err(error) => panic!("{text}: {error:?}"),
            })
            .collect();
        // A value path on a sub-attribute, which the parser refuses but
        // the AST can hold: matches nothing either way.
        let Ok(element) = Filter::parse(r#"type eq "work""#) else {
            panic!("a value filter");
        };
        parsed.push(Filter::ValuePath {
            path: AttrPath::with_sub("emails", "value"),
            filter: Box::new(element),
        });
        let filters: Vec<&str> = filters
            .iter()
            .copied()
            .chain(["emails.value[type eq \"work\"] (built)"])
            .collect();
        let compiled: Vec<CompiledFilter> =
            parsed.iter().map(|filter| paths.compile(filter)).collect();
        assert!(
            paths.len() < filters.len(),
            "shared paths are numbered once"
        );
        for resource in &resources {
            let located = LocatedResource::new(resource, &registry, users, &paths);
            for ((text, filter), compiled) in filters.iter().zip(&parsed).zip(&compiled) {
                assert_eq!(
                    compiled.matches(&located),
                    filter.matches(resource, &registry, users),
                    "{text} on {resource}"
                );
            }
        }
    }
}
