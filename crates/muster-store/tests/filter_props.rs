//! Property tests: for generated resources, filters and sort orders, the
//! SQL path (`Store::list`) returns exactly the resources, in exactly the
//! order, that the in-memory reference semantics (`Filter::matches`,
//! `muster_scim::sort_by_key`) give. The custom extension is declared with
//! a generated subset of its attributes searchable (in the lookup index),
//! and sometimes declared again with another subset once the resources are
//! stored, so clauses on indexed and non-indexed custom paths, and rows
//! flipped by a schema change, are all exercised.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;

use std::sync::OnceLock;

use muster_scim::schema::builtin::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use muster_scim::{
    sort_by_key, AttrPath, CompareOp, Filter, FilterValue, SchemaRegistry, SortKey, SortOrder,
};
use muster_store::sqlite::{SqliteOptions, SqliteStore};
use muster_store::{ListQuery, Member, Page, ResourceId, SchemaRecord, Store, StoredResource};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use suite::{actor, new, tenant, CUSTOM};

/// Texts chosen to collide under case folding, look like dates, carry LIKE
/// wildcards, or be empty.
const TEXTS: &[&str] = &[
    "a",
    "A",
    "ab",
    "Ab",
    "b",
    "é",
    "É",
    "",
    "abc",
    "x@y.com",
    "X@Y.COM",
    "2020-01-01T00:00:00Z",
    "2020-01-01T01:00:00+01:00",
    "2021-03-04T05:06:07.5Z",
    "not-date",
    "ÉCOLE",
    "école",
    "%",
    "_",
    "a%b",
];

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(TEXTS).prop_map(str::to_owned)
}

fn maybe<T: std::fmt::Debug + Clone>(
    strategy: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.6, strategy)
}

/// Inserts `value` under `key` when there is one.
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

fn email() -> impl Strategy<Value = Value> {
    (
        maybe(text()),
        maybe(prop::sample::select(vec!["work", "home", "WORK"])),
        maybe(any::<bool>()),
    )
        .prop_map(|(value, kind, primary)| {
            let mut object = Map::new();
            put(&mut object, "value", value.map(Value::from));
            put(&mut object, "type", kind.map(Value::from));
            put(&mut object, "primary", primary.map(Value::from));
            Value::Object(object)
        })
}

fn custom() -> impl Strategy<Value = Option<Value>> {
    maybe(
        (
            maybe(-3i64..12),
            maybe(prop::sample::select(vec![-1.5, 0.0, 2.5, 3.5])),
            maybe(text()),
            maybe(any::<bool>()),
            maybe(text()),
            prop::collection::vec(text(), 0..3),
        )
            .prop_map(|(level, score, hired, flag, code, tags)| {
                let mut object = Map::new();
                put(&mut object, "level", level.map(Value::from));
                put(&mut object, "score", score.map(Value::from));
                put(&mut object, "hired", hired.map(Value::from));
                put(&mut object, "flag", flag.map(Value::from));
                put(&mut object, "code", code.map(Value::from));
                if !tags.is_empty() {
                    object.insert("tags".to_owned(), json!(tags));
                }
                Value::Object(object)
            }),
    )
}

/// A User (its userName made unique by the caller).
fn user() -> impl Strategy<Value = Value> {
    (
        text(),
        maybe(text()),
        maybe(text()),
        maybe(any::<bool>()),
        maybe((maybe(text()), maybe(text()))),
        prop::collection::vec(email(), 0..3),
        maybe((text(), maybe(text()))),
        custom(),
        maybe(text()),
    )
        .prop_map(
            |(
                user_name,
                display_name,
                title,
                active,
                name,
                emails,
                enterprise,
                custom,
                external,
            )| {
                let mut object = Map::new();
                object.insert("schemas".to_owned(), json!([USER_SCHEMA]));
                object.insert("userName".to_owned(), Value::from(user_name));
                put(&mut object, "externalId", external.map(Value::from));
                put(&mut object, "displayName", display_name.map(Value::from));
                put(&mut object, "title", title.map(Value::from));
                put(&mut object, "active", active.map(Value::from));
                if let Some((given, family)) = name {
                    let mut name = Map::new();
                    put(&mut name, "givenName", given.map(Value::from));
                    put(&mut name, "familyName", family.map(Value::from));
                    object.insert("name".to_owned(), Value::Object(name));
                }
                if !emails.is_empty() {
                    object.insert("emails".to_owned(), Value::Array(emails));
                }
                if let Some((department, manager)) = enterprise {
                    let mut extension = Map::new();
                    extension.insert("department".to_owned(), Value::from(department));
                    if let Some(manager) = manager {
                        extension.insert("manager".to_owned(), json!({ "value": manager }));
                    }
                    object.insert(ENTERPRISE_USER_SCHEMA.to_owned(), Value::Object(extension));
                }
                put(&mut object, CUSTOM, custom);
                Value::Object(object)
            },
        )
}

