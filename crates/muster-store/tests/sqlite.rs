//! The store suite on SQLite (a real file in a temporary directory), plus
//! what only SQLite has: reopening the file, migrations, tenants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;

use std::sync::Arc;

use muster_store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{
    ChangePayload, MemberChange, MembershipDelta, Page, Precondition, ResourceId, Store,
    StoreError, TenantId, TokenRecord,
};
use serde_json::json;
use suite::audit;
use suite::clients;
use suite::custom;
use suite::tenants;
use tempfile::TempDir;

fn open(dir: &TempDir) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir.path()).unwrap())
}

fn fresh() -> (TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    (dir, store)
}

/// One `#[tokio::test]` per function of a suite module (`suite`, `custom`)
/// taking the store by reference.
macro_rules! suite {
    ($module:ident : $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
            $module::$name(&*store).await;
        }
    )*};
}

/// One `#[tokio::test]` per suite function taking `Arc<dyn Store>`.
macro_rules! shared_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
            suite::$name(store).await;
        }
    )*};
}

suite::every_store_test!(suite, shared_suite);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let (_dir, store) = fresh();
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::tenants_are_isolated(&*store, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_attributes_are_per_tenant() {
    let (_dir, store) = fresh();
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::custom::custom_attributes_are_per_tenant(&*store, &other).await;
}

/// A database written before migration 2 opens with its resources intact
/// and without captured values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_2_keeps_existing_resources() {
    let dir = tempfile::tempdir().unwrap();
    let alice = {
        let store = open(&dir);
        suite::create(&*store, "User", suite::user("alice")).await
    };
    // Take the file back to version 1.
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute_batch(
            "DROP INDEX resource_values_lookup;
             CREATE INDEX resource_values_lookup
                 ON resource_values (tenant_id, path_id, value_lower);
             ALTER TABLE resource_values DROP COLUMN indexed;
             ALTER TABLE tenants DROP COLUMN index_generation;
             DROP TABLE custom_schemas; DROP TABLE settings; DROP TABLE attribute_usage;
             DROP TABLE rule_sets;
             DROP TABLE change_consumers;
             DROP TABLE IF EXISTS sync_targets; DROP TABLE IF EXISTS sync_objects;
             DROP TABLE IF EXISTS sync_dead_letters; DROP INDEX IF EXISTS changes_by_resource;
             ALTER TABLE resources DROP COLUMN unmapped;
             DROP TABLE oauth_clients; DROP TABLE oauth_access_tokens;
             ALTER TABLE tokens DROP COLUMN match_policy;
             ALTER TABLE tokens DROP COLUMN rate_limit;
             DROP TABLE deleted_resources;
             DROP TABLE audit_log; DROP TABLE audit_heads;
             DROP TABLE console_sessions;
             DROP TRIGGER IF EXISTS resources_counted_on_insert; DROP TRIGGER IF EXISTS resources_counted_on_delete;
             DROP TRIGGER IF EXISTS resources_counted_on_move; DROP TABLE IF EXISTS resource_counts;
             DELETE FROM schema_migrations WHERE version >= 2;",
        )
        .unwrap();
    drop(connection);
    let store = open(&dir);
    let read = suite::get(&*store, "User", &alice.id).await;
    assert_eq!(read.resource, alice.resource);
    assert!(read.unmapped.is_empty());
    assert_eq!(
        store.list_schemas(&suite::tenant()).await.unwrap(),
        Vec::new()
    );
    let usage = store.attribute_usage(&suite::tenant()).await.unwrap();
    let user_name = usage.iter().find(|entry| entry.path == "username").unwrap();
    assert_eq!(
        (user_name.holders, user_name.last_client.as_ref()),
        (1, None)
    );
}

