//! Filter to SQL: a [`Filter`] becomes a predicate over `resources r`, with
//! every literal bound as a parameter.
//!
//! Semantics are those of the in-memory evaluator (`Filter::matches`), which
//! the property test in `tests/` holds this translation to:
//!
//! - a comparison holds when some value of the attribute satisfies it, so
//!   each comparison or presence test is a subquery over the attribute's
//!   rows; `ne` is `not eq` and `eq null` is `not pr`, except that a path
//!   no schema declares matches nothing whatever the operator;
//! - a value path `emails[type eq "work" and value co "x"]` requires its
//!   conditions to hold on the same element (same resource and `element`);
//! - strings compare lower-cased unless the attribute is `caseExact`; dateTime
//!   attributes compare as instants when both sides are RFC 3339.
//!
//! Plans: one operand of an `and` (and every operand of an `or` whose
//! operands all can) is written `r.seq IN (SELECT ...)`, which the database
//! answers from the `(tenant_id, path, value_lower)` index (on PostgreSQL
//! also the trigram index, for `co` and `ew`) and then looks resources up
//! by key; the other operands are correlated `EXISTS` checks on those few
//! resources. So `userName eq "x" and active eq true` reads a handful of
//! rows, not every user.
//!
//! A clause on a stored path in the lookup index says the row is `indexed`
//! (the partial indexes' condition). A clause on a custom attribute that is not
//! searchable (`rules.rs`) is never the driver: it is an `EXISTS` check
//! through the primary key, of the resources the other operands found or,
//! alone, of each of the tenant's resources of the type. That scan is the
//! documented price of a non-searchable attribute.

use muster_scim::{AttrPath, Attribute, AttributeType, CompareOp, Filter, FilterValue};

use super::query::{element_definition, Columns, Located, QueryBuilder, Source};
use super::{instant, Dialect, Param};
use crate::sqlite::values::sortable_instant;

/// How a predicate is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As a set the database enumerates from an index (`r.seq IN (...)`).
    Drive,
    /// As a check of one resource already found (`EXISTS (... = r.seq)`).
    Check,
}

/// Where an element of a stored multi-valued attribute is: SQL expressions
/// for its resource and element index.
struct Element {
    resource: String,
    index: String,
    /// Whether the attribute's rows are in the lookup index.
    indexed: bool,
}

/// A translated (sub)filter.
enum Sql {
    /// A `SELECT` of the matching resources' `seq`, answerable from an index.
    Set(String),
    /// A predicate over `r`.
    Predicate(String),
}

impl Sql {
    fn never(dialect: Dialect) -> Sql {
        Sql::Predicate(dialect.truth(false).to_owned())
    }

    fn predicate(self) -> String {
        match self {
            Sql::Set(set) => format!("r.seq IN ({set})"),
            Sql::Predicate(predicate) => predicate,
        }
    }
}

