//! The schema registry: every schema and resource type a server knows, and the
//! resolution of attribute paths against them.
//!
//! Built-in schemas are loaded by [`SchemaRegistry::builtin`]; custom
//! extension schemas are declared at run time with
//! [`SchemaRegistry::put_extension`] (add or replace, and bind to a resource
//! type, in one step) and taken away with
//! [`SchemaRegistry::remove_extension`]. The lower-level
//! [`SchemaRegistry::add_schema`] and [`SchemaRegistry::bind_extension`]
//! do one step each.

use super::builtin;
use super::definition::check_schema;
use super::model::{Attribute, ResourceType, Returned, Schema, SchemaExtension};
use crate::error::ScimError;
use crate::path::AttrPath;

/// Every schema and resource type, with case-insensitive lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRegistry {
    schemas: Vec<Schema>,
    common_attributes: Vec<Attribute>,
    resource_types: Vec<ResourceType>,
}

/// Where a resolved attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container<'r> {
    /// At the top level (core schema or common attribute).
    Core,
    /// Inside the object keyed by this extension schema URN.
    Extension(&'r str),
}

/// An attribute path resolved against the registry, names in canonical case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedAttribute<'r> {
    /// Where the attribute lives.
    pub container: Container<'r>,
    /// The top-level attribute.
    pub attribute: &'r Attribute,
    /// The sub-attribute, when the path names one.
    pub sub_attribute: Option<&'r Attribute>,
}

impl<'r> ResolvedAttribute<'r> {
    /// The attribute the path ends at: the sub-attribute if any.
    pub fn target(&self) -> &'r Attribute {
        self.sub_attribute.unwrap_or(self.attribute)
    }

    /// The canonical path, URN-qualified for extension attributes.
    pub fn canonical_path(&self) -> String {
        let mut path = match self.container {
            Container::Core => String::new(),
            Container::Extension(urn) => format!("{urn}:"),
        };
        path.push_str(&self.attribute.name);
        if let Some(sub) = self.sub_attribute {
            path.push('.');
            path.push_str(&sub.name);
        }
        path
    }

    /// Whether the path names something never returned (`returned:
    /// never`): the attribute, or the sub-attribute it names. Such a path
    /// cannot be filtered, sorted or selected on: the answer would tell
    /// what it holds.
    pub fn is_never_returned(&self) -> bool {
        self.attribute.returned == Returned::Never
            || self
                .sub_attribute
                .is_some_and(|sub| sub.returned == Returned::Never)
    }

    /// Refuses a never-returned path ([`Self::is_never_returned`]) in a
    /// filter, `sortBy` or `attributes`: `400 invalidFilter` naming it.
    pub(crate) fn check_returned(&self) -> Result<(), ScimError> {
        if self.is_never_returned() {
            Err(SchemaRegistry::never_returned_error(&self.canonical_path()))
        } else {
            Ok(())
        }
    }
}

