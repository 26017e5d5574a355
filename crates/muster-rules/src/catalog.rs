//! The catalog: the contact-center objects rules refer to by name.
//!
//! Names are unique per kind case-insensitively (Unicode lower case) and
//! are looked up the same way; results always carry the catalog's spelling.
//!
//! Every item has a stable id. It is given as `id`, or derived from the
//! name by [`slug`]: lower case, each run of characters other than letters
//! and digits turned into one `-`, none at either end (`"Manila Voice"` is
//! `manila-voice`, `"CX 1"` is `cx-1`). A given id must already be in that
//! form. Ids are unique per kind; the sync engine keys platform objects by
//! them, so to rename an item without it becoming a new one, keep its old id
//! (`{ name = "Manila Voice Team", id = "manila-voice" }`).

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;

use crate::error::{did_you_mean, ErrorKind};
use crate::node::{Node, NodeValue, Place, Reader};

/// The most items of one kind a catalog may hold.
pub const MAX_CATALOG_ITEMS: usize = 10_000;

/// The kinds of catalog objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    /// A partition of the organisation that scopes what a role grants.
    Division,
    /// A named permission set, granted in a division.
    Role,
    /// A routing skill.
    Skill,
    /// A routing language.
    Language,
    /// A workforce-management unit, in a division.
    ManagementUnit,
    /// A billed seat.
    License,
}

impl ObjectKind {
    /// The kind in words, for messages (`management unit`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Division => "division",
            ObjectKind::Role => "role",
            ObjectKind::Skill => "skill",
            ObjectKind::Language => "language",
            ObjectKind::ManagementUnit => "management unit",
            ObjectKind::License => "license",
        }
    }

    /// The key of its list in the `[catalog]` table.
    pub fn section(self) -> &'static str {
        match self {
            ObjectKind::Division => "divisions",
            ObjectKind::Role => "roles",
            ObjectKind::Skill => "skills",
            ObjectKind::Language => "languages",
            ObjectKind::ManagementUnit => "management_units",
            ObjectKind::License => "licenses",
        }
    }
}

/// One catalog item: its stable id and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogItem {
    /// The stable id (given, or derived from the name by [`slug`]).
    pub id: String,
    /// The name as the catalog spells it.
    pub name: String,
}

/// A role and the license it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    /// The stable id.
    pub id: String,
    /// The name as the catalog spells it.
    pub name: String,
    /// The license a user holding the role needs, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

/// A management unit and the division it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagementUnit {
    /// The stable id.
    pub id: String,
    /// The name as the catalog spells it.
    pub name: String,
    /// The division of the unit.
    pub division: String,
}

/// Names of one kind, for lookup.
#[derive(Debug, Clone, Default)]
struct Names {
    /// Lower-cased name to index.
    by_name: HashMap<String, u32>,
    /// The names in catalog order.
    names: Vec<String>,
}

impl Names {
    fn find(&self, name: &str) -> Option<u32> {
        self.by_name.get(&name.trim().to_lowercase()).copied()
    }
}

/// The catalog of one rule set. Built only by parsing a document, so every
/// cross-reference in it (a role's license, a unit's division) exists.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    divisions: Vec<CatalogItem>,
    roles: Vec<Role>,
    skills: Vec<CatalogItem>,
    languages: Vec<CatalogItem>,
    management_units: Vec<ManagementUnit>,
    licenses: Vec<CatalogItem>,
    /// Per role, the index of its license.
    pub(crate) role_license: Vec<Option<u32>>,
    names: HashMap<ObjectKind, Names>,
}

impl Catalog {
    /// The divisions, in document order.
    pub fn divisions(&self) -> &[CatalogItem] {
        &self.divisions
    }

    /// The roles, in document order.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The routing skills, in document order.
    pub fn skills(&self) -> &[CatalogItem] {
        &self.skills
    }

    /// The routing languages, in document order.
    pub fn languages(&self) -> &[CatalogItem] {
        &self.languages
    }

    /// The management units, in document order.
    pub fn management_units(&self) -> &[ManagementUnit] {
        &self.management_units
    }

    /// The licenses, in document order.
    pub fn licenses(&self) -> &[CatalogItem] {
        &self.licenses
    }

    /// The item of `kind` named `name` (case-insensitively): its index.
    pub(crate) fn find(&self, kind: ObjectKind, name: &str) -> Option<u32> {
        self.names.get(&kind).and_then(|names| names.find(name))
    }

    /// The catalog's spelling of item `index` of `kind`.
    pub(crate) fn name(&self, kind: ObjectKind, index: u32) -> &str {
        self.names
            .get(&kind)
            .and_then(|names| names.names.get(index as usize))
            .map_or("", String::as_str)
    }

    /// The message for a name the catalog lacks, with a "did you mean".
    pub(crate) fn unknown(&self, kind: ObjectKind, name: &str) -> String {
        let candidates = self
            .names
            .get(&kind)
            .map(|names| names.names.as_slice())
            .unwrap_or_default();
        let mut message = format!(
            "unknown {} '{name}' (not in catalog.{})",
            kind.as_str(),
            kind.section()
        );
        message.push_str(&did_you_mean(name, candidates.iter().map(String::as_str)));
        message
    }

