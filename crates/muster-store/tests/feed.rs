//! The change feed as its consumers see it (issue 11) on SQLite: the
//! backend-generic checks of `suite/feed.rs` (commit order from a cursor
//! while two stores share one file, as the CLI and the server do; typed
//! delete payloads; consumer cursors; pruning; the sync engine's tables),
//! plus legacy rows an older build wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod suite;

use std::path::Path;
use std::sync::Arc;

use muster_store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
use muster_store::{ChangePayload, DeletedIdentity, MembershipDelta, ResourceId, Store, TenantId};
use serde_json::json;
use suite::feed;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn open(dir: &Path) -> Arc<SqliteStore> {
    let options = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    Arc::new(SqliteStore::open_with(dir, &options).unwrap())
}

/// Writers on two stores sharing one file (as `muster serve` and a CLI
/// command do) while a reader follows the feed from its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_from_a_cursor_never_sees_a_gap_filled_later() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (open(dir.path()), open(dir.path()));
    suite::feed::a_reader_from_a_cursor_never_sees_a_gap_filled_later(first, second).await;
}

/// One `#[tokio::test]` per function of a suite module (`feed`) taking
/// the store by reference.
macro_rules! suite {
    ($module:ident : $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            $module::$name(&*store).await;
        }
    )*};
}

suite::every_feed_test!(suite);

/// Rows an older build wrote: a delete's `null`, captured values beside
/// the resource, a shape nobody knows. They read, typed, without failing.
#[tokio::test]
async fn legacy_rows_read_as_typed_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let connection = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    for (kind, payload) in [
        ("delete", "null"),
        (
            "update",
            r#"{"resource":{"id":"u1","userName":"a"},"unmapped":{"Cost":"1"}}"#,
        ),
        ("update", r#"{"members":{"added":["x"],"removed":[]}}"#),
        ("update", r#"{"future":true}"#),
    ] {
        connection
            .execute(
                "INSERT INTO changes (tenant_id, kind, resource_type, resource_id, version,
                     client, request_id, at, payload)
                 VALUES ('default', ?1, 'User', 'u1', 2, 'old', 'r',
                     '2020-01-01T00:00:00.000Z', ?2)",
                rusqlite::params![kind, payload],
            )
            .unwrap();
    }
    let payloads: Vec<ChangePayload> = store
        .changes(&tenant(), 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.payload)
        .collect();
    assert_eq!(
        payloads,
        [
            ChangePayload::Deleted(DeletedIdentity {
                id: ResourceId("u1".to_owned()),
                user_name: None,
                display_name: None,
                external_id: None,
            }),
            ChangePayload::Resource {
                resource: json!({"id": "u1", "userName": "a"}),
                members: None,
                removed: None,
                rule_set: None,
            },
            ChangePayload::Members(MembershipDelta {
                added: vec![ResourceId("x".to_owned())],
                removed: vec![],
            }),
            ChangePayload::Other(json!({"future": true})),
        ]
    );
}
