//! The checkpointer thread: copies committed WAL frames back into the
//! database file in the background.
//!
//! Left to SQLite, the committing connection (the writer) checkpoints
//! whenever the WAL passes a threshold, stalling every write waiting behind
//! it. Here a separate connection runs a `PASSIVE` checkpoint (which never
//! blocks the writer or readers) every [`INTERVAL`]; the writer's own
//! automatic checkpoint stays as a backstop with a high threshold.

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
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = open_checkpointer(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("muster-sqlite-checkpoint".to_owned())
            .spawn(move || run(&connection, &stopped))
            .map_err(|error| {
                StoreError::Database(format!("cannot start the checkpoint thread: {error}"))
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, stopped: &mpsc::Receiver<()>) {
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {
                let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(0)
                });
                if let Err(error) = result {
                    tracing::warn!(%error, "WAL checkpoint failed; will retry");
                }
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