/// Groups: a display name and members by index (users `u<n>`, earlier
/// groups `g<n>`).
fn groups() -> impl Strategy<Value = Vec<(String, Vec<usize>, Vec<usize>)>> {
    prop::collection::vec(
        (
            text(),
            prop::collection::vec(0usize..8, 0..4),
            prop::collection::vec(0usize..3, 0..2),
        ),
        0..4,
    )
}

const USER_PATHS: &[&str] = &[
    "userName",
    "USERNAME",
    "displayName",
    "title",
    "active",
    "name",
    "name.givenName",
    "name.familyName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:level",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:score",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:hired",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:flag",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:code",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:tags",
    "meta.resourceType",
    "meta.created",
    "meta.lastModified",
    "meta.version",
    "meta.location",
    "meta",
    "id",
    "externalId",
    "groups",
    "groups.value",
    "groups.display",
    "groups.type",
    "nosuch",
    "emails.nosuch",
];

const USER_VALUE_PATHS: &[&str] = &[
    "meta",
    "id",
    "emails",
    "name",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:tags",
    "groups",
    "title",
];

const GROUP_PATHS: &[&str] = &[
    "displayName",
    "members",
    "members.value",
    "members.type",
    "members.display",
    "members.$ref",
    "id",
];

const SUB_PATHS: &[&str] = &[
    "value",
    "type",
    "primary",
    "display",
    "givenName",
    "nosuch",
    "version",
    "lastModified",
    "resourceType",
];

