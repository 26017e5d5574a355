//! The engine inside `muster serve`: one worker per target, each reading
//! the tenant's change feed from its own cursor (a feed consumer named
//! `target:<name>`) and delivering every change it finds.
//!
//! A worker takes up to [`BATCH`] change records at a time, coalesces them
//! per resource (rapid changes to one user become one delivery of its
//! latest state), delivers users before groups (so members exist at the
//! target) and moves its cursor past the batch only when every resource in
//! it was delivered or dead-lettered. Killed at any moment, it delivers the
//! batch again on restart; each delivery compares with what the target
//! holds, so nothing is applied twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use muster_core::Service;
use muster_scim::SchemaRegistry;
use muster_store::sync::TargetRecord;
use muster_store::{ChangeRecord, ResourceId, Store, TenantId};
use muster_targets::{CompiledTarget, TargetKind};
use tokio::task::JoinHandle;

use crate::csv_target::CsvDelivery;
use crate::deliver::{GenesysPlatform, Outcome, RemoteIds, ScimDelivery};
use crate::five9_target::Five9Target;
use crate::nice::{AgentIdSource, NiceConfig, NicePlatform, ProficiencyScale};
use crate::status::{Metrics, TargetStatus, WorkerState};
use crate::targets::{compile_stored, consumer_name};
use crate::{secrets::SecretKey, SyncError};

/// Most change records a worker takes at once.
pub const BATCH: u64 = 500;

/// How often an idle worker looks for new changes.
pub const POLL: Duration = Duration::from_millis(25);

/// How often the engine looks for targets added, changed or removed.
const SUPERVISE: Duration = Duration::from_millis(500);

/// How often a worker busy with a batch looks ahead in the feed for users
/// being offboarded (their deactivation must not wait for the batch).
const LOOK_AHEAD: Duration = Duration::from_millis(200);

/// How often a worker stores its state for other processes to show.
const REPORT: Duration = Duration::from_secs(2);

/// How long a worker's lease on its target lasts: a process that stops
/// (killed, partitioned) hands its targets to another replica within this.
pub const LEASE: Duration = Duration::from_secs(15);

/// How often the engine prunes change records every target has passed.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The default age past which change records every target has passed are
/// pruned.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Page size of a full push (each cursor page counts every match: large
/// pages keep a million-user walk linear; see `muster_store::each_page`).
const PAGE: u64 = 5_000;

/// How a target is delivered to.
pub(crate) enum Delivery {
    /// A SCIM service.
    Scim(Box<ScimDelivery>),
    /// CSV files.
    Csv(Box<CsvDelivery>),
    /// Five9's SOAP Admin Web Service.
    Five9(Box<Five9Target>),
}

