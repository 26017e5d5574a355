//! Projection of resources: the `attributes` and `excludedAttributes`
//! parameters (RFC 7644 sections 3.4.2.5 and 3.9) and the schema's
//! `returned` characteristic (RFC 7643 section 7).
//!
//! What a response keeps, attribute by attribute (and sub-attribute by
//! sub-attribute, for complex attributes):
//! - `returned: never` (`password`) is removed, even when requested;
//! - `returned: always` (`id`) is kept, even when excluded; `schemas` is
//!   always kept and lists what the resource carries, projected or not;
//! - with `attributes`, only what it names is kept (plus the always-returned
//!   set); naming an attribute names all of its sub-attributes, and naming an
//!   extension URN names all of its attributes. `returned: request`
//!   attributes are kept only when so named;
//! - without `attributes`, `returned: default` attributes are kept;
//! - `excludedAttributes` then removes what it names (never `always` ones).
//!   Both parameters may be given; the exclusion applies to the selection.
//!
//! A complex value or element left with no sub-attribute is dropped, and so
//! are an emptied array and an emptied extension object, keeping the
//! canonical form (never `{}` or `[]`).
//!
//! Unknown names are `400 invalidValue` with the registry's "did you mean";
//! `schemas` may be named and changes nothing. `attributes` naming a
//! `returned: never` attribute or sub-attribute (`password`) is `400
//! invalidFilter`: it can never be selected (naming its complex parent or
//! its extension is fine, and so is excluding it).

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{
    Attribute, Container, ResolvedPath, ResourceType, Returned, Schema, SchemaRegistry,
};

/// A parsed `attributes` / `excludedAttributes` pair, resolved to canonical
/// names against one resource type.
///
/// [`Projection::default`] is a plain response: what the schemas return by
/// default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    /// `None` when `attributes` was not given (or empty).
    attributes: Option<Vec<Selector>>,
    excluded: Vec<Selector>,
    /// Keep `returned: request` attributes without naming them; set only by
    /// [`remove_never_returned`].
    keep_request: bool,
}

/// One name of an `attributes` or `excludedAttributes` list, canonical case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// A whole extension, by its schema URN.
    Extension(String),
    /// An attribute, or one of its sub-attributes.
    Attribute {
        extension: Option<String>,
        attribute: String,
        sub_attribute: Option<String>,
    },
}

impl Selector {
    /// Whether naming this selects the attribute (or sub-attribute) at
    /// `extension`/`attribute`/`sub_attribute`: an exact match, or naming an
    /// ancestor.
    fn covers(
        &self,
        extension: Option<&str>,
        attribute: &str,
        sub_attribute: Option<&str>,
    ) -> bool {
        match self {
            Selector::Extension(urn) => {
                extension.is_some_and(|extension| extension.eq_ignore_ascii_case(urn))
            }
            Selector::Attribute {
                extension: selected_extension,
                attribute: selected_attribute,
                sub_attribute: selected_sub,
            } => {
                same_extension(selected_extension.as_deref(), extension)
                    && selected_attribute.eq_ignore_ascii_case(attribute)
                    && match (selected_sub, sub_attribute) {
                        (None, _) => true,
                        (Some(selected), Some(sub)) => selected.eq_ignore_ascii_case(sub),
                        (Some(_), None) => false,
                    }
            }
        }
    }

    /// Whether this selects some part of the attribute (it or a
    /// sub-attribute, or its whole extension).
    fn touches(&self, extension: Option<&str>, attribute: &str) -> bool {
        match self {
            Selector::Extension(_) => self.covers(extension, attribute, None),
            Selector::Attribute {
                extension: selected_extension,
                attribute: selected_attribute,
                ..
            } => {
                same_extension(selected_extension.as_deref(), extension)
                    && selected_attribute.eq_ignore_ascii_case(attribute)
            }
        }
    }
}

fn same_extension(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, Some(_)) | (Some(_), None) => false,
    }
}

