//! The document as an untyped tree with source positions, read from TOML
//! (with spans) or JSON (without), and the reader that decodes it into the
//! rule-set model while collecting errors.
//!
//! Decoding by hand rather than with `serde` derives gives every error its
//! line, its rule id and a "did you mean" for misspelt keys, and lets the
//! same decoder read both formats.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::error::{did_you_mean, ErrorKind, Location, RuleError};

/// A value of the document.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: NodeValue,
    /// Byte range in the TOML text; `None` for JSON.
    pub(crate) span: Option<Range<usize>>,
}

/// The kinds of values TOML and JSON share (TOML date-times are kept only to
/// be refused with their name).
#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    String(String),
    Integer(i64),
    Float,
    Boolean(bool),
    DateTime,
    Null,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One key of a table.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Option<Range<usize>>,
    pub(crate) value: Node,
}

impl Node {
    /// What the value is, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            NodeValue::String(_) => "a string",
            NodeValue::Integer(_) => "an integer",
            NodeValue::Float => "a number with a fraction",
            NodeValue::Boolean(_) => "a boolean",
            NodeValue::DateTime => "a date-time",
            NodeValue::Null => "null",
            NodeValue::Array(_) => "an array",
            NodeValue::Table(_) => "a table",
        }
    }

    /// Reads a TOML document.
    pub(crate) fn from_toml(text: &str) -> Result<Node, (String, Option<Range<usize>>)> {
        let table = DeTable::parse(text).map_err(|error| {
            (
                error.message().trim_end().to_owned(),
                error.span().map(|span| span.start..span.end),
            )
        })?;
        let span = table.span();
        Ok(Node {
            value: NodeValue::Table(toml_entries(table.into_inner())),
            span: Some(span),
        })
    }

    /// Reads a JSON document.
    pub(crate) fn from_json(value: &serde_json::Value) -> Node {
        let value = match value {
            serde_json::Value::Null => NodeValue::Null,
            serde_json::Value::Bool(flag) => NodeValue::Boolean(*flag),
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(integer) => NodeValue::Integer(integer),
                None => NodeValue::Float,
            },
            serde_json::Value::String(text) => NodeValue::String(text.clone()),
            serde_json::Value::Array(items) => {
                NodeValue::Array(items.iter().map(Node::from_json).collect())
            }
            serde_json::Value::Object(members) => NodeValue::Table(
                members
                    .iter()
                    .map(|(key, value)| Entry {
                        key: key.clone(),
                        key_span: None,
                        value: Node::from_json(value),
                    })
                    .collect(),
            ),
        };
        Node { value, span: None }
    }
}

fn toml_entries(table: DeTable<'_>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = table
        .into_iter()
        .map(|(key, value)| {
            let key_span = key.span();
            Entry {
                key: key.into_inner().into_owned(),
                key_span: Some(key_span),
                value: toml_node(value),
            }
        })
        .collect();
    // Keys in document order, whatever map the parser used.
    entries.sort_by_key(|entry| entry.key_span.as_ref().map_or(0, |span| span.start));
    entries
}

fn toml_node(value: toml::Spanned<DeValue<'_>>) -> Node {
    let span = value.span();
    let value = match value.into_inner() {
        DeValue::String(text) => NodeValue::String(text.into_owned()),
        DeValue::Integer(integer) => match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(integer) => NodeValue::Integer(integer),
            Err(_) => NodeValue::Float,
        },
        DeValue::Float(_) => NodeValue::Float,
        DeValue::Boolean(flag) => NodeValue::Boolean(flag),
        DeValue::Datetime(_) => NodeValue::DateTime,
        DeValue::Array(items) => NodeValue::Array(items.into_iter().map(toml_node).collect()),
        DeValue::Table(table) => NodeValue::Table(toml_entries(table)),
    };
    Node {
        value,
        span: Some(span),
    }
}

/// Turns byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        LineIndex { text, starts }
    }

    /// The line and column of a byte offset.
    pub(crate) fn locate(&self, offset: usize) -> Location {
        let line = self.starts.partition_point(|start| *start <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |before| before.chars().count() + 1);
        Location {
            file: None,
            line,
            column,
        }
    }
}

/// Where a value is being read: its key path and the rule it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) field: String,
    pub(crate) rule: Option<String>,
}

impl Place {
    pub(crate) fn root() -> Self {
        Place {
            field: String::new(),
            rule: None,
        }
    }

    /// The place of a key inside this one.
    pub(crate) fn key(&self, key: &str) -> Place {
        let field = if self.field.is_empty() {
            key.to_owned()
        } else if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            format!("{}.{key}", self.field)
        } else {
            format!("{}.\"{}\"", self.field, key.replace('"', "\\\""))
        };
        Place {
            field,
            rule: self.rule.clone(),
        }
    }

    /// The place of an array element inside this one.
    pub(crate) fn index(&self, index: usize) -> Place {
        Place {
            field: format!("{}[{index}]", self.field),
            rule: self.rule.clone(),
        }
    }

    /// The same place, known to be inside rule `rule`.
    pub(crate) fn in_rule(&self, rule: &str) -> Place {
        Place {
            field: self.field.clone(),
            rule: Some(rule.to_owned()),
        }
    }
}

/// Reads the tree, collecting errors.
pub(crate) struct Reader<'t> {
    lines: Option<LineIndex<'t>>,
    pub(crate) errors: Vec<RuleError>,
}

impl<'t> Reader<'t> {
    /// A reader for a TOML document (with locations) or JSON (`text` None).
    pub(crate) fn new(text: Option<&'t str>) -> Self {
        Reader {
            lines: text.map(LineIndex::new),
            errors: Vec::new(),
        }
    }

