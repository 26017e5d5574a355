//! Custom schemas on PostgreSQL, their rewrites and the tenant's
//! generation.

use super::PostgresStore;
use crate::{
    Actor, RewriteFn, SchemaChangeOutcome, SchemaRecord, SharedDerivation, StoreError, TenantId,
};

/// [`crate::Store::list_schemas`].
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<SchemaRecord>, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::Store::schema_generation`].
pub(super) async fn generation(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::Store::tenant_schemas`].
pub(super) async fn list_at_generation(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<(u64, Vec<SchemaRecord>), StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::Store::put_schema`].
pub(super) async fn put(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    record: SchemaRecord,
    rewrite: Option<RewriteFn>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    let _ = (
        store,
        tenant,
        actor,
        record,
        rewrite,
        rederive,
        expected_generation,
    );
    todo!()
}

/// [`crate::Store::delete_schema`].
pub(super) async fn delete(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    urn: &str,
    rewrite: Option<RewriteFn>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    let _ = (
        store,
        tenant,
        actor,
        urn,
        rewrite,
        rederive,
        expected_generation,
    );
    todo!()
}
