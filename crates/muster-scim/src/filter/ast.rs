//! The filter abstract syntax tree.

use crate::path::AttrPath;

/// A parsed filter expression.
///
/// `And` and `Or` are n-ary so that a long chain such as `a or b or c ...`
/// stays flat: the tree's depth grows only with parentheses and `not`, which
/// the parser bounds by [`FilterLimits::max_depth`]. A parenthesised `and`
/// inside an `and` stays a nested node, so printing and re-parsing gives back
/// the same tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All of the operands match (two or more).
    And(Vec<Filter>),
    /// Any of the operands matches (two or more).
    Or(Vec<Filter>),
    /// The operand does not match.
    Not(Box<Filter>),
    /// `attr pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `attr op value`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The comparison operator.
        op: CompareOp,
        /// The literal compared against.
        value: FilterValue,
    },
    /// `attr[filter]`: some element of the multi-valued (or complex)
    /// attribute matches `filter`, whose paths name sub-attributes.
    ///
    /// Entra ID's `attr[filter].sub op value` (and `attr[filter].sub pr`)
    /// parses to this node too, as `attr[filter and sub op value]`.
    ValuePath {
        /// The multi-valued or complex attribute (no sub-attribute).
        path: AttrPath,
        /// The filter applied to each element.
        filter: Box<Filter>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains (strings).
    Co,
    /// Starts with (strings).
    Sw,
    /// Ends with (strings).
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    /// The operator keyword, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison literal. dateTime literals are strings; they compare as
/// instants when the attribute's type is dateTime.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// A JSON string.
    String(String),
    /// `true` or `false`.
    Boolean(bool),
    /// `null`.
    Null,
    /// A JSON number.
    Number(serde_json::Number),
}

/// Limits that keep parsing and evaluation bounded on hostile input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterLimits {
    /// Maximum filter length in bytes.
    pub max_length: usize,
    /// Maximum nesting of parentheses, `not` and value paths.
    pub max_depth: usize,
    /// Maximum number of comparison and presence clauses.
    pub max_clauses: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            max_length: 8 * 1024,
            max_depth: 32,
            max_clauses: 256,
        }
    }
}
