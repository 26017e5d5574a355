//! Attacks on `muster import` and `muster export`: an entitled user moved
//! between data directories, UUID ids in every spelling, a Group line with
//! its URN in capitals, a line that is not UTF-8, a checkpoint past the end
//! of the file, and undeclared passwords under `capture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;

use common::{run_muster, GROUP, USER};
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const REGION: &str = "urn:contoso:params:scim:schemas:extension:cc:2.0:User";

fn dir(path: &Path) -> String {
    path.display().to_string()
}

fn import(data_dir: &Path, file: &Path) -> common::Output {
    run_muster(&["import", "--data-dir", &dir(data_dir), &dir(file)])
}

fn export(data_dir: &Path) -> Vec<Value> {
    let output = run_muster(&["export", "--data-dir", &dir(data_dir)]);
    assert!(output.status.success(), "{output}");
    output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn write_lines(path: &Path, values: &[Value]) {
    let text: String = values.iter().map(|value| format!("{value}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Export of a user holding rule-computed contact-center entitlements,
/// imported into a fresh data dir: the import refuses the user (400
/// mutability) because export writes the computed extension and import
/// refuses it instead of ignoring it. The documented migration path loses
/// every entitled user.
#[test]
fn export_of_entitled_user_imports_elsewhere() {
    let root = tempfile::tempdir().unwrap();
    let (first, second) = (root.path().join("first"), root.path().join("second"));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../muster-rules/examples");
    for name in ["contoso.toml", "cost-centers.csv"] {
        std::fs::copy(examples.join(name), root.path().join(name)).unwrap();
    }
    let schema = root.path().join("region.json");
    std::fs::write(
        &schema,
        json!({"id": REGION, "name": "ContosoCC",
               "attributes": [{"name": "region", "type": "string"}]})
        .to_string(),
    )
    .unwrap();
    let groups = root.path().join("groups.jsonl");
    write_lines(
        &groups,
        &[
            "Genesys_Cloud_Users",
            "Group_CC_Agents_Tier1",
            "Group_CC_Night_Shift",
        ]
        .map(|name| json!({"schemas": [GROUP], "displayName": name})),
    );
    assert!(import(&first, &groups).status.success());
    for data in [&first, &second] {
        let out = run_muster(&["schema", "apply", "--data-dir", &dir(data), &dir(&schema)]);
        assert!(out.status.success(), "{out}");
    }
    let rules = run_muster(&[
        "rules",
        "apply",
        "--data-dir",
        &dir(&first),
        &dir(&root.path().join("contoso.toml")),
    ]);
    assert!(rules.status.success(), "{rules}");
    let users = root.path().join("users.jsonl");
    write_lines(
        &users,
        &[
            json!({"schemas": [USER, ENTERPRISE], "userName": "bob@contoso.com",
                 "active": true, "title": "Level 2 Support",
                 ENTERPRISE: {"department": "Customer Support"}}),
        ],
    );
    assert!(import(&first, &users).status.success());

    let exported = export(&first);
    let out = root.path().join("export.jsonl");
    write_lines(&out, &exported);
    let imported = import(&second, &out);
    assert!(imported.status.success(), "{imported}");
}

/// `id` in braced, URN or hyphen-less form is a valid UUID to the parser
/// and is stored verbatim: one UUID becomes four distinct resources, with
/// ids holding `{`, `}` and `:`.
#[test]
fn non_canonical_uuid_ids_are_not_stored_verbatim() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let file = root.path().join("in.jsonl");
    let uuid = "0191c0de-0000-7000-8000-00000000000a";
    write_lines(
        &file,
        &[
            json!({"schemas": [USER], "id": uuid, "userName": "plain"}),
            json!({"schemas": [USER], "id": format!("urn:uuid:{uuid}"), "userName": "urn"}),
            json!({"schemas": [USER], "id": format!("{{{uuid}}}"), "userName": "braced"}),
            json!({"schemas": [USER], "id": uuid.replace('-', ""), "userName": "simple"}),
        ],
    );
    let _ = import(&data, &file);
    for user in export(&data) {
        let id = user["id"].as_str().unwrap();
        assert!(
            id.len() == 36
                && id.char_indices().all(|(at, c)| {
                    if [8, 13, 18, 23].contains(&at) {
                        c == '-'
                    } else {
                        c.is_ascii_digit() || ('a'..='f').contains(&c)
                    }
                }),
            "stored a non-canonical id {id}"
        );
    }
}

/// A Group line whose schema URN is not spelled in exactly the lower case
/// the window looks for (`is_group` is a case-sensitive substring test,
/// `import_line` a case-insensitive match) is imported while the users
/// before it are still in flight: its members "do not exist".
#[test]
fn group_with_uppercase_urn_waits_for_the_users_before_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("in.jsonl");
    let ids: Vec<String> = (1..=200)
        .map(|n| format!("0191c0de-0000-7000-8000-{n:012x}"))
        .collect();
    let mut lines: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| json!({"schemas": [USER], "id": id, "userName": format!("u{n}")}))
        .collect();
    lines.push(
        json!({"schemas": [GROUP.to_uppercase()], "displayName": "all",
        "members": ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()}),
    );
    write_lines(&file, &lines);
    for round in 0..3 {
        let data = root.path().join(format!("data{round}"));
        let output = import(&data, &file);
        assert!(output.status.success(), "round {round}: {output}");
    }
}

/// One line that is not UTF-8 aborts the whole import (no line number,
/// no report entry) and the lines already in flight before it are lost.
#[test]
fn a_line_that_is_not_utf8_is_reported_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let file = root.path().join("in.jsonl");
    let mut bytes = format!("{}\n", json!({"schemas": [USER], "userName": "before"})).into_bytes();
    bytes.extend_from_slice(b"{\"userName\": \"bad\xff\"}\n");
    bytes.extend_from_slice(
        format!("{}\n", json!({"schemas": [USER], "userName": "after"})).as_bytes(),
    );
    std::fs::write(&file, bytes).unwrap();
    let output = import(&data, &file);
    let names: Vec<String> = export(&data)
        .iter()
        .filter_map(|user| user["userName"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 2, "only {names:?} imported: {output}");
}

/// A checkpoint past the end of the file (stale or forged; only path and
/// size are compared) makes the import do nothing and succeed.
#[test]
fn a_checkpoint_past_the_end_is_not_trusted() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = root.path().join("in.jsonl");
    write_lines(&file, &[json!({"schemas": [USER], "userName": "only"})]);
    let size = std::fs::metadata(&file).unwrap().len();
    std::fs::write(
        data.join("import.checkpoint"),
        json!({"file": file.canonicalize().unwrap(), "size": size, "line": 1_000_000_000u64})
            .to_string(),
    )
    .unwrap();
    let output = import(&data, &file);
    assert_eq!(export(&data).len(), 1, "nothing imported yet: {output}");
}

/// Under `capture`, a `password` the schemas do not declare (in the
/// enterprise extension, or nested as a Bulk operation would) is stored in
/// clear and written by `muster export`.
#[test]
fn captured_passwords_are_never_exported() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let file = root.path().join("in.jsonl");
    write_lines(
        &file,
        &[
            json!({"schemas": [USER, ENTERPRISE], "userName": "a",
                   ENTERPRISE: {"password": "SECRET-in-extension"}}),
            json!({"schemas": [USER], "userName": "b",
                   "Operations": [{"data": {"password": "SECRET-in-bulk"}}]}),
        ],
    );
    let _ = import(&data, &file); // creates the data dir
    let set = run_muster(&[
        "settings",
        "set",
        "--data-dir",
        &dir(&data),
        "--undeclared-attributes",
        "capture",
    ]);
    assert!(set.status.success(), "{set}");
    let _ = run_muster(&[
        "import",
        "--data-dir",
        &dir(&data),
        &dir(&file),
        "--restart",
    ]);
    let output = run_muster(&["export", "--data-dir", &dir(&data)]);
    assert!(!output.stdout.contains("SECRET"), "{}", output.stdout);
}
