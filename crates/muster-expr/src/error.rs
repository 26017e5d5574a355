//! Errors from parsing or evaluating an expression, with the position they refer to.

use std::fmt;

/// A place in the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 0-based character (not byte) offset from the start of the text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based character column within the line.
    pub column: usize,
}

impl Position {
    /// The start of the text.
    pub const START: Position = Position {
        offset: 0,
        line: 1,
        column: 1,
    };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(f, "line {}, column {}", self.line, self.column)
        } else {
            write!(f, "column {}", self.column)
        }
    }
}

/// Why an expression could not be parsed or evaluated.
///
/// Its `Display` reads `<message> at column <n>` (or `at line <l>, column <c>`
/// for multi-line text), e.g. `unknown function 'Frobnicate' at column 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExprError {
    message: String,
    position: Position,
}

impl ExprError {
    /// An error with `message` at `position`.
    pub fn new(message: impl Into<String>, position: Position) -> Self {
        Self {
            message: message.into(),
            position,
        }
    }

    /// The problem, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the problem is.
    pub fn position(&self) -> Position {
        self.position
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.position)
    }
}

/// A problem that does not stop the expression from working (e.g. a function
/// name written in a casing other than the documented one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub position: Position,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.position)
    }
}
