//! The backend-generic store test suite: every function takes a fresh, empty
//! store as `&dyn Store` (or `Arc<dyn Store>` when it spawns tasks), so the
//! same checks run on SQLite (`tests/sqlite.rs`) and on any later backend.
//!
//! Each test that filters compares the store's answer both with the expected
//! set and with the in-memory reference evaluator (`Filter::matches`).

#![allow(dead_code)]

pub mod audit;
pub mod clients;
pub mod custom;
pub mod lifecycle;
pub mod tenants;
#[allow(unused_imports)]
pub use lifecycle::{
    purge_erases_personal_data, restore_brings_the_same_id_back, soft_delete_keeps_a_tombstone,
};

/// Runs every backend-generic store test through a backend's runner
/// macros: `$each` makes a test of a function taking the store by
/// reference (given its module: `suite`, `custom`), `$shared` one taking
/// `Arc<dyn Store>`. A test listed here runs on every backend.
#[allow(unused_macros)]
macro_rules! every_store_test {
    ($each:ident, $shared:ident) => {
        $each!(
            suite: create_fills_id_and_meta,
            get_and_delete_unknown_are_not_found,
            update_replaces_and_keeps_created,
            delete_removes_the_resource,
            non_objects_are_refused,
            user_names_are_unique_case_insensitively,
            group_display_names_are_unique,
            versions_and_preconditions,
            update_sees_current_state_without_members,
            membership_add_remove_replace,
            members_must_exist,
            rolled_back_writes_leave_the_index_consistent,
            groups_read_without_members,
            deleting_a_member_updates_its_groups,
            users_see_direct_and_nested_groups,
            only_groups_have_members,
            change_records_follow_writes,
            tokens,
            index_paging,
            deep_index_pages_follow_creates_and_deletes,
            cursor_paging,
            sorting,
            filters_of_every_operator,
            membership_filters,
            soft_delete_keeps_a_tombstone,
            restore_brings_the_same_id_back,
            purge_erases_personal_data,
        );
        $each!(
            clients: clients_round_trip_and_rotate,
            access_tokens_expire_and_die_with_their_client,
            rotation_without_grace_ends_access_tokens,
            bearer_tokens_carry_options,
        );
        $each!(
            custom: schema_records_round_trip,
            schema_rewrite_removes_values,
            failing_rewrite_changes_nothing,
            scan_visits_every_resource,
            unmapped_values_round_trip,
            settings_round_trip,
            attribute_usage_counts_and_attributes,
            unique_attributes_are_enforced,
        );
        $each!(
            tenants: tenants_register_and_remove,
            removal_races_writes,
        );
        $each!(
            audit: entries_follow_changes,
            failed_writes_leave_no_entry,
        );
        $shared!(
            concurrent_member_adds_lose_nothing,
            concurrent_updates_of_one_user_serialise,
            failed_writes_do_not_affect_others,
            failed_jobs_in_one_batch_do_not_affect_others,
            a_failure_in_a_batch_calls_no_update_closure_twice,
            a_panicking_update_fails_alone,
        );
    };
}
#[allow(unused_imports)]
pub(crate) use every_store_test;

/// Runs every backend-generic test of the change feed and the sync tables
/// (`feed.rs`) through a backend's `$each` runner (given the module `feed`).
#[allow(unused_macros)]
macro_rules! every_feed_test {
    ($each:ident) => {
        $each!(
            feed: deletes_name_what_was_deleted,
            consumers_keep_cursors_that_never_move_back,
            pruning_keeps_what_a_consumer_has_not_passed,
            change_head_and_resource_history,
            targets_round_trip,
            deliveries_and_dead_letters,
            target_leases_go_to_one_holder_until_they_expire,
        );
    };
}
#[allow(unused_imports)]
pub(crate) use every_feed_test;

use std::collections::BTreeSet;
use std::sync::Arc;

use muster_scim::schema::builtin::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use muster_scim::{AttrPath, Attribute, AttributeType, Filter, Schema, SchemaRegistry, ScimType};
use muster_store::{
    Actor, ChangeKind, ChangePayload, DeletedIdentity, ListQuery, Member, MemberChange,
    MembershipDelta, NewResource, Page, Precondition, ResourceId, Store, StoreError,
    StoredResource, TenantId, TokenRecord, Update, UpdateFn,
};
use serde_json::{json, Value};

/// The custom extension the filter tests register at run time.
pub const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User";

pub fn tenant() -> TenantId {
    TenantId::default_tenant()
}

pub fn actor() -> Actor {
    Actor {
        client: "suite".to_owned(),
        request_id: "request-1".to_owned(),
    }
}

pub fn user(user_name: &str) -> Value {
    json!({ "schemas": [USER_SCHEMA], "userName": user_name })
}

pub fn group(display_name: &str) -> Value {
    json!({ "schemas": [GROUP_SCHEMA], "displayName": display_name })
}

/// What `Store::create` takes: a resource and its initial members, no
/// captured undeclared values.
pub fn new(resource: Value, members: Vec<Member>) -> NewResource {
    NewResource {
        resource,
        members,
        ..NewResource::default()
    }
}

pub fn member(id: &ResourceId) -> Member {
    Member {
        value: id.clone(),
        kind: None,
    }
}

