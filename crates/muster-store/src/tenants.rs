//! The tenant registry: which tenants exist, what they hold, and removing
//! one with everything it holds.
//!
//! Every row of every table belongs to one tenant (`tenant_id`), and the
//! tables that reference `tenants` refuse a row for a tenant that is not
//! registered, so a write to a tenant that does not exist fails with
//! [`StoreError::NotFound`] (`tenant 'x' does not exist`) and writes
//! nothing. `default` exists in every database and cannot be removed.
//!
//! Removal finds the tables to clear from the database's own catalogue
//! (every table with a `tenant_id` column but the audit trail's,
//! [`KEPT_TABLES`]), so a table a later migration adds is cleared without
//! this module knowing it; tables are cleared in the order their foreign
//! keys need (referencing tables first), in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::{StoreError, TenantId};

/// Tables a removal leaves as they are: the audit trail (`audit_log` and
/// each tenant's chain head, `audit_heads`) is append-only and
/// hash-chained per tenant, and outlives the tenant as the record of what
/// was done in it (a tenant made again under the same name continues its
/// chain); the personal data of its entries is erased with the tenant, as
/// a purge erases a user's (detail and `userName`; the chain still
/// verifies).
pub const KEPT_TABLES: &[&str] = &["audit_log", "audit_heads"];

/// The longest tenant name (a DNS label's length).
pub const MAX_TENANT_NAME: usize = 63;

/// A tenant name as `muster tenant create` accepts it and URLs carry it
/// (`/t/{tenant}/scim/v2`): 1 to 63 lowercase ASCII letters, digits and
/// `-`, starting with a letter or digit. Nothing is folded or decoded: a
/// name in another form is refused, never turned into a valid one.
pub fn parse_tenant_name(name: &str) -> Result<TenantId, String> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_TENANT_NAME || !first_ok || !name.chars().all(valid_char)
    {
        return Err(format!(
            "'{}' is not a tenant name: use 1 to {MAX_TENANT_NAME} lowercase letters, digits \
             and '-', starting with a letter or digit",
            name.escape_default()
        ));
    }
    Ok(TenantId(name.to_owned()))
}

/// A registered tenant and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    /// The tenant.
    pub tenant: TenantId,
    /// When it was registered, RFC 3339.
    pub created: String,
    /// Its stored users.
    pub users: u64,
    /// Its stored groups.
    pub groups: u64,
    /// Its bearer tokens.
    pub tokens: u64,
}

/// The rows a tenant holds, by table (tables holding none are left out),
/// in table name order.
pub type TenantHoldings = Vec<(String, u64)>;

/// The tenant registry, on both backends.
#[async_trait]
pub trait TenantStore {
    /// Registers a tenant. A name [`parse_tenant_name`] refuses is a SCIM
    /// `invalidValue`; a tenant that exists already is a
    /// [`StoreError::Conflict`].
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError>;

    /// Whether the tenant is registered.
    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError>;

    /// Every tenant, by name, with its counts.
    async fn list_tenants(&self) -> Result<Vec<TenantSummary>, StoreError>;

    /// Removes a tenant. Without `force`, a tenant that holds any row (a
    /// resource, a token, a change record, a target, a setting, ...) is
    /// refused with a [`StoreError::Conflict`] naming the tables; with
    /// `force`, every row of the tenant in every table (but the audit
    /// trail's, [`KEPT_TABLES`]) goes, with the registration, in one
    /// transaction. `default` is refused
    /// ([`StoreError::Conflict`]), an unknown tenant is
    /// [`StoreError::NotFound`]. Returns what was erased.
    async fn remove_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
    ) -> Result<TenantHoldings, StoreError>;
}

/// The refusal of a removal of `default`.
pub(crate) fn default_refused() -> StoreError {
    StoreError::Conflict("the default tenant cannot be removed".to_owned())
}

