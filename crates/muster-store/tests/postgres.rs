//! The store suite on PostgreSQL (a fresh database per test on the real
//! server; see `pg/mod.rs`), plus what only a database server has: two
//! stores (two Muster processes) on one database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg;
mod suite;

use std::sync::Arc;

use muster_store::postgres::{PostgresOptions, PostgresStore};
use muster_store::{Store, TenantId};
use pg::Database;
use suite::tenants;
use suite::{audit, clients, custom, feed};

/// A store on a fresh database.
async fn fresh() -> (Database, Arc<PostgresStore>) {
    let database = Database::create().await;
    let store = open(&database).await;
    (database, store)
}

/// Another store (another process's pool) on `database`.
async fn open(database: &Database) -> Arc<PostgresStore> {
    let options = PostgresOptions { max_connections: 4 };
    Arc::new(
        PostgresStore::connect(&database.url, &options)
            .await
            .unwrap(),
    )
}

/// One `#[tokio::test]` per function of a suite module (`suite`, `custom`,
/// `feed`) taking the store by reference.
macro_rules! suite {
    ($module:ident : $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (database, store) = fresh().await;
            $module::$name(&*store).await;
            drop(store);
            database.drop_now().await;
        }
    )*};
}

/// One `#[tokio::test]` per suite function taking `Arc<dyn Store>`.
macro_rules! shared_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (database, store) = fresh().await;
            suite::$name(store).await;
            database.drop_now().await;
        }
    )*};
}

suite::every_store_test!(suite, shared_suite);

/// On PostgreSQL audit entries are chained after commit: `seal_audit` (what
/// `muster serve` runs every second) chains what was committed, once.
///
/// An entry is sealed once every transaction older than its own has ended,
/// on the whole server (transaction ids are cluster-wide): the other tests'
/// transactions on their own databases may hold it back for a moment, so
/// the first seal is retried until it chains something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_chains_new_audit_entries_once() {
    use muster_store::audit::AuditStore;
    let (database, store) = fresh().await;
    suite::create(&*store, "User", suite::user("sealed")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut sealed = 0;
    while sealed == 0 && std::time::Instant::now() < deadline {
        sealed = store.seal_audit().await.unwrap();
        if sealed == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    assert!(sealed >= 1, "nothing sealed within 10 s");
    assert_eq!(store.seal_audit().await.unwrap(), 0);
    let head = store.audit_head(&suite::tenant()).await.unwrap();
    assert!(
        matches!(head, Some((position, _)) if position >= 1),
        "{head:?}"
    );
    drop(store);
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let (database, store) = fresh().await;
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::tenants_are_isolated(&*store, &other).await;
    drop(store);
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_attributes_are_per_tenant() {
    let (database, store) = fresh().await;
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::custom::custom_attributes_are_per_tenant(&*store, &other).await;
    drop(store);
    database.drop_now().await;
}

/// Two stores on one database (two replicas): what one writes, the other
/// reads, and a userName taken through one is refused through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_database() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let alice = suite::create(&*first, "User", suite::user("alice")).await;
    assert_eq!(suite::get(&*second, "User", &alice.id).await, alice);
    let clash = second
        .create(
            &suite::tenant(),
            &suite::actor(),
            "User",
            suite::new(suite::user("ALICE"), Vec::new()),
        )
        .await;
    assert!(
        matches!(clash, Err(muster_store::StoreError::Conflict(_))),
        "{clash:?}"
    );
    drop((first, second));
    database.drop_now().await;
}

suite::every_feed_test!(suite);

/// Writers through two stores (two replicas) while a reader follows the
/// feed from its cursor: no record is committed behind the cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_from_a_cursor_never_sees_a_gap_filled_later() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    suite::feed::a_reader_from_a_cursor_never_sees_a_gap_filled_later(first, second).await;
    database.drop_now().await;
}

