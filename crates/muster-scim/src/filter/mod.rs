//! SCIM filters (RFC 7644 section 3.4.2.2): the AST, a linear-time parser with
//! limits, a printer that round-trips, and an in-memory evaluator.
//!
//! The AST is what the storage layer translates to SQL; the evaluator is the
//! reference semantics that translation is tested against.

mod ast;
mod eval;
mod parse;
mod print;

pub use ast::{CompareOp, Filter, FilterLimits, FilterValue};
mod check;
mod lex;
mod slots;
pub use slots::{CompiledFilter, FilterPaths, LocatedResource};
