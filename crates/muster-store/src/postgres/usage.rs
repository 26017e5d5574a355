//! Attribute usage on PostgreSQL (what explain reports): which paths hold
//! values, how many resources hold them, and which client last set them.
//!
//! *Who set it last* is written by the writes themselves, in their
//! transaction, just before they commit (`write::Scope::commit`): one
//! upsert of the distinct paths a write set (never a path it only
//! cleared), so a write that rolls back notes nothing. *How many hold it*
//! is counted on read, from the attribute index and the `unmapped` column,
//! so it never drifts from the data. See `sqlite/usage.rs` for the rules.

use super::consumers::instant_text;
use super::PostgresStore;
use crate::sqlite::read::to_version;
use crate::{AttributeUsage, StoreError, TenantId};

/// The usage report: per (resource type, declared, path), the resources
/// holding a present value (declared paths from the tenant's present index
/// rows, undeclared keys from `unmapped`, whose value counts as present as
/// `sqlite/usage.rs` counts it) joined with the recorded setters; ordered by
/// resource type, declared before undeclared, then path, in byte order as
/// SQLite's report sorts (`COLLATE "C"`). `$1` is the tenant.
fn report_sql() -> String {
    format!(
        r#"
WITH held AS (
    SELECT r.resource_type, true AS declared, p.path, count(DISTINCT r.seq) AS holders
    FROM resources r
    JOIN resource_values v ON v.resource_seq = r.seq
    JOIN attribute_paths p ON p.path_id = v.path_id
    WHERE r.tenant_id = $1 AND v.tenant_id = $1 AND v.present
    GROUP BY r.resource_type, p.path
    UNION ALL
    SELECT r.resource_type, false, j.key, count(*)
    FROM resources r,
         jsonb_each(CASE WHEN jsonb_typeof(r.unmapped) = 'object'
                         THEN r.unmapped ELSE '{{}}'::jsonb END) AS j
    WHERE r.tenant_id = $1 AND r.unmapped IS NOT NULL
      AND CASE jsonb_typeof(j.value)
            WHEN 'null' THEN false
            WHEN 'string' THEN j.value <> '""'::jsonb
            WHEN 'array' THEN jsonb_array_length(j.value) > 0
            WHEN 'object' THEN j.value <> '{{}}'::jsonb
            ELSE true
          END
    GROUP BY r.resource_type, j.key
), setters AS (
    SELECT resource_type, declared, path, client, at
    FROM attribute_usage WHERE tenant_id = $1
), report AS (
    SELECT coalesce(h.resource_type, s.resource_type) AS resource_type,
           coalesce(h.declared, s.declared) AS declared,
           coalesce(h.path, s.path) AS path,
           coalesce(h.holders, 0) AS holders,
           s.client,
           {} AS at
    FROM held h
    FULL JOIN setters s
      ON s.resource_type = h.resource_type AND s.declared = h.declared AND s.path = h.path
)
SELECT resource_type, declared, path, holders, client, at FROM report
ORDER BY resource_type COLLATE "C", declared DESC, path COLLATE "C"
"#,
        instant_text("s.at")
    )
}

/// [`crate::Store::attribute_usage`]: every path that has holders or a
/// recorded setter, from one statement (one snapshot).
///
/// Cost: one pass over the tenant's present index rows and one over its
/// resource rows (for `unmapped`), as on SQLite; meant for an admin's
/// explain request, not for a request path.
pub(super) async fn report(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<AttributeUsage>, StoreError> {
    let client = store.client().await?;
    let rows = client.query(&report_sql(), &[&tenant.0]).await?;
    rows.iter()
        .map(|row| {
            Ok(AttributeUsage {
                resource_type: row.try_get(0)?,
                declared: row.try_get(1)?,
                path: row.try_get(2)?,
                holders: to_version(row.try_get(3)?),
                last_client: row.try_get(4)?,
                last_set: row.try_get(5)?,
            })
        })
        .collect()
}