/// Two replicas at once: registering one consumer yields one cursor,
/// advancing never moves it back, a token name is taken once, a dead
/// letter is taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feed_and_sync_rows_under_two_replicas() {
    use muster_store::sync::{NewDeadLetter, SyncStore};
    use muster_store::{ResourceId, StoreError, TokenRecord};

    let (database, first) = fresh().await;
    let second = open(&database).await;
    let tenant = suite::tenant();
    for index in 0..6 {
        suite::create(&*first, "User", suite::user(&format!("u{index}"))).await;
    }
    let all: Vec<u64> = suite::feed::settled(&*first, 0, 6)
        .await
        .iter()
        .map(|record| record.sequence)
        .collect();
    assert_eq!(all.len(), 6);
    let stores = [Arc::clone(&first), Arc::clone(&second)];

    // Registering at once, at different starts: one cursor for all.
    let mut registering = Vec::new();
    for (index, store) in stores.iter().cycle().take(8).enumerate() {
        let (store, tenant) = (Arc::clone(store), tenant.clone());
        let start = all[index % all.len()];
        registering.push(tokio::spawn(async move {
            store.register_consumer(&tenant, "c", start).await.unwrap()
        }));
    }
    let mut cursors = Vec::new();
    for task in registering {
        cursors.push(task.await.unwrap());
    }
    let kept = first.consumer_cursor(&tenant, "c").await.unwrap().unwrap();
    assert!(cursors.iter().all(|cursor| *cursor == kept), "{cursors:?}");

    // Advancing at once, in any order: the highest wins.
    let mut advancing = Vec::new();
    for (index, sequence) in all.iter().rev().enumerate() {
        let store = Arc::clone(&stores[index % 2]);
        let (tenant, sequence) = (tenant.clone(), *sequence);
        advancing.push(tokio::spawn(async move {
            store
                .advance_consumer(&tenant, "c", sequence)
                .await
                .unwrap()
        }));
    }
    for task in advancing {
        task.await.unwrap();
    }
    assert_eq!(
        second.consumer_cursor(&tenant, "c").await.unwrap(),
        all.last().copied()
    );

    // One token name, created through both at once: one wins.
    let mut creating = Vec::new();
    for (index, store) in stores.iter().cycle().take(6).enumerate() {
        let (store, tenant) = (Arc::clone(store), tenant.clone());
        creating.push(tokio::spawn(async move {
            let token = TokenRecord {
                name: "okta".to_owned(),
                secret_hash: format!("hash-{index}"),
                scopes: vec!["admin".to_owned()],
                created: String::new(),
            };
            store.create_token(&tenant, token).await
        }));
    }
    let mut created = 0;
    for task in creating {
        match task.await.unwrap() {
            Ok(()) => created += 1,
            Err(StoreError::Conflict(text)) => {
                assert_eq!(text, "a token named 'okta' already exists");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    let secret = first.list_tokens(&tenant).await.unwrap()[0]
        .secret_hash
        .clone();
    let reused = TokenRecord {
        name: "other".to_owned(),
        secret_hash: secret,
        scopes: Vec::new(),
        created: String::new(),
    };
    assert!(matches!(
        second.create_token(&tenant, reused.clone()).await,
        Err(StoreError::Conflict(text)) if text == "another token already has this secret"
    ));
    // Tokens of another tenant: found by their secret alone; an unknown
    // tenant has none.
    let acme = TenantId("acme".to_owned());
    let fresh_secret = TokenRecord {
        secret_hash: "acme-hash".to_owned(),
        ..reused
    };
    assert!(matches!(
        first.create_token(&TenantId("nobody".to_owned()), fresh_secret.clone()).await,
        Err(StoreError::NotFound(text)) if text == "tenant 'nobody' does not exist"
    ));
    first.ensure_tenant(&acme).await.unwrap();
    first.create_token(&acme, fresh_secret).await.unwrap();
    let (found, token) = second.find_token("acme-hash").await.unwrap().unwrap();
    assert_eq!((found, token.name.as_str()), (acme, "other"));
    assert_eq!(token.created.len(), 24, "{}", token.created);

    // A dead letter taken through both at once: once.
    let letter = NewDeadLetter {
        resource_type: "User".to_owned(),
        resource_id: ResourceId("u".to_owned()),
        request: serde_json::json!({}),
        response: serde_json::json!({}),
        reason: "refused".to_owned(),
    };
    let id = first
        .add_dead_letter(&tenant, "genesys", letter)
        .await
        .unwrap();
    let mut taking = Vec::new();
    for store in stores.iter().cycle().take(6) {
        let (store, tenant) = (Arc::clone(store), tenant.clone());
        taking.push(tokio::spawn(async move {
            store.take_dead_letter(&tenant, id).await.unwrap()
        }));
    }
    let mut taken = 0;
    for task in taking {
        taken += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(taken, 1);
    drop((first, second, stores));
    database.drop_now().await;
}

/// Schema, setting and rule-set changes through two stores at once
/// serialise per tenant: each moves the generation on once, a setting's and
/// the rule set's versions never fork, every schema keeps a place of its
/// own, rows that creates write alongside a schema change end up indexed as
/// the final rules say, and a change computed at a generation another store
/// moved on is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_changes_through_two_stores_serialise() {
    use muster_store::{ChangeKind, SchemaRecord, StoreError};
    use serde_json::json;

    let (database, first) = fresh().await;
    let second = open(&database).await;
    let tenant = suite::tenant();
    let actor = suite::actor();
    let stores = [Arc::clone(&first), Arc::clone(&second)];
    let record = |urn: &str, searchable: &[&str]| SchemaRecord {
        urn: urn.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": urn, "attributes": []}),
        updated: String::new(),
        client: String::new(),
        searchable: searchable.iter().map(|name| (*name).to_owned()).collect(),
    };
    let urns: Vec<String> = (0..6)
        .map(|index| format!("urn:example:scim:schemas:extension:t{index}:2.0:User"))
        .collect();

    let mut tasks = Vec::new();
    for (index, urn) in urns.iter().enumerate() {
        let store = Arc::clone(&stores[index % 2]);
        let (tenant, actor) = (tenant.clone(), actor.clone());
        let schema = record(urn, &[]);
        tasks.push(tokio::spawn(async move {
            store
                .put_schema(&tenant, &actor, schema, None, None, None)
                .await
                .unwrap();
            store
                .set_setting(&tenant, &actor, "policy", &format!("value-{index}"))
                .await
                .unwrap();
            store
                .put_rule_set(&tenant, &actor, "rules", "toml", "", None, None)
                .await
                .unwrap();
        }));
    }
    for index in 0..8 {
        let store = Arc::clone(&stores[index % 2]);
        let resource = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", suite::CUSTOM],
            "userName": format!("u{index}"),
            suite::CUSTOM: {"code": format!("c{index}"), "level": index},
        });
        tasks.push(tokio::spawn(async move {
            suite::create(&*store, "User", resource).await;
        }));
    }
    // Declared alongside the creates: `code` leaves the lookup index.
    let custom = record(suite::CUSTOM, &["level"]);
    {
        let (store, tenant, actor) = (Arc::clone(&second), tenant.clone(), actor.clone());
        tasks.push(tokio::spawn(async move {
            store
                .put_schema(&tenant, &actor, custom, None, None, None)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    assert_eq!(first.schema_generation(&tenant).await.unwrap(), 6 * 3 + 1);
    let listed: Vec<String> = second
        .list_schemas(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|schema| schema.urn)
        .collect();
    assert_eq!(listed.len(), 7, "{listed:?}");
    for urn in urns.iter().map(String::as_str).chain([suite::CUSTOM]) {
        assert!(listed.iter().any(|listed| listed == urn), "{urn}");
    }
    let history: Vec<u64> = first
        .rule_set_history(&tenant)
        .await
        .unwrap()
        .iter()
        .map(|rule_set| rule_set.version)
        .collect();
    assert_eq!(history, [1, 2, 3, 4, 5, 6]);
    let changes = first.changes(&tenant, 0, 1000).await.unwrap();
    let mut setting_versions: Vec<u64> = changes
        .iter()
        .filter(|change| change.kind == ChangeKind::Setting)
        .map(|change| change.version)
        .collect();
    setting_versions.sort_unstable();
    assert_eq!(setting_versions, [1, 2, 3, 4, 5, 6]);

    // Every row of the creates is indexed as the rules in force say.
    let client = pg::connect(&database.url).await;
    let prefix = suite::CUSTOM.to_ascii_lowercase();
    let flags: Vec<(String, bool, i64)> = client
        .query(
            "SELECT p.path, v.indexed, count(*) FROM resource_values v
             JOIN attribute_paths p ON p.path_id = v.path_id
             WHERE p.path IN ($1 || ':code', $1 || ':level')
             GROUP BY p.path, v.indexed ORDER BY p.path",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        flags,
        [
            (format!("{prefix}:code"), false, 8),
            (format!("{prefix}:level"), true, 8),
        ]
    );

    // A change computed before another store's change is refused.
    let seen = first.schema_generation(&tenant).await.unwrap();
    second
        .set_setting(&tenant, &actor, "policy", "later")
        .await
        .unwrap();
    let refused = first
        .put_schema(
            &tenant,
            &actor,
            record("urn:example:late", &[]),
            None,
            None,
            Some(seen),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::StaleSchema { expected, current })
                if expected == seen && current == seen + 1
        ),
        "{refused:?}"
    );
    drop((client, first, second, stores));
    database.drop_now().await;
}

/// Many creates of one userName at once, through two stores (two
/// replicas): the database admits exactly one, and every other is a
/// conflict naming the holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_user_name_admit_one() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let mut tasks = Vec::new();
    for attempt in 0..8 {
        let store = if attempt % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        let name = if attempt % 3 == 0 { "carol" } else { "CAROL" };
        tasks.push(tokio::spawn(async move {
            store
                .create(
                    &suite::tenant(),
                    &suite::actor(),
                    "User",
                    suite::new(suite::user(name), Vec::new()),
                )
                .await
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(stored) => created.push(stored),
            Err(muster_store::StoreError::Conflict(message)) => {
                assert!(message.contains("is already taken by User"), "{message}");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created.len(), 1);
    drop((first, second));
    database.drop_now().await;
}

/// Many creates holding one value of a unique custom attribute at once:
/// `unique_values` admits one holder; the others are conflicts naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holders_of_a_unique_value_admit_one() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let urn = "urn:example:params:scim:schemas:extension:badge:2.0:User";
    let mut tasks = Vec::new();
    for attempt in 0..8 {
        let store = if attempt % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        let mut resource = suite::user(&format!("user{attempt}"));
        let code = if attempt % 2 == 0 { "B-7" } else { "b-7" };
        resource[urn] = serde_json::json!({ "code": code });
        let new = muster_store::NewResource {
            unique: vec![muster_store::UniqueAttribute {
                path: format!("{urn}:code"),
                case_exact: false,
            }],
            ..suite::new(resource, Vec::new())
        };
        tasks.push(tokio::spawn(async move {
            store
                .create(&suite::tenant(), &suite::actor(), "User", new)
                .await
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(stored) => created.push(stored),
            Err(muster_store::StoreError::Conflict(message)) => {
                assert!(message.contains("is already taken by User"), "{message}");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created.len(), 1);
    // The holder releases it by deleting: another may take it.
    first
        .delete(
            &suite::tenant(),
            &suite::actor(),
            "User",
            &created[0].id,
            muster_store::Precondition::None,
        )
        .await
        .unwrap();
    let mut resource = suite::user("late");
    resource[urn] = serde_json::json!({ "code": "B-7" });
    let new = muster_store::NewResource {
        unique: vec![muster_store::UniqueAttribute {
            path: format!("{urn}:code"),
            case_exact: false,
        }],
        ..suite::new(resource, Vec::new())
    };
    second
        .create(&suite::tenant(), &suite::actor(), "User", new)
        .await
        .unwrap();
    drop((first, second));
    database.drop_now().await;
}

/// A member deleted through one store while another adds it to a group:
/// whichever commits first, no membership row outlives the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_deleted_while_being_added_leaves_no_membership() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let team = suite::create(&*first, "Group", suite::group("team")).await;
    for round in 0..6 {
        let user = suite::create(&*first, "User", suite::user(&format!("u{round}"))).await;
        let adder = {
            let store = Arc::clone(&first);
            let (team, user) = (team.id.clone(), user.id.clone());
            tokio::spawn(async move {
                store
                    .update(
                        &suite::tenant(),
                        &suite::actor(),
                        "Group",
                        &team,
                        muster_store::Precondition::None,
                        false,
                        suite::members_change(muster_store::MemberChange::Add(vec![
                            suite::member(&user),
                        ])),
                    )
                    .await
            })
        };
        let deleter = {
            let store = Arc::clone(&second);
            let user = user.id.clone();
            tokio::spawn(async move {
                store
                    .delete(
                        &suite::tenant(),
                        &suite::actor(),
                        "User",
                        &user,
                        muster_store::Precondition::None,
                    )
                    .await
            })
        };
        let added = adder.await.unwrap();
        deleter.await.unwrap().unwrap();
        if let Err(error) = added {
            assert!(
                matches!(
                    error,
                    muster_store::StoreError::Scim(_) | muster_store::StoreError::Contention(_)
                ),
                "{error:?}"
            );
        }
        let group = suite::get(&*second, "Group", &team.id).await;
        assert!(
            group.resource.get("members").is_none(),
            "{}",
            group.resource
        );
    }
    drop((first, second));
    database.drop_now().await;
}

/// Counts a User's groups and names them, under its own URN.
struct GroupCount;

/// The URN [`GroupCount`] stores its value under.
const COUNTED: &str = "urn:example:params:scim:schemas:extension:counted:2.0:User";

impl muster_store::Derivation for GroupCount {
    fn urn(&self) -> &str {
        COUNTED
    }

    fn derive(&self, user: &serde_json::Value) -> Option<serde_json::Value> {
        assert!(user.get(COUNTED).is_none(), "{user}");
        let groups = user.get("groups")?.as_array()?;
        let names: Vec<&str> = groups
            .iter()
            .filter_map(|group| group.get("display")?.as_str())
            .collect();
        Some(serde_json::json!({ "count": groups.len(), "names": names }))
    }
}

/// Derived values on PostgreSQL: a User's value follows its groups (also
/// through nesting), a group rename and a group delete, and is stored in
/// its JSON and its change records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_values_follow_groups() {
    use muster_store::{MemberChange, Precondition, Removal, SharedDerivation, Update};
    let (database, store) = fresh().await;
    let derivation = SharedDerivation::new(GroupCount);
    let with = |resource: serde_json::Value, members: Vec<muster_store::Member>| {
        muster_store::NewResource {
            derivation: Some(derivation.clone()),
            ..suite::new(resource, members)
        }
    };
    let (tenant, actor) = (suite::tenant(), suite::actor());
    let alice = store
        .create(
            &tenant,
            &actor,
            "User",
            with(suite::user("alice"), Vec::new()),
        )
        .await
        .unwrap();
    // No groups: nothing derived.
    assert!(alice.resource.get(COUNTED).is_none(), "{}", alice.resource);
    let inner = store
        .create(
            &tenant,
            &actor,
            "Group",
            with(suite::group("inner"), vec![suite::member(&alice.id)]),
        )
        .await
        .unwrap();
    let value = |stored: &muster_store::StoredResource| stored.resource[COUNTED].clone();
    let alice_now = suite::get(&*store, "User", &alice.id).await;
    assert_eq!(
        value(&alice_now),
        serde_json::json!({"count": 1, "names": ["inner"]})
    );
    assert_eq!(alice_now.version, 2);
    // Nested: the outer group reaches alice through inner.
    store
        .create(
            &tenant,
            &actor,
            "Group",
            with(suite::group("outer"), vec![suite::member(&inner.id)]),
        )
        .await
        .unwrap();
    let alice_now = suite::get(&*store, "User", &alice.id).await;
    assert_eq!(
        value(&alice_now),
        serde_json::json!({"count": 2, "names": ["inner", "outer"]})
    );
    // A rename of inner is seen by alice.
    let derivation_for_update = derivation.clone();
    store
        .update(
            &tenant,
            &actor,
            "Group",
            &inner.id,
            Precondition::None,
            false,
            Box::new(move |_| {
                Ok(Some(Update {
                    resource: suite::group("renamed"),
                    member_changes: Vec::new(),
                    unmapped: None,
                    unique: Vec::new(),
                    schema_generation: None,
                    never_returned: Vec::new(),
                    derivation: Some(derivation_for_update),
                }))
            }),
        )
        .await
        .unwrap();
    let alice_now = suite::get(&*store, "User", &alice.id).await;
    assert_eq!(
        value(&alice_now),
        serde_json::json!({"count": 2, "names": ["renamed", "outer"]})
    );
    // Removing alice from inner leaves her in no group.
    let derivation_for_remove = derivation.clone();
    let alice_id = alice.id.clone();
    store
        .update(
            &tenant,
            &actor,
            "Group",
            &inner.id,
            Precondition::None,
            false,
            Box::new(move |current| {
                Ok(Some(Update {
                    resource: current.resource.clone(),
                    member_changes: vec![MemberChange::Remove(vec![alice_id])],
                    unmapped: None,
                    unique: Vec::new(),
                    schema_generation: None,
                    never_returned: Vec::new(),
                    derivation: Some(derivation_for_remove),
                }))
            }),
        )
        .await
        .unwrap();
    let alice_now = suite::get(&*store, "User", &alice.id).await;
    // In no group: nothing derived.
    assert!(
        alice_now.resource.get(COUNTED).is_none(),
        "{}",
        alice_now.resource
    );
    // Back in inner, then inner deleted with the derivation.
    store
        .update(
            &tenant,
            &actor,
            "Group",
            &inner.id,
            Precondition::None,
            false,
            suite::members_change(MemberChange::Add(vec![suite::member(&alice.id)])),
        )
        .await
        .unwrap();
    store
        .delete_with(
            &tenant,
            &actor,
            "Group",
            &inner.id,
            Precondition::None,
            Removal {
                derivation: Some(derivation.clone()),
                schema_generation: None,
            },
        )
        .await
        .unwrap();
    let alice_now = suite::get(&*store, "User", &alice.id).await;
    // In no group: nothing derived.
    assert!(
        alice_now.resource.get(COUNTED).is_none(),
        "{}",
        alice_now.resource
    );
    assert!(alice_now.resource.get("groups").is_none());
    drop(store);
    database.drop_now().await;
}

/// A rule-set put and schema changes with `rederive` recompute every
/// User's derived value in their transaction, as on SQLite: only Users
/// whose value changes are written (a rule set's records name its
/// version), a User a schema rewrite changes gets its new value in the
/// rewrite's own version, and a failing rewrite leaves every value as it
/// was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_set_and_schema_changes_rederive_users() {
    use muster_store::{
        ChangeKind, ChangePayload, Derivation, NewResource, RewriteFn, RewriteOutcome,
        SchemaRecord, SharedDerivation, StoredResource,
    };
    use serde_json::{json, Value};

    const SITES: &str = "urn:example:params:scim:schemas:extension:sites:2.0:User";
    const DERIVED: &str = "urn:example:params:scim:schemas:extension:derived:2.0:User";

    /// The User's site as its derived title, upper-cased or not.
    struct Site {
        upper: bool,
    }
    impl Derivation for Site {
        fn urn(&self) -> &str {
            DERIVED
        }
        fn derive(&self, user: &Value) -> Option<Value> {
            let site = user[SITES]["site"].as_str()?;
            let title = match self.upper {
                true => site.to_uppercase(),
                false => site.to_owned(),
            };
            Some(json!({ "title": title }))
        }
    }
    let strip_sites = |fail: bool| -> RewriteFn {
        Box::new(move |stored: &StoredResource| {
            if fail {
                return Err(muster_scim::ScimError::invalid_value("no"));
            }
            let mut resource = stored.resource.clone();
            let Some(removed) = resource.as_object_mut().unwrap().shift_remove(SITES) else {
                return Ok(None);
            };
            resource["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User"]);
            Ok(Some(RewriteOutcome {
                resource,
                removed: json!({ SITES: removed }),
                unmapped: None,
                never_returned: Vec::new(),
            }))
        })
    };
    let sites = SchemaRecord {
        urn: SITES.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": SITES, "attributes": [{"name": "site"}]}),
        updated: String::new(),
        client: String::new(),
        searchable: vec!["site".to_owned()],
    };

    let (database, store) = fresh().await;
    let (tenant, actor) = (suite::tenant(), suite::actor());
    store
        .put_schema(&tenant, &actor, sites.clone(), None, None, None)
        .await
        .unwrap();
    let upper = SharedDerivation::new(Site { upper: true });
    let mut ids = Vec::new();
    for (name, site) in [
        ("alice", Some("apac")),
        ("bob", None),
        ("carol", Some("EMEA")),
    ] {
        let mut resource = suite::user(name);
        if let Some(site) = site {
            resource["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", SITES]);
            resource[SITES] = json!({ "site": site });
        }
        let new = NewResource {
            resource,
            derivation: Some(upper.clone()),
            ..NewResource::default()
        };
        ids.push(store.create(&tenant, &actor, "User", new).await.unwrap().id);
    }
    let version_of = |index: usize| {
        let (store, tenant, id) = (Arc::clone(&store), tenant.clone(), ids[index].clone());
        async move { store.get(&tenant, "User", &id, false).await.unwrap() }
    };
    assert_eq!(version_of(0).await.resource[DERIVED]["title"], "APAC");
    let head = store.changes(&tenant, 0, 1000).await.unwrap().len();

    // Titles as written: alice's value changes, carol's is upper already.
    let lower = SharedDerivation::new(Site { upper: false });
    let applied = store
        .put_rule_set(&tenant, &actor, "v1", "toml", "", Some(lower.clone()), None)
        .await
        .unwrap();
    assert_eq!((applied.record.version, applied.rewritten), (1, 1));
    let alice = version_of(0).await;
    assert_eq!(
        (alice.version, &alice.resource[DERIVED]),
        (2, &json!({"title": "apac"}))
    );
    assert_eq!(
        (version_of(1).await.version, version_of(2).await.version),
        (1, 1)
    );
    let records = store.changes(&tenant, 0, 1000).await.unwrap();
    let new: Vec<(ChangeKind, String)> = records[head..]
        .iter()
        .map(|change| (change.kind, change.resource_id.0.clone()))
        .collect();
    assert_eq!(
        new,
        [
            (ChangeKind::RuleSet, "1".to_owned()),
            (ChangeKind::Update, ids[0].0.clone())
        ]
    );
    assert!(matches!(
        records[head + 1].payload,
        ChangePayload::Resource {
            rule_set: Some(1),
            ..
        }
    ));

    // A failing rewrite changes nothing, derived values included.
    let failed = store
        .delete_schema(
            &tenant,
            &actor,
            SITES,
            Some(strip_sites(true)),
            Some(upper.clone()),
            None,
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(version_of(0).await, alice);

    // Deleting the schema, its values stripped by the rewrite: the derived
    // values go in the rewrite's own versions.
    let outcome = store
        .delete_schema(
            &tenant,
            &actor,
            SITES,
            Some(strip_sites(false)),
            Some(lower),
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.rewritten, outcome.rederived), (2, 0));
    let alice = version_of(0).await;
    assert_eq!(alice.version, 3);
    assert!(alice.resource.get(DERIVED).is_none(), "{}", alice.resource);
    assert_eq!(
        (version_of(1).await.version, version_of(2).await.version),
        (1, 2)
    );
    drop(store);
    database.drop_now().await;
}

/// A schema change rewriting the Users while updates of those Users run
/// through another store: both sides finish without contention, and each
/// User ends with the rewrite applied and every update counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_rewrite_alongside_updates_of_its_resources() {
    use muster_store::{RewriteOutcome, SchemaRecord, StoreError, StoredResource, Update};
    use serde_json::json;

    let (database, first) = fresh().await;
    let second = open(&database).await;
    let (tenant, actor) = (suite::tenant(), suite::actor());
    let mut ids = Vec::new();
    for index in 0..8 {
        let resource = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", suite::CUSTOM],
            "userName": format!("u{index}"),
            suite::CUSTOM: {"code": "x", "level": 0},
        });
        ids.push(suite::create(&*first, "User", resource).await.id);
    }
    let mut updates = Vec::new();
    for id in ids.clone() {
        let (store, tenant, actor) = (Arc::clone(&second), tenant.clone(), actor.clone());
        updates.push(tokio::spawn(async move {
            let mut contended = 0;
            for _ in 0..5 {
                let bump: muster_store::UpdateFn = Box::new(|current: &StoredResource| {
                    let mut resource = current.resource.clone();
                    let level = resource[suite::CUSTOM]["level"].as_i64().unwrap_or(0);
                    resource[suite::CUSTOM]["level"] = json!(level + 1);
                    Ok(Some(Update {
                        resource,
                        member_changes: Vec::new(),
                        unmapped: None,
                        unique: Vec::new(),
                        schema_generation: None,
                        never_returned: Vec::new(),
                        derivation: None,
                    }))
                });
                match store
                    .update(
                        &tenant,
                        &actor,
                        "User",
                        &id,
                        muster_store::Precondition::None,
                        false,
                        bump,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(StoreError::Contention(_)) => contended += 1,
                    Err(other) => panic!("{other:?}"),
                }
            }
            contended
        }));
    }
    let rewrite: muster_store::RewriteFn = Box::new(|current: &StoredResource| {
        let mut resource = current.resource.clone();
        let Some(code) = resource[suite::CUSTOM]
            .as_object_mut()
            .unwrap()
            .shift_remove("code")
        else {
            return Ok(None);
        };
        Ok(Some(RewriteOutcome {
            resource,
            removed: json!({ format!("{}:code", suite::CUSTOM): code }),
            unmapped: None,
            never_returned: Vec::new(),
        }))
    });
    let schema = SchemaRecord {
        urn: suite::CUSTOM.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": suite::CUSTOM, "attributes": []}),
        updated: String::new(),
        client: String::new(),
        searchable: vec!["level".to_owned()],
    };
    // Once the updates are under way.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let outcome = first
        .put_schema(&tenant, &actor, schema, Some(rewrite), None, None)
        .await
        .unwrap();
    assert_eq!(outcome.rewritten, 8);
    let mut contended = 0;
    for task in updates {
        contended += task.await.unwrap();
    }
    for id in &ids {
        let user = first.get(&tenant, "User", id, false).await.unwrap();
        assert!(
            user.resource[suite::CUSTOM].get("code").is_none(),
            "{}",
            user.resource
        );
        let level = user.resource[suite::CUSTOM]["level"].as_u64().unwrap();
        // The rewrite's version plus one per update that committed.
        assert_eq!(user.version, 1 + 1 + level, "{}", user.resource);
    }
    // Writes lock the tenant before their resource, as a schema change
    // does: no deadlock, so no update is lost to contention.
    assert_eq!(contended, 0);
    drop((first, second));
    database.drop_now().await;
}

