//! `muster-targets`: what Muster's sync engine delivers, decided without
//! I/O.
//!
//! A target document ([`TargetDocument`]) names a downstream service (any
//! SCIM 2.0 service provider, or CSV files), the users and groups that go
//! there and how each target attribute is computed: an Entra-compatible
//! expression (`muster-expr`) over the attributes of a Muster resource.
//! [`CompiledTarget::compile`] checks a document against the tenant's
//! schemas; [`map_resource`] computes a resource's target attributes; the
//! [`plan`] module turns them into a create body or the PATCH operations
//! that take the target from what it holds to what it should hold.
//!
//! The engine (`muster-sync`) does the I/O: it reads the change feed,
//! calls targets and records what they hold.

mod compile;
mod defaults;
mod document;
mod error;
mod path;
pub mod plan;

pub use compile::{
    default_rate_limit, map_resource, resolve_source, CompiledTarget, GroupSelection, Mapped,
    Mapping,
};
pub use defaults::{default_group_mappings, default_user_mappings};
pub use document::{
    check_env_name, check_name, Auth, Deletion, DeletionGuard, GenesysSettings, GroupChoice,
    GroupScope, MappingSpec, RateLimit, Scope, Secret, SkillScale, TargetDocument, TargetKind,
    ENV_PREFIX, MAX_MAPPINGS, MAX_NAME_LENGTH,
};
pub use error::{DocumentError, Problem};
pub use path::{get_ci, JsonPath};
