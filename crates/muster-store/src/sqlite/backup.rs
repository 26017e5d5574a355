//! Backups of the SQLite database while `muster serve` writes to it, the
//! checks a backup file passes before it is restored, and the restore.
//!
//! A backup is SQLite's online backup API copying every page in one step:
//! that step runs in one read transaction, so the copy is the database as
//! of one commit (every write acknowledged before the step began is in it,
//! none is half in it), and under WAL it never blocks the writer nor
//! restarts because of the writer. The copy is written beside the
//! destination, switched out of WAL mode (one self-contained file), checked
//! like a file about to be restored, flushed, and only then renamed to the
//! destination, so the destination never names a partial backup.
//!
//! A restore never runs beside a server: the caller holds the data
//! directory's serving lock. It copies the file into the data directory,
//! checks the copy, and only then swaps it in; the database it replaces is
//! kept aside under a dated name, never deleted.
//!
//! Architecture Invariant: nothing here writes to the live database; a
//! restore renames the replaced files, it never truncates or removes them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use time::macros::format_description;
use time::OffsetDateTime;

use super::schema::pending_migrations;
use super::DATABASE_FILE;
use crate::StoreError;

/// How long a backup waits for the database while another connection
/// holds a lock that keeps its snapshot from starting (a WAL restart).
const BUSY_DEADLINE: Duration = Duration::from_secs(30);

/// How many problems of a failed integrity check an error names.
const PROBLEMS_SHOWN: usize = 5;

/// The SQLite files beside a database that belong to it (WAL mode).
const SIDECARS: [&str; 2] = ["-wal", "-shm"];

/// What a backup file holds, as its checks found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The schema version the file's database is at.
    pub schema_version: usize,
    /// Migrations this build would apply when it opens the file (an older
    /// backup is brought up to date by `muster serve` on start).
    pub pending_migrations: usize,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The restored file, as checked.
    pub summary: BackupSummary,
    /// Where the database it replaced now is (`muster.db.replaced-<UTC
    /// time>`, with its `-wal` and `-shm` beside it if they were there);
    /// `None` when the data directory held no database.
    pub kept_aside: Option<PathBuf>,
}

/// Copies the database in `data_dir` to `destination` while it may be
/// serving: a consistent copy as of one commit, checked
/// ([`check_backup`]) before it takes the destination's name. Refuses an
/// existing destination and a data directory without a database.
pub fn backup_database(data_dir: &Path, destination: &Path) -> Result<BackupSummary, StoreError> {
    let source_path = data_dir.join(DATABASE_FILE);
    if !source_path.is_file() {
        return Err(StoreError::NotFound(format!(
            "no Muster database in {} (expected {})",
            data_dir.display(),
            source_path.display()
        )));
    }
    if destination.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already; a backup never overwrites a file (choose a new name)",
            destination.display()
        )));
    }
    let directory = parent_directory(destination);
    if !directory.is_dir() {
        return Err(StoreError::NotFound(format!(
            "the directory {} does not exist",
            directory.display()
        )));
    }
    let partial = with_suffix(destination, ".partial");
    let copied = copy_online(&source_path, &partial)
        .and_then(|()| check_backup(&partial))
        .and_then(|summary| {
            flush(&partial)?;
            rename(&partial, destination)?;
            flush_directory(destination)?;
            Ok(summary)
        });
    if copied.is_err() {
        // Best effort: the error at hand says what went wrong.
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// Checks that `file` is a Muster database this build can open: SQLite's
/// `integrity_check` passes, it has Muster's migration table, and its schema
/// version is not newer than this build's.
pub fn check_backup(file: &Path) -> Result<BackupSummary, StoreError> {
    let bytes = std::fs::metadata(file)
        .map_err(|error| StoreError::NotFound(format!("cannot read {}: {error}", file.display())))?
        .len();
    let not_sqlite = |error: rusqlite::Error| {
        StoreError::Database(format!(
            "{} is not a readable SQLite database: {error}",
            file.display()
        ))
    };
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(not_sqlite)?;
    let problems = integrity_problems(&connection).map_err(not_sqlite)?;
    if !problems.is_empty() {
        return Err(StoreError::Database(format!(
            "{} fails SQLite's integrity check: {}",
            file.display(),
            problems.join("; ")
        )));
    }
    let has_migrations: bool = connection
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master
             WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |row| row.get(0),
        )
        .map_err(not_sqlite)?;
    let version: i64 = if has_migrations {
        connection
            .query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(not_sqlite)?
    } else {
        0
    };
    if version < 1 {
        return Err(StoreError::Database(format!(
            "{} is an SQLite database but not a Muster database (no applied Muster migration)",
            file.display()
        )));
    }
    drop(connection);
    // Refuses a schema newer than this build knows, naming both versions.
    let pending = pending_migrations(file)?;
    Ok(BackupSummary {
        schema_version: usize::try_from(version).unwrap_or(usize::MAX),
        pending_migrations: pending.len(),
        bytes,
    })
}

