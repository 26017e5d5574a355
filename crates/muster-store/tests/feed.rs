//! The change feed as its consumers see it (issue 11): typed payloads
//! (deletes name who was deleted, legacy rows still read), commit order
//! from a cursor while writers write (also two stores sharing one file, as
//! the CLI and the server do), consumer cursors, and pruning.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use muster_store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{
    Actor, ChangeKind, ChangePayload, DeletedIdentity, MembershipDelta, NewResource, Precondition,
    ResourceId, Retention, Store, StoreError, StoredResource, TenantId, FEED_HEAD,
};
use serde_json::{json, Value};

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn actor() -> Actor {
    Actor {
        client: "feed".to_owned(),
        request_id: "r".to_owned(),
    }
}

fn open(dir: &Path) -> Arc<SqliteStore> {
    let options = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    Arc::new(SqliteStore::open_with(dir, &options).unwrap())
}

async fn create(store: &dyn Store, resource_type: &str, resource: Value) -> StoredResource {
    let new = NewResource {
        resource,
        ..NewResource::default()
    };
    store
        .create(&tenant(), &actor(), resource_type, new)
        .await
        .unwrap()
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": name, "externalId": format!("ext-{name}")})
}

/// The sequences of the whole feed.
async fn sequences(store: &dyn Store) -> Vec<u64> {
    let records = store.changes(&tenant(), 0, u64::MAX).await.unwrap();
    records.iter().map(|record| record.sequence).collect()
}

