//! The rule set: the catalog, the rules, the tables and the defaults, with
//! every name resolved and every `when` parsed once (reading is in `read`);
//! parsing entry points, and the document written back as JSON.

use std::collections::HashMap;

use muster_scim::filter::{CompiledFilter, FilterPaths};
use muster_scim::{AttrPath, Filter};
use serde_json::{json, Map, Value};

use crate::catalog::{Catalog, ObjectKind};
use crate::error::{ErrorKind, Location, RuleError, RuleErrors};
use crate::node::{Node, Reader};

/// The largest document accepted, in bytes (and the largest CSV file).
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// The most rules (and, separately, tables) a document may hold.
pub const MAX_RULES: usize = 10_000;
/// The most rows one table may hold (inline and CSV together).
pub const MAX_TABLE_ROWS: usize = 100_000;
/// The most entries in one list of a rule (grants, skills, ...).
pub const MAX_LIST_ENTRIES: usize = 1_000;
/// The highest routing proficiency.
pub const MAX_PROFICIENCY: u8 = 5;
/// The id entitlements from `[defaults]` carry as their rule; no rule may
/// take it.
pub const DEFAULTS_RULE: &str = "defaults";

/// The format of a rule-set document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML: the format admins write, with comments.
    Toml,
    /// JSON: the same structure, as the admin API may send it.
    Json,
}

impl Format {
    /// The format of `text`: JSON when its first character other than
    /// white space is `{`, which cannot start a TOML document; else TOML.
    pub fn detect(text: &str) -> Format {
        if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

/// What a rule (or the defaults, or a table row) gives, names resolved to
/// catalog indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Grants {
    /// (role, division).
    pub(crate) roles: Vec<(u32, u32)>,
    /// (skill, proficiency).
    pub(crate) skills: Vec<(u32, u8)>,
    /// (language, proficiency).
    pub(crate) languages: Vec<(u32, u8)>,
    pub(crate) licenses: Vec<u32>,
    pub(crate) management_unit: Option<u32>,
    pub(crate) home_division: Option<u32>,
    /// (role, division or every division).
    pub(crate) remove_roles: Vec<(u32, Option<u32>)>,
    pub(crate) remove_skills: Vec<u32>,
    pub(crate) remove_languages: Vec<u32>,
    pub(crate) remove_licenses: Vec<u32>,
}

/// A parsed `when`.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) text: String,
    pub(crate) filter: Filter,
    pub(crate) location: Option<Location>,
    /// Where it is in the document (`rules[2].when`).
    pub(crate) field: String,
}

/// A condition rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i64,
    pub(crate) when: Option<Condition>,
    pub(crate) grants: Grants,
    pub(crate) index: usize,
}

/// What a table's rows give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableSets {
    ManagementUnit,
    HomeDivision,
    Role { division: u32 },
    Skill { proficiency: u8 },
    Language { proficiency: u8 },
    License,
}

impl TableSets {
    /// The catalog kind the row values name.
    pub(crate) fn kind(self) -> ObjectKind {
        match self {
            TableSets::ManagementUnit => ObjectKind::ManagementUnit,
            TableSets::HomeDivision => ObjectKind::Division,
            TableSets::Role { .. } => ObjectKind::Role,
            TableSets::Skill { .. } => ObjectKind::Skill,
            TableSets::Language { .. } => ObjectKind::Language,
            TableSets::License => ObjectKind::License,
        }
    }

    /// The `sets` keyword.
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            TableSets::ManagementUnit => "management_unit",
            TableSets::HomeDivision => "home_division",
            TableSets::Role { .. } => "role",
            TableSets::Skill { .. } => "skill",
            TableSets::Language { .. } => "language",
            TableSets::License => "license",
        }
    }

    /// What one row gives.
    pub(crate) fn grants(self, object: u32) -> Grants {
        let mut grants = Grants::default();
        match self {
            TableSets::ManagementUnit => grants.management_unit = Some(object),
            TableSets::HomeDivision => grants.home_division = Some(object),
            TableSets::Role { division } => grants.roles.push((object, division)),
            TableSets::Skill { proficiency } => grants.skills.push((object, proficiency)),
            TableSets::Language { proficiency } => grants.languages.push((object, proficiency)),
            TableSets::License => grants.licenses.push(object),
        }
        grants
    }
}

