//! The reader threads: one per CPU by default, each owning a read-only
//! connection, taking read jobs from one shared queue.
//!
//! WAL lets them read while the writer writes; each read sees the last
//! committed state. Dedicated threads (rather than a blocking task per read)
//! keep a busy reader on its queue without a context switch per request,
//! keep each connection's statement cache warm, and bound the threads reads
//! can occupy.
//!
//! The queue is bounded (`SqliteOptions::reader_queue` reads waiting): when
//! it is full a read is refused at once with `StoreError::Busy` rather than
//! queued behind reads that would keep the caller waiting anyway.
//!
//! Point reads whose cost is bounded by the resource itself (a user by id)
//! skip the queue: [`ReaderPool::read_here`] runs them on the calling
//! thread, on a connection of that thread's own. Handing such a read to a
//! reader thread and back cost more (two wake-ups, a context switch each
//! way) than the read itself (BENCHMARKS.md, issue 15).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use thread_local::ThreadLocal;
use tokio::sync::oneshot;

use super::schema::open_reader;
use crate::StoreError;

/// How long one read may run before SQLite stops it: a query a client can
/// make expensive (a value filter of 255 `ne` clauses over long lists) must
/// not hold a reader thread for a minute.
const READ_BUDGET: Duration = Duration::from_secs(5);

/// The budget of a read with none: about thirty years.
const UNBOUNDED: Duration = Duration::from_secs(1 << 30);

/// How many SQLite virtual-machine steps run between two checks of the
/// budget.
const PROGRESS_STEPS: i32 = 10_000;

/// A read for some reader thread.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The reader threads and their queue; dropping it ends the threads once
/// the queue is empty.
pub(crate) struct ReaderPool {
    queue: Option<mpsc::SyncSender<ReadJob>>,
    /// How many reads may wait in the queue.
    capacity: usize,
    /// How long one read may run ([`READ_BUDGET`]).
    budget: Duration,
    threads: Vec<JoinHandle<()>>,
    /// The database, for the connections of [`ReaderPool::read_here`].
    path: PathBuf,
    /// One read-only connection per thread that read here.
    here: ThreadLocal<RefCell<Connection>>,
}

impl ReaderPool {
    /// Starts `count` reader threads over the database at `path`, with room
    /// for `capacity` waiting reads (at least one).
    pub(crate) fn start(
        path: &Path,
        count: usize,
        capacity: usize,
    ) -> Result<ReaderPool, StoreError> {
        let capacity = capacity.max(1);
        let (queue, jobs) = mpsc::sync_channel::<ReadJob>(capacity);
        let jobs = Arc::new(Mutex::new(jobs));
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            // Open here so a broken file fails at open time, not at first read.
            let connection = open_reader(path)?;
            let jobs = Arc::clone(&jobs);
            let thread = std::thread::Builder::new()
                .name(format!("muster-sqlite-reader-{index}"))
                .spawn(move || run(&connection, &jobs))
                .map_err(|error| {
                    StoreError::Database(format!("cannot start a reader thread: {error}"))
                })?;
            threads.push(thread);
        }
        Ok(ReaderPool {
            queue: Some(queue),
            capacity,
            budget: READ_BUDGET,
            threads,
            path: path.to_owned(),
            here: ThreadLocal::new(),
        })
    }

    /// Runs `work` at once on the calling thread, on a read-only connection
    /// of the thread's own (opened on its first read): for reads that are
    /// short whatever the data, such as one user by id. Anything a client
    /// can make long goes through [`ReaderPool::read`] and its budget.
    pub(crate) fn read_here<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let cell = self
            .here
            .get_or_try(|| open_reader(&self.path).map(RefCell::new))?;
        // A thread runs one read at a time: nothing here awaits or calls back.
        let Ok(connection) = cell.try_borrow_mut() else {
            return Err(StoreError::Database(
                "a read re-entered its thread's connection".to_owned(),
            ));
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(&connection)))
            .unwrap_or_else(|_| Err(StoreError::Database("a read panicked".to_owned())));
        // A read that failed mid-transaction must not leave it open.
        if !connection.is_autocommit() {
            connection.execute_batch("ROLLBACK")?;
        }
        result
    }

    /// Runs `work` on a reader connection, within the read budget.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_within(self.budget, work).await
    }

    /// Runs `work` with no time budget: for an admin's scan of every
    /// resource (a schema change's dry run), which is as long as the data.
    pub(crate) async fn read_all<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_within(UNBOUNDED, work).await
    }

    async fn read_within<T, F>(&self, budget: Duration, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: ReadJob = Box::new(move |connection: &Connection| {
            // Every read runs under a time budget: SQLite checks it every
            // few thousand steps and stops the statement past it.
            let deadline = Instant::now() + budget;
            connection.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline));
            let result = catch_unwind(AssertUnwindSafe(|| work(connection)))
                .unwrap_or_else(|_| Err(StoreError::Database("a read panicked".to_owned())));
            connection.progress_handler(PROGRESS_STEPS, None::<fn() -> bool>);
            let result = match result {
                Err(_) if Instant::now() > deadline => Err(StoreError::Busy(format!(
                    "a read ran past its {} ms budget and was stopped; a narrower filter or a smaller page answers sooner",
                    budget.as_millis()
                ))),
                other => other,
            };
            // The caller may have gone away (request cancelled).
            let _ = reply.send(result);
        });
        let Some(queue) = &self.queue else {
            return Err(StoreError::Database("the store is closed".to_owned()));
        };
        match queue.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(StoreError::Busy(format!(
                    "the read queue is full ({} reads waiting)",
                    self.capacity
                )))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::Database(
                    "the reader threads have stopped".to_owned(),
                ))
            }
        }
        answer.await.map_err(|_| {
            StoreError::Database("a reader thread stopped before answering".to_owned())
        })?
    }
}

impl Drop for ReaderPool {
    fn drop(&mut self) {
        self.queue.take();
        for thread in self.threads.drain(..) {
            // A reader ends when the queue closes; nothing to report.
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, jobs: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        job(connection);
        // A read that failed mid-transaction must not leave it open.
        if !connection.is_autocommit() {
            if let Err(error) = connection.execute_batch("ROLLBACK") {
                tracing::error!(%error, "a reader connection cannot roll back; stopping it");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_read_past_its_budget_is_stopped_and_the_reader_serves_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.db");
        drop(Connection::open(&path).unwrap());
        let mut pool = ReaderPool::start(&path, 1, 4).unwrap();
        pool.budget = Duration::from_millis(100);
        let started = Instant::now();
        let endless = pool
            .read(|connection| {
                Ok(connection.query_row(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                     SELECT count(*) FROM c",
                    [],
                    |row| row.get::<_, i64>(0),
                )?)
            })
            .await;
        assert!(matches!(endless, Err(StoreError::Busy(_))), "{endless:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let quick = pool
            .read(|connection| {
                Ok(connection.query_row("SELECT 41 + 1", [], |row| row.get::<_, i64>(0))?)
            })
            .await
            .unwrap();
        assert_eq!(quick, 42);
    }
}