/// The CXone admin-API stage of a `nice-cxone` target.
fn nice_platform(compiled: &CompiledTarget, key: &SecretKey) -> Result<NicePlatform, SyncError> {
    let Some(muster_targets::Auth::AccessKey {
        access_key_id,
        access_key_secret,
        ..
    }) = &compiled.document.auth
    else {
        return Err(SyncError::Config(
            "a nice-cxone target needs an access key".into(),
        ));
    };
    let scale = compiled
        .document
        .skill_scale
        .map_or_else(ProficiencyScale::default, |scale| ProficiencyScale {
            best: scale.best,
            worst: scale.worst,
        });
    NicePlatform::new(NiceConfig {
        api_root: compiled
            .api_root
            .as_ref()
            .map(|url| url.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default(),
        token_url: compiled
            .token_url
            .as_ref()
            .map(|url| url.as_str().to_owned())
            .unwrap_or_default(),
        access_key_id: access_key_id.clone(),
        access_key_secret: key.reveal(access_key_secret)?,
        proficiency: scale,
        agent_id: AgentIdSource::default(),
        rate_limit: Some(compiled.rate_limit),
    })
}

/// A worker's tenant and target.
type WorkerKey = (TenantId, String);

/// A running worker: the `updated` stamp of the document it runs, and its task.
type RunningWorker = (String, JoinHandle<()>);

/// A resource a batch touched, with the commit time of its oldest change.
type Touched = Vec<(ResourceId, String)>;

/// The sync engine of one process.
pub struct SyncEngine {
    /// Who this engine is when it holds target leases: unique per process.
    holder: Arc<str>,
    service: Arc<Service>,
    key: SecretKey,
    metrics: Arc<Metrics>,
    workers: tokio::sync::Mutex<HashMap<WorkerKey, RunningWorker>>,
    changed: tokio::sync::Notify,
    retention: Option<Duration>,
}

impl SyncEngine {
    /// An engine over `service`, opening target secrets with `key`.
    pub fn new(service: Arc<Service>, key: SecretKey) -> Arc<SyncEngine> {
        Arc::new(SyncEngine {
            holder: new_holder(),
            service,
            key,
            metrics: Arc::new(Metrics::default()),
            workers: tokio::sync::Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
            retention: Some(DEFAULT_RETENTION),
        })
    }

    /// An engine that prunes change records older than `retention` once
    /// every target of their tenant has passed them (`None`: keeps them).
    pub fn with_retention(
        service: Arc<Service>,
        key: SecretKey,
        retention: Option<Duration>,
    ) -> Arc<SyncEngine> {
        Arc::new(SyncEngine {
            holder: new_holder(),
            service,
            key,
            metrics: Arc::new(Metrics::default()),
            workers: tokio::sync::Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
            retention,
        })
    }

    /// The metrics of every target.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs the engine until the task is dropped: starts a worker for each
    /// target, restarts it when its document changes, stops it when the
    /// target is removed.
    pub async fn run(self: Arc<Self>) {
        let mut pruned = tokio::time::Instant::now();
        loop {
            if let Err(error) = self.supervise().await {
                tracing::warn!(%error, "sync engine: could not read the targets");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::warn!(%error, "sync engine: could not prune the change feed");
                }
            }
            // A target put through this process is picked up at once; one
            // put elsewhere (the CLI, another replica) within SUPERVISE.
            let _ = tokio::time::timeout(SUPERVISE, self.changed.notified()).await;
        }
    }

    /// Prunes, in each tenant with targets, the change records older than
    /// the retention that every target has passed (the store keeps any
    /// record a consumer still needs).
    pub async fn prune(&self) -> Result<u64, SyncError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let mut tenants: Vec<TenantId> = self
            .service
            .store()
            .all_targets()
            .await?
            .into_iter()
            .map(|(tenant, _)| tenant)
            .collect();
        tenants.dedup();
        let mut removed = 0;
        for tenant in tenants {
            let count = self
                .service
                .store()
                .prune_changes(&tenant, muster_store::Retention::OlderThan(retention))
                .await?;
            if count > 0 {
                tracing::info!(tenant = %tenant.0, removed = count, "change feed pruned");
            }
            removed += count;
        }
        Ok(removed)
    }

    /// Looks at the targets again now (after a target was put or removed).
    pub fn wake(&self) {
        self.changed.notify_one();
    }

    async fn supervise(&self) -> Result<(), SyncError> {
        let targets = self.service.store().all_targets().await?;
        let mut workers = self.workers.lock().await;
        let wanted: HashSet<(TenantId, String)> = targets
            .iter()
            .map(|(tenant, record)| (tenant.clone(), record.name.clone()))
            .collect();
        workers.retain(|key, (_, handle)| {
            let keep = wanted.contains(key) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for (tenant, record) in targets {
            let key = (tenant.clone(), record.name.clone());
            if let Some((updated, handle)) = workers.get(&key) {
                if *updated == record.updated {
                    continue;
                }
                handle.abort();
            }
            let updated = record.updated.clone();
            match self.worker(&tenant, &record).await {
                Ok(worker) => {
                    let handle = tokio::spawn(worker.run());
                    workers.insert(key, (updated, handle));
                }
                Err(error) => {
                    tracing::warn!(tenant = %tenant.0, target = %record.name, %error, "target not started");
                    // Remember the version, so the warning is not repeated every tick.
                    workers.insert(key, (updated, tokio::spawn(async {})));
                }
            }
        }
        Ok(())
    }

    async fn worker(&self, tenant: &TenantId, record: &TargetRecord) -> Result<Worker, SyncError> {
        let registry = Arc::clone(&self.service.view(tenant).await?.registry);
        let compiled = compile_stored(record, &registry)?;
        let skip_changes_from = compiled.document.skip_changes_from.clone();
        let status = Arc::new(TargetStatus::new(
            tenant.clone(),
            record.name.clone(),
            compiled.document.deletion_guard,
            Arc::clone(&self.metrics),
        ));
        let delivery = delivery(
            &self.service,
            tenant,
            compiled,
            &self.key,
            Arc::clone(&status),
            None,
        )?;
        Ok(Worker {
            lease: LeaseKeeper::start(
                self.service.store_arc(),
                tenant.clone(),
                record.name.clone(),
                Arc::clone(&self.holder),
            ),
            service: Arc::clone(&self.service),
            tenant: tenant.clone(),
            name: record.name.clone(),
            delivery,
            status,
            skip_changes_from,
        })
    }
}

/// The delivery of a compiled target.
pub(crate) fn delivery(
    service: &Arc<Service>,
    tenant: &TenantId,
    compiled: CompiledTarget,
    key: &SecretKey,
    status: Arc<TargetStatus>,
    max_attempts: Option<u32>,
) -> Result<Delivery, SyncError> {
    let store: Arc<dyn Store> = service.store_arc();
    Ok(match compiled.document.kind {
        TargetKind::Five9 => Delivery::Five9(Box::new(Five9Target::new(
            tenant.clone(),
            compiled,
            key,
            store,
            status,
            max_attempts,
        )?)),
        TargetKind::Scim | TargetKind::GenesysCloud | TargetKind::NiceCxone => {
            let genesys = match (compiled.document.kind, &compiled.api_root) {
                (TargetKind::GenesysCloud, Some(root)) => Some(GenesysPlatform::new(
                    root.as_str().trim_end_matches('/').to_owned(),
                    compiled.document.genesys.unwrap_or_default(),
                )),
                _ => None,
            };
            let nice = match compiled.document.kind {
                TargetKind::NiceCxone => Some(nice_platform(&compiled, key)?),
                _ => None,
            };
            Delivery::Scim(Box::new(ScimDelivery {
                tenant: tenant.clone(),
                name: compiled.document.name.clone(),
                client: crate::client::ScimClient::new(&compiled, key)?,
                target: compiled,
                store,
                status,
                dry_run: None,
                max_attempts,
                verify_remote: false,
                genesys,
                nice,
            }))
        }
        TargetKind::Csv => {
            Delivery::Csv(Box::new(CsvDelivery::new(tenant.clone(), compiled, store)))
        }
    })
}

/// A lease holder name unique to this process: its id and a random part
/// (process ids repeat across machines and restarts).
fn new_holder() -> Arc<str> {
    Arc::from(format!(
        "pid {} {}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ))
}

/// Keeps a target's lease for this process while it can: takes it when it
/// is free or expired and renews it every third of [`LEASE`], also while
/// a long delivery (a full push) runs. Dropped, it stops renewing and the
/// lease expires (or is taken again at once by this process's next worker,
/// which has the same holder name).
struct LeaseKeeper {
    held: Arc<std::sync::atomic::AtomicBool>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    fn start(store: Arc<dyn Store>, tenant: TenantId, name: String, holder: Arc<str>) -> Self {
        let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&held);
        let task = tokio::spawn(async move {
            loop {
                let now = match store.lease_target(&tenant, &name, &holder, LEASE).await {
                    Ok(now) => now,
                    Err(error) => {
                        tracing::warn!(tenant = %tenant.0, target = %name, %error, "target lease not renewed");
                        false
                    }
                };
                let was = flag.swap(now, std::sync::atomic::Ordering::AcqRel);
                if was != now {
                    let state = if now {
                        "taken: delivering"
                    } else {
                        "held elsewhere: standing by"
                    };
                    tracing::info!(tenant = %tenant.0, target = %name, "target lease {state}");
                }
                tokio::time::sleep(LEASE / 3).await;
            }
        });
        LeaseKeeper { held, task }
    }

    /// Whether this process holds the lease (as of the last renewal).
    fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One target's worker: it delivers only while it holds its target's lease
/// (one process of those sharing the database at a time).
pub(crate) struct Worker {
    lease: LeaseKeeper,
    service: Arc<Service>,
    tenant: TenantId,
    name: String,
    delivery: Delivery,
    status: Arc<TargetStatus>,
    /// The target document's `skipChangesFrom`: changes by these clients
    /// came from the target's own system and are never sent back.
    skip_changes_from: Vec<String>,
}

impl Worker {
    fn store(&self) -> &dyn Store {
        self.service.store()
    }

    async fn run(self) {
        let mut reported = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        loop {
            let step = self.step().await;
            let idle = match step {
                Ok(worked) => {
                    failures = 0;
                    !worked
                }
                Err(error) => {
                    failures += 1;
                    if !matches!(error, SyncError::Paused { .. }) {
                        tracing::warn!(tenant = %self.tenant.0, target = %self.name, %error, "sync step failed");
                    }
                    tokio::time::sleep(crate::retry::backoff(failures)).await;
                    false
                }
            };
            // A worker standing by reports nothing: the state shown is the
            // delivering one's.
            if reported.elapsed() >= REPORT && self.lease.held() {
                reported = tokio::time::Instant::now();
                self.report().await;
            }
            if idle {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    async fn report(&self) {
        let state = self.status.state();
        if let Ok(text) = serde_json::to_string(&state) {
            if let Err(error) = self
                .store()
                .set_target_state(&self.tenant, &self.name, &text)
                .await
            {
                tracing::debug!(%error, "worker state not stored");
            }
        }
    }

    /// Delivers one batch; `Ok(false)` when there was nothing to do (or
    /// another process holds the target's lease).
    async fn step(&self) -> Result<bool, SyncError> {
        if !self.lease.held() {
            return Ok(false);
        }
        let Some(record) = self.store().target(&self.tenant, &self.name).await? else {
            return Ok(false);
        };
        if record.paused.is_some() {
            return Ok(false);
        }
        let consumer = consumer_name(&self.name);
        let registry = Arc::clone(&self.service.view(&self.tenant).await?.registry);
        let Some(cursor) = self
            .store()
            .consumer_cursor(&self.tenant, &consumer)
            .await?
        else {
            let head = self.store().change_head(&self.tenant).await?;
            // Loop prevention holds for the first push too: what the
            // target's own system wrote last is not sent back to it.
            let returning =
                returning_resources(self.store(), &self.tenant, &self.skip_changes_from, head)
                    .await?;
            full_push(
                &self.service,
                &self.tenant,
                &self.delivery,
                &registry,
                &self.status,
                None,
                Some(head),
                &returning,
            )
            .await?;
            self.store()
                .register_consumer(&self.tenant, &consumer, head)
                .await?;
            return Ok(true);
        };
        let changes = self.store().changes(&self.tenant, cursor, BATCH).await?;
        let Some(last) = changes.last().map(|change| change.sequence) else {
            self.status.set_queue(0, cursor);
            return Ok(false);
        };
        self.status.confirmed.store(
            last <= record.guard_confirmed,
            std::sync::atomic::Ordering::Relaxed,
        );
        // Loop prevention: what the target's own system wrote into Muster
        // is not sent back to it; the cursor passes over it all the same.
        let changes = skip_returning(changes, &self.skip_changes_from, &self.status);
        deliver_changes(&self.delivery, &registry, &changes, &self.status).await?;
        self.store()
            .advance_consumer(&self.tenant, &consumer, last)
            .await?;
        let head = self.store().change_head(&self.tenant).await?;
        self.status.set_queue(head.saturating_sub(last), last);
        Ok(true)
    }
}

/// Offboarding committed after a point of the feed, delivered ahead of the
/// work in hand (a batch, a full push): looked for every [`LOOK_AHEAD`].
/// Delivering such a user again in its own turn sends nothing: the target
/// already holds its state.
struct LookAhead {
    scanned: u64,
    last: Instant,
    done: HashSet<ResourceId>,
}

impl LookAhead {
    fn new(after: u64) -> Self {
        LookAhead {
            scanned: after,
            last: Instant::now(),
            done: HashSet::new(),
        }
    }

    /// Whether a user was delivered ahead.
    fn delivered(&self, id: &ResourceId) -> bool {
        self.done.contains(id)
    }

    /// Delivers the users offboarded in the changes committed since the
    /// last look, when it is time to look.
    async fn deliver(
        &mut self,
        scim: &ScimDelivery,
        registry: &SchemaRegistry,
        remote_ids: &mut RemoteIds,
        status: &TargetStatus,
    ) -> Result<(), SyncError> {
        if self.last.elapsed() < LOOK_AHEAD {
            return Ok(());
        }
        self.last = Instant::now();
        loop {
            let ahead = scim
                .store
                .changes(&scim.tenant, self.scanned, BATCH)
                .await?;
            let Some(last) = ahead.last().map(|change| change.sequence) else {
                return Ok(());
            };
            for change in ahead
                .iter()
                .filter(|change| change.resource_type == "User" && removes_access(change))
            {
                if self.done.insert(change.resource_id.clone()) {
                    let outcome = scim
                        .sync_user(registry, &change.resource_id, remote_ids)
                        .await?;
                    count(status, &outcome, &change.at);
                }
            }
            self.scanned = last;
            if u64::try_from(ahead.len()).unwrap_or(u64::MAX) < BATCH {
                return Ok(());
            }
        }
    }
}

/// The resources a batch of change records touched, each once, users and
/// groups apart, with the commit time of the oldest change of each. Users
/// whose latest change in the batch removes their access (a delete, or
/// `active` false) come first: offboarding jumps the queue.
fn touched(changes: &[ChangeRecord]) -> (Touched, Touched) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    let mut offboarded = HashSet::new();
    for change in changes {
        let list = match change.resource_type.as_str() {
            "User" => &mut users,
            "Group" => &mut groups,
            _ => continue,
        };
        if change.resource_type == "User" {
            if removes_access(change) {
                offboarded.insert(change.resource_id.clone());
            } else if change.payload.resource().is_some() {
                offboarded.remove(&change.resource_id);
            }
        }
        if seen.insert((change.resource_type.clone(), change.resource_id.clone())) {
            list.push((change.resource_id.clone(), change.at.clone()));
        }
    }
    // A stable sort: the order of the others is kept.
    users.sort_by_key(|(id, _)| !offboarded.contains(id));
    (users, groups)
}

/// Whether a change takes a user's access away.
fn removes_access(change: &ChangeRecord) -> bool {
    matches!(change.payload, muster_store::ChangePayload::Deleted(_))
        || change
            .payload
            .resource()
            .and_then(|resource| resource.get("active"))
            == Some(&serde_json::Value::Bool(false))
}

/// The change records of a batch not made by a client of `skipped` (the
/// target's own system writing back: see
/// `TargetDocument::skip_changes_from`); each record passed over is counted
/// as `skipped-origin`.
fn skip_returning(
    changes: Vec<ChangeRecord>,
    skipped: &[String],
    status: &TargetStatus,
) -> Vec<ChangeRecord> {
    if skipped.is_empty() {
        return changes;
    }
    changes
        .into_iter()
        .filter(|change| {
            let returning = skipped.contains(&change.actor.client);
            if returning {
                status.count("skipped-origin");
                tracing::debug!(
                    tenant = %change.tenant.0,
                    client = %change.actor.client,
                    sequence = change.sequence,
                    "change not sent back to the target it came from"
                );
            }
            !returning
        })
        .collect()
}

/// The resources whose last change up to `head` was made by one of the
/// `skipped` clients (a target's `skipChangesFrom`): the state the target's
/// own system wrote, which its first full push must not send back. A
/// resource whose records were pruned is not among them (it is pushed).
async fn returning_resources(
    store: &dyn Store,
    tenant: &TenantId,
    skipped: &[String],
    head: u64,
) -> Result<HashSet<ResourceId>, SyncError> {
    let mut returning = HashSet::new();
    if skipped.is_empty() {
        return Ok(returning);
    }
    let mut cursor = 0;
    while cursor < head {
        let changes = store.changes(tenant, cursor, BATCH).await?;
        let Some(last) = changes.last().map(|change| change.sequence) else {
            break;
        };
        for change in changes.into_iter().filter(|change| change.sequence <= head) {
            if skipped.contains(&change.actor.client) {
                returning.insert(change.resource_id);
            } else {
                returning.remove(&change.resource_id);
            }
        }
        cursor = last;
    }
    Ok(returning)
}

/// Delivers what a batch of change records touched.
pub(crate) async fn deliver_changes(
    delivery: &Delivery,
    registry: &SchemaRegistry,
    changes: &[ChangeRecord],
    status: &TargetStatus,
) -> Result<(), SyncError> {
    let (users, groups) = touched(changes);
    match delivery {
        Delivery::Scim(scim) => {
            // Pending stages left by a batch that failed: it is being redone.
            scim.discard_platform().await;
            let mut remote_ids = RemoteIds::default();
            refresh_population(scim, status).await?;
            let mut groups = groups;
            let after = changes.last().map_or(0, |change| change.sequence);
            let mut ahead = LookAhead::new(after);
            for (id, at) in &users {
                ahead
                    .deliver(scim, registry, &mut remote_ids, status)
                    .await?;
                if ahead.delivered(id) {
                    continue;
                }
                let outcome = scim
                    .sync_user_in_batch(registry, id, &mut remote_ids)
                    .await?;
                if outcome == Outcome::Created {
                    // A user new at the target joins the groups Muster has it in.
                    for group in user_groups(scim.store.as_ref(), &scim.tenant, id).await? {
                        if !groups.iter().any(|(known, _)| *known == group) {
                            groups.push((group, at.clone()));
                        }
                    }
                }
                count(status, &outcome, at);
            }
            scim.flush_platform().await?;
            if scim.target.delivers_groups() {
                for (id, at) in &groups {
                    let outcome = scim.sync_group(registry, id, &mut remote_ids).await?;
                    count(status, &outcome, at);
                }
            }
        }
        Delivery::Csv(csv) => {
            let ids: Vec<ResourceId> = users.into_iter().map(|(id, _)| id).collect();
            csv.export_changes(registry, &ids).await?;
        }
        Delivery::Five9(five9) => {
            for (id, at) in &users {
                let outcome = five9.sync_user(registry, id).await?;
                count(status, &outcome, at);
            }
        }
    }
    Ok(())
}

async fn refresh_population(scim: &ScimDelivery, status: &TargetStatus) -> Result<(), SyncError> {
    if scim.target.document.deletion_guard.is_none() {
        return Ok(());
    }
    let held = scim
        .store
        .delivered_all(&scim.tenant, &scim.name, "User")
        .await?
        .iter()
        .filter(|object| !object.deprovisioned)
        .count();
    status.set_population(u64::try_from(held).unwrap_or(u64::MAX));
    Ok(())
}

async fn user_groups(
    store: &dyn Store,
    tenant: &TenantId,
    id: &ResourceId,
) -> Result<Vec<ResourceId>, SyncError> {
    let user = match store.get(tenant, "User", id, false).await {
        Ok(user) => user.resource,
        Err(muster_store::StoreError::NotFound(_)) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(user
        .get("groups")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|group| group.get("value").and_then(serde_json::Value::as_str))
        .map(|id| ResourceId(id.to_owned()))
        .collect())
}

fn count(status: &TargetStatus, outcome: &Outcome, at: &str) {
    status.count(outcome_label(outcome));
    if matches!(
        outcome,
        Outcome::Created | Outcome::Updated | Outcome::Deprovisioned
    ) {
        if let Ok(committed) =
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        {
            let waited = time::OffsetDateTime::now_utc() - committed;
            status.observe_latency(waited.as_seconds_f64().max(0.0));
        }
    }
}

/// Every resource of a type, page by page.
pub(crate) async fn each_resource(
    store: &dyn Store,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    resource_type: &str,
) -> Result<Vec<ResourceId>, SyncError> {
    let mut ids = Vec::new();
    muster_store::each_page(
        store,
        tenant,
        registry,
        resource_type,
        (PAGE, false),
        |page| {
            ids.extend(page.into_iter().map(|resource| resource.id));
            Ok::<_, SyncError>(())
        },
    )
    .await?;
    Ok(ids)
}

/// Delivers every user and group (a new target's first push, a reconcile,
/// a CSV full export), calling `progress` with (done, total). With `after`
/// (the feed's head when the push began), offboarding committed since is
/// delivered as it comes, not after the push. The resources in `returning`
/// are left out (see [`returning_resources`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn full_push(
    service: &Arc<Service>,
    tenant: &TenantId,
    delivery: &Delivery,
    registry: &SchemaRegistry,
    status: &TargetStatus,
    progress: Option<&(dyn Fn(u64, u64) + Send + Sync)>,
    after: Option<u64>,
    returning: &HashSet<ResourceId>,
) -> Result<Vec<(ResourceId, Outcome)>, SyncError> {
    let store = service.store();
    let mut users = each_resource(store, tenant, registry, "User").await?;
    users.retain(|id| !returning.contains(id));
    let mut outcomes = Vec::new();
    match delivery {
        Delivery::Scim(scim) => {
            let mut groups = if scim.target.delivers_groups() {
                each_resource(store, tenant, registry, "Group").await?
            } else {
                Vec::new()
            };
            groups.retain(|id| !returning.contains(id));
            let total = u64::try_from(users.len() + groups.len()).unwrap_or(u64::MAX);
            scim.discard_platform().await;
            let mut remote_ids = RemoteIds::default();
            refresh_population(scim, status).await?;
            let mut done = 0u64;
            let mut ahead = after.map(LookAhead::new);
            for id in &users {
                if let Some(ahead) = &mut ahead {
                    ahead
                        .deliver(scim, registry, &mut remote_ids, status)
                        .await?;
                }
                let outcome = scim
                    .sync_user_in_batch(registry, id, &mut remote_ids)
                    .await?;
                status.count(outcome_label(&outcome));
                outcomes.push((id.clone(), outcome));
                done += 1;
                if let Some(progress) = progress {
                    progress(done, total);
                }
            }
            scim.flush_platform().await?;
            for id in &groups {
                let outcome = scim.sync_group(registry, id, &mut remote_ids).await?;
                status.count(outcome_label(&outcome));
                outcomes.push((id.clone(), outcome));
                done += 1;
                if let Some(progress) = progress {
                    progress(done, total);
                }
            }
        }
        Delivery::Five9(five9) => {
            let total = u64::try_from(users.len()).unwrap_or(u64::MAX);
            for (done, id) in users.iter().enumerate() {
                let outcome = five9.sync_user(registry, id).await?;
                status.count(outcome_label(&outcome));
                outcomes.push((id.clone(), outcome));
                if let Some(progress) = progress {
                    progress(u64::try_from(done + 1).unwrap_or(total), total);
                }
            }
        }
        Delivery::Csv(csv) => {
            csv.export_full(registry, &users).await?;
            if let Some(progress) = progress {
                let total = u64::try_from(users.len()).unwrap_or(u64::MAX);
                progress(total, total);
            }
        }
    }
    Ok(outcomes)
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Unchanged => "unchanged",
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Deprovisioned => "deprovisioned",
        Outcome::Skipped => "skipped",
        Outcome::DeadLettered(_) => "dead_letter",
    }
}

/// The stored state of a worker, as `muster sync status` shows it.
pub fn stored_state(record: &TargetRecord) -> WorkerState {
    serde_json::from_str(&record.state).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use muster_store::{Actor, ChangeKind, ChangePayload};
    use serde_json::json;

    use super::*;

    fn change(sequence: u64, id: &str, payload: ChangePayload) -> ChangeRecord {
        ChangeRecord {
            sequence,
            tenant: TenantId::default_tenant(),
            kind: ChangeKind::Update,
            resource_type: "User".into(),
            resource_id: ResourceId(id.into()),
            version: 1,
            actor: Actor {
                client: "entra".into(),
                request_id: String::new(),
            },
            at: "2026-12-04T00:00:00Z".into(),
            payload,
        }
    }

    fn resource(active: bool) -> ChangePayload {
        ChangePayload::Resource {
            resource: json!({"active": active}),
            members: None,
            removed: None,
            rule_set: None,
        }
    }

    #[test]
    fn offboarding_jumps_the_queue_and_each_user_comes_once() {
        let changes = vec![
            change(1, "a", resource(true)),
            change(2, "b", resource(true)),
            change(3, "c", resource(false)),
            change(4, "a", resource(true)),
            change(5, "d", resource(false)),
            change(6, "d", resource(true)),
        ];
        let (users, groups) = touched(&changes);
        let order: Vec<&str> = users.iter().map(|(id, _)| id.0.as_str()).collect();
        assert_eq!(
            order,
            ["c", "a", "b", "d"],
            "c is deactivated; d was reactivated"
        );
        assert!(groups.is_empty());
    }
}
