//! Schemas as data (RFC 7643 section 7), the built-in schemas, and the
//! run-time extensible registry that resolves attribute paths; custom
//! schema definitions as admins declare them (`definition`) and how stored
//! values follow a changed definition (`evolution`).

pub mod builtin;
mod definition;
mod evolution;
mod model;
mod registry;

pub use definition::{
    parse_schema_definition, parse_schema_definitions, refuse_password_attributes,
    refuse_reserved_urn, SCHEMA_SCHEMA,
};
pub use evolution::{
    convert_resource, convert_value, diff_schemas, remove_attributes, ConversionFailure,
    MultiValuedChange, PropertyChange, RemovedValue, SchemaChanges, TypeChange,
};
pub use model::{
    Attribute, AttributeType, Mutability, ResourceType, Returned, Schema, SchemaExtension,
    Uniqueness,
};
pub use registry::{Container, ResolvedAttribute, ResolvedPath, SchemaRegistry};