/// Replaces the database in `data_dir` with the backup `file`, which must
/// pass [`check_backup`] (checked on the copy that is swapped in). The
/// replaced database and its WAL files are renamed aside, never deleted.
///
/// The caller must make sure no process uses the data directory's database
/// (`muster restore` holds the lock `muster serve` takes).
pub fn restore_database(file: &Path, data_dir: &Path) -> Result<Restored, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|error| {
        StoreError::Database(format!(
            "cannot create the data directory {}: {error}",
            data_dir.display()
        ))
    })?;
    let live = data_dir.join(DATABASE_FILE);
    let incoming = with_suffix(&live, ".restoring");
    let checked = copy_file(file, &incoming)
        .and_then(|()| same_owner_as(&incoming, data_dir))
        .and_then(|()| check_backup(&incoming))
        .and_then(|summary| flush(&incoming).map(|()| summary));
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => {
            // Best effort: the error at hand says what went wrong.
            let _ = std::fs::remove_file(&incoming);
            return Err(error);
        }
    };
    let kept_aside = if live.exists() {
        Some(set_aside(&live)?)
    } else {
        None
    };
    rename(&incoming, &live)?;
    flush_directory(&live)?;
    Ok(Restored {
        summary,
        kept_aside,
    })
}

/// The online backup of `source` into a new file at `destination`, in one
/// step (one read transaction), then switched to a rollback journal so the
/// file stands alone.
fn copy_online(source: &Path, destination: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(destination) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("cannot replace", destination, &error));
        }
        _ => {}
    }
    // Created readable by its owner only: it holds personal data and token
    // hashes. SQLite gives its journal the same permissions.
    create_private(destination)?;
    // Read-write (never created): a read-only connection cannot always
    // open a WAL database whose shared-memory file it may not create.
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(BUSY_DEADLINE)?;
    let mut to = Connection::open(destination)?;
    {
        let backup = Backup::new(&from, &mut to)?;
        let deadline = Instant::now() + BUSY_DEADLINE;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(StoreError::Busy(format!(
                        "the database {} stayed locked for {}s; try again",
                        source.display(),
                        BUSY_DEADLINE.as_secs()
                    )));
                }
                // `More` (not with -1 pages, but harmless): step again.
                _ => {}
            }
        }
    }
    let mode: String = to.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::Database(format!(
            "could not take {} out of WAL mode (got '{mode}')",
            destination.display()
        )));
    }
    to.close().map_err(|(_, error)| StoreError::from(error))?;
    Ok(())
}

/// Renames the database `live` and its WAL files to
/// `<live>.replaced-<UTC time>` (plus `-wal`, `-shm`). The WAL is first
/// folded into the database when SQLite can open it, so the file set
/// aside stands alone; otherwise the WAL files move first, so the restored
/// database can never pick up the old one's WAL.
fn set_aside(live: &Path) -> Result<PathBuf, StoreError> {
    // Best effort: a database SQLite cannot open is still set aside whole,
    // with its WAL files.
    let _ = settle(live);
    let stamp = OffsetDateTime::now_utc()
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|error| StoreError::Database(format!("cannot format the time: {error}")))?;
    let aside = unused_name(&with_suffix(live, &format!(".replaced-{stamp}")));
    for sidecar in SIDECARS {
        let from = with_suffix(live, sidecar);
        if from.exists() {
            rename(&from, &with_suffix(&aside, sidecar))?;
        }
    }
    rename(live, &aside)?;
    Ok(aside)
}

/// Folds the WAL of the database at `path` into it and removes the WAL
/// (switching to a rollback journal).
fn settle(path: &Path) -> Result<(), StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.query_row("PRAGMA journal_mode = DELETE", [], |row| {
        row.get::<_, String>(0)
    })?;
    connection
        .close()
        .map_err(|(_, error)| StoreError::from(error))
}

/// `path` if nothing is there, else `path.1`, `path.2`, ...
fn unused_name(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut number = 0_u32;
    while candidate.exists() || with_suffix(&candidate, "-wal").exists() {
        number += 1;
        candidate = with_suffix(path, &format!(".{number}"));
    }
    candidate
}

/// The problems `PRAGMA integrity_check` reports (none when it says `ok`),
/// at most [`PROBLEMS_SHOWN`].
fn integrity_problems(connection: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    let mut statement = connection.prepare(&format!("PRAGMA integrity_check({PROBLEMS_SHOWN})"))?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let line = row?;
        if line != "ok" {
            problems.push(line);
        }
    }
    Ok(problems)
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies `from` to a new file `to` (replacing a leftover) and flushes it.
fn copy_file(from: &Path, to: &Path) -> Result<(), StoreError> {
    let mut source =
        std::fs::File::open(from).map_err(|error| io_error("cannot read", from, &error))?;
    match std::fs::remove_file(to) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("cannot replace", to, &error));
        }
        _ => {}
    }
    let mut target = create_private(to)?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.flush())
        .and_then(|()| target.sync_all())
        .map_err(|error| io_error("cannot write", to, &error))
}