/// The registry with the custom extension bound to User.
pub fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let attribute = |name: &str, kind| Attribute::new(name, kind);
    registry
        .add_schema(Schema {
            id: CUSTOM.to_owned(),
            name: Some("MusterTest".to_owned()),
            description: None,
            attributes: vec![
                attribute("level", AttributeType::Integer),
                attribute("score", AttributeType::Decimal),
                attribute("hired", AttributeType::DateTime),
                attribute("flag", AttributeType::Boolean),
                Attribute {
                    case_exact: true,
                    ..attribute("code", AttributeType::String)
                },
                Attribute {
                    multi_valued: true,
                    ..attribute("tags", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", CUSTOM, false).unwrap();
    registry
}

pub async fn create(store: &dyn Store, resource_type: &str, resource: Value) -> StoredResource {
    store
        .create(
            &tenant(),
            &actor(),
            resource_type,
            new(resource, Vec::new()),
        )
        .await
        .unwrap()
}

pub async fn get(store: &dyn Store, resource_type: &str, id: &ResourceId) -> StoredResource {
    store.get(&tenant(), resource_type, id, true).await.unwrap()
}

/// An update that replaces the attributes with `resource`.
pub fn replace(resource: Value) -> UpdateFn {
    Box::new(move |_current| {
        Ok(Some(Update {
            resource,
            member_changes: Vec::new(),
            unmapped: None,
            unique: Vec::new(),
            schema_generation: None,
            never_returned: Vec::new(),
            derivation: None,
        }))
    })
}

/// An update that keeps the attributes and changes membership.
pub fn members_change(change: MemberChange) -> UpdateFn {
    Box::new(move |current| {
        Ok(Some(Update {
            resource: current.resource.clone(),
            member_changes: vec![change],
            unmapped: None,
            unique: Vec::new(),
            schema_generation: None,
            never_returned: Vec::new(),
            derivation: None,
        }))
    })
}

pub async fn update(
    store: &dyn Store,
    resource_type: &str,
    id: &ResourceId,
    update: UpdateFn,
) -> Result<(StoredResource, bool), StoreError> {
    store
        .update(
            &tenant(),
            &actor(),
            resource_type,
            id,
            Precondition::None,
            true,
            update,
        )
        .await
}

pub fn query(resource_type: &str, filter: Option<&str>, page: Page) -> ListQuery {
    ListQuery {
        resource_type: resource_type.to_owned(),
        filter: filter.map(|text| Filter::parse(text).unwrap()),
        sort_by: None,
        descending: false,
        page,
        include_members: true,
    }
}

fn everything() -> Page {
    Page::Index {
        start_index: 1,
        count: 10_000,
    }
}

pub fn ids(resources: &[StoredResource]) -> Vec<ResourceId> {
    resources.iter().map(|stored| stored.id.clone()).collect()
}

fn text<'v>(resource: &'v Value, key: &str) -> &'v str {
    resource[key].as_str().unwrap_or_default()
}

fn expect_scim(error: StoreError, scim_type: ScimType, needle: &str) {
    match error {
        StoreError::Scim(scim) => {
            assert_eq!(scim.scim_type, Some(scim_type), "{}", scim.detail);
            assert!(scim.detail.contains(needle), "{}", scim.detail);
        }
        other => panic!("expected a SCIM {scim_type:?} error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- CRUD ----

pub async fn create_fills_id_and_meta(store: &dyn Store) {
    let created = create(
        store,
        "User",
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen@example.com",
            "id": "client-chosen",
            "meta": {"version": "W/\"99\""},
            "name": {"givenName": "Barbara"},
        }),
    )
    .await;
    let resource = &created.resource;
    assert_eq!(created.version, 1);
    assert_eq!(created.resource_type, "User");
    assert_ne!(created.id.0, "client-chosen");
    assert_eq!(text(resource, "id"), created.id.0);
    assert_eq!(created.id.0.len(), 36, "a uuid: {}", created.id.0);
    let meta = &resource["meta"];
    assert_eq!(meta["resourceType"], "User");
    assert_eq!(meta["version"], "W/\"1\"");
    assert_eq!(meta["created"], meta["lastModified"]);
    let created_at = meta["created"].as_str().unwrap();
    assert_eq!(
        created_at.len(),
        "2024-01-01T00:00:00.000Z".len(),
        "{created_at}"
    );
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert!(
        resource.get("groups").is_none(),
        "no empty groups: {resource}"
    );
    assert_eq!(resource["name"]["givenName"], "Barbara");

    let read = get(store, "User", &created.id).await;
    assert_eq!(read, created);
    let keys: Vec<&String> = read.resource.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName", "name", "meta"]);
}

pub async fn get_and_delete_unknown_are_not_found(store: &dyn Store) {
    let created = create(store, "User", user("alice")).await;
    let missing = ResourceId("00000000-0000-0000-0000-000000000000".to_owned());
    for (resource_type, id) in [("User", &missing), ("Group", &created.id)] {
        let error = store
            .get(&tenant(), resource_type, id, true)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
        let error = store
            .delete(&tenant(), &actor(), resource_type, id, Precondition::None)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
        let error = update(store, resource_type, id, replace(user("x")))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    }
}

pub async fn update_replaces_and_keeps_created(store: &dyn Store) {
    let created = create(store, "User", user("alice")).await;
    let (updated, changed) = update(
        store,
        "User",
        &created.id,
        replace(json!({"schemas": [USER_SCHEMA], "userName": "alice", "title": "CEO"})),
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.resource["title"], "CEO");
    assert_eq!(updated.resource["meta"]["version"], "W/\"2\"");
    assert_eq!(
        updated.resource["meta"]["created"],
        created.resource["meta"]["created"]
    );
    assert_eq!(get(store, "User", &created.id).await, updated);
}

pub async fn delete_removes_the_resource(store: &dyn Store) {
    let created = create(store, "User", user("alice")).await;
    store
        .delete(
            &tenant(),
            &actor(),
            "User",
            &created.id,
            Precondition::Version(1),
        )
        .await
        .unwrap();
    let error = store
        .get(&tenant(), "User", &created.id, true)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)));
    // The name is free again.
    create(store, "User", user("ALICE")).await;
}

pub async fn non_objects_are_refused(store: &dyn Store) {
    let error = store
        .create(&tenant(), &actor(), "User", new(json!(["x"]), Vec::new()))
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidSyntax, "JSON object");
}

// ---------------------------------------------------------- uniqueness ----

