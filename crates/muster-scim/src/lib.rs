//! `muster-scim`: the SCIM 2.0 protocol core of Muster (RFC 7643, RFC 7644).
//!
//! Schemas as data with a run-time extensible registry, attribute and PATCH
//! paths, filters (parse, print, evaluate), resource validation, PATCH,
//! projection and sorting, and the wire messages.
//!
//! This crate does no I/O: no async runtime, no database, no HTTP. The server,
//! the storage layer (filter to SQL), the rules engine and the sync engine all
//! build on these semantics, so they are tested once, here.

pub mod error;
pub mod filter;
pub mod message;
pub mod path;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::{CompareOp, Filter, FilterLimits, FilterValue};
pub use path::{AttrPath, PatchPath};
pub use schema::{
    Attribute, AttributeType, Mutability, ResourceType, Returned, Schema, SchemaRegistry,
    Uniqueness,
};
pub mod projection;
pub mod sort;
pub use message::{referenced_bulk_ids, resolve_references, BulkTarget, MAX_BULK_REFERENCES};
pub use message::{
    BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest, BulkResponse, ErrorResponse,
    ListResponse, Paging, SearchRequest, ServiceProviderConfig, ServiceProviderLimits,
};
pub use projection::{remove_never_returned, Projection};
pub use sort::{sort_by_key, sort_resources, SortKey, SortOrder, SortValue};
pub mod patch;
pub mod resource;
pub use patch::canonical_operations;
pub use patch::{apply_patch, PatchOp, PatchOpKind, PatchOperation, PatchOutcome};
pub use patch::{apply_patch_with, Patched};
pub use resource::{canonicalize, check_immutable, normalize};
pub use resource::{normalize_with, Normalized, UndeclaredPolicy};
pub use schema::{
    convert_resource, convert_value, diff_schemas, parse_schema_definition,
    parse_schema_definitions, refuse_password_attributes, refuse_reserved_urn, remove_attributes,
    SchemaChanges,
};
