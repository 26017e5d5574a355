//! The writer thread and group commit.
//!
//! One thread owns the only write connection. Callers send it jobs over a
//! channel; it takes every job waiting, runs them in one transaction,
//! commits once, and only then answers each job through its oneshot. A job
//! that fails is undone alone and gets its own error; the others commit. So
//! N concurrent writes cost one fsync, and no caller hears "ok" before its
//! write is durable.
//!
//! How a failed job is undone alone: a job runs inside its own `SAVEPOINT`,
//! except a *replayable* one ([`Writer::submit_replayable`]: the creates,
//! updates and deletes of resources), whose work can run again with the same
//! effect. While a batch holds only replayable work, its jobs run without
//! savepoints, which spares SQLite a copy of every page each job changes
//! (its statement journal); when one fails, the writer rolls the whole
//! transaction back, runs the jobs that had succeeded again, each in a
//! savepoint this time, and goes on with savepoints to the end of the batch
//! (see `run_batch`). Only the last run of a job counts: answers are sent
//! after the commit.
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

/// The failure every job of a transaction hears when SQLite rolled it back.
const ROLLED_BACK: &str = "the write transaction was rolled back by the database";

/// How the writer runs a job.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Inside a savepoint of the batch's transaction.
    Batched,
    /// In the batch's transaction without a savepoint while the batch holds
    /// only replayable work; run again after a rollback (see the module
    /// documentation).
    Replayable,
    /// In a transaction of its own.
    Alone,
}

/// A unit of work for the writer thread.
trait WriteJob: Send {
    /// Runs the work in the open transaction and keeps its outcome (a
    /// replayed job's replaces the previous one); whether it succeeded.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Whether the last run succeeded.
    fn succeeded(&self) -> bool;
    /// How the writer runs the job.
    fn kind(&self) -> Kind;
    /// Answers with the kept outcome, or with `commit_failure` when the
    /// work succeeded but its transaction did not commit.
    fn deliver(self: Box<Self>, commit_failure: Option<String>);
    /// Answers without running: the transaction could not hold the job.
    fn fail(self: Box<Self>, failure: String);
}

type Job = Box<dyn WriteJob>;

/// A job with a typed answer.
struct TypedJob<T, F> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    kind: Kind,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let work = &mut self.work;
        let result = match catch_unwind(AssertUnwindSafe(|| work(connection))) {
            Ok(result) => result,
            Err(_) => Err(StoreError::Database(
                "a write panicked; it was rolled back".to_owned(),
            )),
        };
        let succeeded = result.is_ok();
        self.outcome = Some(result);
        succeeded
    }

    fn succeeded(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn deliver(self: Box<Self>, commit_failure: Option<String>) {
        let TypedJob { outcome, reply, .. } = *self;
        let outcome = match (outcome, commit_failure) {
            (Some(Ok(_)) | None, Some(failure)) => Err(StoreError::Database(failure)),
            (Some(result), _) => result,
            (None, None) => Err(StoreError::Database("the write was not run".to_owned())),
        };
        // The caller may have gone away (request cancelled); the write
        // stands regardless.
        let _ = reply.send(outcome);
    }

    fn fail(self: Box<Self>, failure: String) {
        let _ = self.reply.send(Err(StoreError::Database(failure)));
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
        self.send(run_once(work), Kind::Batched).await
    }

    /// [`Writer::submit`] for work that may run more than once: after a
    /// rollback, the writer runs it again in a new transaction, and only
    /// the last run counts (see the module documentation). Each run must
    /// do what the first would in the same database state.
    pub(crate) async fn submit_replayable<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(work, Kind::Replayable).await
    }

    /// [`Writer::submit`] for a large job: it runs in a transaction of its
    /// own, without a savepoint (see the module documentation).
    pub(crate) async fn submit_alone<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(run_once(work), Kind::Alone).await
    }

    async fn send<T, F>(&self, work: F, kind: Kind) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(TypedJob {
            work,
            outcome: None,
            reply,
            kind,
        });
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

