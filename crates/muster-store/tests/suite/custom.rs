//! Custom attributes declared at run time (issue #5): schema records and
//! their rewrites, scans, captured undeclared values, tenant settings and
//! attribute usage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use muster_store::{
    Actor, AttributeUsage, ChangeKind, ChangePayload, ChangeRecord, NewResource, RewriteFn,
    RewriteOutcome, SchemaRecord, Store, StoreError, StoredResource, TenantId, UniqueAttribute,
    Update, UpdateFn,
};
use serde_json::{json, Map, Value};

use super::{actor, create, everything, get, ids, query, registry, tenant, update, user, CUSTOM};

/// An extension URN for schema records (the store does not interpret it).
const REGION: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
const TEAM: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group";

/// The index path of the test extension's `code` (see `AttributeUsage::path`).
const CODE_PATH: &str = "urn:ietf:params:scim:schemas:extension:mustertest:2.0:user:code";
const LEVEL_PATH: &str = "urn:ietf:params:scim:schemas:extension:mustertest:2.0:user:level";

fn client(name: &str) -> Actor {
    Actor {
        client: name.to_owned(),
        request_id: format!("{name}-request"),
    }
}

fn schema(urn: &str, resource_type: &str, attributes: &[&str]) -> SchemaRecord {
    let names: Vec<String> = attributes.iter().map(|name| (*name).to_owned()).collect();
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|name| json!({"name": name, "type": "string"}))
        .collect();
    SchemaRecord {
        urn: urn.to_owned(),
        resource_type: resource_type.to_owned(),
        required: false,
        document: json!({"id": urn, "name": "Contoso", "attributes": attributes}),
        updated: "ignored".to_owned(),
        client: "ignored".to_owned(),
        searchable: names,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A user carrying the test extension's attributes.
fn user_with(user_name: &str, extension: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", CUSTOM],
        "userName": user_name,
        CUSTOM: extension,
    })
}

/// Ids of the users matching a filter (through SQL, with the test registry).
async fn matching(store: &dyn Store, tenant: &TenantId, filter: &str) -> Vec<String> {
    let page = store
        .list(
            tenant,
            &registry(),
            &query("User", Some(filter), everything()),
        )
        .await
        .unwrap_or_else(|error| panic!("{filter}: {error:?}"));
    ids(&page.resources).into_iter().map(|id| id.0).collect()
}

async fn all_changes(store: &dyn Store, tenant: &TenantId) -> Vec<ChangeRecord> {
    store.changes(tenant, 0, 100_000).await.unwrap()
}

/// A rewrite that removes the test extension's `code`, dropping the
/// extension when nothing else is left in it, and counts its calls.
fn remove_code(calls: Arc<AtomicU64>, fail_on_call: Option<u64>) -> RewriteFn {
    Box::new(move |current: &StoredResource| {
        let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(call) == fail_on_call {
            return Err(muster_scim::ScimError::invalid_value(format!(
                "value of {} does not convert",
                current.id.0
            )));
        }
        assert!(current.resource.get("groups").is_none());
        let mut resource = current.resource.clone();
        let Some(extension) = resource.get_mut(CUSTOM).and_then(Value::as_object_mut) else {
            return Ok(None);
        };
        let Some(removed) = extension.shift_remove("code") else {
            return Ok(None);
        };
        if extension.is_empty() {
            let object = resource.as_object_mut().unwrap();
            object.shift_remove(CUSTOM);
            object.insert(
                "schemas".to_owned(),
                json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
            );
        }
        Ok(Some(RewriteOutcome {
            never_returned: Vec::new(),
            resource,
            removed: json!({ format!("{CUSTOM}:code"): removed }),
            unmapped: None,
        }))
    })
}

/// Five users, three of them holding `code`: (holders, others).
async fn five_users(store: &dyn Store) -> (Vec<StoredResource>, Vec<StoredResource>) {
    let mut holders = Vec::new();
    let mut others = Vec::new();
    for (index, extension) in [
        json!({"code": "A1", "level": 1}),
        json!({"level": 2}),
        json!({"code": "B2"}),
        json!({"level": 3}),
        json!({"code": "C3", "level": 4}),
    ]
    .into_iter()
    .enumerate()
    {
        let holds = extension.get("code").is_some();
        let created = create(store, "User", user_with(&format!("u{index}"), extension)).await;
        if holds {
            holders.push(created);
        } else {
            others.push(created);
        }
    }
    (holders, others)
}

