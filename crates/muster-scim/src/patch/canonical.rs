//! PATCH operations resolved to canonical paths, before anything decides on
//! them.
//!
//! A client can name one attribute in many spellings: `password`,
//! `PASSWORD`, `urn:ietf:params:scim:schemas:core:2.0:User:password`, a
//! path-less value with any of those keys, or the same nested under the
//! core schema URN. Whatever treats some attributes specially (the server
//! hashes `password`, turns `members` into membership rows) must not match
//! spellings; it calls [`canonical_operations`] and then looks at paths
//! only ([`targets`]).
//!
//! After [`canonical_operations`]:
//! - a path-less `add`/`replace` is one operation per key of its value, the
//!   key resolved as a path; keys under the core schema URN count as keys
//!   of the value; a whole extension stays one operation whose path is the
//!   canonical extension URN and whose keys are canonical names;
//! - a path naming the core schema URN with an object value is split the
//!   same way (it means what the path-less value `{"<core URN>": {...}}`
//!   means);
//! - every declared path is canonical: core attributes without a URN,
//!   extension attributes with the canonical extension URN, names in
//!   declared case (value filters are kept as they are);
//! - readOnly keys of a path-less value, which applying ignores, are left
//!   out; `schemas` keys too;
//! - keys no schema declares stay together in one path-less operation,
//!   nested under the core URN where they were, for
//!   [`super::apply_patch_with`] to refuse or capture exactly as before;
//! - what applying refuses (a malformed value, a readOnly path, a filter
//!   on a single-valued attribute, ...) is kept for it to refuse.
//!
//! Applying the result with [`super::apply_patch_with`] gives what
//! applying the original operations gives; see [`canonical_operations`]
//! for the two exceptions.

use serde_json::{Map, Value};

use super::op::{PatchOpKind, PatchOperation};
use crate::error::ScimError;
use crate::path::{AttrPath, PatchPath};
use crate::schema::{
    Container, Mutability, ResolvedAttribute, ResolvedPath, ResourceType, Schema, SchemaRegistry,
};

/// Resolves every operation to canonical paths (see the module
/// documentation), so that an operation on `password` is exactly one whose
/// path is `password`, and one on a group's members exactly one whose path
/// is `members` (with or without a value filter or sub-attribute).
///
/// Refuses (`400 invalidFilter`, naming the operation) a value filter that
/// reads a `returned: never` attribute (`x[secret eq "..."]`): whether it
/// matches would tell what the attribute holds.
///
/// Applying the result gives what applying `operations` gives, with two
/// exceptions, both on purpose:
/// - a path naming the core schema URN (`urn:...:core:2.0:User`) with an
///   object value now sets the attributes in it, as the path-less value
///   `{"urn:...:core:2.0:User": {...}}` does (it used to be an unknown
///   path, or under capture an unmapped value holding, for instance, a
///   clear-text password);
/// - one operation is applied as several, which shows only when it names
///   the same attribute twice (`{"employeeId": "a", "EMPLOYEEID": "b"}`,
///   or a key and the whole extension holding it): an immutable attribute
///   is checked after each part, so setting it and then changing or
///   clearing it again within the operation is refused (never the other
///   way round); and under [`crate::UndeclaredPolicy::Capture`] an
///   undeclared path written twice (two spellings of one complex attribute
///   whose values carry the same undeclared member, `urn:...:x` beside
///   `{"urn:...": {"x": ..}}`) is written twice, the last write winning or
///   merging as a later operation's would, instead of being refused as
///   given twice.
///
/// Error details of [`super::apply_patch_with`] then count the operations
/// returned here, not the client's.
pub fn canonical_operations(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    operations: Vec<PatchOperation>,
) -> Result<Vec<PatchOperation>, ScimError> {
    let mut canonical = Vec::with_capacity(operations.len());
    for (index, operation) in operations.into_iter().enumerate() {
        check_value_filter(registry, resource_type, &operation)
            .map_err(|error| error.context(operation.context(index)))?;
        let mut split = Split {
            registry,
            resource_type,
            kind: operation.op,
            out: &mut canonical,
            residual: None,
        };
        split.operation(operation);
        split.finish();
    }
    Ok(canonical)
}

