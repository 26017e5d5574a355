//! `muster import` and `muster export`: users and groups (members, custom
//! values) exported from one data directory and imported into another keep
//! their ids and read back the same over HTTP; refused lines are reported
//! with their line number and reason and change nothing; an interrupted
//! import resumes where it stopped; a second run imports nothing twice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;

use common::{create_token, run, run_muster, Server};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn import(data_dir: &Path, file: &Path, extra: &[&str]) -> common::Output {
    let mut command = common::muster();
    command
        .args(["import", "--data-dir"])
        .arg(data_dir)
        .arg(file)
        .args(extra);
    run(&mut command)
}

/// The export of `data_dir`, one resource per line, without the
/// timestamps an import gives anew.
fn export(data_dir: &Path) -> Vec<Value> {
    let output = run_muster(&["export", "--data-dir", &data_dir.display().to_string()]);
    assert!(output.status.success(), "{output}");
    output
        .stdout
        .lines()
        .map(|line| {
            let mut resource: Value = serde_json::from_str(line).unwrap();
            let meta = resource["meta"].as_object_mut().unwrap();
            meta.remove("created");
            meta.remove("lastModified");
            resource
        })
        .collect()
}

fn lines(values: &[Value]) -> String {
    values.iter().map(|value| format!("{value}\n")).collect()
}

