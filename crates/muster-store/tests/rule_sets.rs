//! Entitlement rule sets on SQLite: every apply is a numbered version, the
//! highest is in force, history only grows, and each apply is a change
//! record that moves the tenant's schema generation on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use muster_store::sqlite::SqliteStore;
use muster_store::{Actor, ChangeKind, Store, TenantId};

fn actor() -> Actor {
    Actor {
        client: "rules-test".to_owned(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn rule_sets_are_numbered_versions_and_the_latest_is_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let tenant = TenantId::default_tenant();
    assert_eq!(store.rule_set(&tenant, None).await.unwrap(), None);
    let before = store.schema_generation(&tenant).await.unwrap();
    let first = store
        .put_rule_set(&tenant, &actor(), "# v1\n", "toml", "", None, None)
        .await
        .unwrap()
        .record;
    let second = store
        .put_rule_set(&tenant, &actor(), "{\"rules\": []}", "json", "", None, None)
        .await
        .unwrap()
        .record;
    assert_eq!((first.version, second.version), (1, 2));
    assert!(store.schema_generation(&tenant).await.unwrap() > before);
    let current = store.rule_set(&tenant, None).await.unwrap().unwrap();
    assert_eq!(current, second);
    let old = store.rule_set(&tenant, Some(1)).await.unwrap().unwrap();
    assert_eq!(
        (old.document.as_str(), old.format.as_str()),
        ("# v1\n", "toml")
    );
    assert_eq!(old.client, "rules-test");
    assert_eq!(store.rule_set(&tenant, Some(9)).await.unwrap(), None);
    // A rollback is a new version holding an old document.
    let rollback = store
        .put_rule_set(
            &tenant,
            &actor(),
            &old.document,
            &old.format,
            "rollback to version 1",
            None,
            None,
        )
        .await
        .unwrap()
        .record;
    assert_eq!(rollback.version, 3);
    let history = store.rule_set_history(&tenant).await.unwrap();
    let versions: Vec<(u64, &str)> = history
        .iter()
        .map(|record| (record.version, record.note.as_str()))
        .collect();
    assert_eq!(versions, [(1, ""), (2, ""), (3, "rollback to version 1")]);
    // Each apply is in the change log, and another tenant sees none of them.
    let changes = store.changes(&tenant, 0, 100).await.unwrap();
    let applied: Vec<u64> = changes
        .iter()
        .filter(|change| change.kind == ChangeKind::RuleSet)
        .map(|change| change.version)
        .collect();
    assert_eq!(applied, [1, 2, 3]);
    let other = TenantId("other".to_owned());
    assert_eq!(store.rule_set(&other, None).await.unwrap(), None);
    assert!(store.rule_set_history(&other).await.unwrap().is_empty());
}
