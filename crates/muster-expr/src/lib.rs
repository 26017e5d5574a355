//! Microsoft Entra ID attribute-mapping expressions, compatible with Entra's
//! provisioning "Expression" mappings (`Join(" ", [givenName], [surname])`).
//!
//! Parse once with [`Expression::parse`] (which checks names, argument counts
//! and placement), then evaluate many times against any [`AttributeSource`].
//! The language is described in `docs` / the Entra reference: everything is a
//! function call; `[attr]` reads a source attribute; strings use `"` with `\"`
//! and `\\` escapes; an empty argument means "not given".
//!
//! `SelectUniqueValue` returns the first rule whose value the source does not
//! report as taken ([`AttributeSource::taken_in_target`]); uniqueness itself
//! is the target's concern. `Guid`, `RandomString` and `Now` are not
//! deterministic (a source can fix `Now`).
//!
//! ```
//! use muster_expr::{Expression, Outcome};
//! use serde_json::{json, Map, Value};
//!
//! let mapping = Expression::parse(r#"Append("tel:", StripSpaces([telephoneNumber]))"#)?;
//! assert_eq!(mapping.attributes(), ["telephoneNumber"]);
//! let mut user = Map::new();
//! user.insert("telephoneNumber".into(), json!("+1 555 123 4567"));
//! assert_eq!(mapping.evaluate(&user)?, Outcome::Value(json!("tel:+15551234567")));
//!
//! let error = Expression::parse("Frobnicate([givenName])").unwrap_err();
//! assert_eq!(error.to_string(), "unknown function 'Frobnicate' at column 1");
//! # Ok::<(), muster_expr::ExprError>(())
//! ```

mod ast;
mod datetime;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod replace;
pub mod request;
mod source;
mod text;
mod value;

use std::fmt;

use serde_json::Value;

pub use error::{ExprError, Position, Warning};
pub use functions::{Function, Lookup};
pub use lexer::CmpOp;
pub use source::{AttributeSource, Attributes};
pub use value::entra_string;

/// The result of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A value; `Value::Null` means nothing is written to the target.
    Value(Value),
    /// `IgnoreFlowIfNullOrEmpty` fired: leave the target attribute out of this flow.
    Skip,
}

impl Outcome {
    /// The value, if the flow was not skipped.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Outcome::Value(value) => Some(value),
            Outcome::Skip => None,
        }
    }
}

/// Longest expression text [`Expression::parse`] reads, in bytes.
pub const MAX_EXPRESSION_LENGTH: usize = 32 * 1024;

/// Longest text a function may make while an expression is evaluated, in
/// bytes: `Replace`, `Join`, `ConvertToBase64` and the like multiply their
/// input, so nesting them would otherwise exhaust memory.
pub const MAX_TEXT_LENGTH: usize = 1 << 20;

/// A parsed, checked expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    root: ast::Node,
    warnings: Vec<Warning>,
}

impl Expression {
    /// Parses and checks `text`. The error names the problem and its position.
    pub fn parse(text: &str) -> Result<Expression, ExprError> {
        if text.len() > MAX_EXPRESSION_LENGTH {
            return Err(ExprError::new(
                format!(
                    "expected an expression of at most {MAX_EXPRESSION_LENGTH} bytes, found {} bytes",
                    text.len()
                ),
                error::Position::START,
            ));
        }
        let (root, warnings) = parser::parse(text)?;
        Ok(Expression { root, warnings })
    }

    /// Evaluates against `source`.
    pub fn evaluate(&self, source: &impl AttributeSource) -> Result<Outcome, ExprError> {
        eval::evaluate(&self.root, source)
    }

    /// The source attribute names referenced, each once, in order of appearance.
    pub fn attributes(&self) -> Vec<&str> {
        let mut names = Vec::new();
        self.root.collect_attributes(&mut names);
        names
    }

    /// The functions called, each once.
    pub fn functions(&self) -> Vec<Function> {
        let mut functions = Vec::new();
        self.root.collect_functions(&mut functions);
        functions
    }

    /// Lint warnings (e.g. a function name in a non-documented casing).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// The canonical text: documented names, `", "` between arguments.
impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}
