//! Lists and scans on PostgreSQL: filters, sorting and paging in the
//! database.

use muster_scim::SchemaRegistry;

use super::PostgresStore;
use crate::{ListPage, ListQuery, StoreError, TenantId, VisitFn};

/// Each tenant's index rules as last read by a list, to plan the next one.
#[derive(Debug, Default)]
pub(super) struct RulesCache {}

/// [`crate::Store::list`].
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let _ = (store, tenant, registry, query, &store.list_rules);
    todo!("list on PostgreSQL")
}

/// [`crate::Store::scan`].
pub(super) async fn scan(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    visit: VisitFn,
) -> Result<u64, StoreError> {
    let _ = (store, tenant, resource_type, visit);
    todo!("scan on PostgreSQL")
}
