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
    /// [`SchemaRegistry::unknown_attribute`], and for the first that reads a
    /// `returned: never` attribute or sub-attribute (`password`,
    /// `x.secret`, `x[secret pr]`): whether such a filter matches would
    /// tell what the attribute holds.
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
            Filter::Present(path) => resolve(registry, resource_type, path)?.check_returned(),
            Filter::Compare { path, .. } => {
                let resolved = resolve(registry, resource_type, path)?;
                resolved.check_returned()?;
                // A complex attribute compares its `value` sub-attribute.
                match resolved.attribute.sub_attribute("value") {
                    Some(value) if resolved.sub_attribute.is_none() => ResolvedAttribute {
                        sub_attribute: Some(value),
                        ..resolved
                    }
                    .check_returned(),
                    Some(_) | None => Ok(()),
                }
            }
            Filter::ValuePath { path, filter } => {
                let resolved = resolve(registry, resource_type, path)?;
                if resolved.sub_attribute.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{path}[...]': a value path applies to an attribute, not to a sub-attribute"
                    )));
                }
                resolved.check_returned()?;
                filter.check_element(registry, resource_type, path, &resolved)
            }
        }
    }

    /// Refuses a PATCH value filter (`outer[...]`) that reads a
    /// `returned: never` attribute (`400 invalidFilter`): `outer` itself, a
    /// sub-attribute of it, or a name that is no sub-attribute of it but
    /// names a never-returned attribute of the resource
    /// (`emails[password pr]`: it matches nothing, but the client meant the
    /// password). Other paths that name nothing are left to the PATCH,
    /// which matches nothing with them.
    pub(crate) fn check_never_returned_element(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        outer: &ResolvedAttribute<'_>,
    ) -> Result<(), ScimError> {
        outer.check_returned()?;
        let resource_level = |path: &AttrPath| match registry.resolve_attribute(resource_type, path)
        {
            Some(resolved) => resolved.check_returned(),
            None => Ok(()),
        };
        match self {
            Filter::And(operands) | Filter::Or(operands) => {
                operands.iter().try_for_each(|operand| {
                    operand.check_never_returned_element(registry, resource_type, outer)
                })
            }
            Filter::Not(operand) => {
                operand.check_never_returned_element(registry, resource_type, outer)
            }
            Filter::Present(path) | Filter::Compare { path, .. } => {
                match element_definition(outer.attribute, path) {
                    Some(definition) => check_element_returned(outer, definition),
                    None => resource_level(path),
                }
            }
            Filter::ValuePath { path, .. } => resource_level(path),
        }
    }

    /// Checks the paths of the value filter in `outer[...]`.
    fn check_element(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        outer: &AttrPath,
        resolved: &ResolvedAttribute<'_>,
    ) -> Result<(), ScimError> {
        match self {
            Filter::And(operands) | Filter::Or(operands) => {
                operands.iter().try_for_each(|operand| {
                    operand.check_element(registry, resource_type, outer, resolved)
                })
            }
            Filter::Not(operand) => operand.check_element(registry, resource_type, outer, resolved),
            Filter::Present(path) | Filter::Compare { path, .. } => {
                match element_definition(resolved.attribute, path) {
                    Some(definition) => check_element_returned(resolved, definition),
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

/// Refuses a never-returned sub-attribute read by a value filter on
/// `outer` (`definition` is `outer`'s attribute itself for the `value` of a
/// simple multi-valued attribute).
fn check_element_returned(
    outer: &ResolvedAttribute<'_>,
    definition: &Attribute,
) -> Result<(), ScimError> {
    if std::ptr::eq(definition, outer.attribute) {
        return outer.check_returned();
    }
    ResolvedAttribute {
        sub_attribute: Some(definition),
        ..*outer
    }
    .check_returned()
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
