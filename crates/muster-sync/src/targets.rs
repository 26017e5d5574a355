//! The procedures behind `muster target ...`, `muster sync ...` and the
//! admin API's `/admin/v1/targets`: apply, show and remove target
//! documents (secrets sealed, never returned), status, dead letters,
//! provision on demand, reconcile, and the end-to-end explain of a user.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use muster_core::Service;
use muster_store::sync::{DeadLetter, TargetRecord};
use muster_store::{Actor, ResourceId, Store, StoreError, TenantId};
use muster_targets::{
    map_resource, CompiledTarget, DocumentError, Problem, Secret, TargetDocument, TargetKind,
};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::csv_target::{CsvDelivery, CsvRun};
use crate::deliver::{Outcome, RemoteIds, ScimDelivery};
use crate::engine::{delivery, each_resource, full_push, stored_state, Delivery};
use crate::secrets::SecretKey;
use crate::status::{Metrics, TargetStatus, WorkerState};
use crate::SyncError;

/// Attempts of a request made on an admin's behalf before giving up.
const ON_DEMAND_ATTEMPTS: u32 = 3;

/// The feed consumer name of a target.
pub fn consumer_name(target: &str) -> String {
    format!("target:{target}")
}

/// Reads and compiles a stored target.
pub fn compile_stored(
    record: &TargetRecord,
    registry: &muster_scim::SchemaRegistry,
) -> Result<CompiledTarget, SyncError> {
    let document = TargetDocument::from_json(&record.document)?;
    Ok(CompiledTarget::compile(document, registry)?)
}

/// A target as the API and the CLI show it: the document with its secrets
/// redacted, and its state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// The document, secrets redacted.
    pub document: TargetDocument,
    /// Why it is paused, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// When it was first put.
    pub created: String,
    /// When it was last put.
    pub updated: String,
    /// Who last put it.
    pub client: String,
    /// What its worker last reported.
    pub state: WorkerState,
    /// Changes committed and not yet delivered.
    pub queue_depth: u64,
    /// When the oldest of them was committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_pending: Option<String>,
    /// Dead letters waiting for an admin.
    pub dead_letters: u64,
}

/// Sync procedures of one process.
#[derive(Clone)]
pub struct Targets {
    service: Arc<Service>,
    key: SecretKey,
    export_root: PathBuf,
}

impl Targets {
    /// Procedures over `service`, opening secrets with `key`; CSV targets
    /// may only write under `export_root` (an admin token must not mean
    /// writing files anywhere the server can).
    pub fn new(service: Arc<Service>, key: SecretKey, export_root: PathBuf) -> Self {
        Targets {
            service,
            key,
            export_root,
        }
    }

    fn store(&self) -> &dyn Store {
        self.service.store()
    }

