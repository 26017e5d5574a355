//! The writer thread and group commit.
//!
//! One thread owns the only write connection. Callers send it jobs over a
//! channel; it takes every job waiting, runs each inside its own `SAVEPOINT`
//! within one transaction, commits once, and only then answers each job
//! through its oneshot. A job that fails rolls back to its savepoint alone and
//! gets its own error; the others commit. So N concurrent writes cost one
//! fsync, and no caller hears "ok" before its write is durable.
//!
//! The queue is bounded (`SqliteOptions::writer_queue` jobs waiting): when
//! it is full a write is refused at once with `StoreError::Busy`, never
//! queued, so a burst the disk cannot keep up with costs callers a retry
//! rather than the process unbounded memory and latency. A job accepted in
//! the queue is run as any other.
//!
//! A job submitted with [`Writer::submit_alone`] (a schema change, which may
//! rewrite every resource of a type) runs in a transaction of its own,
//! without a savepoint: the jobs queued before it commit first, and a
//! failure rolls back its transaction alone. Without the savepoint SQLite
//! keeps no statement journal (which holds the original of every page the
//! savepoint changes, in memory here), so a large rewrite costs pages in the
//! WAL rather than in RAM.
//!
//! Three kinds of per-transaction state live on the writer thread and follow
//! the jobs' fate: path numbers (`paths.rs`, forgotten on rollback),
//! attribute usage notes (`usage.rs`: a failed job's are dropped, the
//! others are written just before the commit, in the same transaction) and
//! index rules (`rules.rs`: each tenant's generation checked once per
//! transaction, everything forgotten on rollback).
//!
//! Architecture Invariant: nothing else writes to the database, so checks
//! made inside a job (uniqueness, version preconditions, member existence)
//! cannot race with another write.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{paths, rules, usage};
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
    /// Whether the job runs in a transaction of its own (see the module
    /// documentation).
    fn alone(&self) -> bool;
}

type Job = Box<dyn WriteJob>;

/// A job with a typed answer.
struct TypedJob<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    alone: bool,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &Connection) -> Ran {
        let TypedJob { work, reply, .. } = *self;
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

    fn alone(&self) -> bool {
        self.alone
    }
}

/// The handle to the writer thread; dropping it lets the thread finish the
/// queued jobs and close the connection.
pub(crate) struct Writer {
    sender: Option<mpsc::SyncSender<Job>>,
    /// How many jobs may wait in the queue.
    capacity: usize,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread over `connection`, with room for
    /// `capacity` waiting jobs (at least one).
    pub(crate) fn start(connection: Connection, capacity: usize) -> Result<Writer, StoreError> {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::sync_channel::<Job>(capacity);
        let thread = std::thread::Builder::new()
            .name("muster-sqlite-writer".to_owned())
            .spawn(move || run(&connection, &receiver))
            .map_err(|error| {
                StoreError::Database(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(Writer {
            sender: Some(sender),
            capacity,
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
        self.send(work, false).await
    }

    /// [`Writer::submit`] for a large job: it runs in a transaction of its
    /// own, without a savepoint (see the module documentation).
    pub(crate) async fn submit_alone<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(work, true).await
    }

    async fn send<T, F>(&self, work: F, alone: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(TypedJob { work, reply, alone });
        let Some(sender) = &self.sender else {
            return Err(StoreError::Database("the store is closed".to_owned()));
        };
        match sender.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(StoreError::Busy(format!(
                    "the write queue is full ({} writes waiting)",
                    self.capacity
                )))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::Database(
                    "the writer thread has stopped".to_owned(),
                ))
            }
        }
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

/// The writer loop: batch, run, commit, answer. A job that runs alone ends
/// the batch before it and runs next, by itself.
fn run(connection: &Connection, receiver: &mpsc::Receiver<Job>) {
    let mut next: Option<Job> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        if first.alone() {
            run_alone(connection, first);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) if job.alone() => {
                    next = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(connection, batch);
    }
}

/// Runs one job in its own transaction, without a savepoint: commit when it
/// succeeds, roll back when it fails.
fn run_alone(connection: &Connection, job: Job) {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        fail_without_running(job, &format!("cannot begin a write transaction: {error}"));
        return;
    }
    rules::begin_transaction();
    let ran = job.run(connection);
    usage::end_job(ran.succeeded);
    let failure = if connection.is_autocommit() {
        Some("the write transaction was rolled back by the database".to_owned())
    } else if ran.succeeded {
        commit(connection).err()
    } else {
        // The job's own error is what its caller hears.
        None
    };
    if (failure.is_some() || !ran.succeeded) && !connection.is_autocommit() {
        if let Err(error) = execute(connection, "ROLLBACK") {
            tracing::error!(%error, "rollback of a write failed");
        }
    }
    if failure.is_some() || !ran.succeeded {
        paths::forget();
        usage::forget();
        rules::forget();
    }
    if let Some(failure) = &failure {
        tracing::error!(failure, "a write was not committed");
    }
    (ran.deliver)(failure);
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
    rules::begin_transaction();
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
        usage::end_job(ran.succeeded);
        if !ran.succeeded {
            // Path numbers the job assigned were rolled back with it, and
            // so were any rules it read.
            paths::forget();
            rules::forget();
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
        None => commit(connection).err(),
    };
    if commit_failure.is_some() && !connection.is_autocommit() {
        if let Err(error) = execute(connection, "ROLLBACK") {
            tracing::error!(%error, "rollback after a failed commit failed");
        }
    }
    if let Some(failure) = &commit_failure {
        paths::forget();
        usage::forget();
        rules::forget();
        tracing::error!(failure, "a write batch was not committed");
    }
    for deliver in deliveries {
        deliver(commit_failure.clone());
    }
}

/// Writes the transaction's usage notes, then commits; the failure text
/// when either fails.
fn commit(connection: &Connection) -> Result<(), String> {
    usage::flush(connection).map_err(|error| format!("cannot record attribute usage: {error}"))?;
    execute(connection, "COMMIT").map_err(|error| format!("commit failed: {error}"))
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