impl QueryBuilder<'_> {
    /// The SQL predicate over `resources r` of a filter.
    pub(crate) fn filter(&mut self, filter: &Filter) -> String {
        self.node(filter, Mode::Drive).predicate()
    }

    /// The condition that never holds.
    fn never_text(&self) -> String {
        self.dialect.truth(false).to_owned()
    }

    fn node(&mut self, filter: &Filter, mode: Mode) -> Sql {
        match filter {
            Filter::And(operands) => {
                let driver = match mode {
                    Mode::Drive => operands.iter().position(|operand| self.drivable(operand)),
                    Mode::Check => None,
                };
                let parts: Vec<String> = operands
                    .iter()
                    .enumerate()
                    .map(|(index, operand)| {
                        let mode = if Some(index) == driver {
                            Mode::Drive
                        } else {
                            Mode::Check
                        };
                        self.node(operand, mode).predicate()
                    })
                    .collect();
                Sql::Predicate(join(&parts, " AND ", self.dialect.truth(true)))
            }
            Filter::Or(operands) => {
                let mode = if mode == Mode::Drive
                    && operands.iter().all(|operand| self.drivable(operand))
                {
                    Mode::Drive
                } else {
                    Mode::Check
                };
                let parts: Vec<Sql> = operands
                    .iter()
                    .map(|operand| self.node(operand, mode))
                    .collect();
                // Sets unite into one index-driven set; anything else is a
                // predicate checked per resource.
                if !parts.is_empty() && parts.iter().all(|part| matches!(part, Sql::Set(_))) {
                    let sets: Vec<String> = parts
                        .into_iter()
                        .map(|part| match part {
                            Sql::Set(set) | Sql::Predicate(set) => set,
                        })
                        .collect();
                    return Sql::Set(sets.join(" UNION "));
                }
                let parts: Vec<String> = parts.into_iter().map(Sql::predicate).collect();
                Sql::Predicate(join(&parts, " OR ", self.dialect.truth(false)))
            }
            Filter::Not(operand) => Sql::Predicate(format!(
                "NOT ({})",
                self.node(operand, Mode::Check).predicate()
            )),
            Filter::Present(path) => self.present(path, mode),
            Filter::Compare { path, op, value } => self.compare(path, *op, value, mode),
            Filter::ValuePath { path, filter } => self.value_path(path, filter, mode),
        }
    }

    fn present(&mut self, path: &AttrPath, mode: Mode) -> Sql {
        let Some(located) = self.locate(path) else {
            return Sql::never(self.dialect);
        };
        let alias = self.alias();
        let condition = match &located.source {
            Source::Stored(_) => Some(Columns::stored(self.dialect, &alias).present),
            Source::Members | Source::Groups | Source::Common => match located.step {
                // An element (a membership, `meta`) is a non-empty object.
                None if located.attribute.is_complex() => Some(self.dialect.truth(true).to_owned()),
                None => self
                    .computed_columns(&located.source, &alias, located.attribute)
                    .map(|columns| columns.present),
                Some(sub) => self
                    .computed_columns(&located.source, &alias, sub)
                    .map(|columns| columns.present),
            },
        };
        match condition {
            Some(condition) => self.rows(&located, located.step, &alias, &condition, mode),
            None => Sql::never(self.dialect),
        }
    }

    fn compare(&mut self, path: &AttrPath, op: CompareOp, value: &FilterValue, mode: Mode) -> Sql {
        // An unknown path matches nothing, whatever the operator (even `ne`).
        let Some(located) = self.locate(path) else {
            return Sql::never(self.dialect);
        };
        match (op, value) {
            (CompareOp::Ne, _) => {
                return Sql::Predicate(format!(
                    "NOT ({})",
                    self.compare(path, CompareOp::Eq, value, Mode::Check)
                        .predicate()
                ))
            }
            (CompareOp::Eq, FilterValue::Null) => {
                return Sql::Predicate(format!(
                    "NOT ({})",
                    self.present(path, Mode::Check).predicate()
                ))
            }
            (_, FilterValue::Null) => return Sql::never(self.dialect),
            _ => {}
        }
        // A complex attribute compared as a whole compares its `value`.
        let definition = match located.step {
            Some(sub) => sub,
            None if located.attribute.is_complex() => {
                match located.attribute.sub_attribute("value") {
                    Some(sub) => sub,
                    None => return Sql::never(self.dialect),
                }
            }
            None => located.attribute,
        };
        let step = (!std::ptr::eq(definition, located.attribute)).then_some(definition);
        let alias = self.alias();
        let columns = match &located.source {
            Source::Stored(_) => Some(Columns::stored(self.dialect, &alias)),
            Source::Members | Source::Groups | Source::Common => {
                self.computed_columns(&located.source, &alias, definition)
            }
        };
        let condition =
            columns.and_then(|columns| self.compare_condition(&columns, definition, op, value));
        match condition {
            Some(condition) => self.rows(&located, step, &alias, &condition, mode),
            None => Sql::never(self.dialect),
        }
    }

    /// Resources with a row of `located` (at sub-attribute `step`) through
    /// `alias` satisfying `condition`.
    fn rows(
        &mut self,
        located: &Located<'_>,
        step: Option<&Attribute>,
        alias: &str,
        condition: &str,
        mode: Mode,
    ) -> Sql {
        let tenant = self.dialect.placeholder(1);
        let resource_type = self.dialect.placeholder(2);
        let join = self.dialect.join();
        match &located.source {
            Source::Stored(prefix) => {
                let path = match step {
                    Some(sub) => format!("{prefix}.{}", sub.name.to_ascii_lowercase()),
                    None => prefix.clone(),
                };
                let path = self.bind_path(&path);
                let indexed = indexed_condition(self.dialect, located.indexed, alias);
                match stored_mode(mode, located.indexed) {
                    Mode::Drive => Sql::Set(format!(
                        "SELECT {alias}.resource_seq FROM resource_values {alias}
                          WHERE {alias}.tenant_id = {tenant} AND {alias}.path_id = {path}{indexed}
                          AND ({condition})"
                    )),
                    Mode::Check => Sql::Predicate(format!(
                        "EXISTS (SELECT 1 FROM resource_values {alias}
                          WHERE {alias}.resource_seq = r.seq AND {alias}.path_id = {path}{indexed}
                          AND ({condition}))"
                    )),
                }
            }
            Source::Common => match mode {
                Mode::Drive => Sql::Set(format!(
                    "SELECT {alias}.seq FROM resources {alias}
                      WHERE {alias}.tenant_id = {tenant} AND {alias}.resource_type = {resource_type}
                      AND ({condition})"
                )),
                Mode::Check => Sql::Predicate(format!(
                    "EXISTS (SELECT 1 FROM resources {alias}
                      WHERE {alias}.seq = r.seq AND ({condition}))"
                )),
            },
            Source::Members => match mode {
                Mode::Drive => {
                    let group = self.alias();
                    Sql::Set(format!(
                        "SELECT {group}.seq FROM group_members {alias}
                          {join} resources {group} ON {group}.tenant_id = {tenant}
                              AND {group}.id = {alias}.group_id
                          WHERE {alias}.tenant_id = {tenant} AND ({condition})"
                    ))
                }
                Mode::Check => Sql::Predicate(format!(
                    "EXISTS (SELECT 1 FROM group_members {alias}
                      WHERE {alias}.tenant_id = {tenant} AND {alias}.group_id = r.id
                      AND ({condition}))"
                )),
            },
            Source::Groups => {
                self.needs_groups = true;
                match mode {
                    Mode::Drive => {
                        let member = self.alias();
                        Sql::Set(format!(
                            "SELECT {member}.seq FROM user_groups {alias}
                              {join} resources {member} ON {member}.tenant_id = {tenant}
                                  AND {member}.id = {alias}.member_id
                              WHERE ({condition})"
                        ))
                    }
                    Mode::Check => Sql::Predicate(format!(
                        "EXISTS (SELECT 1 FROM user_groups {alias}
                          WHERE {alias}.member_id = r.id AND ({condition}))"
                    )),
                }
            }
        }
    }

    fn value_path(&mut self, path: &AttrPath, filter: &Filter, mode: Mode) -> Sql {
        let Some(located) = self.locate(path) else {
            return Sql::never(self.dialect);
        };
        if located.step.is_some() {
            return Sql::never(self.dialect);
        }
        match &located.source {
            Source::Stored(prefix) => {
                let prefix = prefix.clone();
                let mode = stored_mode(mode, located.indexed);
                self.stored_value_path(&prefix, &located, filter, mode)
            }
            Source::Members | Source::Groups | Source::Common => {
                let alias = self.alias();
                let condition =
                    self.computed_element(&located.source, located.attribute, &alias, filter);
                self.rows(&located, None, &alias, &condition, mode)
            }
        }
    }

    /// A value path over a stored attribute. When the value filter is a
    /// conjunction with a positive comparison, that comparison's rows drive
    /// (index lookup) and the rest is checked on the same element; otherwise
    /// every element of the attribute is examined.
    fn stored_value_path(
        &mut self,
        prefix: &str,
        located: &Located<'_>,
        filter: &Filter,
        mode: Mode,
    ) -> Sql {
        let attribute = located.attribute;
        let conjuncts: Vec<&Filter> = match filter {
            Filter::And(operands) => operands.iter().collect(),
            other => vec![other],
        };
        let driver = conjuncts
            .iter()
            .enumerate()
            .filter_map(|(index, conjunct)| {
                driver_rank(attribute, conjunct).map(|rank| (rank, index))
            })
            .min()
            .map(|(_, index)| index);
        let alias = self.alias();
        let mut conditions = Vec::new();
        let row_path = match driver.and_then(|index| conjuncts.get(index)) {
            Some(Filter::Compare { path, op, value }) => {
                let Some((definition, is_element)) = element_definition(attribute, path) else {
                    return Sql::never(self.dialect);
                };
                let Some(condition) = self.compare_condition(
                    &Columns::stored(self.dialect, &alias),
                    definition,
                    *op,
                    value,
                ) else {
                    return Sql::never(self.dialect);
                };
                conditions.push(condition);
                if is_element {
                    conditions.push(format!("{alias}.item = 0"));
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{}", definition.name.to_ascii_lowercase())
                }
            }
            _ => {
                conditions.push(format!("{alias}.item = 0"));
                prefix.to_owned()
            }
        };
        let element = Element {
            resource: format!("{alias}.resource_seq"),
            index: format!("{alias}.element"),
            indexed: located.indexed,
        };
        for (index, conjunct) in conjuncts.iter().enumerate() {
            if Some(index) != driver {
                conditions.push(self.stored_element(prefix, attribute, &element, conjunct));
            }
        }
        let path = self.bind_path(&row_path);
        let condition = join(&conditions, " AND ", self.dialect.truth(true));
        let indexed = indexed_condition(self.dialect, located.indexed, &alias);
        let tenant = self.dialect.placeholder(1);
        match mode {
            Mode::Drive => Sql::Set(format!(
                "SELECT {alias}.resource_seq FROM resource_values {alias}
                  WHERE {alias}.tenant_id = {tenant} AND {alias}.path_id = {path}{indexed}
                  AND {condition}"
            )),
            Mode::Check => Sql::Predicate(format!(
                "EXISTS (SELECT 1 FROM resource_values {alias}
                  WHERE {alias}.resource_seq = r.seq AND {alias}.path_id = {path}{indexed}
                  AND {condition})"
            )),
        }
    }

    /// A value filter on one element of a stored attribute.
    fn stored_element(
        &mut self,
        prefix: &str,
        attribute: &Attribute,
        element: &Element,
        filter: &Filter,
    ) -> String {
        self.element_tree(filter, &mut |this, leaf| {
            this.stored_leaf(prefix, attribute, element, leaf)
        })
    }

    /// The and/or/not structure of a value filter, with `leaf` writing
    /// each `pr` and comparison; a nested value path matches nothing.
    fn element_tree(
        &mut self,
        filter: &Filter,
        leaf: &mut dyn FnMut(&mut Self, &Filter) -> String,
    ) -> String {
        match filter {
            Filter::And(operands) => {
                let parts: Vec<String> = operands
                    .iter()
                    .map(|operand| self.element_tree(operand, leaf))
                    .collect();
                join(&parts, " AND ", self.dialect.truth(true))
            }
            Filter::Or(operands) => {
                let parts: Vec<String> = operands
                    .iter()
                    .map(|operand| self.element_tree(operand, leaf))
                    .collect();
                join(&parts, " OR ", self.dialect.truth(false))
            }
            Filter::Not(operand) => format!("NOT ({})", self.element_tree(operand, leaf)),
            Filter::ValuePath { .. } => self.never_text(),
            Filter::Present(_) | Filter::Compare { .. } => leaf(self, filter),
        }
    }

    /// One `pr` or comparison of a value filter on a stored element.
    fn stored_leaf(
        &mut self,
        prefix: &str,
        attribute: &Attribute,
        element: &Element,
        filter: &Filter,
    ) -> String {
        match filter {
            Filter::Present(path) => {
                let Some((definition, is_element)) = element_definition(attribute, path) else {
                    return self.never_text();
                };
                let alias = self.alias();
                let condition = Columns::stored(self.dialect, &alias).present;
                self.element_row(prefix, element, definition, is_element, &alias, &condition)
            }
            Filter::Compare { path, op, value } => {
                if element_definition(attribute, path).is_none() {
                    return self.never_text();
                }
                match element_compare(path, *op, value) {
                    ElementCompare::Negated(positive) => {
                        return format!(
                            "NOT ({})",
                            self.stored_element(prefix, attribute, element, &positive)
                        );
                    }
                    ElementCompare::Never => return self.never_text(),
                    ElementCompare::Direct => {}
                }
                let Some((definition, is_element)) = element_definition(attribute, path) else {
                    return self.never_text();
                };
                let alias = self.alias();
                let Some(condition) = self.compare_condition(
                    &Columns::stored(self.dialect, &alias),
                    definition,
                    *op,
                    value,
                ) else {
                    return self.never_text();
                };
                self.element_row(prefix, element, definition, is_element, &alias, &condition)
            }
            _ => self.stored_element(prefix, attribute, element, filter),
        }
    }

    /// Whether the element has a row at `definition` satisfying `condition`.
    fn element_row(
        &mut self,
        prefix: &str,
        element: &Element,
        definition: &Attribute,
        is_element: bool,
        alias: &str,
        condition: &str,
    ) -> String {
        let (path, item) = if is_element {
            (prefix.to_owned(), format!(" AND {alias}.item = 0"))
        } else {
            (
                format!("{prefix}.{}", definition.name.to_ascii_lowercase()),
                String::new(),
            )
        };
        let path = self.bind_path(&path);
        let indexed = indexed_condition(self.dialect, element.indexed, alias);
        format!(
            "EXISTS (SELECT 1 FROM resource_values {alias}
              WHERE {alias}.resource_seq = {} AND {alias}.path_id = {path}{indexed}
              AND {alias}.element = {}{item} AND ({condition}))",
            element.resource, element.index
        )
    }

    /// A value filter on one element not in the attribute index (a
    /// `members` or `groups` row, or the resource row for `id` and `meta`,
    /// read through `alias`). Never NULL: each leaf is wrapped.
    fn computed_element(
        &mut self,
        source: &Source,
        attribute: &Attribute,
        alias: &str,
        filter: &Filter,
    ) -> String {
        self.element_tree(filter, &mut |this, leaf| {
            this.computed_leaf(source, attribute, alias, leaf)
        })
    }

    /// One `pr` or comparison of a value filter on an element not in the
    /// attribute index.
    fn computed_leaf(
        &mut self,
        source: &Source,
        attribute: &Attribute,
        alias: &str,
        filter: &Filter,
    ) -> String {
        match filter {
            Filter::Present(path) => {
                let columns = element_definition(attribute, path)
                    .and_then(|(definition, _)| self.computed_columns(source, alias, definition));
                match columns {
                    Some(columns) => columns.present,
                    None => self.never_text(),
                }
            }
            Filter::Compare { path, op, value } => {
                if element_definition(attribute, path).is_none() {
                    return self.never_text();
                }
                match element_compare(path, *op, value) {
                    ElementCompare::Negated(positive) => {
                        return format!(
                            "NOT ({})",
                            self.computed_element(source, attribute, alias, &positive)
                        );
                    }
                    ElementCompare::Never => return self.never_text(),
                    ElementCompare::Direct => {}
                }
                let Some((definition, _)) = element_definition(attribute, path) else {
                    return self.never_text();
                };
                let condition = self
                    .computed_columns(source, alias, definition)
                    .and_then(|columns| self.compare_condition(&columns, definition, *op, value));
                match condition {
                    Some(condition) => {
                        format!("coalesce(({condition}), {})", self.dialect.truth(false))
                    }
                    None => self.never_text(),
                }
            }
            _ => self.computed_element(source, attribute, alias, filter),
        }
    }

    /// The condition on one value for `op value` (`op` is not `ne`, `value`
    /// not null); `None` when no value can satisfy it (e.g. `co` on a number).
    pub(crate) fn compare_condition(
        &mut self,
        columns: &Columns,
        definition: &Attribute,
        op: CompareOp,
        value: &FilterValue,
    ) -> Option<String> {
        match value {
            // Compared with a boolean attribute, "True"/"False" in any case
            // are booleans, as the evaluator says (Entra ID's
            // `roles[primary eq "True"]`); other strings match nothing.
            FilterValue::String(text) if definition.kind == AttributeType::Boolean => {
                let flag = if text.eq_ignore_ascii_case("true") {
                    true
                } else if text.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return None;
                };
                self.compare_condition(columns, definition, op, &FilterValue::Boolean(flag))
            }
            FilterValue::String(text) => {
                let string = self.string_condition(columns, definition, op, text);
                if definition.kind == AttributeType::DateTime && is_ordering(op) {
                    if let Some(instant) = self.bind_instant(text) {
                        let sql_op = sql_operator(op)?;
                        let time = &columns.time;
                        return Some(format!(
                            "(({time} IS NOT NULL AND {time} {sql_op} {instant})
                              OR ({time} IS NULL AND {string}))"
                        ));
                    }
                }
                Some(string)
            }
            FilterValue::Number(number) => {
                let sql_op = sql_operator(op)?;
                // PostgreSQL's `value_num` is a double: compare with one.
                let bound = match (self.dialect, number.as_i64()) {
                    (Dialect::Sqlite, Some(integer)) => Param::Integer(integer),
                    _ => Param::Real(number.as_f64()?),
                };
                let bound = self.bind(bound);
                Some(format!("{} {sql_op} {bound}", columns.number))
            }
            FilterValue::Boolean(flag) => {
                if op != CompareOp::Eq {
                    return None;
                }
                let bound = self.bind(self.dialect.flag(*flag));
                Some(format!("{} = {bound}", columns.flag))
            }
            FilterValue::Null => None,
        }
    }

    fn string_condition(
        &mut self,
        columns: &Columns,
        definition: &Attribute,
        op: CompareOp,
        text: &str,
    ) -> String {
        let case_exact = definition.case_exact || definition.kind == AttributeType::Binary;
        if !case_exact {
            let lower = text.to_lowercase();
            return self.text_condition(&columns.lower, op, &lower);
        }
        if op == CompareOp::Eq {
            // Equal texts have equal lower-cased forms, so the indexed lower
            // column narrows first and the exact text decides.
            let lower = self.bind(Param::Text(text.to_lowercase()));
            let exact = self.bind_text(text);
            return format!(
                "({} = {lower} AND {} = {exact})",
                columns.lower, columns.exact
            );
        }
        self.text_condition(&columns.exact, op, text)
    }

    /// An RFC 3339 text bound as an instant to compare with instant
    /// columns (SQLite: its sortable text; PostgreSQL: a `timestamptz`);
    /// `None` when the text is not RFC 3339.
    fn bind_instant(&mut self, text: &str) -> Option<String> {
        match self.dialect {
            Dialect::Sqlite => {
                let instant = sortable_instant(text)?;
                Some(self.bind(Param::Text(instant)))
            }
            Dialect::Postgres => Some(self.bind(Param::Time(instant(text)?))),
        }
    }

    /// `column op text`, comparing by code point.
    fn text_condition(&mut self, column: &str, op: CompareOp, text: &str) -> String {
        if self.dialect == Dialect::Postgres {
            return self.pattern_condition(column, op, text);
        }
        match op {
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Lt
            | CompareOp::Le => {
                let sql_op = sql_operator(op).unwrap_or("=");
                let bound = self.bind_text(text);
                format!("{column} {sql_op} {bound}")
            }
            CompareOp::Co => {
                let bound = self.bind_text(text);
                format!("instr({column}, {bound}) > 0")
            }
            CompareOp::Sw if text.is_empty() => format!("{column} IS NOT NULL"),
            CompareOp::Sw => match successor(text) {
                // `text <= x < successor` is exactly "x starts with text",
                // and the index can answer it.
                Some(upper) => {
                    let lower = self.bind_text(text);
                    let upper = self.bind(Param::Text(upper));
                    format!("({column} >= {lower} AND {column} < {upper})")
                }
                None => {
                    let length = self.bind(Param::Integer(char_count(text)));
                    let bound = self.bind_text(text);
                    format!("substr({column}, 1, {length}) = {bound}")
                }
            },
            CompareOp::Ew if text.is_empty() => format!("{column} IS NOT NULL"),
            CompareOp::Ew => {
                let length = self.bind(Param::Integer(-char_count(text)));
                let bound = self.bind_text(text);
                format!("substr({column}, {length}) = {bound}")
            }
        }
    }

    /// [`Self::text_condition`] on PostgreSQL: orderings with the byte-wise
    /// operators and `co`, `sw` and `ew` as `LIKE` (its wildcards escaped in
    /// the text), which the pattern and trigram indexes answer.
    fn pattern_condition(&mut self, column: &str, op: CompareOp, text: &str) -> String {
        let pattern = match op {
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Lt
            | CompareOp::Le => {
                let sql_op = self.dialect.text_order(sql_operator(op).unwrap_or("="));
                let bound = self.bind_text(text);
                return format!("{column} {sql_op} {bound}");
            }
            CompareOp::Sw | CompareOp::Ew if text.is_empty() => {
                return format!("{column} IS NOT NULL")
            }
            CompareOp::Co => format!("%{}%", like_escaped(text)),
            CompareOp::Sw => format!("{}%", like_escaped(text)),
            CompareOp::Ew => format!("%{}", like_escaped(text)),
        };
        let bound = self.bind(Param::Text(pattern));
        format!("{column} LIKE {bound}")
    }
}

