//! Reading the document tree into a [`RuleSet`]: the rules, the tables
//! (with their CSV rows) and the defaults, every name resolved against the
//! catalog, every `when` parsed once, every error collected with its place.

use std::collections::HashMap;

use muster_scim::{AttrPath, Filter, FilterLimits};

use crate::catalog::{read_catalog, Catalog, ObjectKind};
use crate::csv;
use crate::error::{did_you_mean, ErrorKind, Location, RuleError};
use crate::node::{Fields, Node, NodeValue, Place, Reader};
use crate::ruleset::{
    normalize_key, Condition, Grants, Row, Rule, RuleSet, Table, TableSets, DEFAULTS_RULE,
    MAX_DOCUMENT_BYTES, MAX_LIST_ENTRIES, MAX_PROFICIENCY, MAX_RULES, MAX_TABLE_ROWS, SETS,
};

const GRANT_KEYS: [&str; 6] = [
    "grants",
    "skills",
    "languages",
    "licenses",
    "management_unit",
    "home_division",
];
const REMOVAL_KEYS: [&str; 4] = [
    "remove_roles",
    "remove_skills",
    "remove_languages",
    "remove_licenses",
];

pub(crate) fn read_document(
    reader: &mut Reader<'_>,
    root: &Node,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Option<RuleSet> {
    let fields = reader.table(
        root,
        &Place::root(),
        &["catalog", "defaults", "rules", "tables"],
    )?;
    let catalog = read_catalog(reader, fields.get("catalog"));
    let defaults = fields.get("defaults").and_then(|node| {
        let place = Place::root().key("defaults").in_rule(DEFAULTS_RULE);
        let defaults = reader.table(node, &place, &GRANT_KEYS)?;
        Some(read_grants(reader, &catalog, &defaults, &place))
    });
    for key in ["rules", "tables"] {
        if let Some(node) = fields
            .get(key)
            .filter(|node| matches!(node.value, NodeValue::Table(_)))
        {
            reader.error(
                ErrorKind::InvalidValue,
                &Place::root().key(key),
                node.span.as_ref(),
                format!(
                    "expected a list of {key}: write [[{key}]] (double brackets) before each one"
                ),
            );
        }
    }
    let mut ids: HashMap<String, (Place, Option<Location>)> = HashMap::new();
    let mut rules = Vec::new();
    if let Some(node) = fields
        .get("rules")
        .filter(|node| !matches!(node.value, NodeValue::Table(_)))
    {
        let place = Place::root().key("rules");
        for (position, item) in reader
            .array(node, &place, MAX_RULES)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(rule) = read_rule(reader, &catalog, item, &place.index(position), &mut ids)
            {
                rules.push(Rule {
                    index: rules.len(),
                    ..rule
                });
            }
        }
    }
    let mut tables = Vec::new();
    if let Some(node) = fields
        .get("tables")
        .filter(|node| !matches!(node.value, NodeValue::Table(_)))
    {
        let place = Place::root().key("tables");
        for (position, item) in reader
            .array(node, &place, MAX_RULES)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(table) = read_table(
                reader,
                &catalog,
                item,
                &place.index(position),
                &mut ids,
                read,
            ) {
                tables.push(Table {
                    position: tables.len(),
                    ..table
                });
            }
        }
    }
    let index = crate::index::RuleIndex::new(&rules);
    let compiled = crate::ruleset::Compiled::new(&rules, &tables);
    Some(RuleSet {
        catalog,
        rules,
        tables,
        defaults,
        index,
        compiled,
    })
}

/// The place of a rule whose id can be seen before it is checked, so
/// errors about its keys name it.
fn peek_id(node: &Node, place: &Place) -> Place {
    let NodeValue::Table(entries) = &node.value else {
        return place.clone();
    };
    entries
        .iter()
        .find(|entry| entry.key == "id")
        .and_then(|entry| match &entry.value.value {
            NodeValue::String(id) => Some(place.in_rule(id)),
            _ => None,
        })
        .unwrap_or_else(|| place.clone())
}

