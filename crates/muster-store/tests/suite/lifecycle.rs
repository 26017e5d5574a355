//! Soft delete, restore and purge (`muster_store::lifecycle::LifecycleStore`)
//! on every backend.

use muster_store::{
    ChangeKind, NewResource, Precondition, Removal, ResourceId, Retention, Store, StoreError,
};
use serde_json::{json, Value};

use super::{actor, group, member, new, tenant};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn person(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": external_id,
        "emails": [{"value": format!("{user_name}@mail.example")}],
    })
}

fn within() -> Retention {
    Retention::OlderThan(std::time::Duration::from_secs(86_400))
}

async fn soft_delete(store: &dyn Store, id: &ResourceId) {
    store
        .soft_delete(
            &tenant(),
            &actor(),
            "User",
            id,
            Precondition::None,
            Removal::default(),
        )
        .await
        .expect("soft delete");
}

async fn restore(store: &dyn Store, id: &ResourceId, resource: Value) -> Result<u64, StoreError> {
    store
        .restore(
            &tenant(),
            &actor(),
            "User",
            id,
            NewResource {
                resource,
                ..NewResource::default()
            },
            within(),
        )
        .await
        .map(|stored| stored.version)
}

/// A soft delete removes the live row as a delete does (the name is free,
/// the groups lose the member, a `Delete` record) and keeps a tombstone.
pub async fn soft_delete_keeps_a_tombstone(store: &dyn Store) {
    let alice = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(person("alice", "Ext-1"), vec![]),
        )
        .await
        .unwrap();
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    let before = store
        .get(&tenant(), "User", &alice.id, false)
        .await
        .unwrap();
    soft_delete(store, &alice.id).await;

    assert!(matches!(
        store.get(&tenant(), "User", &alice.id, false).await,
        Err(StoreError::NotFound(_))
    ));
    let team_now = store.get(&tenant(), "Group", &team.id, true).await.unwrap();
    assert!(
        team_now.resource.get("members").is_none(),
        "{}",
        team_now.resource
    );
    let head = store.changes(&tenant(), 0, 1000).await.unwrap();
    assert!(head
        .iter()
        .any(|change| change.kind == ChangeKind::Delete && change.resource_id == alice.id));

    let tombstone = store
        .tombstone(&tenant(), &alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tombstone.user_name.as_deref(), Some("alice"));
    assert_eq!(tombstone.external_id.as_deref(), Some("Ext-1"));
    assert_eq!(tombstone.groups, vec![team.id.clone()]);
    assert_eq!(tombstone.version, before.version);
    assert_eq!(tombstone.deleted_by, actor().client);
    assert_eq!(
        tombstone.resource.as_ref().unwrap()["emails"][0]["value"],
        json!("alice@mail.example")
    );
    assert!(!tombstone.purged());

    // The name is free; the external id finds the tombstone, exactly.
    store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(person("ALICE", "other"), vec![]),
        )
        .await
        .unwrap();
    let found = store
        .restorable_by_external_id(&tenant(), "User", "Ext-1", within())
        .await
        .unwrap();
    assert_eq!(found, Some(alice.id.clone()));
    for other in ["ext-1", "Ext-2"] {
        let found = store
            .restorable_by_external_id(&tenant(), "User", other, within())
            .await
            .unwrap();
        assert_eq!(found, None, "{other}");
    }
    let listed = store.tombstones(&tenant(), "User", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        store.tenants_with_tombstones().await.unwrap(),
        vec![tenant()]
    );
}