/// `text` with `LIKE`'s wildcards and its escape character escaped.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// How well a conjunct of a value filter on `attribute` can drive the
/// search (lower is better: an index lookup of few rows), or `None` if it
/// cannot (a negation, `ne`, `eq null`, a path that names nothing).
fn driver_rank(attribute: &Attribute, conjunct: &Filter) -> Option<u8> {
    let Filter::Compare { path, op, value } = conjunct else {
        return None;
    };
    let (definition, _) = element_definition(attribute, path)?;
    let text = matches!(value, FilterValue::String(_));
    let rank = match op {
        CompareOp::Ne => return None,
        _ if *value == FilterValue::Null => return None,
        // `value` is the distinguishing sub-attribute; `type` and `primary`
        // hold few distinct values.
        CompareOp::Eq if text && definition.name.eq_ignore_ascii_case("value") => 0,
        CompareOp::Eq if text => 1,
        CompareOp::Sw if text => 2,
        CompareOp::Eq | CompareOp::Sw => 3,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => 3,
        CompareOp::Co | CompareOp::Ew => 4,
    };
    Some(rank)
}

impl QueryBuilder<'_> {
    /// Whether `filter` can be enumerated from an index (as opposed to only
    /// checked): negations cannot, nor clauses on stored paths that are not
    /// in the lookup index.
    fn drivable(&self, filter: &Filter) -> bool {
        let indexed = |path: &AttrPath| self.locate(path).is_none_or(|located| located.indexed);
        match filter {
            Filter::And(operands) => operands.iter().any(|operand| self.drivable(operand)),
            Filter::Or(operands) => {
                !operands.is_empty() && operands.iter().all(|operand| self.drivable(operand))
            }
            Filter::Not(_) => false,
            Filter::Present(path) | Filter::ValuePath { path, .. } => indexed(path),
            Filter::Compare { path, op, value } => {
                !(*op == CompareOp::Ne || (*op == CompareOp::Eq && *value == FilterValue::Null))
                    && indexed(path)
            }
        }
    }
}

