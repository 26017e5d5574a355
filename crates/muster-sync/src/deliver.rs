//! Delivering one Muster resource to a SCIM target: compare what the
//! mappings give with what the target holds, and send only the
//! difference. A resource is never created twice: before a create Muster
//! looks the resource up by `externalId`, then by `userName` (or
//! `displayName`), and a `409` means "match and update". What the target
//! holds is recorded after every acknowledged request, so a delivery cut
//! short (a crash, a kill) is finished by the next one without the target
//! seeing anything twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use muster_scim::SchemaRegistry;
use muster_store::sync::{DeliveredObject, NewDeadLetter};
use muster_store::{ResourceId, Store, StoreError, TenantId};
use muster_targets::plan::{
    after_delivery, create_body, member_operations, patch_body, patch_operations, quote, read_back,
    GROUP_SCHEMA, USER_SCHEMA,
};
use muster_targets::{map_resource, CompiledTarget, Deletion, GenesysSettings, JsonPath, Mapped};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::client::{Exchange, ScimClient};
use crate::genesys::{self, BatchedChanges, Directory, Entitlements};
use crate::retry::{backoff, Verdict};
use crate::status::TargetStatus;
use crate::SyncError;

/// The enterprise extension's URN.
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What delivering one resource did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target already held it: nothing sent.
    Unchanged,
    /// Created at the target (or matched and updated).
    Created,
    /// Updated at the target.
    Updated,
    /// Deactivated or deleted at the target.
    Deprovisioned,
    /// Neither in scope nor ever delivered: nothing to do.
    Skipped,
    /// Given up: kept as a dead letter with this reason.
    DeadLettered(String),
}

impl Outcome {
    /// The outcome once a platform stage changed something at the target.
    fn changed(self) -> Outcome {
        if self == Outcome::Unchanged {
            Outcome::Updated
        } else {
            self
        }
    }
}

/// One SCIM target, ready to deliver.
pub struct ScimDelivery {
    /// The tenant.
    pub tenant: TenantId,
    /// The target's name.
    pub name: String,
    /// The compiled document.
    pub target: CompiledTarget,
    /// Its client.
    pub client: ScimClient,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Status and counters.
    pub status: Arc<TargetStatus>,
    /// When set, writes are not sent but collected here (a dry run); reads
    /// (lookups) are sent.
    pub dry_run: Option<Mutex<Vec<Value>>>,
    /// Most attempts of a retryable request (`None`: until it succeeds, the
    /// worker's way; the CLI's provision on demand gives up).
    pub max_attempts: Option<u32>,
    /// Whether to read what the target holds instead of trusting what
    /// Muster last sent (a reconcile: finds drift made at the target).
    pub verify_remote: bool,
    /// For a Genesys Cloud target, its Platform API (entitlements).
    pub genesys: Option<GenesysPlatform>,
    /// For a NICE CXone target, its admin API (agent skills).
    pub nice: Option<crate::nice::NicePlatform>,
}

/// A Genesys Cloud target's Platform API.
pub struct GenesysPlatform {
    /// The API host's root, e.g. `https://api.mypurecloud.ie`.
    pub api_root: String,
    /// Names looked up there.
    pub directory: Directory,
    /// How the request budget is spent.
    pub settings: GenesysSettings,
    /// Users whose management-unit move and license changes wait for the
    /// batch's [`ScimDelivery::flush_platform`].
    pending: Mutex<Vec<PendingStage>>,
}

impl GenesysPlatform {
    /// The Platform API at `api_root`, with `settings`.
    pub fn new(api_root: String, settings: GenesysSettings) -> GenesysPlatform {
        GenesysPlatform {
            api_root,
            directory: Directory::default(),
            settings,
            pending: Mutex::new(Vec::new()),
        }
    }
}

/// A user whose platform stage waits for its batch's management-unit and
/// license requests; recorded as delivered only once they are answered.
struct PendingStage {
    id: ResourceId,
    known: DeliveredObject,
    before: Option<Entitlements>,
    wanted: Entitlements,
    missing: Vec<genesys::NotDelivered>,
    changes: BatchedChanges,
}

/// The keys of a delivered user's record that its platform stage writes;
/// an attribute update keeps them.
const PLATFORM_KEYS: [&str; 4] = ["entitlements", "notDelivered", "niceSkills", "niceWanted"];

/// The key of a create's record listing the (role id, division id) grants
/// its SCIM `roles` gave.
const SCIM_GRANTS: &str = "genesysScimGrants";

/// `after`, keeping what the platform stage recorded in `before`.
fn keep_platform_state(
    mut after: serde_json::Map<String, Value>,
    before: Option<&serde_json::Map<String, Value>>,
) -> serde_json::Map<String, Value> {
    for key in PLATFORM_KEYS {
        if let Some(value) = before.and_then(|before| before.get(key)) {
            after.insert(key.to_owned(), value.clone());
        }
    }
    after
}

/// The target's ids of what a batch delivered, so group members resolve
/// without one store read per member.
#[derive(Default)]
pub struct RemoteIds {
    loaded: bool,
    ids: HashMap<(String, String), String>,
}

impl RemoteIds {
    fn note(&mut self, resource_type: &str, id: &ResourceId, remote: Option<&str>) {
        let key = (resource_type.to_owned(), id.0.clone());
        match remote {
            Some(remote) => {
                self.ids.insert(key, remote.to_owned());
            }
            None => {
                self.ids.remove(&key);
            }
        }
    }
}

impl ScimDelivery {
    fn is_dry_run(&self) -> bool {
        self.dry_run.is_some()
    }