/// The `returned` setting of a sub-attribute in context: a never-returned
/// parent hides everything below it, an always-returned parent lifts its
/// default sub-attributes, a request-only parent makes them request-only.
/// `sub` is `None` for a member the schema does not declare.
fn effective_returned(parent: Returned, sub: Option<Returned>) -> Returned {
    match (parent, sub) {
        (Returned::Never, _) | (_, Some(Returned::Never)) => Returned::Never,
        (_, Some(Returned::Always)) => Returned::Always,
        (parent, None) => parent,
        (Returned::Always, Some(Returned::Default)) => Returned::Always,
        (Returned::Always | Returned::Default | Returned::Request, Some(Returned::Request)) => {
            Returned::Request
        }
        (Returned::Default, Some(Returned::Default)) => Returned::Default,
        (Returned::Request, Some(Returned::Default)) => Returned::Request,
    }
}

impl Projection {
    /// Parses the `attributes` and `excludedAttributes` query parameters:
    /// comma-separated attribute paths, URN-qualified or not, any case,
    /// whitespace around names ignored. An absent or empty parameter is not
    /// given. `attributes` may not name a never-returned attribute (`400
    /// invalidFilter`); `excludedAttributes` may.
    pub fn parse(
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Result<Projection, ScimError> {
        Self::from_lists(
            registry,
            resource_type,
            attributes.as_slice(),
            excluded_attributes.as_slice(),
        )
    }

    /// Builds a projection from lists of names, as a `SearchRequest` carries
    /// them; each entry may itself be comma-separated. An empty list (or one
    /// holding only empty names) is not given.
    pub fn from_lists<S: AsRef<str>>(
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        attributes: &[S],
        excluded_attributes: &[S],
    ) -> Result<Projection, ScimError> {
        let selected = selectors(registry, resource_type, "attributes", true, attributes)?;
        let excluded = selectors(
            registry,
            resource_type,
            "excludedAttributes",
            false,
            excluded_attributes,
        )?;
        Ok(Projection {
            attributes: selected,
            excluded: excluded.unwrap_or_default(),
            keep_request: false,
        })
    }

    /// Whether neither parameter was given (a plain response).
    pub fn is_default(&self) -> bool {
        self.attributes.is_none() && self.excluded.is_empty()
    }

    /// Projects a canonical resource of `resource_type` in place.
    ///
    /// A value that is not a JSON object is left as it is.
    pub fn apply(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        resource: &mut Value,
    ) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let core = registry.core_schema(resource_type);
        let extensions: Vec<&Schema> = registry
            .extensions(resource_type)
            .map(|(schema, _)| schema)
            .collect();
        object.retain(|key, value| {
            if key.eq_ignore_ascii_case("schemas") {
                return true;
            }
            if let Some(extension) = extensions
                .iter()
                .find(|schema| schema.id.eq_ignore_ascii_case(key))
            {
                return self.retain_extension(extension, value);
            }
            let declared = core.and_then(|core| core.attribute(key)).or_else(|| {
                registry
                    .common_attributes()
                    .iter()
                    .find(|attribute| attribute.name.eq_ignore_ascii_case(key))
            });
            self.retain_attribute(None, declared, key, value)
        });
    }

    /// Whether any part of `path` would survive this projection, judged from
    /// the schema alone: lets the storage layer skip loading what will be
    /// dropped. An unknown path is not wanted.
    pub fn wants(
        &self,
        registry: &SchemaRegistry,
        resource_type: &ResourceType,
        path: &AttrPath,
    ) -> bool {
        match registry.resolve(resource_type, path) {
            None => false,
            Some(ResolvedPath::Extension(schema)) => schema
                .attributes
                .iter()
                .any(|attribute| self.wants_attribute(Some(&schema.id), attribute)),
            Some(ResolvedPath::Attribute(resolved)) => {
                let extension = match resolved.container {
                    Container::Core => None,
                    Container::Extension(urn) => Some(urn),
                };
                match resolved.sub_attribute {
                    Some(sub) => self.keeps(
                        effective_returned(resolved.attribute.returned, Some(sub.returned)),
                        extension,
                        &resolved.attribute.name,
                        Some(&sub.name),
                    ),
                    None => self.wants_attribute(extension, resolved.attribute),
                }
            }
        }
    }

