//! `muster import` and `muster export`: a tenant's users and groups as
//! JSON Lines (see `muster_core::transfer`), with a progress bar, a report
//! of refused lines, and an import that resumes where it stopped.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use muster_core::transfer::MAX_LINE;
use muster_core::{Imported, Limits, Service};
use muster_store::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;

use crate::{
    cli_actor, database_name, open_existing_store, open_store_with, say, DataDir, PostgresOptions,
    SqliteOptions,
};

/// Most lines in flight at once.
const CONCURRENT: usize = 256;

/// Lines done between two checkpoints.
const CHECKPOINT_EVERY: u64 = 1_000;

/// PostgreSQL connections of an import.
const IMPORT_CONNECTIONS: usize = 16;

/// `muster import`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    data: DataDir,
    /// JSON Lines: one SCIM User or Group per line (as `muster export`
    /// writes, or as an identity provider sends them); users before the
    /// groups that hold them.
    file: PathBuf,
    /// Where refused lines go, with their line number and the reason
    /// [default: FILE.refused.jsonl].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Start from the first line, not where an interrupted import of the
    /// same file stopped.
    #[arg(long)]
    restart: bool,
}

/// `muster export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    data: DataDir,
    /// The file to write [default: standard output].
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Where an import of a file stopped: every line before `line` is
/// imported or reported.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    file: PathBuf,
    size: u64,
    /// The file's modification time, in nanoseconds since the epoch: a
    /// file rewritten to the same size is not the file checkpointed.
    #[serde(default)]
    modified: u128,
    /// The PostgreSQL database imported into (`None`: SQLite in the data
    /// directory): a checkpoint of an import elsewhere is not resumed.
    #[serde(default)]
    database: Option<String>,
    /// The tenant imported into (`None`: `default`, as before tenants).
    #[serde(default)]
    tenant: Option<String>,
    line: u64,
}

/// The modification time of `metadata`, in nanoseconds since the epoch.
fn modified_nanos(metadata: &std::fs::Metadata) -> u128 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos())
}

/// The checkpoint file of an import into `data_dir`.
fn checkpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("import.checkpoint")
}

/// `muster import FILE`.
pub(crate) async fn import(args: ImportArgs) -> Result<()> {
    let file = args
        .file
        .canonicalize()
        .with_context(|| format!("reading {}", args.file.display()))?;
    let metadata = std::fs::metadata(&file)?;
    let (size, modified) = (metadata.len(), modified_nanos(&metadata));
    let tenant = args.data.tenant()?;
    // A connection per line in flight would be too many: the database
    // server works on a few at a time.
    let store = open_store_with(
        &args.data,
        &SqliteOptions {
            max_readers: 1,
            ..SqliteOptions::default()
        },
        &PostgresOptions {
            max_connections: IMPORT_CONNECTIONS,
        },
    )
    .await?;
    crate::check_tenant(&*store, &args.data).await?;
    let service = Arc::new(Service::new(store, Limits::default()));
    let database = args.data.database.as_deref().map(database_name);
    let checkpoint_file = checkpoint_path(&args.data.data_dir);
    let resume_at = match std::fs::read_to_string(&checkpoint_file) {
        Ok(text) if !args.restart => serde_json::from_str::<Checkpoint>(&text)
            .ok()
            .filter(|done| {
                done.file == file
                    && done.size == size
                    && done.modified == modified
                    && done.database == database
                    && done.tenant.as_deref().unwrap_or("default") == tenant.0
            })
            .map_or(0, |done| done.line),
        _ => 0,
    };
    let report_path = args.report.clone().unwrap_or_else(|| {
        let mut name = file.clone().into_os_string();
        name.push(".refused.jsonl");
        PathBuf::from(name)
    });
    let mut report = BufWriter::new(
        if resume_at > 0 {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&report_path)
        } else {
            File::create(&report_path)
        }
        .with_context(|| format!("writing {}", report_path.display()))?,
    );

    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("importing");
    if resume_at > 0 {
        say(format_args!("resuming at line {}", resume_at + 1))?;
    }

    let mut reader = BufReader::new(File::open(&file)?);
    let mut window = Window::new(Arc::clone(&service), tenant.clone(), resume_at);
    let mut number = 0u64;
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let read = Read::by_ref(&mut reader)
            .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1)
            .read_until(b'\n', &mut bytes)
            .with_context(|| format!("reading {}", file.display()))?;
        if read == 0 {
            break;
        }
        bar.inc(u64::try_from(read).unwrap_or(0));
        number += 1;
        let too_long = read > MAX_LINE && bytes.last() != Some(&b'\n');
        if too_long {
            // The rest of the line is read past, not taken as lines.
            let rest =
                skip_line(&mut reader).with_context(|| format!("reading {}", file.display()))?;
            bar.inc(rest);
        }
        if number <= resume_at {
            continue;
        }
        let refusal = if too_long {
            Some(format!("the line is longer than {MAX_LINE} bytes"))
        } else {
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    // A byte order mark may open a file written on Windows.
                    let line = text.trim_start_matches('\u{feff}').trim();
                    if line.is_empty() {
                        window.skip(number);
                    } else {
                        window.start(number, line.to_owned(), &mut report).await?;
                    }
                    None
                }
                Err(error) => Some(format!("the line is not UTF-8: {error}")),
            }
        };
        if let Some(detail) = refusal {
            window.refuse(number, &detail, &mut report)?;
        }
        if window.done_through() >= window.saved + CHECKPOINT_EVERY {
            window.saved = window.done_through();
            save_checkpoint(
                &checkpoint_file,
                &file,
                (size, modified, database.as_deref(), &tenant),
                window.saved,
            )?;
        }
    }
    if resume_at > number {
        bail!(
            "the checkpoint says line {resume_at} was done, but {} has {number} lines: \
             run again with --restart",
            file.display()
        );
    }
    window.drain(&mut report).await?;
    let counts = window.counts;
    report.flush()?;
    bar.finish_and_clear();
    // Done: a later import of the same file starts from the top.
    match std::fs::remove_file(&checkpoint_file) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context("removing the import checkpoint"),
    }
    say(format_args!(
        "imported {} resources; {} were there already; {} refused",
        counts.created, counts.present, counts.refused
    ))?;
    if counts.refused > 0 {
        bail!(
            "{} lines refused: see {} (line number and reason each)",
            counts.refused,
            report_path.display()
        );
    }
    Ok(())
}