/// Migration 13 counts the resources a file already holds: deep pages of
/// an unfiltered list, answered from those counts, are right at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_13_counts_existing_resources() {
    let dir = tempfile::tempdir().unwrap();
    let all = {
        let store = open(&dir);
        suite::users(&*store, 300).await
    };
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER resources_counted_on_insert; DROP TRIGGER resources_counted_on_delete;
             DROP TRIGGER resources_counted_on_move; DROP TABLE resource_counts;
             DELETE FROM schema_migrations WHERE version >= 13;",
        )
        .unwrap();
    drop(connection);
    let store = open(&dir);
    let page = Page::Index {
        start_index: 200,
        count: 10,
    };
    let listed = store
        .list(
            &suite::tenant(),
            &suite::registry(),
            &suite::query("User", None, page),
        )
        .await
        .unwrap();
    assert_eq!(listed.total_results, 300);
    assert_eq!(suite::ids(&listed.resources), all[199..209].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, team, deleted) = {
        let store = open(&dir);
        let alice = suite::create(&*store, "User", suite::user("alice")).await;
        let deleted = suite::create(&*store, "User", suite::user("gone")).await;
        let team = suite::create(&*store, "Group", suite::group("team")).await;
        suite::update(
            &*store,
            "Group",
            &team.id,
            suite::members_change(MemberChange::Add(vec![suite::member(&alice.id)])),
        )
        .await
        .unwrap();
        suite::update(
            &*store,
            "User",
            &alice.id,
            suite::replace(json!({"userName": "alice", "title": "CEO"})),
        )
        .await
        .unwrap();
        store
            .delete(
                &suite::tenant(),
                &suite::actor(),
                "User",
                &deleted.id,
                Precondition::None,
            )
            .await
            .unwrap();
        store
            .create_token(
                &suite::tenant(),
                TokenRecord {
                    name: "okta".to_owned(),
                    secret_hash: "hash".to_owned(),
                    scopes: vec!["scim.write".to_owned()],
                    created: String::new(),
                },
            )
            .await
            .unwrap();
        (alice.id, team.id, deleted.id)
    };
    assert!(dir.path().join(DATABASE_FILE).exists());
    let store = open(&dir);
    let read = suite::get(&*store, "User", &alice).await;
    // Created, then joined the team (its groups changed), then retitled.
    assert_eq!(read.version, 3);
    assert_eq!(read.resource["title"], "CEO");
    assert_eq!(read.resource["groups"][0]["value"], json!(team.0));
    let group = suite::get(&*store, "Group", &team).await;
    assert_eq!(group.resource["members"][0]["value"], json!(alice.0));
    assert!(matches!(
        store.get(&suite::tenant(), "User", &deleted, true).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.find_token("hash").await.unwrap().is_some());
    // Three creates, the membership, alice's new groups, the retitle, the
    // delete.
    assert_eq!(
        store.changes(&suite::tenant(), 0, 100).await.unwrap().len(),
        7
    );
    // New writes continue the sequences.
    let later = suite::create(&*store, "User", suite::user("later")).await;
    let changes = store.changes(&suite::tenant(), 0, 100).await.unwrap();
    assert_eq!(changes.last().map(|c| &c.resource_id), Some(&later.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_the_directory_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    drop(SqliteStore::open(&nested).unwrap());
    // Reopening applies no migration twice (it would fail on CREATE TABLE).
    let store = SqliteStore::open(&nested).unwrap();
    assert_eq!(store.path(), nested.join(DATABASE_FILE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute(
            "INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future', 'x')",
            [],
        )
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, StoreError::Database(ref detail) if detail.contains("999")),
        "{error:?}"
    );
}

/// Membership changes cost the rows they change: the group's other members
/// are not rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_group_changes_touch_only_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_with(
            dir.path(),
            &SqliteOptions {
                durable: false,
                ..SqliteOptions::default()
            },
        )
        .unwrap(),
    );
    let team = suite::create(&*store, "Group", suite::group("big")).await;
    let mut members = Vec::new();
    for index in 0..2_000 {
        members.push(
            suite::create(&*store, "User", suite::user(&format!("u{index}")))
                .await
                .id,
        );
    }
    suite::update(
        &*store,
        "Group",
        &team.id,
        suite::members_change(MemberChange::ReplaceAll(
            members.iter().map(suite::member).collect(),
        )),
    )
    .await
    .unwrap();
    let extra = suite::create(&*store, "User", suite::user("extra")).await;
    let started = std::time::Instant::now();
    let (stored, changed) = store
        .update(
            &suite::tenant(),
            &suite::actor(),
            "Group",
            &team.id,
            Precondition::None,
            false,
            suite::members_change(MemberChange::Add(vec![suite::member(&extra.id)])),
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(changed);
    assert!(stored.resource.get("members").is_none());
    assert!(elapsed.as_millis() < 500, "{elapsed:?}");
    let changes = store.changes(&suite::tenant(), 0, 100_000).await.unwrap();
    // The group's record, then one for the user whose groups changed.
    let [.., group_change, user_change] = changes.as_slice() else {
        panic!("too few change records: {changes:?}");
    };
    assert_eq!(
        group_change.payload,
        ChangePayload::Members(MembershipDelta {
            added: vec![extra.id.clone()],
            removed: vec![],
        })
    );
    assert_eq!(user_change.resource_id, extra.id);
    assert_eq!(
        user_change.payload,
        ChangePayload::GroupsChanged { derived: None }
    );
    let read = suite::get(&*store, "Group", &team.id).await;
    assert_eq!(read.resource["members"].as_array().unwrap().len(), 2_001);
    let removed = ResourceId(members[7].0.clone());
    suite::update(
        &*store,
        "Group",
        &team.id,
        suite::members_change(MemberChange::Remove(vec![removed])),
    )
    .await
    .unwrap();
    assert_eq!(suite::get(&*store, "Group", &team.id).await.version, 4);
}

