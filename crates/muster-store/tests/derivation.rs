//! Derived values on SQLite (`muster_store::Derivation`): a toy derivation
//! (`{"groupCount": n, "names": [group displays], "title": TITLE}`) is
//! recomputed in the transaction of every write that affects a user (its
//! own create and update, a membership change also through nesting, a
//! group rename or delete, a rule-set put with `rederive`, a custom schema
//! put or delete with `rederive`), stored in the
//! user's JSON, its index (filters find it) and its change records; and
//! writes without a derivation behave as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA};
use muster_scim::{Attribute, AttributeType, Filter, Schema, SchemaRegistry};
use muster_store::sqlite::SqliteStore;
use muster_store::{
    Actor, ChangeKind, ChangePayload, ChangeRecord, Derivation, ListQuery, Member, MemberChange,
    NewResource, Page, Precondition, Removal, ResourceId, RewriteFn, RewriteOutcome, SchemaRecord,
    SharedDerivation, Store, StoreError, StoredResource, TenantId, Update, UpdateFn,
};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The toy derivation's URN.
const DERIVED: &str = "urn:example:params:scim:schemas:extension:derived:2.0:User";
/// A custom attribute never returned (kept out of change records).
const SECRET: &str = "urn:example:params:scim:schemas:extension:secret:2.0:User";

/// Counts a user's groups, names them, and shouts (or not) its title.
struct Toy {
    /// Whether the title is upper-cased (the "rule set" in force).
    upper: bool,
    /// How many times `derive` ran.
    calls: AtomicUsize,
    never_returned: Vec<String>,
}

impl Toy {
    fn shared(upper: bool) -> (Arc<Toy>, SharedDerivation) {
        let toy = Arc::new(Toy {
            upper,
            calls: AtomicUsize::new(0),
            never_returned: vec![format!("{SECRET}:pin")],
        });
        let shared = SharedDerivation(Arc::clone(&toy) as Arc<dyn Derivation>);
        (toy, shared)
    }
}

impl Derivation for Toy {
    fn urn(&self) -> &str {
        DERIVED
    }

    fn derive(&self, user: &Value) -> Option<Value> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // The derivation never sees its own previous value.
        assert!(user.get(DERIVED).is_none(), "{user}");
        assert!(user["id"].is_string() && user["meta"].is_object(), "{user}");
        let groups = user["groups"].as_array().cloned().unwrap_or_default();
        let mut value = serde_json::Map::new();
        if !groups.is_empty() {
            let mut names: Vec<Value> = groups.iter().map(|g| g["display"].clone()).collect();
            names.sort_by_key(Value::to_string);
            value.insert("groupCount".into(), json!(groups.len()));
            value.insert("names".into(), Value::Array(names));
        }
        if let Some(title) = user["title"].as_str() {
            let title = if self.upper {
                title.to_uppercase()
            } else {
                title.to_owned()
            };
            value.insert("title".into(), json!(title));
        }
        // An empty object: the store leaves the extension absent.
        Some(Value::Object(value))
    }

    fn never_returned(&self) -> &[String] {
        &self.never_returned
    }
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn actor() -> Actor {
    Actor {
        client: "derivation-test".to_owned(),
        request_id: "r".to_owned(),
    }
}

fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

/// The registry filters are resolved with: the toy extension bound to User.
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    registry
        .add_schema(Schema {
            id: DERIVED.to_owned(),
            name: Some("Derived".to_owned()),
            description: None,
            attributes: vec![
                Attribute::new("groupCount", AttributeType::Integer),
                Attribute {
                    multi_valued: true,
                    ..Attribute::new("names", AttributeType::String)
                },
                Attribute::new("title", AttributeType::String),
            ],
        })
        .unwrap();
    registry.bind_extension("User", DERIVED, false).unwrap();
    registry
}

fn user(name: &str, title: Option<&str>) -> Value {
    let mut user = json!({"schemas": [USER_SCHEMA], "userName": name});
    if let Some(title) = title {
        user["title"] = json!(title);
    }
    user
}

fn member(id: &ResourceId) -> Member {
    Member {
        value: id.clone(),
        kind: None,
    }
}

async fn create(
    store: &SqliteStore,
    resource_type: &str,
    resource: Value,
    members: Vec<Member>,
    derivation: Option<&SharedDerivation>,
) -> StoredResource {
    store
        .create(
            &tenant(),
            &actor(),
            resource_type,
            NewResource {
                resource,
                members,
                derivation: derivation.cloned(),
                ..NewResource::default()
            },
        )
        .await
        .unwrap()
}