/// Whether a canonical operation (one returned by [`canonical_operations`])
/// acts on the core or common attribute `canonical_attribute` (`password`,
/// `members`), in whole or through a value filter or sub-attribute.
///
/// Compares exactly: on operations that were not made canonical, use
/// [`canonical_operations`] first.
pub fn targets(operation: &PatchOperation, canonical_attribute: &str) -> bool {
    operation.path.as_ref().is_some_and(|path| {
        path.attribute.schema.is_none() && path.attribute.attribute == canonical_attribute
    })
}

/// Refuses a value filter that reads a never-returned attribute.
fn check_value_filter(
    registry: &SchemaRegistry,
    resource_type: &ResourceType,
    operation: &PatchOperation,
) -> Result<(), ScimError> {
    let Some(path) = &operation.path else {
        return Ok(());
    };
    let Some(filter) = &path.value_filter else {
        return Ok(());
    };
    match registry.resolve(resource_type, &path.attribute) {
        Some(ResolvedPath::Attribute(resolved)) => {
            filter.check_never_returned_element(registry, resource_type, &resolved)
        }
        Some(ResolvedPath::Extension(_)) | None => Ok(()),
    }
}

/// The canonical operations of one client operation, appended to `out`.
struct Split<'a, 'r> {
    registry: &'r SchemaRegistry,
    resource_type: &'r ResourceType,
    kind: PatchOpKind,
    out: &'a mut Vec<PatchOperation>,
    /// The undeclared keys: where their operation sits in `out`, and the
    /// value it will hold (the original value restricted to them).
    residual: Option<(usize, Map<String, Value>)>,
}

impl Split<'_, '_> {
    fn operation(&mut self, operation: PatchOperation) {
        let PatchOperation { op, path, value } = operation;
        match (path, op, value) {
            (None, PatchOpKind::Add | PatchOpKind::Replace, Some(Value::Object(object))) => {
                self.keys(object, None);
            }
            (Some(path), PatchOpKind::Add | PatchOpKind::Replace, Some(Value::Object(object)))
                if self.is_core_schema(&path) =>
            {
                let core = self.resource_type.schema.clone();
                self.keys(object, Some(&core));
            }
            (Some(path), op, value) => self.out.push(PatchOperation {
                op,
                path: Some(self.canonical_path(path)),
                value,
            }),
            // A path-less remove, or a path-less value that is not an
            // object: applying refuses them.
            (None, op, value) => self.out.push(PatchOperation {
                op,
                path: None,
                value,
            }),
        }
    }

    /// Whether a path names the resource type's core schema as a whole.
    fn is_core_schema(&self, path: &PatchPath) -> bool {
        let attribute = &path.attribute;
        path.value_filter.is_none()
            && path.sub_attribute.is_none()
            && attribute.sub_attribute.is_none()
            && attribute.schema.as_deref().is_some_and(|prefix| {
                joined(&self.resource_type.schema, prefix, &attribute.attribute)
            })
    }

    /// The keys of a path-less value, each applied as if it were the
    /// operation's path; `core` is the core URN key they are nested under
    /// (as sent), `None` at the top level.
    fn keys(&mut self, object: Map<String, Value>, core: Option<&str>) {
        for (key, raw) in object {
            if key.eq_ignore_ascii_case("schemas") {
                // Derived from the attributes the resource carries.
                continue;
            }
            if core.is_none() && key.eq_ignore_ascii_case(&self.resource_type.schema) {
                match raw {
                    Value::Object(inner) => self.keys(inner, Some(&key)),
                    // Refused when applied, as a path-less value whose
                    // core URN holds no object.
                    other => self.push(None, Value::Object(Map::from_iter([(key, other)]))),
                }
                continue;
            }
            let resolved = AttrPath::parse(&key)
                .ok()
                .and_then(|path| self.registry.resolve(self.resource_type, &path));
            match resolved {
                None => self.undeclared(core, key, raw),
                Some(ResolvedPath::Extension(schema)) => self.extension(schema, raw),
                Some(ResolvedPath::Attribute(resolved)) => {
                    // As in a POST body, readOnly values are ignored.
                    if !is_read_only(&resolved) {
                        self.push(Some(attribute_path(&resolved)), raw);
                    }
                }
            }
        }
    }

