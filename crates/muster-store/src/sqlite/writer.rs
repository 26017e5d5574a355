//! The writer thread and group commit.
//!
//! One thread owns the only write connection. Callers send it jobs over a
//! channel; it takes every job waiting, runs each inside its own `SAVEPOINT`
//! within one transaction, commits once, and only then answers each job
//! through its oneshot. A job that fails rolls back to its savepoint alone and
//! gets its own error; the others commit. So N concurrent writes cost one
//! fsync, and no caller hears "ok" before its write is durable.
//!
//! Architecture Invariant: nothing else writes to the database, so checks
//! made inside a job (uniqueness, version preconditions, member existence)
//! cannot race with another write.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::paths;
use crate::StoreError;

/// Most jobs committed together; bounds a batch's latency and memory.
const MAX_BATCH: usize = 512;

/// What a job hands back after running: whether it succeeded (its savepoint
/// is released, else rolled back) and how to deliver its answer once the
/// transaction's fate is known.
struct Ran {
    succeeded: bool,
    deliver: Box<dyn FnOnce(Option<String>) + Send>,
}

/// A unit of work for the writer thread.
trait WriteJob: Send {
    /// Runs the work inside the current savepoint.
    fn run(self: Box<Self>, connection: &Connection) -> Ran;
    /// Answers without running: the transaction could not hold the job.
    fn fail(self: Box<Self>, failure: String);
}

type Job = Box<dyn WriteJob>;

/// A job with a typed answer.
struct TypedJob<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &Connection) -> Ran {
        let TypedJob { work, reply } = *self;
        let result = match catch_unwind(AssertUnwindSafe(|| work(connection))) {
            Ok(result) => result,
            Err(_) => Err(StoreError::Database(
                "a write panicked; it was rolled back".to_owned(),
            )),
        };
        Ran {
            succeeded: result.is_ok(),
            deliver: Box::new(move |commit_failure: Option<String>| {
                let outcome = match (result, commit_failure) {
                    (Ok(_), Some(failure)) => Err(StoreError::Database(failure)),
                    (result, _) => result,
                };
                // The caller may have gone away (request cancelled); the
                // write stands regardless.
                let _ = reply.send(outcome);
            }),
        }
    }

    fn fail(self: Box<Self>, failure: String) {
        let _ = self.reply.send(Err(StoreError::Database(failure)));
    }
}

/// The handle to the writer thread; dropping it lets the thread finish the
/// queued jobs and close the connection.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread over `connection`.
    pub(crate) fn start(connection: Connection) -> Result<Writer, StoreError> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("muster-sqlite-writer".to_owned())
            .spawn(move || run(&connection, &receiver))
            .map_err(|error| {
                StoreError::Database(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the writer's transaction; resolves once the
    /// transaction holding it is durably committed (or the work failed).
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(TypedJob { work, reply });
        let Some(sender) = &self.sender else {
            return Err(StoreError::Database("the store is closed".to_owned()));
        };
        sender
            .send(job)
            .map_err(|_| StoreError::Database("the writer thread has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Database("the writer thread stopped before answering".to_owned())
        })?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            // The thread ends once the queue is drained; a panic there has
            // already been reported through the jobs' errors.
            let _ = thread.join();
        }
    }
}

/// The writer loop: batch, run, commit, answer.
fn run(connection: &Connection, receiver: &mpsc::Receiver<Job>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(connection, batch);
    }
}

fn run_batch(connection: &Connection, batch: Vec<Job>) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        let failure = format!("cannot begin a write transaction: {error}");
        for job in batch {
            // Run nothing: answer each job with the failure.
            fail_without_running(job, &failure);
        }
        return;
    }
    let mut deliveries = Vec::with_capacity(batch.len());
    let mut transaction_lost: Option<String> = None;
    for job in batch {
        if let Some(failure) = &transaction_lost {
            fail_without_running(job, failure);
            continue;
        }
        if let Err(error) = execute(connection, "SAVEPOINT job") {
            let failure = format!("cannot open a savepoint: {error}");
            fail_without_running(job, &failure);
            transaction_lost = Some(failure);
            continue;
        }
        let ran = job.run(connection);
        if !ran.succeeded {
            // Path numbers the job assigned were rolled back with it.
            paths::forget();
        }
        if connection.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, disk
            // full): every job of the batch so far is lost.
            transaction_lost =
                Some("the write transaction was rolled back by the database".to_owned());
        } else if ran.succeeded {
            if let Err(error) = execute(connection, "RELEASE job") {
                transaction_lost = Some(format!("cannot release a savepoint: {error}"));
            }
        } else if let Err(error) =
            execute(connection, "ROLLBACK TO job").and_then(|()| execute(connection, "RELEASE job"))
        {
            transaction_lost = Some(format!("cannot roll back a savepoint: {error}"));
        }
        deliveries.push(ran.deliver);
    }
    let commit_failure = match transaction_lost {
        Some(failure) => Some(failure),
        None => execute(connection, "COMMIT")
            .err()
            .map(|error| format!("commit failed: {error}")),
    };
    if commit_failure.is_some() && !connection.is_autocommit() {
        if let Err(error) = execute(connection, "ROLLBACK") {
            tracing::error!(%error, "rollback after a failed commit failed");
        }
    }
    if let Some(failure) = &commit_failure {
        paths::forget();
        tracing::error!(failure, "a write batch was not committed");
    }
    for deliver in deliveries {
        deliver(commit_failure.clone());
    }
}

/// Answers a job that never ran with `failure`.
fn fail_without_running(job: Job, failure: &str) {
    tracing::error!(failure, "a write was not run");
    job.fail(failure.to_owned());
}

fn execute(connection: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}