async fn group(
    store: &SqliteStore,
    name: &str,
    members: &[&ResourceId],
    derivation: Option<&SharedDerivation>,
) -> StoredResource {
    let members = members.iter().map(|id| member(id)).collect();
    let resource = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
    create(store, "Group", resource, members, derivation).await
}

/// An update that sets the attributes to `resource` (and membership).
fn set(
    resource: Option<Value>,
    member_changes: Vec<MemberChange>,
    derivation: Option<&SharedDerivation>,
) -> UpdateFn {
    let derivation = derivation.cloned();
    Box::new(move |current: &StoredResource| {
        Ok(Some(Update {
            resource: resource.unwrap_or_else(|| current.resource.clone()),
            member_changes,
            derivation,
            ..Update::default()
        }))
    })
}

async fn update(
    store: &SqliteStore,
    resource_type: &str,
    id: &ResourceId,
    update: UpdateFn,
) -> (StoredResource, bool) {
    store
        .update(
            &tenant(),
            &actor(),
            resource_type,
            id,
            Precondition::None,
            false,
            update,
        )
        .await
        .unwrap()
}

async fn get(store: &SqliteStore, id: &ResourceId) -> StoredResource {
    store.get(&tenant(), "User", id, false).await.unwrap()
}

/// The user names a filter finds (through the store's SQL and index).
async fn found(store: &SqliteStore, filter: &str) -> Vec<String> {
    let query = ListQuery {
        resource_type: "User".to_owned(),
        filter: Some(Filter::parse(filter).unwrap()),
        sort_by: None,
        descending: false,
        page: Page::Index {
            start_index: 1,
            count: 100,
        },
        include_members: false,
    };
    let mut names: Vec<String> = store
        .list(&tenant(), &registry(), &query)
        .await
        .unwrap()
        .resources
        .iter()
        .map(|stored| stored.resource["userName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The after-image a record shows.
fn shown(record: &ChangeRecord) -> &Value {
    record.payload.resource().expect("a record with a resource")
}

/// A regrouped user's record: its derived value as shown (JSON null when
/// now absent), `None` when the record says it did not change.
fn regrouped(record: &ChangeRecord) -> Option<Value> {
    match &record.payload {
        ChangePayload::GroupsChanged { derived } => derived.as_ref().map(|derived| {
            assert_eq!(derived.urn, DERIVED);
            derived.value.clone().unwrap_or(Value::Null)
        }),
        other => panic!("not a regrouped record: {other:?}"),
    }
}

async fn changes_after(store: &SqliteStore, after: u64) -> Vec<ChangeRecord> {
    store.changes(&tenant(), after, 10_000).await.unwrap()
}

async fn last_sequence(store: &SqliteStore) -> u64 {
    changes_after(store, 0)
        .await
        .last()
        .map_or(0, |change| change.sequence)
}

/// The change records of one resource after `after`.
async fn changes_of(store: &SqliteStore, after: u64, id: &ResourceId) -> Vec<ChangeRecord> {
    changes_after(store, after)
        .await
        .into_iter()
        .filter(|change| change.resource_id == *id)
        .collect()
}

fn schemas(stored: &StoredResource) -> Vec<String> {
    stored.resource["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|urn| urn.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_user_is_stored_with_its_derived_value_indexed_and_in_its_change_record() {
    let (_dir, store) = open();
    let (_, toy) = Toy::shared(true);
    let alice = create(
        &store,
        "User",
        user("alice", Some("agent")),
        Vec::new(),
        Some(&toy),
    )
    .await;
    assert_eq!(alice.resource[DERIVED], json!({"title": "AGENT"}));
    assert_eq!(schemas(&alice), [USER_SCHEMA, DERIVED]);
    assert_eq!(get(&store, &alice.id).await.resource, alice.resource);
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"AGENT\"")).await,
        ["alice"]
    );
    let created = changes_of(&store, 0, &alice.id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].kind, ChangeKind::Create);
    assert_eq!(shown(&created[0])[DERIVED], json!({"title": "AGENT"}));
    // Nothing derived: the extension and its URN are absent, never `{}`.
    let bob = create(&store, "User", user("bob", None), Vec::new(), Some(&toy)).await;
    assert!(bob.resource.get(DERIVED).is_none(), "{}", bob.resource);
    assert_eq!(schemas(&bob), [USER_SCHEMA]);
}

