//! Emergency offboarding: deactivate a user now and lock it, so that no
//! identity provider's later write can make it active again until an
//! admin unlocks it.
//!
//! The lock is stored inside the user's resource, under Muster's own key
//! [`LOCK_URN`] (`{"lockedBy", "lockedAt", "reason", "requestId"}`), so it
//! is written in the same write as `active: false` (one transaction, one
//! change record, which the audit trail and the sync feed read), and every
//! later write sees it in the row its transaction holds: the update
//! closures of replace and patch ([`crate::Session::replace`],
//! [`crate::Session::patch`], and Bulk, which runs them) call
//! [`hold_lock`] on the locked current state, which carries the lock over
//! and keeps `active` false whatever the body said. No registry declares the
//! key: a client that names it is refused like any undeclared attribute
//! (or has it captured apart under the `capture` policy, never in the
//! resource), and [`hide_lock`] keeps it out of every SCIM answer.
//!
//! A write that would set `active` true on a locked user is applied with
//! `active` kept false (the rest of the write goes through) rather than
//! refused: an identity provider that gets a `4xx` for one user retries it
//! every cycle and may quarantine the whole provisioning job (Entra ID),
//! which would hold back everyone else's changes. The decision is in
//! README's "Lifecycle" section.
//!
//! Entitlements follow from `active` false: the rules engine gives an
//! inactive user no grants, skills, languages or licenses (it keeps its
//! placement), and the store derives them again in the offboarding write.

use muster_store::{ListQuery, Page, ResourceId, StoredResource, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Error, Rendered, Session};

/// Where a user's offboarding lock is kept inside its stored resource.
/// Never declared in a registry, never writable or readable over SCIM.
pub const LOCK_URN: &str = "urn:muster:params:scim:schemas:extension:lock:2.0:User";

/// The resource type offboarding applies to.
const USER: &str = "User";

/// Who locked a user, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    /// The client (token or admin) that offboarded the user.
    pub locked_by: String,
    /// When, RFC 3339 (UTC).
    pub locked_at: String,
    /// Why, as the admin said; empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The request that offboarded the user (empty from the CLI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

/// The lock a stored user carries, if any.
pub fn lock_of(resource: &Value) -> Option<Lock> {
    resource
        .get(LOCK_URN)
        .and_then(|lock| serde_json::from_value(lock.clone()).ok())
}

/// Whether a stored user carries a lock.
pub fn is_locked(resource: &Value) -> bool {
    resource.get(LOCK_URN).is_some()
}

/// Removes the lock from a resource about to be shown to a SCIM client.
pub fn hide_lock(resource: &mut Value) {
    if let Some(object) = resource.as_object_mut() {
        object.retain(|key, _| !key.eq_ignore_ascii_case(LOCK_URN));
    }
}

/// Takes a lock out of a client body (an exported line for `muster
/// import`, where the key is written as exported, in any case).
pub(crate) fn take_lock(body: &mut Value) -> Option<Value> {
    let object = body.as_object_mut()?;
    let key = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(LOCK_URN))?
        .clone();
    object.shift_remove(&key)
}

/// Inside a write's update closure: gives `next` exactly the lock of the
/// stored user `current`. When `current` is locked, the lock is carried
/// over and `next` stays inactive, whatever the write asked (`active` true
/// in any spelling, or absent); when it is not, whatever `next` holds under
/// [`LOCK_URN`] is dropped, so no client write can lock a user (even were an
/// admin to declare a schema of that URN). Returns whether the user is
/// locked.
pub(crate) fn hold_lock(current: &Value, next: &mut Value) -> bool {
    let Some(object) = next.as_object_mut() else {
        return false;
    };
    object.retain(|key, _| !key.eq_ignore_ascii_case(LOCK_URN));
    let Some(lock) = current.get(LOCK_URN) else {
        return false;
    };
    object.insert(LOCK_URN.to_owned(), lock.clone());
    object.insert("active".to_owned(), Value::Bool(false));
    true
}

/// What an offboarding or an unlock did to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Offboarded {
    /// The user's id.
    pub id: String,
    /// Its userName.
    pub user_name: String,
    /// Its version after the write.
    pub version: u64,
    /// The lock it carries now (`None` after an unlock).
    pub lock: Option<Lock>,
    /// Whether the write changed anything (an unlock of a user that was not
    /// locked changes nothing).
    pub changed: bool,
    /// The user as a SCIM client would read it now.
    pub user: Rendered,
}