/// The mode a clause on stored rows is written in: a path whose rows are
/// not in the lookup index cannot drive (enumerating it would read every
/// row of the path in every tenant), so it checks each resource found by
/// the rest of the query, at worst each of the tenant's resources of the
/// type (`resources_by_type`), through the primary key.
fn stored_mode(mode: Mode, indexed: bool) -> Mode {
    if indexed {
        mode
    } else {
        Mode::Check
    }
}

/// The extra condition on a row of `alias` of an indexed path: it lets
/// the database use the partial indexes (SQLite's `WHERE indexed = 1`,
/// PostgreSQL's `WHERE indexed`), and holds for every row of the path (the
/// rows of a tenant's path are all indexed or all not). A literal, never a
/// parameter, so plans never depend on a bound value.
fn indexed_condition(dialect: Dialect, indexed: bool, alias: &str) -> String {
    if indexed {
        format!(" AND {}", dialect.holds(&format!("{alias}.indexed")))
    } else {
        String::new()
    }
}

fn join(parts: &[String], separator: &str, empty: &str) -> String {
    if parts.is_empty() {
        return empty.to_owned();
    }
    format!("({})", parts.join(separator))
}

/// Whether `op` is decided by an ordering (so dateTime compares as instants).
fn is_ordering(op: CompareOp) -> bool {
    match op {
        CompareOp::Eq
        | CompareOp::Ne
        | CompareOp::Gt
        | CompareOp::Ge
        | CompareOp::Lt
        | CompareOp::Le => true,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn sql_operator(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Ne => Some("<>"),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => None,
    }
}

fn char_count(text: &str) -> i64 {
    i64::try_from(text.chars().count()).unwrap_or(i64::MAX)
}

/// The smallest text greater than every text starting with `prefix`: the
/// prefix with its last character incremented. `None` if that character is
/// the last code point.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = match last {
        '\u{D7FF}' => '\u{E000}',
        other => char::from_u32(u32::from(other) + 1)?,
    };
    chars.push(next);
    Some(chars.into_iter().collect())
}

/// How a comparison inside a value filter becomes SQL: `ne` is the negation
/// of `eq`, and `eq null` of `pr`; any other comparison with `null` matches
/// nothing; the rest compare directly.
enum ElementCompare {
    /// The negation of this filter.
    Negated(Filter),
    /// Matches nothing.
    Never,
    /// Compare the value as it is.
    Direct,
}

fn element_compare(path: &AttrPath, op: CompareOp, value: &FilterValue) -> ElementCompare {
    match (op, value) {
        (CompareOp::Ne, _) => ElementCompare::Negated(Filter::Compare {
            path: path.clone(),
            op: CompareOp::Eq,
            value: value.clone(),
        }),
        (CompareOp::Eq, FilterValue::Null) => {
            ElementCompare::Negated(Filter::Present(path.clone()))
        }
        (_, FilterValue::Null) => ElementCompare::Never,
        _ => ElementCompare::Direct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_plain_characters() {
        assert_eq!(like_escaped(r"100%_x\y"), r"100\%\_x\\y");
    }

    #[test]
    fn successor_bounds_prefixes() {
        assert_eq!(successor("ab").as_deref(), Some("ac"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}"), None);
        assert_eq!(successor(""), None);
    }
}