#[tokio::test]
async fn an_update_recomputes_the_value_and_the_store_owns_it() {
    let (_dir, store) = open();
    let (toy_state, toy) = Toy::shared(true);
    let alice = create(
        &store,
        "User",
        user("alice", Some("agent")),
        Vec::new(),
        Some(&toy),
    )
    .await;
    let sequence = last_sequence(&store).await;
    // The title changes: so does the value, in the same new version.
    let (changed, _) = update(
        &store,
        "User",
        &alice.id,
        set(Some(user("alice", Some("lead"))), Vec::new(), Some(&toy)),
    )
    .await;
    assert_eq!(changed.version, 2);
    assert_eq!(changed.resource[DERIVED], json!({"title": "LEAD"}));
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"AGENT\"")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"LEAD\"")).await,
        ["alice"]
    );
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].version, 2);
    assert_eq!(shown(&records[0])[DERIVED]["title"], "LEAD");

    // A value an update puts under the URN (a replacement that carries a
    // stale or forged one) is replaced by the derived one: nothing changes.
    let mut forged = changed.resource.clone();
    forged[DERIVED] = json!({"title": "CEO", "groupCount": 99});
    let (same, _) = update(
        &store,
        "User",
        &alice.id,
        set(Some(forged), Vec::new(), Some(&toy)),
    )
    .await;
    assert_eq!(same.version, 2, "{}", same.resource);
    assert_eq!(same.resource[DERIVED], json!({"title": "LEAD"}));
    // A replacement without the value (a PUT body) keeps the derived one.
    let (same, _) = update(
        &store,
        "User",
        &alice.id,
        set(Some(user("alice", Some("lead"))), Vec::new(), Some(&toy)),
    )
    .await;
    assert_eq!(same.version, 2);
    assert_eq!(schemas(&same), [USER_SCHEMA, DERIVED]);

    // Nothing left to derive: the extension and its URN go, and its rows.
    let calls = toy_state.calls.load(Ordering::SeqCst);
    let (cleared, _) = update(
        &store,
        "User",
        &alice.id,
        set(Some(user("alice", None)), Vec::new(), Some(&toy)),
    )
    .await;
    assert!(toy_state.calls.load(Ordering::SeqCst) > calls);
    assert_eq!(cleared.version, 3);
    assert!(cleared.resource.get(DERIVED).is_none());
    assert_eq!(schemas(&cleared), [USER_SCHEMA]);
    assert_eq!(
        found(&store, &format!("{DERIVED}:title pr")).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn membership_changes_recompute_the_users_under_them_also_through_nesting() {
    let (_dir, store) = open();
    let (_, toy) = Toy::shared(true);
    let alice = create(&store, "User", user("alice", None), Vec::new(), Some(&toy)).await;
    let bob = create(&store, "User", user("bob", None), Vec::new(), Some(&toy)).await;

    // A new group with alice: alice gets a new version, and a change
    // record with the groups changed and the new value (only that value:
    // the rest of alice did not change).
    let sequence = last_sequence(&store).await;
    let agents = group(&store, "Agents", &[&alice.id], Some(&toy)).await;
    let read = get(&store, &alice.id).await;
    assert_eq!(read.version, 2);
    assert_eq!(
        read.resource[DERIVED],
        json!({"groupCount": 1, "names": ["Agents"]})
    );
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        regrouped(&records[0]),
        Some(json!({"groupCount": 1, "names": ["Agents"]}))
    );
    assert_eq!(records[0].version, 2);
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Agents\"")).await,
        ["alice"]
    );
    assert_eq!(get(&store, &bob.id).await.version, 1);

    // Nesting: Agents joins Support; alice is under Support indirectly.
    let support = group(&store, "Support", &[], Some(&toy)).await;
    let sequence = last_sequence(&store).await;
    update(
        &store,
        "Group",
        &support.id,
        set(
            None,
            vec![MemberChange::Add(vec![member(&agents.id)])],
            Some(&toy),
        ),
    )
    .await;
    let read = get(&store, &alice.id).await;
    assert_eq!(read.version, 3);
    assert_eq!(
        read.resource[DERIVED],
        json!({"groupCount": 2, "names": ["Agents", "Support"]})
    );
    assert_eq!(changes_of(&store, sequence, &alice.id).await.len(), 1);
    assert_eq!(
        found(&store, &format!("{DERIVED}:groupCount eq 2")).await,
        ["alice"]
    );

    // Bob joins Agents (a member added to the nested group).
    update(
        &store,
        "Group",
        &agents.id,
        set(
            None,
            vec![MemberChange::Add(vec![member(&bob.id)])],
            Some(&toy),
        ),
    )
    .await;
    assert_eq!(
        get(&store, &bob.id).await.resource[DERIVED]["names"],
        json!(["Agents", "Support"])
    );
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Support\"")).await,
        ["alice", "bob"]
    );

    // Agents leaves Support: both users lose it.
    update(
        &store,
        "Group",
        &support.id,
        set(None, vec![MemberChange::ReplaceAll(Vec::new())], Some(&toy)),
    )
    .await;
    for id in [&alice.id, &bob.id] {
        assert_eq!(
            get(&store, id).await.resource[DERIVED],
            json!({"groupCount": 1, "names": ["Agents"]})
        );
    }
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Support\"")).await,
        Vec::<String>::new()
    );

    // Alice leaves Agents: nothing left to derive.
    update(
        &store,
        "Group",
        &agents.id,
        set(
            None,
            vec![MemberChange::Remove(vec![alice.id.clone()])],
            Some(&toy),
        ),
    )
    .await;
    let read = get(&store, &alice.id).await;
    assert!(read.resource.get(DERIVED).is_none(), "{}", read.resource);
    assert_eq!(schemas(&read), [USER_SCHEMA]);
}