    /// Sends a request to `path` under the SCIM base URL, retrying what
    /// retrying can fix.
    async fn exchange(&self, method: Method, path: &str, body: Option<Value>) -> Exchange {
        let url = format!("{}{path}", self.client.base());
        self.exchange_url(method, url, body).await
    }

    /// Sends a request to an absolute URL of the target, retrying what
    /// retrying can fix; in a dry run, a write is collected, not sent.
    pub(crate) async fn exchange_url(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Exchange {
        self.exchange_if_match(method, url, body, None).await
    }

    /// PATCHes a user at the target. A `400 invalidVers` (the target holds
    /// another version than the one the write was checked against: a
    /// concurrent change there) is answered by re-reading the user and
    /// sending the PATCH again once, with `If-Match` its current version.
    async fn patch_user(&self, remote: &str, operations: Vec<Value>) -> Exchange {
        let url = format!("{}/Users/{}", self.client.base(), encode(remote));
        let body = patch_body(operations);
        let exchange = self
            .exchange_url(Method::PATCH, url.clone(), Some(body.clone()))
            .await;
        if exchange.status != Some(StatusCode::BAD_REQUEST)
            || exchange.answer.get("scimType").and_then(Value::as_str) != Some("invalidVers")
        {
            return exchange;
        }
        let current = self.exchange_url(Method::GET, url.clone(), None).await;
        let version = current
            .answer
            .pointer("/meta/version")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match version {
            Some(version) if current.succeeded() => {
                self.exchange_if_match(Method::PATCH, url, Some(body), Some(&version))
                    .await
            }
            _ => exchange,
        }
    }

    /// [`ScimDelivery::exchange_url`], with `If-Match` when given.
    async fn exchange_if_match(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Exchange {
        let write = method != Method::GET;
        if write {
            if let Some(collected) = &self.dry_run {
                let request = json!({"method": method.as_str(), "url": url, "body": body});
                collected.lock().await.push(request);
                let mut answer = body.clone().unwrap_or(Value::Null);
                if let Some(fields) = answer.as_object_mut() {
                    fields.insert("id".into(), json!("(dry run)"));
                }
                return Exchange {
                    method,
                    url,
                    body,
                    status: Some(StatusCode::OK),
                    answer,
                    retry_after: None,
                    error: None,
                };
            }
        }
        let mut attempt: u32 = 0;
        loop {
            let started = std::time::Instant::now();
            let exchange = self
                .client
                .call_url(method.clone(), url.clone(), body.clone(), if_match)
                .await;
            self.status.observe(&exchange, started.elapsed());
            attempt += 1;
            let verdict = Verdict::of(&exchange);
            let wait = match verdict {
                Verdict::Final => return exchange,
                Verdict::Retry { after } => after.unwrap_or_else(|| backoff(attempt)),
                Verdict::RetrySome => {
                    if attempt >= crate::retry::SERVER_ERROR_ATTEMPTS {
                        return exchange;
                    }
                    backoff(attempt)
                }
            };
            if self.max_attempts.is_some_and(|most| attempt >= most) {
                return exchange;
            }
            self.status.note_retry(&exchange, wait);
            tokio::time::sleep(wait.min(Duration::from_secs(300))).await;
        }
    }

    async fn dead_letter(
        &self,
        resource_type: &str,
        id: &ResourceId,
        exchange: &Exchange,
        reason: String,
        known: Option<DeliveredObject>,
    ) -> Result<Outcome, SyncError> {
        self.status.note_dead_letter(&reason);
        if self.is_dry_run() {
            return Ok(Outcome::DeadLettered(reason));
        }
        self.store
            .add_dead_letter(
                &self.tenant,
                &self.name,
                NewDeadLetter {
                    resource_type: resource_type.to_owned(),
                    resource_id: id.clone(),
                    request: exchange.request_json(),
                    response: exchange.response_json(),
                    reason: reason.clone(),
                },
            )
            .await?;
        if let Some(mut known) = known {
            known.status = exchange.status.map(|status| status.as_u16());
            known.answer = Some(exchange.summary());
            self.store
                .record_delivery(&self.tenant, &self.name, known)
                .await?;
        }
        Ok(Outcome::DeadLettered(reason))
    }

    async fn record(
        &self,
        object: DeliveredObject,
        remote_ids: &mut RemoteIds,
    ) -> Result<(), SyncError> {
        let remote = if object.deprovisioned {
            None
        } else {
            object.remote_id.as_deref()
        };
        remote_ids.note(&object.resource_type, &object.resource_id, remote);
        if self.is_dry_run() {
            return Ok(());
        }
        Ok(self
            .store
            .record_delivery(&self.tenant, &self.name, object)
            .await?)
    }

    /// The target's copy of a delivered resource (`None`: the target no
    /// longer has it).
    async fn read_remote(
        &self,
        endpoint: &str,
        known: &DeliveredObject,
    ) -> Result<Option<Value>, Exchange> {
        let remote = known.remote_id.as_deref().unwrap_or_default();
        let exchange = self
            .exchange(
                Method::GET,
                &format!("/{endpoint}/{}", encode(remote)),
                None,
            )
            .await;
        if exchange.status == Some(StatusCode::NOT_FOUND) {
            return Ok(None);
        }
        if !exchange.succeeded() {
            return Err(exchange);
        }
        Ok(Some(exchange.answer))
    }

    /// Looks a resource up at the target by each `(attribute, value)` in
    /// turn; the first single match wins.
    async fn lookup(
        &self,
        endpoint: &str,
        keys: &[(&str, Option<&str>)],
    ) -> Result<Option<Value>, Exchange> {
        for (attribute, value) in keys {
            let Some(value) = value else { continue };
            let filter = format!("{attribute} eq {}", quote(value));
            let path = format!("{endpoint}?filter={}", encode(&filter));
            let exchange = self.exchange(Method::GET, &path, None).await;
            if !exchange.succeeded() {
                return Err(exchange);
            }
            let found = exchange
                .answer
                .get("Resources")
                .and_then(Value::as_array)
                .and_then(|resources| resources.first())
                .cloned();
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Brings the target in line with one User, platform stage included.
    pub async fn sync_user(
        &self,
        registry: &SchemaRegistry,
        id: &ResourceId,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        let outcome = self.sync_user_in_batch(registry, id, remote_ids).await?;
        let failed = self.flush_platform().await?;
        Ok(match failed.into_iter().find(|(failed, _)| failed == id) {
            Some((_, reason)) => Outcome::DeadLettered(reason),
            None => outcome,
        })
    }

    /// Brings the target in line with one User, but may leave requests
    /// that take many users (Genesys management-unit moves and license
    /// assignments) for [`ScimDelivery::flush_platform`], which the caller
    /// must call once the batch is through.
    pub async fn sync_user_in_batch(
        &self,
        registry: &SchemaRegistry,
        id: &ResourceId,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        if let Some(platform) = &self.genesys {
            // A user is pending at most once: its record must be written
            // before it is read again.
            if platform
                .pending
                .lock()
                .await
                .iter()
                .any(|stage| stage.id == *id)
            {
                self.flush_platform().await?;
            }
        }
        let current = match self.store.get(&self.tenant, "User", id, false).await {
            Ok(stored) => Some(stored.resource),
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let known = self
            .store
            .delivered(&self.tenant, &self.name, "User", id)
            .await?;
        let user = current.filter(|user| self.target.user_in_scope(user, registry));
        let Some(user) = user else {
            return self.deprovision_user(id, known, remote_ids).await;
        };
        let outcome = self
            .sync_user_attributes(id, &user, known, remote_ids)
            .await?;
        if matches!(outcome, Outcome::DeadLettered(_)) {
            return Ok(outcome);
        }
        match (&self.genesys, &self.nice) {
            (Some(platform), _) => self.deliver_platform(platform, id, &user, outcome).await,
            (None, Some(nice)) => self.deliver_nice_skills(nice, id, &user, outcome).await,
            (None, None) => Ok(outcome),
        }
    }

    /// Records what a platform stage delivered (under `delivered`'s keys
    /// of the user's record) and what it could not (`notDelivered`, and the
    /// answer explain shows).
    async fn record_platform_stage<const N: usize>(
        &self,
        mut known: DeliveredObject,
        delivered: [(&str, Value); N],
        missing: &[genesys::NotDelivered],
        outcome: Outcome,
    ) -> Result<Outcome, SyncError> {
        if let Some(sent) = known.sent.as_object_mut() {
            for (key, value) in delivered {
                sent.insert(key.to_owned(), value);
            }
            sent.insert("notDelivered".into(), json!(missing));
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|item| format!("{}: {}", item.what, item.reason))
                .collect();
            known.answer = Some(format!("not delivered: {}", list.join("; ")));
        }
        known.delivered = now();
        if !self.is_dry_run() {
            self.store
                .record_delivery(&self.tenant, &self.name, known)
                .await?;
        }
        Ok(outcome.changed())
    }

    /// Sets a NICE CXone agent's skills from the user's entitlements (its
    /// SCIM cannot carry them), when they changed since the last delivery.
    async fn deliver_nice_skills(
        &self,
        nice: &crate::nice::NicePlatform,
        id: &ResourceId,
        user: &Value,
        outcome: Outcome,
    ) -> Result<Outcome, SyncError> {
        let Some(known) = self
            .store
            .delivered(&self.tenant, &self.name, "User", id)
            .await?
            .filter(|known| known.remote_id.is_some())
        else {
            return Ok(outcome);
        };
        let wanted = user
            .pointer(&format!("/{}/skills", muster_rules::CONTACT_CENTER_URN))
            .cloned()
            .unwrap_or(Value::Null);
        let before = known.sent.get("niceSkills").cloned();
        if before.is_some() && known.sent.get("niceWanted") == Some(&wanted) && !self.verify_remote
        {
            return Ok(outcome);
        }
        let remote = known.remote_id.clone().unwrap_or_default();
        let exchange = self
            .exchange(Method::GET, &format!("/Users/{}", encode(&remote)), None)
            .await;
        let result = if exchange.succeeded() {
            nice.deliver_skills(self.client.http(), &exchange.answer, user, before.as_ref())
                .await
        } else {
            Err(format!("reading the CXone user: {}", exchange.summary()))
        };
        match result {
            Ok((state, missing)) => {
                let delivered = [("niceSkills", state), ("niceWanted", wanted)];
                self.record_platform_stage(known, delivered, &missing, outcome)
                    .await
            }
            Err(reason) => {
                let exchange = Exchange {
                    method: Method::PUT,
                    url: format!("(CXone admin API) agent skills of {remote}"),
                    body: Some(json!({"skills": wanted})),
                    status: None,
                    answer: Value::Null,
                    retry_after: None,
                    error: Some(reason.clone()),
                };
                self.dead_letter("User", id, &exchange, reason, Some(known))
                    .await
            }
        }
    }

    /// Delivers what Genesys Cloud's SCIM cannot carry (entitlements) for a
    /// user whose attributes were just delivered: role grants at once; the
    /// management-unit move and license changes join the batch's pending
    /// requests.
    async fn deliver_platform(
        &self,
        platform: &GenesysPlatform,
        id: &ResourceId,
        user: &Value,
        outcome: Outcome,
    ) -> Result<Outcome, SyncError> {
        let api_root = platform.api_root.as_str();
        let directory = &platform.directory;
        let Some(known) = self
            .store
            .delivered(&self.tenant, &self.name, "User", id)
            .await?
            .filter(|known| known.remote_id.is_some())
        else {
            // A dry run records nothing: show the platform calls anyway.
            if self.is_dry_run() {
                let now = Entitlements::of_user(user);
                let user_id = "(new user)";
                let mut missing = Vec::new();
                let held = BTreeSet::new();
                let _ = genesys::deliver_grants(
                    self,
                    api_root,
                    directory,
                    user_id,
                    None,
                    &now,
                    Some(&held),
                )
                .await;
                if let Ok(changes) = genesys::batched_changes(
                    self,
                    api_root,
                    directory,
                    user_id,
                    None,
                    &now,
                    &mut missing,
                )
                .await
                {
                    let _ = genesys::send_batched(self, api_root, &[changes], 1).await;
                }
            }
            return Ok(outcome);
        };
        let wanted = Entitlements::of_user(user);
        let before: Option<Entitlements> = known
            .sent
            .get("entitlements")
            .and_then(|value| serde_json::from_value(value.clone()).ok());
        if before.as_ref() == Some(&wanted) && !self.verify_remote {
            return Ok(outcome);
        }
        let remote = known.remote_id.clone().unwrap_or_default();
        let before = if self.verify_remote { None } else { before };
        let held = self.held_grants(platform, &known, before.as_ref()).await;
        let stage = async {
            let mut missing = genesys::deliver_grants(
                self,
                api_root,
                directory,
                &remote,
                before.as_ref(),
                &wanted,
                held.as_ref(),
            )
            .await?;
            let changes = genesys::batched_changes(
                self,
                api_root,
                directory,
                &remote,
                before.as_ref(),
                &wanted,
                &mut missing,
            )
            .await?;
            // What the user's SCIM writes could not carry (unknown names).
            let (_, scim_missing) = genesys::scim_values(self, api_root, directory, &wanted)
                .await
                .unwrap_or_default();
            missing.extend(scim_missing);
            Ok::<_, String>((missing, changes))
        };
        let (missing, changes) = match stage.await {
            Ok(done) => done,
            Err(reason) => return self.platform_dead_letter(id, &wanted, reason).await,
        };
        if changes.is_empty() {
            let delivered = [("entitlements", json!(wanted))];
            return self
                .record_platform_stage(known, delivered, &missing, outcome)
                .await;
        }
        if self.is_dry_run() {
            let _ = genesys::send_batched(self, api_root, &[changes], 1).await;
            return Ok(outcome);
        }
        let full = {
            let mut pending = platform.pending.lock().await;
            pending.push(PendingStage {
                id: id.clone(),
                known,
                before,
                wanted,
                missing,
                changes,
            });
            pending.len() >= usize::from(platform.settings.batch_size)
        };
        if full {
            self.flush_platform().await?;
        }
        Ok(outcome.changed())
    }

    /// The (role id, division id) grants a user is known to hold without a
    /// read: for a user Muster just created, those its SCIM `roles` gave;
    /// otherwise those last delivered, while every name still resolves.
    /// `None`: read them.
    async fn held_grants(
        &self,
        platform: &GenesysPlatform,
        known: &DeliveredObject,
        before: Option<&Entitlements>,
    ) -> Option<BTreeSet<(String, String)>> {
        // A reconcile reads; so does a user with something not delivered
        // (the record cannot tell which of its grants Genesys holds).
        let undelivered = known
            .sent
            .get("notDelivered")
            .and_then(Value::as_array)
            .is_some_and(|missing| !missing.is_empty());
        if self.verify_remote || undelivered {
            return None;
        }
        // Only a create Muster just made leaves a 201 as the last answer
        // with no entitlements delivered yet (a match or an update answers 200).
        if before.is_none() && known.status == Some(201) {
            let given = known.sent.get(SCIM_GRANTS).cloned().unwrap_or(Value::Null);
            return Some(serde_json::from_value(given).unwrap_or_default());
        }
        let before = before?;
        let mut held = BTreeSet::new();
        for (role, division) in &before.grants {
            let directory = &platform.directory;
            let api_root = platform.api_root.as_str();
            let role = directory
                .id(self, api_root, genesys::ObjectKind::Role, role)
                .await
                .ok()??;
            let division = directory
                .id(self, api_root, genesys::ObjectKind::Division, division)
                .await
                .ok()??;
            held.insert((role, division));
        }
        Some(held)
    }

    /// Sends the pending management-unit moves and license changes of the
    /// batch's users, then records each user's platform stage. A user whose
    /// requests failed gets a dead letter, and its record the part that was
    /// delivered (its grants, sent at once) with the unit and licenses it
    /// had, so a retry sends those again and later changes diff from what
    /// Genesys holds. Returns the users dead-lettered, with the reason.
    pub async fn flush_platform(&self) -> Result<Vec<(ResourceId, String)>, SyncError> {
        let Some(platform) = &self.genesys else {
            return Ok(Vec::new());
        };
        let mut pending = platform.pending.lock().await;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let stages = std::mem::take(&mut *pending);
        let batch: Vec<BatchedChanges> = stages.iter().map(|stage| stage.changes.clone()).collect();
        let outcomes = genesys::send_batched(
            self,
            &platform.api_root,
            &batch,
            usize::from(platform.settings.batch_size),
        )
        .await;
        let mut failed = Vec::new();
        for (stage, outcome) in stages.into_iter().zip(outcomes) {
            let mut missing = stage.missing;
            match outcome {
                Ok(refused) => {
                    missing.extend(refused);
                    let delivered = [("entitlements", json!(stage.wanted))];
                    self.record_platform_stage(stage.known, delivered, &missing, Outcome::Updated)
                        .await?;
                }
                Err(reason) => {
                    let previous = stage.before.unwrap_or_default();
                    let held = Entitlements {
                        management_unit: previous.management_unit,
                        licenses: previous.licenses,
                        ..stage.wanted.clone()
                    };
                    let delivered = [("entitlements", json!(held))];
                    self.record_platform_stage(stage.known, delivered, &missing, Outcome::Updated)
                        .await?;
                    self.status.count("dead_letter");
                    self.platform_dead_letter(&stage.id, &stage.wanted, reason.clone())
                        .await?;
                    failed.push((stage.id, reason));
                }
            }
        }
        Ok(failed)
    }

    /// Forgets the pending stages of a batch that failed: the batch is
    /// delivered again from the cursor, and nothing of them was recorded.
    pub async fn discard_platform(&self) {
        if let Some(platform) = &self.genesys {
            platform.pending.lock().await.clear();
        }
    }

    /// Keeps a user's platform stage that failed as a dead letter.
    async fn platform_dead_letter(
        &self,
        id: &ResourceId,
        wanted: &Entitlements,
        reason: String,
    ) -> Result<Outcome, SyncError> {
        self.status.note_dead_letter(&reason);
        if !self.is_dry_run() {
            self.store
                .add_dead_letter(
                    &self.tenant,
                    &self.name,
                    NewDeadLetter {
                        resource_type: "User".into(),
                        resource_id: id.clone(),
                        request: json!({"entitlements": wanted}),
                        response: json!({"error": reason}),
                        reason: reason.clone(),
                    },
                )
                .await?;
        }
        Ok(Outcome::DeadLettered(reason))
    }

    /// For a Genesys Cloud target that gives roles over SCIM, the `roles`
    /// of a new user's create (its grants in the home division) and the
    /// grants they give; `None` otherwise or when there are none.
    async fn genesys_scim_roles(
        &self,
        user: &Value,
    ) -> Result<Option<(Value, BTreeSet<(String, String)>)>, String> {
        let Some(platform) = self.genesys.as_ref().filter(|p| p.settings.roles_over_scim) else {
            return Ok(None);
        };
        let wanted = Entitlements::of_user(user);
        let (roles, granted) =
            genesys::scim_roles(self, &platform.api_root, &platform.directory, &wanted).await?;
        Ok((!granted.is_empty()).then_some((roles, granted)))
    }

    /// Restores a soft-deleted Genesys Cloud user (a re-hire) and reads it
    /// back over SCIM.
    async fn restore_genesys_user(&self, user_name: &str) -> Result<Value, String> {
        let Some(platform) = &self.genesys else {
            return Err("not a Genesys Cloud target".into());
        };
        let remote = genesys::restore_deleted(self, &platform.api_root, user_name)
            .await?
            .ok_or_else(|| {
                format!("create conflicted on '{user_name}' and no user, active or deleted, has it")
            })?;
        let exchange = self
            .exchange(Method::GET, &format!("/Users/{}", encode(&remote)), None)
            .await;
        if !exchange.succeeded() {
            return Err(format!("reading the restored user: {}", exchange.summary()));
        }
        Ok(exchange.answer)
    }

    /// Brings the target's copy of a user's mapped attributes in line.
    async fn sync_user_attributes(
        &self,
        id: &ResourceId,
        user: &Value,
        known: Option<DeliveredObject>,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        let mut mapped = map_resource(&self.target.user_mappings, user);
        if self.genesys.is_some() {
            // Genesys wants the manager's Genesys id, which only Muster knows.
            let manager = JsonPath::from_parts(Some(ENTERPRISE), "manager", Some("value"));
            let remote = match manager.read(user).as_str() {
                Some(manager_id) => self
                    .store
                    .delivered(
                        &self.tenant,
                        &self.name,
                        "User",
                        &ResourceId(manager_id.to_owned()),
                    )
                    .await?
                    .and_then(|object| object.remote_id),
                None => None,
            };
            mapped.values.insert(
                manager.as_str().to_owned(),
                remote.map_or(Value::Null, Value::String),
            );
            if let Some(platform) = &self.genesys {
                let wanted = Entitlements::of_user(user);
                match genesys::scim_values(self, &platform.api_root, &platform.directory, &wanted)
                    .await
                {
                    Ok((values, missing)) => {
                        mapped.values.extend(values);
                        self.status.note_mapping_errors(
                            &missing
                                .iter()
                                .map(|item| (item.what.clone(), item.reason.clone()))
                                .collect::<Vec<_>>(),
                        );
                    }
                    Err(reason) => return Err(SyncError::Config(reason)),
                }
            }
        }
        self.status.note_mapping_errors(&mapped.errors);
        let known = known.filter(|known| known.remote_id.is_some());
        if let Some(known) = known {
            let sent = if self.verify_remote {
                match self.read_remote("Users", &known).await {
                    Ok(Some(remote)) => Some(read_back(&mapped, &remote)),
                    // Gone at the target: create it again.
                    Ok(None) => return self.create_user(id, user, &mapped, remote_ids).await,
                    Err(exchange) => {
                        let reason =
                            format!("reading the target's copy failed: {}", exchange.summary());
                        return self
                            .dead_letter("User", id, &exchange, reason, Some(known))
                            .await;
                    }
                }
            } else {
                known.sent.as_object().cloned()
            };
            let operations = patch_operations(&mapped, sent.as_ref());
            if operations.is_empty() && !known.deprovisioned {
                return Ok(Outcome::Unchanged);
            }
            let remote = known.remote_id.clone().unwrap_or_default();
            let exchange = self.patch_user(&remote, operations).await;
            if exchange.status == Some(StatusCode::NOT_FOUND) {
                // Deleted at the target behind Muster's back: create it again.
                return self.create_user(id, user, &mapped, remote_ids).await;
            }
            if !exchange.succeeded() {
                let reason = format!("update refused: {}", exchange.summary());
                return self
                    .dead_letter("User", id, &exchange, reason, Some(known))
                    .await;
            }
            let after = after_delivery(&mapped, sent.as_ref());
            let object = DeliveredObject {
                sent: Value::Object(keep_platform_state(after, known.sent.as_object())),
                delivered: now(),
                status: exchange.status.map(|status| status.as_u16()),
                answer: Some(exchange.summary()),
                deprovisioned: false,
                ..known
            };
            self.record(object, remote_ids).await?;
            return Ok(Outcome::Updated);
        }
        self.create_user(id, user, &mapped, remote_ids).await
    }

    async fn create_user(
        &self,
        id: &ResourceId,
        user: &Value,
        mapped: &Mapped,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        let keys = user_keys(mapped);
        let keys: Vec<(&str, Option<&str>)> = keys
            .iter()
            .map(|(attribute, value)| (*attribute, value.as_deref()))
            .collect();
        // Genesys Cloud's requests are its budget: create first, and look
        // up only when the create conflicts (the answer is the same).
        let lookup_first = self.genesys.is_none();
        let found = if lookup_first {
            match self.lookup("/Users", &keys).await {
                Ok(found) => found,
                Err(exchange) => {
                    let reason = format!("lookup failed: {}", exchange.summary());
                    return self.dead_letter("User", id, &exchange, reason, None).await;
                }
            }
        } else {
            None
        };
        let found = match found {
            Some(found) => Some(found),
            None => {
                let mut body = create_body(USER_SCHEMA, mapped);
                let scim_grants = match self.genesys_scim_roles(user).await {
                    Ok(Some((roles, granted))) => {
                        if let Some(fields) = body.as_object_mut() {
                            fields.insert("roles".into(), roles);
                        }
                        granted
                    }
                    Ok(None) => BTreeSet::new(),
                    Err(reason) => return Err(SyncError::Config(reason)),
                };
                let exchange = self.exchange(Method::POST, "/Users", Some(body)).await;
                if exchange.status == Some(StatusCode::CONFLICT) {
                    // It exists after all (made since the lookup): match it.
                    let user_name = keys
                        .iter()
                        .find(|(attribute, _)| *attribute == "userName")
                        .and_then(|(_, value)| *value);
                    match self.lookup("/Users", &keys).await {
                        Ok(Some(found)) => Some(found),
                        // Genesys Cloud: a soft-deleted user holds the userName
                        // and is invisible to SCIM; a re-hire restores it.
                        Ok(None) if self.genesys.is_some() && user_name.is_some() => match self
                            .restore_genesys_user(user_name.unwrap_or_default())
                            .await
                        {
                            Ok(found) => Some(found),
                            Err(reason) => {
                                return self.dead_letter("User", id, &exchange, reason, None).await;
                            }
                        },
                        Ok(None) | Err(_) => {
                            let reason = format!(
                                "create conflicted and no match was found: {}",
                                exchange.summary()
                            );
                            return self.dead_letter("User", id, &exchange, reason, None).await;
                        }
                    }
                } else if exchange.succeeded() {
                    let remote = exchange
                        .answer
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let mut sent = after_delivery(mapped, None);
                    if !scim_grants.is_empty() {
                        sent.insert(SCIM_GRANTS.into(), json!(scim_grants));
                    }
                    let object = DeliveredObject {
                        resource_type: "User".into(),
                        resource_id: id.clone(),
                        remote_id: remote,
                        sent: Value::Object(sent),
                        delivered: now(),
                        status: exchange.status.map(|status| status.as_u16()),
                        answer: Some(exchange.summary()),
                        deprovisioned: false,
                    };
                    self.record(object, remote_ids).await?;
                    return Ok(Outcome::Created);
                } else {
                    let reason = format!("create refused: {}", exchange.summary());
                    return self.dead_letter("User", id, &exchange, reason, None).await;
                }
            }
        };
        let Some(found) = found else {
            return Ok(Outcome::Skipped);
        };
        // Matched an existing account: send only what differs from it.
        let remote = found
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let holds = read_back(mapped, &found);
        let operations = patch_operations(mapped, Some(&holds));
        let mut object = DeliveredObject {
            resource_type: "User".into(),
            resource_id: id.clone(),
            remote_id: Some(remote.clone()),
            sent: Value::Object(holds.clone()),
            delivered: now(),
            status: Some(200),
            answer: Some("matched an existing account".into()),
            deprovisioned: false,
        };
        if !operations.is_empty() {
            let exchange = self.patch_user(&remote, operations).await;
            if !exchange.succeeded() {
                let reason = format!(
                    "update of the matched account refused: {}",
                    exchange.summary()
                );
                return self
                    .dead_letter("User", id, &exchange, reason, Some(object))
                    .await;
            }
            object.sent = Value::Object(after_delivery(mapped, Some(&holds)));
            object.status = exchange.status.map(|status| status.as_u16());
            object.answer = Some(format!(
                "matched an existing account; {}",
                exchange.summary()
            ));
        }
        self.record(object, remote_ids).await?;
        Ok(Outcome::Created)
    }

    async fn deprovision_user(
        &self,
        id: &ResourceId,
        known: Option<DeliveredObject>,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        let Some(mut known) = known.filter(|known| known.remote_id.is_some()) else {
            return Ok(Outcome::Skipped);
        };
        if known.deprovisioned && self.verify_remote {
            // A reconcile checks that the target still has it deactivated.
            match self.read_remote("Users", &known).await {
                Ok(Some(remote)) if remote.get("active") != Some(&Value::Bool(false)) => {
                    known.deprovisioned = false;
                }
                Ok(_) => return Ok(Outcome::Unchanged),
                Err(exchange) => {
                    let reason =
                        format!("reading the target's copy failed: {}", exchange.summary());
                    return self
                        .dead_letter("User", id, &exchange, reason, Some(known))
                        .await;
                }
            }
        }
        if known.deprovisioned {
            return Ok(Outcome::Skipped);
        }
        if !self.is_dry_run() {
            self.status
                .guard_removal(&self.store, &self.tenant, &self.name)
                .await?;
        }
        let remote = known.remote_id.clone().unwrap_or_default();
        let path = format!("/Users/{}", encode(&remote));
        match self.target.document.deletion {
            Deletion::Deactivate => {
                let operations = vec![json!({"op": "replace", "path": "active", "value": false})];
                let exchange = self.patch_user(&remote, operations).await;
                if exchange.status == Some(StatusCode::NOT_FOUND) {
                    self.forget("User", id, remote_ids).await?;
                    return Ok(Outcome::Deprovisioned);
                }
                if !exchange.succeeded() {
                    let reason = format!("deactivation refused: {}", exchange.summary());
                    return self
                        .dead_letter("User", id, &exchange, reason, Some(known))
                        .await;
                }
                let mut sent = known.sent.as_object().cloned().unwrap_or_default();
                sent.insert("active".into(), json!(false));
                let object = DeliveredObject {
                    sent: Value::Object(sent),
                    delivered: now(),
                    status: exchange.status.map(|status| status.as_u16()),
                    answer: Some(format!("deactivated; {}", exchange.summary())),
                    deprovisioned: true,
                    ..known
                };
                self.record(object, remote_ids).await?;
            }
            Deletion::Delete => {
                let exchange = self.exchange(Method::DELETE, &path, None).await;
                if !exchange.succeeded() && exchange.status != Some(StatusCode::NOT_FOUND) {
                    let reason = format!("deletion refused: {}", exchange.summary());
                    return self
                        .dead_letter("User", id, &exchange, reason, Some(known))
                        .await;
                }
                self.forget("User", id, remote_ids).await?;
            }
        }
        Ok(Outcome::Deprovisioned)
    }

    async fn forget(
        &self,
        resource_type: &str,
        id: &ResourceId,
        remote_ids: &mut RemoteIds,
    ) -> Result<(), SyncError> {
        remote_ids.note(resource_type, id, None);
        if self.is_dry_run() {
            return Ok(());
        }
        Ok(self
            .store
            .forget_delivery(&self.tenant, &self.name, resource_type, id)
            .await?)
    }

    async fn remote_id(
        &self,
        resource_type: &str,
        id: &str,
        remote_ids: &mut RemoteIds,
    ) -> Result<Option<String>, SyncError> {
        if !remote_ids.loaded {
            for kind in ["User", "Group"] {
                for object in self
                    .store
                    .delivered_all(&self.tenant, &self.name, kind)
                    .await?
                {
                    if let (Some(remote), false) = (&object.remote_id, object.deprovisioned) {
                        remote_ids
                            .ids
                            .entry((kind.to_owned(), object.resource_id.0.clone()))
                            .or_insert_with(|| remote.clone());
                    }
                }
            }
            remote_ids.loaded = true;
        }
        Ok(remote_ids
            .ids
            .get(&(resource_type.to_owned(), id.to_owned()))
            .cloned())
    }

    /// Brings the target in line with one Group: its mapped attributes and
    /// its members (those delivered to the target).
    pub async fn sync_group(
        &self,
        registry: &SchemaRegistry,
        id: &ResourceId,
        remote_ids: &mut RemoteIds,
    ) -> Result<Outcome, SyncError> {
        let current = match self.store.get(&self.tenant, "Group", id, true).await {
            Ok(stored) => Some(stored.resource),
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let known = self
            .store
            .delivered(&self.tenant, &self.name, "Group", id)
            .await?;
        let group = current.filter(|group| self.target.group_in_scope(group, registry));
        let Some(group) = group else {
            let Some(known) = known.filter(|known| known.remote_id.is_some()) else {
                return Ok(Outcome::Skipped);
            };
            if self.genesys.is_some() {
                // Genesys Cloud's groups are the platform's own: never deleted.
                self.forget("Group", id, remote_ids).await?;
                return Ok(Outcome::Deprovisioned);
            }
            let remote = known.remote_id.clone().unwrap_or_default();
            let exchange = self
                .exchange(
                    Method::DELETE,
                    &format!("/Groups/{}", encode(&remote)),
                    None,
                )
                .await;
            if !exchange.succeeded() && exchange.status != Some(StatusCode::NOT_FOUND) {
                let reason = format!("group deletion refused: {}", exchange.summary());
                return self
                    .dead_letter("Group", id, &exchange, reason, Some(known))
                    .await;
            }
            self.forget("Group", id, remote_ids).await?;
            return Ok(Outcome::Deprovisioned);
        };
        let mapped = map_resource(&self.target.group_mappings, &group);
        let mut members = BTreeSet::new();
        for member in group
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(value) = member.get("value").and_then(Value::as_str) else {
                continue;
            };
            let kind = match member.get("type").and_then(Value::as_str) {
                Some("Group") => "Group",
                _ => "User",
            };
            if let Some(remote) = self.remote_id(kind, value, remote_ids).await? {
                members.insert(remote);
            }
        }
        let mut known = known.filter(|known| known.remote_id.is_some());
        let mut remote_copy = None;
        if let (Some(delivered), true) = (&known, self.verify_remote) {
            match self.read_remote("Groups", delivered).await {
                Ok(Some(remote)) => remote_copy = Some(remote),
                // Gone at the target: create it again.
                Ok(None) => known = None,
                Err(exchange) => {
                    let reason =
                        format!("reading the target's copy failed: {}", exchange.summary());
                    return self
                        .dead_letter("Group", id, &exchange, reason, known)
                        .await;
                }
            }
        }
        let (remote, sent, sent_members) = match known {
            Some(known) if remote_copy.is_some() => {
                let remote = remote_copy.unwrap_or_default();
                (
                    known.remote_id.unwrap_or_default(),
                    read_back(&mapped, &remote),
                    member_set(remote.get("members")),
                )
            }
            Some(known) => {
                let sent = known.sent.as_object().cloned().unwrap_or_default();
                let sent_members = member_set(sent.get("members"));
                (known.remote_id.unwrap_or_default(), sent, sent_members)
            }
            None => {
                let display = mapped.values.get("displayName").and_then(Value::as_str);
                let external = mapped.values.get("externalId").and_then(Value::as_str);
                match self
                    .lookup(
                        "/Groups",
                        &[("externalId", external), ("displayName", display)],
                    )
                    .await
                {
                    Err(exchange) => {
                        let reason = format!("group lookup failed: {}", exchange.summary());
                        return self.dead_letter("Group", id, &exchange, reason, None).await;
                    }
                    Ok(Some(found)) => {
                        let remote = found
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let holds = read_back(&mapped, &found);
                        let remote_members = member_set(found.get("members"));
                        (remote, holds, remote_members)
                    }
                    Ok(None) if self.genesys.is_some() => {
                        // Genesys Cloud's SCIM cannot create groups: say so.
                        let name = display.unwrap_or_default();
                        let reason = format!(
                            "group '{name}' does not exist at Genesys Cloud, which cannot create \
                             groups over SCIM: create it there with this name"
                        );
                        let exchange = Exchange {
                            method: Method::GET,
                            url: format!("{}/Groups", self.client.base()),
                            body: None,
                            status: Some(StatusCode::NOT_FOUND),
                            answer: json!({"detail": reason}),
                            retry_after: None,
                            error: None,
                        };
                        return self.dead_letter("Group", id, &exchange, reason, None).await;
                    }
                    Ok(None) => {
                        let mut body = create_body(GROUP_SCHEMA, &mapped);
                        if let Some(fields) = body.as_object_mut() {
                            let list: Vec<Value> =
                                members.iter().map(|id| json!({"value": id})).collect();
                            if !list.is_empty() {
                                fields.insert("members".into(), Value::Array(list));
                            }
                        }
                        let exchange = self.exchange(Method::POST, "/Groups", Some(body)).await;
                        if !exchange.succeeded() {
                            let reason = format!("group create refused: {}", exchange.summary());
                            return self.dead_letter("Group", id, &exchange, reason, None).await;
                        }
                        let mut sent = after_delivery(&mapped, None);
                        sent.insert("members".into(), json!(members));
                        let object = DeliveredObject {
                            resource_type: "Group".into(),
                            resource_id: id.clone(),
                            remote_id: exchange
                                .answer
                                .get("id")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            sent: Value::Object(sent),
                            delivered: now(),
                            status: exchange.status.map(|status| status.as_u16()),
                            answer: Some(exchange.summary()),
                            deprovisioned: false,
                        };
                        self.record(object, remote_ids).await?;
                        return Ok(Outcome::Created);
                    }
                }
            }
        };
        let mut attributes = sent.clone();
        attributes.remove("members");
        let mut operations = patch_operations(&mapped, Some(&attributes));
        operations.extend(member_operations(&members, &sent_members));
        let mut object = DeliveredObject {
            resource_type: "Group".into(),
            resource_id: id.clone(),
            remote_id: Some(remote.clone()),
            sent: Value::Object(sent.clone()),
            delivered: now(),
            status: None,
            answer: None,
            deprovisioned: false,
        };
        if operations.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let exchange = self
            .exchange(
                Method::PATCH,
                &format!("/Groups/{}", encode(&remote)),
                Some(patch_body(operations)),
            )
            .await;
        if !exchange.succeeded() {
            let reason = format!("group update refused: {}", exchange.summary());
            return self
                .dead_letter("Group", id, &exchange, reason, Some(object))
                .await;
        }
        let mut now_sent = after_delivery(&mapped, Some(&attributes));
        now_sent.insert("members".into(), json!(members));
        object.sent = Value::Object(now_sent);
        object.status = exchange.status.map(|status| status.as_u16());
        object.answer = Some(exchange.summary());
        self.record(object, remote_ids).await?;
        Ok(Outcome::Updated)
    }
}

/// `externalId`, then `userName`, as the mappings give them.
fn user_keys(mapped: &Mapped) -> Vec<(&'static str, Option<String>)> {
    let text = |key: &str| {
        mapped
            .values
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    vec![
        ("externalId", text("externalId")),
        ("userName", text("userName")),
    ]
}

fn member_set(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|member| match member {
            Value::String(id) => Some(id.clone()),
            other => other
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect()
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The time now, RFC 3339.
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