/// Creates a new, empty file readable and writable by its owner only.
fn create_private(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|error| io_error("cannot create", path, &error))
}

/// Gives `file` the owner of `directory` (a restore run as root into the
/// service user's data directory leaves a database the service can open),
/// or fails saying whom to run as.
fn same_owner_as(file: &Path, directory: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = |path: &Path| {
            std::fs::metadata(path).map_err(|error| io_error("cannot read", path, &error))
        };
        let (owner, file_owner) = (metadata(directory)?, metadata(file)?);
        if (owner.uid(), owner.gid()) != (file_owner.uid(), file_owner.gid()) {
            std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).map_err(
                |error| {
                    StoreError::Database(format!(
                        "cannot give {} the owner of {} (uid {}): {error}; restore as that user",
                        file.display(),
                        directory.display(),
                        owner.uid()
                    ))
                },
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = (file, directory);
    Ok(())
}

/// Flushes a file's content to the disk.
fn flush(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|error| io_error("cannot flush", path, &error))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flushes the directory holding `path`, so a rename into it is durable.
fn flush_directory(path: &Path) -> Result<(), StoreError> {
    let directory = parent_directory(path);
    #[cfg(unix)]
    {
        std::fs::File::open(directory)
            .and_then(|file| file.sync_all())
            .map_err(|error| io_error("cannot flush", directory, &error))
    }
    #[cfg(not(unix))]
    {
        let _ = directory;
        Ok(())
    }
}

/// Renames `from` to `to`.
fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(|error| {
        StoreError::Database(format!(
            "cannot rename {} to {}: {error}",
            from.display(),
            to.display()
        ))
    })
}

/// A file-system failure on `path`.
fn io_error(what: &str, path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Database(format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{Store, TenantId, TokenRecord};

    /// A data directory with a store holding one token.
    async fn data_dir_with_token(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .create_token(
                &TenantId::default_tenant(),
                TokenRecord {
                    name: name.to_owned(),
                    secret_hash: format!("hash-of-{name}"),
                    scopes: vec!["scim.read".to_owned()],
                    created: String::new(),
                },
            )
            .await
            .unwrap();
        dir
    }

    async fn token_names(data_dir: &Path) -> Vec<String> {
        let store = SqliteStore::open(data_dir).unwrap();
        store
            .list_tokens(&TenantId::default_tenant())
            .await
            .unwrap()
            .into_iter()
            .map(|token| token.name)
            .collect()
    }

    #[tokio::test]
    async fn a_backup_restores_into_a_new_directory_and_the_replaced_one_is_kept() {
        let source = data_dir_with_token("kept").await;
        let file = source.path().join("backup.db");
        let summary = backup_database(source.path(), &file).unwrap();
        assert!(summary.schema_version >= 1);
        assert_eq!(summary.pending_migrations, 0);
        assert!(
            !with_suffix(&file, "-wal").exists(),
            "the backup stands alone"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "a backup is private to its owner");
        }

        let target = data_dir_with_token("replaced").await;
        let restored = restore_database(&file, target.path()).unwrap();
        assert_eq!(token_names(target.path()).await, ["kept"]);
        let aside = restored.kept_aside.expect("the replaced database is kept");
        let aside_dir = tempfile::tempdir().unwrap();
        std::fs::copy(&aside, aside_dir.path().join(DATABASE_FILE)).unwrap();
        assert_eq!(token_names(aside_dir.path()).await, ["replaced"]);
    }

    #[tokio::test]
    async fn a_backup_never_overwrites_a_file() {
        let source = data_dir_with_token("a").await;
        let file = source.path().join("exists.db");
        std::fs::write(&file, "keep me").unwrap();
        let error = backup_database(source.path(), &file).unwrap_err();
        assert!(error.to_string().contains("exists already"), "{error}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_muster_database_is_not_restored() {
        let target = data_dir_with_token("stays").await;
        let scratch = tempfile::tempdir().unwrap();
        let text = scratch.path().join("notes.txt");
        std::fs::write(&text, "not a database, just some text that is long enough").unwrap();
        let other = scratch.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        for (file, expected) in [
            (&text, "not a readable SQLite database"),
            (&other, "not a Muster database"),
        ] {
            let error = restore_database(file, target.path()).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
        assert_eq!(token_names(target.path()).await, ["stays"]);
        assert!(!target.path().join("muster.db.restoring").exists());
    }
}