#[tokio::test]
async fn a_group_rename_or_delete_recomputes_its_users() {
    let (_dir, store) = open();
    let (_, toy) = Toy::shared(true);
    let alice = create(&store, "User", user("alice", None), Vec::new(), Some(&toy)).await;
    let agents = group(&store, "Agents", &[&alice.id], Some(&toy)).await;
    let support = group(&store, "Support", &[&agents.id], Some(&toy)).await;
    assert_eq!(get(&store, &alice.id).await.version, 3);

    let sequence = last_sequence(&store).await;
    update(
        &store,
        "Group",
        &support.id,
        set(
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Customer Care"})),
            Vec::new(),
            Some(&toy),
        ),
    )
    .await;
    let read = get(&store, &alice.id).await;
    assert_eq!(read.version, 4);
    assert_eq!(
        read.resource[DERIVED]["names"],
        json!(["Agents", "Customer Care"])
    );
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(regrouped(&records[0]).unwrap()["names"][1], "Customer Care");
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Support\"")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Customer Care\"")).await,
        ["alice"]
    );

    // The group is deleted with the derivation: alice is recomputed.
    store
        .delete_with(
            &tenant(),
            &actor(),
            "Group",
            &support.id,
            Precondition::None,
            Removal {
                derivation: Some(toy.clone()),
                schema_generation: None,
            },
        )
        .await
        .unwrap();
    let read = get(&store, &alice.id).await;
    assert_eq!(read.version, 5);
    assert_eq!(
        read.resource[DERIVED],
        json!({"groupCount": 1, "names": ["Agents"]})
    );
    assert_eq!(
        found(&store, &format!("{DERIVED}:names eq \"Customer Care\"")).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_rule_set_put_with_rederive_rewrites_the_users_whose_value_changes() {
    let (_dir, store) = open();
    let (_, upper) = Toy::shared(true);
    let mut ids = Vec::new();
    for (name, title) in [
        ("alice", Some("agent")),
        ("bob", None),
        ("carol", Some("LEAD")),
    ] {
        ids.push(
            create(&store, "User", user(name, title), Vec::new(), Some(&upper))
                .await
                .id,
        );
    }
    group(&store, "Agents", &[&ids[1]], Some(&upper)).await;
    let versions_before: Vec<u64> = {
        let mut versions = Vec::new();
        for id in &ids {
            versions.push(get(&store, id).await.version);
        }
        versions
    };
    assert_eq!(versions_before, [1, 2, 1]);
    let sequence = last_sequence(&store).await;

    // The new "rules" keep titles as written: only alice's value changes
    // (bob has no title, carol's is upper case already).
    let (lower_state, lower) = Toy::shared(false);
    let applied = store
        .put_rule_set(
            &tenant(),
            &actor(),
            "v1",
            "toml",
            "",
            Some(lower.clone()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(applied.record.version, 1);
    assert_eq!(applied.rewritten, 1);
    assert_eq!(lower_state.calls.load(Ordering::SeqCst), 3);
    let alice = get(&store, &ids[0]).await;
    assert_eq!(
        (alice.version, &alice.resource[DERIVED]),
        (2, &json!({"title": "agent"}))
    );
    assert_eq!(get(&store, &ids[1]).await.version, 2);
    assert_eq!(get(&store, &ids[2]).await.version, 1);
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"agent\"")).await,
        ["alice"]
    );
    assert_eq!(
        found(&store, &format!("{DERIVED}:title pr")).await,
        ["alice", "carol"]
    );
    let records = changes_after(&store, sequence).await;
    let kinds: Vec<(ChangeKind, String)> = records
        .iter()
        .map(|change| (change.kind, change.resource_id.0.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::RuleSet, "1".to_owned()),
            (ChangeKind::Update, ids[0].0.clone())
        ]
    );
    assert!(matches!(
        records[1].payload,
        ChangePayload::Resource {
            rule_set: Some(1),
            ..
        }
    ));
    assert_eq!(shown(&records[1])[DERIVED]["title"], "agent");

    // The same rules again: nothing to rewrite.
    let again = store
        .put_rule_set(&tenant(), &actor(), "v1", "toml", "", Some(lower), None)
        .await
        .unwrap();
    assert_eq!((again.record.version, again.rewritten), (2, 0));
    // Without rederive: stored, nothing rewritten.
    let plain = store
        .put_rule_set(&tenant(), &actor(), "v1", "toml", "", None, None)
        .await
        .unwrap();
    assert_eq!((plain.record.version, plain.rewritten), (3, 0));
    assert_eq!(get(&store, &ids[0]).await.version, 2);
}