/// The error for a tenant that is not registered.
pub(crate) fn unknown_tenant(tenant: &TenantId) -> StoreError {
    StoreError::NotFound(format!("tenant '{}' does not exist", tenant.0))
}

/// The refusal of a removal without `force` of a tenant holding rows.
pub(crate) fn still_holds(tenant: &TenantId, holdings: &TenantHoldings) -> StoreError {
    let rows = holdings
        .iter()
        .map(|(table, count)| format!("{table}: {count}"))
        .collect::<Vec<_>>()
        .join(", ");
    StoreError::Conflict(format!(
        "tenant '{}' still holds rows ({rows}); remove them first, or remove the tenant with \
         --force to erase them all",
        tenant.0
    ))
}

/// The order to clear `tables` in so that no foreign key is broken on the
/// way: a table before every table it references (`references` holds
/// `(referencing, referenced)` pairs; pairs naming other tables, and a
/// table's references to itself, are ignored). A cycle (none exists today)
/// leaves its tables in name order at the end.
pub(crate) fn deletion_order(tables: &[String], references: &[(String, String)]) -> Vec<String> {
    let wanted: BTreeSet<&str> = tables
        .iter()
        .map(String::as_str)
        .filter(|table| !KEPT_TABLES.contains(table))
        .collect();
    // For each table, the tables that reference it and must go first.
    let mut referenced_by: BTreeMap<&str, BTreeSet<&str>> = wanted
        .iter()
        .map(|table| (*table, BTreeSet::new()))
        .collect();
    for (from, to) in references {
        if from != to && wanted.contains(from.as_str()) {
            if let Some(set) = referenced_by.get_mut(to.as_str()) {
                set.insert(from.as_str());
            }
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(wanted.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < wanted.len() {
        let ready: Vec<&str> = referenced_by
            .iter()
            .filter(|(table, before)| {
                !done.contains(**table) && before.iter().all(|other| done.contains(other))
            })
            .map(|(table, _)| *table)
            .collect();
        if ready.is_empty() {
            // A cycle: the rest in name order.
            for table in &wanted {
                if done.insert(table) {
                    order.push((*table).to_owned());
                }
            }
            break;
        }
        for table in ready {
            done.insert(table);
            order.push(table.to_owned());
        }
    }
    order
}

/// A table name quoted for SQL (both dialects), from the database's own
/// catalogue.
pub(crate) fn quoted(table: &str) -> String {
    format!("\"{}\"", table.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(name: &str, valid: bool) {
        assert_eq!(parse_tenant_name(name).is_ok(), valid, "{name:?}");
    }

    #[test]
    fn tenant_names() {
        for name in ["a", "b", "0", "acme-eu", "a-", &"a".repeat(63), "scim", "t"] {
            check_name(name, true);
        }
        let long = "a".repeat(64);
        for name in [
            "", "-a", "A", "Acme", "a_b", "a.b", "a/b", "..", "a%2f", "é", "a b", &long, "ａ",
        ] {
            check_name(name, false);
        }
    }

    #[test]
    fn referencing_tables_go_first() {
        let tables: Vec<String> = [
            "a_child",
            "audit_log",
            "b_parent",
            "c_grandchild",
            "d_alone",
        ]
        .map(str::to_owned)
        .to_vec();
        let references = [
            ("a_child".to_owned(), "b_parent".to_owned()),
            ("c_grandchild".to_owned(), "a_child".to_owned()),
            ("a_child".to_owned(), "tenants".to_owned()),
            ("d_alone".to_owned(), "d_alone".to_owned()),
        ];
        let order = deletion_order(&tables, &references);
        let position = |name: &str| order.iter().position(|table| table == name);
        assert_eq!(order.len(), 4, "the audit trail is kept: {order:?}");
        assert!(position("c_grandchild") < position("a_child"), "{order:?}");
        assert!(position("a_child") < position("b_parent"), "{order:?}");
    }
}