/// A restore gives the same id, a version above the deleted one, the
/// groups that still exist; a second restore finds nothing; a taken name
/// is a conflict that changes nothing.
pub async fn restore_brings_the_same_id_back(store: &dyn Store) {
    let bob = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(person("bob", "ext-bob"), vec![]),
        )
        .await
        .unwrap();
    let kept = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("kept"), vec![member(&bob.id)]),
        )
        .await
        .unwrap();
    let gone = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("gone"), vec![member(&bob.id)]),
        )
        .await
        .unwrap();
    let before = store.get(&tenant(), "User", &bob.id, false).await.unwrap();
    soft_delete(store, &bob.id).await;
    store
        .delete(&tenant(), &actor(), "Group", &gone.id, Precondition::None)
        .await
        .unwrap();

    // Taken meanwhile: a conflict naming userName, nothing changed.
    let squatter = store
        .create(&tenant(), &actor(), "User", new(person("Bob", "x"), vec![]))
        .await
        .unwrap();
    match restore(store, &bob.id, person("bob", "ext-bob")).await {
        Err(StoreError::Conflict(detail)) => assert!(detail.contains("userName"), "{detail}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(store.tombstone(&tenant(), &bob.id).await.unwrap().is_some());
    store
        .delete(
            &tenant(),
            &actor(),
            "User",
            &squatter.id,
            Precondition::None,
        )
        .await
        .unwrap();

    let version = restore(store, &bob.id, person("bob", "ext-bob"))
        .await
        .unwrap();
    assert!(version > before.version, "{version} > {}", before.version);
    let read = store.get(&tenant(), "User", &bob.id, false).await.unwrap();
    assert_eq!(
        read.resource["meta"]["created"],
        before.resource["meta"]["created"]
    );
    let groups: Vec<&str> = read.resource["groups"]
        .as_array()
        .map(|groups| groups.iter().filter_map(|g| g["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(groups, vec![kept.id.0.as_str()]);
    assert!(store.tombstone(&tenant(), &bob.id).await.unwrap().is_none());
    assert!(matches!(
        restore(store, &bob.id, person("bob", "ext-bob")).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A purge erases the tombstone's personal data and the payloads of the
/// user's change records, keeps the skeleton, and cannot be restored.
pub async fn purge_erases_personal_data(store: &dyn Store) {
    let carol = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(person("carol.zq", "ext-carol"), vec![]),
        )
        .await
        .unwrap();
    let dave = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(person("dave.zq", "ext-dave"), vec![]),
        )
        .await
        .unwrap();
    soft_delete(store, &carol.id).await;
    soft_delete(store, &dave.id).await;

    let purged = store.purge(&tenant(), &actor(), &carol.id).await.unwrap();
    assert!(purged.purged());
    assert_eq!(purged.resource, None);
    assert_eq!(purged.user_name, None);
    assert_eq!(purged.external_id, None);
    assert!(purged.unmapped.is_empty() && purged.groups.is_empty());
    assert_eq!(purged.id, carol.id);
    assert_eq!(purged.purged_by.as_deref(), Some(actor().client.as_str()));
    let records = store.changes(&tenant(), 0, 1000).await.unwrap();
    for change in records
        .iter()
        .filter(|change| change.resource_id == carol.id)
    {
        let text = change.payload.to_json().to_string();
        assert!(
            !text.contains("carol.zq") && !text.contains("ext-carol"),
            "{text}"
        );
    }
    assert!(records
        .iter()
        .filter(|change| change.resource_id == dave.id)
        .any(|change| change.payload.to_json().to_string().contains("dave.zq")));
    assert!(matches!(
        restore(store, &carol.id, person("carol.zq", "ext-carol")).await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(
        store
            .restorable_by_external_id(&tenant(), "User", "ext-carol", within())
            .await
            .unwrap(),
        None
    );
    // Again: nothing changes.
    let again = store.purge(&tenant(), &actor(), &carol.id).await.unwrap();
    assert_eq!(again.purged_at, purged.purged_at);

    // Expired ones only: nothing is older than a day; everything is older
    // than a future instant.
    assert!(store
        .purge_expired(&tenant(), &actor(), within())
        .await
        .unwrap()
        .is_empty());
    let future = Retention::Before("2999-01-01T00:00:00Z".to_owned());
    let expired = store
        .purge_expired(&tenant(), &actor(), future)
        .await
        .unwrap();
    assert_eq!(expired, vec![dave.id.clone()]);
    assert!(store.tenants_with_tombstones().await.unwrap().is_empty());
    assert!(matches!(
        store
            .purge(&tenant(), &actor(), &ResourceId("nobody".to_owned()))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