fn literal() -> impl Strategy<Value = FilterValue> {
    prop_oneof![
        5 => text().prop_map(FilterValue::String),
        2 => (0usize..8).prop_map(|n| FilterValue::String(format!("@u{n}"))),
        1 => (0usize..4).prop_map(|n| FilterValue::String(format!("@g{n}"))),
        1 => prop::sample::select(vec![
            "User", "Group", "direct", "INDIRECT", "W/\"1\"", "w/\"2\"", "2100-01-01T00:00:00Z",
        ])
            .prop_map(|t| FilterValue::String(t.to_owned())),
        2 => prop::sample::select(vec!["-1", "0", "2.5", "3", "10"])
            .prop_map(|n| FilterValue::Number(serde_json::from_str(n).unwrap())),
        1 => any::<bool>().prop_map(FilterValue::Boolean),
        1 => Just(FilterValue::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn leaf(paths: &'static [&'static str]) -> impl Strategy<Value = Filter> {
    let path = prop::sample::select(paths).prop_map(|p| AttrPath::parse(p).unwrap());
    prop_oneof![
        4 => (path.clone(), op(), literal())
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        1 => path.prop_map(Filter::Present),
    ]
}

fn tree(leaf: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(depth, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

fn filter(
    paths: &'static [&'static str],
    value_paths: &'static [&'static str],
) -> BoxedStrategy<Filter> {
    let value_path = (
        prop::sample::select(value_paths).prop_map(|p| AttrPath::parse(p).unwrap()),
        tree(leaf(SUB_PATHS).boxed(), 2),
    )
        .prop_map(|(path, filter)| Filter::ValuePath {
            path,
            filter: Box::new(filter),
        });
    let leaves = prop_oneof![3 => leaf(paths), 1 => value_path].boxed();
    tree(leaves, 3)
}

/// Replaces `@u<n>` / `@g<n>` literals with the ids of generated resources.
fn bind_ids(filter: &Filter, users: &[ResourceId], groups: &[ResourceId]) -> Filter {
    let recurse = |f: &Filter| bind_ids(f, users, groups);
    match filter {
        Filter::And(operands) => Filter::And(operands.iter().map(recurse).collect()),
        Filter::Or(operands) => Filter::Or(operands.iter().map(recurse).collect()),
        Filter::Not(operand) => Filter::Not(Box::new(recurse(operand))),
        Filter::Present(path) => Filter::Present(path.clone()),
        Filter::ValuePath { path, filter } => Filter::ValuePath {
            path: path.clone(),
            filter: Box::new(recurse(filter)),
        },
        Filter::Compare { path, op, value } => {
            let value = match value {
                FilterValue::String(text) if text.starts_with('@') => {
                    let (list, index) = match text.get(1..2) {
                        Some("u") => (users, text.get(2..)),
                        _ => (groups, text.get(2..)),
                    };
                    let index: usize = index.and_then(|i| i.parse().ok()).unwrap_or(0);
                    FilterValue::String(
                        list.get(index)
                            .map_or_else(|| "missing".to_owned(), |id| id.0.clone()),
                    )
                }
                other => other.clone(),
            };
            Filter::Compare {
                path: path.clone(),
                op: *op,
                value,
            }
        }
    }
}

fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(suite::registry)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A store holding the generated users and groups; resources read back in
/// creation order.
struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    users: Vec<StoredResource>,
    groups: Vec<StoredResource>,
}

/// The attributes of the custom extension.
const CUSTOM_ATTRIBUTES: &[&str] = &["level", "score", "hired", "flag", "code", "tags"];

/// Declares the custom extension with `searchable` attributes.
async fn declare(store: &SqliteStore, searchable: &[&str]) {
    let record = SchemaRecord {
        urn: CUSTOM.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": CUSTOM}),
        updated: String::new(),
        client: String::new(),
        searchable: searchable.iter().map(|name| name.to_uppercase()).collect(),
    };
    store
        .put_schema(&tenant(), &actor(), record, None, None, None)
        .await
        .unwrap();
}

async fn world(
    users: Vec<Value>,
    groups: Vec<(String, Vec<usize>, Vec<usize>)>,
    updates: Vec<(usize, Value)>,
    searchable: (Vec<&str>, Option<Vec<&str>>),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), &options).unwrap();
    let (searchable, redeclared) = searchable;
    declare(&store, &searchable).await;
    let mut user_ids = Vec::new();
    for (index, mut resource) in users.into_iter().enumerate() {
        let user_name = format!("{}{index}", resource["userName"].as_str().unwrap());
        resource["userName"] = json!(user_name);
        let stored = store
            .create(&tenant(), &actor(), "User", new(resource, Vec::new()))
            .await
            .unwrap();
        user_ids.push(stored.id);
    }
    // Replace some users' attributes, so that index rows are also written by
    // updates (which rewrite only the rows that changed).
    for (index, mut resource) in updates {
        let Some(id) = user_ids.get(index) else {
            continue;
        };
        let user_name = format!("{}{index}", resource["userName"].as_str().unwrap());
        resource["userName"] = json!(user_name);
        suite::update(&store, "User", id, suite::replace(resource))
            .await
            .unwrap();
    }
    let mut group_ids: Vec<ResourceId> = Vec::new();
    for (index, (name, user_members, group_members)) in groups.into_iter().enumerate() {
        let members: Vec<Member> = user_members
            .iter()
            .filter_map(|n| user_ids.get(*n))
            .chain(group_members.iter().filter_map(|n| group_ids.get(*n)))
            .map(suite::member)
            .collect();
        let resource = json!({"schemas": [GROUP_SCHEMA], "displayName": format!("{name}{index}")});
        let stored = store
            .create(&tenant(), &actor(), "Group", new(resource, members))
            .await
            .unwrap();
        group_ids.push(stored.id);
    }
    if let Some(redeclared) = redeclared {
        declare(&store, &redeclared).await;
    }
    let mut users = Vec::new();
    for id in &user_ids {
        users.push(store.get(&tenant(), "User", id, true).await.unwrap());
    }
    let mut groups = Vec::new();
    for id in &group_ids {
        groups.push(store.get(&tenant(), "Group", id, true).await.unwrap());
    }
    World {
        _dir: dir,
        store,
        users,
        groups,
    }
}

