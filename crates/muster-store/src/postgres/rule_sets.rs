//! Entitlement rule sets on PostgreSQL, one row per applied version
//! (`sqlite/rule_sets.rs` documents the semantics). A put locks the
//! tenant's row first (`schemas::lock_tenant`), so versions are numbered
//! without gaps or clashes across processes, and its rederivation pass sees
//! no concurrent write of the tenant.

use serde_json::json;
use tokio_postgres::Row;

use super::consumers::instant_text;
use super::feed::{record_change, NewChange};
use super::schemas;
use super::{begin, derive, rules, PostgresStore, MAX_ATTEMPTS};
use crate::sqlite::read::to_version;
use crate::{
    Actor, ChangeKind, Derivation, ResourceId, RuleSetApplied, RuleSetRecord, SharedDerivation,
    StoreError, TenantId,
};

/// The `resource_type` of a rule set's change records.
const RULE_SET: &str = "RuleSet";

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

/// The columns [`record`] reads.
fn columns() -> String {
    format!(
        "version, document, format, note, {}, client",
        instant_text("applied")
    )
}

/// A row of [`columns`] as a record.
fn record(row: &Row) -> Result<RuleSetRecord, StoreError> {
    Ok(RuleSetRecord {
        version: to_version(row.try_get(0)?),
        document: row.try_get(1)?,
        format: row.try_get(2)?,
        note: row.try_get(3)?,
        applied: row.try_get(4)?,
        client: row.try_get(5)?,
    })
}

/// [`crate::Store::put_rule_set`]: stores a rule set as the next
/// version, records the change, recomputes every User's derived value with
/// `rederive` (writing those that change) and bumps the tenant's schema
/// generation, in one transaction. Refused when `expected_generation` is
/// not the tenant's. Retried on contention (a derivation can run again).
pub(super) async fn put(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    new: NewRuleSet<'_>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<RuleSetApplied, StoreError> {
    let mut attempt = 1;
    loop {
        let outcome = put_once(
            store,
            tenant,
            actor,
            new,
            rederive.as_deref(),
            expected_generation,
        )
        .await;
        match outcome {
            Err(StoreError::Contention(_)) if attempt < MAX_ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

/// One attempt of [`put`], in one transaction.
async fn put_once(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    new: NewRuleSet<'_>,
    rederive: Option<&dyn Derivation>,
    expected_generation: Option<u64>,
) -> Result<RuleSetApplied, StoreError> {
    let NewRuleSet {
        document,
        format,
        note,
    } = new;
    let mut client = store.client().await?;
    let transaction = begin(&mut client).await?;
    let mut scope = schemas::begin_change(&transaction, tenant, actor, expected_generation)
        .await?
        .ok_or_else(|| schemas::no_tenant(tenant))?;
    let latest: Option<i64> = transaction
        .query_one(
            "SELECT max(version) FROM rule_sets WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await?
        .try_get(0)?;
    let version = latest.map_or(1, |latest| to_version(latest) + 1);
    let applied: String = transaction
        .query_one(
            &format!(
                "INSERT INTO rule_sets (tenant_id, version, document, format, note, applied,
                     client)
                 VALUES ($1, $2, $3, $4, $5, now(), $6)
                 RETURNING {}",
                instant_text("applied")
            ),
            &[
                &tenant.0,
                &i64::try_from(version).unwrap_or(i64::MAX),
                &document,
                &format,
                &note,
                &actor.client,
            ],
        )
        .await?
        .try_get(0)?;
    record_change(
        &transaction,
        NewChange {
            tenant,
            kind: ChangeKind::RuleSet,
            resource_type: RULE_SET,
            resource_id: &ResourceId(version.to_string()),
            version,
            actor,
            payload: &json!({ "version": version, "format": format, "note": note }),
        },
    )
    .await?;
    let rewritten = match rederive {
        Some(derivation) => {
            derive::rederive_all(&transaction, &mut scope, derivation, version).await?
        }
        None => 0,
    };
    rules::bump(&transaction, tenant).await?;
    scope.commit(transaction).await?.record(&mut client).await;
    Ok(RuleSetApplied {
        record: RuleSetRecord {
            version,
            document: document.to_owned(),
            format: format.to_owned(),
            note: note.to_owned(),
            applied,
            client: actor.client.clone(),
        },
        rewritten,
    })
}

/// [`crate::Store::rule_set`]: the rule set at `version`, or the one in
/// force (the highest version).
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    version: Option<u64>,
) -> Result<Option<RuleSetRecord>, StoreError> {
    let client = store.client().await?;
    let row = match version {
        Some(version) => {
            let version = i64::try_from(version).unwrap_or(i64::MAX);
            client
                .query_opt(
                    &format!(
                        "SELECT {} FROM rule_sets WHERE tenant_id = $1 AND version = $2",
                        columns()
                    ),
                    &[&tenant.0, &version],
                )
                .await?
        }
        None => {
            client
                .query_opt(
                    &format!(
                        "SELECT {} FROM rule_sets WHERE tenant_id = $1
                         ORDER BY version DESC LIMIT 1",
                        columns()
                    ),
                    &[&tenant.0],
                )
                .await?
        }
    };
    row.as_ref().map(record).transpose()
}

/// [`crate::Store::rule_set_history`]: every version, oldest first.
pub(super) async fn history(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<RuleSetRecord>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM rule_sets WHERE tenant_id = $1 ORDER BY version",
                columns()
            ),
            &[&tenant.0],
        )
        .await?;
    rows.iter().map(record).collect()
}
