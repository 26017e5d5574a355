//! Searchable custom attributes on SQLite (issue #5): which index rows are
//! in the partial lookup index (`resource_values.indexed`), and that
//! filters, sorting, uniqueness and usage stay right whether an attribute is
//! searchable or not, across schema changes, processes and tenants.
//!
//! The flags are read with plain SQL on the database file: the invariant
//! checked after every step is that the rows of a (tenant, path) are all
//! indexed or all not, as the stored rules say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;

use std::path::Path;

use muster_scim::schema::builtin::USER_SCHEMA;
use muster_scim::{AttrPath, Attribute, AttributeType, Filter, Schema, SchemaRegistry};
use muster_store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{
    ListQuery, NewResource, Page, SchemaRecord, Store, StoreError, StoredResource, TenantId,
    UniqueAttribute,
};
use serde_json::{json, Value};
use suite::actor;

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
/// The index path prefix of the Contoso extension.
const PREFIX: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:user";

/// The built-in registry plus Contoso: `region`, `costCenter`,
/// `employeeCode` (unique), complex multi-valued `customFields`
/// (`BPO_Vendor_ID`, `site`).
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let string = |name: &str| Attribute::new(name, AttributeType::String);
    registry
        .add_schema(Schema {
            id: CONTOSO.to_owned(),
            name: Some("Contoso".to_owned()),
            description: None,
            attributes: vec![
                string("region"),
                string("costCenter"),
                string("employeeCode"),
                Attribute {
                    sub_attributes: vec![string("BPO_Vendor_ID"), string("site")],
                    multi_valued: true,
                    ..Attribute::new("customFields", AttributeType::Complex)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", CONTOSO, false).unwrap();
    registry
}

fn record(searchable: &[&str]) -> SchemaRecord {
    SchemaRecord {
        urn: CONTOSO.to_owned(),
        resource_type: "User".to_owned(),
        required: false,
        document: json!({"id": CONTOSO, "attributes": [
            {"name": "region"}, {"name": "costCenter"}, {"name": "employeeCode"},
            {"name": "customFields"},
        ]}),
        updated: String::new(),
        client: String::new(),
        searchable: searchable.iter().map(|name| (*name).to_owned()).collect(),
    }
}

async fn put(store: &dyn Store, tenant: &TenantId, searchable: &[&str]) {
    store
        .put_schema(tenant, &actor(), record(searchable), None, None, None)
        .await
        .unwrap();
}

fn open(dir: &Path) -> SqliteStore {
    let options = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(dir, &options).unwrap()
}

fn unique_code() -> Vec<UniqueAttribute> {
    vec![UniqueAttribute {
        path: format!("{CONTOSO}:employeeCode"),
        case_exact: false,
    }]
}

/// Creates a user carrying Contoso values.
async fn create(
    store: &dyn Store,
    tenant: &TenantId,
    user_name: &str,
    extension: Value,
) -> Result<StoredResource, StoreError> {
    let resource = json!({
        "schemas": [USER_SCHEMA, CONTOSO],
        "userName": user_name,
        CONTOSO: extension,
    });
    let new = NewResource {
        resource,
        unique: unique_code(),
        ..NewResource::default()
    };
    store.create(tenant, &actor(), "User", new).await
}

/// The user names a filter (and sort) returns, in order; checked against
/// the in-memory evaluator when unsorted.
async fn names(
    store: &dyn Store,
    tenant: &TenantId,
    filter: &str,
    sort_by: Option<&str>,
) -> Vec<String> {
    let registry = registry();
    let parsed = Filter::parse(filter).unwrap();
    let query = ListQuery {
        resource_type: "User".to_owned(),
        filter: Some(parsed.clone()),
        sort_by: sort_by.map(|path| AttrPath::parse(path).unwrap()),
        descending: false,
        page: Page::Index {
            start_index: 1,
            count: 1000,
        },
        include_members: false,
    };
    let page = store
        .list(tenant, &registry, &query)
        .await
        .unwrap_or_else(|error| panic!("{filter}: {error:?}"));
    if sort_by.is_none() {
        let everything = ListQuery {
            filter: None,
            ..query.clone()
        };
        let all = store.list(tenant, &registry, &everything).await.unwrap();
        let rt = registry.resource_type("User").unwrap();
        let expected: Vec<&Value> = all
            .resources
            .iter()
            .filter(|stored| parsed.matches(&stored.resource, &registry, rt))
            .map(|stored| &stored.resource)
            .collect();
        let got: Vec<&Value> = page
            .resources
            .iter()
            .map(|stored| &stored.resource)
            .collect();
        assert_eq!(got, expected, "{filter}: SQL and the evaluator disagree");
        assert_eq!(page.total_results, expected.len() as u64, "{filter}");
    }
    page.resources
        .iter()
        .map(|stored| stored.resource["userName"].as_str().unwrap().to_owned())
        .collect()
}

/// The distinct `indexed` flags of a tenant's rows at an index path.
fn flags(dir: &Path, tenant: &TenantId, path: &str) -> Vec<i64> {
    let connection = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT DISTINCT v.indexed FROM resource_values v
             JOIN attribute_paths p ON p.path_id = v.path_id
             WHERE v.tenant_id = ?1 AND p.path = ?2 ORDER BY 1",
        )
        .unwrap();
    statement
        .query_map(rusqlite::params![tenant.0, path], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The invariant: no (tenant, path) has rows both indexed and not.
fn assert_consistent(dir: &Path) {
    let connection = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    let mixed: Vec<(String, String)> = connection
        .prepare(
            "SELECT v.tenant_id, p.path FROM resource_values v
             JOIN attribute_paths p ON p.path_id = v.path_id
             GROUP BY v.tenant_id, p.path HAVING count(DISTINCT v.indexed) > 1",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(mixed, Vec::<(String, String)>::new(), "mixed flags");
}

fn path(attribute: &str) -> String {
    format!("{PREFIX}:{attribute}")
}

/// Three users with Contoso values: (ann, bob, cy).
async fn three_users(store: &dyn Store, tenant: &TenantId) {
    create(
        store,
        tenant,
        "ann",
        json!({"region": "APAC", "costCenter": "C-7", "employeeCode": "E1",
               "customFields": [{"BPO_Vendor_ID": "V1", "site": "Manila"}]}),
    )
    .await
    .unwrap();
    create(
        store,
        tenant,
        "bob",
        json!({"region": "EMEA", "employeeCode": "E2",
               "customFields": [{"BPO_Vendor_ID": "V2"}, {"BPO_Vendor_ID": "V3", "site": "Cairo"}]}),
    )
    .await
    .unwrap();
    create(
        store,
        tenant,
        "cy",
        json!({"region": "apac-north", "costCenter": "D-1"}),
    )
    .await
    .unwrap();
}

/// Every filter shape over Contoso, with its expected user names.
fn expectations() -> Vec<(String, Vec<&'static str>)> {
    vec![
        (format!(r#"{CONTOSO}:region eq "apac""#), vec!["ann"]),
        (format!(r#"{CONTOSO}:region co "AC""#), vec!["ann", "cy"]),
        (format!(r#"{CONTOSO}:region sw "apac""#), vec!["ann", "cy"]),
        (format!(r#"{CONTOSO}:costCenter pr"#), vec!["ann", "cy"]),
        (format!(r#"not ({CONTOSO}:costCenter pr)"#), vec!["bob"]),
        (
            format!(r#"{CONTOSO}:costCenter ne "C-7""#),
            vec!["bob", "cy"],
        ),
        (format!(r#"{CONTOSO}:customFields pr"#), vec!["ann", "bob"]),
        (
            format!(r#"{CONTOSO}:customFields.BPO_Vendor_ID eq "v3""#),
            vec!["bob"],
        ),
        (
            format!(r#"{CONTOSO}:customFields[BPO_Vendor_ID eq "V3" and site pr]"#),
            vec!["bob"],
        ),
        (
            format!(r#"{CONTOSO}:customFields[BPO_Vendor_ID eq "V2" and site pr]"#),
            vec![],
        ),
        (
            format!(r#"{CONTOSO}:customFields[site co "a"]"#),
            vec!["ann", "bob"],
        ),
        (
            format!(r#"userName eq "bob" and {CONTOSO}:region eq "EMEA""#),
            vec!["bob"],
        ),
        (
            format!(r#"userName sw "c" or {CONTOSO}:costCenter eq "c-7""#),
            vec!["ann", "cy"],
        ),
        (
            format!(r#"{CONTOSO}:region eq "EMEA" or {CONTOSO}:customFields.site eq "manila""#),
            vec!["ann", "bob"],
        ),
    ]
}

async fn check_filters(store: &dyn Store, tenant: &TenantId) {
    for (filter, expected) in expectations() {
        assert_eq!(
            names(store, tenant, &filter, None).await,
            expected,
            "{filter}"
        );
    }
    let sorted = names(
        store,
        tenant,
        "userName pr",
        Some(&format!("{CONTOSO}:region")),
    )
    .await;
    assert_eq!(sorted, ["ann", "cy", "bob"]);
    let sorted = names(
        store,
        tenant,
        "userName pr",
        Some(&format!("{CONTOSO}:customFields.BPO_Vendor_ID")),
    )
    .await;
    assert_eq!(sorted, ["ann", "bob", "cy"]);
}

/// A custom attribute that is not searchable: its rows stay out of the
/// lookup index, and filters of every shape, sorting, uniqueness and usage
/// counts are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_searchable_attributes_work_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let tenant = TenantId::default_tenant();
    put(&store, &tenant, &["Region"]).await;
    three_users(&store, &tenant).await;
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [1]);
    assert_eq!(flags(dir.path(), &tenant, "username"), [1]);
    for attribute in [
        "costcenter",
        "employeecode",
        "customfields",
        "customfields.bpo_vendor_id",
        "customfields.site",
    ] {
        assert_eq!(
            flags(dir.path(), &tenant, &path(attribute)),
            [0],
            "{attribute}"
        );
    }
    assert_consistent(dir.path());
    check_filters(&store, &tenant).await;

    // Uniqueness of a non-searchable attribute, on create and update.
    let clash = create(&store, &tenant, "dee", json!({"employeeCode": "e1"})).await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(ref detail)) if detail.contains("E1") || detail.contains("e1")),
        "{clash:?}"
    );
    let dee = create(&store, &tenant, "dee", json!({"employeeCode": "E4"}))
        .await
        .unwrap();
    let update = suite::update(
        &store,
        "User",
        &dee.id,
        Box::new(|_| {
            Ok(Some(muster_store::Update {
                resource: json!({"schemas": [USER_SCHEMA, CONTOSO], "userName": "dee",
                                 CONTOSO: {"employeeCode": "E2"}}),
                member_changes: Vec::new(),
                unmapped: None,
                unique: unique_code(),
                schema_generation: None,
                never_returned: Vec::new(),
                derivation: None,
            }))
        }),
    )
    .await;
    assert!(matches!(update, Err(StoreError::Conflict(_))), "{update:?}");

    // Usage counts non-indexed values too.
    let usage = store.attribute_usage(&tenant).await.unwrap();
    let holders = |wanted: &str| {
        usage
            .iter()
            .find(|entry| entry.declared && entry.path == wanted)
            .map_or(0, |entry| entry.holders)
    };
    assert_eq!(holders(&path("region")), 3);
    assert_eq!(holders(&path("costcenter")), 2);
    assert_eq!(holders(&path("employeecode")), 3);
    assert_eq!(holders(&path("customfields.bpo_vendor_id")), 2);
    assert_eq!(holders(&path("customfields.site")), 2);
    assert_consistent(dir.path());
}

/// Marking attributes searchable and back flips the stored rows in the
/// schema change's transaction; results never change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggling_searchable_flips_existing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let tenant = TenantId::default_tenant();
    put(&store, &tenant, &[]).await;
    three_users(&store, &tenant).await;
    let watched = ["region", "costcenter", "customfields", "customfields.site"];
    for attribute in watched {
        assert_eq!(
            flags(dir.path(), &tenant, &path(attribute)),
            [0],
            "{attribute}"
        );
    }
    check_filters(&store, &tenant).await;

    put(&store, &tenant, &["region", "CUSTOMFIELDS"]).await;
    assert_eq!(
        store.list_schemas(&tenant).await.unwrap()[0].searchable,
        ["region", "CUSTOMFIELDS"]
    );
    for (attribute, flag) in [
        ("region", 1),
        ("costcenter", 0),
        ("customfields", 1),
        ("customfields.site", 1),
    ] {
        assert_eq!(
            flags(dir.path(), &tenant, &path(attribute)),
            [flag],
            "{attribute}"
        );
    }
    assert_consistent(dir.path());
    check_filters(&store, &tenant).await;

    put(&store, &tenant, &["costCenter"]).await;
    for (attribute, flag) in [
        ("region", 0),
        ("costcenter", 1),
        ("customfields", 0),
        ("customfields.bpo_vendor_id", 0),
    ] {
        assert_eq!(
            flags(dir.path(), &tenant, &path(attribute)),
            [flag],
            "{attribute}"
        );
    }
    check_filters(&store, &tenant).await;

    // Deleting the schema leaves no custom extension: values left under
    // its URN are indexed like any other path.
    store
        .delete_schema(&tenant, &actor(), CONTOSO, None, None, None)
        .await
        .unwrap();
    for attribute in watched {
        assert_eq!(
            flags(dir.path(), &tenant, &path(attribute)),
            [1],
            "{attribute}"
        );
    }
    assert_consistent(dir.path());
    check_filters(&store, &tenant).await;

    // A searchable list naming no attribute name is refused.
    let error = store
        .put_schema(
            &tenant,
            &actor(),
            record(&["customFields.site"]),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Scim(_)), "{error:?}");
}

/// Another process (here a second store on the same directory, as the CLI
/// is) changes the searchable list: this store's very next write and query
/// follow the stored rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_process_is_honoured_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(dir.path());
    let tenant = TenantId::default_tenant();
    put(&server, &tenant, &["region"]).await;
    create(&server, &tenant, "ann", json!({"region": "APAC"}))
        .await
        .unwrap();
    // Warm the server's caches (writer and list rules).
    let apac = format!(r#"{CONTOSO}:region eq "APAC""#);
    assert_eq!(names(&server, &tenant, &apac, None).await, ["ann"]);

    let cli = open(dir.path());
    put(&cli, &tenant, &[]).await;
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [0]);
    // The server's next query: a plan relying on the lookup index would
    // find nothing now.
    assert_eq!(names(&server, &tenant, &apac, None).await, ["ann"]);
    create(&server, &tenant, "bob", json!({"region": "apac"}))
        .await
        .unwrap();
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [0]);
    assert_eq!(names(&server, &tenant, &apac, None).await, ["ann", "bob"]);

    put(&cli, &tenant, &["region"]).await;
    create(&server, &tenant, "cy", json!({"region": "Apac"}))
        .await
        .unwrap();
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [1]);
    assert_eq!(
        names(&server, &tenant, &apac, None).await,
        ["ann", "bob", "cy"]
    );
    // The CLI's own caches follow the server's changes too.
    put(&server, &tenant, &[]).await;
    create(&cli, &tenant, "dee", json!({"region": "APAC"}))
        .await
        .unwrap();
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [0]);
    assert_eq!(
        names(&cli, &tenant, &apac, None).await,
        ["ann", "bob", "cy", "dee"]
    );
    assert_consistent(dir.path());
}

/// Each tenant's rules apply to its own rows only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let home = TenantId::default_tenant();
    let acme = TenantId("acme".to_owned());
    store.ensure_tenant(&acme).await.unwrap();
    put(&store, &home, &["region", "costCenter", "customFields"]).await;
    put(&store, &acme, &[]).await;
    three_users(&store, &home).await;
    three_users(&store, &acme).await;
    assert_eq!(flags(dir.path(), &home, &path("region")), [1]);
    assert_eq!(flags(dir.path(), &acme, &path("region")), [0]);
    check_filters(&store, &home).await;
    check_filters(&store, &acme).await;

    // A change in one tenant flips its rows only.
    put(&store, &acme, &["region"]).await;
    put(&store, &home, &[]).await;
    assert_eq!(flags(dir.path(), &home, &path("region")), [0]);
    assert_eq!(flags(dir.path(), &acme, &path("region")), [1]);
    assert_eq!(flags(dir.path(), &acme, &path("costcenter")), [0]);
    check_filters(&store, &home).await;
    check_filters(&store, &acme).await;
    // Uniqueness is per tenant whatever the flags.
    create(&store, &acme, "zed", json!({"employeeCode": "E9"}))
        .await
        .unwrap();
    create(&store, &home, "zed", json!({"employeeCode": "E9"}))
        .await
        .unwrap();
    assert_consistent(dir.path());
}

/// A database at version 2 keeps every declared custom attribute
/// searchable after migration 3, and flags rows of undeclared ones as not
/// indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_keeps_declared_attributes_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::default_tenant();
    {
        let store = open(dir.path());
        let mut declared = record(&[]);
        declared.document = json!({"id": CONTOSO, "attributes": [{"name": "region"}]});
        store
            .put_schema(&tenant, &actor(), declared, None, None, None)
            .await
            .unwrap();
        create(
            &store,
            &tenant,
            "ann",
            json!({"region": "APAC", "costCenter": "C"}),
        )
        .await
        .unwrap();
    }
    // Take the file back to version 2.
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection
        .execute_batch(
            "DROP INDEX resource_values_lookup;
             CREATE INDEX resource_values_lookup
                 ON resource_values (tenant_id, path_id, value_lower);
             ALTER TABLE resource_values DROP COLUMN indexed;
             ALTER TABLE tenants DROP COLUMN index_generation;
             ALTER TABLE custom_schemas DROP COLUMN searchable;
             DROP TABLE rule_sets;
             DROP TABLE change_consumers;
             DROP TABLE IF EXISTS sync_targets; DROP TABLE IF EXISTS sync_objects;
             DROP TABLE IF EXISTS sync_dead_letters; DROP INDEX IF EXISTS changes_by_resource;
             DROP TABLE IF EXISTS oauth_clients; DROP TABLE IF EXISTS oauth_access_tokens;
             ALTER TABLE tokens DROP COLUMN match_policy; ALTER TABLE tokens DROP COLUMN rate_limit;
             DROP TABLE IF EXISTS deleted_resources;
             DROP TABLE IF EXISTS audit_log; DROP TABLE IF EXISTS audit_heads;
             DROP TABLE IF EXISTS console_sessions;
             DROP TRIGGER IF EXISTS resources_counted_on_insert; DROP TRIGGER IF EXISTS resources_counted_on_delete;
             DROP TRIGGER IF EXISTS resources_counted_on_move; DROP TABLE IF EXISTS resource_counts;
             DELETE FROM schema_migrations WHERE version >= 3;",
        )
        .unwrap();
    drop(connection);
    let store = open(dir.path());
    assert_eq!(
        store.list_schemas(&tenant).await.unwrap()[0].searchable,
        ["region"]
    );
    assert_eq!(flags(dir.path(), &tenant, &path("region")), [1]);
    assert_eq!(flags(dir.path(), &tenant, &path("costcenter")), [0]);
    assert_eq!(flags(dir.path(), &tenant, "username"), [1]);
    assert_consistent(dir.path());
    let cost = format!(r#"{CONTOSO}:costCenter eq "c""#);
    assert_eq!(names(&store, &tenant, &cost, None).await, ["ann"]);
}
