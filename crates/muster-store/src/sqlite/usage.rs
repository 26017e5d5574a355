//! Attribute usage for the explain table: which paths hold values, how many
//! resources hold them, and which client last set them.
//!
//! *Who set it last* comes from the writes themselves: a write notes each
//! distinct path whose index rows it inserted or changed (`write.rs`,
//! `write_index`), and each key of the captured undeclared values
//! (`resources.unmapped`) whose value it changed. A write that only clears
//! a value notes nothing: clearing is not setting.
//!
//! Notes are kept on the writer thread and written by the writer itself
//! ([`flush`]) just before the transaction commits: one row upsert per
//! distinct (tenant, resource type, path) of the whole group-commit batch,
//! so a batch of 100 creates of users with the same 25 attributes upserts
//! 25 rows, not 2,500. They commit in the same transaction as the writes they
//! describe. A job that fails has its notes dropped ([`end_job`]) like its
//! rows, and a transaction that is lost drops them all ([`forget`]).
//!
//! *How many hold it* is counted on read, from the attribute index and the
//! `unmapped` column, so it can never drift from the data and costs writes
//! nothing; the price is a pass over the tenant's index rows (see
//! [`report`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use super::read::to_version;
use super::values::is_present;
use crate::{AttributeUsage, StoreError, TenantId};

/// Who sets values, where and when: one write's part of a usage row.
pub(crate) struct Stamp<'a> {
    /// The tenant written to.
    pub tenant: &'a TenantId,
    /// The type of the resource written.
    pub resource_type: &'a str,
    /// The client that writes.
    pub client: &'a str,
    /// The time of the write, RFC 3339.
    pub at: &'a str,
}

/// A usage row's key: tenant, resource type, declared, path.
type RowKey = (String, String, bool, String);

/// The notes of the writer thread: (client, time) by row key.
#[derive(Default)]
struct Notes {
    /// Noted by the job running now.
    job: HashMap<RowKey, (String, String)>,
    /// Noted by the jobs of the open transaction that succeeded, the later
    /// job winning.
    transaction: HashMap<RowKey, (String, String)>,
}

thread_local! {
    /// The notes of this thread's writer.
    static NOTES: RefCell<Notes> = RefCell::new(Notes::default());
}

/// Notes that the write of `stamp` set a value at `path`.
pub(crate) fn record(stamp: &Stamp<'_>, declared: bool, path: &str) {
    let key = (
        stamp.tenant.0.clone(),
        stamp.resource_type.to_owned(),
        declared,
        path.to_owned(),
    );
    let setter = (stamp.client.to_owned(), stamp.at.to_owned());
    NOTES.with(|notes| notes.borrow_mut().job.insert(key, setter));
}

/// Notes the keys of captured undeclared values that a write set: those
/// present in `after` with a value that differs from `before`.
pub(crate) fn record_unmapped(
    stamp: &Stamp<'_>,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) {
    for (key, value) in after {
        if is_present(value) && before.get(key) != Some(value) {
            record(stamp, false, key);
        }
    }
}

/// Ends a job: keeps its notes for the transaction when it succeeded (its
/// savepoint was released), drops them when it failed.
pub(crate) fn end_job(succeeded: bool) {
    NOTES.with(|notes| {
        let mut notes = notes.borrow_mut();
        let job = std::mem::take(&mut notes.job);
        if succeeded {
            notes.transaction.extend(job);
        }
    });
}

/// Writes the transaction's notes; called by the writer just before it
/// commits. One statement per (tenant, resource type, kind, client, time),
/// usually one per write, upserts all of its paths. The notes are gone
/// afterwards, written or not.
pub(crate) fn flush(connection: &Connection) -> Result<(), StoreError> {
    let notes = NOTES.with(|notes| std::mem::take(&mut notes.borrow_mut().transaction));
    if notes.is_empty() {
        return Ok(());
    }
    let mut groups: HashMap<(String, String, bool, String, String), Vec<String>> = HashMap::new();
    for ((tenant, resource_type, declared, path), (client, at)) in notes {
        groups
            .entry((tenant, resource_type, declared, client, at))
            .or_default()
            .push(path);
    }
    let mut upsert = connection.prepare_cached(
        "INSERT INTO attribute_usage (tenant_id, resource_type, declared, path, client, at)
         SELECT ?1, ?2, ?3, value, ?4, ?5 FROM json_each(?6) WHERE true
         ON CONFLICT (tenant_id, resource_type, declared, path)
         DO UPDATE SET client = excluded.client, at = excluded.at",
    )?;
    for ((tenant, resource_type, declared, client, at), paths) in groups {
        let paths = Value::from(paths).to_string();
        upsert.execute(params![tenant, resource_type, declared, client, at, paths])?;
    }
    Ok(())
}

/// Drops every note (the transaction was rolled back).
pub(crate) fn forget() {
    NOTES.with(|notes| *notes.borrow_mut() = Notes::default());
}

/// The tenant's present index rows as (resource type, resource, path
/// number), in that order: the resources by type (`resources_by_type`),
/// each one's rows through the clustered key. One ordered pass, no sort, so
/// a resource's rows at one path arrive together and are counted once.
const DECLARED_ROWS: &str = "
SELECT r.resource_type, r.seq, v.path_id
FROM resources r
CROSS JOIN resource_values v ON v.resource_seq = r.seq
WHERE r.tenant_id = ?1 AND v.tenant_id = ?1 AND v.present = 1
ORDER BY r.resource_type, r.seq, v.path_id";