/// What an import did so far.
#[derive(Default)]
struct Counts {
    created: u64,
    present: u64,
    refused: u64,
}

/// Lines being imported: users concurrently (up to [`CONCURRENT`] in
/// flight), a group only once every line before it is done (it may name
/// them), a userName only once the line before it with that name is done
/// (the first line of a name wins). Keeps the line through which every
/// line is done, for the checkpoint.
struct Window {
    service: Arc<Service>,
    tenant: TenantId,
    tasks: JoinSet<(u64, Option<String>, Result<Imported, muster_core::Error>)>,
    names: HashSet<String>,
    /// Lines finished after a line still in flight.
    finished: BTreeSet<u64>,
    /// Every line up to this one is done.
    through: u64,
    /// The line the checkpoint holds.
    saved: u64,
    counts: Counts,
}

impl Window {
    fn new(service: Arc<Service>, tenant: TenantId, through: u64) -> Window {
        Window {
            service,
            tenant,
            tasks: JoinSet::new(),
            names: HashSet::new(),
            finished: BTreeSet::new(),
            through,
            saved: through,
            counts: Counts::default(),
        }
    }

    /// The line through which every line is done.
    fn done_through(&self) -> u64 {
        self.through
    }

    /// Marks a line with nothing to import as done.
    fn skip(&mut self, number: u64) {
        self.finished.insert(number);
        self.advance();
    }

    fn advance(&mut self) {
        while self.finished.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }

    /// Reports a line refused before it could be imported.
    fn refuse(&mut self, number: u64, detail: &str, report: &mut impl Write) -> Result<()> {
        self.counts.refused += 1;
        let entry = json!({
            "line": number,
            "status": 400,
            "scimType": "invalidValue",
            "detail": detail,
        });
        writeln!(report, "{entry}").context("writing the report")?;
        self.finished.insert(number);
        self.advance();
        Ok(())
    }

    /// Starts importing a line, waiting first for what it must follow.
    async fn start(&mut self, number: u64, line: String, report: &mut impl Write) -> Result<()> {
        let (is_group, name) = shape(&line);
        let clash = name.as_ref().is_some_and(|name| self.names.contains(name));
        if is_group || clash {
            self.drain(report).await?;
        }
        while self.tasks.len() >= CONCURRENT {
            self.join_one(report).await?;
        }
        if let Some(name) = &name {
            self.names.insert(name.clone());
        }
        let service = Arc::clone(&self.service);
        let tenant = self.tenant.clone();
        self.tasks.spawn(async move {
            let result = import_one(&service, &tenant, &line).await;
            (number, name, result)
        });
        if is_group {
            self.drain(report).await?;
        }
        Ok(())
    }

    /// Waits for every line in flight.
    async fn drain(&mut self, report: &mut impl Write) -> Result<()> {
        while !self.tasks.is_empty() {
            self.join_one(report).await?;
        }
        Ok(())
    }

