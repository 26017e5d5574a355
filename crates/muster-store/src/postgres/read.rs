//! Reads of one resource on PostgreSQL, with a Group's members and a
//! User's computed groups.

use super::PostgresStore;
use crate::{ResourceId, StoreError, StoredResource, TenantId};

/// [`crate::Store::get`].
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    include_members: bool,
) -> Result<StoredResource, StoreError> {
    let _ = (store, tenant, resource_type, id, include_members);
    todo!("get on PostgreSQL")
}
