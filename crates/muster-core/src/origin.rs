//! Where a write comes from, and what a tenant does with writes from a
//! directory that is not its source of truth (issue 14, item 7; seed 004's
//! multi-org loops).
//!
//! Every change records its origin: the tenant, the client and the request
//! id (the change record's actor) and, when the tenant names one with the
//! `originAttribute` setting, the source-of-truth tag the resource holds
//! at that attribute (for example
//! `urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg`,
//! declared by a custom schema). The stores copy the tag into each audit
//! entry's `origin`.
//!
//! With `expectedOrigin` (the primary directory's tag) and
//! `foreignOriginWrites`, a tenant decides what happens to a create,
//! replace or patch (also inside Bulk) whose resulting resource holds a
//! tag that is present and not the expected one:
//! - `accept` (default): written as any other;
//! - `refuse`: a SCIM 400 `invalidValue` naming the attribute, the tag
//!   and the expected value; nothing changes;
//! - `ignore`: answered as if applied (a create 201 with a fresh id, a
//!   replace or patch with the resource as it would have been), nothing
//!   stored, logged and recorded in the audit trail as an `ignored` entry.
//!
//! A resource without a tag is always written: only a present foreign tag
//! is screened.

use std::sync::{Arc, Mutex};

use muster_scim::{
    AttrPath, AttributeType, Mutability, ResourceType, Returned, SchemaRegistry, ScimError,
};
use muster_store::audit::{origin_of, AuditEvent, ORIGIN_ATTRIBUTE_SETTING};
use muster_store::{Actor, ResourceId, Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The setting holding the primary directory's tag.
pub const EXPECTED_ORIGIN_SETTING: &str = "expectedOrigin";

/// The setting holding [`ForeignOriginWrites`].
pub const FOREIGN_WRITES_SETTING: &str = "foreignOriginWrites";

/// What a tenant does with a write whose tag is not the expected one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForeignOriginWrites {
    /// Written as any other (the default).
    #[default]
    Accept,
    /// Refused with a SCIM 400 naming the attribute; nothing changes.
    Refuse,
    /// Answered as if applied; nothing stored; audited.
    Ignore,
}

impl ForeignOriginWrites {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ForeignOriginWrites::Accept => "accept",
            ForeignOriginWrites::Refuse => "refuse",
            ForeignOriginWrites::Ignore => "ignore",
        }
    }

    /// The policy of a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ForeignOriginWrites::Accept,
            ForeignOriginWrites::Refuse,
            ForeignOriginWrites::Ignore,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == text)
    }
}

/// A tenant's origin settings, as its view holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// The canonical path of the attribute holding the tag.
    pub attribute: Option<String>,
    /// The primary directory's tag.
    pub expected: Option<String>,
    /// What happens to a write with another tag.
    pub foreign_writes: ForeignOriginWrites,
}

/// What [`OriginPolicy::decide`] says about a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write it.
    Apply,
    /// Answer as if written, store nothing; carries the foreign tag.
    Ignore(String),
}

impl OriginPolicy {
    /// The tag `resource` (canonical JSON) holds, if the tenant names an
    /// attribute and the resource has a value there.
    pub fn tag(&self, resource: &Value) -> Option<String> {
        let attribute = self.attribute.as_deref()?;
        origin_of(resource.as_object()?, attribute)
    }

    /// Decides a write whose result is `resource`: refused (the error),
    /// ignored, or applied.
    pub fn decide(&self, resource: &Value) -> Result<Decision, ScimError> {
        let (Some(attribute), Some(expected)) = (&self.attribute, &self.expected) else {
            return Ok(Decision::Apply);
        };
        let Some(tag) = self.tag(resource) else {
            return Ok(Decision::Apply);
        };
        if &tag == expected {
            return Ok(Decision::Apply);
        }
        match self.foreign_writes {
            ForeignOriginWrites::Accept => Ok(Decision::Apply),
            ForeignOriginWrites::Refuse => Err(ScimError::invalid_value(format!(
                "{attribute}: '{tag}' is not this tenant's source of truth; writes are accepted \
                 only from origin '{expected}' (foreignOriginWrites: refuse)"
            ))),
            ForeignOriginWrites::Ignore => Ok(Decision::Ignore(tag)),
        }
    }
}

/// Reads a tenant's origin settings (an empty stored value is unset).
pub async fn load(store: &dyn Store, tenant: &TenantId) -> Result<OriginPolicy, StoreError> {
    let read = |key: &'static str| async move {
        Ok::<_, StoreError>(
            store
                .get_setting(tenant, key)
                .await?
                .filter(|value| !value.is_empty()),
        )
    };
    let foreign_writes = match read(FOREIGN_WRITES_SETTING).await? {
        None => ForeignOriginWrites::default(),
        Some(text) => ForeignOriginWrites::parse(&text).ok_or_else(|| {
            StoreError::Scim(ScimError::invalid_value(format!(
                "stored setting {FOREIGN_WRITES_SETTING} is '{text}', expected 'accept', 'refuse' or 'ignore'"
            )))
        })?,
    };
    Ok(OriginPolicy {
        attribute: read(ORIGIN_ATTRIBUTE_SETTING).await?,
        expected: read(EXPECTED_ORIGIN_SETTING).await?,
        foreign_writes,
    })
}