#[tokio::test]
async fn stale_generations_refuse_a_rule_set_put_and_a_delete() {
    let (_dir, store) = open();
    let (_, toy) = Toy::shared(true);
    let alice = create(
        &store,
        "User",
        user("alice", Some("x")),
        Vec::new(),
        Some(&toy),
    )
    .await;
    let agents = group(&store, "Agents", &[&alice.id], Some(&toy)).await;
    let generation = store.schema_generation(&tenant()).await.unwrap();
    let applied = store
        .put_rule_set(
            &tenant(),
            &actor(),
            "v1",
            "toml",
            "",
            Some(toy.clone()),
            Some(generation),
        )
        .await
        .unwrap();
    assert_eq!(applied.rewritten, 0);
    // The put moved the generation on: a put or delete at the old one is
    // refused, nothing written.
    let stale = store
        .put_rule_set(
            &tenant(),
            &actor(),
            "v2",
            "toml",
            "",
            Some(toy.clone()),
            Some(generation),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::StaleSchema { .. }), "{stale:?}");
    assert_eq!(store.rule_set_history(&tenant()).await.unwrap().len(), 1);
    let stale = store
        .delete_with(
            &tenant(),
            &actor(),
            "Group",
            &agents.id,
            Precondition::None,
            Removal {
                derivation: Some(toy.clone()),
                schema_generation: Some(generation),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::StaleSchema { .. }), "{stale:?}");
    assert!(store
        .get(&tenant(), "Group", &agents.id, false)
        .await
        .is_ok());
}

#[tokio::test]
async fn values_never_returned_stay_out_of_the_change_records_of_regrouped_users() {
    let (_dir, store) = open();
    let (_, toy) = Toy::shared(true);
    let resource = json!({"schemas": [USER_SCHEMA, SECRET], "userName": "alice",
                          SECRET: {"pin": "1234", "hint": "cat"}});
    let alice = store
        .create(
            &tenant(),
            &actor(),
            "User",
            NewResource {
                resource,
                never_returned: vec![format!("{SECRET}:pin")],
                derivation: Some(toy.clone()),
                ..NewResource::default()
            },
        )
        .await
        .unwrap();
    let sequence = last_sequence(&store).await;
    group(&store, "Agents", &[&alice.id], Some(&toy)).await;
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 1);
    // Only the derived value is shown: nothing of the secret extension.
    let derived = regrouped(&records[0]).unwrap();
    assert_eq!(derived["names"], json!(["Agents"]), "{derived}");
    let text = records[0].payload.to_json();
    assert!(text.get("resource").is_none() && text.get(SECRET).is_none());
    assert!(!text.to_string().contains("1234"));
    // The stored user keeps it.
    assert_eq!(get(&store, &alice.id).await.resource[SECRET]["pin"], "1234");
}