    /// The location of a span, when the document has them.
    pub(crate) fn location(&self, span: Option<&Range<usize>>) -> Option<Location> {
        let lines = self.lines.as_ref()?;
        span.map(|span| lines.locate(span.start))
    }

    /// Records an error at `span`.
    pub(crate) fn error(
        &mut self,
        kind: ErrorKind,
        place: &Place,
        span: Option<&Range<usize>>,
        message: impl Into<String>,
    ) {
        let location = self.location(span);
        self.errors.push(RuleError {
            kind,
            rule: place.rule.clone(),
            location,
            field: place.field.clone(),
            message: message.into(),
        });
    }

    /// Records a value of the wrong type.
    pub(crate) fn expected(&mut self, place: &Place, node: &Node, what: &str) {
        self.error(
            ErrorKind::InvalidValue,
            place,
            node.span.as_ref(),
            format!("expected {what}, found {}", node.describe()),
        );
    }

    /// The entries of a table, refusing keys not in `allowed` (with a "did
    /// you mean"). `None` (and an error) when `node` is not a table.
    pub(crate) fn table<'n>(
        &mut self,
        node: &'n Node,
        place: &Place,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let NodeValue::Table(entries) = &node.value else {
            self.expected(place, node, "a table");
            return None;
        };
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                let hint = did_you_mean(&entry.key, allowed.iter().copied());
                let known = if hint.is_empty() {
                    format!("; expected one of {}", allowed.join(", "))
                } else {
                    hint
                };
                self.error(
                    ErrorKind::UnknownKey,
                    &place.key(&entry.key),
                    entry.key_span.as_ref(),
                    format!("unknown key '{}'{known}", entry.key),
                );
            }
        }
        Some(Fields { entries })
    }

    /// A string value.
    pub(crate) fn string<'n>(&mut self, node: &'n Node, place: &Place) -> Option<&'n str> {
        match &node.value {
            NodeValue::String(text) => Some(text),
            _ => {
                self.expected(place, node, "a string");
                None
            }
        }
    }

    /// A name: a string, trimmed, not empty, without control characters,
    /// at most [`MAX_NAME_CHARS`] characters.
    pub(crate) fn name<'n>(&mut self, node: &'n Node, place: &Place) -> Option<&'n str> {
        let text = self.string(node, place)?;
        let trimmed = text.trim();
        let problem = if trimmed.is_empty() {
            Some("a name may not be empty".to_owned())
        } else if trimmed.chars().any(char::is_control) {
            Some("a name may not hold control characters".to_owned())
        } else if trimmed.chars().count() > MAX_NAME_CHARS {
            Some(format!(
                "a name may hold at most {MAX_NAME_CHARS} characters"
            ))
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.error(ErrorKind::InvalidValue, place, node.span.as_ref(), message);
                None
            }
            None => Some(trimmed),
        }
    }

    /// An integer value.
    pub(crate) fn integer(&mut self, node: &Node, place: &Place) -> Option<i64> {
        match &node.value {
            NodeValue::Integer(integer) => Some(*integer),
            _ => {
                self.expected(place, node, "an integer");
                None
            }
        }
    }

    /// A boolean value.
    pub(crate) fn boolean(&mut self, node: &Node, place: &Place) -> Option<bool> {
        match &node.value {
            NodeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.expected(place, node, "true or false");
                None
            }
        }
    }

    /// The elements of an array (at most `limit`).
    pub(crate) fn array<'n>(
        &mut self,
        node: &'n Node,
        place: &Place,
        limit: usize,
    ) -> Option<&'n [Node]> {
        match &node.value {
            NodeValue::Array(items) if items.len() <= limit => Some(items),
            NodeValue::Array(items) => {
                self.error(
                    ErrorKind::Limit,
                    place,
                    node.span.as_ref(),
                    format!("at most {limit} entries are allowed, found {}", items.len()),
                );
                None
            }
            _ => {
                self.expected(place, node, "an array");
                None
            }
        }
    }
}

/// The longest name the catalog and rules accept, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;

/// The entries of one table, looked up by key.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'n> {
    entries: &'n [Entry],
}

impl<'n> Fields<'n> {
    /// The value of `key`, if present (keys are matched exactly: the layout
    /// is snake_case, and a wrong case is reported as an unknown key).
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        let text = "a = 1\nbé = \"x\"\n\nc = 2";
        let index = LineIndex::new(text);
        let check = |offset: usize, line: usize, column: usize| {
            let location = index.locate(offset);
            assert_eq!((location.line, location.column), (line, column), "{offset}");
        };
        check(0, 1, 1);
        check(4, 1, 5);
        check(6, 2, 1);
        check(11, 2, 5);
        check(16, 3, 1);
        check(17, 4, 1);
        check(1000, 4, 6);
    }

    #[test]
    fn toml_keys_keep_document_order_and_integers_their_value() {
        let Ok(node) = Node::from_toml("z = 0x1F\na = 1_000\nm = -3") else {
            panic!("parses");
        };
        let NodeValue::Table(entries) = node.value else {
            panic!("a table");
        };
        let seen: Vec<(String, Option<i64>)> = entries
            .iter()
            .map(|entry| {
                let value = match entry.value.value {
                    NodeValue::Integer(integer) => Some(integer),
                    _ => None,
                };
                (entry.key.clone(), value)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("z".to_owned(), Some(31)),
                ("a".to_owned(), Some(1000)),
                ("m".to_owned(), Some(-3)),
            ]
        );
    }

    #[test]
    fn places_quote_keys_that_are_not_bare() {
        let place = Place::root().key("tables").index(1).key("rows");
        assert_eq!(place.key("CC-4100").field, "tables[1].rows.CC-4100");
        assert_eq!(place.key("a b").field, "tables[1].rows.\"a b\"");
    }
}
