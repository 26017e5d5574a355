//! Entitlement rule sets (`rule_sets`): each applied document is kept as a
//! numbered version; the store gives them no meaning. Applying one moves
//! the tenant's schema generation on (`rules.rs`), so every process reloads
//! the tenant's view, which holds the rule set in force. A put may carry
//! the new rule set's derivation: every User's derived value is then
//! recomputed in the same transaction (`derive.rs`); the writer runs such
//! a put alone, like a schema change (`writer.rs`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::json;

use super::derive::rederive_all;
use super::read::to_version;
use super::rules;
use super::values::now_text;
use super::write::{insert_error, record_change, WriteScope};
use crate::{
    ChangeKind, Derivation, ResourceId, RuleSetApplied, RuleSetRecord, StoreError, TenantId,
};

/// The `resource_type` of a rule set's change records.
const RULE_SET: &str = "RuleSet";

fn record(row: &Row<'_>) -> rusqlite::Result<RuleSetRecord> {
    Ok(RuleSetRecord {
        version: to_version(row.get(0)?),
        document: row.get(1)?,
        format: row.get(2)?,
        note: row.get(3)?,
        applied: row.get(4)?,
        client: row.get(5)?,
    })
}

/// The rule set at `version`, or the one in force (the highest version).
pub(crate) fn get(
    connection: &Connection,
    tenant: &TenantId,
    version: Option<u64>,
) -> Result<Option<RuleSetRecord>, StoreError> {
    let found = match version {
        Some(version) => connection
            .prepare_cached(
                "SELECT version, document, format, note, applied, client FROM rule_sets
                 WHERE tenant_id = ?1 AND version = ?2",
            )?
            .query_row(
                params![tenant.0, i64::try_from(version).unwrap_or(i64::MAX)],
                record,
            )
            .optional()?,
        None => connection
            .prepare_cached(
                "SELECT version, document, format, note, applied, client FROM rule_sets
                 WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![tenant.0], record)
            .optional()?,
    };
    Ok(found)
}

/// Every version, oldest first.
pub(crate) fn history(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<RuleSetRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT version, document, format, note, applied, client FROM rule_sets
         WHERE tenant_id = ?1 ORDER BY version",
    )?;
    let rows = statement.query_map(params![tenant.0], record)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a rule set put stores.
pub(crate) struct NewRuleSet {
    /// The document.
    pub document: String,
    /// Its format.
    pub format: String,
    /// Why it is applied.
    pub note: String,
}

/// Stores a rule set as the next version, records the change, recomputes
/// every User's derived value with `rederive` (writing those that change)
/// and bumps the tenant's schema generation. Refused when
/// `expected_generation` is not the tenant's.
pub(crate) fn put(
    connection: &Connection,
    scope: &WriteScope,
    new: &NewRuleSet,
    rederive: Option<&dyn Derivation>,
    expected_generation: Option<u64>,
) -> Result<RuleSetApplied, StoreError> {
    let NewRuleSet {
        document,
        format,
        note,
    } = new;
    let tenant = &scope.tenant;
    rules::check_generation(connection, tenant, expected_generation)?;
    let latest: Option<i64> = connection
        .prepare_cached("SELECT max(version) FROM rule_sets WHERE tenant_id = ?1")?
        .query_row(params![tenant.0], |row| row.get(0))?;
    let version = latest.map_or(1, |latest| to_version(latest) + 1);
    let applied = now_text();
    let written = connection
        .prepare_cached(
            "INSERT INTO rule_sets (tenant_id, version, document, format, note, applied, client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            tenant.0,
            i64::try_from(version).unwrap_or(i64::MAX),
            document,
            format,
            note,
            applied,
            scope.actor.client,
        ]);
    if let Err(error) = written {
        return Err(insert_error(error, tenant));
    }
    record_change(
        connection,
        scope,
        ChangeKind::RuleSet,
        RULE_SET,
        &ResourceId(version.to_string()),
        version,
        &applied,
        &json!({ "version": version, "format": format, "note": note }).to_string(),
    )?;
    let rewritten = match rederive {
        Some(derivation) => rederive_all(connection, scope, derivation, version)?,
        None => 0,
    };
    rules::bump(connection, tenant)?;
    Ok(RuleSetApplied {
        record: RuleSetRecord {
            version,
            document: document.clone(),
            format: format.clone(),
            note: note.clone(),
            applied,
            client: scope.actor.client.clone(),
        },
        rewritten,
    })
}