/// The result of resolving a path: an attribute, or a whole extension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResolvedPath<'r> {
    /// An attribute or sub-attribute.
    Attribute(ResolvedAttribute<'r>),
    /// A whole extension schema, e.g. `urn:...:enterprise:2.0:User`.
    Extension(&'r Schema),
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl SchemaRegistry {
    /// The registry with RFC 7643's User, Group and Enterprise User schemas.
    pub fn builtin() -> Self {
        SchemaRegistry {
            schemas: vec![
                builtin::user_schema(),
                builtin::group_schema(),
                builtin::enterprise_user_schema(),
            ],
            common_attributes: builtin::common_attributes(),
            resource_types: builtin::resource_types(),
        }
    }

    /// Every schema, in registration order.
    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// A schema by URN, case-insensitively.
    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|schema| schema.id.eq_ignore_ascii_case(urn))
    }

    /// Every resource type.
    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    /// A resource type by id or name, case-insensitively.
    pub fn resource_type(&self, id: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|rt| rt.id.eq_ignore_ascii_case(id) || rt.name.eq_ignore_ascii_case(id))
    }

    /// The common attributes (`id`, `externalId`, `meta`).
    pub fn common_attributes(&self) -> &[Attribute] {
        &self.common_attributes
    }

    /// Adds a schema, or replaces the one with the same URN, without
    /// binding it to a resource type.
    ///
    /// Rejects a schema that would shadow a built-in core schema or breaks
    /// the rules of [`crate::schema::parse_schema_definition`] (duplicate
    /// names, sub-attributes on a non-complex attribute, ...).
    pub fn add_schema(&mut self, schema: Schema) -> Result<(), ScimError> {
        self.check_replaceable(&schema.id)?;
        check_schema(&schema)?;
        match self
            .schemas
            .iter_mut()
            .find(|existing| existing.id.eq_ignore_ascii_case(&schema.id))
        {
            Some(existing) => *existing = schema,
            None => self.schemas.push(schema),
        }
        Ok(())
    }

    /// Binds an extension schema to a resource type (idempotent).
    pub fn bind_extension(
        &mut self,
        resource_type: &str,
        schema_urn: &str,
        required: bool,
    ) -> Result<(), ScimError> {
        let urn = self
            .schema(schema_urn)
            .ok_or_else(|| ScimError::invalid_value(format!("unknown schema '{schema_urn}'")))?
            .id
            .clone();
        let rt = self
            .resource_types
            .iter_mut()
            .find(|rt| rt.id.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| {
                ScimError::invalid_value(format!("unknown resource type '{resource_type}'"))
            })?;
        if urn.eq_ignore_ascii_case(&rt.schema) {
            return Err(ScimError::invalid_value(format!(
                "'{urn}' is the core schema of {}",
                rt.id
            )));
        }
        match rt
            .schema_extensions
            .iter_mut()
            .find(|ext| ext.schema.eq_ignore_ascii_case(&urn))
        {
            Some(ext) => ext.required = required,
            None => rt.schema_extensions.push(SchemaExtension {
                schema: urn,
                required,
            }),
        }
        Ok(())
    }

    /// Declares a custom extension schema at run time: adds it (or
    /// replaces the definition with the same URN, case-insensitively) and
    /// binds it to `resource_type` with `required`, in one step. Returns the
    /// definition it replaced, if any, which is what
    /// [`crate::schema::diff_schemas`] compares with.
    ///
    /// On error (`400 invalidValue`) the registry is unchanged: the core
    /// User and Group schemas cannot be replaced, the schema must follow
    /// the rules of [`crate::schema::parse_schema_definition`], the resource
    /// type must exist, and an extension already bound to another resource
    /// type must be removed before it is bound elsewhere.
    pub fn put_extension(
        &mut self,
        schema: Schema,
        resource_type: &str,
        required: bool,
    ) -> Result<Option<Schema>, ScimError> {
        self.check_replaceable(&schema.id)?;
        check_schema(&schema)?;
        let target = self
            .resource_types
            .iter()
            .position(|rt| {
                rt.id.eq_ignore_ascii_case(resource_type)
                    || rt.name.eq_ignore_ascii_case(resource_type)
            })
            .ok_or_else(|| self.unknown_resource_type(resource_type))?;
        let bound_elsewhere = self
            .resource_types
            .iter()
            .enumerate()
            .find(|(index, rt)| *index != target && binds(rt, &schema.id));
        if let Some((_, other)) = bound_elsewhere {
            return Err(ScimError::invalid_value(format!(
                "schema '{}' is bound to resource type {}; remove it first to bind it to {resource_type}",
                schema.id, other.id
            )));
        }
        let urn = schema.id.clone();
        let previous = match self
            .schemas
            .iter_mut()
            .find(|existing| existing.id.eq_ignore_ascii_case(&urn))
        {
            Some(existing) => Some(std::mem::replace(existing, schema)),
            None => {
                self.schemas.push(schema);
                None
            }
        };
        if let Some(rt) = self.resource_types.get_mut(target) {
            match rt
                .schema_extensions
                .iter_mut()
                .find(|ext| ext.schema.eq_ignore_ascii_case(&urn))
            {
                Some(ext) => {
                    ext.schema = urn;
                    ext.required = required;
                }
                None => rt.schema_extensions.push(SchemaExtension {
                    schema: urn,
                    required,
                }),
            }
        }
        Ok(previous)
    }

    /// Removes a custom extension schema and unbinds it from every resource
    /// type; returns its definition. Values stored under it are the
    /// caller's to remove first (see [`crate::schema::remove_attributes`]).
    ///
    /// The core User and Group schemas and the Enterprise User extension
    /// are built in and cannot be removed (`400 invalidValue`); an unknown
    /// URN is `404`. On error the registry is unchanged.
    pub fn remove_extension(&mut self, urn: &str) -> Result<Schema, ScimError> {
        if urn.eq_ignore_ascii_case(builtin::ENTERPRISE_USER_SCHEMA) {
            return Err(ScimError::invalid_value(format!(
                "schema '{}' is the built-in Enterprise User extension (RFC 7643 section 4.3) and cannot be removed; leave its attributes unset instead",
                builtin::ENTERPRISE_USER_SCHEMA
            )));
        }
        if let Some(rt) = self
            .resource_types
            .iter()
            .find(|rt| rt.schema.eq_ignore_ascii_case(urn))
        {
            return Err(ScimError::invalid_value(format!(
                "schema '{}' is the built-in core schema of resource type {} and cannot be removed",
                rt.schema, rt.id
            )));
        }
        let index = self
            .schemas
            .iter()
            .position(|schema| schema.id.eq_ignore_ascii_case(urn))
            .ok_or_else(|| ScimError::status(404, format!("no schema '{urn}' is declared")))?;
        for rt in &mut self.resource_types {
            rt.schema_extensions
                .retain(|ext| !ext.schema.eq_ignore_ascii_case(urn));
        }
        Ok(self.schemas.remove(index))
    }

    /// The resource type an extension schema binds to: `requested` when the
    /// caller names one (it must exist); otherwise the type it is already
    /// bound to; otherwise the type named by the URN's last `:`-segment
    /// (`...:2.0:User` is User, `...:2.0:Group` is Group, case-insensitively)
    /// when the registry knows it; otherwise User.
    pub fn extension_resource_type(
        &self,
        urn: &str,
        requested: Option<&str>,
    ) -> Result<&ResourceType, ScimError> {
        if let Some(requested) = requested {
            return self
                .resource_type(requested)
                .ok_or_else(|| self.unknown_resource_type(requested));
        }
        if let Some(bound) = self.resource_types.iter().find(|rt| binds(rt, urn)) {
            return Ok(bound);
        }
        let last = urn.rsplit(':').next().unwrap_or_default();
        self.resource_type(last)
            .or_else(|| self.resource_type("User"))
            .ok_or_else(|| self.unknown_resource_type("User"))
    }

    /// Refuses to replace a core schema (User, Group, or that of any
    /// resource type).
    fn check_replaceable(&self, urn: &str) -> Result<(), ScimError> {
        let core = [builtin::USER_SCHEMA, builtin::GROUP_SCHEMA]
            .into_iter()
            .chain(self.resource_types.iter().map(|rt| rt.schema.as_str()))
            .find(|core| core.eq_ignore_ascii_case(urn));
        match core {
            Some(core) => Err(ScimError::invalid_value(format!(
                "schema '{core}' is built in and cannot be replaced; declare custom attributes in an extension schema such as 'urn:ietf:params:scim:schemas:extension:contoso:2.0:User'"
            ))),
            None => Ok(()),
        }
    }

    fn unknown_resource_type(&self, name: &str) -> ScimError {
        let known: Vec<&str> = self
            .resource_types
            .iter()
            .map(|rt| rt.id.as_str())
            .collect();
        ScimError::invalid_value(format!(
            "unknown resource type '{name}'; the server knows {}",
            known.join(", ")
        ))
    }

    /// The core schema of a resource type.
    pub fn core_schema(&self, resource_type: &ResourceType) -> Option<&Schema> {
        self.schema(&resource_type.schema)
    }

    /// The extension schemas bound to a resource type, with their binding.
    pub fn extensions<'r>(
        &'r self,
        resource_type: &'r ResourceType,
    ) -> impl Iterator<Item = (&'r Schema, &'r SchemaExtension)> + 'r {
        resource_type
            .schema_extensions
            .iter()
            .filter_map(|ext| self.schema(&ext.schema).map(|schema| (schema, ext)))
    }

    /// Resolves a path against a resource type.
    ///
    /// A path whose whole text is an extension URN bound to the type resolves
    /// to [`ResolvedPath::Extension`]. Returns `None` for an unknown name;
    /// [`SchemaRegistry::unknown_attribute`] words the error.
    pub fn resolve<'r>(
        &'r self,
        resource_type: &'r ResourceType,
        path: &AttrPath,
    ) -> Option<ResolvedPath<'r>> {
        if path.sub_attribute.is_none() {
            if let Some(schema_prefix) = &path.schema {
                let whole = format!("{schema_prefix}:{}", path.attribute);
                if let Some((schema, _)) = self
                    .extensions(resource_type)
                    .find(|(schema, _)| schema.id.eq_ignore_ascii_case(&whole))
                {
                    return Some(ResolvedPath::Extension(schema));
                }
            }
        }
        let (container, attribute) = match &path.schema {
            None => {
                let core = self.core_schema(resource_type)?;
                let attribute = core.attribute(&path.attribute).or_else(|| {
                    self.common_attributes
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(&path.attribute))
                })?;
                (Container::Core, attribute)
            }
            Some(urn) if urn.eq_ignore_ascii_case(&resource_type.schema) => {
                let core = self.core_schema(resource_type)?;
                (Container::Core, core.attribute(&path.attribute)?)
            }
            Some(urn) => {
                let (schema, _) = self
                    .extensions(resource_type)
                    .find(|(schema, _)| schema.id.eq_ignore_ascii_case(urn))?;
                (
                    Container::Extension(schema.id.as_str()),
                    schema.attribute(&path.attribute)?,
                )
            }
        };
        let sub_attribute = match &path.sub_attribute {
            None => None,
            Some(sub) => Some(attribute.sub_attribute(sub)?),
        };
        Some(ResolvedPath::Attribute(ResolvedAttribute {
            container,
            attribute,
            sub_attribute,
        }))
    }

    /// Resolves a path that must name an attribute (not a whole extension).
    pub fn resolve_attribute<'r>(
        &'r self,
        resource_type: &'r ResourceType,
        path: &AttrPath,
    ) -> Option<ResolvedAttribute<'r>> {
        match self.resolve(resource_type, path)? {
            ResolvedPath::Attribute(resolved) => Some(resolved),
            ResolvedPath::Extension(_) => None,
        }
    }

    /// Every attribute path a resource type declares, canonical and
    /// URN-qualified for extensions: what "did you mean" chooses from and what
    /// the attribute explain table lists.
    pub fn attribute_paths(&self, resource_type: &ResourceType) -> Vec<String> {
        let mut paths = Vec::new();
        let mut push = |prefix: &str, attribute: &Attribute| {
            paths.push(format!("{prefix}{}", attribute.name));
            for sub in &attribute.sub_attributes {
                paths.push(format!("{prefix}{}.{}", attribute.name, sub.name));
            }
        };
        for attribute in &self.common_attributes {
            push("", attribute);
        }
        if let Some(core) = self.core_schema(resource_type) {
            for attribute in &core.attributes {
                push("", attribute);
            }
        }
        for (schema, _) in self.extensions(resource_type) {
            let prefix = format!("{}:", schema.id);
            for attribute in &schema.attributes {
                push(&prefix, attribute);
            }
        }
        paths
    }

    /// `400 invalidFilter` for a never-returned attribute named by a
    /// filter, `sortBy` or `attributes`; `path` is its canonical path.
    pub(crate) fn never_returned_error(path: &str) -> ScimError {
        ScimError::invalid_filter(format!(
            "attribute '{path}' is never returned (returned: never) and cannot be filtered, sorted or selected"
        ))
    }

    /// Every path of a resource type whose values are never returned
    /// (`returned: never`), canonical and URN-qualified for extensions
    /// (`password`, `urn:...:acme:2.0:User:pin`,
    /// `urn:...:acme:2.0:User:badge.secret`): an attribute so declared and
    /// each of its sub-attributes, and each sub-attribute so declared.
    /// What the store keeps out of its lookup index and change payloads.
    pub fn never_returned_paths(&self, resource_type: &ResourceType) -> Vec<String> {
        let mut paths = Vec::new();
        let mut push = |prefix: &str, attribute: &Attribute| {
            let never = attribute.returned == Returned::Never;
            if never {
                paths.push(format!("{prefix}{}", attribute.name));
            }
            for sub in &attribute.sub_attributes {
                if never || sub.returned == Returned::Never {
                    paths.push(format!("{prefix}{}.{}", attribute.name, sub.name));
                }
            }
        };
        for attribute in &self.common_attributes {
            push("", attribute);
        }
        if let Some(core) = self.core_schema(resource_type) {
            for attribute in &core.attributes {
                push("", attribute);
            }
        }
        for (schema, _) in self.extensions(resource_type) {
            let prefix = format!("{}:", schema.id);
            for attribute in &schema.attributes {
                push(&prefix, attribute);
            }
        }
        paths
    }

    /// The detail for an attribute path no schema declares: names the full
    /// path and, when a declared path is close, suggests it.
    pub fn unknown_attribute(&self, resource_type: &ResourceType, path: &str) -> String {
        let mut detail = format!(
            "unknown attribute '{path}': no schema of resource type {} declares it",
            resource_type.id
        );
        if let Some(suggestion) = self.suggest(resource_type, path) {
            detail.push_str(&format!("; did you mean '{suggestion}'?"));
        }
        detail
    }

    /// The declared path closest to `path`, if one is close enough.
    pub fn suggest(&self, resource_type: &ResourceType, path: &str) -> Option<String> {
        // Edit distances cost the product of the lengths: a name this long
        // is no typo of a declared one.
        if path.len() > SUGGEST_MAX_LENGTH {
            return None;
        }
        let wanted = path.to_ascii_lowercase();
        let wanted_leaf = leaf(&wanted);
        self.attribute_paths(resource_type)
            .into_iter()
            .filter_map(|candidate| {
                let lower = candidate.to_ascii_lowercase();
                let whole = strsim::normalized_damerau_levenshtein(&wanted, &lower);
                let same_prefix = prefix(&wanted) == prefix(&lower);
                let leaf_score = if same_prefix {
                    strsim::normalized_damerau_levenshtein(wanted_leaf, leaf(&lower))
                } else {
                    0.0
                };
                let score = whole.max(leaf_score);
                (score >= 0.7).then_some((score, candidate))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| candidate)
    }
}

