//! Printing filters back to text that parses to the same tree.

use std::fmt;

use super::ast::Filter;

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}
