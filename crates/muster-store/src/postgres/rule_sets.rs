//! Entitlement rule sets on PostgreSQL, one row per applied version.

use super::PostgresStore;
use crate::{Actor, RuleSetApplied, RuleSetRecord, SharedDerivation, StoreError, TenantId};

/// A rule set to store.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewRuleSet<'a> {
    /// The document as the admin wrote it.
    pub document: &'a str,
    /// `toml` or `json`.
    pub format: &'a str,
    /// The admin's note.
    pub note: &'a str,
}

/// [`crate::Store::put_rule_set`].
pub(super) async fn put(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    new: NewRuleSet<'_>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<RuleSetApplied, StoreError> {
    let _ = (store, tenant, actor, new, rederive, expected_generation);
    todo!()
}

/// [`crate::Store::rule_set`].
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    version: Option<u64>,
) -> Result<Option<RuleSetRecord>, StoreError> {
    let _ = (store, tenant, version);
    todo!()
}

/// [`crate::Store::rule_set_history`].
pub(super) async fn history(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<RuleSetRecord>, StoreError> {
    let _ = (store, tenant);
    todo!()
}