    async fn registry(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<muster_scim::SchemaRegistry>, SyncError> {
        Ok(Arc::clone(&self.service.view(tenant).await?.registry))
    }

    /// Checks a document without storing it.
    pub async fn check(
        &self,
        tenant: &TenantId,
        document: TargetDocument,
    ) -> Result<(), SyncError> {
        let registry = self.registry(tenant).await?;
        CompiledTarget::compile(document, &registry)?;
        Ok(())
    }

    /// Stores a target document (`expected_name`: the name in the URL,
    /// which must match the document's). A redacted secret keeps the one
    /// stored; values are sealed.
    pub async fn apply(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        expected_name: Option<&str>,
        mut document: TargetDocument,
    ) -> Result<TargetView, SyncError> {
        if let Some(expected) = expected_name {
            if expected != document.name {
                return Err(DocumentError::one(Problem::new(
                    "name",
                    format!(
                        "'{}' differs from the target named in the URL ('{expected}')",
                        document.name
                    ),
                ))
                .into());
            }
        }
        let existing = match self.store().target(tenant, &document.name).await? {
            Some(record) => Some(TargetDocument::from_json(&record.document)?),
            None => None,
        };
        // A sealed blob is the store's form, never a client's; and a kept
        // secret may only go where it went before (same kind, auth type,
        // region and origins), so a put cannot redirect a stored token.
        let mut refused: Vec<Problem> = document
            .secrets()
            .into_iter()
            .filter(|(_, secret)| matches!(secret, Secret::Sealed { .. }))
            .map(|(field, _)| {
                Problem::new(
                    field,
                    "a sealed secret is how Muster stores one, not a form to send: give the \
                     value, {\"env\": \"MUSTER_TARGET_...\"} or {\"redacted\": true}",
                )
            })
            .collect();
        if let Some(existing) = &existing {
            refused.extend(document.kept_secret_problems(existing));
        }
        if !refused.is_empty() {
            return Err(DocumentError { problems: refused }.into());
        }
        let mut missing = Vec::new();
        let stored: Vec<(&'static str, Secret)> = existing
            .as_ref()
            .map(|existing| {
                existing
                    .secrets()
                    .into_iter()
                    .map(|(field, secret)| (field, secret.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let fields: Vec<&'static str> = document.secrets().into_iter().map(|(f, _)| f).collect();
        let mut index = 0;
        document.map_secrets(|secret| {
            let field = fields.get(index).copied().unwrap_or("auth");
            index += 1;
            match secret {
                Secret::Redacted { .. } => match stored.iter().find(|(known, _)| *known == field) {
                    Some((_, kept)) => kept.clone(),
                    None => {
                        missing.push(Problem::new(
                            field,
                            "give the secret's value or {\"env\": \"VARIABLE\"}: no secret \
                                 is stored for this field to keep",
                        ));
                        secret.clone()
                    }
                },
                other => other.clone(),
            }
        });
        if !missing.is_empty() {
            return Err(DocumentError { problems: missing }.into());
        }
        let registry = self.registry(tenant).await?;
        let compiled = CompiledTarget::compile(document, &registry)?;
        if let Some(directory) = &compiled.document.directory {
            check_export_directory(&self.export_root, directory)
                .map_err(|problem| SyncError::Document(DocumentError::one(problem)))?;
        }
        let mut document = compiled.document;
        let mut sealing = Ok(());
        let key = self.key.clone();
        document.map_secrets(|secret| match key.seal(secret) {
            Ok(sealed) => sealed,
            Err(error) => {
                sealing = Err(error);
                Secret::Redacted { redacted: true }
            }
        });
        sealing?;
        let text = serde_json::to_string(&document)
            .map_err(|error| SyncError::Config(format!("target document: {error}")))?;
        let record = self
            .store()
            .put_target(tenant, actor, &document.name, &text)
            .await?;
        let operation = if existing.is_some() {
            "replace"
        } else {
            "create"
        };
        audited(
            self.store(),
            tenant,
            actor,
            operation,
            &document.name,
            json!({}),
        )
        .await?;
        self.view(tenant, record).await
    }

    async fn view(&self, tenant: &TenantId, record: TargetRecord) -> Result<TargetView, SyncError> {
        let document = TargetDocument::from_json(&record.document)?.redacted();
        let cursor = self
            .store()
            .consumer_cursor(tenant, &consumer_name(&record.name))
            .await?;
        let head = self.store().change_head(tenant).await?;
        let (queue_depth, oldest_pending) = match cursor {
            Some(cursor) => {
                let next = self.store().changes(tenant, cursor, 1).await?;
                (
                    head.saturating_sub(cursor),
                    next.first().map(|change| change.at.clone()),
                )
            }
            None => (head, None),
        };
        let dead_letters = self
            .store()
            .dead_letters(tenant, Some(&record.name))
            .await?;
        Ok(TargetView {
            document,
            state: stored_state(&record),
            paused: record.paused,
            created: record.created,
            updated: record.updated,
            client: record.client,
            queue_depth,
            oldest_pending,
            dead_letters: u64::try_from(dead_letters.len()).unwrap_or(u64::MAX),
        })
    }

    /// One target.
    pub async fn get(&self, tenant: &TenantId, name: &str) -> Result<TargetView, SyncError> {
        let record = self.record(tenant, name).await?;
        self.view(tenant, record).await
    }

    async fn record(&self, tenant: &TenantId, name: &str) -> Result<TargetRecord, SyncError> {
        self.store()
            .target(tenant, name)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("no target named '{name}'")))
    }

    /// Every target of the tenant.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<TargetView>, SyncError> {
        let mut views = Vec::new();
        for record in self.store().targets(tenant).await? {
            views.push(self.view(tenant, record).await?);
        }
        Ok(views)
    }

    /// Removes a target, its delivery state and its feed cursor.
    pub async fn remove(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
    ) -> Result<(), SyncError> {
        if !self.store().remove_target(tenant, name).await? {
            return Err(SyncError::NotFound(format!("no target named '{name}'")));
        }
        self.store()
            .remove_consumer(tenant, &consumer_name(name))
            .await?;
        audited(self.store(), tenant, actor, "remove", name, json!({})).await
    }

    /// Resumes a paused target, confirming the removals that paused it.
    pub async fn resume(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
    ) -> Result<(), SyncError> {
        self.record(tenant, name).await?;
        self.store().set_target_paused(tenant, name, None).await?;
        audited(self.store(), tenant, actor, "resume", name, json!({})).await
    }

    /// Pauses a target.
    pub async fn pause(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
        reason: &str,
    ) -> Result<(), SyncError> {
        self.record(tenant, name).await?;
        self.store()
            .set_target_paused(tenant, name, Some(reason))
            .await?;
        audited(
            self.store(),
            tenant,
            actor,
            "pause",
            name,
            json!({"reason": reason}),
        )
        .await
    }

    /// Dead letters, of one target or all.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        target: Option<&str>,
    ) -> Result<Vec<DeadLetter>, SyncError> {
        Ok(self.store().dead_letters(tenant, target).await?)
    }

    /// Discards a dead letter.
    pub async fn discard(&self, tenant: &TenantId, id: u64) -> Result<DeadLetter, SyncError> {
        self.store()
            .take_dead_letter(tenant, id)
            .await?
            .ok_or_else(|| SyncError::NotFound(format!("no dead letter {id}")))
    }

    /// Delivers a dead letter's resource again, now (its current state):
    /// the letter is removed; a new one is made if it fails again.
    pub async fn retry(&self, tenant: &TenantId, id: u64) -> Result<Delivered, SyncError> {
        let letter = self.discard(tenant, id).await?;
        self.deliver_one(
            tenant,
            &letter.target,
            &letter.resource_type,
            &letter.resource_id,
            false,
        )
        .await
    }

    async fn compiled(&self, tenant: &TenantId, name: &str) -> Result<CompiledTarget, SyncError> {
        let record = self.record(tenant, name).await?;
        let registry = self.registry(tenant).await?;
        compile_stored(&record, &registry)
    }

    fn status(&self, tenant: &TenantId, compiled: &CompiledTarget) -> Arc<TargetStatus> {
        Arc::new(TargetStatus::new(
            tenant.clone(),
            compiled.document.name.clone(),
            compiled.document.deletion_guard,
            Arc::new(Metrics::default()),
        ))
    }

    async fn scim_delivery(
        &self,
        tenant: &TenantId,
        name: &str,
        dry_run: bool,
    ) -> Result<(ScimDelivery, Arc<TargetStatus>), SyncError> {
        let compiled = self.compiled(tenant, name).await?;
        let status = self.status(tenant, &compiled);
        match delivery(
            &self.service,
            tenant,
            compiled,
            &self.key,
            Arc::clone(&status),
            Some(ON_DEMAND_ATTEMPTS),
        )? {
            Delivery::Scim(mut scim) => {
                if dry_run {
                    scim.dry_run = Some(Mutex::new(Vec::new()));
                }
                Ok((*scim, status))
            }
            Delivery::Csv(_) => Err(SyncError::Config(format!(
                "target '{name}' writes CSV files: use `muster sync export`"
            ))),
            Delivery::Five9(_) => Err(SyncError::Config(format!(
                "target '{name}' is Five9 (SOAP): a dry run is not available; provision without \
                 --dry-run, or reconcile"
            ))),
        }
    }

    /// Finds a user by `userName` (case-insensitively), or by id.
    pub async fn find_user(&self, tenant: &TenantId, user: &str) -> Result<ResourceId, SyncError> {
        let registry = self.registry(tenant).await?;
        let filter = muster_scim::Filter::parse(&format!(
            "userName eq {}",
            muster_targets::plan::quote(user)
        ))
        .map_err(|error| SyncError::Config(error.detail))?;
        let query = muster_store::ListQuery {
            resource_type: "User".into(),
            filter: Some(filter),
            sort_by: None,
            descending: false,
            page: muster_store::Page::Index {
                start_index: 1,
                count: 1,
            },
            include_members: false,
        };
        let page = self.store().list(tenant, &registry, &query).await?;
        if let Some(found) = page.resources.into_iter().next() {
            return Ok(found.id);
        }
        let id = ResourceId(user.to_owned());
        match self.store().get(tenant, "User", &id, false).await {
            Ok(_) => Ok(id),
            Err(StoreError::NotFound(_)) => Err(SyncError::NotFound(format!(
                "no user with userName or id '{user}'"
            ))),
            Err(error) => Err(error.into()),
        }
    }

    /// Provision on demand: delivers one resource to one target now; with
    /// `dry_run`, sends only the lookups and lists the writes it would send.
    pub async fn deliver_one(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
        dry_run: bool,
    ) -> Result<Delivered, SyncError> {
        let registry = self.registry(tenant).await?;
        let compiled = self.compiled(tenant, target).await?;
        if compiled.document.kind == TargetKind::Five9 && !dry_run {
            let status = self.status(tenant, &compiled);
            if let Delivery::Five9(five9) = delivery(
                &self.service,
                tenant,
                compiled,
                &self.key,
                status,
                Some(ON_DEMAND_ATTEMPTS),
            )? {
                let outcome = five9.sync_user(&registry, id).await?;
                return Ok(Delivered {
                    resource_id: id.0.clone(),
                    outcome: describe(&outcome),
                    requests: Vec::new(),
                });
            }
        }
        let (scim, _status) = self.scim_delivery(tenant, target, dry_run).await?;
        let mut remote_ids = RemoteIds::default();
        let outcome = match resource_type {
            "Group" => scim.sync_group(&registry, id, &mut remote_ids).await?,
            _ => scim.sync_user(&registry, id, &mut remote_ids).await?,
        };
        let requests = match scim.dry_run {
            Some(requests) => requests.into_inner(),
            None => Vec::new(),
        };
        Ok(Delivered {
            resource_id: id.0.clone(),
            outcome: describe(&outcome),
            requests,
        })
    }

    /// Compares the target with Muster and fixes drift: every user and
    /// group in scope delivered (created, updated, reactivated), every one
    /// the target holds from Muster but Muster no longer has in scope
    /// deprovisioned. With `dry_run` nothing is written; the report lists
    /// what would be sent.
    pub async fn reconcile(
        &self,
        tenant: &TenantId,
        target: &str,
        dry_run: bool,
        progress: Option<&(dyn Fn(u64, u64) + Send + Sync)>,
    ) -> Result<Reconciled, SyncError> {
        let compiled = self.compiled(tenant, target).await?;
        let registry = self.registry(tenant).await?;
        if compiled.document.kind == TargetKind::Csv {
            let users = each_resource(self.store(), tenant, &registry, "User").await?;
            let csv = CsvDelivery::new(tenant.clone(), compiled, self.service.store_arc());
            let run = csv.export_full(&registry, &users).await?;
            if let Some(progress) = progress {
                let total = u64::try_from(users.len()).unwrap_or(u64::MAX);
                progress(total, total);
            }
            return Ok(Reconciled {
                export: Some(run),
                ..Reconciled::default()
            });
        }
        if compiled.document.kind == TargetKind::Five9 {
            let status = self.status(tenant, &compiled);
            let delivery = delivery(
                &self.service,
                tenant,
                compiled,
                &self.key,
                Arc::clone(&status),
                None,
            )?;
            let outcomes = full_push(
                &self.service,
                tenant,
                &delivery,
                &registry,
                &status,
                progress,
                None,
                &HashSet::new(),
            )
            .await?;
            return Ok(summarise(outcomes, Vec::new()));
        }
        let (mut scim, status) = self.scim_delivery(tenant, target, dry_run).await?;
        scim.verify_remote = true;
        let delivery = Delivery::Scim(Box::new(scim));
        let mut outcomes = full_push(
            &self.service,
            tenant,
            &delivery,
            &registry,
            &status,
            progress,
            None,
            &HashSet::new(),
        )
        .await?;
        let Delivery::Scim(scim) = delivery else {
            return Ok(Reconciled::default());
        };
        // What the target holds from Muster of resources Muster no longer has.
        let mut remote_ids = RemoteIds::default();
        let users: std::collections::HashSet<ResourceId> =
            each_resource(self.store(), tenant, &registry, "User")
                .await?
                .into_iter()
                .collect();
        for object in self.store().delivered_all(tenant, target, "User").await? {
            if !users.contains(&object.resource_id) && !object.deprovisioned {
                let outcome = scim
                    .sync_user(&registry, &object.resource_id, &mut remote_ids)
                    .await?;
                outcomes.push((object.resource_id, outcome));
            }
        }
        let requests = match scim.dry_run {
            Some(requests) => requests.into_inner(),
            None => Vec::new(),
        };
        Ok(summarise(outcomes, requests))
    }
}

/// A reconcile's report from its outcomes.
fn summarise(outcomes: Vec<(ResourceId, Outcome)>, requests: Vec<Value>) -> Reconciled {
    let mut report = Reconciled {
        requests,
        ..Reconciled::default()
    };
    for (id, outcome) in outcomes {
        match &outcome {
            Outcome::Unchanged | Outcome::Skipped => report.unchanged += 1,
            Outcome::Created => report.created.push(id.0),
            Outcome::Updated => report.updated.push(id.0),
            Outcome::Deprovisioned => report.deprovisioned.push(id.0),
            Outcome::DeadLettered(reason) => {
                report.failed.push(json!({"id": id.0, "reason": reason}))
            }
        }
    }
    report
}

impl Targets {
    /// The end-to-end explain of one user at one target: for every target
    /// attribute, the expression, the source values (with the client whose
    /// write last changed each), the value mapped now, the value sent, when
    /// it was delivered and what the target answered.
    pub async fn explain(
        &self,
        tenant: &TenantId,
        target: &str,
        user: &ResourceId,
    ) -> Result<Explanation, SyncError> {
        let compiled = self.compiled(tenant, target).await?;
        let registry = self.registry(tenant).await?;
        let resource = self
            .store()
            .get(tenant, "User", user, false)
            .await?
            .resource;
        let delivered = self.store().delivered(tenant, target, "User", user).await?;
        let history = self
            .store()
            .resource_history(tenant, "User", user, HISTORY)
            .await?;
        let in_scope = compiled.user_in_scope(&resource, &registry);
        let mapped = map_resource(&compiled.user_mappings, &resource);
        let sent = delivered
            .as_ref()
            .and_then(|object| object.sent.as_object().cloned());
        let mut rows = Vec::new();
        for mapping in &compiled.user_mappings {
            let target_path = mapping.target.as_str();
            let sources = mapping
                .sources
                .iter()
                .map(|(name, path)| {
                    let value = path.read(&resource);
                    let set_by = last_setter(&history, path, &value);
                    json!({
                        "attribute": name,
                        "path": path.as_str(),
                        "value": value,
                        "setBy": set_by.as_ref().map(|(client, _)| client),
                        "setAt": set_by.as_ref().map(|(_, at)| at),
                    })
                })
                .collect();
            let error = mapped
                .errors
                .iter()
                .find(|(path, _)| path == target_path)
                .map(|(_, error)| error.clone());
            rows.push(ExplainRow {
                target: target_path.to_owned(),
                expression: mapping.text.clone(),
                sources,
                value: mapped.values.get(target_path).cloned(),
                error,
                sent: sent
                    .as_ref()
                    .and_then(|sent| sent.get(target_path).cloned()),
            });
        }
        let not_sent = not_sent(&compiled, &registry, &resource, sent.as_ref());
        Ok(Explanation {
            not_sent,
            target: target.to_owned(),
            user: user.0.clone(),
            user_name: resource.get("userName").cloned().unwrap_or(Value::Null),
            in_scope,
            remote_id: delivered
                .as_ref()
                .and_then(|object| object.remote_id.clone()),
            delivered: delivered.as_ref().map(|object| object.delivered.clone()),
            status: delivered.as_ref().and_then(|object| object.status),
            answer: delivered.as_ref().and_then(|object| object.answer.clone()),
            deprovisioned: delivered
                .as_ref()
                .is_some_and(|object| object.deprovisioned),
            attributes: rows,
        })
    }
}

/// Refuses a CSV directory outside `root` (after following symbolic links
/// of the part that exists); makes `root` when absent.
fn check_export_directory(root: &Path, directory: &Path) -> Result<(), Problem> {
    let outside = || {
        Problem::new(
            "directory",
            format!(
                "'{}' is outside the export root {}: CSV targets write only under it \
                 (muster serve --export-root)",
                directory.display(),
                root.display()
            ),
        )
    };
    std::fs::create_dir_all(root).map_err(|error| {
        Problem::new(
            "directory",
            format!("the export root {}: {error}", root.display()),
        )
    })?;
    let root = root.canonicalize().map_err(|_| outside())?;
    // The longest part of `directory` that exists, resolved; the rest must
    // be plain names.
    let mut existing = directory.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(name) = existing.file_name().map(std::ffi::OsStr::to_os_string) else {
            return Err(outside());
        };
        rest.push(name);
        if !existing.pop() {
            return Err(outside());
        }
    }
    let mut resolved = existing.canonicalize().map_err(|_| outside())?;
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    if resolved.starts_with(&root) {
        Ok(())
    } else {
        Err(outside())
    }
}

/// Paths no mapping sends, whatever the user holds there.
const NEVER_SENT: [&str; 5] = ["id", "meta", "schemas", "groups", "password"];

/// What a user holds that does not reach the target: attributes with a
/// value that no mapping reads, and (Genesys Cloud) entitlements the
/// platform did not take, each with the reason.
fn not_sent(
    compiled: &CompiledTarget,
    registry: &muster_scim::SchemaRegistry,
    resource: &Value,
    sent: Option<&serde_json::Map<String, Value>>,
) -> Vec<Value> {
    let mut rows = Vec::new();
    let Some(rt) = registry.resource_type("User") else {
        return rows;
    };
    let read: Vec<String> = compiled
        .user_mappings
        .iter()
        .flat_map(|mapping| {
            mapping
                .sources
                .iter()
                .map(|(_, path)| path.as_str().to_ascii_lowercase())
        })
        .collect();
    let covered = |path: &str| {
        read.iter().any(|source| {
            source == path
                || source.starts_with(&format!("{path}."))
                || path.starts_with(&format!("{source}."))
        })
    };
    let reason = match compiled.document.kind {
        TargetKind::GenesysCloud => {
            "not delivered: Genesys Cloud SCIM has no field for it (no mapping sends it)"
        }
        _ => "not delivered: no mapping sends it to this target",
    };
    for path in registry.attribute_paths(rt) {
        let lower = path.to_ascii_lowercase();
        let platform_stage = compiled.document.kind == TargetKind::GenesysCloud
            && lower.starts_with(&muster_rules_urn());
        let is_sub_attribute = path
            .rsplit(':')
            .next()
            .is_some_and(|name| name.contains('.'));
        if is_sub_attribute || NEVER_SENT.contains(&lower.as_str()) || platform_stage {
            continue;
        }
        let Ok(json_path) = muster_targets::JsonPath::parse(&path) else {
            continue;
        };
        let value = json_path.read(resource);
        if value.is_null() || covered(&lower) {
            continue;
        }
        rows.push(json!({"attribute": path, "value": value, "reason": reason}));
    }
    if let Some(missing) = sent
        .and_then(|sent| sent.get("notDelivered"))
        .and_then(Value::as_array)
    {
        for item in missing {
            rows.push(json!({
                "attribute": item.get("what"),
                "reason": format!("not delivered: {}", item.get("reason").and_then(Value::as_str).unwrap_or_default()),
            }));
        }
    }
    rows
}

/// The contact-center extension's URN, lower-cased: delivered by the
/// platform stage of a `genesys-cloud` target, not by mappings.
fn muster_rules_urn() -> String {
    muster_rules::CONTACT_CENTER_URN.to_ascii_lowercase()
}

/// How far back explain looks for who set a value.
const HISTORY: u64 = 200;

/// The client and time of the write that gave `path` its current value:
/// walking back from the newest change, the oldest change of the run that
/// already holds it.
fn last_setter(
    history: &[muster_store::sync::ResourceChange],
    path: &muster_targets::JsonPath,
    now: &Value,
) -> Option<(String, String)> {
    if now.is_null() {
        return None;
    }
    let mut setter = None;
    for change in history {
        let Some(after) = &change.after else { continue };
        if path.read(after) != *now {
            break;
        }
        setter = Some((change.client.clone(), change.at.clone()));
    }
    setter
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Unchanged => "unchanged: the target already holds it".into(),
        Outcome::Created => "created (or matched) at the target".into(),
        Outcome::Updated => "updated at the target".into(),
        Outcome::Deprovisioned => "deprovisioned at the target".into(),
        Outcome::Skipped => "not in the target's scope and never delivered".into(),
        Outcome::DeadLettered(reason) => format!("failed: {reason}"),
    }
}