/// Writers on two stores sharing one file (as `muster serve` and a CLI
/// command do) while a reader follows the feed from its cursor: the reader
/// never gets a record at or below a sequence it has passed, and what it
/// collected is exactly the whole feed, so no record was committed behind
/// its cursor. Failed writes (duplicate names, rolled back in their batch)
/// are among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_from_a_cursor_never_sees_a_gap_filled_later() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let second = open(dir.path());
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let store: Arc<dyn Store> = match writer % 2 {
            0 => Arc::clone(&first) as Arc<dyn Store>,
            _ => Arc::clone(&second) as Arc<dyn Store>,
        };
        writers.push(tokio::spawn(async move {
            for index in 0..120 {
                let name = format!("w{writer}-{index}");
                create(&*store, "User", user(&name)).await;
                if index % 10 == 0 {
                    // A duplicate: refused, its savepoint rolled back.
                    let new = NewResource {
                        resource: user(&name),
                        ..NewResource::default()
                    };
                    let refused = store.create(&tenant(), &actor(), "User", new).await;
                    assert!(matches!(refused, Err(StoreError::Conflict(_))));
                }
            }
        }));
    }
    let reader: Arc<dyn Store> = Arc::clone(&second) as Arc<dyn Store>;
    let reading = Arc::clone(&done);
    let follower = tokio::spawn(async move {
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let finished = reading.load(Ordering::SeqCst);
            let batch = reader.changes(&tenant(), cursor, 37).await.unwrap();
            for record in &batch {
                assert!(
                    record.sequence > cursor,
                    "{} after {cursor}",
                    record.sequence
                );
                cursor = record.sequence;
                seen.push(record.sequence);
            }
            if batch.is_empty() {
                if finished {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();
    let all = sequences(&*first).await;
    assert_eq!(all.len(), 4 * 120);
    assert_eq!(seen, all, "the reader missed records committed behind it");
}

#[tokio::test]
async fn deletes_name_what_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = create(&*store, "User", user("alice")).await;
    let team = create(
        &*store,
        "Group",
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Team", "externalId": "g-1"}),
    )
    .await;
    for (resource_type, id) in [("User", &alice.id), ("Group", &team.id)] {
        store
            .delete(&tenant(), &actor(), resource_type, id, Precondition::None)
            .await
            .unwrap();
    }
    let records = store.changes(&tenant(), 0, 100).await.unwrap();
    let deletes: Vec<(ChangeKind, &ChangePayload)> = records
        .iter()
        .skip(2)
        .map(|record| (record.kind, &record.payload))
        .collect();
    assert_eq!(
        deletes,
        [
            (
                ChangeKind::Delete,
                &ChangePayload::Deleted(DeletedIdentity {
                    id: alice.id.clone(),
                    user_name: Some("alice".to_owned()),
                    display_name: None,
                    external_id: Some("ext-alice".to_owned()),
                })
            ),
            (
                ChangeKind::Delete,
                &ChangePayload::Deleted(DeletedIdentity {
                    id: team.id.clone(),
                    user_name: None,
                    display_name: Some("Team".to_owned()),
                    external_id: Some("g-1".to_owned()),
                })
            ),
        ]
    );
}

/// Rows an older build wrote: a delete's `null`, captured values beside
/// the resource, a shape nobody knows. They read, typed, without failing.
#[tokio::test]
async fn legacy_rows_read_as_typed_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    for (kind, payload) in [
        ("delete", "null"),
        (
            "update",
            r#"{"resource":{"id":"u1","userName":"a"},"unmapped":{"Cost":"1"}}"#,
        ),
        ("update", r#"{"members":{"added":["x"],"removed":[]}}"#),
        ("update", r#"{"future":true}"#),
    ] {
        connection
            .execute(
                "INSERT INTO changes (tenant_id, kind, resource_type, resource_id, version,
                     client, request_id, at, payload)
                 VALUES ('default', ?1, 'User', 'u1', 2, 'old', 'r',
                     '2020-01-01T00:00:00.000Z', ?2)",
                rusqlite::params![kind, payload],
            )
            .unwrap();
    }
    let payloads: Vec<ChangePayload> = store
        .changes(&tenant(), 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.payload)
        .collect();
    assert_eq!(
        payloads,
        [
            ChangePayload::Deleted(DeletedIdentity {
                id: ResourceId("u1".to_owned()),
                user_name: None,
                display_name: None,
                external_id: None,
            }),
            ChangePayload::Resource {
                resource: json!({"id": "u1", "userName": "a"}),
                members: None,
                removed: None,
                rule_set: None,
            },
            ChangePayload::Members(MembershipDelta {
                added: vec![ResourceId("x".to_owned())],
                removed: vec![],
            }),
            ChangePayload::Other(json!({"future": true})),
        ]
    );
}

#[tokio::test]
async fn consumers_keep_cursors_that_never_move_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let name = "target:genesys";
    assert_eq!(store.consumer_cursor(&tenant(), name).await.unwrap(), None);
    for index in 0..3 {
        create(&*store, "User", user(&format!("u{index}"))).await;
    }
    let all = sequences(&*store).await;
    let head = *all.last().unwrap();
    // At the head when asked; registering again keeps the cursor.
    let at_head = store
        .register_consumer(&tenant(), "late", FEED_HEAD)
        .await
        .unwrap();
    assert_eq!(at_head, head);
    assert_eq!(
        store.register_consumer(&tenant(), name, 0).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .register_consumer(&tenant(), name, head)
            .await
            .unwrap(),
        0,
        "idempotent: the cursor stays"
    );
    // Forward, never back, never past the head.
    let advance = |sequence: u64| {
        let store = Arc::clone(&store);
        async move {
            store
                .advance_consumer(&tenant(), name, sequence)
                .await
                .unwrap()
        }
    };
    assert_eq!(advance(all[1]).await, all[1]);
    assert_eq!(advance(all[0]).await, all[1]);
    assert_eq!(advance(head + 1_000).await, head);
    assert_eq!(
        store.consumer_cursor(&tenant(), name).await.unwrap(),
        Some(head)
    );
    let listed: Vec<(String, u64)> = store
        .list_consumers(&tenant())
        .await
        .unwrap()
        .into_iter()
        .map(|consumer| (consumer.name, consumer.cursor))
        .collect();
    assert_eq!(listed, [("late".to_owned(), head), (name.to_owned(), head)]);
    assert!(matches!(
        store.advance_consumer(&tenant(), "nobody", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.remove_consumer(&tenant(), name).await.unwrap());
    assert!(!store.remove_consumer(&tenant(), name).await.unwrap());
    assert_eq!(store.consumer_cursor(&tenant(), name).await.unwrap(), None);
}

#[tokio::test]
async fn pruning_keeps_what_a_consumer_has_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for index in 0..5 {
        create(&*store, "User", user(&format!("u{index}"))).await;
    }
    let all = sequences(&*store).await;
    let later = Retention::Before("2999-01-01T00:00:00Z".to_owned());
    // Nothing is an hour old yet.
    let hour = Retention::OlderThan(Duration::from_secs(3600));
    assert_eq!(store.prune_changes(&tenant(), hour).await.unwrap(), 0);
    // Two consumers: the slower one holds records back.
    store.register_consumer(&tenant(), "fast", 0).await.unwrap();
    store.register_consumer(&tenant(), "slow", 0).await.unwrap();
    store
        .advance_consumer(&tenant(), "fast", all[3])
        .await
        .unwrap();
    store
        .advance_consumer(&tenant(), "slow", all[1])
        .await
        .unwrap();
    assert_eq!(
        store.prune_changes(&tenant(), later.clone()).await.unwrap(),
        2
    );
    assert_eq!(sequences(&*store).await, all[2..]);
    // Without consumers, by age alone.
    store.remove_consumer(&tenant(), "fast").await.unwrap();
    store.remove_consumer(&tenant(), "slow").await.unwrap();
    assert_eq!(
        store.prune_changes(&tenant(), later.clone()).await.unwrap(),
        3
    );
    assert!(sequences(&*store).await.is_empty());
    // Sequences go on from where they were, never reused; a consumer
    // registered at the head of an empty feed misses nothing new.
    let head = store
        .register_consumer(&tenant(), "new", FEED_HEAD)
        .await
        .unwrap();
    assert_eq!(head, *all.last().unwrap());
    create(&*store, "User", user("next")).await;
    let next = store.changes(&tenant(), head, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].sequence > head);
    // An unreadable instant is refused.
    let refused = store
        .prune_changes(&tenant(), Retention::Before("yesterday".to_owned()))
        .await;
    assert!(matches!(refused, Err(StoreError::Scim(_))), "{refused:?}");
}