impl Offboarded {
    /// The JSON the admin API and the CLI print.
    pub fn to_json(&self) -> Value {
        let active = self
            .user
            .body
            .as_ref()
            .and_then(|user| user.get("active"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut answer = json!({
            "id": self.id,
            "userName": self.user_name,
            "active": active,
            "version": self.version,
            "locked": self.lock.is_some(),
            "changed": self.changed,
        });
        if let (Some(lock), Some(object)) = (&self.lock, answer.as_object_mut()) {
            object.insert(
                "lock".to_owned(),
                serde_json::to_value(lock).unwrap_or(Value::Null),
            );
        }
        answer
    }
}

/// The current instant, RFC 3339 in UTC.
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Session<'_> {
    /// Offboards the user `id`: in one write, `active` false and a lock
    /// naming this session's actor, now and `reason`; the store derives the
    /// user's entitlements again (an inactive user holds none). Offboarding
    /// a locked user again replaces its lock. A Group's id, an unknown id
    /// or another tenant's is `404`.
    pub async fn offboard(&self, id: &str, reason: &str) -> Result<Offboarded, Error> {
        let lock = Lock {
            locked_by: self.actor().client.clone(),
            locked_at: now(),
            reason: reason.to_owned(),
            request_id: self.actor().request_id.clone(),
        };
        let lock_value = serde_json::to_value(&lock)
            .map_err(|error| Error::Internal(format!("offboarding lock: {error}")))?;
        self.write_lock(id, move |resource| {
            if let Some(object) = resource.as_object_mut() {
                object.insert("active".to_owned(), Value::Bool(false));
                object.insert(LOCK_URN.to_owned(), lock_value.clone());
            }
        })
        .await
    }

    /// Puts an exported lock back on an imported user (`muster import`),
    /// inactive.
    pub(crate) async fn put_lock(&self, id: &str, lock: Value) -> Result<(), Error> {
        self.write_lock(id, move |resource| {
            if let Some(object) = resource.as_object_mut() {
                object.insert("active".to_owned(), Value::Bool(false));
                object.insert(LOCK_URN.to_owned(), lock.clone());
            }
        })
        .await?;
        Ok(())
    }

    /// Removes the user's lock: `active` stays as it is (false after an
    /// offboarding), and the identity provider's next write may set it
    /// again. Unlocking a user that is not locked changes nothing.
    pub async fn unlock(&self, id: &str) -> Result<Offboarded, Error> {
        self.write_lock(id, hide_lock).await
    }

    /// Finds a user by `userName` (case-insensitively), else by id: what
    /// `muster offboard USERNAME` names.
    pub async fn find_user(&self, user: &str) -> Result<ResourceId, Error> {
        let quoted = serde_json::to_string(user)
            .map_err(|error| Error::Internal(format!("quote a userName: {error}")))?;
        let filter = muster_scim::Filter::parse(&format!("userName eq {quoted}"))?;
        let query = ListQuery {
            resource_type: USER.to_owned(),
            filter: Some(filter),
            sort_by: None,
            descending: false,
            page: Page::Index {
                start_index: 1,
                count: 1,
            },
            include_members: false,
        };
        let store = self.service().store();
        let page = store.list(self.tenant(), self.registry(), &query).await?;
        if let Some(found) = page.resources.into_iter().next() {
            return Ok(found.id);
        }
        let id = ResourceId(user.to_owned());
        match store.get(self.tenant(), USER, &id, false).await {
            Ok(_) => Ok(id),
            Err(muster_store::StoreError::NotFound(_)) => Err(Error::not_found(format!(
                "no user with userName or id '{user}'"
            ))),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes `change` to the stored user `id` in the store's write
    /// transaction, deriving its entitlements again.
    async fn write_lock<F>(&self, id: &str, change: F) -> Result<Offboarded, Error>
    where
        F: Fn(&mut Value) + Clone + Send + 'static,
    {
        let rt = self.resource_type("Users")?;
        let (stored, changed) = self
            .with_fresh_view(&rt, |view, rt| {
                let change = change.clone();
                async move {
                    let unique = view.unique_attributes(&rt);
                    let never_returned = view.never_returned(&rt);
                    let generation = view.generation;
                    let derivation = view.derivation.clone();
                    let update: muster_store::UpdateFn =
                        Box::new(move |current: &StoredResource| {
                            let mut resource = current.resource.clone();
                            change(&mut resource);
                            if resource == current.resource {
                                return Ok(None);
                            }
                            Ok(Some(Update {
                                resource,
                                member_changes: Vec::new(),
                                unmapped: None,
                                unique,
                                schema_generation: Some(generation),
                                never_returned,
                                derivation,
                            }))
                        });
                    Ok(self
                        .service()
                        .store()
                        .update(
                            self.tenant(),
                            self.actor(),
                            &rt.id,
                            &ResourceId(id.to_owned()),
                            muster_store::Precondition::None,
                            false,
                            update,
                        )
                        .await?)
                }
            })
            .await
            .map_err(|error| match error {
                Error::Store(muster_store::StoreError::NotFound(_)) => {
                    Error::not_found(format!("no user with id '{id}'"))
                }
                error => error,
            })?;
        let lock = lock_of(&stored.resource);
        let user_name = stored
            .resource
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let projection = self.projection(&rt, None, None)?;
        let user = self.rendered(&rt, stored, &projection);
        Ok(Offboarded {
            id: user.id.clone(),
            user_name,
            version: user.version,
            lock,
            changed,
            user,
        })
    }
}

/// A soft-deleted user's lock survives its restore by an identity
/// provider's POST (`crate::lifecycle`): when the tombstone `id` carries a
/// lock, `new` (the POST body as the restored state) gets it and stays
/// inactive. A tombstone cannot be offboarded or unlocked, so reading it
/// before the restore's transaction sees what the restore will replace.
pub(crate) async fn keep_lock_on_restore(
    store: &dyn muster_store::Store,
    tenant: &muster_store::TenantId,
    id: &ResourceId,
    mut new: muster_store::NewResource,
) -> Result<muster_store::NewResource, Error> {
    if let Some(tombstone) = store.tombstone(tenant, id).await? {
        if let Some(resource) = &tombstone.resource {
            hold_lock(resource, &mut new.resource);
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `next` after [`hold_lock`] with the stored `current`.
    fn check(current: Value, next: Value, expected: Value) {
        let mut next = next;
        let locked = hold_lock(&current, &mut next);
        assert_eq!(locked, current.get(LOCK_URN).is_some());
        assert_eq!(next, expected);
    }

    #[test]
    fn a_lock_is_carried_over_and_keeps_the_user_inactive() {
        let lock = json!({"lockedBy": "ops", "lockedAt": "2026-12-06T00:00:00Z"});
        let locked = json!({"userName": "a", "active": false, LOCK_URN: lock});
        check(
            locked.clone(),
            json!({"userName": "a", "active": true, "title": "T"}),
            json!({"userName": "a", "active": false, "title": "T", LOCK_URN: lock}),
        );
        // `active` absent (removed) is false too.
        check(
            locked.clone(),
            json!({"userName": "a"}),
            json!({"userName": "a", LOCK_URN: lock, "active": false}),
        );
        // A lock a write brings, in any case of the key, is not the lock.
        check(
            locked,
            json!({"userName": "a", "URN:MUSTER:params:scim:schemas:extension:lock:2.0:User": {}}),
            json!({"userName": "a", LOCK_URN: lock, "active": false}),
        );
        check(
            json!({"userName": "a", "active": true}),
            json!({"userName": "a", "active": true, LOCK_URN: {"lockedBy": "mallory"}}),
            json!({"userName": "a", "active": true}),
        );
        check(
            json!({"userName": "a"}),
            json!({"userName": "a", "active": true}),
            json!({"userName": "a", "active": true}),
        );
    }

    #[test]
    fn the_lock_is_hidden_and_taken_in_any_case() {
        let mut resource = json!({"userName": "a", LOCK_URN: {"lockedBy": "ops"}});
        hide_lock(&mut resource);
        assert_eq!(resource, json!({"userName": "a"}));
        let mut line = json!({"userName": "a", LOCK_URN.to_uppercase(): {"lockedBy": "ops"}});
        assert_eq!(take_lock(&mut line), Some(json!({"lockedBy": "ops"})));
        assert_eq!(line, json!({"userName": "a"}));
        assert_eq!(take_lock(&mut line), None);
        assert_eq!(
            lock_of(&json!({LOCK_URN: {"lockedBy": "ops", "lockedAt": "t", "reason": "r"}})),
            Some(Lock {
                locked_by: "ops".into(),
                locked_at: "t".into(),
                reason: "r".into(),
                request_id: String::new(),
            })
        );
    }
}
