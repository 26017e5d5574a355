//! The audit trail: an append-only, hash-chained record of every change,
//! written in the transaction of the change itself.
//!
//! Every change record a write appends (resource creates, updates and
//! deletes, schema, setting and rule set changes, the users and groups a
//! write touches on the way) gets an audit entry beside it, in the same
//! transaction: no change commits without its entry, and no entry exists
//! for a change rolled back. An entry is two canonical JSON texts
//! (`muster_audit`):
//!
//! - its **skeleton**: `tenant`, `client`, `requestId`, `at`,
//!   `operation` (the change kind, or `ignored` for a write refused
//!   silently by the tenant's origin policy), `resourceType`,
//!   `resourceId`, `version` and `origin` (the source-of-truth tag the
//!   resource holds at the tenant's `originAttribute` setting, if any);
//! - its **detail**: `userName`, the attribute-level `changes` (`path`,
//!   `before`, `after`; the core `password` and every never-returned path
//!   of the write shown as `"[redacted]"`), a group's `members` delta, or,
//!   for the changes a write makes on the side (a user regrouped, a group
//!   whose member was renamed, schema, setting and rule set changes), the
//!   change record's own `payload`, which never holds secrets either.
//!
//! Entries are chained per tenant ([`muster_audit::chain`]). SQLite: the
//! single writer gives the order, and each entry is chained as it is
//! written. PostgreSQL: writers never wait on each other for the chain;
//! an entry is written unchained and gets its position and chain hash
//! after commit, in commit order (transaction id, then insert order, once
//! no older transaction is open), from one sealer at a time, as the change
//! feed gets its positions (`postgres/feed.rs`). Reads seal first.
//!
//! **Purge hook** ([`AuditStore::redact_audit_subject`]): erasing a
//! person's data drops the detail of every entry about the resource (and
//! its indexed `userName`), keeping the detail's hash: the chain still
//! verifies, and the skeleton (who changed what, when) stays checked.

use async_trait::async_trait;
use muster_audit::{canonical, diff, digest, Broken, Link, Redaction, Verifier};
use serde_json::{json, Map, Value};

use crate::{Actor, ResourceId, StoreError, TenantId};

/// The tenant setting naming the attribute that holds a resource's
/// source-of-truth tag (a canonical path: `urn:...:User:sourceOrg`, or a
/// core attribute); read by the stores to record each entry's `origin`.
pub const ORIGIN_ATTRIBUTE_SETTING: &str = "originAttribute";

/// Which entries [`AuditStore::audit_entries`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries about this resource.
    pub resource_id: Option<ResourceId>,
    /// Only entries about a User with this `userName` (ASCII
    /// case-insensitive), as the entry recorded it.
    pub user_name: Option<String>,
    /// Only entries of this client.
    pub client: Option<String>,
    /// Only entries at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Only entries before this RFC 3339 instant.
    pub until: Option<String>,
    /// Only entries after this position (the cursor of the previous page).
    pub after: u64,
    /// At most this many.
    pub limit: u64,
}

/// One audit entry as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Its position in the tenant's chain (from 1).
    pub position: u64,
    /// The skeleton (see the module documentation), parsed.
    pub skeleton: Value,
    /// The detail, parsed; `None` once redacted by a purge.
    pub detail: Option<Value>,
}

impl AuditEntry {
    /// The entry as one JSON object: the skeleton's fields, `position`,
    /// and the detail's fields, or `"redacted": true` once purged.
    pub fn to_json(&self) -> Value {
        let mut object = match &self.skeleton {
            Value::Object(object) => object.clone(),
            other => {
                let mut object = Map::new();
                object.insert("skeleton".to_owned(), other.clone());
                object
            }
        };
        object.insert("position".to_owned(), Value::from(self.position));
        match &self.detail {
            Some(Value::Object(detail)) => {
                for (key, value) in detail {
                    object.insert(key.clone(), value.clone());
                }
            }
            Some(other) => {
                object.insert("detail".to_owned(), other.clone());
            }
            None => {
                object.insert("redacted".to_owned(), Value::Bool(true));
            }
        }
        Value::Object(object)
    }
}

