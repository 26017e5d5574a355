//! `muster backup` and `muster restore`, and the lock `muster serve` holds
//! on its data directory so that a restore never replaces a live database.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use muster_store::sqlite::backup::{backup_database, restore_database, BackupSummary};
use muster_sync::secrets::{KEY_FILE, KEY_VARIABLE};

use crate::{database_name, say};

/// The lock file `muster serve` holds (an OS file lock) while it runs on a
/// data directory; it holds the server's process id, for messages.
pub(crate) const SERVING_LOCK: &str = "serving.lock";

/// `muster backup [--data-dir DIR] FILE`.
#[derive(Args)]
pub(crate) struct BackupArgs {
    /// The data directory of the database to copy (it may be serving).
    #[arg(long, env = "MUSTER_DATA_DIR", default_value = "./muster-data")]
    data_dir: PathBuf,
    /// A PostgreSQL deployment: prints how to back it up with `pg_dump`
    /// (Muster does not copy a database server's data itself).
    #[arg(long, env = "MUSTER_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// The backup file to write; it must not exist.
    file: PathBuf,
}

/// `muster restore FILE [--data-dir DIR]`.
#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The backup file (as `muster backup` writes).
    file: PathBuf,
    /// The data directory to restore into; no `muster serve` may be
    /// running on it. A database already there is kept aside, renamed
    /// `muster.db.replaced-<UTC time>`.
    #[arg(long, env = "MUSTER_DATA_DIR", default_value = "./muster-data")]
    data_dir: PathBuf,
    /// A PostgreSQL deployment: prints how to restore it with
    /// `pg_restore`.
    #[arg(long, env = "MUSTER_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
}

/// Locks `data_dir` for a serving process (creating the directory if
/// needed): the lock lives as long as the returned file. Fails, naming the
/// holder's process id, while another `muster serve` or a `muster restore`
/// holds it. The OS releases it when the process ends, however it ends.
pub(crate) fn lock_serving(data_dir: &Path) -> Result<File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join(SERVING_LOCK);
    let writable = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    // A lock file another user made still locks when only readable; the
    // process id is then left out.
    let (mut file, writable) = match writable {
        Ok(file) => (file, true),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => (
            File::open(&path).with_context(|| format!("opening {}", path.display()))?,
            false,
        ),
        Err(error) => return Err(error).with_context(|| format!("opening {}", path.display())),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // Only for the message: an unreadable id is left out.
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let process = if holder.is_empty() {
                String::new()
            } else {
                format!(" (process {holder})")
            };
            bail!(
                "{} is in use: a muster serve or a muster restore{process} holds {}; \
                 stop it first",
                data_dir.display(),
                path.display()
            );
        }
        Err(TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("locking {}", path.display()));
        }
    }
    if writable {
        give_to_directory_owner(&file, data_dir);
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(file)
}

/// Makes the lock file the data directory owner's, so that a `muster
/// restore` run as root leaves one the service's user can write. Best
/// effort: only root may change an owner, and a lock file left readable
/// still locks.
fn give_to_directory_owner(file: &File, data_dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(directory), Ok(lock)) = (std::fs::metadata(data_dir), file.metadata()) {
            if (directory.uid(), directory.gid()) != (lock.uid(), lock.gid()) {
                let _ =
                    std::os::unix::fs::fchown(file, Some(directory.uid()), Some(directory.gid()));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (file, data_dir);
}

/// `muster backup`.
pub(crate) fn backup(args: BackupArgs) -> Result<()> {
    if let Some(url) = &args.database {
        bail!(
            "muster backup copies the SQLite database of a data directory; {} is a \
             PostgreSQL database: back it up with pg_dump, e.g.\n  \
             pg_dump --format=custom --file {} \"$MUSTER_DATABASE_URL\"\n\
             (consistent while Muster serves; restore with pg_restore, see README, \"Backups\")",
            database_name(url),
            args.file.display()
        );
    }
    let summary = backup_database(&args.data_dir, &args.file).with_context(|| {
        format!(
            "backing up the database in {} to {}",
            args.data_dir.display(),
            args.file.display()
        )
    })?;
    say(format_args!(
        "backed up {} to {} ({})",
        args.data_dir.display(),
        args.file.display(),
        describe(&summary)
    ))?;
    eprintln!(
        "note: target secrets in the backup are sealed with {} (or {KEY_VARIABLE}); keep a \
         copy of that key apart from the backups: a restore needs it to deliver to targets",
        args.data_dir.join(KEY_FILE).display()
    );
    Ok(())
}

/// `muster restore`.
pub(crate) fn restore(args: RestoreArgs) -> Result<()> {
    if let Some(url) = &args.database {
        bail!(
            "muster restore replaces the SQLite database of a data directory; {} is a \
             PostgreSQL database: stop every muster serve on it, then restore a pg_dump file \
             into a new, empty database with\n  \
             pg_restore --no-owner --dbname postgres://USER@HOST/NEW_DATABASE {}\n\
             and point --database (MUSTER_DATABASE_URL) at it (see README, \"Backups\")",
            database_name(url),
            args.file.display()
        );
    }
    // Held until the restore is done: no muster serve can start on the
    // directory meanwhile.
    let _lock = lock_serving(&args.data_dir)
        .map_err(|error| anyhow!("refusing to restore over a live database: {error:#}"))?;
    let restored = restore_database(&args.file, &args.data_dir).with_context(|| {
        format!(
            "restoring {} into {}",
            args.file.display(),
            args.data_dir.display()
        )
    })?;
    say(format_args!(
        "restored {} into {} ({})",
        args.file.display(),
        args.data_dir.display(),
        describe(&restored.summary)
    ))?;
    if let Some(aside) = &restored.kept_aside {
        say(format_args!(
            "the database it replaced is kept as {}",
            aside.display()
        ))?;
    }
    if std::env::var_os(KEY_VARIABLE).is_none() && !args.data_dir.join(KEY_FILE).exists() {
        eprintln!(
            "note: {} holds no {KEY_FILE}: copy the original data directory's key there (or \
             set {KEY_VARIABLE}) before muster serve, or targets' secrets cannot be unsealed",
            args.data_dir.display()
        );
    }
    Ok(())
}

/// The schema version and size of a backup, for a message.
fn describe(summary: &BackupSummary) -> String {
    let pending = match summary.pending_migrations {
        0 => String::new(),
        steps => format!(", {steps} migration(s) behind: muster serve applies them on start"),
    };
    format!(
        "schema version {}, {} bytes{pending}",
        summary.schema_version, summary.bytes
    )
}