/// The longest name a "did you mean" is looked for.
const SUGGEST_MAX_LENGTH: usize = 256;

/// Whether a resource type has the extension `urn` bound.
fn binds(resource_type: &ResourceType, urn: &str) -> bool {
    resource_type
        .schema_extensions
        .iter()
        .any(|ext| ext.schema.eq_ignore_ascii_case(urn))
}

/// The part of a path after the URN prefix.
fn leaf(path: &str) -> &str {
    path.rsplit_once(':').map_or(path, |(_, leaf)| leaf)
}

/// The URN prefix of a path, empty for core paths.
fn prefix(path: &str) -> &str {
    path.rsplit_once(':').map_or("", |(prefix, _)| prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use crate::schema::model::AttributeType;

    fn user_type(registry: &SchemaRegistry) -> &ResourceType {
        registry.resource_type("User").unwrap()
    }

    #[test]
    fn resolves_case_insensitively_with_and_without_urn() {
        let registry = SchemaRegistry::builtin();
        let rt = user_type(&registry);
        for text in [
            "USERNAME",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        ] {
            let resolved = registry
                .resolve_attribute(rt, &AttrPath::parse(text).unwrap())
                .unwrap();
            assert_eq!(resolved.canonical_path(), "userName");
        }
        let manager = registry
            .resolve_attribute(
                rt,
                &AttrPath::parse(&format!("{ENTERPRISE_USER_SCHEMA}:Manager.Value")).unwrap(),
            )
            .unwrap();
        assert_eq!(
            manager.canonical_path(),
            format!("{ENTERPRISE_USER_SCHEMA}:manager.value")
        );
        let whole = registry
            .resolve(rt, &AttrPath::parse(ENTERPRISE_USER_SCHEMA).unwrap())
            .unwrap();
        assert!(matches!(whole, ResolvedPath::Extension(s) if s.id == ENTERPRISE_USER_SCHEMA));
        assert!(registry
            .resolve(rt, &AttrPath::parse("urn:foo:bar").unwrap())
            .is_none());
    }

    #[test]
    fn custom_extension_resolves_after_binding() {
        let mut registry = SchemaRegistry::builtin();
        let urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
        registry
            .add_schema(Schema {
                id: urn.to_owned(),
                name: Some("Contoso".to_owned()),
                description: None,
                attributes: vec![Attribute::new("region", AttributeType::String)],
            })
            .unwrap();
        let path = AttrPath::parse(&format!("{urn}:region")).unwrap();
        assert!(registry.resolve(user_type(&registry), &path).is_none());
        registry.bind_extension("User", urn, false).unwrap();
        assert!(registry.resolve(user_type(&registry), &path).is_some());
        let detail = registry.unknown_attribute(user_type(&registry), &format!("{urn}:regoin"));
        assert!(
            detail.contains(&format!("did you mean '{urn}:region'")),
            "{detail}"
        );
    }

    #[test]
    fn suggestions_for_core_typos() {
        let registry = SchemaRegistry::builtin();
        let rt = user_type(&registry);
        assert_eq!(registry.suggest(rt, "usrName").as_deref(), Some("userName"));
        assert_eq!(
            registry.suggest(rt, "name.givenNmae").as_deref(),
            Some("name.givenName")
        );
        assert_eq!(registry.suggest(rt, "zzzzzzzz"), None);
    }

    #[test]
    fn never_returned_paths_of_the_builtin_types() {
        let registry = SchemaRegistry::builtin();
        assert_eq!(
            registry.never_returned_paths(user_type(&registry)),
            ["password"]
        );
        let group = registry.resource_type("Group").unwrap();
        assert!(registry.never_returned_paths(group).is_empty());
        let resolve = |text: &str| {
            registry
                .resolve_attribute(user_type(&registry), &AttrPath::parse(text).unwrap())
                .unwrap()
        };
        assert!(resolve("PASSWORD").is_never_returned());
        assert!(!resolve("userName").is_never_returned());
        let error = resolve(&format!("{USER_SCHEMA}:password"))
            .check_returned()
            .unwrap_err();
        assert_eq!(error.scim_type, Some(crate::ScimType::InvalidFilter));
        assert!(error
            .detail
            .contains("attribute 'password' is never returned"));
    }

    #[test]
    fn rejects_bad_schemas() {
        let mut registry = SchemaRegistry::builtin();
        let bad = |attributes| Schema {
            id: "urn:x:bad".to_owned(),
            name: None,
            description: None,
            attributes,
        };
        let complex_without_subs = Attribute::new("c", AttributeType::Complex);
        let duplicate = vec![
            Attribute::new("a", AttributeType::String),
            Attribute::new("A", AttributeType::Integer),
        ];
        for attributes in [vec![complex_without_subs], duplicate] {
            assert_eq!(
                registry.add_schema(bad(attributes)).unwrap_err().scim_type,
                Some(crate::ScimType::InvalidValue)
            );
        }
        let replace_core = Schema {
            id: USER_SCHEMA.to_owned(),
            name: None,
            description: None,
            attributes: vec![],
        };
        assert!(registry.add_schema(replace_core).is_err());
    }
}