/// Reads the `id` of a rule or table and checks it is well formed and unused.
fn read_id(
    reader: &mut Reader<'_>,
    fields: &Fields<'_>,
    node: &Node,
    place: &Place,
    ids: &mut HashMap<String, (Place, Option<Location>)>,
) -> Option<String> {
    let Some(id_node) = fields.get("id") else {
        reader.error(
            ErrorKind::MissingKey,
            place,
            node.span.as_ref(),
            "every rule needs an id (id = \"tier1-agents\"): results and explanations name it",
        );
        return None;
    };
    let id_place = place.key("id");
    let id = reader.string(id_node, &id_place)?;
    let valid = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        reader.error(
            ErrorKind::InvalidValue,
            &id_place,
            id_node.span.as_ref(),
            format!("a rule id is 1 to 100 ASCII letters, digits, '-', '_' or '.'; got '{id}'"),
        );
        return None;
    }
    if id.eq_ignore_ascii_case(DEFAULTS_RULE) {
        reader.error(
            ErrorKind::InvalidValue,
            &id_place.in_rule(id),
            id_node.span.as_ref(),
            format!("'{DEFAULTS_RULE}' is reserved for what [defaults] gives"),
        );
        return None;
    }
    let location = reader.location(node.span.as_ref());
    if let Some((first, first_location)) = ids.get(&id.to_ascii_lowercase()) {
        let at = first_location
            .as_ref()
            .map(|location| format!(" on line {}", location.line))
            .unwrap_or_default();
        let message = format!(
            "duplicate rule id '{id}': {}{at} has it already (ids are case-insensitive)",
            first.field
        );
        reader.error(
            ErrorKind::Duplicate,
            &id_place.in_rule(id),
            id_node.span.as_ref(),
            message,
        );
        return None;
    }
    ids.insert(id.to_ascii_lowercase(), (place.clone(), location));
    Some(id.to_owned())
}

fn read_priority(reader: &mut Reader<'_>, fields: &Fields<'_>, place: &Place) -> i64 {
    fields
        .get("priority")
        .and_then(|node| reader.integer(node, &place.key("priority")))
        .unwrap_or(0)
}

fn read_description(reader: &mut Reader<'_>, fields: &Fields<'_>, place: &Place) -> Option<String> {
    fields
        .get("description")
        .and_then(|node| reader.string(node, &place.key("description")))
        .map(str::to_owned)
}

fn read_when(reader: &mut Reader<'_>, fields: &Fields<'_>, place: &Place) -> Option<Condition> {
    let node = fields.get("when")?;
    let place = place.key("when");
    let text = reader.string(node, &place)?;
    match Filter::parse_with(text, &FilterLimits::default()) {
        Ok(filter) => Some(Condition {
            text: text.to_owned(),
            filter,
            location: reader.location(node.span.as_ref()),
            field: place.field.clone(),
        }),
        Err(error) => {
            reader.error(
                ErrorKind::Filter,
                &place,
                node.span.as_ref(),
                format!("not a SCIM filter: {}", error.detail),
            );
            None
        }
    }
}

fn read_rule(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    node: &Node,
    place: &Place,
    ids: &mut HashMap<String, (Place, Option<Location>)>,
) -> Option<Rule> {
    let mut allowed = vec!["id", "description", "priority", "when"];
    allowed.extend(GRANT_KEYS);
    allowed.extend(REMOVAL_KEYS);
    let fields = reader.table(node, &peek_id(node, place), &allowed)?;
    let id = read_id(reader, &fields, node, place, ids);
    let place = match &id {
        Some(id) => place.in_rule(id),
        None => place.clone(),
    };
    let description = read_description(reader, &fields, &place);
    let priority = read_priority(reader, &fields, &place);
    let when_failed = fields.get("when").is_some();
    let when = read_when(reader, &fields, &place);
    let grants = read_grants(reader, catalog, &fields, &place);
    if when_failed && when.is_none() {
        return None;
    }
    Some(Rule {
        id: id?,
        description,
        priority,
        when,
        grants,
        index: 0,
    })
}