#[tokio::test]
async fn without_a_derivation_writes_behave_as_before() {
    let (_dir, store) = open();
    let alice = create(
        &store,
        "User",
        user("alice", Some("agent")),
        Vec::new(),
        None,
    )
    .await;
    assert!(alice.resource.get(DERIVED).is_none());
    // A regrouped user gets a new version and only `{"groups": "changed"}`.
    let sequence = last_sequence(&store).await;
    let agents = group(&store, "Agents", &[&alice.id], None).await;
    let read = get(&store, &alice.id).await;
    assert_eq!(read.version, 2);
    assert!(read.resource.get(DERIVED).is_none());
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].payload,
        ChangePayload::GroupsChanged { derived: None }
    );
    // Rename and delete: the same.
    update(
        &store,
        "Group",
        &agents.id,
        set(
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Renamed"})),
            Vec::new(),
            None,
        ),
    )
    .await;
    store
        .delete(&tenant(), &actor(), "Group", &agents.id, Precondition::None)
        .await
        .unwrap();
    let records = changes_of(&store, sequence, &alice.id).await;
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|change| change.payload == ChangePayload::GroupsChanged { derived: None }));
    assert_eq!(get(&store, &alice.id).await.version, 4);
    // A value under the URN is stored as given (the store derives
    // nothing), indexed like any other.
    let mut given = user("alice", Some("agent"));
    given[DERIVED] = json!({"title": "given"});
    given["schemas"] = json!([USER_SCHEMA, DERIVED]);
    let (kept, _) = update(
        &store,
        "User",
        &alice.id,
        set(Some(given), Vec::new(), None),
    )
    .await;
    assert_eq!(kept.resource[DERIVED], json!({"title": "given"}));
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"given\"")).await,
        ["alice"]
    );
}

/// A custom extension a derivation reads.
const SITES: &str = "urn:example:params:scim:schemas:extension:sites:2.0:User";

/// Derives `{"title": <the user's site, upper-cased>}` from the custom
/// attribute `site` (a rule reading a custom attribute).
struct SiteToy;

impl Derivation for SiteToy {
    fn urn(&self) -> &str {
        DERIVED
    }

    fn derive(&self, user: &Value) -> Option<Value> {
        let site = user[SITES]["site"].as_str()?;
        Some(json!({ "title": site.to_uppercase() }))
    }
}

fn sites_schema() -> SchemaRecord {
    SchemaRecord {
        urn: SITES.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": SITES, "attributes": [{"name": "site"}]}),
        updated: String::new(),
        client: String::new(),
        searchable: Vec::new(),
    }
}

/// A schema rewrite that takes the values under `SITES` off every User
/// holding one, as removing the schema with force does.
fn strip_sites() -> RewriteFn {
    Box::new(|stored: &StoredResource| {
        let Some(object) = stored.resource.as_object() else {
            return Ok(None);
        };
        if !object.contains_key(SITES) {
            return Ok(None);
        }
        let mut resource = stored.resource.clone();
        let removed = resource
            .as_object_mut()
            .and_then(|object| object.remove(SITES))
            .unwrap_or(Value::Null);
        if let Some(Value::Array(schemas)) = resource.get_mut("schemas") {
            schemas.retain(|urn| urn != SITES);
        }
        Ok(Some(RewriteOutcome {
            resource,
            removed: json!({ SITES: removed }),
            unmapped: None,
            never_returned: Vec::new(),
        }))
    })
}

