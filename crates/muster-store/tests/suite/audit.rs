//! The audit trail on every backend: an entry per change in the change's
//! transaction, in order, with every field; secrets redacted in every
//! spelling; filters; the purge's redaction keeps the chain verifiable;
//! and an edit, a deletion or a swap made with SQL is found.

use std::future::Future;
use std::pin::Pin;

use muster_scim::schema::builtin::USER_SCHEMA;
use muster_store::audit::{AuditEvent, AuditQuery};
use muster_store::{
    Actor, NewResource, Precondition, ResourceId, Store, StoredResource, Update, UpdateFn,
};
use serde_json::{json, Value};

use super::{actor, tenant};

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bXVzdGVyc2FsdDAwMDE$Q2xlYXJseU5vdEFSZWFsSGFzaEJ1dFdlbGxGb3JtZWQ";
const NEW_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bXVzdGVyc2FsdDAwMDI$QW5vdGhlckhhc2hXZWxsRm9ybWVkVG9vMDEyMzQ1Njc";
const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const SECRET: &str = "Vault-Secret-4242";
const NEW_SECRET: &str = "Vault-Secret-9999";
const PIN: &str = "Pin-8731";

/// The never-returned paths, in the spellings a server may name them.
fn never_returned() -> Vec<String> {
    vec![
        format!("{}:SECRET", ACME.to_uppercase()),
        format!("{ACME}:badges.Pin"),
    ]
}

fn alice(password: &str, secret: &str, display: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ACME],
        "userName": "alice",
        "displayName": display,
        "password": password,
        ACME: {"region": "EU", "secret": secret, "badges": [{"site": "Oslo", "pin": PIN}]},
    })
}

fn replace(resource: Value) -> UpdateFn {
    Box::new(move |_| {
        Ok(Some(Update {
            resource,
            never_returned: never_returned(),
            ..Update::default()
        }))
    })
}

async fn history(store: &dyn Store) -> StoredResource {
    let other = Actor {
        client: "other-client".to_owned(),
        request_id: "request-2".to_owned(),
    };
    let created = store
        .create(
            &tenant(),
            &actor(),
            "User",
            NewResource {
                resource: alice(HASH, SECRET, "Alice"),
                never_returned: never_returned(),
                ..NewResource::default()
            },
        )
        .await
        .unwrap();
    store
        .update(
            &tenant(),
            &other,
            "User",
            &created.id,
            Precondition::None,
            false,
            replace(alice(NEW_HASH, NEW_SECRET, "Alice A.")),
        )
        .await
        .unwrap();
    store
        .set_setting(&tenant(), &actor(), "undeclaredAttributes", "capture")
        .await
        .unwrap();
    store
        .delete(&tenant(), &actor(), "User", &created.id, Precondition::None)
        .await
        .unwrap();
    created
}

fn all() -> AuditQuery {
    AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    }
}