/// Reads the grant and removal keys of a rule or of `[defaults]`.
fn read_grants(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    fields: &Fields<'_>,
    place: &Place,
) -> Grants {
    let mut grants = Grants::default();
    let list = |reader: &mut Reader<'_>, key: &str| -> Vec<(Place, &Node)> {
        let Some(node) = fields.get(key) else {
            return Vec::new();
        };
        let place = place.key(key);
        reader
            .array(node, &place, MAX_LIST_ENTRIES)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(index, item)| (place.index(index), item))
            .collect()
    };
    for (place, item) in list(reader, "grants") {
        let Some(entry) = reader.table(item, &place, &["role", "division"]) else {
            continue;
        };
        let role = required(reader, &entry, item, &place, "role")
            .and_then(|node| catalog.resolve(reader, ObjectKind::Role, node, &place.key("role")));
        let division = required(reader, &entry, item, &place, "division").and_then(|node| {
            catalog.resolve(reader, ObjectKind::Division, node, &place.key("division"))
        });
        if let (Some(role), Some(division)) = (role, division) {
            grants.roles.push((role, division));
        }
    }
    for (key, kind) in [
        ("skills", ObjectKind::Skill),
        ("languages", ObjectKind::Language),
    ] {
        for (place, item) in list(reader, key) {
            let Some(entry) = reader.table(item, &place, &["name", "proficiency"]) else {
                continue;
            };
            let name = required(reader, &entry, item, &place, "name")
                .and_then(|node| catalog.resolve(reader, kind, node, &place.key("name")));
            let proficiency = required(reader, &entry, item, &place, "proficiency")
                .and_then(|node| read_proficiency(reader, node, &place.key("proficiency")));
            if let (Some(name), Some(proficiency)) = (name, proficiency) {
                match kind {
                    ObjectKind::Skill => grants.skills.push((name, proficiency)),
                    _ => grants.languages.push((name, proficiency)),
                }
            }
        }
    }
    for (place, item) in list(reader, "licenses") {
        if let Some(license) = catalog.resolve(reader, ObjectKind::License, item, &place) {
            grants.licenses.push(license);
        }
    }
    for (key, kind) in [
        ("management_unit", ObjectKind::ManagementUnit),
        ("home_division", ObjectKind::Division),
    ] {
        if let Some(node) = fields.get(key) {
            let found = catalog.resolve(reader, kind, node, &place.key(key));
            match kind {
                ObjectKind::ManagementUnit => grants.management_unit = found,
                _ => grants.home_division = found,
            }
        }
    }
    for (place, item) in list(reader, "remove_roles") {
        match &item.value {
            NodeValue::String(_) => {
                if let Some(role) = catalog.resolve(reader, ObjectKind::Role, item, &place) {
                    grants.remove_roles.push((role, None));
                }
            }
            _ => {
                let Some(entry) = reader.table(item, &place, &["role", "division"]) else {
                    continue;
                };
                let role = required(reader, &entry, item, &place, "role").and_then(|node| {
                    catalog.resolve(reader, ObjectKind::Role, node, &place.key("role"))
                });
                // `Some(None)`: every division; `None`: an unknown one.
                let division = match entry.get("division") {
                    Some(node) => catalog
                        .resolve(reader, ObjectKind::Division, node, &place.key("division"))
                        .map(Some),
                    None => Some(None),
                };
                if let (Some(role), Some(division)) = (role, division) {
                    grants.remove_roles.push((role, division));
                }
            }
        }
    }
    for (key, kind) in [
        ("remove_skills", ObjectKind::Skill),
        ("remove_languages", ObjectKind::Language),
        ("remove_licenses", ObjectKind::License),
    ] {
        for (place, item) in list(reader, key) {
            if let Some(found) = catalog.resolve(reader, kind, item, &place) {
                match kind {
                    ObjectKind::Skill => grants.remove_skills.push(found),
                    ObjectKind::Language => grants.remove_languages.push(found),
                    _ => grants.remove_licenses.push(found),
                }
            }
        }
    }
    grants
}

fn required<'n>(
    reader: &mut Reader<'_>,
    fields: &Fields<'n>,
    node: &Node,
    place: &Place,
    key: &str,
) -> Option<&'n Node> {
    let found = fields.get(key);
    if found.is_none() {
        reader.error(
            ErrorKind::MissingKey,
            place,
            node.span.as_ref(),
            format!("'{key}' is missing"),
        );
    }
    found
}

