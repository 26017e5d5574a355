//! `muster token create|list|revoke` as an operator runs them: the secret
//! alone on stdout, only a hash on disk, clear failures for bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;

use common::{contains_bytes, create_token, files_under, muster, run, run_muster};

fn list(data_dir: &Path) -> String {
    let output = run(muster().args(["token", "list", "--data-dir"]).arg(data_dir));
    assert!(output.status.success(), "token list failed: {output}");
    output.stdout
}

/// The `name<TAB>scopes<TAB>created` line of `name`, if listed.
fn listed<'a>(listing: &'a str, name: &str) -> Option<Vec<&'a str>> {
    listing
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
}

#[test]
fn create_prints_the_token_alone_and_stores_only_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    let output = run(muster()
        .args(["token", "create", "--data-dir"])
        .arg(&data_dir)
        .args([
            "--name",
            "entra",
            "--scope",
            "scim.read",
            "--scope",
            "scim.write",
        ]));
    assert!(output.status.success(), "{output}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must hold the token alone: {output}");
    assert_eq!(output.stdout, format!("{}\n", lines[0]));
    let entra = lines[0];
    assert!(
        entra.starts_with("mst_") && entra.len() >= 40,
        "not a bearer secret: {entra:?}"
    );
    assert!(!entra.contains(char::is_whitespace));

    let reader = create_token(&data_dir, "okta-reader", &["scim.read"]);
    let admin = create_token(&data_dir, "ops", &["admin"]);
    let default = create_token(&data_dir, "ping", &[]);
    let secrets = [entra, reader.as_str(), admin.as_str(), default.as_str()];
    assert_eq!(
        secrets
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        4,
        "every token is a new random secret"
    );

    // Neither the secret nor its random part is anywhere on disk (database,
    // WAL, shared memory), while the token names are: the search does read
    // what was written.
    let files = files_under(&data_dir);
    assert!(
        files.iter().any(|f| f.ends_with("muster.db")),
        "no muster.db in {files:?}"
    );
    let mut names_found = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for secret in secrets {
            let random_part = secret.strip_prefix("mst_").unwrap();
            assert!(
                !contains_bytes(&bytes, secret.as_bytes())
                    && !contains_bytes(&bytes, random_part.as_bytes()),
                "the secret is stored in clear in {}",
                file.display()
            );
        }
        if contains_bytes(&bytes, b"okta-reader") {
            names_found += 1;
        }
    }
    assert!(names_found > 0, "token names not found in {files:?}");
}

#[test]
fn list_shows_names_and_scopes_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let entra = create_token(dir.path(), "entra", &["scim.read", "scim.write"]);
    let reader = create_token(dir.path(), "okta-reader", &["scim.read"]);
    let admin = create_token(dir.path(), "ops", &["admin"]);
    let default = create_token(dir.path(), "ping", &[]);

    let listing = list(dir.path());
    assert_eq!(listing.lines().count(), 4, "{listing}");
    for secret in [&entra, &reader, &admin, &default] {
        assert!(
            !listing.contains(secret.as_str()),
            "secret listed: {listing}"
        );
        assert!(!listing.contains(&secret[4..]), "secret listed: {listing}");
    }
    assert!(!listing.contains("mst_"), "{listing}");
    let scopes = |name: &str| {
        listed(&listing, name).unwrap_or_else(|| panic!("{name} not in {listing}"))[1].to_owned()
    };
    assert_eq!(scopes("entra"), "scim.read,scim.write");
    assert_eq!(scopes("okta-reader"), "scim.read");
    assert_eq!(scopes("ops"), "admin");
    assert_eq!(scopes("ping"), "scim.read,scim.write", "default scopes");
    assert!(
        listed(&listing, "entra").unwrap().len() >= 3,
        "creation time missing: {listing}"
    );
}