/// What a provision on demand did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    /// The resource.
    pub resource_id: String,
    /// What happened (or would).
    pub outcome: String,
    /// In a dry run, the writes that would be sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Value>,
}

/// What a reconcile did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    /// Resources already in line.
    pub unchanged: u64,
    /// Created or matched.
    pub created: Vec<String>,
    /// Updated.
    pub updated: Vec<String>,
    /// Deactivated or deleted.
    pub deprovisioned: Vec<String>,
    /// Failed (dead letters).
    pub failed: Vec<Value>,
    /// In a dry run, the writes that would be sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Value>,
    /// For a CSV target, the file the full export wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<CsvRun>,
}

/// One target attribute in an explain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainRow {
    /// The attribute at the target.
    pub target: String,
    /// The expression.
    pub expression: String,
    /// Each source attribute: name, path, value, who set it and when.
    pub sources: Vec<Value>,
    /// The value the mapping gives now (`None`: skipped or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Why the mapping failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The value last sent to the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Value>,
}

/// The end-to-end explain of one user at one target.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The target.
    pub target: String,
    /// The user's id.
    pub user: String,
    /// The user's userName.
    pub user_name: Value,
    /// Whether the user is in the target's scope.
    pub in_scope: bool,
    /// The target's id for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// When the target last acknowledged a delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
    /// The target's last status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The target's last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Whether the user is deactivated or deleted at the target.
    pub deprovisioned: bool,
    /// Every target attribute.
    pub attributes: Vec<ExplainRow>,
    /// What the user holds that does not reach the target, and why:
    /// attributes no mapping reads, entitlements the platform refused.
    pub not_sent: Vec<Value>,
}

/// Records an admin action on a target in the tenant's audit trail (its
/// document is not recorded: it may name sealed secrets).
async fn audited(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    operation: &str,
    name: &str,
    detail: Value,
) -> Result<(), SyncError> {
    muster_core::audit::record_admin_action(
        store, tenant, actor, operation, "Target", name, detail,
    )
    .await?;
    Ok(())
}
