//! Bearer tokens on PostgreSQL (hashes only).

use super::PostgresStore;
use crate::{StoreError, TenantId, TokenRecord};

/// [`crate::Store::create_token`].
pub(super) async fn create(
    store: &PostgresStore,
    tenant: &TenantId,
    token: TokenRecord,
) -> Result<(), StoreError> {
    let _ = (store, tenant, token);
    todo!()
}

/// [`crate::Store::list_tokens`].
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<TokenRecord>, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::Store::revoke_token`].
pub(super) async fn revoke(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<(), StoreError> {
    let _ = (store, tenant, name);
    todo!()
}

/// [`crate::Store::find_token`].
pub(super) async fn find(
    store: &PostgresStore,
    secret_hash: &str,
) -> Result<Option<(TenantId, TokenRecord)>, StoreError> {
    let _ = (store, secret_hash);
    todo!()
}
