//! `sortBy` to SQL: one expression giving each resource's sort value, so the
//! database orders (and pages) without loading rows.
//!
//! The value is the one `muster_scim::SortKey::extract` picks: the primary
//! element of a multi-valued attribute, else its first; a complex attribute's
//! `value`; strings lower-cased unless case-exact, in code point order;
//! dateTimes as instants (prefixed `D`, ahead of non-RFC-3339 strings
//! prefixed `S`, as `SortValue` ranks them). A resource without a value gets
//! NULL, which the list query orders last ascending and first descending.

use muster_scim::{AttrPath, AttributeType, SortKey};

use super::query::{Columns, QueryBuilder, Source};
use super::{Dialect, Param};
use crate::StoreError;

/// The type of a sort value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKind {
    /// A text (strings, and dateTimes as `D`/`S` texts).
    Text,
    /// A number.
    Number,
    /// A boolean (SQLite: 0 or 1).
    Flag,
}

impl SortKind {
    /// The kind of the values of `key`.
    fn of(key: &SortKey) -> SortKind {
        match key.attribute_type() {
            AttributeType::Integer | AttributeType::Decimal => SortKind::Number,
            AttributeType::Boolean => SortKind::Flag,
            AttributeType::DateTime
            | AttributeType::String
            | AttributeType::Binary
            | AttributeType::Reference
            | AttributeType::Complex => SortKind::Text,
        }
    }

    /// Whether a cursor's sort value can be one of this kind in `dialect`
    /// (SQLite compares any value but a boolean, which it has not).
    pub(crate) fn admits(self, dialect: Dialect, value: &Param) -> bool {
        match (dialect, self, value) {
            (Dialect::Sqlite, _, value) => !matches!(value, Param::Bool(_)),
            (Dialect::Postgres, SortKind::Text, Param::Text(_))
            | (Dialect::Postgres, SortKind::Number, Param::Integer(_) | Param::Real(_))
            | (Dialect::Postgres, SortKind::Flag, Param::Bool(_)) => true,
            (Dialect::Postgres, _, _) => false,
        }
    }

    /// A NULL of this kind (PostgreSQL types every output column).
    fn null(self, dialect: Dialect) -> String {
        match (dialect, self) {
            (Dialect::Sqlite, _) => "NULL".to_owned(),
            (Dialect::Postgres, SortKind::Text) => "NULL::text".to_owned(),
            (Dialect::Postgres, SortKind::Number) => "NULL::float8".to_owned(),
            (Dialect::Postgres, SortKind::Flag) => "NULL::boolean".to_owned(),
        }
    }
}

