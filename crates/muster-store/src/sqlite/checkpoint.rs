//! The checkpointer thread: copies committed WAL frames back into the
//! database file in the background.
//!
//! Left to SQLite, the committing connection (the writer) checkpoints
//! whenever the WAL passes a threshold, stalling every write waiting behind
//! it. Here a separate connection runs a `PASSIVE` checkpoint (which never
//! blocks the writer or readers) every [`INTERVAL`]; the writer's own
//! automatic checkpoint stays as a backstop with a high threshold.
//!
//! After a purge, the store asks for a `TRUNCATE` checkpoint
//! ([`Checkpointer::truncate`]): the pages the purge rewrote reach the
//! database file and the WAL, which still holds the older versions of those
//! pages with the erased values, is emptied.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::schema::open_checkpointer;
use crate::StoreError;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// The handle to the checkpointer thread; dropping it stops the thread.
pub(crate) struct Checkpointer {
    requests: Option<mpsc::Sender<Truncate>>,
    thread: Option<JoinHandle<()>>,
}

/// A request for a `TRUNCATE` checkpoint.
struct Truncate;

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = open_checkpointer(path)?;
        let (requests, received) = mpsc::channel::<Truncate>();
        let thread = std::thread::Builder::new()
            .name("muster-sqlite-checkpoint".to_owned())
            .spawn(move || run(&connection, &received))
            .map_err(|error| {
                StoreError::Database(format!("cannot start the checkpoint thread: {error}"))
            })?;
        Ok(Checkpointer {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Asks for a `TRUNCATE` checkpoint soon (it waits for readers of older
    /// snapshots to finish, on the checkpointer's thread, not the caller's).
    pub(crate) fn truncate(&self) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(Truncate);
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, requests: &mpsc::Receiver<Truncate>) {
    loop {
        let mode = match requests.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => "PASSIVE",
            Ok(Truncate) => "TRUNCATE",
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let result = connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            row.get::<_, i64>(0)
        });
        if let Err(error) = result {
            tracing::warn!(%error, mode, "WAL checkpoint failed; will retry");
        }
    }
}