fn read_proficiency(reader: &mut Reader<'_>, node: &Node, place: &Place) -> Option<u8> {
    let value = reader.integer(node, place)?;
    match u8::try_from(value) {
        Ok(proficiency) if proficiency <= MAX_PROFICIENCY => Some(proficiency),
        _ => {
            reader.error(
                ErrorKind::InvalidValue,
                place,
                node.span.as_ref(),
                format!("a proficiency is 0 to {MAX_PROFICIENCY}; got {value}"),
            );
            None
        }
    }
}

fn read_table(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    node: &Node,
    place: &Place,
    ids: &mut HashMap<String, (Place, Option<Location>)>,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Option<Table> {
    let fields = reader.table(
        node,
        &peek_id(node, place),
        &[
            "id",
            "description",
            "priority",
            "when",
            "key",
            "sets",
            "division",
            "proficiency",
            "case_sensitive",
            "rows",
            "csv",
            "columns",
        ],
    )?;
    let id = read_id(reader, &fields, node, place, ids);
    let place = match &id {
        Some(id) => place.in_rule(id),
        None => place.clone(),
    };
    let description = read_description(reader, &fields, &place);
    let priority = read_priority(reader, &fields, &place);
    let when_failed = fields.get("when").is_some();
    let when = read_when(reader, &fields, &place);
    let key_node = required(reader, &fields, node, &place, "key");
    let key = key_node.and_then(|key_node| {
        let key_place = place.key("key");
        let text = reader.string(key_node, &key_place)?;
        match AttrPath::parse(text) {
            Ok(path) => Some((path, reader.location(key_node.span.as_ref()))),
            Err(error) => {
                reader.error(
                    ErrorKind::UnknownAttribute,
                    &key_place,
                    key_node.span.as_ref(),
                    error.detail,
                );
                None
            }
        }
    });
    let sets = read_sets(reader, catalog, &fields, node, &place);
    let case_sensitive = fields
        .get("case_sensitive")
        .and_then(|node| reader.boolean(node, &place.key("case_sensitive")))
        .unwrap_or(false);
    let rows = sets.and_then(|sets| {
        read_rows(
            reader,
            catalog,
            &fields,
            node,
            &place,
            sets,
            case_sensitive,
            read,
        )
    });
    if when_failed && when.is_none() {
        return None;
    }
    let (key, key_location) = key?;
    let sets = sets?;
    let rows = rows?;
    let index = rows
        .iter()
        .enumerate()
        .map(|(position, row)| (normalize_key(&row.key, case_sensitive), position))
        .collect();
    Some(Table {
        id: id?,
        description,
        priority,
        when,
        key,
        key_location,
        key_field: place.key("key").field,
        sets,
        case_sensitive,
        rows,
        index,
        position: 0,
    })
}

fn read_sets(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    fields: &Fields<'_>,
    node: &Node,
    place: &Place,
) -> Option<TableSets> {
    let sets_node = required(reader, fields, node, place, "sets")?;
    let sets_place = place.key("sets");
    let keyword = reader.string(sets_node, &sets_place)?;
    let division = fields.get("division");
    let proficiency = fields.get("proficiency");
    let refuse = |reader: &mut Reader<'_>, key: &str, found: Option<&Node>| {
        if let Some(found) = found {
            reader.error(
                ErrorKind::UnknownKey,
                &place.key(key),
                found.span.as_ref(),
                format!("'{key}' applies only to tables that set a role (division) or a skill or language (proficiency)"),
            );
        }
    };
    let needs = |reader: &mut Reader<'_>, key: &str, found: bool| {
        if !found {
            reader.error(
                ErrorKind::MissingKey,
                place,
                node.span.as_ref(),
                format!("a table that sets a {keyword} needs '{key}' for every row"),
            );
        }
    };
    match keyword {
        "management_unit" | "home_division" | "license" => {
            refuse(reader, "division", division);
            refuse(reader, "proficiency", proficiency);
            Some(match keyword {
                "management_unit" => TableSets::ManagementUnit,
                "home_division" => TableSets::HomeDivision,
                _ => TableSets::License,
            })
        }
        "role" => {
            refuse(reader, "proficiency", proficiency);
            needs(reader, "division", division.is_some());
            let division = division?;
            let division = catalog.resolve(
                reader,
                ObjectKind::Division,
                division,
                &place.key("division"),
            )?;
            Some(TableSets::Role { division })
        }
        "skill" | "language" => {
            refuse(reader, "division", division);
            needs(reader, "proficiency", proficiency.is_some());
            let proficiency = proficiency?;
            let proficiency = read_proficiency(reader, proficiency, &place.key("proficiency"))?;
            Some(if keyword == "skill" {
                TableSets::Skill { proficiency }
            } else {
                TableSets::Language { proficiency }
            })
        }
        other => {
            reader.error(
                ErrorKind::InvalidValue,
                &sets_place,
                sets_node.span.as_ref(),
                format!(
                    "a table sets one of {}; got '{other}'{}",
                    SETS.join(", "),
                    did_you_mean(other, SETS)
                ),
            );
            None
        }
    }
}