/// Work that runs once, as a job the writer never replays.
fn run_once<T, F>(work: F) -> impl FnMut(&Connection) -> Result<T, StoreError>
where
    F: FnOnce(&Connection) -> Result<T, StoreError>,
{
    let mut work = Some(work);
    move |connection| match work.take() {
        Some(work) => work(connection),
        None => Err(StoreError::Database(
            "a write that runs once was run again".to_owned(),
        )),
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
        if first.kind() == Kind::Alone {
            run_alone(connection, first);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) if job.kind() == Kind::Alone => {
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
fn run_alone(connection: &Connection, mut job: Job) {
    if let Err(failure) = begin(connection) {
        fail_without_running(job, &failure);
        return;
    }
    let succeeded = job.run(connection);
    usage::end_job(succeeded);
    let failure = if connection.is_autocommit() {
        Some(ROLLED_BACK.to_owned())
    } else if succeeded {
        commit(connection).err()
    } else {
        // The job's own error is what its caller hears.
        None
    };
    if (failure.is_some() || !succeeded) && !connection.is_autocommit() {
        if let Err(error) = execute(connection, "ROLLBACK") {
            tracing::error!(%error, "rollback of a write failed");
        }
    }
    if failure.is_some() || !succeeded {
        forget_transaction();
    }
    if let Some(failure) = &failure {
        tracing::error!(failure, "a write was not committed");
    }
    job.deliver(failure);
}

/// Runs a batch in one transaction and commits it once.
///
/// While every job run so far is replayable, jobs run without savepoints
/// (a savepoint makes SQLite copy each page a job changes into its
/// statement journal first). When one of them fails, the transaction is
/// rolled back and the others that succeeded run again, each in a
/// savepoint, and the rest of the batch runs in savepoints too; the failed
/// job keeps its error without running again, as replaying the jobs before
/// it reproduces the state it failed on. A job that is not replayable runs
/// in a savepoint; once one has succeeded, a rollback could not be undone
/// by replaying, so the rest of the batch runs in savepoints.
fn run_batch(connection: &Connection, batch: Vec<Job>) {
    if let Err(failure) = begin(connection) {
        for job in batch {
            // Run nothing: answer each job with the failure.
            fail_without_running(job, &failure);
        }
        return;
    }
    let mut ran: Vec<Job> = Vec::with_capacity(batch.len());
    let mut without_savepoints = true;
    let mut transaction_lost: Option<String> = None;
    for mut job in batch {
        if let Some(failure) = &transaction_lost {
            fail_without_running(job, failure);
            continue;
        }
        if without_savepoints && job.kind() == Kind::Replayable {
            let succeeded = job.run(connection);
            usage::end_job(succeeded);
            if connection.is_autocommit() {
                transaction_lost = Some(ROLLED_BACK.to_owned());
            } else if !succeeded {
                without_savepoints = false;
                if let Err(failure) = replay(connection, &mut ran) {
                    transaction_lost = Some(failure);
                }
            }
            ran.push(job);
            continue;
        }
        match run_in_savepoint(connection, &mut job) {
            Ok(succeeded) => {
                if succeeded && job.kind() != Kind::Replayable {
                    without_savepoints = false;
                }
            }
            Err(failure) => transaction_lost = Some(failure),
        }
        ran.push(job);
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
        forget_transaction();
        tracing::error!(failure, "a write batch was not committed");
    }
    for job in ran {
        job.deliver(commit_failure.clone());
    }
}

/// Rolls the transaction back and, in a new one, runs again each job of
/// `ran` that succeeded, each in its own savepoint (all of them are
/// replayable: a batch runs without savepoints only while they are). A job
/// that fails this time keeps its new error. The failure text when the
/// transaction itself is lost.
fn replay(connection: &Connection, ran: &mut [Job]) -> Result<(), String> {
    if !connection.is_autocommit() {
        execute(connection, "ROLLBACK")
            .map_err(|error| format!("cannot roll back a write batch: {error}"))?;
    }
    forget_transaction();
    begin(connection)?;
    for job in ran.iter_mut() {
        if job.kind() == Kind::Replayable && job.succeeded() {
            run_in_savepoint(connection, job)?;
        }
    }
    Ok(())
}

/// Runs a job inside its own savepoint: released when it succeeds, rolled
/// back to when it fails. Whether it succeeded, or the failure text when
/// the transaction is lost.
fn run_in_savepoint(connection: &Connection, job: &mut Job) -> Result<bool, String> {
    execute(connection, "SAVEPOINT job")
        .map_err(|error| format!("cannot open a savepoint: {error}"))?;
    let succeeded = job.run(connection);
    usage::end_job(succeeded);
    if !succeeded {
        // Path numbers the job assigned were rolled back with it, and so
        // were any rules it read.
        paths::forget();
        rules::forget();
    }
    if connection.is_autocommit() {
        // SQLite rolled the whole transaction back (I/O error, disk full):
        // every job of the batch so far is lost.
        return Err(ROLLED_BACK.to_owned());
    }
    if succeeded {
        execute(connection, "RELEASE job")
            .map_err(|error| format!("cannot release a savepoint: {error}"))?;
    } else {
        execute(connection, "ROLLBACK TO job")
            .and_then(|()| execute(connection, "RELEASE job"))
            .map_err(|error| format!("cannot roll back a savepoint: {error}"))?;
    }
    Ok(succeeded)
}

/// Opens a write transaction; the failure text when it cannot.
fn begin(connection: &Connection) -> Result<(), String> {
    execute(connection, "BEGIN IMMEDIATE")
        .map_err(|error| format!("cannot begin a write transaction: {error}"))?;
    rules::begin_transaction();
    Ok(())
}

/// Forgets the writer thread's state of a transaction rolled back.
fn forget_transaction() {
    paths::forget();
    usage::forget();
    rules::forget();
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
