//! Printing filters back to text that parses to the same tree.
//!
//! Operators are lower case, strings are JSON-escaped, `not` is always
//! `not (...)`. Parentheses go only where the tree needs them: around an `or`
//! inside an `and` (precedence) and around an `and` inside an `and` or an `or`
//! inside an `or` (to keep the nested node). An `and` inside an `or` needs
//! none, so printing never nests deeper than the text that was parsed and the
//! printed text always passes the same depth and clause limits.
//!
//! Entra ID's `attr[filter].sub op value` parses to the value path
//! `attr[filter and sub op value]` and prints in that normalised form, which
//! parses back to the same tree; only there can printing add a level (the
//! parentheses around an `or` filter), and the parser checks the depth of
//! the normalised form too ([`printed_depth`]).
//!
//! Trees the parser cannot produce (an `And` with fewer than two operands, a
//! value path inside a value path, names that are not attribute names) print
//! as something sensible but do not round-trip.

use std::fmt::{self, Write};

use super::ast::{Filter, FilterValue};

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(operands) => write_operands(f, operands, " and ", |operand| {
                matches!(operand, Filter::And(_) | Filter::Or(_))
            }),
            Filter::Or(operands) => write_operands(f, operands, " or ", |operand| {
                matches!(operand, Filter::Or(_))
            }),
            Filter::Not(operand) => write!(f, "not ({operand})"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// The nesting depth of `filter` as [`fmt::Display`] prints it: parentheses,
/// `not (...)` and value paths each add a level, exactly where the printer
/// writes them. Iterative, so any tree is measured without recursion.
pub(super) fn printed_depth(filter: &Filter) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(filter, 0usize)];
    while let Some((node, level)) = stack.pop() {
        deepest = deepest.max(level);
        match node {
            Filter::And(operands) => stack.extend(operands.iter().map(|operand| {
                let nested = matches!(operand, Filter::And(_) | Filter::Or(_));
                (operand, level + usize::from(nested))
            })),
            Filter::Or(operands) => stack.extend(operands.iter().map(|operand| {
                let nested = matches!(operand, Filter::Or(_));
                (operand, level + usize::from(nested))
            })),
            Filter::Not(operand) => stack.push((operand, level + 1)),
            Filter::ValuePath { filter, .. } => stack.push((filter, level + 1)),
            Filter::Present(_) | Filter::Compare { .. } => {}
        }
    }
    deepest
}

fn write_operands(
    f: &mut fmt::Formatter<'_>,
    operands: &[Filter],
    separator: &str,
    needs_parentheses: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (index, operand) in operands.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        if needs_parentheses(operand) {
            write!(f, "({operand})")?;
        } else {
            write!(f, "{operand}")?;
        }
    }
    Ok(())
}

impl fmt::Display for FilterValue {
    /// The literal as filter text: a JSON string, number, `true`, `false` or `null`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::String(text) => write_json_string(f, text),
            FilterValue::Boolean(value) => write!(f, "{value}"),
            FilterValue::Null => f.write_str("null"),
            FilterValue::Number(number) => write!(f, "{number}"),
        }
    }
}

/// Writes `text` as a JSON string: quotes, backslashes and control characters
/// escaped, everything else as is.
fn write_json_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut run_start = 0;
    for (index, c) in text.char_indices() {
        let escape = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            c if c < ' ' => None,
            _ => continue,
        };
        f.write_str(text.get(run_start..index).unwrap_or_default())?;
        match escape {
            Some(escape) => f.write_str(escape)?,
            None => write!(f, "\\u{:04x}", u32::from(c))?,
        }
        run_start = index + c.len_utf8();
    }
    f.write_str(text.get(run_start..).unwrap_or_default())?;
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_depth_counts_what_the_printer_writes() {
        for (text, depth) in [
            ("a pr", 0),
            ("a pr and b pr or c pr", 0),
            ("(a pr or b pr) and c pr", 1),
            ("not (a pr)", 1),
            ("emails[type pr]", 1),
            ("emails[(type pr or value pr) and display pr]", 2),
            (r#"emails[type eq "w" or type eq "h"].value eq "x""#, 2),
            ("not (not ((a pr or b pr) and c pr))", 3),
            ("((a pr))", 0),
        ] {
            let filter = Filter::parse(text).unwrap();
            assert_eq!(printed_depth(&filter), depth, "{text}");
        }
    }

    #[test]
    fn strings_are_json_escaped() {
        let value = FilterValue::String("a\"b\\c\nd\u{1}é".to_owned());
        assert_eq!(value.to_string(), r#""a\"b\\c\nd\u0001é""#);
        let json: String = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(json, "a\"b\\c\nd\u{1}é");
    }
}
