//! `muster user deleted|restore|purge` and the lifecycle flags of `muster
//! settings set`, through the built binary, on the database a running
//! `muster serve` uses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;

use common::{create_token, run_muster, Output, Server, USER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn at(data_dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.push("--data-dir".to_owned());
    all.push(data_dir.display().to_string());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_muster(&refs)
}

fn deleted(data_dir: &Path) -> Vec<Value> {
    let output = at(data_dir, &["user", "deleted", "--json"]);
    assert!(output.status.success(), "{output}");
    serde_json::from_str::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_users_are_listed_restored_and_purged_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "ops", &["scim.read", "scim.write", "admin"]);
    let server = Server::start(data.path());
    let api = server.api(Some(&token));
    let created = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "kim@contoso.com", "externalId": "k-1",
                    "name": {"givenName": "Kimberly"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    assert_eq!(
        api.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );

    let table = at(data.path(), &["user", "deleted"]);
    assert!(table.status.success(), "{table}");
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("kim@contoso.com"),
        "{table}"
    );

    // Settings: each flag alone, the others kept.
    let set = at(
        data.path(),
        &["settings", "set", "--soft-delete-retention-days", "45"],
    );
    assert!(set.status.success(), "{set}");
    let shown = at(data.path(), &["settings", "show"]);
    assert!(
        shown.stdout.contains("soft-delete-retention-days\t45"),
        "{shown}"
    );
    assert!(shown.stdout.contains("delete-means\tsoftDelete"), "{shown}");
    assert!(
        shown.stdout.contains("undeclared-attributes\treject"),
        "{shown}"
    );
    let refused = at(data.path(), &["settings", "set", "--delete-means", "erase"]);
    assert!(!refused.status.success(), "{refused}");
    let refused = at(
        data.path(),
        &["settings", "set", "--soft-delete-retention-days", "4000"],
    );
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused.stderr.contains("softDeleteRetentionDays"),
        "{refused}"
    );

    // Restore by userName, in another case: the same id.
    let restored = at(data.path(), &["user", "restore", "KIM@contoso.com"]);
    assert!(restored.status.success(), "{restored}");
    assert!(restored.stdout.contains(&id), "{restored}");
    assert_eq!(api.get(&path).await.status, StatusCode::OK);
    assert!(deleted(data.path()).is_empty());
    let again = at(data.path(), &["user", "restore", &id]);
    assert!(!again.status.success(), "{again}");

    // Purge by id: the skeleton stays, the name goes.
    assert_eq!(
        api.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let purged = at(data.path(), &["user", "purge", &id]);
    assert!(purged.status.success(), "{purged}");
    let rows = deleted(data.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], json!(id));
    assert!(rows[0].get("userName").is_none(), "{rows:?}");
    assert!(rows[0]["purgedAt"].is_string(), "{rows:?}");
    let expired = at(data.path(), &["user", "purge", "--expired"]);
    assert!(expired.status.success(), "{expired}");
    assert!(expired.stdout.contains("purged 0"), "{expired}");
    let neither = at(data.path(), &["user", "purge"]);
    assert!(!neither.status.success(), "{neither}");

    // What a DELETE means is the server's at once (its view of settings
    // is read per request).
    let set = at(
        data.path(),
        &["settings", "set", "--delete-means", "deactivate"],
    );
    assert!(set.status.success(), "{set}");
    let created = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "lee@contoso.com"}),
        )
        .await;
    let lee = created.body["id"].as_str().unwrap().to_owned();
    let lee_path = format!("/Users/{lee}");
    assert_eq!(
        api.call(Method::DELETE, &lee_path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let read = api.get(&lee_path).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["active"], json!(false));

    // `muster serve` purges what is past the retention when it starts.
    let set = at(
        data.path(),
        &[
            "settings",
            "set",
            "--delete-means",
            "softDelete",
            "--soft-delete-retention-days",
            "0",
        ],
    );
    assert!(set.status.success(), "{set}");
    assert_eq!(
        api.call(Method::DELETE, &lee_path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(deleted(data.path())
        .iter()
        .any(|row| row["id"] == json!(lee) && row["userName"].is_string()));
    drop(server);
    let _server = Server::start(data.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rows = deleted(data.path());
        if rows
            .iter()
            .any(|row| row["id"] == json!(lee) && row["purgedAt"].is_string())
        {
            assert!(
                rows.iter().all(|row| row.get("userName").is_none()),
                "{rows:?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not swept: {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An import line whose id is a soft-deleted user's is refused (reported),
/// never imported beside the tombstone: the user stays restorable, and a
/// re-POST with its externalId still brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_never_reuses_a_soft_deleted_id() {
    let data = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "ops", &["scim.read", "scim.write", "admin"]);
    let server = Server::start(data.path());
    let api = server.api(Some(&token));
    let created = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "imp-x@contoso.com", "externalId": "IMPX"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    assert_eq!(
        api.call(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    let lines = data.path().join("users.jsonl");
    std::fs::write(
        &lines,
        format!("{{\"schemas\": [\"{USER}\"], \"id\": \"{id}\", \"userName\": \"imp-y@contoso.com\"}}\n"),
    )
    .unwrap();
    let import = at(data.path(), &["import", lines.to_str().unwrap()]);
    assert!(
        !import.status.success() && import.stdout.contains("1 refused"),
        "{import}"
    );
    let reasons = std::fs::read_to_string(data.path().join("users.jsonl.refused.jsonl")).unwrap();
    assert!(reasons.contains("soft-deleted"), "{reasons}");
    assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND);
    let again = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "imp-x@contoso.com", "externalId": "IMPX"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["id"], json!(id));
}
