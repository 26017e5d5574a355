//! The CSV target, for platforms that import files (Five9 has no SCIM):
//! each run writes one file to the target's directory (a full export, or
//! the users changed since the last run), columns from the mappings, an
//! `action` column first (`upsert` or `deprovision`). A file is written to
//! a temporary name, synced and renamed, so an importer never reads half a
//! file; every run appends a line to `runs.log` in the same directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use muster_scim::SchemaRegistry;
use muster_store::{ResourceId, Store, StoreError, TenantId};
use muster_targets::{map_resource, CompiledTarget};
use serde_json::{json, Value};

use crate::deliver::now;
use crate::SyncError;

/// The run log's file name.
pub const RUN_LOG: &str = "runs.log";

/// Delivery to a CSV directory.
pub struct CsvDelivery {
    tenant: TenantId,
    target: CompiledTarget,
    store: Arc<dyn Store>,
}

/// What one run wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CsvRun {
    /// The file written.
    pub file: PathBuf,
    /// Its rows (without the header).
    pub rows: u64,
}

impl CsvDelivery {
    /// Delivery of a compiled `csv` target.
    pub fn new(tenant: TenantId, target: CompiledTarget, store: Arc<dyn Store>) -> Self {
        CsvDelivery {
            tenant,
            target,
            store,
        }
    }

    fn directory(&self) -> Result<&Path, SyncError> {
        self.target
            .document
            .directory
            .as_deref()
            .ok_or_else(|| SyncError::Config("the csv target has no directory".into()))
    }

    /// Writes every user in scope.
    pub async fn export_full(
        &self,
        registry: &SchemaRegistry,
        users: &[ResourceId],
    ) -> Result<CsvRun, SyncError> {
        self.export("full", registry, users, false).await
    }

    /// Writes the users a batch of changes touched (those gone or out of
    /// scope as `deprovision` rows).
    pub async fn export_changes(
        &self,
        registry: &SchemaRegistry,
        users: &[ResourceId],
    ) -> Result<Option<CsvRun>, SyncError> {
        if users.is_empty() {
            return Ok(None);
        }
        self.export("changes", registry, users, true)
            .await
            .map(Some)
    }

    async fn export(
        &self,
        kind: &str,
        registry: &SchemaRegistry,
        users: &[ResourceId],
        with_removals: bool,
    ) -> Result<CsvRun, SyncError> {
        let columns: Vec<&str> = self
            .target
            .user_mappings
            .iter()
            .map(|mapping| mapping.target.as_str())
            .collect();
        let mut rows = Vec::new();
        for id in users {
            let user = match self.store.get(&self.tenant, "User", id, false).await {
                Ok(stored) => Some(stored.resource),
                Err(StoreError::NotFound(_)) => None,
                Err(error) => return Err(error.into()),
            };
            match user.filter(|user| self.target.user_in_scope(user, registry)) {
                Some(user) => {
                    let mapped = map_resource(&self.target.user_mappings, &user);
                    let mut row = vec!["upsert".to_owned()];
                    row.extend(
                        columns
                            .iter()
                            .map(|column| cell(mapped.values.get(*column))),
                    );
                    rows.push(row);
                }
                None if with_removals => {
                    let mut row = vec!["deprovision".to_owned()];
                    row.extend(columns.iter().map(|column| {
                        if *column == "id" {
                            id.0.clone()
                        } else {
                            String::new()
                        }
                    }));
                    rows.push(row);
                }
                None => {}
            }
        }
        let directory = self.directory()?.to_owned();
        let name = format!(
            "{}-{kind}-{}.csv",
            self.target.document.name,
            now().replace([':', '.'], "-")
        );
        let header: Vec<String> = std::iter::once("action".to_owned())
            .chain(columns.iter().map(|column| (*column).to_owned()))
            .collect();
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let run = tokio::task::spawn_blocking(move || write_run(&directory, &name, &header, &rows))
            .await
            .map_err(|error| SyncError::Config(format!("CSV writer: {error}")))??;
        tracing::info!(file = %run.display(), rows = count, "CSV export written");
        Ok(CsvRun {
            file: run,
            rows: count,
        })
    }
}

/// A value as a CSV cell: text as it is, arrays joined with `;`.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| cell(Some(item)))
            .collect::<Vec<_>>()
            .join(";"),
        Some(other) => other.to_string(),
    }
}

fn write_run(
    directory: &Path,
    name: &str,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<PathBuf, SyncError> {
    let io = |error: std::io::Error| {
        SyncError::Config(format!("CSV target {}: {error}", directory.display()))
    };
    std::fs::create_dir_all(directory).map_err(io)?;
    let final_path = directory.join(name);
    let temporary = directory.join(format!(".{name}.partial"));
    {
        let file = std::fs::File::create(&temporary).map_err(io)?;
        let mut writer = csv::Writer::from_writer(file);
        let csv_error = |error: csv::Error| SyncError::Config(format!("CSV: {error}"));
        writer.write_record(header).map_err(csv_error)?;
        for row in rows {
            writer.write_record(row).map_err(csv_error)?;
        }
        let file = writer
            .into_inner()
            .map_err(|error| SyncError::Config(format!("CSV: {error}")))?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&temporary, &final_path).map_err(io)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(directory.join(RUN_LOG))
        .map_err(io)?;
    let line = json!({"at": now(), "file": name, "rows": rows.len()});
    writeln!(log, "{line}").map_err(io)?;
    Ok(final_path)
}
