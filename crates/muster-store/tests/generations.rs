//! Issue 9 on SQLite: no stale schema decides a write, schema URNs are one
//! identity in any case, and full queues answer `Busy`.
//!
//! - The tenant's schema generation moves with every schema put or delete
//!   and every setting change; a create or update carrying an older one is
//!   refused with `StaleSchema` and writes nothing, also when the change
//!   came from another process sharing the file.
//! - Schema puts and deletes carrying a stale `expected_generation` are
//!   refused before anything (a rewrite included) runs.
//! - The writer's and the readers' queues are bounded: a call that finds
//!   its queue full is refused at once, and the calls accepted before it
//!   all complete intact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use muster_scim::schema::builtin::USER_SCHEMA;
use muster_store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{
    Actor, ChangeKind, ChangePayload, NewResource, Precondition, ResourceId, SchemaRecord, Store,
    StoreError, StoredResource, TenantId, Update, UpdateFn, VisitFn,
};
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn actor() -> Actor {
    Actor {
        client: "generations".to_owned(),
        request_id: "request-1".to_owned(),
    }
}

fn open_with(dir: &Path, tune: impl FnOnce(&mut SqliteOptions)) -> Arc<SqliteStore> {
    let mut options = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    tune(&mut options);
    Arc::new(SqliteStore::open_with(dir, &options).unwrap())
}

fn open(dir: &Path) -> Arc<SqliteStore> {
    open_with(dir, |_| {})
}

fn user(user_name: &str) -> Value {
    json!({ "schemas": [USER_SCHEMA], "userName": user_name })
}

/// A create of a user validated at `generation`.
fn new_user(user_name: &str, generation: Option<u64>) -> NewResource {
    NewResource {
        resource: user(user_name),
        schema_generation: generation,
        ..NewResource::default()
    }
}

/// The new state of a user renamed, computed at `generation`.
fn renamed(user_name: &str, generation: Option<u64>) -> Update {
    Update {
        resource: user(user_name),
        member_changes: Vec::new(),
        unmapped: None,
        unique: Vec::new(),
        schema_generation: generation,
        never_returned: Vec::new(),
        derivation: None,
    }
}

/// An update that renames the user, computed at `generation`.
fn rename(user_name: &str, generation: Option<u64>) -> UpdateFn {
    let update = renamed(user_name, generation);
    Box::new(move |_| Ok(Some(update)))
}

/// A custom User extension record under `urn` declaring `attributes`.
fn schema(urn: &str, attributes: &[&str]) -> SchemaRecord {
    let declared: Vec<Value> = attributes
        .iter()
        .map(|name| json!({ "name": name }))
        .collect();
    SchemaRecord {
        urn: urn.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({ "id": urn, "attributes": declared }),
        updated: String::new(),
        client: String::new(),
        searchable: Vec::new(),
    }
}

/// Declares a schema with no rewrite, no rederive and no expected generation.
async fn declare(store: &SqliteStore, urn: &str, attributes: &[&str]) {
    store
        .put_schema(
            &tenant(),
            &actor(),
            schema(urn, attributes),
            None,
            None,
            None,
        )
        .await
        .unwrap();
}

async fn generation(store: &SqliteStore) -> u64 {
    store.schema_generation(&tenant()).await.unwrap()
}

/// The user names stored, in creation order.
async fn user_names(store: &SqliteStore) -> Vec<String> {
    let (sender, receiver) = mpsc::channel::<String>();
    store
        .scan(
            &tenant(),
            "User",
            Box::new(move |stored: &StoredResource| {
                let name = stored.resource["userName"].as_str().unwrap().to_owned();
                sender.send(name).unwrap();
            }),
        )
        .await
        .unwrap();
    receiver.try_iter().collect()
}

async fn change_count(store: &SqliteStore) -> usize {
    store.changes(&tenant(), 0, 10_000).await.unwrap().len()
}

fn assert_stale<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: u64, current: u64) {
    match result {
        Err(StoreError::StaleSchema {
            expected: said_expected,
            current: said_current,
        }) => assert_eq!((said_expected, said_current), (expected, current)),
        other => panic!("expected StaleSchema {{ {expected}, {current} }}, got {other:?}"),
    }
}