#[tokio::test]
async fn an_export_imported_elsewhere_keeps_ids_members_and_values() {
    let directory = tempfile::tempdir().unwrap();
    let first = directory.path().join("first");
    let input = directory.path().join("users.jsonl");
    let team = "0191c0de-0000-7000-8000-000000000001";
    let ana = "0191c0de-0000-7000-8000-00000000000a";
    let source = vec![
        json!({"schemas": [USER, ENTERPRISE], "id": ana, "userName": "ana@contoso.com",
               "name": {"givenName": "Ana"}, "active": true,
               ENTERPRISE: {"costCenter": "CC-4100"}}),
        json!({"schemas": [USER], "userName": "ben@contoso.com", "externalId": "e-ben"}),
        // Refused, each for a reason of its own; nothing of them is stored.
        json!({"schemas": [USER], "userName": "ana@contoso.com"}),
        json!({"schemas": [USER], "id": "not-a-uuid", "userName": "cy@contoso.com"}),
        json!({"schemas": ["urn:example:Unknown"], "userName": "dee@contoso.com"}),
        json!({"schemas": [GROUP], "id": team, "displayName": "Tier 1",
               "members": [{"value": ana}]}),
    ];
    let mut text = lines(&source);
    text.push_str("this is not JSON\n");
    std::fs::write(&input, text).unwrap();

    let output = import(&first, &input, &[]);
    assert!(
        !output.status.success(),
        "refused lines make the exit non-zero: {output}"
    );
    assert!(output.stdout.contains("imported 3 resources"), "{output}");
    assert!(output.stderr.contains("4 lines refused"), "{output}");
    let report =
        std::fs::read_to_string(directory.path().join("users.jsonl.refused.jsonl")).unwrap();
    let mut refused: Vec<Value> = report
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Written as lines finish: in line order once sorted.
    refused.sort_by_key(|entry| entry["line"].as_u64());
    let numbers: Vec<u64> = refused
        .iter()
        .map(|entry| entry["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 4, 5, 7], "{report}");
    assert_eq!(refused[0]["scimType"], "uniqueness", "{report}");
    assert!(
        refused[1]["detail"]
            .as_str()
            .unwrap()
            .contains("id: expected a UUID"),
        "{report}"
    );
    assert!(
        refused[2]["detail"].as_str().unwrap().contains("schemas"),
        "{report}"
    );

    let exported = export(&first);
    assert_eq!(exported.len(), 3, "{exported:?}");
    let named = |key: &str, name: &str| {
        exported
            .iter()
            .find(|resource| resource[key] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {exported:?}"))
    };
    let exported_ana = named("userName", "ana@contoso.com");
    assert_eq!(exported_ana["id"], ana);
    assert_eq!(
        exported_ana["name"]["givenName"], "Ana",
        "the first line of a name wins"
    );
    assert_eq!(exported_ana[ENTERPRISE]["costCenter"], "CC-4100");
    let exported_team = named("displayName", "Tier 1");
    assert_eq!(exported_team["id"], team);
    assert_eq!(exported_team["members"][0]["value"], ana);
    assert_eq!(exported.last(), Some(&exported_team), "users before groups");

    // Into a second data directory: the same resources, the same ids.
    let second = directory.path().join("second");
    let moved = directory.path().join("export.jsonl");
    let output = run_muster(&[
        "export",
        "--data-dir",
        &first.display().to_string(),
        "--output",
        &moved.display().to_string(),
    ]);
    assert!(output.status.success(), "{output}");
    let output = import(&second, &moved, &[]);
    assert!(output.status.success(), "{output}");
    assert!(output.stdout.contains("imported 3 resources"), "{output}");
    // Users are imported concurrently: compare by id, not by position.
    let strip_versions = |values: Vec<Value>| {
        let mut values: Vec<Value> = values
            .into_iter()
            .map(|mut value| {
                value["meta"].as_object_mut().unwrap().remove("version");
                value
            })
            .collect();
        values.sort_by_key(|value| value["id"].to_string());
        values
    };
    assert_eq!(
        strip_versions(export(&second)),
        strip_versions(exported.clone())
    );

    // Run again: nothing imported twice.
    let output = import(&second, &moved, &[]);
    assert!(output.status.success(), "{output}");
    assert!(
        output
            .stdout
            .contains("imported 0 resources; 3 were there already"),
        "{output}"
    );

    // The imported data serves over HTTP, under the kept ids.
    let token = create_token(&second, "reader", &["scim.read"]);
    let server = Server::start(&second);
    let api = server.api(Some(&token));
    let user = api.get(&format!("/Users/{ana}")).await;
    assert_eq!(user.status, 200, "{:?}", user.body);
    assert_eq!(user.body["groups"][0]["value"], team, "{}", user.body);
}

#[test]
fn an_interrupted_import_resumes_where_it_stopped() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let input = directory.path().join("users.jsonl");
    let users: Vec<Value> = (0..600)
        .map(|n| json!({"schemas": [USER], "userName": format!("user{n}@contoso.com")}))
        .collect();
    std::fs::write(&input, lines(&users)).unwrap();
    // As a run stopped after its first 300 lines leaves it: those lines
    // imported, the checkpoint at line 300.
    std::fs::write(directory.path().join("first.jsonl"), lines(&users[..300])).unwrap();
    let output = import(&data, &directory.path().join("first.jsonl"), &[]);
    assert!(output.status.success(), "{output}");
    let metadata = std::fs::metadata(&input).unwrap();
    let modified = metadata
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let checkpoint = json!({
        "file": input.canonicalize().unwrap(),
        "size": metadata.len(),
        "modified": modified,
        "line": 300
    });
    std::fs::write(data.join("import.checkpoint"), checkpoint.to_string()).unwrap();

    let output = import(&data, &input, &[]);
    assert!(output.status.success(), "{output}");
    assert!(output.stdout.contains("resuming at line 301"), "{output}");
    assert!(output.stdout.contains("imported 300 resources"), "{output}");
    assert_eq!(export(&data).len(), 600);
    assert!(
        !data.join("import.checkpoint").exists(),
        "a finished import leaves no checkpoint"
    );

    // --restart reads from the top: every line is there already, by userName.
    let output = import(&data, &input, &["--restart"]);
    assert!(!output.status.success(), "{output}");
    assert!(output.stderr.contains("600 lines refused"), "{output}");
}

#[test]
fn an_imported_password_is_hashed_in_every_spelling_and_never_exported() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let input = directory.path().join("users.jsonl");
    let users = [
        json!({"schemas": [USER], "userName": "p1@contoso.com", "password": "Clear-Secret-1!"}),
        json!({"schemas": [USER], "userName": "p2@contoso.com", "PASSWORD": "Clear-Secret-2!"}),
        json!({"schemas": [USER], "userName": "p3@contoso.com",
               format!("{USER}:password"): "Clear-Secret-3!"}),
        json!({"SCHEMAS": [USER.to_uppercase()], "userName": "p4@contoso.com",
               "password": "Clear-Secret-4!"}),
    ];
    std::fs::write(&input, lines(&users)).unwrap();
    let output = import(&data, &input, &[]);
    assert!(output.status.success(), "{output}");
    assert!(output.stdout.contains("imported 4 resources"), "{output}");
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(13).any(|window| window == b"Clear-Secret-"),
            "a password is stored in clear text"
        );
    }
    let exported = export(&data);
    assert_eq!(exported.len(), 4);
    let text = lines(&exported);
    assert!(
        !text.contains("Clear-Secret") && !text.contains("argon2"),
        "{text}"
    );
    assert!(!text.to_ascii_lowercase().contains("password"), "{text}");
}
