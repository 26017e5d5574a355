//! The attribute explain table: every attribute path each resource type
//! declares (core, enterprise, custom), how it is used, and every captured
//! undeclared path.

use std::collections::HashMap;

use muster_scim::{AttrPath, Attribute, ResourceType, SchemaRegistry};
use muster_store::{AttributeUsage, SchemaRecord};
use serde::Serialize;

/// One row of the attribute explain table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeRow {
    /// The resource type.
    pub resource_type: String,
    /// The attribute path: canonical and URN-qualified for extension
    /// attributes; for captured undeclared values, the path as sent.
    pub path: String,
    /// Whether a schema declares it (`false`: captured under the `capture`
    /// policy, never returned to SCIM clients).
    pub declared: bool,
    /// The declaring schema's URN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The attribute type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Whether it is multi-valued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_valued: Option<bool>,
    /// Whether filters on it use an index: always for core and enterprise
    /// attributes, for custom ones when declared searchable.
    pub indexed: bool,
    /// How many resources hold a value there.
    pub holders: u64,
    /// The client whose write last set a value there.
    pub last_client: Option<String>,
    /// When, RFC 3339.
    pub last_set: Option<String>,
}

/// The explain table: every declared attribute path of every resource type
/// (core, enterprise, custom), with how it is used, then every captured
/// undeclared path.
pub fn explain(
    registry: &SchemaRegistry,
    usage: &[AttributeUsage],
    schemas: &[SchemaRecord],
) -> Vec<AttributeRow> {
    let mut by_path: HashMap<(String, String), &AttributeUsage> = HashMap::new();
    for row in usage.iter().filter(|row| row.declared) {
        by_path.insert(
            (
                row.resource_type.to_ascii_lowercase(),
                row.path.to_ascii_lowercase(),
            ),
            row,
        );
    }
    let mut rows = Vec::new();
    for rt in registry.resource_types() {
        for path in registry.attribute_paths(rt) {
            let attribute = declared_attribute(registry, rt, &path);
            let used = by_path.get(&(rt.id.to_ascii_lowercase(), path.to_ascii_lowercase()));
            rows.push(AttributeRow {
                resource_type: rt.id.clone(),
                schema: Some(declaring_schema(registry, rt, &path)),
                r#type: attribute.map(|a| a.kind.as_str().to_owned()),
                multi_valued: attribute.map(|a| a.multi_valued),
                holders: used.map_or(0, |u| u.holders),
                last_client: used.and_then(|u| u.last_client.clone()),
                last_set: used.and_then(|u| u.last_set.clone()),
                declared: true,
                indexed: is_indexed(schemas, &path),
                path,
            });
        }
    }
    rows.extend(
        usage
            .iter()
            .filter(|row| !row.declared)
            .map(|row| AttributeRow {
                resource_type: row.resource_type.clone(),
                path: row.path.clone(),
                declared: false,
                indexed: false,
                schema: None,
                r#type: None,
                multi_valued: None,
                holders: row.holders,
                last_client: row.last_client.clone(),
                last_set: row.last_set.clone(),
            }),
    );
    rows
}

/// Whether a declared path's values are indexed: those of a custom
/// extension only when its top-level attribute is searchable.
fn is_indexed(schemas: &[SchemaRecord], path: &str) -> bool {
    let Some(record) = schemas.iter().find(|record| {
        path.len() > record.urn.len()
            && path
                .get(..record.urn.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(&record.urn))
    }) else {
        return true;
    };
    let attribute = path
        .get(record.urn.len() + 1..)
        .unwrap_or_default()
        .split('.')
        .next()
        .unwrap_or_default();
    record
        .searchable
        .iter()
        .any(|name| name.eq_ignore_ascii_case(attribute))
}

fn declared_attribute<'r>(
    registry: &'r SchemaRegistry,
    rt: &'r ResourceType,
    path: &str,
) -> Option<&'r Attribute> {
    let path = AttrPath::parse(path).ok()?;
    registry
        .resolve_attribute(rt, &path)
        .map(|resolved| resolved.target())
}

fn declaring_schema(registry: &SchemaRegistry, rt: &ResourceType, path: &str) -> String {
    registry
        .extensions(rt)
        .map(|(schema, _)| schema.id.as_str())
        .find(|urn| {
            path.len() > urn.len()
                && path
                    .get(..urn.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(urn))
        })
        .unwrap_or(&rt.schema)
        .to_owned()
}
