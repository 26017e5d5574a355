//! Schemas as data (RFC 7643 section 7), the built-in schemas, and the
//! run-time extensible registry that resolves attribute paths.

pub mod builtin;
mod model;
mod registry;

pub use model::{
    Attribute, AttributeType, Mutability, ResourceType, Returned, Schema, SchemaExtension,
    Uniqueness,
};
pub use registry::{Container, ResolvedAttribute, ResolvedPath, SchemaRegistry};
