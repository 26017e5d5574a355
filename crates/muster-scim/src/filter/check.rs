//! Checking a parsed filter against the schemas of a resource type.
//!
//! Parsing is purely syntactic; the server calls [`Filter::check`] before
//! evaluating or translating a filter so that a misspelt attribute is a
//! `400 invalidFilter` with a "did you mean" rather than an empty result.

use super::ast::Filter;
use super::eval::element_definition;
use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{Attribute, ResolvedAttribute, ResolvedPath, ResourceType, SchemaRegistry};

impl Filter {
    /// Checks that every path names an attribute of `resource_type`, and
    /// every path inside a value path a sub-attribute of that attribute.
    ///
    /// Returns `400 invalidFilter` for the first path that does not, worded by
    /// [`SchemaRegistry::unknown_attribute`].
    pub fn check(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
    ) -> Result<(), ScimError> {
        match self {
            Filter::And(operands) | Filter::Or(operands) => operands
                .iter()
                .try_for_each(|operand| operand.check(registry, resource_type)),
            Filter::Not(operand) => operand.check(registry, resource_type),
            Filter::Present(path) | Filter::Compare { path, .. } => {
                resolve(registry, resource_type, path).map(|_| ())
            }
            Filter::ValuePath { path, filter } => {
                let resolved = resolve(registry, resource_type, path)?;
                if resolved.sub_attribute.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}[...]': a value path applies to an attribute, not to a sub-attribute"
                    )));
                }
                filter.check_element(registry, resource_type, path, resolved.attribute)
            }
        }
    }

    /// Checks the paths of the value filter in `outer[...]`.
    fn check_element(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        outer: &AttrPath,
        attribute: &Attribute,
    ) -> Result<(), ScimError> {
        match self {
            Filter::And(operands) | Filter::Or(operands) => {
                operands.iter().try_for_each(|operand| {
                    operand.check_element(registry, resource_type, outer, attribute)
                })
            }
            Filter::Not(operand) => {
                operand.check_element(registry, resource_type, outer, attribute)
            }
            Filter::Present(path) | Filter::Compare { path, .. } => {
                match element_definition(attribute, path) {
                    Some(_) => Ok(()),
                    None => Err(ScimError::invalid_filter(
                        registry.unknown_attribute(resource_type, &format!("{outer}.{path}")),
                    )),
                }
            }
            Filter::ValuePath { path, .. } => Err(ScimError::invalid_filter(format!(
                "'{outer}[...{path}[...]...]': value paths cannot be nested"
            ))),
        }
    }
}

fn resolve<'r>(
    registry: &'r SchemaRegistry,
    resource_type: &'r ResourceType,
    path: &AttrPath,
) -> Result<ResolvedAttribute<'r>, ScimError> {
    match registry.resolve(resource_type, path) {
        Some(ResolvedPath::Attribute(resolved)) => Ok(resolved),
        Some(ResolvedPath::Extension(schema)) => Err(ScimError::invalid_filter(format!(
            "'{path}' names the extension schema {}, not an attribute; filter on one of its attributes ('{}:attributeName')",
            schema.id, schema.id
        ))),
        None => Err(ScimError::invalid_filter(
            registry.unknown_attribute(resource_type, &path.to_string()),
        )),
    }
}