    /// Resolves a reference by name, recording an error when it is unknown.
    pub(crate) fn resolve(
        &self,
        reader: &mut Reader<'_>,
        kind: ObjectKind,
        node: &Node,
        place: &Place,
    ) -> Option<u32> {
        let name = reader.name(node, place)?;
        let found = self.find(kind, name);
        if found.is_none() {
            reader.error(
                ErrorKind::UnknownName,
                place,
                node.span.as_ref(),
                self.unknown(kind, name),
            );
        }
        found
    }
}

/// The id derived from a name: lower case, every run of characters other
/// than letters and digits turned into one `-`, none at the ends.
///
/// `slug("Manila Voice") == "manila-voice"`, `slug("CX 1") == "cx-1"`,
/// `slug("Español (MX)") == "español-mx"`.
pub fn slug(name: &str) -> String {
    let mut id = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if pending_dash && !id.is_empty() {
                id.push('-');
            }
            pending_dash = false;
            id.extend(c.to_lowercase());
        } else {
            pending_dash = true;
        }
    }
    id
}

/// One item as read, before cross-references are resolved.
struct RawItem<'n> {
    name: String,
    id: String,
    span: Option<Range<usize>>,
    place: Place,
    /// `license` of a role, `division` of a unit.
    reference: Option<&'n Node>,
}

/// Reads `[catalog]`.
pub(crate) fn read_catalog(reader: &mut Reader<'_>, node: Option<&Node>) -> Catalog {
    let mut catalog = Catalog::default();
    let place = Place::root().key("catalog");
    let Some(node) = node else {
        return catalog;
    };
    let sections = [
        ObjectKind::Division,
        ObjectKind::Role,
        ObjectKind::Skill,
        ObjectKind::Language,
        ObjectKind::ManagementUnit,
        ObjectKind::License,
    ]
    .map(ObjectKind::section);
    let Some(fields) = reader.table(node, &place, &sections) else {
        return catalog;
    };
    let mut read = |kind: ObjectKind| -> Vec<RawItem<'_>> {
        let section_place = place.key(kind.section());
        let Some(list) = fields.get(kind.section()) else {
            return Vec::new();
        };
        let Some(items) = reader.array(list, &section_place, MAX_CATALOG_ITEMS) else {
            return Vec::new();
        };
        let items: Vec<RawItem<'_>> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| read_item(reader, kind, item, &section_place.index(index)))
            .collect();
        check_unique(reader, kind, &items);
        items
    };
    let licenses = read(ObjectKind::License);
    let divisions = read(ObjectKind::Division);
    let roles = read(ObjectKind::Role);
    let units = read(ObjectKind::ManagementUnit);
    let skills = read(ObjectKind::Skill);
    let languages = read(ObjectKind::Language);

    catalog.licenses = register(&mut catalog.names, ObjectKind::License, &licenses);
    catalog.divisions = register(&mut catalog.names, ObjectKind::Division, &divisions);
    catalog.skills = register(&mut catalog.names, ObjectKind::Skill, &skills);
    catalog.languages = register(&mut catalog.names, ObjectKind::Language, &languages);

    for item in &roles {
        let license = item.reference.and_then(|node| {
            let place = item.place.key("license");
            catalog.resolve(reader, ObjectKind::License, node, &place)
        });
        catalog.role_license.push(license);
        catalog.roles.push(Role {
            id: item.id.clone(),
            name: item.name.clone(),
            license: license.map(|index| catalog.name(ObjectKind::License, index).to_owned()),
        });
    }
    register(&mut catalog.names, ObjectKind::Role, &roles);

    for item in &units {
        let division = match item.reference {
            Some(node) => {
                let place = item.place.key("division");
                catalog.resolve(reader, ObjectKind::Division, node, &place)
            }
            None => {
                reader.error(
                    ErrorKind::MissingKey,
                    &item.place,
                    item.span.as_ref(),
                    format!(
                        "management unit '{}' needs a division: {{ name = \"{}\", division = \"...\" }}",
                        item.name, item.name
                    ),
                );
                None
            }
        };
        catalog.management_units.push(ManagementUnit {
            id: item.id.clone(),
            name: item.name.clone(),
            division: division
                .map(|index| catalog.name(ObjectKind::Division, index).to_owned())
                .unwrap_or_default(),
        });
    }
    register(&mut catalog.names, ObjectKind::ManagementUnit, &units);
    catalog
}