/// The `sets` keywords of a table.
pub(crate) const SETS: [&str; 6] = [
    "management_unit",
    "home_division",
    "role",
    "skill",
    "language",
    "license",
];

/// One row of a table: the key as written and what it gives.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) key: String,
    pub(crate) object: u32,
    pub(crate) grants: Grants,
}

/// A table rule: an attribute's value looked up in rows.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i64,
    pub(crate) when: Option<Condition>,
    pub(crate) key: AttrPath,
    pub(crate) key_location: Option<Location>,
    /// Where the key is in the document (`tables[0].key`).
    pub(crate) key_field: String,
    pub(crate) sets: TableSets,
    pub(crate) case_sensitive: bool,
    pub(crate) rows: Vec<Row>,
    /// Normalised key ([`Table::normalize`]) to row.
    pub(crate) index: HashMap<String, usize>,
    pub(crate) position: usize,
}

impl Table {
    /// The form keys are compared in: trimmed, and lower-cased unless the
    /// table is case-sensitive.
    pub(crate) fn normalize(&self, key: &str) -> String {
        normalize_key(key, self.case_sensitive)
    }
}

pub(crate) fn normalize_key(key: &str, case_sensitive: bool) -> String {
    let trimmed = key.trim();
    if case_sensitive {
        trimmed.to_owned()
    } else {
        trimmed.to_lowercase()
    }
}

/// A parsed, self-consistent rule set: the catalog, the rules in document
/// order, the tables, and the defaults.
///
/// Parsing checks everything the document alone can tell (layout, types,
/// duplicate names and ids, references to the catalog, `when` syntax);
/// [`RuleSet::validate`] checks what needs the server's context (declared
/// attributes, existing groups).
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub(crate) catalog: Catalog,
    pub(crate) rules: Vec<Rule>,
    pub(crate) tables: Vec<Table>,
    pub(crate) defaults: Option<Grants>,
    /// Which rules can match which values, so evaluation tests only those.
    pub(crate) index: crate::index::RuleIndex,
    /// The `when` of every rule and table compiled over their shared paths,
    /// so that evaluating a user resolves and looks up each path once.
    pub(crate) compiled: Compiled,
}

/// The conditions of a rule set compiled for evaluation: each distinct
/// attribute path of every `when` numbered once ([`FilterPaths`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Compiled {
    pub(crate) paths: FilterPaths,
    /// Per rule, its compiled `when` (`None`: it has none).
    pub(crate) rules: Vec<Option<CompiledFilter>>,
    /// Per table, its compiled `when`.
    pub(crate) tables: Vec<Option<CompiledFilter>>,
}

impl Compiled {
    pub(crate) fn new(rules: &[Rule], tables: &[Table]) -> Self {
        let mut paths = FilterPaths::new();
        let mut compile =
            |when: &Option<Condition>| when.as_ref().map(|when| paths.compile(&when.filter));
        let rules = rules.iter().map(|rule| compile(&rule.when)).collect();
        let tables = tables.iter().map(|table| compile(&table.when)).collect();
        Compiled {
            paths,
            rules,
            tables,
        }
    }
}

impl RuleSet {
    /// Parses a document (TOML or JSON, by [`Format::detect`]) that reads no
    /// files: a table with `csv` is an error.
    pub fn parse(text: &str) -> Result<RuleSet, RuleErrors> {
        Self::parse_with_files(text, &|name: &str| {
            Err(format!(
                "'{name}' is a file, and this rule set was given without its files; inline the rows (rows = {{ ... }})"
            ))
        })
    }