/// The stored values of a tenant's origin settings, checked: the
/// attribute must be a declared single-valued attribute of User (stored in
/// its canonical spelling); `refuse` and `ignore` need both the attribute
/// and the expected tag. Refused with a 400 naming the setting.
pub fn checked(
    registry: &SchemaRegistry,
    policy: &OriginPolicy,
) -> Result<Vec<(&'static str, String)>, crate::Error> {
    let attribute = match &policy.attribute {
        None => None,
        Some(path) => Some(canonical_attribute(registry, path)?),
    };
    let expected = policy
        .expected
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if policy.foreign_writes != ForeignOriginWrites::Accept
        && (attribute.is_none() || expected.is_empty())
    {
        return Err(ScimError::invalid_value(format!(
            "settings: {FOREIGN_WRITES_SETTING} '{}' needs {ORIGIN_ATTRIBUTE_SETTING} and {EXPECTED_ORIGIN_SETTING}",
            policy.foreign_writes.as_str()
        ))
        .into());
    }
    Ok(vec![
        (ORIGIN_ATTRIBUTE_SETTING, attribute.unwrap_or_default()),
        (
            EXPECTED_ORIGIN_SETTING,
            policy.expected.clone().unwrap_or_default(),
        ),
        (
            FOREIGN_WRITES_SETTING,
            policy.foreign_writes.as_str().to_owned(),
        ),
    ])
}

/// Stores what [`checked`] gave (an empty value unsets).
pub async fn write(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    values: Vec<(&'static str, String)>,
) -> Result<(), crate::Error> {
    for (key, value) in values {
        // Never set and still unset: nothing to record.
        if value.is_empty() && store.get_setting(tenant, key).await?.is_none() {
            continue;
        }
        store.set_setting(tenant, actor, key, &value).await?;
    }
    Ok(())
}

/// The canonical spelling of an origin attribute path, refused unless it
/// names a declared singular, non-complex attribute of User.
fn canonical_attribute(registry: &SchemaRegistry, path: &str) -> Result<String, ScimError> {
    let unknown = || {
        ScimError::invalid_value(format!(
            "settings: {ORIGIN_ATTRIBUTE_SETTING} '{path}' is not a declared attribute of User; \
             declare it first (for example with a custom schema)"
        ))
    };
    let user: &ResourceType = registry.resource_type("User").ok_or_else(unknown)?;
    let parsed = AttrPath::parse(path).map_err(|_| unknown())?;
    let resolved = registry
        .resolve_attribute(user, &parsed)
        .ok_or_else(unknown)?;
    let attribute = resolved.target();
    if resolved.sub_attribute.is_some()
        || attribute.multi_valued
        || attribute.kind == AttributeType::Complex
    {
        return Err(ScimError::invalid_value(format!(
            "settings: {ORIGIN_ATTRIBUTE_SETTING} '{path}' must name a single-valued top-level \
             attribute (the tag), not a complex, multi-valued or sub-attribute"
        )));
    }
    // The tag is shown in audit entries and in refusals sent to clients: a
    // value never returned (a password) must not be one, and neither may a
    // value the server sets (`id`).
    if attribute.returned == Returned::Never
        || matches!(
            attribute.mutability,
            Mutability::WriteOnly | Mutability::ReadOnly
        )
    {
        return Err(ScimError::invalid_value(format!(
            "settings: {ORIGIN_ATTRIBUTE_SETTING} '{path}' must name an attribute clients write \
             and read back (the source-of-truth tag); it is write-only, never returned or set \
             by the server"
        )));
    }
    Ok(resolved.canonical_path())
}

/// Where an update closure leaves the tag of a write it ignored, for the
/// caller to audit after the store's transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct IgnoredWrite(Arc<Mutex<Option<(String, Value)>>>);

impl IgnoredWrite {
    /// Notes an ignored write: its tag and the resource it would have
    /// written.
    pub(crate) fn note(&self, tag: String, resource: Value) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((tag, resource));
        }
    }

    /// The ignored write, if the closure noted one.
    pub(crate) fn take(&self) -> Option<(String, Value)> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Logs and audits a write ignored by the tenant's policy.