// ---------------------------------------------------------- schemas ----

pub async fn schema_records_round_trip(store: &dyn Store) {
    assert_eq!(store.list_schemas(&tenant()).await.unwrap(), Vec::new());
    let okta = client("okta");
    for record in [
        schema(REGION, "User", &["region"]),
        schema(TEAM, "Group", &["site"]),
    ] {
        let outcome = store
            .put_schema(&tenant(), &okta, record, None, None, None)
            .await;
        assert_eq!(outcome.unwrap().rewritten, 0);
    }
    let listed = store.list_schemas(&tenant()).await.unwrap();
    let urns: Vec<&str> = listed.iter().map(|record| record.urn.as_str()).collect();
    assert_eq!(urns, [REGION, TEAM]);
    let first = &listed[0];
    assert_eq!(first.resource_type, "User");
    assert!(!first.required);
    assert_eq!(first.document, schema(REGION, "User", &["region"]).document);
    assert_eq!(first.client, "okta");
    assert_eq!(first.searchable, ["region"]);
    assert_eq!(first.updated.len(), "2024-01-01T00:00:00.000Z".len());

    // Replacing keeps the place; deleting removes; re-declaring appends.
    let admin = client("admin");
    let replaced = SchemaRecord {
        required: true,
        ..schema(REGION, "User", &["region", "costCenter"])
    };
    store
        .put_schema(&tenant(), &admin, replaced.clone(), None, None, None)
        .await
        .unwrap();
    store
        .delete_schema(&tenant(), &admin, TEAM, None, None, None)
        .await
        .unwrap();
    let listed = store.list_schemas(&tenant()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].document, replaced.document);
    assert!(listed[0].required);
    assert_eq!(listed[0].client, "admin");
    let error = store
        .delete_schema(&tenant(), &admin, TEAM, None, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(ref detail) if detail.contains(TEAM)));
    let error = store
        .delete_schema(&tenant(), &admin, "urn:nothing", None, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    store
        .put_schema(
            &tenant(),
            &admin,
            schema(TEAM, "Group", &["site"]),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    store
        .put_schema(
            &tenant(),
            &admin,
            schema(REGION, "User", &["x"]),
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
    assert_eq!(urns, [REGION, TEAM]);

    let changes = all_changes(store, &tenant()).await;
    let summary: Vec<(ChangeKind, &str, &str, u64, &str)> = changes
        .iter()
        .map(|change| {
            (
                change.kind,
                change.resource_type.as_str(),
                change.resource_id.0.as_str(),
                change.version,
                change.actor.client.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (ChangeKind::Schema, "Schema", REGION, 1, "okta"),
            (ChangeKind::Schema, "Schema", TEAM, 1, "okta"),
            (ChangeKind::Schema, "Schema", REGION, 2, "admin"),
            (ChangeKind::Schema, "Schema", TEAM, 2, "admin"),
            (ChangeKind::Schema, "Schema", TEAM, 3, "admin"),
            (ChangeKind::Schema, "Schema", REGION, 3, "admin"),
        ]
    );
    assert_eq!(
        changes[2].payload,
        ChangePayload::Schema {
            schema: replaced.document.clone(),
            resource_type: "User".to_owned(),
            required: true,
        }
    );
    assert_eq!(
        changes[3].payload,
        ChangePayload::SchemaDeleted {
            urn: TEAM.to_owned()
        }
    );
}

pub async fn schema_rewrite_removes_values(store: &dyn Store) {
    let (holders, others) = five_users(store).await;
    let code_filter = format!("{CUSTOM}:code pr");
    assert_eq!(matching(store, &tenant(), &code_filter).await.len(), 3);
    let before = all_changes(store, &tenant()).await.len();

    let calls = Arc::new(AtomicU64::new(0));
    let outcome = store
        .put_schema(
            &tenant(),
            &client("admin"),
            schema(CUSTOM, "User", &["level"]),
            Some(remove_code(Arc::clone(&calls), None)),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome.rewritten, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 5, "every user is visited");

    for holder in &holders {
        let read = get(store, "User", &holder.id).await;
        assert_eq!(read.version, 2, "{}", read.resource);
        assert!(read
            .resource
            .get(CUSTOM)
            .and_then(|extension| extension.get("code"))
            .is_none());
    }
    for other in &others {
        assert_eq!(get(store, "User", &other.id).await.version, 1);
    }
    // The index follows: the removed path matches nothing any more, the
    // kept ones still match.
    assert_eq!(
        matching(store, &tenant(), &code_filter).await,
        Vec::<String>::new()
    );
    let found = matching(store, &tenant(), &format!("{CUSTOM}:code eq \"A1\"")).await;
    assert_eq!(found, Vec::<String>::new());
    let level = matching(store, &tenant(), &format!("{CUSTOM}:level eq 1")).await;
    assert_eq!(level, [holders[0].id.0.clone()]);

    let changes = all_changes(store, &tenant()).await;
    let new = changes.get(before..).unwrap();
    assert_eq!(new.len(), 4, "the schema, then one update per rewrite");
    assert_eq!(new[0].kind, ChangeKind::Schema);
    assert_eq!(new[0].resource_id.0, CUSTOM);
    for (change, (holder, code)) in new[1..].iter().zip(holders.iter().zip(["A1", "B2", "C3"])) {
        assert_eq!(change.kind, ChangeKind::Update);
        assert_eq!(change.resource_id, holder.id);
        assert_eq!(change.version, 2);
        assert_eq!(change.actor.client, "admin");
        assert_eq!(
            change.payload.removed(),
            Some(&json!({ format!("{CUSTOM}:code"): code }))
        );
        assert_eq!(change.payload.resource().unwrap()["id"], json!(holder.id.0));
        assert!(change.payload.to_json().get("unmapped").is_none());
    }
    assert!(new[2].payload.resource().unwrap().get(CUSTOM).is_none());

    // Deleting a schema rewrites the type it was bound to.
    let calls = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&calls);
    let outcome = store
        .delete_schema(
            &tenant(),
            &client("admin"),
            CUSTOM,
            Some(Box::new(move |current: &StoredResource| {
                counting.fetch_add(1, Ordering::SeqCst);
                assert_eq!(current.resource_type, "User");
                Ok(None)
            })),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome.rewritten, 0);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

pub async fn failing_rewrite_changes_nothing(store: &dyn Store) {
    let (holders, others) = five_users(store).await;
    let original = schema(CUSTOM, "User", &["code", "level"]);
    store
        .put_schema(&tenant(), &actor(), original.clone(), None, None, None)
        .await
        .unwrap();
    let changes_before = all_changes(store, &tenant()).await;
    let usage_before = store.attribute_usage(&tenant()).await.unwrap();

    let calls = Arc::new(AtomicU64::new(0));
    let error = store
        .put_schema(
            &tenant(),
            &client("admin"),
            schema(CUSTOM, "User", &["level"]),
            Some(remove_code(Arc::clone(&calls), Some(4))),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Scim(ref scim) if scim.detail.contains("does not convert")),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4, "stops at the failure");
    let error = store
        .delete_schema(
            &tenant(),
            &client("admin"),
            CUSTOM,
            Some(remove_code(Arc::new(AtomicU64::new(0)), Some(5))),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Scim(_)), "{error:?}");

    for resource in holders.iter().chain(&others) {
        let read = get(store, "User", &resource.id).await;
        assert_eq!(read.version, 1);
        assert_eq!(read.resource, resource.resource);
    }
    let listed = store.list_schemas(&tenant()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].document, original.document);
    assert_eq!(all_changes(store, &tenant()).await, changes_before);
    assert_eq!(
        matching(store, &tenant(), &format!("{CUSTOM}:code pr"))
            .await
            .len(),
        3
    );
    assert_eq!(
        store.attribute_usage(&tenant()).await.unwrap(),
        usage_before
    );

    // The writer carries on normally afterwards.
    let later = create(store, "User", user("later")).await;
    assert_eq!(later.version, 1);
}

