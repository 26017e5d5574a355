//! The embedded SQLite backend. (Being written.)

/// The embedded SQLite store.
pub struct SqliteStore;
