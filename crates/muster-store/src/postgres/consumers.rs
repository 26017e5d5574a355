//! The change feed's consumers and pruning on PostgreSQL.

use super::PostgresStore;
use crate::{ConsumerRecord, Retention, StoreError, TenantId};

/// [`crate::Store::register_consumer`].
pub(super) async fn register(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    start_at: u64,
) -> Result<u64, StoreError> {
    let _ = (store, tenant, name, start_at);
    todo!()
}

/// [`crate::Store::advance_consumer`].
pub(super) async fn advance(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    sequence: u64,
) -> Result<u64, StoreError> {
    let _ = (store, tenant, name, sequence);
    todo!()
}

/// [`crate::Store::consumer_cursor`].
pub(super) async fn cursor(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    let _ = (store, tenant, name);
    todo!()
}

/// [`crate::Store::remove_consumer`].
pub(super) async fn remove(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let _ = (store, tenant, name);
    todo!()
}

/// [`crate::Store::list_consumers`].
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<ConsumerRecord>, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::Store::prune_changes`].
pub(super) async fn prune(
    store: &PostgresStore,
    tenant: &TenantId,
    older_than: &Retention,
) -> Result<u64, StoreError> {
    let _ = (store, tenant, older_than);
    todo!()
}
