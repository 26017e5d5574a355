//! Index rules: which attribute index rows of a tenant are in the lookup
//! index (`resource_values.indexed`, the partial index
//! `resource_values_lookup ... WHERE indexed = 1`).
//!
//! The rule: a row is indexed unless its path lies under a custom extension
//! of the tenant (a live URN of `custom_schemas`) and its top-level attribute
//! is not in that schema's `searchable` list; a sub-attribute follows its
//! parent. Core, common and built-in extension paths are always indexed.
//! Non-indexed rows cost a write no index entry; a filter on them checks the
//! tenant's resources one by one instead of looking values up.
//!
//! The rules are read from the store's own tables, never taken from a
//! caller, so every process writing the database (the server, the CLI)
//! applies the same ones. `tenants.index_generation` counts their changes:
//! every schema put or delete bumps it in its transaction and flips the
//! `indexed` flag of the rows of the paths it affects ([`reindex`]). So the
//! rows of one (tenant, path) are always all indexed or all not, matching
//! the stored rules.
//!
//! The writer caches each tenant's rules on its thread and checks the
//! generation once per write transaction ([`for_writer`]), so a change made
//! by another process is honoured by the very next write. Readers plan a
//! query with cached rules and check, in the query's read transaction, that
//! the generation is still the one planned with (`list.rs`).
//!
//! The same counter is the tenant's *schema generation*
//! (`Store::schema_generation`): setting changes bump it too (`settings.rs`),
//! since the server validates writes against the schemas and the settings
//! (the undeclared-attribute policy). A write that names the generation its
//! view was read at is refused with `StoreError::StaleSchema` when the
//! stored one moved on ([`check_generation`], through the same
//! once-per-transaction check). A bump that changes no rule only makes the
//! next write and query read the rules again.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use muster_scim::schema::builtin::{
    ENTERPRISE_USER_SCHEMA, ENTRA_GROUP_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::{StoreError, TenantId};

/// Schemas whose paths are always indexed, whatever `custom_schemas` says.
const BUILT_IN: [&str; 4] = [
    USER_SCHEMA,
    GROUP_SCHEMA,
    ENTERPRISE_USER_SCHEMA,
    ENTRA_GROUP_SCHEMA,
];

/// A tenant's index rules at one generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IndexRules {
    /// The tenant's `index_generation` the rules were read at.
    pub generation: i64,
    /// Per custom extension URN (ASCII lower case), its searchable top-level
    /// attributes (ASCII lower case).
    custom: HashMap<String, HashSet<String>>,
}

impl IndexRules {
    /// Rules with the given custom extensions and their searchable
    /// attributes (any case), at `generation`.
    pub(crate) fn new<'a>(
        generation: i64,
        custom: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    ) -> IndexRules {
        let custom = custom
            .into_iter()
            .filter(|(urn, _)| !BUILT_IN.iter().any(|known| known.eq_ignore_ascii_case(urn)))
            .map(|(urn, searchable)| {
                let searchable = searchable
                    .iter()
                    .map(|name| name.to_ascii_lowercase())
                    .collect();
                (urn.to_ascii_lowercase(), searchable)
            })
            .collect();
        IndexRules { generation, custom }
    }

    /// Whether the rows at an attribute index path (lower case, see
    /// `values.rs`) are in the lookup index.
    ///
    /// An extension path is `<urn>:<attribute>[.<sub-attribute>]`; attribute
    /// names hold neither `:` nor `.`, so the URN is everything before the
    /// last `:`.
    pub(crate) fn indexes(&self, path: &str) -> bool {
        let Some((urn, rest)) = path.rsplit_once(':') else {
            return true;
        };
        let Some(searchable) = self.custom.get(urn) else {
            return true;
        };
        let attribute = rest
            .split_once('.')
            .map_or(rest, |(attribute, _)| attribute);
        searchable.contains(attribute)
    }
}

/// The tenant's rule generation (0 for a tenant without a row).
pub(crate) fn generation(connection: &Connection, tenant: &TenantId) -> Result<i64, StoreError> {
    let generation: Option<i64> = connection
        .prepare_cached("SELECT index_generation FROM tenants WHERE tenant_id = ?1")?
        .query_row(params![tenant.0], |row| row.get(0))
        .optional()?;
    Ok(generation.unwrap_or(0))
}