#[test]
fn unknown_scope_fails_clearly_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["scim.admin", "write", "SCIM.READ", ""] {
        let output = run(muster()
            .args(["token", "create", "--data-dir"])
            .arg(dir.path())
            .args(["--name", "bad", "--scope", "scim.read", "--scope", bad]));
        assert!(!output.status.success(), "scope {bad:?} accepted: {output}");
        assert!(output.stdout.is_empty(), "printed something: {output}");
        assert!(
            output.stderr.contains(&format!("unknown scope '{bad}'")),
            "{output}"
        );
        assert!(
            output.stderr.contains("scim.read")
                && output.stderr.contains("scim.write")
                && output.stderr.contains("admin"),
            "the message should name the valid scopes: {output}"
        );
    }
    assert!(
        !dir.path().join("muster.db").exists(),
        "a refused token created a database"
    );
    let output = run(muster()
        .args(["token", "list", "--data-dir"])
        .arg(dir.path()));
    assert!(
        !output.status.success(),
        "listing a missing database: {output}"
    );
    assert!(output.stderr.contains("no Muster database"), "{output}");
}

#[test]
fn duplicate_name_fails_clearly_and_keeps_the_first() {
    let dir = tempfile::tempdir().unwrap();
    create_token(dir.path(), "entra", &["scim.read"]);
    let output = run(muster()
        .args(["token", "create", "--data-dir"])
        .arg(dir.path())
        .args(["--name", "entra", "--scope", "admin"]));
    assert!(!output.status.success(), "duplicate accepted: {output}");
    assert!(output.stdout.is_empty(), "a secret was printed: {output}");
    assert!(
        output.stderr.contains("entra") && output.stderr.contains("already exists"),
        "{output}"
    );
    let listing = list(dir.path());
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert_eq!(listed(&listing, "entra").unwrap()[1], "scim.read");
}

#[test]
fn revoke_removes_the_token_and_fails_clearly_for_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    create_token(dir.path(), "entra", &[]);
    create_token(dir.path(), "okta", &[]);

    let revoked = run(muster()
        .args(["token", "revoke", "entra", "--data-dir"])
        .arg(dir.path()));
    assert!(revoked.status.success(), "{revoked}");
    assert!(revoked.stdout.is_empty(), "{revoked}");
    let listing = list(dir.path());
    assert!(listed(&listing, "entra").is_none(), "{listing}");
    assert!(listed(&listing, "okta").is_some(), "{listing}");

    for name in ["entra", "nobody"] {
        let output = run(muster()
            .args(["token", "revoke", name, "--data-dir"])
            .arg(dir.path()));
        assert!(!output.status.success(), "revoking {name} again: {output}");
        assert!(
            output.stderr.contains(&format!("no token named '{name}'")),
            "{output}"
        );
    }

    // The name is free again.
    create_token(dir.path(), "entra", &["scim.read"]);
    assert_eq!(listed(&list(dir.path()), "entra").unwrap()[1], "scim.read");
}

#[test]
fn data_dir_defaults_to_muster_data_and_reads_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(muster()
        .current_dir(dir.path())
        .args(["token", "create", "--name", "cwd"]));
    assert!(created.status.success(), "{created}");
    assert!(dir.path().join("muster-data").join("muster.db").is_file());

    let from_env = dir.path().join("from-env");
    let created = run(muster()
        .current_dir(dir.path())
        .env("MUSTER_DATA_DIR", &from_env)
        .args(["token", "create", "--name", "env"]));
    assert!(created.status.success(), "{created}");
    assert!(from_env.join("muster.db").is_file());

    let listing = run(muster()
        .current_dir(dir.path())
        .env("MUSTER_DATA_DIR", &from_env)
        .args(["token", "list"]));
    assert!(listed(&listing.stdout, "env").is_some(), "{listing}");
    assert!(listed(&listing.stdout, "cwd").is_none(), "{listing}");
    let default_listing = run_muster(&[
        "token",
        "list",
        "--data-dir",
        &dir.path().join("muster-data").to_string_lossy(),
    ]);
    assert!(
        listed(&default_listing.stdout, "cwd").is_some(),
        "{default_listing}"
    );
}