    /// A whole extension: one operation whose path is its URN, keys in
    /// canonical case. Two keys naming one attribute go to two operations,
    /// in order, so that no value is lost.
    fn extension(&mut self, schema: &Schema, raw: Value) {
        let path = urn_path(&schema.id);
        let Value::Object(inner) = raw else {
            // Absent clears the extension; anything else is refused.
            self.push(Some(path), raw);
            return;
        };
        let mut part = Map::new();
        for (key, value) in inner {
            let name = if key.eq_ignore_ascii_case("schemas") {
                key
            } else {
                self.extension_key(schema, &key).unwrap_or(key)
            };
            if part.contains_key(&name) {
                let full = std::mem::take(&mut part);
                self.push(Some(path.clone()), Value::Object(full));
            }
            part.insert(name, value);
        }
        self.push(Some(path), Value::Object(part));
    }

    /// The canonical name of a key inside an extension object (`manager`,
    /// `manager.value`), resolved as applying resolves it.
    fn extension_key(&self, schema: &Schema, key: &str) -> Option<String> {
        let mut path = AttrPath::parse(key).ok()?;
        match &path.schema {
            Some(urn) if !urn.eq_ignore_ascii_case(&schema.id) => return None,
            Some(_) => {}
            None => path.schema = Some(schema.id.clone()),
        }
        let resolved = self.registry.resolve_attribute(self.resource_type, &path)?;
        Some(match resolved.sub_attribute {
            Some(sub) => format!("{}.{}", resolved.attribute.name, sub.name),
            None => resolved.attribute.name.clone(),
        })
    }