impl QueryBuilder<'_> {
    /// The SQL expression of the sort value of resource `r` for `path`, and
    /// the kind of its values.
    pub(crate) fn sort_value(&mut self, path: &AttrPath) -> Result<(String, SortKind), StoreError> {
        let key = SortKey::new(self.registry, self.resource_type, path)?;
        let kind = SortKind::of(&key);
        let expression = self.sort_expression(path, &key)?;
        Ok((expression.unwrap_or_else(|| kind.null(self.dialect)), kind))
    }

    /// The sort value expression, `None` when no resource has one.
    fn sort_expression(
        &mut self,
        path: &AttrPath,
        key: &SortKey,
    ) -> Result<Option<String>, StoreError> {
        let Some(located) = self.locate(path) else {
            return Ok(None);
        };
        let definition = match located.step {
            Some(sub) => sub,
            None if located.attribute.is_complex() => {
                match located.attribute.sub_attribute("value") {
                    Some(sub) => sub,
                    None => return Ok(None),
                }
            }
            None => located.attribute,
        };
        let dialect = self.dialect;
        let tenant = dialect.placeholder(1);
        let alias = self.alias();
        let expression = match &located.source {
            Source::Stored(prefix) => {
                let value = row_value(dialect, &Columns::stored(dialect, &alias), key);
                let row_path = if std::ptr::eq(definition, located.attribute) {
                    prefix.clone()
                } else {
                    format!("{prefix}.{}", definition.name.to_ascii_lowercase())
                };
                let element = if located.attribute.multi_valued {
                    self.chosen_element(prefix)
                } else {
                    "0".to_owned()
                };
                let row_path = self.bind_path(&row_path);
                format!(
                    "(SELECT {value} FROM resource_values {alias}
                      WHERE {alias}.resource_seq = r.seq AND {alias}.path_id = {row_path}
                      AND {alias}.item = 0 AND {alias}.element = {element})"
                )
            }
            Source::Common => {
                let Some(columns) = self.computed_columns(&located.source, &alias, definition)
                else {
                    return Ok(None);
                };
                let value = row_value(dialect, &columns, key);
                format!("(SELECT {value} FROM resources {alias} WHERE {alias}.seq = r.seq)")
            }
            Source::Members => {
                let Some(columns) = self.computed_columns(&located.source, &alias, definition)
                else {
                    return Ok(None);
                };
                let value = row_value(dialect, &columns, key);
                format!(
                    "(SELECT {value} FROM group_members {alias}
                      WHERE {alias}.tenant_id = {tenant} AND {alias}.group_id = r.id
                      ORDER BY {member} LIMIT 1)",
                    member = dialect.text_key(&format!("{alias}.member_id"))
                )
            }
            Source::Groups => {
                self.needs_groups = true;
                let Some(columns) = self.computed_columns(&located.source, &alias, definition)
                else {
                    return Ok(None);
                };
                let value = row_value(dialect, &columns, key);
                format!(
                    "(SELECT {value} FROM user_groups {alias}
                      WHERE {alias}.member_id = r.id
                      ORDER BY {alias}.depth, {group} LIMIT 1)",
                    group = dialect.text_key(&format!("{alias}.group_id"))
                )
            }
        };
        Ok(Some(match SortKind::of(key) {
            SortKind::Text => dialect.text_sort(expression),
            SortKind::Number | SortKind::Flag => expression,
        }))
    }

    /// The element a multi-valued stored attribute sorts by: the first one
    /// with `primary` true, else the first.
    fn chosen_element(&mut self, prefix: &str) -> String {
        let primary_path = self.bind_path(&format!("{prefix}.primary"));
        let element_path = self.bind_path(prefix);
        let primary = self.alias();
        let first = self.alias();
        let is_primary = self.dialect.holds(&format!("{primary}.value_bool"));
        format!(
            "coalesce(
                (SELECT {primary}.element FROM resource_values {primary}
                 WHERE {primary}.resource_seq = r.seq AND {primary}.path_id = {primary_path}
                 AND {primary}.item = 0 AND {is_primary}
                 ORDER BY {primary}.element LIMIT 1),
                (SELECT min({first}.element) FROM resource_values {first}
                 WHERE {first}.resource_seq = r.seq AND {first}.path_id = {element_path}
                 AND {first}.item = 0))"
        )
    }
}

/// The sort value of one row, by the key's declared type.
fn row_value(dialect: Dialect, columns: &Columns, key: &SortKey) -> String {
    let text = if key.case_exact() {
        &columns.exact
    } else {
        &columns.lower
    };
    match key.attribute_type() {
        AttributeType::DateTime => format!(
            "(CASE WHEN {time} IS NOT NULL THEN 'D' || {instant}
                   WHEN {lower} IS NOT NULL THEN 'S' || {text} END)",
            time = columns.time,
            instant = dialect.instant_text(&columns.time),
            lower = columns.lower,
        ),
        AttributeType::Integer | AttributeType::Decimal => columns.number.clone(),
        AttributeType::Boolean => columns.flag.clone(),
        AttributeType::String
        | AttributeType::Binary
        | AttributeType::Reference
        | AttributeType::Complex => text.clone(),
    }
}