/// A create validated before a schema put is refused and writes nothing;
/// validated at the generation the put left, it succeeds. The generation
/// `tenant_schemas` reports is the one of the schemas it lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_validated_at_an_old_generation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (before, schemas) = store.tenant_schemas(&tenant()).await.unwrap();
    assert!(schemas.is_empty());
    assert_eq!(before, generation(&store).await);

    declare(&store, CONTOSO, &["region"]).await;
    let (after, schemas) = store.tenant_schemas(&tenant()).await.unwrap();
    assert_ne!(after, before, "a schema put moves the generation on");
    assert_eq!(after, generation(&store).await);
    assert_eq!(schemas.len(), 1);
    let changes = change_count(&store).await;

    let refused = store
        .create(&tenant(), &actor(), "User", new_user("ann", Some(before)))
        .await;
    assert_stale(refused, before, after);
    assert_eq!(user_names(&store).await, Vec::<String>::new());
    assert_eq!(change_count(&store).await, changes, "no change record");

    store
        .create(&tenant(), &actor(), "User", new_user("ann", Some(after)))
        .await
        .unwrap();
    // Without a generation nothing is checked.
    store
        .create(&tenant(), &actor(), "User", new_user("bob", None))
        .await
        .unwrap();
    assert_eq!(user_names(&store).await, ["ann", "bob"]);
    assert_eq!(
        generation(&store).await,
        after,
        "resource writes leave it as it is"
    );
}

/// An update whose closure computed it at an old generation is refused
/// after the closure returns: the resource keeps its state and version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_computed_at_an_old_generation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let before = generation(&store).await;
    let ann = store
        .create(&tenant(), &actor(), "User", new_user("ann", Some(before)))
        .await
        .unwrap();
    declare(&store, CONTOSO, &["region"]).await;
    let after = generation(&store).await;
    let changes = change_count(&store).await;

    let update = |name: &str, generation: Option<u64>| {
        let (tenant, actor) = (tenant(), actor());
        let (store, id, rename) = (Arc::clone(&store), ann.id.clone(), rename(name, generation));
        async move {
            let precondition = Precondition::None;
            store
                .update(&tenant, &actor, "User", &id, precondition, false, rename)
                .await
        }
    };
    assert_stale(update("anne", Some(before)).await, before, after);
    let stored = store.get(&tenant(), "User", &ann.id, false).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.resource["userName"], "ann");
    assert_eq!(change_count(&store).await, changes);

    let (updated, changed) = update("anne", Some(after)).await.unwrap();
    assert!(changed);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.resource["userName"], "anne");
}

/// A setting change moves the generation on (a write validated under the
/// old undeclared-attribute policy is refused); setting the same value
/// again does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_setting_bumps_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let start = generation(&store).await;
    store
        .set_setting(&tenant(), &actor(), "undeclared", "capture")
        .await
        .unwrap();
    let captured = generation(&store).await;
    assert_ne!(captured, start);
    store
        .set_setting(&tenant(), &actor(), "undeclared", "capture")
        .await
        .unwrap();
    assert_eq!(generation(&store).await, captured, "nothing changed");
    assert_eq!(
        store.tenant_schemas(&tenant()).await.unwrap().0,
        captured,
        "tenant_schemas reads the same generation"
    );

    let refused = store
        .create(&tenant(), &actor(), "User", new_user("ann", Some(start)))
        .await;
    assert_stale(refused, start, captured);
    assert_eq!(user_names(&store).await, Vec::<String>::new());

    store
        .set_setting(&tenant(), &actor(), "undeclared", "refuse")
        .await
        .unwrap();
    let refusing = generation(&store).await;
    assert_ne!(refusing, captured);
    assert_stale(
        store
            .create(&tenant(), &actor(), "User", new_user("ann", Some(captured)))
            .await,
        captured,
        refusing,
    );
    store
        .create(&tenant(), &actor(), "User", new_user("ann", Some(refusing)))
        .await
        .unwrap();
}

/// A change made by another process sharing the file (the CLI) makes the
/// next write of this one stale, although this writer cached the rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_process_makes_writes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(dir.path());
    let seen = generation(&server).await;
    server
        .create(&tenant(), &actor(), "User", new_user("ann", Some(seen)))
        .await
        .unwrap();
    let cli = open(dir.path());
    cli.set_setting(&tenant(), &actor(), "undeclared", "capture")
        .await
        .unwrap();
    let now = generation(&cli).await;
    assert_eq!(generation(&server).await, now);
    assert_stale(
        server
            .create(&tenant(), &actor(), "User", new_user("bob", Some(seen)))
            .await,
        seen,
        now,
    );
    assert_eq!(user_names(&server).await, ["ann"]);
}

