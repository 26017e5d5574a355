//! What the sync engine keeps: the tenant's downstream targets (their
//! documents, opaque to the store), what was delivered to each target for
//! each resource, and the deliveries no retry can fix (dead letters).
//!
//! Where a target's reader stands in the change feed is a feed consumer
//! (named `target:<name>`), kept with the feed itself.

use async_trait::async_trait;
use serde_json::Value;

use crate::{Actor, ResourceId, StoreError, TenantId};

/// A downstream target as stored: its document (JSON with its secrets
/// sealed; the store gives it no meaning) and whether it is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// The target's name, unique within the tenant.
    pub name: String,
    /// The target document as the sync engine serialised it.
    pub document: String,
    /// Why deliveries are paused (the deletion guard, an admin), or `None`
    /// when they run.
    pub paused: Option<String>,
    /// When it was first put, RFC 3339.
    pub created: String,
    /// When it was last put, RFC 3339.
    pub updated: String,
    /// The client that last put it.
    pub client: String,
    /// What the target's worker last reported (JSON: last success, last
    /// error, throttling), so every process can show it; empty before the
    /// first report.
    pub state: String,
    /// The change sequence through which an admin confirmed the removals
    /// that paused the target (set on resume): the deletion guard lets
    /// removals from changes up to it through.
    pub guard_confirmed: u64,
}

/// What a target holds of one Muster resource, as last delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredObject {
    /// `User` or `Group`.
    pub resource_type: String,
    /// The Muster resource.
    pub resource_id: ResourceId,
    /// The target's id for it, once known.
    pub remote_id: Option<String>,
    /// The target attributes and the values last sent (a JSON object keyed
    /// by target path; for a Group also `members`, the remote member ids).
    pub sent: Value,
    /// When the target last acknowledged a delivery, RFC 3339.
    pub delivered: String,
    /// The target's last HTTP status.
    pub status: Option<u16>,
    /// A short account of the target's last answer.
    pub answer: Option<String>,
    /// Whether the object was deprovisioned (deactivated at the target):
    /// kept so that a later return in scope reactivates the same account.
    pub deprovisioned: bool,
}

/// A delivery the engine gave up on: the request, the answer and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its number, unique within the tenant.
    pub id: u64,
    /// The target.
    pub target: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The Muster resource.
    pub resource_id: ResourceId,
    /// The request sent (method, url, body), secrets left out.
    pub request: Value,
    /// The answer (status, body), or the transport error.
    pub response: Value,
    /// Why retrying cannot fix it.
    pub reason: String,
    /// When, RFC 3339.
    pub at: String,
}

/// A dead letter to store (the store numbers and stamps it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// `User` or `Group`.
    pub resource_type: String,
    /// The Muster resource.
    pub resource_id: ResourceId,
    /// The request sent.
    pub request: Value,
    /// The answer.
    pub response: Value,
    /// Why retrying cannot fix it.
    pub reason: String,
}

/// One change of one resource, as the end-to-end explain reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    /// Its position in the feed.
    pub sequence: u64,
    /// The client whose write it was.
    pub client: String,
    /// When, RFC 3339.
    pub at: String,
    /// The resource after the change, when the record carries it.
    pub after: Option<Value>,
}

/// The storage the sync engine needs, next to [`crate::Store`].
#[async_trait]
pub trait SyncStore: Send + Sync + 'static {
    /// The sequence of the tenant's newest change record (0 when none): where
    /// a new target's feed reader starts after its initial full push.
    async fn change_head(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// The newest `limit` changes of one resource, newest first.
    async fn resource_history(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        limit: u64,
    ) -> Result<Vec<ResourceChange>, StoreError>;

    /// Stores a target document, replacing the one of the same name (which
    /// keeps its creation time, pause state and delivery state).
    async fn put_target(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
        document: &str,
    ) -> Result<TargetRecord, StoreError>;

    /// One target.
    async fn target(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<TargetRecord>, StoreError>;

    /// The tenant's targets, by name.
    async fn targets(&self, tenant: &TenantId) -> Result<Vec<TargetRecord>, StoreError>;

    /// Every target of every tenant (what `muster serve` starts workers
    /// for).
    async fn all_targets(&self) -> Result<Vec<(TenantId, TargetRecord)>, StoreError>;

    /// Removes a target with its delivery state and dead letters; `false`
    /// when there was none.
    async fn remove_target(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError>;

    /// Pauses a target with a reason, or resumes it (`None`), confirming
    /// the removals of every change committed so far
    /// ([`TargetRecord::guard_confirmed`]).
    async fn set_target_paused(
        &self,
        tenant: &TenantId,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Records what the target's worker reports of itself.
    async fn set_target_state(
        &self,
        tenant: &TenantId,
        name: &str,
        state: &str,
    ) -> Result<(), StoreError>;

    /// Takes the lease on delivering `name` for `holder` until `ttl` from
    /// now, or renews it: `true` when `holder` holds it after the call (it
    /// was free, had expired, or was `holder`'s already). The sync engines
    /// of several processes sharing the database deliver each target from
    /// the one holding its lease; a holder that stops renewing loses it
    /// when it expires. `false` for a target that does not exist.
    async fn lease_target(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// What `target` holds of one resource.
    async fn delivered(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<DeliveredObject>, StoreError>;

    /// What `target` holds of every resource of a type.
    async fn delivered_all(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
    ) -> Result<Vec<DeliveredObject>, StoreError>;

    /// Records a delivery (replacing the previous record of the resource).
    async fn record_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        object: DeliveredObject,
    ) -> Result<(), StoreError>;

    /// Forgets what `target` held of a resource (it was deleted there).
    async fn forget_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<(), StoreError>;

    /// Stores a dead letter and returns its number.
    async fn add_dead_letter(
        &self,
        tenant: &TenantId,
        target: &str,
        letter: NewDeadLetter,
    ) -> Result<u64, StoreError>;

    /// The tenant's dead letters, oldest first, of one target or all.
    async fn dead_letters(
        &self,
        tenant: &TenantId,
        target: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// Removes a dead letter and returns it (`None` when there is none of
    /// that number).
    async fn take_dead_letter(
        &self,
        tenant: &TenantId,
        id: u64,
    ) -> Result<Option<DeadLetter>, StoreError>;
}