pub async fn scan_visits_every_resource(store: &dyn Store) {
    let mut created = Vec::new();
    for index in 0..7 {
        created.push(
            create(store, "User", user(&format!("scan{index}")))
                .await
                .id,
        );
    }
    let team = store
        .create(
            &tenant(),
            &actor(),
            "Group",
            super::new(super::group("team"), vec![super::member(&created[0])]),
        )
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let visited = store
        .scan(
            &tenant(),
            "User",
            Box::new(move |stored: &StoredResource| {
                assert!(stored.resource.get("groups").is_none());
                assert_eq!(stored.resource_type, "User");
                sink.lock().unwrap().push(stored.id.clone());
            }),
        )
        .await
        .unwrap();
    assert_eq!(visited, 7);
    assert_eq!(*seen.lock().unwrap(), created, "creation order");
    let groups = store
        .scan(
            &tenant(),
            "Group",
            Box::new(move |stored: &StoredResource| {
                assert!(stored.resource.get("members").is_none());
                assert_eq!(stored.id, team.id);
            }),
        )
        .await
        .unwrap();
    assert_eq!(groups, 1);
    let none = store
        .scan(&tenant(), "Device", Box::new(|_: &StoredResource| {}))
        .await
        .unwrap();
    assert_eq!(none, 0);
}

