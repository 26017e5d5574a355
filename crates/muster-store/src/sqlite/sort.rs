//! `sortBy` to SQL: one expression giving each resource's sort value, so the
//! database orders (and pages) without loading rows.
//!
//! The value is the one `muster_scim::SortKey::extract` picks: the primary
//! element of a multi-valued attribute, else its first; a complex attribute's
//! `value`; strings lower-cased unless case-exact; dateTimes as instants
//! (prefixed `D`, ahead of non-RFC-3339 strings prefixed `S`, as `SortValue`
//! ranks them). A resource without a value gets NULL, which the list query
//! orders last ascending and first descending.

use muster_scim::{AttrPath, AttributeType, SortKey};

use super::query::{Columns, QueryBuilder, Source};
use crate::StoreError;

impl QueryBuilder<'_> {
    /// The SQL expression of the sort value of resource `r` for `path`.
    pub(crate) fn sort_value(&mut self, path: &AttrPath) -> Result<String, StoreError> {
        let key = SortKey::new(self.registry, self.resource_type, path)?;
        let Some(located) = self.locate(path) else {
            return Ok("NULL".to_owned());
        };
        let definition = match located.step {
            Some(sub) => sub,
            None if located.attribute.is_complex() => {
                match located.attribute.sub_attribute("value") {
                    Some(sub) => sub,
                    None => return Ok("NULL".to_owned()),
                }
            }
            None => located.attribute,
        };
        let alias = self.alias();
        let expression = match &located.source {
            Source::Stored(prefix) => {
                let value = sort_expression(&Columns::stored(&alias), &key);
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
                    return Ok("NULL".to_owned());
                };
                let value = sort_expression(&columns, &key);
                format!("(SELECT {value} FROM resources {alias} WHERE {alias}.seq = r.seq)")
            }
            Source::Members => {
                let Some(columns) = self.computed_columns(&located.source, &alias, definition)
                else {
                    return Ok("NULL".to_owned());
                };
                let value = sort_expression(&columns, &key);
                format!(
                    "(SELECT {value} FROM group_members {alias}
                      WHERE {alias}.tenant_id = ?1 AND {alias}.group_id = r.id
                      ORDER BY {alias}.member_id LIMIT 1)"
                )
            }
            Source::Groups => {
                self.needs_groups = true;
                let Some(columns) = self.computed_columns(&located.source, &alias, definition)
                else {
                    return Ok("NULL".to_owned());
                };
                let value = sort_expression(&columns, &key);
                format!(
                    "(SELECT {value} FROM user_groups {alias}
                      WHERE {alias}.member_id = r.id
                      ORDER BY {alias}.depth, {alias}.group_id LIMIT 1)"
                )
            }
        };
        Ok(expression)
    }

    /// The element a multi-valued stored attribute sorts by: the first one
    /// with `primary` true, else the first.
    fn chosen_element(&mut self, prefix: &str) -> String {
        let primary_path = self.bind_path(&format!("{prefix}.primary"));
        let element_path = self.bind_path(prefix);
        let primary = self.alias();
        let first = self.alias();
        format!(
            "coalesce(
                (SELECT {primary}.element FROM resource_values {primary}
                 WHERE {primary}.resource_seq = r.seq AND {primary}.path_id = {primary_path}
                 AND {primary}.item = 0 AND {primary}.value_bool = 1
                 ORDER BY {primary}.element LIMIT 1),
                (SELECT min({first}.element) FROM resource_values {first}
                 WHERE {first}.resource_seq = r.seq AND {first}.path_id = {element_path}
                 AND {first}.item = 0))"
        )
    }
}

/// The sort value of one row, by the key's declared type.
fn sort_expression(columns: &Columns, key: &SortKey) -> String {
    let text = if key.case_exact() {
        &columns.exact
    } else {
        &columns.lower
    };
    match key.attribute_type() {
        AttributeType::DateTime => format!(
            "(CASE WHEN {time} IS NOT NULL THEN 'D' || {time}
                   WHEN {lower} IS NOT NULL THEN 'S' || {text} END)",
            time = columns.time,
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