/// Reads `rows` and `csv`; `None` when something is wrong.
#[allow(clippy::too_many_arguments)]
fn read_rows(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    fields: &Fields<'_>,
    node: &Node,
    place: &Place,
    sets: TableSets,
    case_sensitive: bool,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Option<Vec<Row>> {
    let errors_before = reader.errors.len();
    let kind = sets.kind();
    let mut rows: Vec<Row> = Vec::new();
    // Normalised key to (where, line) of its first row.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut add = |reader: &mut Reader<'_>,
                   key: &str,
                   object: Option<u32>,
                   where_: String,
                   error_place: &Place,
                   error_span: Option<&std::ops::Range<usize>>,
                   file_location: Option<Location>| {
        let normalized = normalize_key(key, case_sensitive);
        let mut error = |kind: ErrorKind, message: String| {
            let location = file_location
                .clone()
                .or_else(|| reader.location(error_span));
            reader.errors.push(RuleError {
                kind,
                rule: error_place.rule.clone(),
                location,
                field: error_place.field.clone(),
                message,
            });
        };
        if normalized.is_empty() {
            error(
                ErrorKind::InvalidValue,
                "a row's key may not be empty".to_owned(),
            );
            return;
        }
        if let Some(first) = seen.get(&normalized) {
            let case = if case_sensitive {
                ""
            } else {
                " (keys are compared case-insensitively; set case_sensitive = true to tell them apart)"
            };
            error(
                ErrorKind::Duplicate,
                format!(
                    "duplicate key '{}': {first} has it already{case}",
                    key.trim()
                ),
            );
            return;
        }
        seen.insert(normalized, where_);
        if rows.len() >= MAX_TABLE_ROWS {
            error(
                ErrorKind::Limit,
                format!("a table may hold at most {MAX_TABLE_ROWS} rows"),
            );
            return;
        }
        if let Some(object) = object {
            rows.push(Row {
                key: key.trim().to_owned(),
                object,
                grants: sets.grants(object),
            });
        }
    };
    let inline = fields.get("rows");
    let csv_node = fields.get("csv");
    if inline.is_none() && csv_node.is_none() {
        reader.error(
            ErrorKind::MissingKey,
            place,
            node.span.as_ref(),
            "a table needs rows: rows = { \"key\" = \"name\", ... }, or csv = \"file.csv\"",
        );
        return None;
    }
    if let Some(inline) = inline {
        let rows_place = place.key("rows");
        if let NodeValue::Table(entries) = &inline.value {
            for entry in entries {
                let row_place = rows_place.key(&entry.key);
                let object = catalog.resolve(reader, kind, &entry.value, &row_place);
                let where_ = match reader.location(entry.key_span.as_ref()) {
                    Some(location) => format!("the row '{}' on line {}", entry.key, location.line),
                    None => format!("the row '{}'", entry.key),
                };
                add(
                    reader,
                    &entry.key,
                    object,
                    where_,
                    &row_place,
                    entry.key_span.as_ref(),
                    None,
                );
            }
        } else {
            reader.expected(&rows_place, inline, "a table of key = \"name\" rows");
        }
    }
    if fields.get("columns").is_some() && csv_node.is_none() {
        if let Some(columns) = fields.get("columns") {
            reader.error(
                ErrorKind::UnknownKey,
                &place.key("columns"),
                columns.span.as_ref(),
                "'columns' picks the CSV columns; this table reads no csv",
            );
        }
    }
    if let Some(csv_node) = csv_node {
        let csv_place = place.key("csv");
        let file = reader.string(csv_node, &csv_place)?.to_owned();
        let columns = read_columns(reader, fields, place);
        let text = match read(&file) {
            Ok(text) if text.len() > MAX_DOCUMENT_BYTES => {
                reader.error(
                    ErrorKind::Limit,
                    &csv_place,
                    csv_node.span.as_ref(),
                    format!(
                        "'{file}' is {} bytes; at most {MAX_DOCUMENT_BYTES} are allowed",
                        text.len()
                    ),
                );
                return None;
            }
            Ok(text) => text,
            Err(why) => {
                reader.error(
                    ErrorKind::Csv,
                    &csv_place,
                    csv_node.span.as_ref(),
                    format!("cannot read '{file}': {why}"),
                );
                return None;
            }
        };
        let file_location = |line: usize| {
            Some(Location {
                file: Some(file.clone()),
                line,
                column: 1,
            })
        };
        let records = match csv::parse(&text, MAX_TABLE_ROWS.saturating_add(1)) {
            Ok(records) => records,
            Err(error) => {
                reader.errors.push(RuleError {
                    kind: ErrorKind::Csv,
                    rule: csv_place.rule.clone(),
                    location: file_location(error.line),
                    field: csv_place.field.clone(),
                    message: error.message,
                });
                return None;
            }
        };
        let mut records = records.into_iter();
        let Some(header) = records.next() else {
            reader.error(
                ErrorKind::Csv,
                &csv_place,
                csv_node.span.as_ref(),
                format!("'{file}' is empty; it needs a header line, then one row per key"),
            );
            return None;
        };
        let (key_column, value_column) = match columns {
            None => (0, 1),
            Some((key_name, value_name)) => {
                let mut find = |wanted: &str| {
                    let found = header
                        .fields
                        .iter()
                        .position(|name| name.trim().eq_ignore_ascii_case(wanted.trim()));
                    if found.is_none() {
                        reader.errors.push(RuleError {
                            kind: ErrorKind::Csv,
                            rule: csv_place.rule.clone(),
                            location: file_location(header.line),
                            field: place.key("columns").field,
                            message: format!(
                                "'{file}' has no column '{wanted}'; its header has {}{}",
                                header
                                    .fields
                                    .iter()
                                    .map(|name| format!("'{name}'"))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                did_you_mean(wanted, header.fields.iter().map(String::as_str))
                            ),
                        });
                    }
                    found
                };
                let key_column = find(&key_name);
                let value_column = find(&value_name);
                (key_column?, value_column?)
            }
        };
        for record in records {
            let location = file_location(record.line);
            let (Some(key), Some(value)) = (
                record.fields.get(key_column),
                record.fields.get(value_column),
            ) else {
                reader.errors.push(RuleError {
                    kind: ErrorKind::Csv,
                    rule: csv_place.rule.clone(),
                    location,
                    field: csv_place.field.clone(),
                    message: format!(
                        "the row has {} fields; the key and value columns are number {} and {}",
                        record.fields.len(),
                        key_column + 1,
                        value_column + 1
                    ),
                });
                continue;
            };
            let value = value.trim();
            let object = catalog.find(kind, value);
            if object.is_none() {
                reader.errors.push(RuleError {
                    kind: ErrorKind::UnknownName,
                    rule: csv_place.rule.clone(),
                    location: location.clone(),
                    field: csv_place.field.clone(),
                    message: catalog.unknown(kind, value),
                });
            }
            add(
                reader,
                key,
                object,
                format!("{file} line {}", record.line),
                &csv_place,
                None,
                location,
            );
        }
    }
    (reader.errors.len() == errors_before).then_some(rows)
}

/// `columns = ["key column", "value column"]`, by header name.
fn read_columns(
    reader: &mut Reader<'_>,
    fields: &Fields<'_>,
    place: &Place,
) -> Option<(String, String)> {
    let node = fields.get("columns")?;
    let columns_place = place.key("columns");
    let items = reader.array(node, &columns_place, 2)?;
    match items {
        [key, value] => {
            let key = reader.string(key, &columns_place.index(0))?.to_owned();
            let value = reader.string(value, &columns_place.index(1))?.to_owned();
            Some((key, value))
        }
        _ => {
            reader.expected(
                &columns_place,
                node,
                "two column names: [\"key column\", \"value column\"]",
            );
            None
        }
    }
}
