//! Tenant settings on PostgreSQL.

use super::PostgresStore;
use crate::{Actor, StoreError, TenantId};

/// [`crate::Store::get_setting`].
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let _ = (store, tenant, key);
    todo!()
}

/// [`crate::Store::set_setting`].
pub(super) async fn set(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let _ = (store, tenant, actor, key, value);
    todo!()
}
