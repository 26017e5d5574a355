//! The audit trail (see `muster_store::audit`): queries by user, client
//! and time range for `muster audit` and `GET /admin/v1/audit`, the chain's
//! verification for `muster audit verify`, and the entries of admin actions
//! that change no resource (credentials, targets, tenants:
//! [`record_admin_action`]).

use muster_audit::Broken;
use muster_scim::ScimError;
use muster_store::audit::{AuditEvent, AuditQuery};
use muster_store::{Actor, ResourceId, Store, TenantId};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Error;

/// Records an admin action that changes no resource, and so writes no change
/// record of its own, in the tenant's audit trail: a token, an OAuth client,
/// a target or the tenant itself created, changed or removed. `kind` names
/// what it acted on (`Token`, `OAuthClient`, `Target`, `Tenant`), `name`
/// which one; `detail` must hold no secret (names, scopes, grace periods).
pub async fn record_admin_action(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor,
    operation: &str,
    kind: &str,
    name: &str,
    detail: Value,
) -> Result<(), Error> {
    let event = AuditEvent {
        operation: operation.to_owned(),
        resource_type: kind.to_owned(),
        resource_id: Some(ResourceId(name.to_owned())),
        origin: None,
        detail,
    };
    store.record_audit(tenant, actor, event).await?;
    Ok(())
}

/// The largest page of one query.
pub const MAX_PAGE: u64 = 1_000;

/// What an audit query asks for, as a client wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// A User's id, or its `userName` (ASCII case-insensitive).
    pub user: Option<String>,
    /// A client's name.
    pub client: Option<String>,
    /// Entries at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Entries before this RFC 3339 instant.
    pub until: Option<String>,
    /// The cursor a previous page gave (`nextCursor`).
    pub cursor: Option<String>,
    /// Most entries wanted (at most [`MAX_PAGE`]).
    pub count: u64,
}

/// One page of entries.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// The entries as JSON objects (see `AuditEntry::to_json`), in order.
    pub entries: Vec<Value>,
    /// The cursor of the next page, when the page was full.
    pub next_cursor: Option<String>,
}

/// The entries of `tenant` matching `filter`. A `user` that is a UUID is a
/// resource id; anything else a `userName`. A time that is not RFC 3339,
/// or a cursor that is not one this gave, is a 400 naming the parameter.
pub async fn query(
    store: &dyn Store,
    tenant: &TenantId,
    filter: &AuditFilter,
) -> Result<AuditPage, Error> {
    let mut query = AuditQuery {
        client: filter.client.clone(),
        since: filter
            .since
            .as_deref()
            .map(|text| instant("since", text))
            .transpose()?,
        until: filter
            .until
            .as_deref()
            .map(|text| instant("until", text))
            .transpose()?,
        limit: filter.count.clamp(1, MAX_PAGE),
        ..AuditQuery::default()
    };
    if let Some(user) = &filter.user {
        match uuid::Uuid::try_parse(user) {
            Ok(id) => query.resource_id = Some(ResourceId(id.hyphenated().to_string())),
            Err(_) => query.user_name = Some(user.clone()),
        }
    }
    if let Some(cursor) = &filter.cursor {
        query.after = cursor.parse().map_err(|_| {
            ScimError::invalid_value(format!(
                "cursor: '{cursor}' is not a cursor this endpoint gave (a position number)"
            ))
        })?;
    }
    let entries = store.audit_entries(tenant, &query).await?;
    let next_cursor = match entries.last() {
        Some(last) if entries.len() as u64 == query.limit => Some(last.position.to_string()),
        _ => None,
    };
    Ok(AuditPage {
        entries: entries.iter().map(|entry| entry.to_json()).collect(),
        next_cursor,
    })
}

/// Every entry of `tenant` matching `filter` (its cursor and count
/// ignored), page by page, for an export: `visit` gets each in order.
pub async fn export(
    store: &dyn Store,
    tenant: &TenantId,
    filter: &AuditFilter,
    mut visit: impl FnMut(Value) -> Result<(), Error>,
) -> Result<u64, Error> {
    let mut filter = AuditFilter {
        cursor: None,
        count: MAX_PAGE,
        ..filter.clone()
    };
    let mut count = 0;
    loop {
        let page = query(store, tenant, &filter).await?;
        for entry in page.entries {
            visit(entry)?;
            count += 1;
        }
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return Ok(count),
        }
    }
}

/// Verifies the tenant's chain: `Ok(Ok((entries, head hash)))` when
/// intact, `Ok(Err(first bad entry))` otherwise.
pub async fn verify(
    store: &dyn Store,
    tenant: &TenantId,
) -> Result<Result<(u64, String), Broken>, Error> {
    Ok(store.verify_audit(tenant).await?)
}

/// An RFC 3339 instant as the stores compare it: UTC, milliseconds, `Z`.
fn instant(parameter: &str, text: &str) -> Result<String, ScimError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ScimError::invalid_value(format!(
            "{parameter}: '{text}' is not an RFC 3339 date-time (for example 2026-01-31T08:00:00Z)"
        ))
    })?;
    let utc = parsed.to_offset(time::UtcOffset::UTC);
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    ))
}

#[cfg(test)]
mod tests {
    use super::instant;

    #[test]
    fn instants_are_normalised() {
        assert_eq!(
            instant("since", "2026-01-31T09:00:00+01:00")
                .ok()
                .as_deref(),
            Some("2026-01-31T08:00:00.000Z")
        );
        assert!(instant("since", "yesterday").is_err());
    }
}
