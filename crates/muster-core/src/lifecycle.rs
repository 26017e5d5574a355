//! What a `DELETE` of a User means, and what follows it: soft delete,
//! restore (by an admin, or by an identity provider's re-POST of the same
//! `externalId`), purge (on demand or after the retention), and the
//! tenant settings that decide them.
//!
//! Semantics (README, "Lifecycle: deactivate, delete, restore, purge"):
//! - A SCIM `DELETE /Users/{id}` (also in Bulk) is, under the tenant's
//!   `deleteMeans` setting, a soft delete (the default) or a deactivation
//!   (`active` set to false, the user kept and visible).
//! - A soft-deleted user is gone from SCIM at once (reads answer 404; lists,
//!   filters, group members and Bulk do not see it), its `userName`,
//!   `externalId` and unique values are free, its memberships are removed
//!   and the change feed carries a `Deleted` record (targets deprovision as
//!   configured). Its tombstone is kept for `softDeleteRetentionDays`
//!   (default 30).
//! - Within the retention it can be restored: by an admin (same id, a new
//!   version, back in the groups that still exist; 409 naming the
//!   attribute when its `userName` was taken meanwhile), or by a POST of a
//!   User with the same `externalId` (compared exactly, as `externalId` is
//!   `caseExact`): the same id comes back, with the POST body as its state.
//! - A purge (after the retention, by `muster serve`'s hourly sweep, or on
//!   demand) erases the tombstone's personal data and the payloads of the
//!   user's change records, keeping a skeleton: id, resource type, the
//!   deleted and purged instants and who.
//! - A Group `DELETE` is a hard delete, as before: groups hold no personal
//!   data beyond their members' ids, and an identity provider re-creates
//!   them by name.

use std::time::Duration;

use muster_scim::{ResourceType, ScimError, ScimType};
use muster_store::lifecycle::Tombstone;
use muster_store::{Actor, ResourceId, Retention, Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Error;

/// The setting that holds [`DeleteMeans`].
pub const DELETE_MEANS_SETTING: &str = "deleteMeans";

/// The setting that holds the soft-delete retention in days.
pub const RETENTION_SETTING: &str = "softDeleteRetentionDays";

/// The retention when none is set.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The longest retention a tenant may set (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The `client` change records and tombstones name for the periodic purge.
pub const SWEEP_CLIENT: &str = "muster:retention-sweep";

/// How often `muster serve` purges expired tombstones (also once at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// What a SCIM `DELETE` of a User does in a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteMeans {
    /// Soft delete: hidden, `userName` freed, restorable within the
    /// retention, then purged.
    #[default]
    SoftDelete,
    /// Deactivate: `active` set to false; the user stays visible.
    Deactivate,
}

impl DeleteMeans {
    /// The setting's text.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteMeans::SoftDelete => "softDelete",
            DeleteMeans::Deactivate => "deactivate",
        }
    }

    /// Reads the setting's text (exact spelling).
    pub fn parse(text: &str) -> Option<DeleteMeans> {
        match text {
            "softDelete" => Some(DeleteMeans::SoftDelete),
            "deactivate" => Some(DeleteMeans::Deactivate),
            _ => None,
        }
    }
}

/// The serde default of `Settings::soft_delete_retention_days`.
pub fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// A tenant's lifecycle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// What a `DELETE` of a User means.
    pub delete_means: DeleteMeans,
    /// How many days a tombstone stays restorable.
    pub retention_days: u32,
}