    /// Whether a group's `members` may be returned: `false` exactly when
    /// `excludedAttributes` names `members`, or `attributes` is given and
    /// names neither `members` nor one of its sub-attributes. The storage
    /// layer skips loading members when it is `false`.
    pub fn includes_members(&self) -> bool {
        self.may_include("members")
    }

    /// Whether any part of the core attribute `attribute` (a
    /// `returned: default` one, such as `members` or `groups`) may be
    /// returned, without consulting the schema. Conservative: never `false`
    /// when something of it would be returned.
    pub fn may_include(&self, attribute: &str) -> bool {
        if self
            .excluded
            .iter()
            .any(|selector| selector.covers(None, attribute, None))
        {
            return false;
        }
        match &self.attributes {
            None => true,
            Some(selected) => selected
                .iter()
                .any(|selector| selector.touches(None, attribute)),
        }
    }

    /// The decision for one attribute or sub-attribute given its effective
    /// `returned` setting.
    fn keeps(
        &self,
        returned: Returned,
        extension: Option<&str>,
        attribute: &str,
        sub_attribute: Option<&str>,
    ) -> bool {
        let named_in = |selectors: &[Selector]| {
            selectors
                .iter()
                .any(|selector| selector.covers(extension, attribute, sub_attribute))
        };
        match returned {
            Returned::Never => false,
            Returned::Always => true,
            Returned::Default | Returned::Request => {
                let selected = match &self.attributes {
                    Some(selected) => named_in(selected),
                    None => returned == Returned::Default || self.keep_request,
                };
                selected && !named_in(&self.excluded)
            }
        }
    }

    fn wants_attribute(&self, extension: Option<&str>, attribute: &Attribute) -> bool {
        if attribute.sub_attributes.is_empty() {
            return self.keeps(attribute.returned, extension, &attribute.name, None);
        }
        attribute.sub_attributes.iter().any(|sub| {
            self.keeps(
                effective_returned(attribute.returned, Some(sub.returned)),
                extension,
                &attribute.name,
                Some(&sub.name),
            )
        })
    }

    /// Projects an extension object; `false` when nothing of it remains.
    fn retain_extension(&self, extension: &Schema, value: &mut Value) -> bool {
        match value {
            Value::Object(members) => {
                members.retain(|key, value| {
                    self.retain_attribute(Some(&extension.id), extension.attribute(key), key, value)
                });
                !members.is_empty()
            }
            // Not canonical; kept only where the extension as a whole is.
            _ => self.keeps(Returned::Default, Some(&extension.id), "", None),
        }
    }

    /// Projects one attribute's value in place; `false` when it goes.
    /// An undeclared member is treated as `returned: default`.
    fn retain_attribute(
        &self,
        extension: Option<&str>,
        declared: Option<&Attribute>,
        key: &str,
        value: &mut Value,
    ) -> bool {
        let Some(attribute) = declared else {
            return self.keeps(Returned::Default, extension, key, None);
        };
        if !attribute.is_complex() || attribute.returned == Returned::Never {
            return self.keeps(attribute.returned, extension, &attribute.name, None);
        }
        match value {
            Value::Object(members) => {
                self.retain_sub_attributes(extension, attribute, members);
                !members.is_empty()
            }
            Value::Array(elements) => {
                elements.retain_mut(|element| match element {
                    Value::Object(members) => {
                        self.retain_sub_attributes(extension, attribute, members);
                        !members.is_empty()
                    }
                    _ => self.keeps(attribute.returned, extension, &attribute.name, None),
                });
                !elements.is_empty()
            }
            _ => self.keeps(attribute.returned, extension, &attribute.name, None),
        }
    }