pub async fn user_names_are_unique_case_insensitively(store: &dyn Store) {
    let first = create(store, "User", user("bjensen@example.com")).await;
    let error = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(user("BJensen@Example.COM"), Vec::new()),
        )
        .await
        .unwrap_err();
    let StoreError::Conflict(detail) = error else {
        panic!("expected a conflict, got {error:?}");
    };
    assert_eq!(
        detail,
        format!(
            "userName 'BJensen@Example.COM' is already taken by User {}",
            first.id.0
        )
    );
    // Unicode case folding too.
    create(store, "User", user("ÉMILE")).await;
    let error = store
        .create(&tenant(), &actor(), "User", new(user("émile"), Vec::new()))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

    // An update into a taken name conflicts; keeping one's own name does not.
    let second = create(store, "User", user("other")).await;
    let error = update(
        store,
        "User",
        &second.id,
        replace(user("BJENSEN@example.com")),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let (renamed, changed) = update(
        store,
        "User",
        &first.id,
        replace(user("BJensen@example.com")),
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(renamed.resource["userName"], "BJensen@example.com");

    // Users and Groups do not clash with each other.
    create(store, "Group", group("other")).await;
}

pub async fn group_display_names_are_unique(store: &dyn Store) {
    let admins = create(store, "Group", group("Admins")).await;
    let error = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("admins"), Vec::new()),
        )
        .await
        .unwrap_err();
    let StoreError::Conflict(detail) = error else {
        panic!("expected a conflict, got {error:?}");
    };
    assert_eq!(
        detail,
        format!(
            "displayName 'admins' is already taken by Group {}",
            admins.id.0
        )
    );
    // Users' displayNames are not unique.
    for _ in 0..2 {
        let mut resource = user(&format!("u{}", uuid_like()));
        resource["displayName"] = json!("Same Name");
        create(store, "User", resource).await;
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

// ---------------------------------------------- versions, preconditions ----

pub async fn versions_and_preconditions(store: &dyn Store) {
    let created = create(store, "User", user("alice")).await;
    let id = &created.id;
    let error = store
        .update(
            &tenant(),
            &actor(),
            "User",
            id,
            Precondition::Version(7),
            true,
            replace(user("alice2")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::PreconditionFailed { current: 1 }),
        "{error:?}"
    );
    let (updated, _) = store
        .update(
            &tenant(),
            &actor(),
            "User",
            id,
            Precondition::Version(1),
            true,
            replace(user("alice2")),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);

    // A closure answering "nothing changes" keeps version and lastModified.
    let (same, changed) = update(store, "User", id, Box::new(|_| Ok(None)))
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(same, updated);
    // So does an update to identical content.
    let (same, changed) = update(store, "User", id, replace(user("alice2")))
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(same.version, 2);
    assert_eq!(
        same.resource["meta"]["lastModified"],
        updated.resource["meta"]["lastModified"]
    );

    // A closure's SCIM error is the update's error, and nothing changes.
    let error = update(
        store,
        "User",
        id,
        Box::new(|_| Err(muster_scim::ScimError::mutability("id is immutable"))),
    )
    .await
    .unwrap_err();
    expect_scim(error, ScimType::Mutability, "immutable");

    let error = store
        .delete(&tenant(), &actor(), "User", id, Precondition::Version(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::PreconditionFailed { current: 2 }),
        "{error:?}"
    );
    assert_eq!(get(store, "User", id).await.version, 2);
}

pub async fn update_sees_current_state_without_members(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let mut resource = group("team");
    resource["externalId"] = json!("ext-1");
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(resource, vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    let (stored, _) = update(
        store,
        "Group",
        &team.id,
        Box::new(|current: &StoredResource| {
            assert!(
                current.resource.get("members").is_none(),
                "{}",
                current.resource
            );
            assert_eq!(current.resource["externalId"], "ext-1");
            assert_eq!(current.version, 1);
            Ok(None)
        }),
    )
    .await
    .unwrap();
    assert_eq!(stored.resource["members"][0]["value"], json!(alice.id.0));
}

// ----------------------------------------------------------- membership ----

pub async fn membership_add_remove_replace(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let mut bob_body = user("bob");
    bob_body["displayName"] = json!("Bob B");
    let bob = create(store, "User", bob_body).await;
    let inner = create(store, "Group", group("inner")).await;
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id), member(&alice.id)]),
        )
        .await
        .unwrap();
    assert_eq!(
        team.resource["members"],
        json!([{"value": alice.id.0, "type": "User"}])
    );

    let (after_add, changed) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Add(vec![member(&bob.id), member(&inner.id)])),
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(after_add.version, 2, "membership changes make a version");
    let members: BTreeSet<(String, String)> = after_add.resource["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (text(m, "value").to_owned(), text(m, "type").to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (alice.id.0.clone(), "User".to_owned()),
        (bob.id.0.clone(), "User".to_owned()),
        (inner.id.0.clone(), "Group".to_owned()),
    ]
    .into();
    assert_eq!(members, expected);
    let bob_entry = after_add.resource["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["value"] == json!(bob.id.0))
        .unwrap()
        .clone();
    assert_eq!(bob_entry["display"], "Bob B");

    // Adding a present member or removing an absent one changes nothing.
    let (same, changed) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Add(vec![member(&bob.id)])),
    )
    .await
    .unwrap();
    assert!(!changed);
    assert_eq!(same.version, 2);
    let (_, changed) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Remove(vec![ResourceId("nobody".to_owned())])),
    )
    .await
    .unwrap();
    assert!(!changed);

    let (after_remove, _) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Remove(vec![alice.id.clone()])),
    )
    .await
    .unwrap();
    assert_eq!(after_remove.version, 3);
    assert_eq!(
        after_remove.resource["members"].as_array().unwrap().len(),
        2
    );

    let (after_replace, _) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::ReplaceAll(vec![member(&alice.id)])),
    )
    .await
    .unwrap();
    assert_eq!(after_replace.version, 4);
    assert_eq!(
        after_replace.resource["members"],
        json!([{"value": alice.id.0, "type": "User"}])
    );
    let (emptied, _) = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::ReplaceAll(Vec::new())),
    )
    .await
    .unwrap();
    assert!(
        emptied.resource.get("members").is_none(),
        "{}",
        emptied.resource
    );
}

pub async fn members_must_exist(store: &dyn Store) {
    let team = create(store, "Group", group("team")).await;
    let ghost = ResourceId("2819c223-7f76-453a-919d-413861904646".to_owned());
    let error = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("other"), vec![member(&ghost)]),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, &ghost.0);
    let error = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Add(vec![member(&ghost)])),
    )
    .await
    .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, &ghost.0);
    let error = update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Add(vec![member(&team.id)])),
    )
    .await
    .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, "itself");
    // The failed create left nothing behind.
    let page = store
        .list(&tenant(), &registry(), &query("Group", None, everything()))
        .await
        .unwrap();
    assert_eq!(page.total_results, 1);
    assert_eq!(get(store, "Group", &team.id).await.version, 1);
}

/// A write that fails after indexing an attribute no resource had before
/// leaves the index consistent for the next write of that attribute.
pub async fn rolled_back_writes_leave_the_index_consistent(store: &dyn Store) {
    let ghost = ResourceId("ghost".to_owned());
    let mut first = group("first");
    first["externalId"] = json!("ext-1");
    let error = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(first, vec![member(&ghost)]),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, "ghost");
    let mut second = group("second");
    second["externalId"] = json!("ext-2");
    let second = create(store, "Group", second).await;
    let page = store
        .list(
            &tenant(),
            &registry(),
            &query("Group", Some(r#"externalId eq "ext-2""#), everything()),
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.resources), vec![second.id]);
}

pub async fn groups_read_without_members(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    let read = store
        .get(&tenant(), "Group", &team.id, false)
        .await
        .unwrap();
    assert!(read.resource.get("members").is_none());
    let mut listing = query("Group", None, everything());
    listing.include_members = false;
    let page = store.list(&tenant(), &registry(), &listing).await.unwrap();
    assert!(page.resources[0].resource.get("members").is_none());
}

pub async fn deleting_a_member_updates_its_groups(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let bob = create(store, "User", user("bob")).await;
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id), member(&bob.id)]),
        )
        .await
        .unwrap();
    store
        .delete(&tenant(), &actor(), "User", &alice.id, Precondition::None)
        .await
        .unwrap();
    let read = get(store, "Group", &team.id).await;
    assert_eq!(read.version, 2);
    assert_eq!(
        read.resource["members"],
        json!([{"value": bob.id.0, "type": "User"}])
    );
    // Deleting the group removes its rows: bob has no groups any more.
    store
        .delete(&tenant(), &actor(), "Group", &team.id, Precondition::None)
        .await
        .unwrap();
    assert!(get(store, "User", &bob.id)
        .await
        .resource
        .get("groups")
        .is_none());
}

pub async fn users_see_direct_and_nested_groups(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let inner = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("Inner"), vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    let outer = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("Outer"), vec![member(&inner.id)]),
        )
        .await
        .unwrap();
    let top = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("Top"), vec![member(&outer.id)]),
        )
        .await
        .unwrap();
    let read = get(store, "User", &alice.id).await;
    assert_eq!(
        read.resource["groups"],
        json!([
            {"value": inner.id.0, "display": "Inner", "type": "direct"},
            {"value": outer.id.0, "display": "Outer", "type": "indirect"},
            {"value": top.id.0, "display": "Top", "type": "indirect"},
        ])
    );
    // groups sits before meta.
    let keys: Vec<&String> = read.resource.as_object().unwrap().keys().collect();
    assert_eq!(keys.last().map(|k| k.as_str()), Some("meta"));
    // Direct wins over indirect, and a cycle terminates.
    update(
        store,
        "Group",
        &top.id,
        members_change(MemberChange::Add(vec![
            member(&alice.id),
            member(&inner.id),
        ])),
    )
    .await
    .unwrap();
    update(
        store,
        "Group",
        &inner.id,
        members_change(MemberChange::Add(vec![member(&top.id)])),
    )
    .await
    .unwrap();
    let read = get(store, "User", &alice.id).await;
    let groups: Vec<(String, String)> = read.resource["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (text(g, "display").to_owned(), text(g, "type").to_owned()))
        .collect();
    assert_eq!(
        groups.into_iter().collect::<BTreeSet<_>>(),
        [
            ("Inner".to_owned(), "direct".to_owned()),
            ("Outer".to_owned(), "indirect".to_owned()),
            ("Top".to_owned(), "direct".to_owned()),
        ]
        .into()
    );
    // Groups get no `groups` attribute.
    assert!(get(store, "Group", &inner.id)
        .await
        .resource
        .get("groups")
        .is_none());
}