impl LifecycleSettings {
    /// The window within which a tombstone is restorable.
    pub fn retention(&self) -> Retention {
        Retention::OlderThan(Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }
}

/// The window of [`MAX_RETENTION_DAYS`]: no tenant keeps a tombstone
/// restorable longer.
pub(crate) fn longest_retention() -> Retention {
    LifecycleSettings {
        delete_means: DeleteMeans::SoftDelete,
        retention_days: MAX_RETENTION_DAYS,
    }
    .retention()
}

/// Reads the tenant's lifecycle settings (defaults when unset).
pub async fn lifecycle_settings(
    store: &dyn Store,
    tenant: &TenantId,
) -> Result<LifecycleSettings, Error> {
    let delete_means = match store.get_setting(tenant, DELETE_MEANS_SETTING).await? {
        None => DeleteMeans::default(),
        Some(text) => DeleteMeans::parse(&text).ok_or_else(|| {
            Error::Scim(ScimError::invalid_value(format!(
                "stored setting {DELETE_MEANS_SETTING} is '{text}', expected 'softDelete' or 'deactivate'"
            )))
        })?,
    };
    let retention_days = match store.get_setting(tenant, RETENTION_SETTING).await? {
        None => DEFAULT_RETENTION_DAYS,
        Some(text) => text.parse().map_err(|_| {
            Error::Scim(ScimError::invalid_value(format!(
                "stored setting {RETENTION_SETTING} is '{text}', expected a number of days"
            )))
        })?,
    };
    Ok(LifecycleSettings {
        delete_means,
        retention_days,
    })
}

/// Stores the tenant's lifecycle settings; a retention above
/// [`MAX_RETENTION_DAYS`] is refused (400 naming the setting), nothing
/// written.
pub async fn put_lifecycle_settings(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    delete_means: DeleteMeans,
    retention_days: u32,
) -> Result<(), Error> {
    check_retention(retention_days)?;
    store
        .set_setting(tenant, actor, DELETE_MEANS_SETTING, delete_means.as_str())
        .await?;
    store
        .set_setting(
            tenant,
            actor,
            RETENTION_SETTING,
            &retention_days.to_string(),
        )
        .await?;
    Ok(())
}

/// Refuses a retention above [`MAX_RETENTION_DAYS`] (400 naming the
/// setting).
pub fn check_retention(retention_days: u32) -> Result<(), Error> {
    if retention_days > MAX_RETENTION_DAYS {
        return Err(Error::Scim(ScimError::invalid_value(format!(
            "settings: {RETENTION_SETTING} is {retention_days}; expected 0 to {MAX_RETENTION_DAYS} days"
        ))));
    }
    Ok(())
}

/// A soft-deleted User as admins list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    /// Its id (the one a restore gives back).
    pub id: String,
    /// Its `userName`; absent once purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Its `externalId`; absent once purged or when it had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// When it was deleted.
    pub deleted_at: String,
    /// The client that deleted it.
    pub deleted_by: String,
    /// When the retention ends (it is purged at the next sweep after).
    pub expires_at: String,
    /// When it was purged; absent while restorable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<String>,
    /// Who purged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged_by: Option<String>,
}

impl DeletedUser {
    /// The listing of a tombstone under a retention of `retention_days`.
    pub fn of(tombstone: Tombstone, retention_days: u32) -> DeletedUser {
        DeletedUser {
            expires_at: expiry(&tombstone.deleted_at, retention_days),
            id: tombstone.id.0,
            user_name: tombstone.user_name,
            external_id: tombstone.external_id,
            deleted_at: tombstone.deleted_at,
            deleted_by: tombstone.deleted_by,
            purged_at: tombstone.purged_at,
            purged_by: tombstone.purged_by,
        }
    }
}

/// `deleted_at` plus the retention, RFC 3339 (the text itself when it
/// cannot be read).
fn expiry(deleted_at: &str, retention_days: u32) -> String {
    OffsetDateTime::parse(deleted_at, &Rfc3339)
        .ok()
        .and_then(|at| at.checked_add(time::Duration::days(i64::from(retention_days))))
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| deleted_at.to_owned())
}

/// The tenant's soft-deleted Users, newest first, at most `limit`.
pub async fn deleted_users(
    store: &dyn Store,
    tenant: &TenantId,
    limit: u64,
) -> Result<Vec<DeletedUser>, Error> {
    let settings = lifecycle_settings(store, tenant).await?;
    Ok(store
        .tombstones(tenant, USER, limit)
        .await?
        .into_iter()
        .map(|tombstone| DeletedUser::of(tombstone, settings.retention_days))
        .collect())
}

