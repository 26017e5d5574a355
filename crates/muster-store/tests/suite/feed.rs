//! The change feed as its consumers see it (issue 11) and the sync engine's
//! tables, on any backend: commit order from a cursor while two stores on
//! one database write, typed delete payloads, consumer cursors, pruning,
//! targets, deliveries, dead letters, the head and a resource's history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use muster_store::sync::{DeliveredObject, NewDeadLetter, SyncStore};
use muster_store::{
    ChangeKind, ChangePayload, ChangeRecord, DeletedIdentity, NewResource, Precondition,
    ResourceId, Retention, Store, StoreError, FEED_HEAD,
};
use serde_json::{json, Value};

use super::{actor, create, replace, tenant, update};

/// A User with an externalId.
fn user(name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": name, "externalId": format!("ext-{name}")})
}

/// How long a committed record may take to reach the feed.
const SETTLING: Duration = Duration::from_secs(30);

/// The sequences of the whole feed.
async fn sequences(store: &dyn Store) -> Vec<u64> {
    let records = store.changes(&tenant(), 0, u64::MAX).await.unwrap();
    records.iter().map(|record| record.sequence).collect()
}

/// The feed after `after` once it holds at least `count` records: a
/// backend may hand a committed record to readers a moment later
/// (PostgreSQL waits for the transactions that began before it to end;
/// SQLite has it at once).
pub async fn settled(store: &dyn Store, after: u64, count: usize) -> Vec<ChangeRecord> {
    let deadline = Instant::now() + SETTLING;
    loop {
        let records = store.changes(&tenant(), after, u64::MAX).await.unwrap();
        if records.len() >= count || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The sequences of the whole feed once it holds `count` records.
async fn settled_sequences(store: &dyn Store, count: usize) -> Vec<u64> {
    let records = settled(store, 0, count).await;
    records.iter().map(|record| record.sequence).collect()
}

/// Writers on two stores sharing one database (as `muster serve` and a CLI
/// command do, or two replicas) while a reader follows the feed from its
/// cursor: the reader never gets a record at or below a sequence it has
/// passed, and what it collected is exactly the whole feed, so no record
/// was committed behind its cursor. Failed writes (duplicate names, rolled
/// back) are among them. Once the writers are done, the reader reads on
/// until it has every record (or the settling time is over).
pub async fn a_reader_from_a_cursor_never_sees_a_gap_filled_later(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let store = match writer % 2 {
            0 => Arc::clone(&first),
            _ => Arc::clone(&second),
        };
        writers.push(tokio::spawn(async move {
            for index in 0..120 {
                let name = format!("w{writer}-{index}");
                create(&*store, "User", user(&name)).await;
                if index % 10 == 0 {
                    // A duplicate: refused, rolled back.
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
    let reader = Arc::clone(&second);
    let reading = Arc::clone(&done);
    let follower = tokio::spawn(async move {
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut deadline = None;
        loop {
            let finished = reading.load(Ordering::SeqCst);
            if finished && deadline.is_none() {
                deadline = Some(Instant::now() + SETTLING);
            }
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
                let complete = seen.len() == 4 * 120;
                if deadline.is_some_and(|deadline| complete || Instant::now() > deadline) {
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

pub async fn deletes_name_what_was_deleted(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let team = create(
        store,
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
    let records = settled(store, 0, 4).await;
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

pub async fn consumers_keep_cursors_that_never_move_back(store: &dyn Store) {
    let name = "target:genesys";
    assert_eq!(store.consumer_cursor(&tenant(), name).await.unwrap(), None);
    for index in 0..3 {
        create(store, "User", user(&format!("u{index}"))).await;
    }
    let all = settled_sequences(store, 3).await;
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
    let advance = |sequence: u64| async move {
        store
            .advance_consumer(&tenant(), name, sequence)
            .await
            .unwrap()
    };
    assert_eq!(advance(all[1]).await, all[1]);
    assert_eq!(advance(all[0]).await, all[1]);
    assert_eq!(advance(head + 1_000).await, head);
    assert_eq!(
        store.consumer_cursor(&tenant(), name).await.unwrap(),
        Some(head)
    );
    let consumers = store.list_consumers(&tenant()).await.unwrap();
    let listed: Vec<(&str, u64)> = consumers
        .iter()
        .map(|consumer| (consumer.name.as_str(), consumer.cursor))
        .collect();
    assert_eq!(listed, [("late", head), (name, head)]);
    for consumer in &consumers {
        // RFC 3339 UTC with milliseconds, as `meta` writes instants.
        for instant in [&consumer.registered, &consumer.updated] {
            assert_eq!(instant.len(), 24, "{instant}");
            assert!(instant.ends_with('Z'), "{instant}");
        }
    }
    assert!(matches!(
        store.advance_consumer(&tenant(), "nobody", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.remove_consumer(&tenant(), name).await.unwrap());
    assert!(!store.remove_consumer(&tenant(), name).await.unwrap());
    assert_eq!(store.consumer_cursor(&tenant(), name).await.unwrap(), None);
}

pub async fn pruning_keeps_what_a_consumer_has_not_passed(store: &dyn Store) {
    for index in 0..5 {
        create(store, "User", user(&format!("u{index}"))).await;
    }
    let all = settled_sequences(store, 5).await;
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
    assert_eq!(sequences(store).await, all[2..]);
    // Without consumers, by age alone.
    store.remove_consumer(&tenant(), "fast").await.unwrap();
    store.remove_consumer(&tenant(), "slow").await.unwrap();
    assert_eq!(
        store.prune_changes(&tenant(), later.clone()).await.unwrap(),
        3
    );
    assert!(sequences(store).await.is_empty());
    // Sequences go on from where they were, never reused; a consumer
    // registered at the head of an empty feed misses nothing new.
    let head = store
        .register_consumer(&tenant(), "new", FEED_HEAD)
        .await
        .unwrap();
    assert_eq!(head, *all.last().unwrap());
    create(store, "User", user("next")).await;
    let next = settled(store, head, 1).await;
    assert_eq!(next.len(), 1);
    assert!(next[0].sequence > head);
    // An unreadable instant is refused.
    let refused = store
        .prune_changes(&tenant(), Retention::Before("yesterday".to_owned()))
        .await;
    assert!(matches!(refused, Err(StoreError::Scim(_))), "{refused:?}");
}

/// The head and a resource's history follow the feed's sequences.
pub async fn change_head_and_resource_history<S: Store + SyncStore>(store: &S) {
    assert_eq!(store.change_head(&tenant()).await.unwrap(), 0);
    let alice = create(store, "User", user("alice")).await;
    create(store, "User", user("bob")).await;
    update(store, "User", &alice.id, replace(user("alice2")))
        .await
        .unwrap();
    store
        .delete(&tenant(), &actor(), "User", &alice.id, Precondition::None)
        .await
        .unwrap();
    let all = settled_sequences(store, 4).await;
    assert_eq!(
        store.change_head(&tenant()).await.unwrap(),
        *all.last().unwrap()
    );
    let history = store
        .resource_history(&tenant(), "User", &alice.id, 10)
        .await
        .unwrap();
    let summary: Vec<(u64, &str, Option<&Value>)> = history
        .iter()
        .map(|change| {
            let name = change.after.as_ref().map(|after| &after["userName"]);
            (change.sequence, change.client.as_str(), name)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (all[3], "suite", None),
            (all[2], "suite", Some(&json!("alice2"))),
            (all[0], "suite", Some(&json!("alice"))),
        ]
    );
    assert!(history.iter().all(|change| change.at.ends_with('Z')));
    let newest = store
        .resource_history(&tenant(), "User", &alice.id, 1)
        .await
        .unwrap();
    assert_eq!(newest, history[..1]);
    let nobody = ResourceId("nobody".to_owned());
    assert!(store
        .resource_history(&tenant(), "User", &nobody, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Targets: put (again, keeping what the engine recorded), pause and
/// resume (confirming the head), state, removal with everything of the
/// target.
pub async fn targets_round_trip<S: Store + SyncStore>(store: &S) {
    let document = r#"{"name":"genesys","kind":"scim", "url": "https://x"}"#;
    let put = store
        .put_target(&tenant(), &actor(), "genesys", document)
        .await
        .unwrap();
    assert_eq!(put.document, document, "kept verbatim");
    assert_eq!((put.paused, put.state.as_str()), (None, ""));
    assert_eq!((put.client.as_str(), put.guard_confirmed), ("suite", 0));
    assert_eq!(put.created.len(), 24, "{}", put.created);
    assert_eq!(put.created, put.updated);
    store
        .put_target(&tenant(), &actor(), "five9", "{}")
        .await
        .unwrap();
    let names = |targets: Vec<_>| {
        targets
            .into_iter()
            .map(|target: muster_store::sync::TargetRecord| target.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.targets(&tenant()).await.unwrap()),
        ["five9", "genesys"]
    );
    let all: Vec<(_, String)> = store
        .all_targets()
        .await
        .unwrap()
        .into_iter()
        .map(|(tenant, target)| (tenant, target.name))
        .collect();
    assert_eq!(
        all,
        [
            (tenant(), "five9".to_owned()),
            (tenant(), "genesys".to_owned())
        ]
    );

    // Paused with a reason; a put keeps the pause and the state.
    store
        .set_target_paused(&tenant(), "genesys", Some("3 removals"))
        .await
        .unwrap();
    store
        .set_target_state(&tenant(), "genesys", r#"{"ok":true}"#)
        .await
        .unwrap();
    let again = store
        .put_target(&tenant(), &actor(), "genesys", "{}")
        .await
        .unwrap();
    assert_eq!(again.document, "{}");
    assert_eq!(again.paused.as_deref(), Some("3 removals"));
    assert_eq!(again.state, r#"{"ok":true}"#);
    assert_eq!(again.created, put.created);
    // Resuming confirms every change so far.
    create(store, "User", user("alice")).await;
    settled(store, 0, 1).await;
    store
        .set_target_paused(&tenant(), "genesys", None)
        .await
        .unwrap();
    let resumed = store.target(&tenant(), "genesys").await.unwrap().unwrap();
    assert_eq!(resumed.paused, None);
    assert_eq!(
        resumed.guard_confirmed,
        store.change_head(&tenant()).await.unwrap()
    );
    assert!(resumed.guard_confirmed > 0);
    let error = store
        .set_target_paused(&tenant(), "nobody", None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");

    // Removal takes the target's deliveries and dead letters with it.
    let id = ResourceId("u1".to_owned());
    store
        .record_delivery(&tenant(), "genesys", delivery(&id, "r1"))
        .await
        .unwrap();
    store
        .add_dead_letter(&tenant(), "genesys", letter(&id))
        .await
        .unwrap();
    assert!(store.remove_target(&tenant(), "genesys").await.unwrap());
    assert!(!store.remove_target(&tenant(), "genesys").await.unwrap());
    assert_eq!(store.target(&tenant(), "genesys").await.unwrap(), None);
    assert!(store
        .delivered(&tenant(), "genesys", "User", &id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .dead_letters(&tenant(), None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(names(store.targets(&tenant()).await.unwrap()), ["five9"]);
}

/// What the engine records of a delivery of `id` with `remote_id`.
fn delivery(id: &ResourceId, remote_id: &str) -> DeliveredObject {
    DeliveredObject {
        resource_type: "User".to_owned(),
        resource_id: id.clone(),
        remote_id: Some(remote_id.to_owned()),
        sent: json!({"userName": "a", "active": true, "n": 1.5, "members": ["x"]}),
        delivered: "2026-01-02T03:04:05.123456789Z".to_owned(),
        status: Some(201),
        answer: Some("created".to_owned()),
        deprovisioned: false,
    }
}

/// A dead letter about `id`.
fn letter(id: &ResourceId) -> NewDeadLetter {
    NewDeadLetter {
        resource_type: "User".to_owned(),
        resource_id: id.clone(),
        request: json!({"method": "POST", "url": "https://x/Users", "body": {"a": [1, null]}}),
        response: json!({"status": 400, "body": "bad"}),
        reason: "refused".to_owned(),
    }
}

/// Deliveries round-trip verbatim and are replaced per resource; dead
/// letters are numbered, listed per target and taken once.
pub async fn deliveries_and_dead_letters<S: Store + SyncStore>(store: &S) {
    let (first, second) = (ResourceId("b".to_owned()), ResourceId("a".to_owned()));
    let target = "genesys";
    store
        .record_delivery(&tenant(), target, delivery(&first, "r1"))
        .await
        .unwrap();
    store
        .record_delivery(&tenant(), target, delivery(&second, "r2"))
        .await
        .unwrap();
    assert_eq!(
        store
            .delivered(&tenant(), target, "User", &first)
            .await
            .unwrap(),
        Some(delivery(&first, "r1"))
    );
    let replaced = DeliveredObject {
        remote_id: None,
        status: None,
        answer: None,
        deprovisioned: true,
        sent: json!({}),
        ..delivery(&first, "r1")
    };
    store
        .record_delivery(&tenant(), target, replaced.clone())
        .await
        .unwrap();
    assert_eq!(
        store
            .delivered_all(&tenant(), target, "User")
            .await
            .unwrap(),
        [delivery(&second, "r2"), replaced]
    );
    assert!(store
        .delivered_all(&tenant(), "other", "User")
        .await
        .unwrap()
        .is_empty());
    store
        .forget_delivery(&tenant(), target, "User", &first)
        .await
        .unwrap();
    assert!(store
        .delivered(&tenant(), target, "User", &first)
        .await
        .unwrap()
        .is_none());

    let one = store
        .add_dead_letter(&tenant(), target, letter(&first))
        .await
        .unwrap();
    let two = store
        .add_dead_letter(&tenant(), "five9", letter(&second))
        .await
        .unwrap();
    assert!(two > one);
    let letters = store.dead_letters(&tenant(), None).await.unwrap();
    let listed: Vec<(u64, &str)> = letters
        .iter()
        .map(|letter| (letter.id, letter.target.as_str()))
        .collect();
    assert_eq!(listed, [(one, target), (two, "five9")]);
    assert_eq!(letters[0].request, letter(&first).request);
    assert_eq!(letters[0].response, letter(&first).response);
    assert_eq!(
        (letters[0].resource_id.clone(), letters[0].reason.as_str()),
        (first.clone(), "refused")
    );
    assert_eq!(letters[0].at.len(), 24, "{}", letters[0].at);
    let of_five9 = store.dead_letters(&tenant(), Some("five9")).await.unwrap();
    assert_eq!(of_five9, letters[1..]);
    let taken = store.take_dead_letter(&tenant(), one).await.unwrap();
    assert_eq!(taken.as_ref(), Some(&letters[0]));
    assert_eq!(store.take_dead_letter(&tenant(), one).await.unwrap(), None);
    assert_eq!(store.dead_letters(&tenant(), None).await.unwrap(), of_five9);
}

/// A target's lease goes to one holder at a time, is renewed by it, and
/// passes to another once it expires; a target that does not exist has no
/// lease to give.
pub async fn target_leases_go_to_one_holder_until_they_expire<S: Store + SyncStore>(store: &S) {
    use std::time::Duration;
    store
        .put_target(&tenant(), &actor(), "genesys", "{}")
        .await
        .unwrap();
    let lease = |holder: &'static str, ttl: Duration| async move {
        store
            .lease_target(&tenant(), "genesys", holder, ttl)
            .await
            .unwrap()
    };
    let long = Duration::from_secs(60);
    assert!(lease("replica-a", long).await, "a free lease is taken");
    assert!(!lease("replica-b", long).await, "held by another");
    assert!(lease("replica-a", long).await, "renewed by its holder");
    assert!(!lease("replica-b", long).await, "still held by another");
    // A short lease runs out, and the other replica takes over.
    assert!(lease("replica-a", Duration::from_millis(200)).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(lease("replica-b", long).await, "an expired lease moves");
    assert!(!lease("replica-a", long).await, "and is not taken back");
    assert!(!store
        .lease_target(&tenant(), "nowhere", "replica-a", long)
        .await
        .unwrap());
}