/// Resources holding a present captured value, per resource type and key.
const UNMAPPED_HOLDERS: &str = "
SELECT r.resource_type, j.key, count(*)
FROM resources r, json_each(r.unmapped) AS j
WHERE r.tenant_id = ?1 AND r.unmapped IS NOT NULL
  AND CASE j.type
        WHEN 'null' THEN 0
        WHEN 'text' THEN j.value <> ''
        WHEN 'array' THEN json_array_length(j.value) > 0
        WHEN 'object' THEN j.value <> '{}'
        ELSE 1
      END
GROUP BY r.resource_type, j.key";

/// The usage report of a tenant, in one read transaction: every path that
/// has holders or a recorded setter, ordered by resource type, declared
/// before undeclared, then path.
///
/// Cost: one ordered pass over the tenant's present index rows (streamed,
/// counted in memory per path) and one over its resource rows (for
/// `unmapped`): at 100,000 users with 20 custom values each (about 2.5
/// million index rows), about half a second. Meant for an admin's explain
/// request, not for a request path.
pub(crate) fn report(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<AttributeUsage>, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let report = report_in_transaction(connection, tenant)?;
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(report)
}

/// Sort key: resource type, undeclared (declared first), path.
type Key = (String, bool, String);

fn report_in_transaction(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<AttributeUsage>, StoreError> {
    let mut usage: BTreeMap<Key, AttributeUsage> = BTreeMap::new();
    for (resource_type, path, holders) in declared_holders(connection, tenant)? {
        usage_entry(&mut usage, resource_type, true, path).holders = holders;
    }
    {
        let mut statement = connection.prepare_cached(UNMAPPED_HOLDERS)?;
        let mut rows = statement.query(params![tenant.0])?;
        while let Some(row) = rows.next()? {
            let holders = to_version(row.get(2)?);
            usage_entry(&mut usage, row.get(0)?, false, row.get(1)?).holders = holders;
        }
    }
    let mut statement = connection.prepare_cached(
        "SELECT resource_type, declared, path, client, at FROM attribute_usage
         WHERE tenant_id = ?1",
    )?;
    let mut rows = statement.query(params![tenant.0])?;
    while let Some(row) = rows.next()? {
        let entry = usage_entry(&mut usage, row.get(0)?, row.get(1)?, row.get(2)?);
        entry.last_client = Some(row.get(3)?);
        entry.last_set = Some(row.get(4)?);
    }
    Ok(usage.into_values().collect())
}

/// Resources holding a present value, per resource type and index path:
/// counted while streaming [`DECLARED_ROWS`], whose order puts the rows of
/// one resource and path next to each other.
fn declared_holders(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut counts: Vec<(String, HashMap<i64, u64>)> = Vec::new();
    let mut last: Option<(i64, i64)> = None;
    let mut statement = connection.prepare_cached(DECLARED_ROWS)?;
    let mut rows = statement.query(params![tenant.0])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(1)?;
        let path_id: i64 = row.get(2)?;
        if last == Some((seq, path_id)) {
            continue;
        }
        last = Some((seq, path_id));
        let resource_type = row.get_ref(0)?.as_str().map_err(|error| {
            StoreError::Database(format!("a resource type is not text: {error}"))
        })?;
        if counts.last().map(|(known, _)| known.as_str()) != Some(resource_type) {
            counts.push((resource_type.to_owned(), HashMap::new()));
        }
        if let Some((_, per_path)) = counts.last_mut() {
            *per_path.entry(path_id).or_default() += 1;
        }
    }
    let mut path_of =
        connection.prepare_cached("SELECT path FROM attribute_paths WHERE path_id = ?1")?;
    let mut holders = Vec::new();
    for (resource_type, per_path) in counts {
        for (path_id, count) in per_path {
            let path: String = path_of.query_row(params![path_id], |row| row.get(0))?;
            holders.push((resource_type.clone(), path, count));
        }
    }
    Ok(holders)
}

/// The entry of a (resource type, declared, path), created empty.
fn usage_entry(
    usage: &mut BTreeMap<Key, AttributeUsage>,
    resource_type: String,
    declared: bool,
    path: String,
) -> &mut AttributeUsage {
    usage
        .entry((resource_type.clone(), !declared, path.clone()))
        .or_insert_with(|| AttributeUsage {
            resource_type,
            path,
            declared,
            holders: 0,
            last_client: None,
            last_set: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema::open_reader;
    use crate::sqlite::{SqliteStore, DATABASE_FILE};

    /// The holder count streams the rows in index order: no sort, no scan
    /// of another tenant's rows.
    #[test]
    fn declared_rows_stream_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let connection = open_reader(&dir.path().join(DATABASE_FILE)).unwrap();
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {DECLARED_ROWS}"))
            .unwrap();
        let plan: Vec<String> = statement
            .query_map(params!["default"], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("\n");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(
            plan.contains("SEARCH r USING COVERING INDEX resources_by_type"),
            "{plan}"
        );
        assert!(plan.contains("SEARCH v USING PRIMARY KEY"), "{plan}");
    }
}
