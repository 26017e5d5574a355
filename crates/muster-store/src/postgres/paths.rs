//! Numbers for attribute index paths (`attribute_paths`) on PostgreSQL.
//!
//! A path gets its number once, from whichever writer first needs it:
//! known paths are read; new ones are inserted with `ON CONFLICT DO
//! NOTHING` (a concurrent writer inserting the same path makes the insert
//! wait for its outcome) and read again. Existing paths are never inserted
//! again, so the identity sequence is not spent on every write.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};

use crate::StoreError;

/// Path numbers by path.
pub(super) type PathIds = HashMap<String, i32>;

/// The numbers of the `paths` that have one.
pub(super) async fn known(
    client: &(impl GenericClient + Sync),
    paths: &[&str],
) -> Result<PathIds, StoreError> {
    if paths.is_empty() {
        return Ok(PathIds::new());
    }
    let rows = client
        .query_typed(
            "SELECT path, path_id FROM attribute_paths WHERE path = ANY($1)",
            &[(&paths, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The numbers of `paths`, assigning one to each new path.
pub(super) async fn assign(
    transaction: &Transaction<'_>,
    paths: &[&str],
) -> Result<PathIds, StoreError> {
    let mut ids = known(transaction, paths).await?;
    let mut missing: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|path| !ids.contains_key(*path))
        .collect();
    if missing.is_empty() {
        return Ok(ids);
    }
    // Sorted, so two writers adding the same new paths wait in one order.
    missing.sort_unstable();
    missing.dedup();
    transaction
        .execute_typed(
            "INSERT INTO attribute_paths (path)
             SELECT path FROM unnest($1::text[]) AS new (path)
             ON CONFLICT (path) DO NOTHING",
            &[(&missing, Type::TEXT_ARRAY)],
        )
        .await?;
    ids.extend(known(transaction, &missing).await?);
    match missing.iter().find(|path| !ids.contains_key(**path)) {
        Some(path) => Err(StoreError::Database(format!(
            "the attribute path '{path}' got no number"
        ))),
        None => Ok(ids),
    }
}