fn register(
    names: &mut HashMap<ObjectKind, Names>,
    kind: ObjectKind,
    items: &[RawItem<'_>],
) -> Vec<CatalogItem> {
    let index = names.entry(kind).or_default();
    for item in items {
        let position = u32::try_from(index.names.len()).unwrap_or(u32::MAX);
        index
            .by_name
            .entry(item.name.to_lowercase())
            .or_insert(position);
        index.names.push(item.name.clone());
    }
    items
        .iter()
        .map(|item| CatalogItem {
            id: item.id.clone(),
            name: item.name.clone(),
        })
        .collect()
}

fn read_item<'n>(
    reader: &mut Reader<'_>,
    kind: ObjectKind,
    node: &'n Node,
    place: &Place,
) -> Option<RawItem<'n>> {
    let reference_key = match kind {
        ObjectKind::Role => Some("license"),
        ObjectKind::ManagementUnit => Some("division"),
        ObjectKind::Division | ObjectKind::Skill | ObjectKind::Language | ObjectKind::License => {
            None
        }
    };
    let (name_node, id_node, reference) = match &node.value {
        NodeValue::String(_) => (node, None, None),
        NodeValue::Table(_) => {
            let mut allowed = vec!["name", "id"];
            allowed.extend(reference_key);
            let fields = reader.table(node, place, &allowed)?;
            let Some(name) = fields.get("name") else {
                reader.error(
                    ErrorKind::MissingKey,
                    place,
                    node.span.as_ref(),
                    format!("a {} needs a name", kind.as_str()),
                );
                return None;
            };
            (
                name,
                fields.get("id"),
                reference_key.and_then(|key| fields.get(key)),
            )
        }
        _ => {
            reader.expected(
                place,
                node,
                &format!("a {} name or a table with its name", kind.as_str()),
            );
            return None;
        }
    };
    let name_place = if matches!(node.value, NodeValue::Table(_)) {
        place.key("name")
    } else {
        place.clone()
    };
    let name = reader.name(name_node, &name_place)?.to_owned();
    let id = match id_node {
        None => {
            let id = slug(&name);
            if id.is_empty() {
                reader.error(
                    ErrorKind::InvalidValue,
                    &name_place,
                    name_node.span.as_ref(),
                    format!(
                        "no id can be derived from '{name}' (it has no letters or digits); give one: {{ name = \"{name}\", id = \"...\" }}"
                    ),
                );
                return None;
            }
            id
        }
        Some(id_node) => {
            let id_place = place.key("id");
            let id = reader.string(id_node, &id_place)?;
            if id.is_empty() || slug(id) != id {
                let proposal = slug(id);
                let hint = if proposal.is_empty() {
                    String::new()
                } else {
                    format!(" such as '{proposal}'")
                };
                reader.error(
                    ErrorKind::InvalidValue,
                    &id_place,
                    id_node.span.as_ref(),
                    format!(
                        "an id is lower-case letters and digits in runs joined by single '-'{hint}; got '{id}'"
                    ),
                );
                return None;
            }
            id.to_owned()
        }
    };
    Some(RawItem {
        name,
        id,
        span: node.span.clone(),
        place: place.clone(),
        reference,
    })
}

/// Refuses two items with the same name (case-insensitively) or id.
fn check_unique(reader: &mut Reader<'_>, kind: ObjectKind, items: &[RawItem<'_>]) {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (position, item) in items.iter().enumerate() {
        if let Some(first) = names.get(&item.name.to_lowercase()).copied() {
            let message = duplicate_message(reader, kind, "name", &item.name, items, first);
            reader.error(
                ErrorKind::Duplicate,
                &item.place,
                item.span.as_ref(),
                message,
            );
            continue;
        }
        names.insert(item.name.to_lowercase(), position);
        if let Some(first) = ids.get(item.id.as_str()).copied() {
            let message = duplicate_message(reader, kind, "id", &item.id, items, first);
            reader.error(
                ErrorKind::Duplicate,
                &item.place,
                item.span.as_ref(),
                message,
            );
            continue;
        }
        ids.insert(&item.id, position);
    }
}

fn duplicate_message(
    reader: &Reader<'_>,
    kind: ObjectKind,
    what: &str,
    value: &str,
    items: &[RawItem<'_>],
    first: usize,
) -> String {
    let earlier = items.get(first);
    let at = earlier
        .and_then(|item| reader.location(item.span.as_ref()))
        .map(|location| format!(" on line {}", location.line))
        .unwrap_or_default();
    let earlier_field = earlier.map(|item| item.place.field.as_str()).unwrap_or("");
    let earlier_name = earlier.map(|item| item.name.as_str()).unwrap_or("");
    let hint = if what == "id" {
        "; give one of them an explicit, different id"
    } else {
        " (names are case-insensitive)"
    };
    format!(
        "duplicate {} {what} '{value}': {earlier_field}{at} ('{earlier_name}') has it already{hint}",
        kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let table = [
            ("Manila Voice", "manila-voice"),
            ("CX 1", "cx-1"),
            ("  Tier--1  Agents ", "tier-1-agents"),
            ("Español (MX)", "español-mx"),
            ("***", ""),
            ("QUALITY_Evaluator", "quality-evaluator"),
        ];
        for (name, expected) in table {
            assert_eq!(slug(name), expected, "{name}");
        }
    }
}