/// Schema puts and deletes computed at a stale generation are refused
/// before anything runs: the stored schema stays, the rewrite never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_at_a_stale_generation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .create(&tenant(), &actor(), "User", new_user("ann", None))
        .await
        .unwrap();
    let first = generation(&store).await;
    store
        .put_schema(
            &tenant(),
            &actor(),
            schema(CONTOSO, &["region"]),
            None,
            None,
            Some(first),
        )
        .await
        .unwrap();
    let second = generation(&store).await;
    assert_ne!(second, first);
    let changes = change_count(&store).await;

    // A second apply computed from the first generation (it raced the one
    // above) must not rewrite values against the wrong old schema.
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    let refused = store
        .put_schema(
            &tenant(),
            &actor(),
            schema(CONTOSO, &["costCenter"]),
            Some(Box::new(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            })),
            None,
            Some(first),
        )
        .await;
    assert_stale(refused, first, second);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the rewrite never ran");
    let listed = store.list_schemas(&tenant()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].document["attributes"][0]["name"], "region");
    assert_stale(
        store
            .delete_schema(&tenant(), &actor(), CONTOSO, None, None, Some(first))
            .await,
        first,
        second,
    );
    assert_eq!(store.list_schemas(&tenant()).await.unwrap().len(), 1);
    assert_eq!(change_count(&store).await, changes);
    assert_eq!(generation(&store).await, second);

    store
        .delete_schema(&tenant(), &actor(), CONTOSO, None, None, Some(second))
        .await
        .unwrap();
    assert!(store.list_schemas(&tenant()).await.unwrap().is_empty());
}

/// A custom schema URN is one identity whatever its case: a re-apply in
/// another case updates the same record (its place and version count; the
/// URN takes the case given last), and delete finds it in any case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_urns_are_one_identity_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let lower = CONTOSO.to_ascii_lowercase();
    let other = "urn:ietf:params:scim:schemas:extension:other:2.0:User";
    declare(&store, CONTOSO, &["region"]).await;
    declare(&store, other, &["x"]).await;
    declare(&store, &lower, &["site"]).await;
    let listed = store.list_schemas(&tenant()).await.unwrap();
    let urns: Vec<&str> = listed.iter().map(|record| record.urn.as_str()).collect();
    assert_eq!(urns, [lower.as_str(), other], "one record, in its place");
    assert_eq!(listed[0].document["attributes"][0]["name"], "site");

    store
        .delete_schema(
            &tenant(),
            &actor(),
            &CONTOSO.to_ascii_uppercase(),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    let urns: Vec<String> = store
        .list_schemas(&tenant())
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.urn)
        .collect();
    assert_eq!(urns, [other]);
    declare(&store, CONTOSO, &["region"]).await;

    // The URN's change records continue one version count, and the delete
    // is recorded under the URN as it was stored.
    let records: Vec<(ResourceId, u64, ChangePayload)> = store
        .changes(&tenant(), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|change| change.kind == ChangeKind::Schema)
        .filter(|change| change.resource_id.0.eq_ignore_ascii_case(CONTOSO))
        .map(|change| (change.resource_id, change.version, change.payload))
        .collect();
    let versions: Vec<(&str, u64)> = records
        .iter()
        .map(|(id, version, _)| (id.0.as_str(), *version))
        .collect();
    assert_eq!(
        versions,
        [
            (CONTOSO, 1),
            (lower.as_str(), 2),
            (lower.as_str(), 3),
            (CONTOSO, 4)
        ]
    );
    assert_eq!(
        records[2].2,
        ChangePayload::SchemaDeleted { urn: lower.clone() }
    );

    // One row in the table, whatever the case.
    drop(store);
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM custom_schemas WHERE lower(urn) = lower(?1)",
            [CONTOSO],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

/// Rows of one URN in several cases, as older builds could store them, are
/// merged into one by the next put, which continues the highest version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_duplicates_left_by_older_builds_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let lower = CONTOSO.to_ascii_lowercase();
    {
        let store = open(dir.path());
        store
            .put_schema(
                &tenant(),
                &actor(),
                schema(CONTOSO, &["region"]),
                None,
                None,
                None,
            )
            .await
            .unwrap();
    }
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute(
            "INSERT INTO custom_schemas (tenant_id, urn, position, resource_type, required,
                 document, version, updated, client, searchable)
             SELECT tenant_id, ?1, position + 1, resource_type, required, document, 7,
                 updated, client, searchable
             FROM custom_schemas WHERE urn = ?2",
            [lower.as_str(), CONTOSO],
        )
        .unwrap();
    drop(connection);

    let store = open(dir.path());
    assert_eq!(store.list_schemas(&tenant()).await.unwrap().len(), 2);
    declare(&store, CONTOSO, &["site"]).await;
    let listed = store.list_schemas(&tenant()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].urn, CONTOSO);
    let last = store
        .changes(&tenant(), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .rfind(|change| change.kind == ChangeKind::Schema)
        .unwrap();
    assert_eq!(last.version, 8);
}

