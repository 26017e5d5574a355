//! The PostgreSQL schema against the real server at 127.0.0.1:5432 (user
//! `postgres`, trust auth; `MUSTER_TEST_POSTGRES` overrides the URL of the
//! maintenance database). Each test creates and drops a database of its
//! own. A server that cannot be reached fails the test: it never skips.
//!
//! Migrations apply once, also when two processes run them at once; the
//! database itself refuses a second holder of a userName, a Group
//! displayName, an id or a unique custom value; and at 100,000 attribute
//! rows the planner serves `eq`, `sw` and `co` on an indexed attribute from
//! the attribute index; the change feed is read in commit order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg;

use muster_store::postgres::feed::NewChange;
use muster_store::postgres::{migrate, pending_migrations};
use muster_store::{Actor, ChangeKind, ResourceId, TenantId};
use pg::{connect, Database};
use tokio_postgres::Client;

/// The tests of this file run one at a time: transaction ids are the
/// cluster's, so another test's open transaction would hold back the
/// feed test's records (as any long transaction on the server does).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn migrations_apply_once_even_when_two_run_at_once() {
    let _serial = SERIAL.lock().await;
    let database = Database::create().await;
    let pending = pending_migrations(&database.url).await.unwrap();
    assert!(!pending.is_empty());
    assert_eq!(pending[0].version, 1);

    let (first, second) = tokio::join!(migrate(&database.url), migrate(&database.url));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.len() + second.len(),
        pending.len(),
        "every step applied exactly once: {first:?} {second:?}"
    );
    assert!(pending_migrations(&database.url).await.unwrap().is_empty());
    let client = connect(&database.url).await;
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, i64::try_from(pending.len()).unwrap());
    drop(client);
    database.drop_now().await;
}

/// Inserts a resource row; the database's answer.
async fn insert(
    client: &Client,
    tenant: &str,
    id: &str,
    resource_type: &str,
    user_name: Option<&str>,
    display_name: Option<&str>,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO resources (tenant_id, id, resource_type, json, version, created,
                 last_modified, user_name_lower, display_name_lower)
             VALUES ($1, $2, $3, '{}', 1, now(), now(), lower($4), lower($5))",
            &[&tenant, &id, &resource_type, &user_name, &display_name],
        )
        .await
}