/// The child half of [`killing_the_process_loses_no_acknowledged_write`]:
/// when started by it (the variable names a data directory), writes users
/// concurrently and prints `ACK <id>` for each acknowledged create until it
/// is killed. Run normally, it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writes_until_killed() {
    let Some(dir) = std::env::var_os("MUSTER_CRASH_CHILD_DIR") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(std::path::Path::new(&dir)).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for index in 0.. {
                let name = format!("w{worker}-{index}");
                let created = store
                    .create(
                        &suite::tenant(),
                        &suite::actor(),
                        "User",
                        suite::new(suite::user(&name), Vec::new()),
                    )
                    .await
                    .unwrap();
                println!("ACK {}", created.id.0);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Kills a process that is writing (SIGKILL, no shutdown) and reopens its
/// database: every acknowledged write is there, and nothing is half-applied
/// (each resource has its change record; the file is consistent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_process_loses_no_acknowledged_write() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writes_until_killed", "--nocapture"])
        .env("MUSTER_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = tokio::task::spawn_blocking(move || {
        let mut acknowledged = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("ACK ") {
                acknowledged.push(ResourceId(id.to_owned()));
                if acknowledged.len() == 300 {
                    child.kill().unwrap();
                }
            }
        }
        child.wait().unwrap();
        acknowledged
    })
    .await
    .unwrap();
    assert!(acknowledged.len() >= 300, "the child wrote too little");

    let store = open(&dir);
    for id in &acknowledged {
        store
            .get(&suite::tenant(), "User", id, true)
            .await
            .unwrap_or_else(|error| panic!("acknowledged user {} lost: {error:?}", id.0));
    }
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (resources, creates): (i64, i64) = connection
        .query_row(
            "SELECT (SELECT count(*) FROM resources),
                    (SELECT count(*) FROM changes WHERE kind = 'create')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        resources, creates,
        "every stored resource has its change record"
    );
    assert!(resources as usize >= acknowledged.len());
}

/// The audit chain on the real file: an edit, a deletion, a swap, a
/// truncation and an edited skeleton made with SQL (the append-only
/// triggers dropped first, as someone holding the file could) are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_found() {
    use audit::Tamper;
    for tamper in [
        Tamper::Edit,
        Tamper::Delete,
        Tamper::Swap,
        Tamper::Truncate,
        Tamper::EditSkeleton,
    ] {
        let (dir, store) = fresh();
        let file = dir.path().join(DATABASE_FILE);
        let sql = move |statement: &'static str| {
            let file = file.clone();
            Box::pin(async move {
                let connection = rusqlite::Connection::open(&file).unwrap();
                // Without dropping them, the triggers refuse the tampering.
                let refused = connection.execute_batch(statement);
                assert!(refused.is_err(), "{statement} was not refused");
                connection
                    .execute_batch(
                        "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_redact_only;",
                    )
                    .unwrap();
                connection.execute_batch(statement).unwrap();
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        };
        audit::tampering_is_found(&*store, tamper, &sql).await;
    }
}