    fn retain_sub_attributes(
        &self,
        extension: Option<&str>,
        attribute: &Attribute,
        members: &mut Map<String, Value>,
    ) {
        members.retain(|key, _| {
            let sub = attribute.sub_attribute(key);
            self.keeps(
                effective_returned(attribute.returned, sub.map(|sub| sub.returned)),
                extension,
                &attribute.name,
                Some(sub.map_or(key.as_str(), |sub| sub.name.as_str())),
            )
        });
    }
}

/// Removes every `returned: never` attribute (e.g. `password`) and
/// sub-attribute, keeping everything else, `returned: request` included:
/// for responses that carry no projection, such as the body echoed after a
/// write.
pub fn remove_never_returned(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    resource: &mut Value,
) {
    let keep_all = Projection {
        attributes: None,
        excluded: Vec::new(),
        keep_request: true,
    };
    keep_all.apply(registry, resource_type, resource);
}

/// Resolves the names of one parameter; `None` when none was given.
/// `selecting` (for `attributes`) refuses never-returned names.
/// The most names one `attributes` or `excludedAttributes` list may hold:
/// far beyond any schema's attribute count, and a bound on the work one
/// request can ask for.
pub const MAX_LISTED_ATTRIBUTES: usize = 256;

fn selectors<S: AsRef<str>>(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    parameter: &str,
    selecting: bool,
    lists: &[S],
) -> Result<Option<Vec<Selector>>, ScimError> {
    let mut given = false;
    let mut selectors = Vec::new();
    let names = lists
        .iter()
        .flat_map(|list| list.as_ref().split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty());
    for (count, name) in names.enumerate() {
        if count == MAX_LISTED_ATTRIBUTES {
            return Err(ScimError::invalid_value(format!(
                "{parameter} lists more than {MAX_LISTED_ATTRIBUTES} names"
            )));
        }
        given = true;
        if name.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let path = AttrPath::parse(name)
            .map_err(|error| ScimError::invalid_value(format!("{parameter}: {}", error.detail)))?;
        let selector = match registry.resolve(resource_type, &path) {
            None => {
                return Err(ScimError::invalid_value(format!(
                    "{parameter}: {}",
                    registry.unknown_attribute(resource_type, name)
                )))
            }
            Some(ResolvedPath::Extension(schema)) => Selector::Extension(schema.id.clone()),
            Some(ResolvedPath::Attribute(resolved)) => {
                if selecting {
                    // Naming it is harmless in excludedAttributes only.
                    resolved
                        .check_returned()
                        .map_err(|error| error.context(parameter))?;
                }
                Selector::Attribute {
                    extension: match resolved.container {
                        Container::Core => None,
                        Container::Extension(urn) => Some(urn.to_owned()),
                    },
                    attribute: resolved.attribute.name.clone(),
                    sub_attribute: resolved.sub_attribute.map(|sub| sub.name.clone()),
                }
            }
        };
        if !selectors.contains(&selector) {
            selectors.push(selector);
        }
    }
    Ok(given.then_some(selectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_returned_rules() {
        use Returned::*;
        let check = |parent, sub, expected| {
            assert_eq!(
                effective_returned(parent, sub),
                expected,
                "{parent:?} {sub:?}"
            );
        };
        check(Never, Some(Always), Never);
        check(Always, Some(Never), Never);
        check(Always, Some(Default), Always);
        check(Default, Some(Request), Request);
        check(Request, Some(Default), Request);
        check(Default, None, Default);
        check(Default, Some(Always), Always);
    }

    #[test]
    fn empty_parameters_are_not_given() {
        let registry = SchemaRegistry::builtin();
        let user = registry.resource_type("User").unwrap();
        let projection = Projection::parse(&registry, user, Some(" , "), Some("")).unwrap();
        assert!(projection.is_default());
        let only_schemas = Projection::parse(&registry, user, Some("schemas"), None).unwrap();
        assert!(!only_schemas.is_default());
    }
}