pub async fn only_groups_have_members(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let error = store
        .create(
            &tenant(),
            &actor(),
            "User",
            new(user("bob"), vec![member(&alice.id)]),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, "no members");
}

// ------------------------------------------------------------- concurrency ----

pub async fn concurrent_member_adds_lose_nothing(store: Arc<dyn Store>) {
    let team = create(&*store, "Group", group("team")).await;
    let mut users = Vec::new();
    for index in 0..50 {
        users.push(
            create(&*store, "User", user(&format!("user{index}")))
                .await
                .id,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for user_id in users {
        let store = Arc::clone(&store);
        let team_id = team.id.clone();
        tasks.spawn(async move {
            update(
                &*store,
                "Group",
                &team_id,
                members_change(MemberChange::Add(vec![member(&user_id)])),
            )
            .await
            .unwrap()
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(result.unwrap().1);
    }
    let read = get(&*store, "Group", &team.id).await;
    assert_eq!(read.resource["members"].as_array().unwrap().len(), 50);
    assert_eq!(read.version, 51);
}

pub async fn concurrent_updates_of_one_user_serialise(store: Arc<dyn Store>) {
    let counter = create(
        &*store,
        "User",
        json!({"schemas": [USER_SCHEMA], "userName": "counter", CUSTOM: {"level": 0}}),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let store = Arc::clone(&store);
        let id = counter.id.clone();
        tasks.spawn(async move {
            let increment: UpdateFn = Box::new(|current| {
                let mut resource = current.resource.clone();
                let level = resource[CUSTOM]["level"].as_i64().unwrap_or_default();
                resource[CUSTOM]["level"] = json!(level + 1);
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
            update(&*store, "User", &id, increment).await.unwrap()
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let read = get(&*store, "User", &counter.id).await;
    assert_eq!(read.resource[CUSTOM]["level"], 40);
    assert_eq!(read.version, 41);
}

/// Concurrent writes of which some fail: the failures get their own errors,
/// the rest commit (whether or not they shared a batch with a failure).
pub async fn failed_writes_do_not_affect_others(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..60 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            // Every third name is the same one: one of those wins.
            let name = if index % 3 == 0 {
                "duplicate".to_owned()
            } else {
                format!("unique{index}")
            };
            let result = store
                .create(&tenant(), &actor(), "User", new(user(&name), Vec::new()))
                .await;
            (name, result)
        });
    }
    let mut created = 0;
    let mut conflicts = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (_, Ok(_)) => created += 1,
            (name, Err(StoreError::Conflict(detail))) => {
                assert_eq!(name, "duplicate");
                assert!(detail.contains("userName 'duplicate'"), "{detail}");
                conflicts += 1;
            }
            (_, Err(other)) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((created, conflicts), (41, 19));
    let page = store
        .list(&tenant(), &registry(), &query("User", None, everything()))
        .await
        .unwrap();
    assert_eq!(page.total_results, 41);
    // Exactly the committed writes have change records.
    let changes = store.changes(&tenant(), 0, 1000).await.unwrap();
    assert_eq!(changes.len(), 41);
}

/// Jobs queued while the writer is busy commit together in the next batch;
/// the ones that fail there get their own errors and leave no trace, the
/// others commit.
pub async fn failed_jobs_in_one_batch_do_not_affect_others(store: Arc<dyn Store>) {
    let blocker = create(&*store, "User", user("blocker")).await;
    let taken = create(&*store, "User", user("taken")).await;
    let team = create(&*store, "Group", group("team")).await;
    // Hold the writer inside a job, so the next jobs queue into one batch.
    let slow = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let sleeping: UpdateFn = Box::new(|_| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(None)
            });
            update(&*store, "User", &blocker.id, sleeping)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let ghost = ResourceId("no-such-member".to_owned());
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..12 {
        let store = Arc::clone(&store);
        let (team_id, taken_id, ghost) = (team.id.clone(), taken.id.clone(), ghost.clone());
        tasks.spawn(async move {
            let result = match index % 4 {
                // Fails before writing: the name is taken.
                0 => store
                    .create(&tenant(), &actor(), "User", new(user("TAKEN"), Vec::new()))
                    .await
                    .map(|_| ()),
                // Fails after writing a membership row: rolled back.
                1 => update(
                    &*store,
                    "Group",
                    &team_id,
                    Box::new(move |current| {
                        Ok(Some(Update {
                            resource: current.resource.clone(),
                            member_changes: vec![
                                MemberChange::Add(vec![member(&taken_id)]),
                                MemberChange::Add(vec![member(&ghost)]),
                            ],
                            unmapped: None,
                            unique: Vec::new(),
                            schema_generation: None,
                            never_returned: Vec::new(),
                            derivation: None,
                        }))
                    }),
                )
                .await
                .map(|_| ()),
                _ => store
                    .create(
                        &tenant(),
                        &actor(),
                        "User",
                        new(user(&format!("batch{index}")), Vec::new()),
                    )
                    .await
                    .map(|_| ()),
            };
            (index, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (index, result) = joined.unwrap();
        match (index % 4, result) {
            (0, Err(StoreError::Conflict(_))) => {}
            (1, Err(StoreError::Scim(error))) => assert!(error.detail.contains("no-such-member")),
            (2 | 3, Ok(())) => {}
            (kind, other) => panic!("job {index} (kind {kind}): unexpected {other:?}"),
        }
    }
    slow.await.unwrap();
    let read = get(&*store, "Group", &team.id).await;
    assert_eq!(
        read.version, 1,
        "the failed membership changes left no trace"
    );
    assert!(read.resource.get("members").is_none());
    let page = store
        .list(&tenant(), &registry(), &query("User", None, everything()))
        .await
        .unwrap();
    assert_eq!(page.total_results, 2 + 6);
    let changes = store.changes(&tenant(), 0, 100).await.unwrap();
    assert_eq!(changes.len(), 3 + 6);
}

/// A write that fails in a batch after others succeeded leaves those
/// committed with what they computed, each update closure called once
/// (SQLite replays a batch's successful writes after a failure).
pub async fn a_failure_in_a_batch_calls_no_update_closure_twice(store: Arc<dyn Store>) {
    let blocker = create(&*store, "User", user("blocker")).await;
    let alice = create(&*store, "User", user("alice")).await;
    create(&*store, "User", user("taken")).await;
    let slow = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let sleeping: UpdateFn = Box::new(|_| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(None)
            });
            update(&*store, "User", &blocker.id, sleeping)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Queued in this order behind the sleeping job: an update, a create that
    // fails (the name is taken), a create that succeeds.
    let updated = {
        let (store, calls, id) = (Arc::clone(&store), Arc::clone(&calls), alice.id.clone());
        tokio::spawn(async move {
            let counting: UpdateFn = Box::new(move |current| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut resource = current.resource.clone();
                resource["displayName"] = json!("Alice Renamed");
                Ok(Some(Update {
                    resource,
                    ..Update::default()
                }))
            });
            update(&*store, "User", &id, counting).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let clash = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create(&tenant(), &actor(), "User", new(user("taken"), Vec::new()))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let fresh = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .create(&tenant(), &actor(), "User", new(user("fresh"), Vec::new()))
                .await
        })
    };
    let (after, changed) = updated.await.unwrap().unwrap();
    assert!(changed);
    assert_eq!(after.version, 2);
    assert!(matches!(clash.await.unwrap(), Err(StoreError::Conflict(_))));
    let fresh = fresh.await.unwrap().unwrap();
    slow.await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let read = get(&*store, "User", &alice.id).await;
    assert_eq!(read.resource["displayName"], "Alice Renamed");
    assert_eq!(read.version, 2);
    assert_eq!(get(&*store, "User", &fresh.id).await.version, 1);
    // Three creates, the update and the last create: one record each.
    let changes = store.changes(&tenant(), 0, 100).await.unwrap();
    assert_eq!(changes.len(), 5);
}

/// An update closure that panics fails its own write only.
pub async fn a_panicking_update_fails_alone(store: Arc<dyn Store>) {
    let alice = create(&*store, "User", user("alice")).await;
    let panicking: UpdateFn = Box::new(|_| panic!("closure bug"));
    let error = update(&*store, "User", &alice.id, panicking)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    let (after, changed) = update(&*store, "User", &alice.id, replace(user("alice2")))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(after.version, 2);
}

// --------------------------------------------------------------- changes ----

pub async fn change_records_follow_writes(store: &dyn Store) {
    let alice = create(store, "User", user("alice")).await;
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    // Failed and no-op writes leave no record.
    let _ = store
        .create(&tenant(), &actor(), "User", new(user("ALICE"), Vec::new()))
        .await
        .unwrap_err();
    let _ = store
        .update(
            &tenant(),
            &actor(),
            "User",
            &alice.id,
            Precondition::Version(9),
            true,
            replace(user("x")),
        )
        .await
        .unwrap_err();
    update(store, "User", &alice.id, Box::new(|_| Ok(None)))
        .await
        .unwrap();
    update(store, "User", &alice.id, replace(user("alice")))
        .await
        .unwrap();
    // Effective writes do.
    update(store, "User", &alice.id, replace(user("alice2")))
        .await
        .unwrap();
    update(
        store,
        "Group",
        &team.id,
        members_change(MemberChange::Remove(vec![alice.id.clone()])),
    )
    .await
    .unwrap();
    store
        .delete(&tenant(), &actor(), "User", &alice.id, Precondition::None)
        .await
        .unwrap();

    let changes = store.changes(&tenant(), 0, 100).await.unwrap();
    let summary: Vec<(ChangeKind, &str, &ResourceId, u64)> = changes
        .iter()
        .map(|c| (c.kind, c.resource_type.as_str(), &c.resource_id, c.version))
        .collect();
    assert_eq!(
        summary,
        vec![
            (ChangeKind::Create, "User", &alice.id, 1),
            (ChangeKind::Create, "Group", &team.id, 1),
            // Joining the group changed alice's computed groups.
            (ChangeKind::Update, "User", &alice.id, 2),
            (ChangeKind::Update, "User", &alice.id, 3),
            (ChangeKind::Update, "Group", &team.id, 2),
            // So did leaving it.
            (ChangeKind::Update, "User", &alice.id, 4),
            (ChangeKind::Delete, "User", &alice.id, 4),
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(changes[0].actor, actor());
    assert_eq!(changes[0].tenant, tenant());
    let resource = |index: usize| changes[index].payload.resource().cloned().unwrap();
    assert_eq!(resource(0)["userName"], "alice");
    assert_eq!(
        changes[1].payload.members(),
        Some(&MembershipDelta {
            added: vec![alice.id.clone()],
            removed: vec![],
        })
    );
    let regrouped = ChangePayload::GroupsChanged { derived: None };
    assert_eq!(changes[2].payload, regrouped);
    assert_eq!(resource(3)["userName"], "alice2");
    assert_eq!(
        changes[4].payload,
        ChangePayload::Members(MembershipDelta {
            added: vec![],
            removed: vec![alice.id.clone()],
        })
    );
    assert_eq!(changes[5].payload, regrouped);
    // A delete names who was deleted, read before the row went.
    assert_eq!(
        changes[6].payload,
        ChangePayload::Deleted(DeletedIdentity {
            id: alice.id.clone(),
            user_name: Some("alice2".to_owned()),
            display_name: None,
            external_id: resource(3)["externalId"].as_str().map(str::to_owned),
        })
    );
    // Paging through the log.
    let tail = store
        .changes(&tenant(), changes[1].sequence, 2)
        .await
        .unwrap();
    assert_eq!(tail, changes[2..4].to_vec());
}

// ---------------------------------------------------------------- tokens ----

pub async fn tokens(store: &dyn Store) {
    let token = |name: &str, hash: &str| TokenRecord {
        name: name.to_owned(),
        secret_hash: hash.to_owned(),
        scopes: vec!["scim.read".to_owned(), "admin".to_owned()],
        created: String::new(),
    };
    store
        .create_token(&tenant(), token("okta", "h1"))
        .await
        .unwrap();
    store
        .create_token(&tenant(), token("entra", "h2"))
        .await
        .unwrap();
    let error = store
        .create_token(&tenant(), token("okta", "h3"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict(ref d) if d.contains("okta")),
        "{error:?}"
    );
    let listed = store.list_tokens(&tenant()).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["entra", "okta"]);
    assert!(!listed[0].created.is_empty(), "created is filled in");
    assert_eq!(listed[1].scopes, ["scim.read", "admin"]);
    let (found_tenant, found) = store.find_token("h2").await.unwrap().unwrap();
    assert_eq!((found_tenant, found.name.as_str()), (tenant(), "entra"));
    assert!(store.find_token("nope").await.unwrap().is_none());
    store.revoke_token(&tenant(), "entra").await.unwrap();
    assert!(store.find_token("h2").await.unwrap().is_none());
    let error = store.revoke_token(&tenant(), "entra").await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
}

// ---------------------------------------------------------------- paging ----

pub async fn users(store: &dyn Store, count: usize) -> Vec<ResourceId> {
    let mut created = Vec::new();
    for index in 0..count {
        created.push(
            create(store, "User", user(&format!("user{index:02}")))
                .await
                .id,
        );
    }
    created
}

pub async fn index_paging(store: &dyn Store) {
    let all = users(store, 25).await;
    let registry = registry();
    let page = |start_index, count| query("User", None, Page::Index { start_index, count });
    for (start, count, expected) in [
        (1, 10, all.get(0..10)),
        (11, 10, all.get(10..20)),
        (21, 10, all.get(20..25)),
        (26, 10, all.get(25..25)),
        (0, 3, all.get(0..3)),
        (5, 0, all.get(0..0)),
    ] {
        let listed = store
            .list(&tenant(), &registry, &page(start, count))
            .await
            .unwrap();
        assert_eq!(listed.total_results, 25);
        assert_eq!(
            ids(&listed.resources),
            expected.unwrap().to_vec(),
            "{start} {count}"
        );
        assert_eq!(listed.next_cursor, None);
    }
    let filtered = store
        .list(
            &tenant(),
            &registry,
            &query(
                "User",
                Some("userName sw \"user1\""),
                Page::Index {
                    start_index: 2,
                    count: 3,
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(filtered.total_results, 10);
    assert_eq!(ids(&filtered.resources), all[11..14].to_vec());
}

/// Deep index pages of an unfiltered list (which SQLite starts from
/// landmarks every 128 rows, with a kept count) hold the same resources as
/// the same slice of the whole list, and the total is right, after
/// creates and deletes anywhere in the order.
pub async fn deep_index_pages_follow_creates_and_deletes(store: &dyn Store) {
    let registry = registry();
    create(store, "Group", group("not a user")).await;
    let mut expected = users(store, 600).await;
    let page = |start_index, count| query("User", None, Page::Index { start_index, count });
    for round in 0..3 {
        let whole = store
            .list(&tenant(), &registry, &page(1, 1_000))
            .await
            .unwrap();
        assert_eq!(ids(&whole.resources), expected, "round {round}");
        for start in [
            1, 2, 127, 128, 129, 130, 256, 257, 300, 385, 513, 590, 600, 601, 5_000,
        ] {
            let listed = store
                .list(&tenant(), &registry, &page(start, 40))
                .await
                .unwrap();
            let from = usize::try_from(start - 1).unwrap().min(expected.len());
            let to = (from + 40).min(expected.len());
            assert_eq!(listed.total_results, expected.len() as u64, "round {round}");
            assert_eq!(
                ids(&listed.resources),
                expected[from..to].to_vec(),
                "round {round}, startIndex {start}"
            );
        }
        // Take users out at and around the landmarks, then add some.
        for position in [300, 257, 256, 255, 128, 127, 0] {
            let id = expected.remove(position);
            store
                .delete(&tenant(), &actor(), "User", &id, Precondition::None)
                .await
                .unwrap();
        }
        for index in 0..5 {
            let name = format!("later{round}-{index}");
            expected.push(create(store, "User", user(&name)).await.id);
        }
    }
    let groups = store
        .list(
            &tenant(),
            &registry,
            &query(
                "Group",
                None,
                Page::Index {
                    start_index: 1,
                    count: 10,
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(groups.total_results, 1);
}

pub async fn cursor_paging(store: &dyn Store) {
    let all = users(store, 23).await;
    let registry = registry();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let listed = store
            .list(
                &tenant(),
                &registry,
                &query(
                    "User",
                    None,
                    Page::Cursor {
                        cursor: cursor.clone(),
                        count: 5,
                    },
                ),
            )
            .await
            .unwrap();
        assert_eq!(listed.total_results, 23 + pages.min(1), "total counts all");
        seen.extend(ids(&listed.resources));
        pages += 1;
        if pages == 1 {
            // A resource created while paging appears once, at the end.
            create(store, "User", user("late")).await;
        }
        match listed.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 24);
    assert_eq!(seen[..23], all[..]);

    let error = store
        .list(
            &tenant(),
            &registry,
            &query(
                "User",
                None,
                Page::Cursor {
                    cursor: Some("garbage!".to_owned()),
                    count: 5,
                },
            ),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidCursor, "garbage!");
}

fn sorted_query(sort_by: &str, descending: bool, page: Page) -> ListQuery {
    ListQuery {
        sort_by: Some(AttrPath::parse(sort_by).unwrap()),
        descending,
        ..query("User", None, page)
    }
}

async fn check_order(
    store: &dyn Store,
    registry: &SchemaRegistry,
    sort_by: &str,
    descending: bool,
    expected: &[&ResourceId],
) {
    let listed = store
        .list(
            &tenant(),
            registry,
            &sorted_query(sort_by, descending, everything()),
        )
        .await
        .unwrap();
    let expected: Vec<ResourceId> = expected.iter().map(|id| (*id).clone()).collect();
    assert_eq!(
        ids(&listed.resources),
        expected,
        "{sort_by} desc={descending}"
    );
}

pub async fn sorting(store: &dyn Store) {
    let registry = registry();
    let make = |name: &str, title: Option<&str>, emails: Value| {
        let mut resource = user(name);
        if let Some(title) = title {
            resource["title"] = json!(title);
        }
        if !emails.is_null() {
            resource["emails"] = emails;
        }
        resource
    };
    let bob = create(
        store,
        "User",
        make("bob", Some("b"), json!([{"value": "z@x"}])),
    )
    .await;
    let alice = create(store, "User", make("Alice", None, Value::Null)).await;
    let carl = create(
        store,
        "User",
        make(
            "carl",
            Some("B"),
            json!([{"value": "y@x"}, {"value": "a@x", "primary": true}]),
        ),
    )
    .await;
    let dora = create(
        store,
        "User",
        make("dora", Some("a"), json!([{"value": "m@x"}])),
    )
    .await;
    check_order(
        store,
        &registry,
        "userName",
        false,
        &[&alice.id, &bob.id, &carl.id, &dora.id],
    )
    .await;
    check_order(
        store,
        &registry,
        "userName",
        true,
        &[&dora.id, &carl.id, &bob.id, &alice.id],
    )
    .await;
    // Ties (b, B) keep creation order both ways; missing last / first.
    check_order(
        store,
        &registry,
        "title",
        false,
        &[&dora.id, &bob.id, &carl.id, &alice.id],
    )
    .await;
    check_order(
        store,
        &registry,
        "title",
        true,
        &[&alice.id, &bob.id, &carl.id, &dora.id],
    )
    .await;
    // Multi-valued: the primary element, else the first.
    check_order(
        store,
        &registry,
        "emails",
        false,
        &[&carl.id, &dora.id, &bob.id, &alice.id],
    )
    .await;
    check_order(
        store,
        &registry,
        "emails.value",
        true,
        &[&alice.id, &bob.id, &dora.id, &carl.id],
    )
    .await;

    // Cursor paging over a sort with ties and missing values.
    for descending in [false, true] {
        let full = store
            .list(
                &tenant(),
                &registry,
                &sorted_query("title", descending, everything()),
            )
            .await
            .unwrap();
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let listed = store
                .list(
                    &tenant(),
                    &registry,
                    &sorted_query("title", descending, Page::Cursor { cursor, count: 1 }),
                )
                .await
                .unwrap();
            paged.extend(ids(&listed.resources));
            cursor = listed.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(paged, ids(&full.resources), "descending={descending}");
    }
    // A cursor from one order is refused by another.
    let first = store
        .list(
            &tenant(),
            &registry,
            &sorted_query(
                "title",
                false,
                Page::Cursor {
                    cursor: None,
                    count: 1,
                },
            ),
        )
        .await
        .unwrap();
    let error = store
        .list(
            &tenant(),
            &registry,
            &sorted_query(
                "userName",
                false,
                Page::Cursor {
                    cursor: first.next_cursor,
                    count: 1,
                },
            ),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidCursor, "cursor");
    // A complex attribute without `value` cannot be sorted on.
    let error = store
        .list(
            &tenant(),
            &registry,
            &sorted_query("name", false, everything()),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, "name");
}

// --------------------------------------------------------------- filters ----

/// The filter fixture: four users with core, enterprise and custom values.
async fn filter_fixture(store: &dyn Store) -> Vec<(&'static str, ResourceId)> {
    let users = [
        (
            "alice",
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, CUSTOM],
                "userName": "alice@example.com",
                "displayName": "Alice Liddell",
                "name": {"givenName": "Alice", "familyName": "Liddell"},
                "title": "Engineer",
                "active": true,
                "emails": [
                    {"value": "alice@work.com", "type": "work", "primary": true},
                    {"value": "alice@home.org", "type": "home"},
                ],
                ENTERPRISE_USER_SCHEMA: {"department": "Ops", "manager": {"value": "Boss-1"}},
                CUSTOM: {
                    "level": 3, "score": 2.5, "hired": "2020-01-01T00:00:00Z",
                    "flag": true, "code": "AbC", "tags": ["x", "y"],
                },
            }),
        ),
        (
            "bob",
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, CUSTOM],
                "userName": "Bob@Example.com",
                "displayName": "Bob",
                "title": "Manager",
                "active": false,
                "emails": [{"value": "bob@work.com", "type": "work"}],
                ENTERPRISE_USER_SCHEMA: {"department": "Sales"},
                CUSTOM: {
                    "level": 10, "score": 7, "hired": "2021-06-01T12:00:00+02:00",
                    "flag": false, "code": "abc", "tags": ["y"],
                },
            }),
        ),
        (
            "carol",
            json!({
                "schemas": [USER_SCHEMA, CUSTOM],
                "userName": "carol",
                CUSTOM: {"level": 1, "hired": "sometime", "code": "100%_x"},
            }),
        ),
        (
            "dave",
            json!({"schemas": [USER_SCHEMA], "userName": "Dåvé", "nickName": "ÉCOLE"}),
        ),
    ];
    let mut created = Vec::new();
    for (short, resource) in users {
        created.push((short, create(store, "User", resource).await.id));
    }
    created
}

/// Runs `filter` through the store and through the reference evaluator;
/// both must give `expected` (short names, any order).
async fn check(
    store: &dyn Store,
    registry: &SchemaRegistry,
    fixture: &[(&str, ResourceId)],
    resource_type: &str,
    filter: &str,
    expected: &[&str],
) {
    let parsed = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let listed = store
        .list(
            &tenant(),
            registry,
            &ListQuery {
                filter: Some(parsed.clone()),
                ..query(resource_type, None, everything())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    let short = |id: &ResourceId| {
        fixture
            .iter()
            .find(|(_, known)| known == id)
            .map_or("?", |(short, _)| *short)
    };
    let mut got: Vec<&str> = listed.resources.iter().map(|r| short(&r.id)).collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "SQL: {filter}");
    assert_eq!(listed.total_results, want.len() as u64, "total: {filter}");

    let rt = registry.resource_type(resource_type).unwrap();
    let mut reference = Vec::new();
    for (name, id) in fixture {
        let Ok(stored) = store.get(&tenant(), resource_type, id, true).await else {
            continue;
        };
        if parsed.matches(&stored.resource, registry, rt) {
            reference.push(*name);
        }
    }
    reference.sort_unstable();
    assert_eq!(reference, want, "evaluator: {filter}");
}

pub async fn filters_of_every_operator(store: &dyn Store) {
    let registry = registry();
    let fixture = filter_fixture(store).await;
    let enterprise = ENTERPRISE_USER_SCHEMA;
    let all = ["alice", "bob", "carol", "dave"];
    let table: Vec<(String, Vec<&str>)> = vec![
        // Case-insensitive strings.
        (r#"userName eq "ALICE@example.com""#.into(), vec!["alice"]),
        (
            r#"userName ne "alice@example.com""#.into(),
            vec!["bob", "carol", "dave"],
        ),
        (r#"userName co "EXAMPLE""#.into(), vec!["alice", "bob"]),
        (r#"userName sw "b""#.into(), vec!["bob"]),
        (r#"userName sw """#.into(), all.to_vec()),
        (r#"userName ew ".COM""#.into(), vec!["alice", "bob"]),
        (
            r#"userName gt "bob@example.com""#.into(),
            vec!["carol", "dave"],
        ),
        (
            r#"userName ge "BOB@example.com""#.into(),
            vec!["bob", "carol", "dave"],
        ),
        (r#"userName lt "b""#.into(), vec!["alice"]),
        (
            r#"userName le "carol""#.into(),
            vec!["alice", "bob", "carol"],
        ),
        (r#"userName eq "DÅVÉ""#.into(), vec!["dave"]),
        (r#"userName sw "då""#.into(), vec!["dave"]),
        (r#"nickName eq "école""#.into(), vec!["dave"]),
        (r#"displayName co "LIDDELL""#.into(), vec!["alice"]),
        (r#"name.givenName sw "al""#.into(), vec!["alice"]),
        // Presence and null.
        ("title pr".into(), vec!["alice", "bob"]),
        ("title eq null".into(), vec!["carol", "dave"]),
        ("name pr".into(), vec!["alice"]),
        ("emails pr".into(), vec!["alice", "bob"]),
        (r#"title gt null"#.into(), vec![]),
        // Booleans.
        ("active eq true".into(), vec!["alice"]),
        ("active eq false".into(), vec!["bob"]),
        ("active ne true".into(), vec!["bob", "carol", "dave"]),
        ("active gt false".into(), vec![]),
        // Multi-valued and complex.
        (r#"emails.type eq "work""#.into(), vec!["alice", "bob"]),
        (r#"emails.type ne "work""#.into(), vec!["carol", "dave"]),
        (r#"emails co "HOME""#.into(), vec!["alice"]),
        (
            r#"emails[type eq "work" and value co "alice"]"#.into(),
            vec!["alice"],
        ),
        (
            r#"emails[type eq "home" and value co "work"]"#.into(),
            vec![],
        ),
        (r#"emails[not (type eq "work")]"#.into(), vec!["alice"]),
        (
            r#"emails[type eq "work" or primary eq true]"#.into(),
            vec!["alice", "bob"],
        ),
        (r#"emails[primary pr]"#.into(), vec!["alice"]),
        (
            r#"emails[value ew ".org"] and active eq true"#.into(),
            vec!["alice"],
        ),
        // Enterprise extension.
        (
            format!(r#"{enterprise}:department eq "ops""#),
            vec!["alice"],
        ),
        (
            format!(r#"{enterprise}:manager.value eq "Boss-1""#),
            vec!["alice"],
        ),
        (format!(r#"{enterprise}:manager.value eq "boss-1""#), vec![]),
        (
            format!(r#"{enterprise}:manager eq "Boss-1""#),
            vec!["alice"],
        ),
        // Custom extension, registered at run time.
        (format!("{CUSTOM}:level gt 2"), vec!["alice", "bob"]),
        (format!("{CUSTOM}:level ge 10"), vec!["bob"]),
        (format!("{CUSTOM}:level eq 3"), vec!["alice"]),
        (format!("{CUSTOM}:level lt 3"), vec!["carol"]),
        (format!("{CUSTOM}:level le 3.0"), vec!["alice", "carol"]),
        (format!(r#"{CUSTOM}:level eq "3""#), vec![]),
        (format!("{CUSTOM}:level co 3"), vec![]),
        (format!("{CUSTOM}:score ge 2.5"), vec!["alice", "bob"]),
        (format!("{CUSTOM}:score gt 2.5"), vec!["bob"]),
        (format!("{CUSTOM}:flag eq true"), vec!["alice"]),
        (format!("{CUSTOM}:tags eq \"x\""), vec!["alice"]),
        (
            format!("{CUSTOM}:tags[value eq \"y\"]"),
            vec!["alice", "bob"],
        ),
        (format!("{CUSTOM}:tags pr"), vec!["alice", "bob"]),
        // dateTime: as instants, whatever the offset; else as strings.
        (
            format!(r#"{CUSTOM}:hired gt "2020-06-01T00:00:00Z""#),
            vec!["bob", "carol"],
        ),
        (
            format!(r#"{CUSTOM}:hired eq "2020-01-01T01:00:00+01:00""#),
            vec!["alice"],
        ),
        (
            format!(r#"{CUSTOM}:hired lt "2021-06-01T10:30:00Z""#),
            vec!["alice", "bob"],
        ),
        (
            format!(r#"{CUSTOM}:hired gt "2021-06-01T10:00:00Z""#),
            vec!["carol"],
        ),
        (format!(r#"{CUSTOM}:hired sw "2021""#), vec!["bob"]),
        (format!(r#"{CUSTOM}:hired eq "SOMETIME""#), vec!["carol"]),
        // caseExact strings; LIKE wildcards are plain characters.
        (format!(r#"{CUSTOM}:code eq "abc""#), vec!["bob"]),
        (format!(r#"{CUSTOM}:code eq "ABC""#), vec![]),
        (format!(r#"{CUSTOM}:code co "b""#), vec!["alice", "bob"]),
        (format!(r#"{CUSTOM}:code sw "A""#), vec!["alice"]),
        (format!(r#"{CUSTOM}:code gt "a""#), vec!["bob"]),
        (format!(r#"{CUSTOM}:code ew "C""#), vec!["alice"]),
        (format!(r#"{CUSTOM}:code co "%_""#), vec!["carol"]),
        (format!(r#"{CUSTOM}:code co "_""#), vec!["carol"]),
        // Common attributes.
        (r#"meta.resourceType eq "User""#.into(), all.to_vec()),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z""#.into(),
            all.to_vec(),
        ),
        (
            r#"meta.lastModified lt "2000-01-01T00:00:00Z""#.into(),
            vec![],
        ),
        (format!(r#"id eq "{}""#, fixture[1].1 .0), vec!["bob"]),
        // `schemas` is no attribute of any schema.
        (r#"schemas pr"#.into(), vec![]),
        // Logic.
        (
            r#"not (userName eq "alice@example.com") and title pr"#.into(),
            vec!["bob"],
        ),
        (
            r#"userName eq "alice@example.com" or userName eq "carol""#.into(),
            vec!["alice", "carol"],
        ),
        (
            r#"(title pr or nickName pr) and not (active eq false)"#.into(),
            vec!["alice", "dave"],
        ),
        (
            r#"userName eq "carol" or not (title pr)"#.into(),
            vec!["carol", "dave"],
        ),
        // Unknown attributes match nothing (and their negation everything).
        (r#"nosuch eq "x""#.into(), vec![]),
        (r#"not (nosuch eq "x")"#.into(), all.to_vec()),
        (r#"emails[nosuch eq "x"]"#.into(), vec![]),
        (r#"name[givenName eq "alice"]"#.into(), vec!["alice"]),
    ];
    for (filter, expected) in &table {
        check(store, &registry, &fixture, "User", filter, expected).await;
    }
}

pub async fn membership_filters(store: &dyn Store) {
    let registry = registry();
    let mut fixture = filter_fixture(store).await;
    let id = |fixture: &[(&'static str, ResourceId)], name: &str| {
        fixture.iter().find(|(n, _)| *n == name).unwrap().1.clone()
    };
    let inner = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(
                group("Inner"),
                vec![member(&id(&fixture, "alice")), member(&id(&fixture, "bob"))],
            ),
        )
        .await
        .unwrap();
    fixture.push(("inner", inner.id.clone()));
    let outer = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            new(
                group("Outer"),
                vec![member(&inner.id), member(&id(&fixture, "carol"))],
            ),
        )
        .await
        .unwrap();
    fixture.push(("outer", outer.id.clone()));
    let empty = create(store, "Group", group("Empty")).await;
    fixture.push(("empty", empty.id.clone()));
    let (alice, inner_id, outer_id) = (id(&fixture, "alice").0, inner.id.0.clone(), outer.id.0);
    let groups_table: Vec<(String, Vec<&str>)> = vec![
        (format!(r#"members.value eq "{alice}""#), vec!["inner"]),
        (format!(r#"members eq "{inner_id}""#), vec!["outer"]),
        (r#"members.type eq "group""#.into(), vec!["outer"]),
        (r#"members.display co "liddell""#.into(), vec!["inner"]),
        ("members pr".into(), vec!["inner", "outer"]),
        ("members eq null".into(), vec!["empty"]),
        (
            r#"members[type eq "User" and display sw "bob"]"#.into(),
            vec!["inner"],
        ),
        (r#"members[not (display pr)]"#.into(), vec!["outer"]),
        (r#"members.$ref pr"#.into(), vec![]),
        (
            r#"displayName eq "inner" or members.value eq "x""#.into(),
            vec!["inner"],
        ),
    ];
    for (filter, expected) in &groups_table {
        check(store, &registry, &fixture, "Group", filter, expected).await;
    }
    let users_table: Vec<(String, Vec<&str>)> = vec![
        (
            format!(r#"groups.value eq "{outer_id}""#),
            vec!["alice", "bob", "carol"],
        ),
        (format!(r#"groups eq "{inner_id}""#), vec!["alice", "bob"]),
        (
            r#"groups[display eq "outer" and type eq "direct"]"#.into(),
            vec!["carol"],
        ),
        (
            r#"groups[display eq "outer" and type eq "indirect"]"#.into(),
            vec!["alice", "bob"],
        ),
        ("groups pr".into(), vec!["alice", "bob", "carol"]),
        ("not (groups pr)".into(), vec!["dave"]),
        (
            r#"groups.type eq "indirect" and active eq true"#.into(),
            vec!["alice"],
        ),
    ];
    for (filter, expected) in &users_table {
        check(store, &registry, &fixture, "User", filter, expected).await;
    }
}

pub async fn tenants_are_isolated(store: &dyn Store, other: &TenantId) {
    let mine = create(store, "User", user("alice")).await;
    let theirs = store
        .create(other, &actor(), "User", new(user("alice"), Vec::new()))
        .await
        .unwrap();
    let error = store.get(other, "User", &mine.id, true).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)));
    let page = store
        .list(
            other,
            &registry(),
            &query("User", Some("userName eq \"alice\""), everything()),
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.resources), vec![theirs.id.clone()]);
    let error = store
        .create(
            other,
            &actor(),
            "Group",
            new(group("g"), vec![member(&mine.id)]),
        )
        .await
        .unwrap_err();
    expect_scim(error, ScimType::InvalidValue, &mine.id.0);
    assert_eq!(store.changes(other, 0, 10).await.unwrap().len(), 1);
    let error = store
        .create(
            &TenantId("nobody".to_owned()),
            &actor(),
            "User",
            new(user("x"), Vec::new()),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
}
pub mod feed;
