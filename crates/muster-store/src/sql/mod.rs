//! List queries planned once, database-neutral, and rendered per dialect.
//!
//! A [`ListQuery`](crate::ListQuery) becomes a plan ([`list::plan`]): SQL
//! text and parameters over the tables both backends share (`resources`,
//! `resource_values`, `attribute_paths`, `group_members`). The planner
//! ([`query`], [`filter`], [`sort`]) decides what to read and in which
//! order; a [`Dialect`] says how each piece is spelled: placeholders
//! (`?1`/`$1`), truth values, Unicode lower case, text matching (SQLite's
//! `instr`/`substr` and ranges, PostgreSQL's `LIKE` that its pattern and
//! trigram indexes answer), code point order for text, and how an instant
//! is bound and sorted. Each backend runs the plan in its own read
//! transaction (`sqlite/list.rs`, `postgres/list.rs`).

pub(crate) mod filter;
pub(crate) mod list;
pub(crate) mod query;
pub(crate) mod sort;

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// A text.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// A boolean (SQLite stores it as 0 or 1).
    Bool(bool),
    /// An instant (PostgreSQL's `timestamptz`; SQLite binds instants as
    /// their sortable text instead).
    Time(SystemTime),
}

/// The SQL dialect a plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite, with Muster's functions `muster_lower` and `muster_instant`
    /// (`sqlite/schema.rs`); booleans are 0 and 1, instants sortable text.
    Sqlite,
    /// PostgreSQL: booleans, `timestamptz` instants, `LIKE` for text
    /// matching, byte (code point) order for text.
    Postgres,
}

impl Dialect {
    /// The placeholder of the `number`th parameter (from 1).
    pub(crate) fn placeholder(self, number: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{number}"),
            Dialect::Postgres => format!("${number}"),
        }
    }

    /// The literal of a truth value.
    pub(crate) fn truth(self, value: bool) -> &'static str {
        match (self, value) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (Dialect::Postgres, true) => "true",
            (Dialect::Postgres, false) => "false",
        }
    }

    /// The condition that a boolean column holds.
    pub(crate) fn holds(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{column} = 1"),
            Dialect::Postgres => column.to_owned(),
        }
    }

    /// The parameter of a boolean.
    pub(crate) fn flag(self, value: bool) -> Param {
        match self {
            Dialect::Sqlite => Param::Integer(i64::from(value)),
            Dialect::Postgres => Param::Bool(value),
        }
    }

    /// Unicode lower case of a text expression, as the filter evaluator
    /// compares (SQLite's own `lower` folds ASCII only).
    pub(crate) fn lower(self, expression: &str) -> String {
        match self {
            Dialect::Sqlite => format!("muster_lower({expression})"),
            Dialect::Postgres => format!("lower({expression})"),
        }
    }

    /// The sortable instant of a text expression that is not an instant
    /// column (`NULL` on PostgreSQL, which has no function for it: no such
    /// value is a dateTime, so none is compared as an instant).
    pub(crate) fn instant_of_text(self, expression: &str) -> String {
        match self {
            Dialect::Sqlite => format!("muster_instant({expression})"),
            Dialect::Postgres => "NULL".to_owned(),
        }
    }

    /// The join that keeps the written order (SQLite's `CROSS JOIN`; a
    /// PostgreSQL join with `ON` is a plain `JOIN`).
    pub(crate) fn join(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CROSS JOIN",
            Dialect::Postgres => "JOIN",
        }
    }

    /// The text comparison operator for an ordering, by code point: plain
    /// on SQLite (binary collation); on PostgreSQL the byte-wise pattern
    /// operators, which the `text_pattern_ops` index serves, whatever the
    /// database's collation.
    pub(crate) fn text_order(self, operator: &'static str) -> &'static str {
        match (self, operator) {
            (Dialect::Postgres, ">") => "~>~",
            (Dialect::Postgres, ">=") => "~>=~",
            (Dialect::Postgres, "<") => "~<~",
            (Dialect::Postgres, "<=") => "~<=~",
            (_, other) => other,
        }
    }

    /// A text column ordered by code point (SQLite's binary collation;
    /// PostgreSQL's `C`).
    pub(crate) fn text_key(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("{column} COLLATE \"C\""),
        }
    }

    /// A text sort value ordered by code point.
    pub(crate) fn text_sort(self, expression: String) -> String {
        match self {
            Dialect::Sqlite => expression,
            Dialect::Postgres => self.text_key(&format!("({expression})")),
        }
    }

    /// The sortable text of an instant column: SQLite's column already is
    /// (`values::sortable_instant`); on PostgreSQL, microseconds since the
    /// epoch, offset to be positive and zero-padded, so text order is time
    /// order across the whole `timestamptz` range.
    pub(crate) fn instant_text(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!(
                "lpad((extract(epoch FROM {column}) * 1000000 + 1000000000000000000)\
                 ::numeric(30, 0)::text, 20, '0')"
            ),
        }
    }
}

/// An RFC 3339 text as an instant, as PostgreSQL's `timestamptz` columns
/// are written and compared; `None` when the text is not RFC 3339.
pub(crate) fn instant(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_compare_whatever_the_offset() {
        assert_eq!(
            instant("2021-06-01T12:00:00.5+02:00"),
            instant("2021-06-01T10:00:00.500Z")
        );
        assert!(instant("0000-01-01T00:30:00+01:00").is_some());
        assert_eq!(instant("sometime"), None);
    }
}