pub(crate) async fn audit_ignored(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    (resource_type, resource_id, operation): (&str, Option<&ResourceId>, &str),
    policy: &OriginPolicy,
    tag: &str,
) -> Result<(), StoreError> {
    tracing::info!(
        tenant = %tenant.0,
        client = %actor.client,
        request_id = %actor.request_id,
        resource_type,
        resource_id = resource_id.map(|id| id.0.as_str()).unwrap_or(""),
        operation,
        origin = tag,
        "write ignored: its origin is not the tenant's source of truth"
    );
    store
        .record_audit(
            tenant,
            actor,
            AuditEvent {
                operation: "ignored".to_owned(),
                resource_type: resource_type.to_owned(),
                resource_id: resource_id.cloned(),
                origin: Some(tag.to_owned()),
                detail: json!({
                    "write": operation,
                    "reason": "foreign origin",
                    "attribute": policy.attribute,
                    "expected": policy.expected,
                }),
            },
        )
        .await
}

/// The answer to a create the tenant's policy ignored: the resource as it
/// would have been created (a fresh id, version 1), nothing stored; the
/// write is logged and audited.
pub(crate) async fn ignored_create(
    session: &crate::Session<'_>,
    view: &crate::tenant::TenantView,
    rt: &ResourceType,
    id: Option<ResourceId>,
    resource: Value,
    tag: &str,
) -> Result<muster_store::StoredResource, crate::Error> {
    let id = id.unwrap_or_else(|| ResourceId(uuid::Uuid::now_v7().to_string()));
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut object = match resource {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    };
    object.insert("id".to_owned(), Value::from(id.0.as_str()));
    object.insert(
        "meta".to_owned(),
        json!({
            "resourceType": rt.id,
            "created": now,
            "lastModified": now,
            "version": "W/\"1\"",
        }),
    );
    audit_ignored(
        session.service().store(),
        session.tenant(),
        session.actor(),
        (&rt.id, Some(&id), "create"),
        &view.origin,
        tag,
    )
    .await?;
    Ok(muster_store::StoredResource {
        id,
        resource_type: rt.id.clone(),
        resource: Value::Object(object),
        version: 1,
        unmapped: serde_json::Map::new(),
    })
}

/// What a replace or patch answers: `stored` as the store left it, or,
/// when its update closure ignored the write, the resource as it would
/// have been (the stored `id`, `meta` and version), after logging and
/// auditing the ignored write.
pub(crate) async fn after_update(
    session: &crate::Session<'_>,
    view: &crate::tenant::TenantView,
    stored: muster_store::StoredResource,
    ignored: &IgnoredWrite,
    operation: &str,
) -> Result<muster_store::StoredResource, crate::Error> {
    let Some((tag, resource)) = ignored.take() else {
        return Ok(stored);
    };
    audit_ignored(
        session.service().store(),
        session.tenant(),
        session.actor(),
        (&stored.resource_type, Some(&stored.id), operation),
        &view.origin,
        &tag,
    )
    .await?;
    let mut object = match resource {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    };
    for key in ["id", "meta", "members", "groups"] {
        if let Some(value) = stored.resource.get(key) {
            object.insert(key.to_owned(), value.clone());
        }
    }
    Ok(muster_store::StoredResource {
        resource: Value::Object(object),
        ..stored
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Decision, ForeignOriginWrites, OriginPolicy};

    const SOURCE: &str = "urn:ietf:params:scim:schemas:extension:genesys:2.0:User:sourceOrg";

    fn check(policy: ForeignOriginWrites, tag: Option<&str>, expected: Result<Decision, ()>) {
        let policy = OriginPolicy {
            attribute: Some(SOURCE.to_owned()),
            expected: Some("hr".to_owned()),
            foreign_writes: policy,
        };
        let resource = match tag {
            Some(tag) => json!({"userName": "a",
                "urn:ietf:params:scim:schemas:extension:genesys:2.0:User": {"sourceOrg": tag}}),
            None => json!({"userName": "a"}),
        };
        let decided = policy.decide(&resource);
        match (&decided, expected) {
            (Err(error), Err(())) => {
                assert!(
                    error.detail.contains(SOURCE) && error.detail.contains("'hr'"),
                    "{error:?}"
                );
                assert_eq!(error.status, 400);
            }
            (Ok(decision), Ok(expected)) => assert_eq!(decision, &expected),
            _ => panic!("{decided:?}"),
        }
    }

    #[test]
    fn decisions() {
        use ForeignOriginWrites::{Accept, Ignore, Refuse};
        check(Accept, Some("org-b"), Ok(Decision::Apply));
        check(Refuse, Some("org-b"), Err(()));
        check(Refuse, Some("hr"), Ok(Decision::Apply));
        check(Refuse, None, Ok(Decision::Apply));
        check(
            Ignore,
            Some("org-b"),
            Ok(Decision::Ignore("org-b".to_owned())),
        );
        check(Ignore, None, Ok(Decision::Apply));
    }
}