    /// Parses a document whose tables may read CSV files: `read` is given
    /// the file name as written and returns the file's text, or why it cannot.
    ///
    /// The crate does no I/O: the caller (the CLI) reads the files, relative
    /// to the document's directory, or refuses (the admin API).
    pub fn parse_with_files(
        text: &str,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<RuleSet, RuleErrors> {
        Self::parse_as(text, Format::detect(text), read)
    }

    /// Parses a document in the given format.
    pub fn parse_as(
        text: &str,
        format: Format,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<RuleSet, RuleErrors> {
        let syntax = |message: String, location: Option<Location>| {
            RuleErrors(vec![RuleError {
                kind: ErrorKind::Syntax,
                rule: None,
                location,
                field: String::new(),
                message,
            }])
        };
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(syntax(
                format!(
                    "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} are allowed",
                    text.len()
                ),
                None,
            ));
        }
        let (root, mut reader) = match format {
            Format::Toml => match Node::from_toml(text) {
                Ok(root) => (root, Reader::new(Some(text))),
                Err((message, span)) => {
                    let reader = Reader::new(Some(text));
                    let location = reader.location(span.as_ref());
                    return Err(syntax(format!("not valid TOML: {message}"), location));
                }
            },
            Format::Json => match serde_json::from_str::<Value>(text) {
                Ok(value) => (Node::from_json(&value), Reader::new(None)),
                Err(error) => {
                    let location = Location {
                        file: None,
                        line: error.line(),
                        column: error.column(),
                    };
                    return Err(syntax(format!("not valid JSON: {error}"), Some(location)));
                }
            },
        };
        let rule_set = crate::read::read_document(&mut reader, &root, read);
        let mut errors = reader.errors;
        match rule_set {
            Some(rule_set) if errors.is_empty() => Ok(rule_set),
            _ => {
                errors.sort_by_key(|error| {
                    error
                        .location
                        .as_ref()
                        .filter(|location| location.file.is_none())
                        .map_or((usize::MAX, 0), |location| (location.line, location.column))
                });
                Err(RuleErrors(errors))
            }
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The ids of the rules and then of the tables, each in document order.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules
            .iter()
            .map(|rule| rule.id.as_str())
            .chain(self.tables.iter().map(|table| table.id.as_str()))
            .collect()
    }

    /// The document as JSON, self-contained: CSV rows inlined, ids and
    /// priorities written out. It parses back ([`RuleSet::parse`]) to a rule
    /// set that evaluates the same; what the store keeps as a version.
    pub fn to_json(&self) -> Value {
        let catalog = &self.catalog;
        let item = |id: &str, name: &str| json!({"name": name, "id": id});
        let mut document = Map::new();
        document.insert(
            "catalog".to_owned(),
            json!({
                "divisions": catalog.divisions().iter().map(|d| item(&d.id, &d.name)).collect::<Vec<_>>(),
                "licenses": catalog.licenses().iter().map(|l| item(&l.id, &l.name)).collect::<Vec<_>>(),
                "roles": catalog.roles().iter().map(|role| {
                    let mut value = item(&role.id, &role.name);
                    if let (Some(license), Some(object)) = (&role.license, value.as_object_mut()) {
                        object.insert("license".to_owned(), json!(license));
                    }
                    value
                }).collect::<Vec<_>>(),
                "skills": catalog.skills().iter().map(|s| item(&s.id, &s.name)).collect::<Vec<_>>(),
                "languages": catalog.languages().iter().map(|l| item(&l.id, &l.name)).collect::<Vec<_>>(),
                "management_units": catalog.management_units().iter().map(|unit| json!({
                    "name": unit.name, "id": unit.id, "division": unit.division
                })).collect::<Vec<_>>(),
            }),
        );
        if let Some(defaults) = &self.defaults {
            document.insert("defaults".to_owned(), self.grants_json(defaults));
        }
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|rule| {
                let mut value = Map::new();
                value.insert("id".to_owned(), json!(rule.id));
                if let Some(description) = &rule.description {
                    value.insert("description".to_owned(), json!(description));
                }
                value.insert("priority".to_owned(), json!(rule.priority));
                if let Some(when) = &rule.when {
                    value.insert("when".to_owned(), json!(when.text));
                }
                if let Value::Object(grants) = self.grants_json(&rule.grants) {
                    value.extend(grants);
                }
                Value::Object(value)
            })
            .collect();
        document.insert("rules".to_owned(), Value::Array(rules));
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|table| {
                let mut value = Map::new();
                value.insert("id".to_owned(), json!(table.id));
                if let Some(description) = &table.description {
                    value.insert("description".to_owned(), json!(description));
                }
                value.insert("priority".to_owned(), json!(table.priority));
                if let Some(when) = &table.when {
                    value.insert("when".to_owned(), json!(when.text));
                }
                value.insert("key".to_owned(), json!(table.key.to_string()));
                value.insert("sets".to_owned(), json!(table.sets.keyword()));
                match table.sets {
                    TableSets::Role { division } => {
                        value.insert(
                            "division".to_owned(),
                            json!(catalog.name(ObjectKind::Division, division)),
                        );
                    }
                    TableSets::Skill { proficiency } | TableSets::Language { proficiency } => {
                        value.insert("proficiency".to_owned(), json!(proficiency));
                    }
                    TableSets::ManagementUnit | TableSets::HomeDivision | TableSets::License => {}
                }
                value.insert("case_sensitive".to_owned(), json!(table.case_sensitive));
                let kind = table.sets.kind();
                let rows: Map<String, Value> = table
                    .rows
                    .iter()
                    .map(|row| (row.key.clone(), json!(catalog.name(kind, row.object))))
                    .collect();
                value.insert("rows".to_owned(), Value::Object(rows));
                Value::Object(value)
            })
            .collect();
        document.insert("tables".to_owned(), Value::Array(tables));
        Value::Object(document)
    }