/// The tenant's schema generation (the rule generation) as the public API
/// counts it.
pub(crate) fn schema_generation(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    Ok(to_public(generation(connection, tenant)?))
}

/// A stored generation as a `u64` (it starts at 0 and only grows).
fn to_public(generation: i64) -> u64 {
    u64::try_from(generation).unwrap_or(0)
}

/// Refuses, with [`StoreError::StaleSchema`], a write whose caller
/// validated it at another schema generation than the tenant's in the
/// writer's open transaction; `None` checks nothing. Reuses the writer's
/// rules cache, so the generation is read at most once per transaction
/// (a bump in the transaction drops the cache, so it is read again).
pub(crate) fn check_generation(
    connection: &Connection,
    tenant: &TenantId,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current = to_public(for_writer(connection, tenant)?.generation);
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::StaleSchema { expected, current })
    }
}

/// Reads the tenant's rules; call inside a transaction so the generation
/// and the schemas come from one snapshot.
pub(crate) fn load(connection: &Connection, tenant: &TenantId) -> Result<IndexRules, StoreError> {
    let generation = generation(connection, tenant)?;
    let mut statement = connection.prepare_cached(
        "SELECT urn, searchable FROM custom_schemas
         WHERE tenant_id = ?1 AND document IS NOT NULL",
    )?;
    let mut rows = statement.query(params![tenant.0])?;
    let mut custom: Vec<(String, Vec<String>)> = Vec::new();
    while let Some(row) = rows.next()? {
        let urn: String = row.get(0)?;
        let searchable: String = row.get(1)?;
        custom.push((urn, parse_searchable(&searchable)?));
    }
    Ok(IndexRules::new(
        generation,
        custom
            .iter()
            .map(|(urn, searchable)| (urn.as_str(), searchable.clone())),
    ))
}

/// The `custom_schemas.searchable` column: a JSON array of names.
pub(crate) fn parse_searchable(text: &str) -> Result<Vec<String>, StoreError> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        StoreError::Database(format!("a stored searchable list is not JSON: {error}"))
    })?;
    searchable_names(value)
}

/// A stored searchable list as a JSON value: an array of names.
pub(crate) fn searchable_names(value: Value) -> Result<Vec<String>, StoreError> {
    let Value::Array(names) = value else {
        return Err(StoreError::Database(
            "a stored searchable list is not a JSON array".to_owned(),
        ));
    };
    names
        .into_iter()
        .map(|name| match name {
            Value::String(name) => Ok(name),
            other => Err(StoreError::Database(format!(
                "a stored searchable list holds a non-string: {other}"
            ))),
        })
        .collect()
}

/// Bumps the tenant's rule (schema) generation (inside a schema change's
/// or setting change's transaction) and makes the writer re-read the rules.
pub(crate) fn bump(connection: &Connection, tenant: &TenantId) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE tenants SET index_generation = index_generation + 1 WHERE tenant_id = ?1",
        )?
        .execute(params![tenant.0])?;
    WRITER.with(|writer| {
        let mut writer = writer.borrow_mut();
        writer.cached.remove(&tenant.0);
        writer.verified.remove(&tenant.0);
    });
    Ok(())
}

/// Sets `indexed` to `?3` on the rows of tenant `?1` at the paths of the
/// JSON array `?2`: the tenant's resources (`resources_by_id`), each one's
/// rows at those paths through the primary key; never a pass over other
/// tenants' rows.
const FLIP: &str = "UPDATE resource_values SET indexed = ?3
    WHERE resource_seq IN (SELECT seq FROM resources WHERE tenant_id = ?1)
      AND path_id IN (SELECT value FROM json_each(?2))
      AND indexed <> ?3";