// ---------------------------------------------------- unmapped values ----

pub async fn unmapped_values_round_trip(store: &dyn Store) {
    let captured = object(json!({
        "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:regoin": "APAC",
        "Cost Center Code": ["4711"],
    }));
    let created = store
        .create(
            &tenant(),
            &actor(),
            "User",
            NewResource {
                id: None,
                resource: user("alice"),
                members: Vec::new(),
                unmapped: captured.clone(),
                unique: Vec::new(),
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(created.unmapped, captured);
    assert!(created.resource.get("Cost Center Code").is_none());
    let plain = create(store, "User", user("bob")).await;
    assert!(plain.unmapped.is_empty());

    let read = get(store, "User", &created.id).await;
    assert_eq!(read.unmapped, captured);
    assert_eq!(read.resource, created.resource);
    let page = store
        .list(&tenant(), &registry(), &query("User", None, everything()))
        .await
        .unwrap();
    let listed: Vec<&Map<String, Value>> = page
        .resources
        .iter()
        .map(|stored| &stored.unmapped)
        .collect();
    assert_eq!(listed, [&captured, &Map::new()]);

    // `None` keeps them; change records never show them.
    let (after, changed) = update(
        store,
        "User",
        &created.id,
        super::replace(
            json!({"schemas": [super::USER_SCHEMA], "userName": "alice", "title": "Lead"}),
        ),
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(after.unmapped, captured);
    // Changing only the captured values is a change of its own.
    let fewer = object(json!({"Cost Center Code": ["4711"]}));
    let replace_unmapped = |unmapped: Map<String, Value>| -> muster_store::UpdateFn {
        Box::new(move |current: &StoredResource| {
            Ok(Some(Update {
                resource: current.resource.clone(),
                member_changes: Vec::new(),
                unmapped: Some(unmapped),
                unique: Vec::new(),
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            }))
        })
    };
    let (after, changed) = update(store, "User", &created.id, replace_unmapped(fewer.clone()))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!((after.version, &after.unmapped), (3, &fewer));
    let (after, changed) = update(store, "User", &created.id, replace_unmapped(fewer.clone()))
        .await
        .unwrap();
    assert!(!changed, "the same values are no change");
    assert_eq!(after.version, 3);
    let (after, changed) = update(store, "User", &created.id, replace_unmapped(Map::new()))
        .await
        .unwrap();
    assert!(changed);
    assert!(after.unmapped.is_empty());
    assert!(get(store, "User", &created.id).await.unmapped.is_empty());

    let changes = all_changes(store, &tenant()).await;
    let of_alice: Vec<&ChangePayload> = changes
        .iter()
        .filter(|change| change.resource_id == created.id)
        .map(|change| &change.payload)
        .collect();
    assert_eq!(of_alice.len(), 4);
    // A change of the captured values alone still shows the resource (it
    // got a new version), never the values.
    let titles = ["alice", "Lead", "Lead", "Lead"];
    for (payload, expected) in of_alice.iter().zip(titles) {
        let resource = payload.resource().unwrap();
        let shown = resource.get("title").unwrap_or(&resource["userName"]);
        assert_eq!(shown, expected);
        let text = payload.to_json().to_string();
        assert!(!text.contains("unmapped"), "{text}");
        assert!(!text.contains("4711"), "{text}");
    }
    let of_bob = changes
        .iter()
        .find(|change| change.resource_id == plain.id)
        .unwrap();
    assert!(of_bob.payload.to_json().get("unmapped").is_none());
}

// ---------------------------------------------------------- settings ----

pub async fn settings_round_trip(store: &dyn Store) {
    const POLICY: &str = "undeclaredAttributes";
    assert_eq!(store.get_setting(&tenant(), POLICY).await.unwrap(), None);
    let admin = client("admin");
    store
        .set_setting(&tenant(), &admin, POLICY, "capture")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_setting(&tenant(), POLICY)
            .await
            .unwrap()
            .as_deref(),
        Some("capture")
    );
    // Setting the same value records nothing; a new value does.
    store
        .set_setting(&tenant(), &admin, POLICY, "capture")
        .await
        .unwrap();
    store
        .set_setting(&tenant(), &admin, POLICY, "reject")
        .await
        .unwrap();
    store
        .set_setting(&tenant(), &admin, "other", "x")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_setting(&tenant(), POLICY)
            .await
            .unwrap()
            .as_deref(),
        Some("reject")
    );
    let changes = all_changes(store, &tenant()).await;
    let summary: Vec<(ChangeKind, &str, &str, u64, Value)> = changes
        .iter()
        .map(|change| {
            (
                change.kind,
                change.resource_type.as_str(),
                change.resource_id.0.as_str(),
                change.version,
                change.payload.to_json(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                ChangeKind::Setting,
                "Setting",
                POLICY,
                1,
                json!({"key": POLICY, "value": "capture"})
            ),
            (
                ChangeKind::Setting,
                "Setting",
                POLICY,
                2,
                json!({"key": POLICY, "value": "reject"})
            ),
            (
                ChangeKind::Setting,
                "Setting",
                "other",
                1,
                json!({"key": "other", "value": "x"})
            ),
        ]
    );
    assert_eq!(changes[0].actor, admin);
}

// ---------------------------------------------------- attribute usage ----

fn usage_of<'u>(
    usage: &'u [AttributeUsage],
    resource_type: &str,
    declared: bool,
    path: &str,
) -> Option<&'u AttributeUsage> {
    usage.iter().find(|entry| {
        entry.resource_type == resource_type && entry.declared == declared && entry.path == path
    })
}