/// The User resource type id.
pub(crate) const USER: &str = "User";

/// How many tombstones a restore by `userName` looks through.
const NAME_LOOKUP_LIMIT: u64 = 100_000;

/// The tombstone an admin names: a deleted User's id, else the newest
/// deleted User whose `userName` is `key` (case-insensitively, as
/// `userName` compares). 404 when none.
pub async fn find_deleted_user(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
) -> Result<Tombstone, Error> {
    if let Some(tombstone) = store.tombstone(tenant, &ResourceId(key.to_owned())).await? {
        if tombstone.resource_type == USER {
            return Ok(tombstone);
        }
    }
    store
        .tombstones(tenant, USER, NAME_LOOKUP_LIMIT)
        .await?
        .into_iter()
        .find(|tombstone| {
            tombstone
                .user_name
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(key))
        })
        .ok_or_else(|| Error::not_found(format!("no deleted User '{key}' (id or userName)")))
}

/// Purges a deleted User now (by id): its personal data is erased, its
/// skeleton kept. Purging a purged one changes nothing.
pub async fn purge_user(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    id: &str,
) -> Result<DeletedUser, Error> {
    let settings = lifecycle_settings(store, tenant).await?;
    let id = ResourceId(id.to_owned());
    match store.tombstone(tenant, &id).await? {
        Some(tombstone) if tombstone.resource_type == USER => {}
        _ => {
            return Err(Error::not_found(format!(
                "no deleted User '{}' to purge",
                id.0
            )))
        }
    }
    let purged = store.purge(tenant, actor, &id).await?;
    Ok(DeletedUser::of(purged, settings.retention_days))
}

/// Purges every deleted User of the tenant whose retention ended. Returns
/// their ids.
pub async fn purge_expired(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
) -> Result<Vec<String>, Error> {
    let settings = lifecycle_settings(store, tenant).await?;
    let purged = store
        .purge_expired(tenant, actor, settings.retention())
        .await?;
    Ok(purged.into_iter().map(|id| id.0).collect())
}

/// One pass of the periodic purge over every tenant holding tombstones:
/// what `muster serve` runs at start and every [`SWEEP_INTERVAL`]. A
/// tenant that fails is logged and the others are swept.
pub async fn sweep(store: &dyn Store) -> Result<usize, Error> {
    let actor = Actor {
        client: SWEEP_CLIENT.to_owned(),
        request_id: String::new(),
    };
    let mut purged = 0;
    for tenant in store.tenants_with_tombstones().await? {
        match purge_expired(store, &tenant, &actor).await {
            Ok(ids) => {
                if !ids.is_empty() {
                    tracing::info!(tenant = %tenant.0, purged = ids.len(), "retention sweep");
                }
                purged += ids.len();
            }
            Err(error) => {
                let error = error.into_scim();
                tracing::warn!(tenant = %tenant.0, detail = %error.detail, "retention sweep failed");
            }
        }
    }
    Ok(purged)
}

/// A restore's refusal as the caller should see it: a tombstone that was
/// purged or is past the retention is a conflict with its state (409).
pub(crate) fn restore_error(error: Error) -> Error {
    match error {
        Error::Store(StoreError::Refused(detail)) => Error::Scim(ScimError::status(409, detail)),
        other => other,
    }
}

/// Refuses the admin restore of a purged tombstone before any work.
pub(crate) fn check_restorable(tombstone: &Tombstone, rt: &ResourceType) -> Result<(), Error> {
    if let Some(purged_at) = &tombstone.purged_at {
        return Err(Error::Scim(ScimError::status(
            409,
            format!(
                "{} '{}' was purged at {purged_at}: its data is gone and it cannot be restored",
                rt.id, tombstone.id.0
            ),
        )));
    }
    if tombstone.resource.is_none() {
        return Err(Error::Scim(ScimError::bad_request(
            ScimType::InvalidValue,
            format!(
                "{} '{}' has no stored state to restore",
                rt.id, tombstone.id.0
            ),
        )));
    }
    Ok(())
}