    fn grants_json(&self, grants: &Grants) -> Value {
        let catalog = &self.catalog;
        let name = |kind: ObjectKind, index: u32| catalog.name(kind, index).to_owned();
        let mut value = Map::new();
        let mut put = |key: &str, list: Vec<Value>| {
            if !list.is_empty() {
                value.insert(key.to_owned(), Value::Array(list));
            }
        };
        put(
            "grants",
            grants
                .roles
                .iter()
                .map(|(role, division)| {
                    json!({"role": name(ObjectKind::Role, *role), "division": name(ObjectKind::Division, *division)})
                })
                .collect(),
        );
        put(
            "skills",
            grants
                .skills
                .iter()
                .map(|(skill, proficiency)| json!({"name": name(ObjectKind::Skill, *skill), "proficiency": proficiency}))
                .collect(),
        );
        put(
            "languages",
            grants
                .languages
                .iter()
                .map(|(language, proficiency)| json!({"name": name(ObjectKind::Language, *language), "proficiency": proficiency}))
                .collect(),
        );
        put(
            "licenses",
            grants
                .licenses
                .iter()
                .map(|license| json!(name(ObjectKind::License, *license)))
                .collect(),
        );
        put(
            "remove_roles",
            grants
                .remove_roles
                .iter()
                .map(|(role, division)| match division {
                    Some(division) => json!({"role": name(ObjectKind::Role, *role), "division": name(ObjectKind::Division, *division)}),
                    None => json!({"role": name(ObjectKind::Role, *role)}),
                })
                .collect(),
        );
        for (key, kind, list) in [
            ("remove_skills", ObjectKind::Skill, &grants.remove_skills),
            (
                "remove_languages",
                ObjectKind::Language,
                &grants.remove_languages,
            ),
            (
                "remove_licenses",
                ObjectKind::License,
                &grants.remove_licenses,
            ),
        ] {
            put(
                key,
                list.iter().map(|index| json!(name(kind, *index))).collect(),
            );
        }
        if let Some(unit) = grants.management_unit {
            value.insert(
                "management_unit".to_owned(),
                json!(name(ObjectKind::ManagementUnit, unit)),
            );
        }
        if let Some(division) = grants.home_division {
            value.insert(
                "home_division".to_owned(),
                json!(name(ObjectKind::Division, division)),
            );
        }
        Value::Object(value)
    }
}