fn is_unique_violation(result: Result<u64, tokio_postgres::Error>) -> bool {
    result.err().and_then(|error| error.code().cloned())
        == Some(tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

#[tokio::test]
async fn the_database_refuses_a_second_holder() {
    let _serial = SERIAL.lock().await;
    let database = Database::create().await;
    migrate(&database.url).await.unwrap();
    let client = connect(&database.url).await;
    client
        .batch_execute("INSERT INTO tenants (tenant_id) VALUES ('other')")
        .await
        .unwrap();

    insert(
        &client,
        "default",
        "u1",
        "User",
        Some("Ana@Contoso.com"),
        None,
    )
    .await
    .unwrap();
    assert!(is_unique_violation(
        insert(
            &client,
            "default",
            "u2",
            "User",
            Some("ana@contoso.COM"),
            None
        )
        .await
    ));
    assert!(is_unique_violation(
        insert(
            &client,
            "default",
            "u1",
            "User",
            Some("ben@contoso.com"),
            None
        )
        .await
    ));
    // Another tenant may hold the same name and id.
    insert(
        &client,
        "other",
        "u1",
        "User",
        Some("ana@contoso.com"),
        None,
    )
    .await
    .unwrap();
    // Users without a displayName never clash on it; Groups with one do.
    insert(
        &client,
        "default",
        "u3",
        "User",
        Some("cy@contoso.com"),
        None,
    )
    .await
    .unwrap();
    insert(&client, "default", "g1", "Group", None, Some("Tier 1"))
        .await
        .unwrap();
    assert!(is_unique_violation(
        insert(&client, "default", "g2", "Group", None, Some("TIER 1")).await
    ));

    // A unique custom attribute: one holder per value.
    client
        .batch_execute(
            "INSERT INTO attribute_paths (path) VALUES ('urn:example:badge');
             INSERT INTO unique_values (tenant_id, resource_type, path_id, value_lower, resource_seq)
             SELECT 'default', 'User', 1, 'b-1', seq FROM resources WHERE id = 'u1' AND tenant_id = 'default'",
        )
        .await
        .unwrap();
    let second = client
        .execute(
            "INSERT INTO unique_values (tenant_id, resource_type, path_id, value_lower, resource_seq)
             SELECT 'default', 'User', 1, 'b-1', seq FROM resources WHERE id = 'u3'",
            &[],
        )
        .await;
    assert!(is_unique_violation(second));
    drop(client);
    database.drop_now().await;
}

#[tokio::test]
async fn eq_sw_and_co_on_an_indexed_attribute_use_the_attribute_index_at_100000_rows() {
    let _serial = SERIAL.lock().await;
    let database = Database::create().await;
    migrate(&database.url).await.unwrap();
    let client = connect(&database.url).await;
    client
        .batch_execute(
            "INSERT INTO attribute_paths (path) VALUES ('emails.value'), ('title');
             INSERT INTO resources (tenant_id, id, resource_type, json, version, created,
                 last_modified, user_name_lower)
             SELECT 'default', 'u' || n, 'User', '{}', 1, now(), now(), 'user' || n || '@contoso.com'
             FROM generate_series(1, 100000) AS n;
             INSERT INTO resource_values (resource_seq, path_id, element, item, tenant_id,
                 present, value_lower, value_exact)
             SELECT seq, 1, 0, 0, 'default', true, user_name_lower, user_name_lower
             FROM resources;
             ANALYZE resources; ANALYZE resource_values;",
        )
        .await
        .unwrap();
    for (operator, condition, index) in [
        (
            "eq",
            "v.value_lower = 'user77@contoso.com'",
            "resource_values_lookup",
        ),
        (
            "sw",
            "v.value_lower LIKE 'user77%'",
            "resource_values_lookup",
        ),
        (
            "co",
            "v.value_lower LIKE '%er7777@con%'",
            "resource_values_trigram",
        ),
        (
            "ew",
            "v.value_lower LIKE '%7777@contoso.com'",
            "resource_values_trigram",
        ),
    ] {
        let sql = format!(
            "EXPLAIN SELECT r.id FROM resources r JOIN resource_values v ON v.resource_seq = r.seq
             WHERE v.tenant_id = 'default' AND v.path_id = 1 AND v.indexed AND {condition}"
        );
        let plan: Vec<String> = client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{operator}: {plan}");
    }
    drop(client);
    database.drop_now().await;
}

/// A record on `client`'s open transaction.
async fn change(transaction: &tokio_postgres::Transaction<'_>, id: &str) {
    let actor = Actor {
        client: "test".into(),
        request_id: String::new(),
    };
    let resource_id = ResourceId(id.to_owned());
    let payload = serde_json::json!({"id": id, "userName": id});
    muster_store::postgres::feed::record_change(
        transaction,
        NewChange {
            tenant: &TenantId::default_tenant(),
            kind: ChangeKind::Delete,
            resource_type: "User",
            resource_id: &resource_id,
            version: 1,
            actor: &actor,
            payload: &payload,
        },
    )
    .await
    .unwrap();
}

async fn read_after(client: &mut Client, after: u64) -> Vec<(u64, String)> {
    muster_store::postgres::feed::changes_after(client, &TenantId::default_tenant(), after, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.sequence, record.resource_id.0))
        .collect()
}

#[tokio::test]
async fn a_record_committed_late_is_never_behind_a_readers_cursor() {
    let _serial = SERIAL.lock().await;
    let database = Database::create().await;
    migrate(&database.url).await.unwrap();
    let mut first = connect(&database.url).await;
    let mut second = connect(&database.url).await;
    let mut reader = connect(&database.url).await;

    // `early` takes its transaction id first, `late` inserts its record
    // first (the lower sequence); `early` inserts and commits while `late`
    // is still open.
    let early = first.transaction().await.unwrap();
    // A write takes the transaction's id.
    early
        .batch_execute("INSERT INTO tenants (tenant_id) VALUES ('early')")
        .await
        .unwrap();
    let late = second.transaction().await.unwrap();
    change(&late, "late").await;
    change(&early, "early").await;
    early.commit().await.unwrap();

    let seen = read_after(&mut reader, 0).await;
    assert_eq!(seen, vec![(1, "early".to_owned())]);
    late.commit().await.unwrap();
    let seen = read_after(&mut reader, 1).await;
    assert_eq!(
        seen,
        vec![(2, "late".to_owned())],
        "the late record comes after the cursor"
    );

    // A record of a transaction still open holds back those that began
    // after it, until it ends.
    let holder = first.transaction().await.unwrap();
    change(&holder, "holder").await;
    let other = second.transaction().await.unwrap();
    change(&other, "after-holder").await;
    other.commit().await.unwrap();
    assert_eq!(read_after(&mut reader, 2).await, Vec::new());
    holder.commit().await.unwrap();
    assert_eq!(
        read_after(&mut reader, 2).await,
        vec![(3, "holder".to_owned()), (4, "after-holder".to_owned())]
    );
    // A rolled-back record never shows.
    let aborted = first.transaction().await.unwrap();
    change(&aborted, "aborted").await;
    aborted.rollback().await.unwrap();
    assert_eq!(read_after(&mut reader, 4).await, Vec::new());

    drop((first, second, reader));
    database.drop_now().await;
}

/// `sslmode=require` connects over TLS, verifying the server's certificate
/// against `MUSTER_DATABASE_CA` and the URL's host: the local server's own
/// certificate (named `localhost`) is accepted through `localhost` and
/// refused through `127.0.0.1`, a name it does not carry.
#[tokio::test]
async fn sslmode_require_connects_over_verified_tls() {
    let database = Database::create().await;
    let admin = connect(&database.url).await;
    let row = admin
        .query_one(
            "SELECT current_setting('ssl'), current_setting('ssl_cert_file')",
            &[],
        )
        .await
        .unwrap();
    let (ssl, certificate): (String, String) = (row.get(0), row.get(1));
    assert_eq!(ssl, "on", "the test server must offer TLS");
    std::env::set_var(muster_store::postgres::CA_VARIABLE, &certificate);

    let by_name = format!(
        "{}?sslmode=require",
        database.url.replacen("@127.0.0.1:", "@localhost:", 1)
    );
    let client = muster_store::postgres::connect(&by_name).await.unwrap();
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the connection is not encrypted");
    let options = muster_store::postgres::PostgresOptions { max_connections: 2 };
    let store = muster_store::postgres::PostgresStore::connect(&by_name, &options)
        .await
        .unwrap();
    assert!(
        muster_store::Store::list_schemas(&store, &TenantId::default_tenant())
            .await
            .unwrap()
            .is_empty()
    );

    let by_address = format!("{}?sslmode=require", database.url);
    let Err(error) = muster_store::postgres::connect(&by_address).await else {
        panic!("connected to 127.0.0.1 with a certificate for localhost");
    };

    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    drop((client, store, admin));
    database.drop_now().await;
}