/// A schema put or delete with `rederive` recomputes every User's derived
/// value in its transaction, after its rewrite: a User the rewrite changes
/// gets its new derived value in the same version (one change record); a
/// User the rewrite leaves alone but whose value the new schemas change
/// gets a new version and a change record `{"resource": ..}`; the others
/// are left as they are. Without `rederive`, the stored values stay.
#[tokio::test]
async fn a_schema_change_with_rederive_recomputes_the_users_in_its_transaction() {
    let (_dir, store) = open();
    store
        .put_schema(&tenant(), &actor(), sites_schema(), None, None, None)
        .await
        .unwrap();
    let site = SharedDerivation::new(SiteToy);
    let mut ids = Vec::new();
    for (name, value) in [
        ("alice", Some("apac")),
        ("bob", Some("emea")),
        ("carol", None),
    ] {
        let mut resource = user(name, None);
        if let Some(value) = value {
            resource["schemas"] = json!([USER_SCHEMA, SITES]);
            resource[SITES] = json!({ "site": value });
        }
        let created = create(&store, "User", resource, Vec::new(), Some(&site)).await;
        ids.push(created.id);
    }
    assert_eq!(
        found(&store, &format!("{DERIVED}:title eq \"APAC\"")).await,
        ["alice"]
    );

    // The same schema again, with a derivation whose result differs only
    // for bob (the "rules" see bob's site no more): bob alone is written.
    struct OnlyApac;
    impl Derivation for OnlyApac {
        fn urn(&self) -> &str {
            DERIVED
        }
        fn derive(&self, user: &Value) -> Option<Value> {
            SiteToy
                .derive(user)
                .filter(|value| value["title"] == "APAC")
        }
    }
    let sequence = last_sequence(&store).await;
    let outcome = store
        .put_schema(
            &tenant(),
            &actor(),
            sites_schema(),
            None,
            Some(SharedDerivation::new(OnlyApac)),
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.rewritten, outcome.rederived), (0, 1));
    let bob = get(&store, &ids[1]).await;
    assert_eq!(bob.version, 2);
    assert!(bob.resource.get(DERIVED).is_none(), "{}", bob.resource);
    assert!(!schemas(&bob).contains(&DERIVED.to_owned()));
    assert_eq!(get(&store, &ids[0]).await.version, 1);
    assert_eq!(get(&store, &ids[2]).await.version, 1);
    let records = changes_after(&store, sequence).await;
    let kinds: Vec<(ChangeKind, String)> = records
        .iter()
        .map(|change| (change.kind, change.resource_id.0.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Schema, SITES.to_owned()),
            (ChangeKind::Update, ids[1].0.clone()),
        ]
    );
    assert!(shown(&records[1]).is_object());
    assert!(matches!(
        records[1].payload,
        ChangePayload::Resource { rule_set: None, .. }
    ));
    assert_eq!(
        found(&store, &format!("{DERIVED}:title pr")).await,
        ["alice"]
    );

    // Deleting the schema, its values stripped by the rewrite: alice's
    // derived value goes in the rewrite's own version and change record.
    let sequence = last_sequence(&store).await;
    let outcome = store
        .delete_schema(
            &tenant(),
            &actor(),
            SITES,
            Some(strip_sites()),
            Some(site.clone()),
            None,
        )
        .await
        .unwrap();
    // alice and bob held sites; the pass after the rewrite finds them
    // up to date.
    assert_eq!((outcome.rewritten, outcome.rederived), (2, 0));
    let alice = get(&store, &ids[0]).await;
    assert_eq!(alice.version, 2);
    assert!(alice.resource.get(DERIVED).is_none(), "{}", alice.resource);
    assert!(alice.resource.get(SITES).is_none(), "{}", alice.resource);
    assert_eq!(get(&store, &ids[1]).await.version, 3);
    assert_eq!(get(&store, &ids[2]).await.version, 1);
    let alice_records = changes_of(&store, sequence, &ids[0]).await;
    assert_eq!(alice_records.len(), 1, "{alice_records:?}");
    assert!(shown(&alice_records[0]).get(DERIVED).is_none());
    assert!(alice_records[0].payload.removed().unwrap().is_object());
    assert!(found(&store, &format!("{DERIVED}:title pr"))
        .await
        .is_empty());

    // Without rederive, a schema change leaves derived values as stored.
    store
        .put_schema(&tenant(), &actor(), sites_schema(), None, None, None)
        .await
        .unwrap();
    let dave = {
        let mut resource = user("dave", None);
        resource["schemas"] = json!([USER_SCHEMA, SITES]);
        resource[SITES] = json!({ "site": "amer" });
        create(&store, "User", resource, Vec::new(), Some(&site)).await
    };
    let outcome = store
        .put_schema(&tenant(), &actor(), sites_schema(), None, None, None)
        .await
        .unwrap();
    assert_eq!(outcome.rederived, 0);
    let dave = get(&store, &dave.id).await;
    assert_eq!(
        (dave.version, &dave.resource[DERIVED]),
        (1, &json!({"title": "AMER"}))
    );
}