/// A value held before its attribute was named unique still counts: the
/// attribute index is the truth, `unique_values` only orders the writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_held_before_an_attribute_became_unique_count() {
    let (database, store) = fresh().await;
    let urn = "urn:example:params:scim:schemas:extension:badge:2.0:User";
    let with_code = |name: &str, code: &str, unique: bool| {
        let mut resource = suite::user(name);
        resource[urn] = serde_json::json!({ "code": code });
        muster_store::NewResource {
            unique: if unique {
                vec![muster_store::UniqueAttribute {
                    path: format!("{urn}:code"),
                    case_exact: true,
                }]
            } else {
                Vec::new()
            },
            ..suite::new(resource, Vec::new())
        }
    };
    let (tenant, actor) = (suite::tenant(), suite::actor());
    let early = store
        .create(&tenant, &actor, "User", with_code("early", "K-1", false))
        .await
        .unwrap();
    let clash = store
        .create(&tenant, &actor, "User", with_code("late", "K-1", true))
        .await;
    match clash {
        Err(muster_store::StoreError::Conflict(message)) => {
            assert!(message.contains(&early.id.0), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Case-exact: another case is another value.
    store
        .create(&tenant, &actor, "User", with_code("later", "k-1", true))
        .await
        .unwrap();
    drop(store);
    database.drop_now().await;
}

/// A list through one store follows index rules changed through another
/// (another process): a custom attribute searchable when the first store
/// cached the rules, and no longer since, is still found (a plan made with
/// the cached rules would look for it in the lookup index, which no longer
/// holds its rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_index_rules_changed_through_another_store() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let declare = |searchable: &[&str]| muster_store::SchemaRecord {
        urn: suite::CUSTOM.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: serde_json::json!({"id": suite::CUSTOM}),
        updated: String::new(),
        client: String::new(),
        searchable: searchable.iter().map(|name| (*name).to_owned()).collect(),
    };
    let (tenant, actor) = (suite::tenant(), suite::actor());
    first
        .put_schema(&tenant, &actor, declare(&["code"]), None, None, None)
        .await
        .unwrap();
    let mut resource = suite::user("ana");
    resource["schemas"] =
        serde_json::json!(["urn:ietf:params:scim:schemas:core:2.0:User", suite::CUSTOM]);
    resource[suite::CUSTOM] = serde_json::json!({"code": "K-1"});
    let ana = suite::create(&*first, "User", resource).await;
    let registry = suite::registry();
    let query = muster_store::ListQuery {
        resource_type: "User".to_owned(),
        filter: Some(
            muster_scim::Filter::parse(&format!(r#"{}:code sw "K""#, suite::CUSTOM)).unwrap(),
        ),
        sort_by: None,
        descending: false,
        page: muster_store::Page::Index {
            start_index: 1,
            count: 10,
        },
        include_members: true,
    };
    let found = |page: muster_store::ListPage| -> Vec<muster_store::ResourceId> {
        page.resources.into_iter().map(|r| r.id).collect()
    };
    let listed = first.list(&tenant, &registry, &query).await.unwrap();
    assert_eq!(found(listed), vec![ana.id.clone()]);
    second
        .put_schema(&tenant, &actor, declare(&[]), None, None, None)
        .await
        .unwrap();
    let listed = first.list(&tenant, &registry, &query).await.unwrap();
    assert_eq!(found(listed), vec![ana.id.clone()]);
    second
        .put_schema(&tenant, &actor, declare(&["code"]), None, None, None)
        .await
        .unwrap();
    let listed = first.list(&tenant, &registry, &query).await.unwrap();
    assert_eq!(found(listed), vec![ana.id]);
    drop((first, second));
    database.drop_now().await;
}

/// The refusal of a text holding the NUL character (U+0000), which
/// PostgreSQL's `text` and `jsonb` cannot hold.
const NUL_DETAIL: &str =
    "the text holds the NUL character (U+0000), which the database cannot store";

/// A list of Users (index paging) with `filter`.
fn user_query(filter: Option<muster_scim::Filter>) -> muster_store::ListQuery {
    muster_store::ListQuery {
        resource_type: "User".to_owned(),
        filter,
        sort_by: None,
        descending: false,
        page: muster_store::Page::Index {
            start_index: 1,
            count: 10,
        },
        include_members: true,
    }
}

/// How many change records the database holds, counted in the table
/// (the feed gives a record its position only once every older
/// transaction of the server has ended, which work in other databases of
/// the same server may delay).
async fn change_count(database: &Database) -> i64 {
    pg::connect(&database.url)
        .await
        .query_one("SELECT count(*) FROM changes", &[])
        .await
        .unwrap()
        .get(0)
}

/// Attack review: texts holding the NUL character are refused as the
/// client's error (400 invalidValue, invalidFilter for a filter), never a
/// database failure (500); an id holding one names nothing (404, as on
/// SQLite). Nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_as_invalid_values() {
    use muster_scim::ScimType;
    use muster_store::sync::SyncStore;
    use muster_store::{Precondition, StoreError};
    let (database, store) = fresh().await;
    let (tenant, actor) = (suite::tenant(), suite::actor());
    let invalid_value = |result: StoreError| match result {
        StoreError::Scim(error) => {
            assert_eq!(error.status, 400, "{error:?}");
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
            assert_eq!(error.detail, NUL_DETAIL);
        }
        other => panic!("{other:?}"),
    };
    let ana = suite::create(&*store, "User", suite::user("ana")).await;
    suite::create(&*store, "User", suite::user("bob")).await;
    let before = change_count(&database).await;

    // A new resource: in userName, in another attribute, in the id given.
    for resource in [
        suite::user("nul\u{0}user"),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bea",
            "title": "a\u{0}b",
        }),
    ] {
        let error = store
            .create(&tenant, &actor, "User", suite::new(resource, Vec::new()))
            .await
            .unwrap_err();
        invalid_value(error);
    }
    let with_id = muster_store::NewResource {
        id: Some(muster_store::ResourceId("ab\u{0}c".to_owned())),
        ..suite::new(suite::user("cid"), Vec::new())
    };
    invalid_value(
        store
            .create(&tenant, &actor, "User", with_id)
            .await
            .unwrap_err(),
    );
    // An update to such a value.
    let error = suite::update(
        &*store,
        "User",
        &ana.id,
        suite::replace(suite::user("ana\u{0}")),
    )
    .await
    .unwrap_err();
    invalid_value(error);

    // An id holding it names nothing: read, update, delete are 404.
    let nul_id = muster_store::ResourceId("ab\u{0}c".to_owned());
    for resource_type in ["User", "Group"] {
        let error = store
            .get(&tenant, resource_type, &nul_id, true)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
        let error = suite::update(
            &*store,
            resource_type,
            &nul_id,
            suite::replace(suite::user("x")),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
        let error = store
            .delete(&tenant, &actor, resource_type, &nul_id, Precondition::None)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    }
    // A member id holding it does not exist, as on SQLite.
    let error = store
        .create(
            &tenant,
            &actor,
            "Group",
            suite::new(suite::group("crew"), vec![suite::member(&nul_id)]),
        )
        .await
        .unwrap_err();
    match error {
        StoreError::Scim(error) => {
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
            assert!(error.detail.contains("does not exist"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }

    // A filter holding it: invalidFilter.
    let registry = suite::registry();
    for text in [r#"userName eq "a\u0000b""#, r#"title co "\u0000""#] {
        let filter = muster_scim::Filter::parse(text).unwrap();
        let error = store
            .list(&tenant, &registry, &user_query(Some(filter)))
            .await
            .unwrap_err();
        match error {
            StoreError::Scim(error) => {
                assert_eq!(error.status, 400, "{error:?}");
                assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{error:?}");
                assert!(error.detail.contains("NUL character (U+0000)"), "{error:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    // A cursor whose key holds it: invalidCursor.
    let by_name = |cursor: Option<String>| muster_store::ListQuery {
        sort_by: Some(muster_scim::AttrPath::parse("userName").unwrap()),
        page: muster_store::Page::Cursor { cursor, count: 1 },
        ..user_query(None)
    };
    let first = store
        .list(&tenant, &registry, &by_name(None))
        .await
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    let forged = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let mut value: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
        value["k"] = serde_json::json!("a\u{0}b");
        URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let error = store
        .list(&tenant, &registry, &by_name(Some(forged)))
        .await
        .unwrap_err();
    match error {
        StoreError::Scim(error) => {
            assert_eq!(error.status, 400, "{error:?}");
            assert_eq!(error.scim_type, Some(ScimType::InvalidCursor), "{error:?}");
            assert!(error.detail.contains("NUL character (U+0000)"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }

    // Admin records: a sync target's name, a schema's description.
    let error = store
        .put_target(&tenant, &actor, "tar\u{0}get", "{}")
        .await
        .unwrap_err();
    invalid_value(error);
    let schema = muster_store::SchemaRecord {
        urn: suite::CUSTOM.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: serde_json::json!({"id": suite::CUSTOM, "description": "a\u{0}b"}),
        updated: String::new(),
        client: String::new(),
        searchable: Vec::new(),
    };
    let error = store
        .put_schema(&tenant, &actor, schema, None, None, None)
        .await
        .unwrap_err();
    invalid_value(error);

    // Nothing was written.
    let page = store
        .list(&tenant, &registry, &user_query(None))
        .await
        .unwrap();
    assert_eq!(page.total_results, 2);
    assert_eq!(suite::get(&*store, "User", &ana.id).await.version, 1);
    assert_eq!(change_count(&database).await, before);
    assert!(store.targets(&tenant).await.unwrap().is_empty());
    assert!(store.list_schemas(&tenant).await.unwrap().is_empty());
    drop(store);
    database.drop_now().await;
}

/// A text of `bytes` bytes that compresses badly (PostgreSQL compresses a
/// long index row, so a repeated letter would hide the limit).
fn long_text(bytes: usize) -> String {
    let mut state: u32 = 0x9e37_79b9;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(b'a' + u8::try_from(state % 26).unwrap())
        })
        .collect()
}

/// Attack review: values longer than a B-tree index row can hold are
/// refused before the database, naming the attribute and the limit (400
/// invalidValue), never a database failure (500): userName, a Group's
/// displayName, externalId, a searchable attribute's value, a unique
/// attribute's value. A value of an attribute that is not searchable may
/// be long; making that attribute searchable is then refused (409, naming
/// the attribute and a resource holding such a value) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_too_long_to_index_are_refused() {
    use muster_scim::ScimType;
    use muster_store::postgres::MAX_INDEXED_BYTES;
    use muster_store::StoreError;
    let (database, store) = fresh().await;
    let (tenant, actor) = (suite::tenant(), suite::actor());
    assert_eq!(MAX_INDEXED_BYTES, 2000);
    let refused = |error: StoreError, path: &str, bytes: &str| match error {
        StoreError::Scim(error) => {
            assert_eq!(error.status, 400, "{error:?}");
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error:?}");
            assert_eq!(
                error.detail,
                format!(
                    "{path}: a value of {bytes} bytes is longer than the 2,000 bytes Muster \
                     indexes on PostgreSQL"
                )
            );
        }
        other => panic!("{path}: {other:?}"),
    };
    let long = long_text(2900);
    let user_schema = "urn:ietf:params:scim:schemas:core:2.0:User";
    let cases = [
        ("User", suite::user(&long), "userName"),
        ("Group", suite::group(&long), "displayName"),
        (
            "User",
            serde_json::json!({"schemas": [user_schema], "userName": "a", "externalId": long}),
            "externalId",
        ),
        (
            "User",
            serde_json::json!({"schemas": [user_schema], "userName": "b", "title": long}),
            "title",
        ),
    ];
    for (resource_type, resource, path) in cases {
        let error = store
            .create(
                &tenant,
                &actor,
                resource_type,
                suite::new(resource, Vec::new()),
            )
            .await
            .unwrap_err();
        refused(error, path, "2,900");
    }
    // At the limit: accepted (and indexed: a filter finds it).
    let at_limit = long_text(MAX_INDEXED_BYTES);
    let ana = suite::create(
        &*store,
        "User",
        serde_json::json!({"schemas": [user_schema], "userName": "ana", "title": at_limit}),
    )
    .await;
    // An update past it: refused, the resource unchanged.
    let error = suite::update(
        &*store,
        "User",
        &ana.id,
        suite::replace(serde_json::json!({
            "schemas": [user_schema], "userName": "ana", "title": long_text(2001),
        })),
    )
    .await
    .unwrap_err();
    refused(error, "title", "2,001");
    assert_eq!(suite::get(&*store, "User", &ana.id).await.version, 1);

    // A custom attribute that is not searchable keeps long values.
    let declare = |searchable: &[&str]| muster_store::SchemaRecord {
        urn: suite::CUSTOM.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: serde_json::json!({"id": suite::CUSTOM}),
        updated: String::new(),
        client: String::new(),
        searchable: searchable.iter().map(|name| (*name).to_owned()).collect(),
    };
    store
        .put_schema(&tenant, &actor, declare(&["level"]), None, None, None)
        .await
        .unwrap();
    let with_code = |name: &str, code: &str| {
        let mut resource = suite::user(name);
        resource["schemas"] = serde_json::json!([user_schema, suite::CUSTOM]);
        resource[suite::CUSTOM] = serde_json::json!({ "code": code });
        resource
    };
    let bea = suite::create(&*store, "User", with_code("bea", &long)).await;
    // ... but not as the value of a unique attribute (its claim is indexed).
    let unique = muster_store::NewResource {
        unique: vec![muster_store::UniqueAttribute {
            path: format!("{}:code", suite::CUSTOM),
            case_exact: true,
        }],
        ..suite::new(with_code("cid", &long), Vec::new())
    };
    let error = store
        .create(&tenant, &actor, "User", unique)
        .await
        .unwrap_err();
    refused(error, &format!("{}:code", suite::CUSTOM), "2,900");
    let before = change_count(&database).await;
    // Making it searchable would index the long value: refused, naming the
    // attribute and the resource; nothing changed.
    let error = store
        .put_schema(
            &tenant,
            &actor,
            declare(&["level", "code"]),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    match error {
        StoreError::Scim(error) => {
            assert_eq!(error.status, 409, "{error:?}");
            assert!(error.detail.contains(":code"), "{error:?}");
            assert!(error.detail.contains(&bea.id.0), "{error:?}");
            assert!(error.detail.contains("2,900 bytes"), "{error:?}");
            assert!(error.detail.contains("nothing was changed"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    let schemas = store.list_schemas(&tenant).await.unwrap();
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas[0].searchable, vec!["level".to_owned()]);
    assert_eq!(change_count(&database).await, before);
    // The value is still found (resource by resource, not indexed).
    let registry = suite::registry();
    let filter =
        muster_scim::Filter::parse(&format!(r#"{}:code sw "{}""#, suite::CUSTOM, &long[..10]))
            .unwrap();
    let page = store
        .list(&tenant, &registry, &user_query(Some(filter)))
        .await
        .unwrap();
    assert_eq!(page.resources.len(), 1);
    assert_eq!(page.resources[0].id, bea.id);
    // Once the long value is gone, the attribute can be made searchable.
    suite::update(
        &*store,
        "User",
        &bea.id,
        suite::replace(with_code("bea", "short")),
    )
    .await
    .unwrap();
    store
        .put_schema(
            &tenant,
            &actor,
            declare(&["level", "code"]),
            None,
            None,
            None,
        )
        .await
        .unwrap();

    // Nothing refused was written: ana and bea only.
    let page = store
        .list(&tenant, &registry, &user_query(None))
        .await
        .unwrap();
    assert_eq!(page.total_results, 2);
    let groups = store
        .list(
            &tenant,
            &registry,
            &muster_store::ListQuery {
                resource_type: "Group".to_owned(),
                ..user_query(None)
            },
        )
        .await
        .unwrap();
    assert_eq!(groups.total_results, 0);
    drop(store);
    database.drop_now().await;
}

/// The audit chain on PostgreSQL: an edit, a deletion, a swap, a
/// truncation and an edited skeleton made with SQL (the append-only
/// trigger dropped first) are found.
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
        let (database, store) = fresh().await;
        let url = database.url.clone();
        let sql = move |statement: &'static str| {
            let url = url.clone();
            Box::pin(async move {
                let client = pg::connect(&url).await;
                let refused = client.batch_execute(statement).await;
                assert!(refused.is_err(), "{statement} was not refused");
                client
                    .batch_execute("DROP TRIGGER audit_log_guard ON audit_log")
                    .await
                    .unwrap();
                client.batch_execute(statement).await.unwrap();
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        };
        audit::tampering_is_found(&*store, tamper, &sql).await;
        drop(store);
        database.drop_now().await;
    }
}