/// Waits for the first of `count` results sent on `results`, then for the
/// rest once `release` has been called: (first, rest).
async fn first_then_rest<T: Send + 'static>(
    results: &mut tokio::sync::mpsc::UnboundedReceiver<Result<T, StoreError>>,
    count: usize,
    release: impl FnOnce(),
) -> (Result<T, StoreError>, Vec<Result<T, StoreError>>) {
    let first = tokio::time::timeout(PATIENCE, results.recv())
        .await
        .expect("a call refused at once")
        .unwrap();
    // Nothing else answers while the queue's consumer is blocked.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(results.try_recv().is_err(), "only one call answered");
    release();
    let mut rest = Vec::new();
    for _ in 1..count {
        let result = tokio::time::timeout(PATIENCE, results.recv())
            .await
            .expect("every accepted call answers")
            .unwrap();
        rest.push(result);
    }
    (first, rest)
}

/// With the writer blocked and its queue (2 jobs) full, a further write is
/// refused at once with `Busy`; the two accepted writes, and the blocked
/// one, complete intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), |options| options.writer_queue = 2);
    let ann = store
        .create(&tenant(), &actor(), "User", new_user("ann", None))
        .await
        .unwrap();

    // An update whose closure holds the writer thread until released.
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let blocked = {
        let store = Arc::clone(&store);
        let id = ann.id.clone();
        tokio::spawn(async move {
            let update: UpdateFn = Box::new(move |_| {
                started.send(()).unwrap();
                released.recv_timeout(PATIENCE).unwrap();
                Ok(Some(renamed("anne", None)))
            });
            store
                .update(
                    &tenant(),
                    &actor(),
                    "User",
                    &id,
                    Precondition::None,
                    false,
                    update,
                )
                .await
        })
    };
    tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap();

    let (sender, mut results) = tokio::sync::mpsc::unbounded_channel();
    let names = ["bob", "cay", "dee"];
    for name in names {
        let store = Arc::clone(&store);
        let sender = sender.clone();
        tokio::spawn(async move {
            let result = store
                .create(&tenant(), &actor(), "User", new_user(name, None))
                .await;
            sender.send(result).unwrap();
        });
    }
    let (first, rest) = first_then_rest(&mut results, names.len(), || {
        release.send(()).unwrap();
    })
    .await;
    assert!(matches!(first, Err(StoreError::Busy(_))), "{first:?}");
    let created: Vec<String> = rest
        .into_iter()
        .map(|result| {
            result.unwrap().resource["userName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(created.len(), 2);
    let (updated, changed) = blocked.await.unwrap().unwrap();
    assert!(changed);
    assert_eq!(updated.resource["userName"], "anne");

    // Exactly what was accepted is stored, each with its change record.
    let mut stored = user_names(&store).await;
    stored.sort();
    let mut expected: Vec<String> = created.clone();
    expected.push("anne".to_owned());
    expected.sort();
    assert_eq!(stored, expected);
    let creates = store
        .changes(&tenant(), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|change| change.kind == ChangeKind::Create)
        .count();
    assert_eq!(creates, 3);
    // And the queue takes writes again.
    store
        .create(&tenant(), &actor(), "User", new_user("eve", None))
        .await
        .unwrap();
}

/// With the only reader blocked and its queue (1 read) full, a further
/// read is refused at once with `Busy`; the accepted one answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_read_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), |options| {
        options.max_readers = 1;
        options.reader_queue = 1;
    });
    store
        .create(&tenant(), &actor(), "User", new_user("ann", None))
        .await
        .unwrap();
    store
        .set_setting(&tenant(), &actor(), "undeclared", "capture")
        .await
        .unwrap();

    // A scan whose visit holds the reader thread until released.
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let scan = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let visit: VisitFn = Box::new(move |_| {
                started.send(()).unwrap();
                released.recv_timeout(PATIENCE).unwrap();
            });
            store.scan(&tenant(), "User", visit).await
        })
    };
    tokio::time::timeout(PATIENCE, running.recv())
        .await
        .unwrap()
        .unwrap();

    let (sender, mut results) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..2 {
        let store = Arc::clone(&store);
        let sender = sender.clone();
        tokio::spawn(async move {
            let result = store.get_setting(&tenant(), "undeclared").await;
            sender.send(result).unwrap();
        });
    }
    let (first, rest) = first_then_rest(&mut results, 2, || release.send(()).unwrap()).await;
    assert!(matches!(first, Err(StoreError::Busy(_))), "{first:?}");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].as_ref().unwrap().as_deref(), Some("capture"));
    assert_eq!(scan.await.unwrap().unwrap(), 1);
    assert_eq!(
        store.get_setting(&tenant(), "undeclared").await.unwrap(),
        Some("capture".to_owned())
    );
}