    async fn join_one(&mut self, report: &mut impl Write) -> Result<()> {
        let Some(done) = self.tasks.join_next().await else {
            return Ok(());
        };
        let (number, name, result) = done.context("an import task failed")?;
        if let Some(name) = name {
            self.names.remove(&name);
        }
        match result {
            Ok(Imported::Created(_)) => self.counts.created += 1,
            Ok(Imported::AlreadyPresent(_)) => self.counts.present += 1,
            Err(error) => {
                let error = error.into_scim();
                self.counts.refused += 1;
                let entry = json!({
                    "line": number,
                    "status": error.status,
                    "scimType": error.scim_type,
                    "detail": error.detail,
                });
                writeln!(report, "{entry}").context("writing the report")?;
            }
        }
        self.finished.insert(number);
        self.advance();
        Ok(())
    }
}

/// Whether a line is a Group (its `schemas` name the core Group schema),
/// and its userName in lower case; attribute names and URNs in any case.
fn shape(line: &str) -> (bool, Option<String>) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(line) else {
        return (false, None);
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let is_group = field("schemas")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .any(|urn| urn.eq_ignore_ascii_case("urn:ietf:params:scim:schemas:core:2.0:Group"));
    let name = field("userName")
        .and_then(serde_json::Value::as_str)
        .map(str::to_lowercase);
    (is_group, name)
}

async fn import_one(
    service: &Service,
    tenant: &TenantId,
    line: &str,
) -> Result<Imported, muster_core::Error> {
    let session = service
        .session(tenant.clone(), cli_actor(), String::new())
        .await?;
    session.import_line(line).await
}

/// Reads past the rest of an over-long line; how many bytes it skipped.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => (end + 1, true),
            None => (buffer.len(), false),
        };
        reader.consume(used);
        skipped += u64::try_from(used).unwrap_or(0);
        if done {
            return Ok(skipped);
        }
    }
}

fn save_checkpoint(
    path: &Path,
    file: &Path,
    (size, modified, database, tenant): (u64, u128, Option<&str>, &TenantId),
    line: u64,
) -> Result<()> {
    let checkpoint = Checkpoint {
        file: file.to_owned(),
        size,
        modified,
        database: database.map(str::to_owned),
        tenant: (*tenant != TenantId::default_tenant()).then(|| tenant.0.clone()),
        line,
    };
    let temporary = path.with_extension("checkpoint.tmp");
    std::fs::write(&temporary, serde_json::to_vec(&checkpoint)?)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// `muster export`.
pub(crate) async fn export(args: ExportArgs) -> Result<()> {
    let tenant = args.data.tenant()?;
    let store = open_existing_store(&args.data).await?;
    let service = Service::new(store, Limits::default());
    let session = service
        .session(tenant, cli_actor(), String::new())
        .await
        .map_err(crate::refused)?;
    let (mut out, temporary): (Box<dyn Write>, Option<(PathBuf, PathBuf)>) = match &args.output {
        Some(path) => {
            // Written beside and renamed: never a half-written export.
            let mut name = path.clone().into_os_string();
            name.push(format!(".partial-{}", std::process::id()));
            let temporary = PathBuf::from(name);
            let file = File::create(&temporary)
                .with_context(|| format!("writing {}", temporary.display()))?;
            (
                Box::new(BufWriter::new(file)),
                Some((temporary, path.clone())),
            )
        }
        None => (Box::new(BufWriter::new(std::io::stdout().lock())), None),
    };
    let bar = ProgressBar::new_spinner();
    bar.set_message("exporting");
    let count = export_into(&session, &mut out, &bar).await;
    drop(out);
    let count = match count {
        Ok(count) => count,
        Err(error) => {
            if let Some((temporary, _)) = &temporary {
                // Best effort: the export failed; its partial file goes.
                let _ = std::fs::remove_file(temporary);
            }
            return Err(error);
        }
    };
    bar.finish_and_clear();
    if let Some((temporary, path)) = temporary {
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        say(format_args!(
            "exported {count} resources to {}",
            path.display()
        ))?;
    }
    Ok(())
}

/// Writes the export to `out`; how many resources.
async fn export_into(
    session: &muster_core::Session<'_>,
    out: &mut dyn Write,
    bar: &ProgressBar,
) -> Result<u64> {
    let mut failure = None;
    let count = session
        .export(|resource| {
            if failure.is_none() {
                if let Err(error) = writeln!(out, "{resource}") {
                    failure = Some(error);
                }
            }
            bar.inc(1);
            Ok(())
        })
        .await
        .map_err(crate::refused)?;
    if let Some(error) = failure {
        return Err(error).context("writing the export");
    }
    out.flush().context("writing the export")?;
    Ok(count)
}
