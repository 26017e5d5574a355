//! Numbers for attribute index paths (`attribute_paths`), cached on the
//! writer thread.
//!
//! Only the writer assigns numbers, inside a job's savepoint; a number
//! assigned by a job that is then rolled back disappears with it. So the
//! writer calls [`forget`] whenever a job or a batch is rolled back, and the
//! cache only ever holds numbers that are (or are about to be) committed.
//! Readers never use the cache: queries look numbers up in SQL.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

thread_local! {
    /// Path to number, for the database of this thread's writer.
    static CACHE: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// The number of an index path, assigning one if the path is new.
pub(crate) fn path_id(connection: &Connection, path: &str) -> Result<i64, StoreError> {
    if let Some(id) = CACHE.with(|cache| cache.borrow().get(path).copied()) {
        return Ok(id);
    }
    connection
        .prepare_cached("INSERT OR IGNORE INTO attribute_paths (path) VALUES (?1)")?
        .execute([path])?;
    let id: i64 = connection
        .prepare_cached("SELECT path_id FROM attribute_paths WHERE path = ?1")?
        .query_row([path], |row| row.get(0))?;
    CACHE.with(|cache| cache.borrow_mut().insert(path.to_owned(), id));
    Ok(id)
}

/// The number of an index path if it has one, without assigning one: a
/// path without a number has no index row to delete.
pub(crate) fn known_path_id(
    connection: &Connection,
    path: &str,
) -> Result<Option<i64>, StoreError> {
    if let Some(id) = CACHE.with(|cache| cache.borrow().get(path).copied()) {
        return Ok(Some(id));
    }
    let id: Option<i64> = connection
        .prepare_cached("SELECT path_id FROM attribute_paths WHERE path = ?1")?
        .query_row([path], |row| row.get(0))
        .optional()?;
    if let Some(id) = id {
        CACHE.with(|cache| cache.borrow_mut().insert(path.to_owned(), id));
    }
    Ok(id)
}

/// Forgets every cached number (after a rollback).
pub(crate) fn forget() {
    CACHE.with(|cache| cache.borrow_mut().clear());
}