    /// Keeps an undeclared key, where it was, in the operation that holds
    /// the undeclared keys (created at the first of them).
    fn undeclared(&mut self, core: Option<&str>, key: String, raw: Value) {
        let (_, residual) = self.residual.get_or_insert_with(|| {
            let index = self.out.len();
            self.out.push(PatchOperation {
                op: self.kind,
                path: None,
                value: None,
            });
            (index, Map::new())
        });
        match core {
            None => {
                residual.insert(key, raw);
            }
            Some(core) => {
                let nested = residual
                    .entry(core.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(nested) = nested {
                    nested.insert(key, raw);
                }
            }
        }
    }

    /// Fills in the operation of the undeclared keys.
    fn finish(self) {
        if let Some((index, residual)) = self.residual {
            if let Some(operation) = self.out.get_mut(index) {
                operation.value = Some(Value::Object(residual));
            }
        }
    }

    fn push(&mut self, attribute: Option<AttrPath>, value: Value) {
        self.out.push(PatchOperation {
            op: self.kind,
            path: attribute.map(|attribute| PatchPath {
                attribute,
                value_filter: None,
                sub_attribute: None,
            }),
            value: Some(value),
        });
    }

    /// A path with its attribute and sub-attribute names canonical; paths
    /// no schema declares are kept as sent.
    fn canonical_path(&self, path: PatchPath) -> PatchPath {
        match self.registry.resolve(self.resource_type, &path.attribute) {
            None => path,
            Some(ResolvedPath::Extension(schema)) => PatchPath {
                attribute: urn_path(&schema.id),
                ..path
            },
            Some(ResolvedPath::Attribute(resolved)) => PatchPath {
                attribute: attribute_path(&resolved),
                value_filter: path.value_filter,
                sub_attribute: path.sub_attribute.map(|name| {
                    resolved
                        .attribute
                        .sub_attribute(&name)
                        .map_or(name, |sub| sub.name.clone())
                }),
            },
        }
    }
}

/// The canonical path of a resolved attribute: core and common attributes
/// without a URN, extension attributes with their extension's.
fn attribute_path(resolved: &ResolvedAttribute<'_>) -> AttrPath {
    AttrPath {
        schema: match resolved.container {
            Container::Core => None,
            Container::Extension(urn) => Some(urn.to_owned()),
        },
        attribute: resolved.attribute.name.clone(),
        sub_attribute: resolved.sub_attribute.map(|sub| sub.name.clone()),
    }
}

/// The path naming a whole extension: its URN, split where
/// [`AttrPath::parse`] splits it.
fn urn_path(urn: &str) -> AttrPath {
    match urn.rsplit_once(':') {
        Some((prefix, last)) => AttrPath {
            schema: Some(prefix.to_owned()),
            attribute: last.to_owned(),
            sub_attribute: None,
        },
        None => AttrPath::new(urn),
    }
}

fn is_read_only(resolved: &ResolvedAttribute<'_>) -> bool {
    resolved.attribute.mutability == Mutability::ReadOnly
        || resolved
            .sub_attribute
            .is_some_and(|sub| sub.mutability == Mutability::ReadOnly)
}

/// Whether `whole` is `prefix:rest`, case-insensitively.
fn joined(whole: &str, prefix: &str, rest: &str) -> bool {
    whole.len() == prefix.len() + 1 + rest.len()
        && whole
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        && whole.get(prefix.len()..=prefix.len()) == Some(":")
        && whole
            .get(prefix.len() + 1..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::PatchOp;
    use crate::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn parse(operations: Value) -> Vec<PatchOperation> {
        let body = json!({"schemas": [super::super::PATCH_OP_URN], "Operations": operations});
        PatchOp::from_json(&body).unwrap().operations
    }

    /// The canonical operations of `operations` on a `resource_type`, as JSON.
    fn check(resource_type: &str, operations: Value, expected: Value) {
        let registry = SchemaRegistry::builtin();
        let rt = registry.resource_type(resource_type).unwrap();
        let canonical = canonical_operations(&registry, rt, parse(operations.clone())).unwrap();
        let json: Vec<Value> = canonical.iter().map(PatchOperation::to_json).collect();
        assert_eq!(Value::Array(json), expected, "{operations}");
    }

    #[test]
    fn targets_compares_canonical_paths_exactly() {
        let registry = SchemaRegistry::builtin();
        let rt = registry.resource_type("User").unwrap();
        for path in ["PASSWORD", &format!("{USER_SCHEMA}:password")] {
            let operations = parse(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert!(!targets(&operations[0], "password"), "{path}");
            let canonical = canonical_operations(&registry, rt, operations).unwrap();
            assert!(targets(&canonical[0], "password"), "{path}");
            assert!(!targets(&canonical[0], "Password"), "{path}");
        }
        let pathless = parse(json!([{"op": "add", "value": {"password": "x"}}]));
        assert!(!targets(&pathless[0], "password"));
    }

    #[test]
    fn undeclared_keys_stay_together_where_the_first_was() {
        let core = USER_SCHEMA.to_uppercase();
        check(
            "User",
            json!([{"op": "add", "value": {
                "title": "T",
                "foo": 1,
                (core.clone()): {"bar": 2, "nickName": "N", (USER_SCHEMA): {"password": "x"}},
                "FOO": 3
            }}]),
            json!([
                {"op": "add", "path": "title", "value": "T"},
                {"op": "add", "value": {
                    "foo": 1,
                    (core): {"bar": 2, (USER_SCHEMA): {"password": "x"}},
                    "FOO": 3
                }},
                {"op": "add", "path": "nickName", "value": "N"}
            ]),
        );
    }

    #[test]
    fn group_members_in_every_spelling() {
        check(
            "Group",
            json!([
                {"op": "add", "value": {(GROUP_SCHEMA): {"MEMBERS": [{"value": "a"}]}}},
                {"op": "add", "path": GROUP_SCHEMA.to_lowercase(), "value": {"Members": []}},
                {"op": "remove", "path": format!("{GROUP_SCHEMA}:members[value eq \"a\"]")}
            ]),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "a"}]},
                {"op": "add", "path": "members", "value": []},
                {"op": "remove", "path": "members[value eq \"a\"]"}
            ]),
        );
    }

    #[test]
    fn whole_extension_paths() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(urn_path(urn).to_string(), urn);
        assert_eq!(urn_path("plain").to_string(), "plain");
        assert!(joined(
            USER_SCHEMA,
            "URN:ietf:params:scim:schemas:core:2.0",
            "user"
        ));
        assert!(!joined(
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.1",
            "User"
        ));
        assert!(!joined(
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.0",
            "Users"
        ));
    }
}
