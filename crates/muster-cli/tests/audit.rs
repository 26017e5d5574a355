//! `muster audit` and `muster audit verify` through the built binary on a
//! real SQLite file: the entries of CLI changes, exported as JSON Lines;
//! `verify` passes on an intact chain and fails, naming the entry, once a
//! row was edited, deleted or moved with `sqlite3`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{create_token, run_muster, Output};
use serde_json::Value;

fn at(data_dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.push("--data-dir".to_owned());
    all.push(data_dir.display().to_string());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_muster(&refs)
}

/// A data directory with a few audited changes (settings set by the CLI).
fn audited() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    create_token(dir.path(), "admin", &["admin"]);
    for policy in ["capture", "reject", "capture", "reject"] {
        let output = at(
            dir.path(),
            &["settings", "set", "--undeclared-attributes", policy],
        );
        assert!(output.status.success(), "{output}");
    }
    dir
}

fn sqlite(data_dir: &Path, sql: &str) {
    let output = Command::new("sqlite3")
        .arg(data_dir.join("muster.db"))
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn audit_lists_exports_and_verifies() {
    let dir = audited();
    let output = at(dir.path(), &["audit", "--jsonl"]);
    assert!(output.status.success(), "{output}");
    let entries: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(entries.len() >= 5, "{output}");
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry["position"], index as u64 + 1, "{entry}");
        assert!(
            entry["client"].as_str().unwrap().starts_with("cli:"),
            "{entry}"
        );
    }
    // The token the data directory was made with, then the settings.
    assert_eq!(
        (&entries[0]["operation"], &entries[0]["resourceType"]),
        (&Value::from("create"), &Value::from("Token")),
        "{output}"
    );
    for entry in &entries[1..] {
        assert_eq!(entry["operation"], "setting", "{entry}");
    }
    let output = at(dir.path(), &["audit", "--client", "nobody", "--jsonl"]);
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{output}"
    );
    let output = at(dir.path(), &["audit", "--since", "soon"]);
    assert!(
        !output.status.success() && output.stderr.contains("since"),
        "{output}"
    );
    let output = at(dir.path(), &["audit"]);
    assert!(
        output.status.success() && output.stdout.contains("OPERATION"),
        "{output}"
    );
    let output = at(dir.path(), &["audit", "verify"]);
    assert!(output.status.success(), "{output}");
    assert!(output.stdout.contains("intact"), "{output}");
}

#[test]
fn verify_fails_after_a_row_is_edited_deleted_or_moved() {
    for (tamper, named) in [
        (
            "UPDATE audit_log SET detail = detail || ' ' WHERE position = 2",
            "entry 2",
        ),
        ("DELETE FROM audit_log WHERE position = 3", "entry 3"),
        (
            "UPDATE audit_log SET position = position + 100 WHERE position IN (2, 3);
             UPDATE audit_log SET position = 105 - position WHERE position > 100",
            "entry 2",
        ),
    ] {
        let dir = audited();
        // The triggers refuse the edit first...
        let refused = Command::new("sqlite3")
            .arg(dir.path().join("muster.db"))
            .arg(tamper)
            .output()
            .unwrap();
        assert!(!refused.status.success(), "{tamper} was not refused");
        // ...someone holding the file drops them.
        sqlite(
            dir.path(),
            &format!(
                "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_redact_only; {tamper}"
            ),
        );
        let output = at(dir.path(), &["audit", "verify"]);
        assert!(!output.status.success(), "{tamper}: {output}");
        assert!(output.stderr.contains(named), "{tamper}: {output}");
    }
}

/// Credentials and tenants change no resource, yet every action on them is
/// in the audit trail, with who made it and never a secret.
#[test]
fn credential_and_tenant_actions_are_audited_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "idp", &["scim.write"]);
    let created = at(dir.path(), &["client", "create", "--name", "okta"]);
    assert!(created.status.success(), "{created}");
    let client_secret = created
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("client_secret: "))
        .unwrap()
        .to_owned();
    let rotated = at(dir.path(), &["client", "rotate", "okta", "--grace", "0s"]);
    assert!(rotated.status.success(), "{rotated}");
    let new_secret = rotated.stdout.trim().to_owned();
    for args in [
        &["client", "revoke", "okta"][..],
        &["token", "revoke", "idp"],
        &["tenant", "create", "emea"],
        &["tenant", "remove", "emea"],
    ] {
        let output = at(dir.path(), args);
        assert!(output.status.success(), "{args:?}: {output}");
    }
    let output = at(dir.path(), &["audit", "--jsonl"]);
    assert!(output.status.success(), "{output}");
    let actions: Vec<(String, String, String)> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|entry| {
            assert!(
                entry["client"].as_str().unwrap().starts_with("cli:"),
                "{entry}"
            );
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
            (text("operation"), text("resourceType"), text("resourceId"))
        })
        .collect();
    let expected = [
        ("create", "Token", "idp"),
        ("create", "OAuthClient", "okta"),
        ("rotate", "OAuthClient", "okta"),
        ("revoke", "OAuthClient", "okta"),
        ("revoke", "Token", "idp"),
        ("create", "Tenant", "emea"),
        ("remove", "Tenant", "emea"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(actions, expected, "{output}");
    for secret in [&token, &client_secret, &new_secret] {
        assert!(
            !output.stdout.contains(secret.as_str()),
            "a secret is in the audit trail"
        );
    }
    let output = at(dir.path(), &["audit", "verify"]);
    assert!(output.status.success(), "{output}");
}