/// Entries in order with every field; secrets redacted; filters.
pub async fn entries_follow_changes(store: &dyn Store) {
    let alice = history(store).await;
    let entries = store.audit_entries(&tenant(), &all()).await.unwrap();
    let operations: Vec<(u64, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry.position,
                entry.skeleton["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        operations,
        [(1, "create"), (2, "update"), (3, "setting"), (4, "delete")]
    );
    let created = entries[0].to_json();
    for (key, expected) in [
        ("tenant", json!("default")),
        ("client", json!("suite")),
        ("requestId", json!("request-1")),
        ("resourceType", json!("User")),
        ("resourceId", json!(alice.id.0)),
        ("version", json!(1)),
        ("userName", json!("alice")),
        ("position", json!(1)),
    ] {
        assert_eq!(created[key], expected, "{key} in {created}");
    }
    assert!(created["at"].as_str().unwrap().ends_with('Z'), "{created}");
    let changes = created["changes"].as_array().unwrap();
    let change = |path: &str| {
        changes
            .iter()
            .find(|change| change["path"] == path)
            .unwrap_or_else(|| panic!("no change at {path} in {created}"))
            .clone()
    };
    assert_eq!(change("userName")["after"], "alice");
    assert_eq!(change("password")["after"], "[redacted]");
    assert_eq!(change(&format!("{ACME}:secret"))["after"], "[redacted]");
    assert_eq!(
        change(&format!("{ACME}:badges"))["after"],
        json!([{"site": "Oslo", "pin": "[redacted]"}])
    );
    let updated = entries[1].to_json();
    assert_eq!(updated["client"], "other-client");
    assert_eq!(updated["requestId"], "request-2");
    assert_eq!(updated["version"], 2);
    assert_eq!(
        updated["changes"],
        json!([
            {"path": "displayName", "before": "Alice", "after": "Alice A."},
            {"path": "password", "before": "[redacted]", "after": "[redacted]"},
            {"path": format!("{ACME}:secret"), "before": "[redacted]", "after": "[redacted]"},
        ]),
        "{updated}"
    );
    let setting = entries[2].to_json();
    assert_eq!(setting["resourceType"], "Setting");
    assert_eq!(setting["payload"]["value"], "capture");
    let deleted = entries[3].to_json();
    assert_eq!(
        deleted["payload"]["deleted"]["userName"], "alice",
        "{deleted}"
    );
    // No secret anywhere in what is stored.
    let links = store.audit_links(&tenant(), 0, 100).await.unwrap();
    assert_eq!(links.len(), 4);
    for link in &links {
        let text = format!(
            "{}{}",
            link.skeleton,
            link.detail.clone().unwrap_or_default()
        );
        for secret in [HASH, NEW_HASH, SECRET, NEW_SECRET, PIN, "argon2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // Filters.
    let positions = |query: AuditQuery| async move {
        store
            .audit_entries(&tenant(), &query)
            .await
            .unwrap()
            .iter()
            .map(|entry| entry.position)
            .collect::<Vec<_>>()
    };
    let by = |edit: fn(&mut AuditQuery)| {
        let mut query = all();
        edit(&mut query);
        query
    };
    assert_eq!(
        positions(by(|q| q.client = Some("other-client".into()))).await,
        [2]
    );
    assert_eq!(
        positions(by(|q| q.user_name = Some("ALICE".into()))).await,
        [1, 2, 4]
    );
    assert_eq!(positions(by(|q| q.after = 2)).await, [3, 4]);
    assert_eq!(positions(by(|q| q.limit = 2)).await, [1, 2]);
    assert_eq!(
        positions(by(|q| q.since = Some("2999-01-01T00:00:00Z".into()))).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        positions(by(|q| q.until = Some("2999-01-01T00:00:00Z".into()))).await,
        [1, 2, 3, 4]
    );
    let mut query = all();
    query.resource_id = Some(alice.id.clone());
    assert_eq!(positions(query).await, [1, 2, 4]);
    // Another tenant sees none of it.
    let other = muster_store::TenantId("no-such-tenant".to_owned());
    assert!(store
        .audit_entries(&other, &all())
        .await
        .unwrap()
        .is_empty());
    // The chain verifies; after a purge's redaction it still does.
    let (head, _) = store.verify_audit(&tenant()).await.unwrap().unwrap();
    assert_eq!(head, 4);
    assert_eq!(
        store
            .redact_audit_subject(&tenant(), &alice.id)
            .await
            .unwrap(),
        3
    );
    let entries = store.audit_entries(&tenant(), &all()).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|entry| entry.detail.is_none())
            .collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert_eq!(entries[0].to_json()["resourceId"], json!(alice.id.0));
    assert!(!format!("{entries:?}").contains("alice"), "{entries:?}");
    assert_eq!(
        positions(by(|q| q.user_name = Some("alice".into()))).await,
        Vec::<u64>::new()
    );
    assert!(store.verify_audit(&tenant()).await.unwrap().is_ok());
    // An event with no change record (an ignored write) is chained too.
    store
        .record_audit(
            &tenant(),
            &actor(),
            AuditEvent {
                operation: "ignored".to_owned(),
                resource_type: "User".to_owned(),
                resource_id: None,
                origin: Some("org-b".to_owned()),
                detail: json!({"reason": "foreign origin"}),
            },
        )
        .await
        .unwrap();
    let last = store
        .audit_entries(&tenant(), &by(|q| q.after = 4))
        .await
        .unwrap();
    assert_eq!(last[0].skeleton["operation"], "ignored");
    assert_eq!(last[0].skeleton["origin"], "org-b");
    assert_eq!(store.verify_audit(&tenant()).await.unwrap().unwrap().0, 5);
}

/// A rolled-back write leaves no entry.
pub async fn failed_writes_leave_no_entry(store: &dyn Store) {
    let clear = store
        .create(
            &tenant(),
            &actor(),
            "User",
            NewResource {
                resource: alice("clear-text", SECRET, "Alice"),
                ..NewResource::default()
            },
        )
        .await;
    assert!(clear.is_err());
    assert!(store
        .audit_entries(&tenant(), &all())
        .await
        .unwrap()
        .is_empty());
    let _ = ResourceId(String::new());
}

/// Runs SQL on the store's database (the triggers dropped first).
pub type Sql<'a> = &'a (dyn Fn(&'static str) -> Pin<Box<dyn Future<Output = ()> + Send>> + Sync);

/// How a test tampers with the stored chain.
#[derive(Debug, Clone, Copy)]
pub enum Tamper {
    /// Entry 2's detail edited.
    Edit,
    /// Entry 2 deleted.
    Delete,
    /// Entries 2 and 3 swapped.
    Swap,
    /// The last entry (4) deleted.
    Truncate,
    /// Entry 1's skeleton edited (the client named).
    EditSkeleton,
}

/// `tamper` applied with SQL is found at the entry concerned.
pub async fn tampering_is_found(store: &dyn Store, tamper: Tamper, sql: Sql<'_>) {
    history(store).await;
    assert!(store.verify_audit(&tenant()).await.unwrap().is_ok());
    let statement = match tamper {
        Tamper::Edit => {
            "UPDATE audit_log SET detail = replace(detail, 'Alice A.', 'Mallory')
             WHERE tenant_id = 'default' AND position = 2"
        }
        Tamper::Delete => "DELETE FROM audit_log WHERE tenant_id = 'default' AND position = 2",
        Tamper::Swap => {
            "UPDATE audit_log SET position = position + 1000
                 WHERE tenant_id = 'default' AND position IN (2, 3);
             UPDATE audit_log SET position = 1005 - position
                 WHERE tenant_id = 'default' AND position > 1000"
        }
        Tamper::Truncate => "DELETE FROM audit_log WHERE tenant_id = 'default' AND position = 4",
        Tamper::EditSkeleton => {
            "UPDATE audit_log SET skeleton = replace(skeleton, 'suite', 'nobody')
             WHERE tenant_id = 'default' AND position = 1"
        }
    };
    sql(statement).await;
    let broken = store.verify_audit(&tenant()).await.unwrap().unwrap_err();
    let expected = match tamper {
        Tamper::Edit | Tamper::Delete | Tamper::Swap => 2,
        Tamper::Truncate => 3,
        Tamper::EditSkeleton => 1,
    };
    assert_eq!(broken.position, expected, "{tamper:?}: {broken}");
}