fn holders(usage: &[AttributeUsage], declared: bool, path: &str) -> u64 {
    usage_of(usage, "User", declared, path).map_or(0, |entry| entry.holders)
}

pub async fn attribute_usage_counts_and_attributes(store: &dyn Store) {
    let okta = client("okta");
    let entra = client("entra");
    let mut made = Vec::new();
    for (index, (who, extension)) in [
        (&okta, json!({"code": "A", "level": 1})),
        (&okta, json!({"code": "B"})),
        (&okta, json!({"level": 3})),
    ]
    .into_iter()
    .enumerate()
    {
        let mut resource = user_with(&format!("usage{index}"), extension);
        resource["emails"] =
            json!([{"value": format!("u{index}@x.org")}, {"value": "second@x.org"}]);
        let created = store
            .create(&tenant(), who, "User", super::new(resource, Vec::new()))
            .await
            .unwrap();
        made.push(created);
    }
    let captured = store
        .create(
            &tenant(),
            &entra,
            "User",
            NewResource {
                id: None,
                resource: user("captured"),
                members: Vec::new(),
                unmapped: object(json!({"extension_abc123_region": "APAC", "blank": ""})),
                unique: Vec::new(),
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            },
        )
        .await
        .unwrap();
    store
        .create(
            &tenant(),
            &okta,
            "Group",
            super::new(super::group("team"), Vec::new()),
        )
        .await
        .unwrap();

    // Failed writes note nothing: one refused before its index rows are
    // written (userName taken), one after (a member that does not exist).
    let flag_path = "urn:ietf:params:scim:schemas:extension:mustertest:2.0:user:flag";
    let error = store
        .create(
            &tenant(),
            &client("failing"),
            "User",
            super::new(user_with("USAGE0", json!({"flag": true})), Vec::new()),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let mut ghosted = super::group("ghosted");
    ghosted["externalId"] = json!("g-1");
    let ghost = muster_store::ResourceId("00000000-0000-0000-0000-000000000000".to_owned());
    let error = store
        .create(
            &tenant(),
            &client("failing"),
            "Group",
            super::new(ghosted, vec![super::member(&ghost)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Scim(_)), "{error:?}");

    let usage = store.attribute_usage(&tenant()).await.unwrap();
    assert!(
        usage_of(&usage, "User", true, flag_path).is_none(),
        "{usage:?}"
    );
    assert!(
        usage_of(&usage, "Group", true, "externalid").is_none(),
        "{usage:?}"
    );
    assert!(usage
        .iter()
        .all(|entry| entry.last_client.as_deref() != Some("failing")));
    assert_eq!(holders(&usage, true, "username"), 4);
    assert_eq!(holders(&usage, true, CODE_PATH), 2);
    assert_eq!(holders(&usage, true, LEVEL_PATH), 2);
    assert_eq!(holders(&usage, true, "emails"), 3, "resources, not values");
    assert_eq!(holders(&usage, true, "emails.value"), 3);
    assert_eq!(holders(&usage, false, "extension_abc123_region"), 1);
    let blank = usage_of(&usage, "User", false, "blank").map(|entry| entry.holders);
    assert!(blank.is_none() || blank == Some(0), "{blank:?}");
    let display = usage_of(&usage, "Group", true, "displayname").unwrap();
    assert_eq!(
        (display.holders, display.last_client.as_deref()),
        (1, Some("okta"))
    );
    assert!(usage_of(&usage, "User", true, "displayname").is_none());
    let code = usage_of(&usage, "User", true, CODE_PATH).unwrap();
    assert_eq!(code.last_client.as_deref(), Some("okta"));
    assert_eq!(
        code.last_set.as_deref(),
        made[1].resource["meta"]["created"].as_str()
    );
    let region = usage_of(&usage, "User", false, "extension_abc123_region").unwrap();
    assert_eq!(region.last_client.as_deref(), Some("entra"));
    assert_eq!(
        region.last_set.as_deref(),
        captured.resource["meta"]["created"].as_str()
    );
    // Ordered by resource type, declared first, then path.
    let keys: Vec<(&str, bool, &str)> = usage
        .iter()
        .map(|entry| {
            (
                entry.resource_type.as_str(),
                !entry.declared,
                entry.path.as_str(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);

    // entra sets `code` on the third user and clears it on the first; the
    // first user is then deleted.
    let set_code = |code: Option<&'static str>| -> muster_store::UpdateFn {
        Box::new(move |current: &StoredResource| {
            let mut resource = current.resource.clone();
            match code {
                Some(code) => resource[CUSTOM]["code"] = json!(code),
                None => {
                    resource[CUSTOM]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("code");
                }
            }
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
    };
    let (third, _) = store
        .update(
            &tenant(),
            &entra,
            "User",
            &made[2].id,
            muster_store::Precondition::None,
            false,
            set_code(Some("C")),
        )
        .await
        .unwrap();
    let usage = store.attribute_usage(&tenant()).await.unwrap();
    assert_eq!(holders(&usage, true, CODE_PATH), 3);
    let code = usage_of(&usage, "User", true, CODE_PATH).unwrap();
    assert_eq!(code.last_client.as_deref(), Some("entra"));
    assert_eq!(
        code.last_set.as_deref(),
        third.resource["meta"]["lastModified"].as_str()
    );
    // Not touched by that write: still okta's.
    let level = usage_of(&usage, "User", true, LEVEL_PATH).unwrap();
    assert_eq!(level.last_client.as_deref(), Some("okta"));

    store
        .update(
            &tenant(),
            &client("cleaner"),
            "User",
            &made[0].id,
            muster_store::Precondition::None,
            false,
            set_code(None),
        )
        .await
        .unwrap();
    let usage = store.attribute_usage(&tenant()).await.unwrap();
    assert_eq!(holders(&usage, true, CODE_PATH), 2);
    let code = usage_of(&usage, "User", true, CODE_PATH).unwrap();
    assert_eq!(
        code.last_client.as_deref(),
        Some("entra"),
        "clearing is not setting"
    );

    store
        .delete(
            &tenant(),
            &okta,
            "User",
            &made[1].id,
            muster_store::Precondition::None,
        )
        .await
        .unwrap();
    store
        .delete(
            &tenant(),
            &okta,
            "User",
            &captured.id,
            muster_store::Precondition::None,
        )
        .await
        .unwrap();
    let usage = store.attribute_usage(&tenant()).await.unwrap();
    assert_eq!(holders(&usage, true, CODE_PATH), 1);
    assert_eq!(holders(&usage, true, "username"), 2);
    assert_eq!(holders(&usage, true, "emails.value"), 2);
    let region = usage_of(&usage, "User", false, "extension_abc123_region").unwrap();
    assert_eq!(
        region.holders, 0,
        "no holder left, but who set it last stays"
    );
    assert_eq!(region.last_client.as_deref(), Some("entra"));
}

// ---------------------------------------------------------- tenants ----

pub async fn custom_attributes_are_per_tenant(store: &dyn Store, other: &TenantId) {
    store
        .put_schema(
            &tenant(),
            &actor(),
            schema(REGION, "User", &["region"]),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    store
        .set_setting(&tenant(), &actor(), "undeclaredAttributes", "capture")
        .await
        .unwrap();
    store
        .create(
            &tenant(),
            &actor(),
            "User",
            NewResource {
                id: None,
                resource: user_with("alice", json!({"code": "A"})),
                members: Vec::new(),
                unmapped: object(json!({"regoin": "APAC"})),
                unique: Vec::new(),
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            },
        )
        .await
        .unwrap();

    assert_eq!(store.list_schemas(other).await.unwrap(), Vec::new());
    assert_eq!(
        store
            .get_setting(other, "undeclaredAttributes")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.attribute_usage(other).await.unwrap(), Vec::new());
    let visited = store
        .scan(other, "User", Box::new(|_: &StoredResource| {}))
        .await
        .unwrap();
    assert_eq!(visited, 0);
    let error = store
        .delete_schema(other, &actor(), REGION, None, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    assert_eq!(store.changes(other, 0, 100).await.unwrap(), Vec::new());

    // The other tenant's rewrite sees only its own resources, and its
    // declarations are its own.
    let theirs = store
        .create(
            other,
            &actor(),
            "User",
            super::new(user_with("alice", json!({"code": "B"})), Vec::new()),
        )
        .await
        .unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let outcome = store
        .put_schema(
            other,
            &actor(),
            schema(REGION, "User", &["elsewhere"]),
            Some(remove_code(Arc::clone(&calls), None)),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.rewritten, calls.load(Ordering::SeqCst)), (1, 1));
    let mine = store.list_schemas(&tenant()).await.unwrap();
    assert_eq!(
        mine[0].document,
        schema(REGION, "User", &["region"]).document
    );
    assert_eq!(
        matching(store, &tenant(), &format!("{CUSTOM}:code pr"))
            .await
            .len(),
        1
    );
    assert_eq!(
        matching(store, other, &format!("{CUSTOM}:code pr")).await,
        Vec::<String>::new()
    );
    let usage = store.attribute_usage(other).await.unwrap();
    assert_eq!(holders(&usage, true, "username"), 1);
    assert_eq!(holders(&usage, true, CODE_PATH), 0);
    assert!(usage.iter().all(|entry| entry.declared), "{usage:?}");
    assert_eq!(get_in(store, other, &theirs).await.version, 2);

    // Unknown tenants are refused.
    let nobody = TenantId("nobody".to_owned());
    let error = store
        .put_schema(
            &nobody,
            &actor(),
            schema(REGION, "User", &[]),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    let error = store
        .set_setting(&nobody, &actor(), "k", "v")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
}

async fn get_in(store: &dyn Store, tenant: &TenantId, stored: &StoredResource) -> StoredResource {
    store
        .get(tenant, &stored.resource_type, &stored.id, false)
        .await
        .unwrap()
}

/// Attributes the server names as unique are checked inside the write:
/// case-insensitively unless case-exact, numbers by value, never against
/// the resource itself or another resource type, and only values present.
pub async fn unique_attributes_are_enforced(store: &dyn Store) {
    let unique = |path: &str, case_exact: bool| UniqueAttribute {
        path: path.to_owned(),
        case_exact,
    };
    let employee = format!("{CUSTOM}:employee");
    let rules = vec![
        unique(&employee, false),
        unique(&format!("{CUSTOM}:code"), true),
        unique(&format!("{CUSTOM}:level"), false),
        unique(&format!("{CUSTOM}:badge.number"), false),
    ];
    let create = |user_name: &str, extension: Value| NewResource {
        resource: user_with(user_name, extension),
        unique: rules.clone(),
        ..NewResource::default()
    };
    let alice = store
        .create(
            &tenant(),
            &actor(),
            "User",
            create(
                "alice",
                json!({"employee": "E-1", "code": "A", "level": 3, "badge": {"number": "B-1"}, "tags": ["x"]}),
            ),
        )
        .await
        .unwrap();
    for (extension, clash) in [
        (json!({"employee": "e-1"}), "E-1"),
        (json!({"level": 3}), "3"),
        (json!({"badge": {"number": "b-1"}}), "B-1"),
    ] {
        let refused = store
            .create(&tenant(), &actor(), "User", create("bob", extension))
            .await;
        match refused {
            Err(StoreError::Conflict(detail)) => {
                assert!(detail.contains(&alice.id.0), "{detail}");
                assert!(
                    detail.to_lowercase().contains(&clash.to_lowercase()),
                    "{detail}"
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(
        matching(store, &tenant(), "userName eq \"bob\"")
            .await
            .len(),
        0
    );
    // Case-exact values differ by case; absent and other values are free.
    let bob = store
        .create(
            &tenant(),
            &actor(),
            "User",
            create(
                "bob",
                json!({"employee": "", "code": "a", "level": 4, "badge": {"number": null}}),
            ),
        )
        .await
        .unwrap();
    // A resource keeps its own values; an update into a clash is refused
    // and changes nothing.
    let keep = |extension: Value, rules: Vec<UniqueAttribute>| -> UpdateFn {
        Box::new(move |current: &StoredResource| {
            let mut resource = current.resource.clone();
            resource[CUSTOM] = extension;
            Ok(Some(Update {
                resource,
                member_changes: Vec::new(),
                unmapped: None,
                unique: rules,
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            }))
        })
    };
    let (updated, changed) = update(
        store,
        "User",
        &alice.id,
        keep(
            json!({"employee": "E-1", "code": "A", "level": 5}),
            rules.clone(),
        ),
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(updated.resource[CUSTOM]["level"], 5);
    let refused = update(
        store,
        "User",
        &bob.id,
        keep(json!({"code": "a", "level": 5}), rules.clone()),
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        get(store, "User", &bob.id).await.resource[CUSTOM]["level"],
        4
    );
    // Without the rule, the same value is accepted (the store reads no
    // schema).
    update(
        store,
        "User",
        &bob.id,
        keep(json!({"code": "a", "level": 5}), Vec::new()),
    )
    .await
    .unwrap();
}
