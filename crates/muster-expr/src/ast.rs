//! The syntax tree of a parsed expression and its canonical printer.

use std::fmt;

use crate::error::Position;
use crate::functions::Function;
use crate::lexer::CmpOp;

/// A regex literal and its compiled form (equal when the text is).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) text: String,
    pub(crate) regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// A node of the tree and where it starts in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) position: Position,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// `[name]`: a source attribute.
    Attr(String),
    /// `"text"`.
    Str(String),
    /// `42`, `-10`, `&HF7`.
    Num(i64),
    /// A string literal given as Replace's regex, compiled once at parse time.
    Pattern(Pattern),
    /// `vbTextCompare` (true) or `vbBinaryCompare` (false).
    TextCompare(bool),
    /// `Name(arg, , arg)`; `None` is an empty argument.
    Call {
        function: Function,
        args: Vec<Option<Node>>,
    },
    /// `left op right`.
    Compare {
        op: CmpOp,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    /// Adds the attribute names under this node, in order of appearance.
    pub(crate) fn collect_attributes<'a>(&'a self, names: &mut Vec<&'a str>) {
        match &self.kind {
            NodeKind::Attr(name) => {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
            NodeKind::Call { args, .. } => {
                for arg in args.iter().flatten() {
                    arg.collect_attributes(names);
                }
            }
            NodeKind::Compare { left, right, .. } => {
                left.collect_attributes(names);
                right.collect_attributes(names);
            }
            NodeKind::Str(_)
            | NodeKind::Num(_)
            | NodeKind::Pattern(_)
            | NodeKind::TextCompare(_) => {}
        }
    }

    /// Adds the functions under this node, each once.
    pub(crate) fn collect_functions(&self, functions: &mut Vec<Function>) {
        match &self.kind {
            NodeKind::Call { function, args } => {
                if !functions.contains(function) {
                    functions.push(*function);
                }
                for arg in args.iter().flatten() {
                    arg.collect_functions(functions);
                }
            }
            NodeKind::Compare { left, right, .. } => {
                left.collect_functions(functions);
                right.collect_functions(functions);
            }
            _ => {}
        }
    }
}

/// Prints the canonical form: documented function names, `", "` between
/// arguments, strings re-escaped. Parsing the output gives the same tree.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Attr(name) => write!(f, "[{name}]"),
            NodeKind::Str(text) | NodeKind::Pattern(Pattern { text, .. }) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
            NodeKind::Num(n) => write!(f, "{n}"),
            NodeKind::TextCompare(true) => f.write_str("vbTextCompare"),
            NodeKind::TextCompare(false) => f.write_str("vbBinaryCompare"),
            NodeKind::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(arg) = arg {
                        write!(f, "{arg}")?;
                    }
                }
                f.write_str(")")
            }
            NodeKind::Compare { op, left, right } => {
                write!(f, "{left} {} {right}", op.symbol())
            }
        }
    }
}
