//! `muster target ...`, `muster sync ...` and `muster explain user
//! --target` through the built binary: target documents applied, refused,
//! listed, shown and removed; secrets never stored or printed in clear; a
//! CSV export; provision on demand (with a dry run), a reconcile and the
//! end-to-end explain against a second `muster serve` as the SCIM target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{create_token, muster, run_muster, Api, Output, Server, USER};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `muster ARGS --data-dir DIR`.
fn at(data_dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.push("--data-dir".to_owned());
    all.push(data_dir.display().to_string());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_muster(&refs)
}

/// Writes `document` to a file in `dir` and returns its path as text.
fn document_file(dir: &Path, name: &str, document: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    path.display().to_string()
}

/// `muster target apply --data-dir DIR -` with `text` on standard input.
fn apply_stdin(data_dir: &Path, text: &str) -> Output {
    let mut child = muster()
        .args(["target", "apply", "--data-dir"])
        .arg(data_dir)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Output {
        status: output.status,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Stops a server (SIGTERM), which must exit cleanly.
fn stop(server: Server) {
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "muster serve exited with {status}");
}

async fn create_user(api: &Api, user_name: &str) -> String {
    let reply = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": user_name, "active": true,
                "externalId": format!("ext-{user_name}"),
                "name": {"givenName": "Alice", "familyName": "Agent"},
                "emails": [{"value": user_name, "type": "work", "primary": true}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

#[test]
fn targets_are_applied_checked_refused_listed_shown_and_removed() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let export = data.path().join("exports").join("five9");
    let csv = json!({"name": "five9", "kind": "csv", "directory": export});
    let file = document_file(files.path(), "five9.json", &csv);

    let checked = at(data.path(), &["target", "apply", "--check", &file]);
    // --check reads an existing database only.
    assert!(!checked.status.success(), "{checked}");

    let applied = at(data.path(), &["target", "apply", &file]);
    assert!(applied.status.success(), "{applied}");
    let view: Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(view["document"]["name"], "five9", "{applied}");
    assert_eq!(view["document"]["kind"], "csv", "{applied}");

    let checked = at(data.path(), &["target", "apply", "--check", &file]);
    assert!(checked.status.success(), "{checked}");
    assert!(checked.stdout.contains("valid"), "{checked}");

    let listed = at(data.path(), &["target", "list"]);
    assert!(listed.status.success(), "{listed}");
    let mut lines = listed.stdout.lines();
    let header = lines.next().unwrap();
    for column in [
        "NAME",
        "KIND",
        "PAUSED",
        "QUEUE",
        "DEAD LETTERS",
        "LAST SUCCESS",
    ] {
        assert!(header.contains(column), "{listed}");
    }
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row.get(..3), Some(&["five9", "csv", "no"][..]), "{listed}");
    let listed = at(data.path(), &["target", "list", "--json"]);
    let all: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{listed}");

    let shown = at(data.path(), &["target", "show", "five9"]);
    assert!(shown.status.success(), "{shown}");
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["document"], view["document"]);

    // Refused: every problem named with its field, exit status 2, nothing stored.
    for (document, fields) in [
        (
            json!({"name": "bad", "kind": "scim", "baseUrl": "not a url",
                "auth": {"type": "bearer", "token": "t"},
                "mappings": [{"target": "userName", "expression": "noSuchAttribute"}]}),
            vec!["baseUrl", "mappings[0].expression"],
        ),
        (
            json!({"name": "bad", "kind": "csv", "directory": export, "colour": "red"}),
            vec!["colour"],
        ),
    ] {
        let bad = document_file(files.path(), "bad.json", &document);
        for check in [false, true] {
            let mut args = vec!["target", "apply", bad.as_str()];
            if check {
                args.push("--check");
            }
            let refused = at(data.path(), &args);
            assert_eq!(refused.status.code(), Some(2), "{refused}");
            for field in &fields {
                assert!(refused.stderr.contains(field), "{field}: {refused}");
            }
        }
    }
    let shown = at(data.path(), &["target", "show", "bad"]);
    assert!(!shown.status.success(), "{shown}");
    assert!(shown.stderr.contains("no target named 'bad'"), "{shown}");

    // Standard input.
    let renamed = json!({"name": "five9-b", "kind": "csv", "directory": export});
    let piped = apply_stdin(data.path(), &renamed.to_string());
    assert!(piped.status.success(), "{piped}");

    let status = at(data.path(), &["sync", "status", "--json"]);
    assert!(status.status.success(), "{status}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status.as_array().map(Vec::len), Some(2), "{status}");
    assert_eq!(status[0]["paused"], false, "{status}");

    let paused = at(
        data.path(),
        &["sync", "pause", "five9-b", "--reason", "maintenance window"],
    );
    assert!(paused.status.success(), "{paused}");
    let status = at(data.path(), &["sync", "status", "--target", "five9-b"]);
    assert!(status.stdout.contains("maintenance window"), "{status}");
    let resumed = at(data.path(), &["sync", "resume", "five9-b"]);
    assert!(resumed.status.success(), "{resumed}");
    let status = at(data.path(), &["sync", "status", "--target", "five9-b"]);
    assert!(!status.stdout.contains("maintenance window"), "{status}");

    let removed = at(data.path(), &["target", "remove", "five9-b"]);
    assert!(removed.status.success(), "{removed}");
    let again = at(data.path(), &["target", "remove", "five9-b"]);
    assert!(!again.status.success(), "{again}");
    let listed = at(data.path(), &["target", "list", "--json"]);
    let all: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{listed}");

    let letters = at(data.path(), &["sync", "dead-letters"]);
    assert!(letters.status.success(), "{letters}");
    assert_eq!(letters.stdout, "", "{letters}");
    let letters = at(data.path(), &["sync", "dead-letters", "--json"]);
    assert_eq!(letters.stdout.trim(), "[]", "{letters}");
    let missing = at(data.path(), &["sync", "discard", "7"]);
    assert!(!missing.status.success(), "{missing}");
}

#[test]
fn target_secrets_are_never_stored_or_printed_in_clear() {
    const SECRET: &str = "s3cret-value";
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    create_token(data.path(), "admin", &["admin"]);
    // A running server keeps the database open, so the write stays in the WAL.
    let server = Server::start(data.path());
    let document = json!({"name": "genesys", "kind": "scim",
        "baseUrl": "https://api.example.com/scim/v2",
        "auth": {"type": "bearer", "token": SECRET}});
    let file = document_file(files.path(), "genesys.json", &document);
    let applied = at(data.path(), &["target", "apply", &file]);
    assert!(applied.status.success(), "{applied}");
    assert!(!applied.stdout.contains(SECRET), "{applied}");
    let shown = at(data.path(), &["target", "show", "genesys"]);
    assert!(shown.status.success(), "{shown}");
    assert!(!shown.stdout.contains(SECRET), "{shown}");
    let view: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(view["document"]["auth"]["token"], json!({"redacted": true}));

    // Applying the shown document back keeps the stored secret.
    let again = document_file(files.path(), "again.json", &view["document"]);
    let reapplied = at(data.path(), &["target", "apply", &again]);
    assert!(reapplied.status.success(), "{reapplied}");

    let mut seen = 0;
    for name in ["muster.db", "muster.db-wal"] {
        let Ok(bytes) = std::fs::read(data.path().join(name)) else {
            continue;
        };
        seen += 1;
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{name} holds the secret in clear"
        );
    }
    assert!(seen > 0, "no database file found");
    let log = server.log();
    assert!(
        !log.contains(SECRET),
        "the server logged the secret:\n{log}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_target_exports_every_user_now() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let export = data.path().join("exports").join("five9");
    let token = create_token(data.path(), "admin", &["admin"]);
    let server = Server::start(data.path());
    let api = server.api(Some(&token));
    create_user(&api, "alice@contoso.com").await;
    // The server's own sync worker would export too: the CLI alone acts here.
    stop(server);

    let document = json!({"name": "five9", "kind": "csv", "directory": export});
    let file = document_file(files.path(), "five9.json", &document);
    let applied = at(data.path(), &["target", "apply", &file]);
    assert!(applied.status.success(), "{applied}");

    let exported = at(data.path(), &["sync", "export", "--target", "five9"]);
    assert!(exported.status.success(), "{exported}");
    assert!(exported.stdout.contains("(1 rows)"), "{exported}");
    let written: Vec<_> = std::fs::read_dir(&export)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            name.starts_with("five9-full-") && name.ends_with(".csv")
        })
        .collect();
    assert!(!written.is_empty(), "{exported}");
    let shown_file = exported
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(&shown_file).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("action,"), "{text}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("upsert,") && row.contains("alice@contoso.com"),
        "{text}"
    );

    // A scim target is not exported; a csv one reconciles as an export.
    let reconciled = at(data.path(), &["sync", "reconcile", "--target", "five9"]);
    assert!(reconciled.status.success(), "{reconciled}");
    assert!(reconciled.stdout.contains("wrote"), "{reconciled}");

    let letters = at(data.path(), &["sync", "dead-letters"]);
    assert!(letters.status.success(), "{letters}");
    assert_eq!(letters.stdout, "", "{letters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_provisioned_on_demand_reconciled_and_explained() {
    // The target: a second Muster.
    let target_data = tempfile::tempdir().unwrap();
    let target_token = create_token(target_data.path(), "muster-hub", &[]);
    let target = Server::start(target_data.path());
    let target_api = target.api(Some(&target_token));

    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "entra", &[]);
    let server = Server::start(data.path());
    let api = server.api(Some(&token));
    let alice = create_user(&api, "alice@contoso.com").await;
    // The server's own sync worker would deliver too: the CLI alone acts here.
    stop(server);

    let document = json!({"name": "second", "kind": "scim", "baseUrl": target.base_url,
    "auth": {"type": "bearer", "token": target_token},
    "mappings": [
        {"target": "userName", "expression": "userName"},
        {"target": "externalId", "expression": "externalId"},
        {"target": "active", "expression": "active"},
        {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"}
    ]});
    let file = document_file(files.path(), "second.json", &document);
    let applied = at(data.path(), &["target", "apply", &file]);
    assert!(applied.status.success(), "{applied}");

    // Dry run: the exact writes, none sent.
    let dry = at(
        data.path(),
        &[
            "sync",
            "user",
            "alice@contoso.com",
            "--target",
            "second",
            "--dry-run",
        ],
    );
    assert!(dry.status.success(), "{dry}");
    let requests: Value = serde_json::from_str(&dry.stdout).unwrap();
    let first = &requests[0];
    assert_eq!(first["method"], "POST", "{dry}");
    assert!(
        first["url"].as_str().unwrap().ends_with("/scim/v2/Users"),
        "{dry}"
    );
    assert_eq!(first["body"]["displayName"], "Alice Agent", "{dry}");
    let listed = target_api.get("/Users").await;
    assert_eq!(listed.body["totalResults"], 0, "{}", listed.body);

    let reconcile_dry = at(
        data.path(),
        &["sync", "reconcile", "--target", "second", "--dry-run"],
    );
    assert!(reconcile_dry.status.success(), "{reconcile_dry}");
    assert!(reconcile_dry.stdout.contains("dry run"), "{reconcile_dry}");
    assert!(
        reconcile_dry.stdout.contains("1 created"),
        "{reconcile_dry}"
    );
    assert!(reconcile_dry.stdout.contains("\"POST\""), "{reconcile_dry}");

    // Now for real.
    let sent = at(
        data.path(),
        &["sync", "user", "alice@contoso.com", "--target", "second"],
    );
    assert!(sent.status.success(), "{sent}");
    assert!(sent.stdout.contains("created"), "{sent}");
    let listed = target_api
        .get("/Users?filter=userName%20eq%20%22alice@contoso.com%22")
        .await;
    assert_eq!(listed.body["totalResults"], 1, "{}", listed.body);
    let remote = listed.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        listed.body["Resources"][0]["displayName"], "Alice Agent",
        "{}",
        listed.body
    );

    let reconciled = at(data.path(), &["sync", "reconcile", "--target", "second"]);
    assert!(reconciled.status.success(), "{reconciled}");
    assert!(reconciled.stdout.contains("0 failed"), "{reconciled}");

    let explained = at(
        data.path(),
        &[
            "explain",
            "user",
            "alice@contoso.com",
            "--target",
            "second",
            "--json",
        ],
    );
    assert!(explained.status.success(), "{explained}");
    let explanation: Value = serde_json::from_str(&explained.stdout).unwrap();
    assert_eq!(explanation["user"], alice.as_str(), "{explained}");
    assert_eq!(explanation["remoteId"], remote.as_str(), "{explained}");
    let display = explanation["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["target"] == "displayName")
        .unwrap();
    assert_eq!(display["value"], "Alice Agent", "{explained}");
    assert_eq!(display["sent"], "Alice Agent", "{explained}");
    assert!(
        display["sources"].to_string().contains("entra"),
        "the source values name the client that set them: {explained}"
    );
    let table = at(
        data.path(),
        &["explain", "user", "alice@contoso.com", "--target", "second"],
    );
    assert!(table.status.success(), "{table}");
    for text in ["TARGET PATH", "EXPRESSION", "VALUE SENT", &remote, "Join("] {
        assert!(table.stdout.contains(text), "{text}: {table}");
    }

    let status = at(data.path(), &["sync", "status", "--target", "second"]);
    assert!(status.status.success(), "{status}");
    assert!(status.stdout.contains("second"), "{status}");
    drop(target);
}