/// The audit trail's storage, implemented by both backends.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The tenant's entries matching `query`, in chain order.
    async fn audit_entries(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// The tenant's stored entries after position `after`, at most
    /// `limit`, in position order, as stored (for verification: nothing
    /// is checked here).
    async fn audit_links(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<Link>, StoreError>;

    /// The tenant's recorded head: the position and chain hash of its last
    /// entry (`None` before the first).
    async fn audit_head(&self, tenant: &TenantId) -> Result<Option<(u64, String)>, StoreError>;

    /// Erases the personal data of the entries about a resource (the
    /// purge of a User): their detail and indexed `userName` go, their
    /// skeleton and the detail's hash stay, so the chain still verifies.
    /// Returns how many entries were redacted. The purge calls it in its
    /// own transaction after erasing the resource (it is idempotent).
    async fn redact_audit_subject(
        &self,
        tenant: &TenantId,
        resource_id: &ResourceId,
    ) -> Result<u64, StoreError>;

    /// Appends an entry that no change record accompanies: a write the
    /// tenant's origin policy ignored (`operation` `ignored`, nothing
    /// stored). `detail` is stored as given (the caller keeps secrets out
    /// of it).
    async fn record_audit(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        event: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Chains the entries committed since the last call, when the backend
    /// chains after commit (PostgreSQL; SQLite chains each entry as it is
    /// written and has nothing to do): how many were chained. `muster serve`
    /// calls it every second, so an entry is open to an undetected edit for
    /// about that long; every read of the trail seals first anyway.
    async fn seal_audit(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Checks the tenant's whole chain, in pages, against its recorded
    /// head: `Ok(Ok((position, hash)))` with the head when intact,
    /// `Ok(Err(broken))` naming the first bad entry.
    async fn verify_audit(
        &self,
        tenant: &TenantId,
    ) -> Result<Result<(u64, String), Broken>, StoreError> {
        let head = self.audit_head(tenant).await?;
        let mut verifier = Verifier::new();
        let mut after = 0;
        loop {
            let links = self.audit_links(tenant, after, VERIFY_PAGE).await?;
            let Some(last) = links.last() else {
                break;
            };
            after = last.position;
            for link in &links {
                if let Err(broken) = verifier.check(link) {
                    return Ok(Err(broken));
                }
            }
        }
        Ok(verifier.finish(
            head.as_ref()
                .map(|(position, hash)| (*position, hash.as_str())),
        ))
    }
}

/// Entries read per page by [`AuditStore::verify_audit`].
const VERIFY_PAGE: u64 = 5_000;

/// An entry without a change record (see [`AuditStore::record_audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The operation (`ignored`).
    pub operation: String,
    /// The resource type.
    pub resource_type: String,
    /// The resource concerned, when known.
    pub resource_id: Option<ResourceId>,
    /// The source-of-truth tag of the write, when it had one.
    pub origin: Option<String>,
    /// What to record (no secrets).
    pub detail: Value,
}

/// What an entry's detail is built from.
pub(crate) enum Detail<'a> {
    /// A resource written: its attributes before (`None` for a create)
    /// and after, diffed attribute by attribute.
    Diff {
        /// The stored resource before.
        before: Option<&'a Map<String, Value>>,
        /// The stored resource after.
        after: &'a Map<String, Value>,
        /// The write's never-returned paths (the core `password` always).
        never_returned: &'a [String],
        /// The group's membership delta, when the write changed it.
        members: Option<&'a Value>,
    },
    /// A change described by its change record's payload (already free of
    /// secrets).
    Payload(&'a Value),
    /// A recorded event (see [`AuditStore::record_audit`]).
    Event(&'a Value),
}

/// An entry ready to store: its texts and the columns queries use.
pub(crate) struct Prepared {
    /// The skeleton's canonical text.
    pub skeleton: String,
    /// The detail's canonical text.
    pub detail: String,
    /// Its hash.
    pub detail_hash: String,
    /// The operation.
    pub operation: String,
    /// The User's `userName` in lower case, for queries.
    pub user_name: Option<String>,
}

/// The skeleton's fields that are not the detail's.
pub(crate) struct Head<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// Who.
    pub actor: &'a Actor,
    /// When, RFC 3339.
    pub at: &'a str,
    /// The operation: a change kind's stored name, or `ignored`.
    pub operation: &'a str,
    /// The resource type.
    pub resource_type: &'a str,
    /// The resource id (empty when none).
    pub resource_id: &'a str,
    /// The version after the change.
    pub version: u64,
}

/// Builds an entry; `origin_path` is the tenant's `originAttribute`
/// setting, `origin` a tag known already (an ignored write's).
pub(crate) fn prepare(
    head: &Head<'_>,
    detail: &Detail<'_>,
    origin_path: Option<&str>,
    origin: Option<&str>,
) -> Prepared {
    let (detail_value, state) = match detail {
        Detail::Diff {
            before,
            after,
            never_returned,
            members,
        } => {
            let redaction = Redaction::new(never_returned);
            let changes = diff(*before, Some(after), &redaction);
            let mut object = Map::new();
            object.insert(
                "changes".to_owned(),
                serde_json::to_value(changes).unwrap_or(Value::Null),
            );
            if let Some(members) = members {
                object.insert("members".to_owned(), (*members).clone());
            }
            (Value::Object(object), Some(*after))
        }
        Detail::Payload(payload) => (
            json!({ "payload": payload }),
            payload
                .get("resource")
                .or_else(|| payload.get("deleted"))
                .and_then(Value::as_object),
        ),
        Detail::Event(event) => (json!({ "event": event }), None),
    };
    let user_name = state
        .filter(|_| head.resource_type == "User")
        .and_then(|state| state.get("userName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut detail_value = detail_value;
    if let (Some(name), Value::Object(object)) = (&user_name, &mut detail_value) {
        object.insert("userName".to_owned(), Value::from(name.as_str()));
    }
    let origin = origin.map(str::to_owned).or_else(|| {
        origin_path
            .zip(state)
            .and_then(|(path, state)| origin_of(state, path))
    });
    let mut skeleton = json!({
        "tenant": head.tenant.0,
        "client": head.actor.client,
        "requestId": head.actor.request_id,
        "at": head.at,
        "operation": head.operation,
        "resourceType": head.resource_type,
        "resourceId": head.resource_id,
        "version": head.version,
    });
    if let (Some(origin), Value::Object(object)) = (origin, &mut skeleton) {
        object.insert("origin".to_owned(), Value::from(origin));
    }
    let detail = canonical(&detail_value);
    Prepared {
        skeleton: canonical(&skeleton),
        detail_hash: digest(&detail),
        detail,
        operation: head.operation.to_owned(),
        user_name: user_name.map(|name| name.to_lowercase()),
    }
}

/// The text at a canonical attribute path of a resource (an extension
/// attribute `urn:...:attr`, or a core attribute, bare or after its
/// schema URN), compared ASCII case-insensitively.
pub fn origin_of(resource: &Map<String, Value>, path: &str) -> Option<String> {
    let get = |object: &Map<String, Value>, key: &str| -> Option<Value> {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.clone())
    };
    let value = match path.rsplit_once(':') {
        Some((urn, attribute)) => match get(resource, urn) {
            Some(Value::Object(extension)) => get(&extension, attribute),
            _ => get(resource, attribute).filter(|_| urn.contains(":core:")),
        },
        None => get(resource, path),
    }?;
    match value {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Parses a stored entry.
pub(crate) fn entry(position: u64, skeleton: &str, detail: Option<&str>) -> AuditEntry {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()));
    AuditEntry {
        position,
        skeleton: parse(skeleton),
        detail: detail.map(parse),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::origin_of;

    #[test]
    fn origin_paths() {
        let user = json!({
            "userType": "Agent",
            "urn:ietf:params:scim:schemas:extension:genesys:2.0:User": {"sourceOrg": "hr"}
        });
        let user = user.as_object().cloned().unwrap_or_default();
        let check = |path: &str, expected: Option<&str>| {
            assert_eq!(origin_of(&user, path).as_deref(), expected, "{path}");
        };
        check(
            "urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg",
            Some("hr"),
        );
        check(
            "urn:ietf:params:scim:schemas:extension:genesys:2.0:user:SOURCEORG",
            Some("hr"),
        );
        check("userType", Some("Agent"));
        check(
            "urn:ietf:params:scim:schemas:core:2.0:User:userType",
            Some("Agent"),
        );
        check("urn:other:User:sourceOrg", None);
    }
}
