//! Attribute usage on PostgreSQL (what explain reports).

use super::PostgresStore;
use crate::{AttributeUsage, StoreError, TenantId};

/// [`crate::Store::attribute_usage`].
pub(super) async fn report(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<AttributeUsage>, StoreError> {
    let _ = (store, tenant);
    todo!()
}