/// Brings the `indexed` flag of the tenant's rows under extension `urn` in
/// line with `rules`: one set-based UPDATE per direction over the paths
/// whose flag changes, through the primary key of the tenant's resources.
/// Returns how many rows changed.
pub(crate) fn reindex(
    connection: &Connection,
    tenant: &TenantId,
    urn: &str,
    rules: &IndexRules,
) -> Result<usize, StoreError> {
    let prefix = format!("{}:", urn.to_ascii_lowercase());
    let mut on: Vec<i64> = Vec::new();
    let mut off: Vec<i64> = Vec::new();
    {
        let mut statement = connection.prepare_cached(
            "SELECT path_id, path FROM attribute_paths
             WHERE substr(path, 1, length(?1)) = ?1",
        )?;
        let mut rows = statement.query(params![prefix])?;
        while let Some(row) = rows.next()? {
            let path_id: i64 = row.get(0)?;
            let path: String = row.get(1)?;
            if rules.indexes(&path) {
                on.push(path_id);
            } else {
                off.push(path_id);
            }
        }
    }
    let mut changed = 0;
    let mut flip = connection.prepare_cached(FLIP)?;
    for (path_ids, indexed) in [(on, 1), (off, 0)] {
        if path_ids.is_empty() {
            continue;
        }
        let path_ids = Value::from(path_ids).to_string();
        changed += flip.execute(params![tenant.0, path_ids, indexed])?;
    }
    Ok(changed)
}

/// The writer thread's cache: rules by tenant, and the tenants whose
/// generation the open transaction has checked.
#[derive(Default)]
struct WriterRules {
    cached: HashMap<String, Arc<IndexRules>>,
    verified: HashSet<String>,
}

thread_local! {
    /// The rules cache of this thread's writer.
    static WRITER: RefCell<WriterRules> = RefCell::new(WriterRules::default());
}

/// Starts a write transaction: each tenant's generation is checked again
/// at its first use.
pub(crate) fn begin_transaction() {
    WRITER.with(|writer| writer.borrow_mut().verified.clear());
}

/// Forgets every cached rule (after a rollback: the cache may hold rules
/// of a change that did not commit).
pub(crate) fn forget() {
    WRITER.with(|writer| *writer.borrow_mut() = WriterRules::default());
}

/// The tenant's rules for the writer's open transaction: cached, with the
/// generation checked once per transaction (one SELECT), re-read when it
/// differs.
pub(crate) fn for_writer(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Arc<IndexRules>, StoreError> {
    let known = WRITER.with(|writer| {
        let writer = writer.borrow();
        let cached = writer.cached.get(&tenant.0).cloned();
        let verified = writer.verified.contains(&tenant.0);
        (cached, verified)
    });
    let rules = match known {
        (Some(rules), true) => return Ok(rules),
        (Some(rules), false) if generation(connection, tenant)? == rules.generation => rules,
        _ => Arc::new(load(connection, tenant)?),
    };
    WRITER.with(|writer| {
        let mut writer = writer.borrow_mut();
        writer.cached.insert(tenant.0.clone(), Arc::clone(&rules));
        writer.verified.insert(tenant.0.clone());
    });
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema::open_reader;
    use crate::sqlite::{SqliteStore, DATABASE_FILE};

    /// A flip reads the tenant's rows through the primary key.
    #[test]
    fn flips_search_by_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let connection = open_reader(&dir.path().join(DATABASE_FILE)).unwrap();
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {FLIP}"))
            .unwrap();
        let plan: Vec<String> = statement
            .query_map(params!["default", "[1,2]", 1], |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains(
                "SEARCH resource_values USING PRIMARY KEY (resource_seq=? AND path_id=?)"
            ),
            "{plan}"
        );
        assert!(!plan.contains("SCAN resource_values"), "{plan}");
    }

    #[test]
    fn rules_follow_the_top_level_attribute() {
        let urn = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";
        let rules = IndexRules::new(
            3,
            [
                (urn, vec!["Region".to_owned(), "customFields".to_owned()]),
                (ENTERPRISE_USER_SCHEMA, Vec::new()),
            ],
        );
        let lower = urn.to_ascii_lowercase();
        for (path, indexed) in [
            ("username".to_owned(), true),
            ("emails.value".to_owned(), true),
            (format!("{lower}:region"), true),
            (format!("{lower}:customfields"), true),
            (format!("{lower}:customfields.bpo_vendor_id"), true),
            (format!("{lower}:costcenter"), false),
            (format!("{lower}:manager.value"), false),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department".to_owned(),
                true,
            ),
            ("urn:other:2.0:user:x".to_owned(), true),
        ] {
            assert_eq!(rules.indexes(&path), indexed, "{path}");
        }
    }
}