impl World {
    fn ids(&self, resource_type: &str) -> (Vec<ResourceId>, Vec<ResourceId>) {
        let _ = resource_type;
        (
            self.users.iter().map(|u| u.id.clone()).collect(),
            self.groups.iter().map(|g| g.id.clone()).collect(),
        )
    }

    async fn list(&self, query: &ListQuery) -> Vec<ResourceId> {
        self.store
            .list(&tenant(), registry(), query)
            .await
            .unwrap_or_else(|e| panic!("{query:?}: {e:?}"))
            .resources
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    /// Asserts SQL and the evaluator agree on `filter`.
    async fn agree(&self, resource_type: &str, filter: &Filter) {
        let (users, groups) = self.ids(resource_type);
        let filter = bind_ids(filter, &users, &groups);
        let resources = if resource_type == "User" {
            &self.users
        } else {
            &self.groups
        };
        let rt = registry().resource_type(resource_type).unwrap();
        let expected: Vec<ResourceId> = resources
            .iter()
            .filter(|r| filter.matches(&r.resource, registry(), rt))
            .map(|r| r.id.clone())
            .collect();
        let query = ListQuery {
            resource_type: resource_type.to_owned(),
            filter: Some(filter.clone()),
            sort_by: None,
            descending: false,
            page: Page::Index {
                start_index: 1,
                count: 1000,
            },
            include_members: true,
        };
        let got = self.list(&query).await;
        assert_eq!(got, expected, "filter {filter} on {resource_type}s");
    }

    /// Asserts the SQL order, whole and cursor-paged, is the in-memory one.
    async fn same_order(&self, sort_by: &str, descending: bool) {
        let rt = registry().resource_type("User").unwrap();
        let path = AttrPath::parse(sort_by).unwrap();
        let key = SortKey::new(registry(), rt, &path).unwrap();
        let order = if descending {
            SortOrder::Descending
        } else {
            SortOrder::Ascending
        };
        let mut expected = self.users.clone();
        sort_by_key(&mut expected, &key, order, |r| &r.resource);
        let expected: Vec<ResourceId> = expected.into_iter().map(|r| r.id).collect();
        let query = |page| ListQuery {
            resource_type: "User".to_owned(),
            filter: None,
            sort_by: Some(path.clone()),
            descending,
            page,
            include_members: true,
        };
        let whole = self
            .list(&query(Page::Index {
                start_index: 1,
                count: 1000,
            }))
            .await;
        assert_eq!(whole, expected, "sortBy {sort_by} descending={descending}");
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list(
                    &tenant(),
                    registry(),
                    &query(Page::Cursor { cursor, count: 2 }),
                )
                .await
                .unwrap();
            paged.extend(page.resources.into_iter().map(|r| r.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(
            paged, expected,
            "cursor paging, sortBy {sort_by} descending={descending}"
        );
    }
}

const SORT_PATHS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "active",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:level",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:score",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:hired",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:flag",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:code",
    "urn:ietf:params:scim:schemas:extension:mustertest:2.0:User:tags",
    "groups.display",
    "groups.type",
    "id",
    "meta.created",
    "meta.lastModified",
    "meta.version",
    "externalId",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sql_filters_agree_with_the_evaluator(
        users in prop::collection::vec(user(), 1..8),
        groups in groups(),
        updates in prop::collection::vec((0usize..8, user()), 0..4),
        user_filters in prop::collection::vec(filter(USER_PATHS, USER_VALUE_PATHS), 16),
        group_filters in prop::collection::vec(filter(GROUP_PATHS, &["members"]), 6),
        sorts in prop::collection::vec((prop::sample::select(SORT_PATHS), any::<bool>()), 4),
        searchable in prop::sample::subsequence(CUSTOM_ATTRIBUTES, 0..=CUSTOM_ATTRIBUTES.len()),
        redeclared in maybe(prop::sample::subsequence(CUSTOM_ATTRIBUTES, 0..=CUSTOM_ATTRIBUTES.len())),
    ) {
        runtime().block_on(async {
            let world = world(users, groups, updates, (searchable, redeclared)).await;
            for filter in &user_filters {
                world.agree("User", filter).await;
            }
            for filter in &group_filters {
                world.agree("Group", filter).await;
            }
            for (sort_by, descending) in &sorts {
                world.same_order(sort_by, *descending).await;
            }
        });
    }
}
