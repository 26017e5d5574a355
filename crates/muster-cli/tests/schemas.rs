//! The schema, attributes and settings commands of the `muster` binary,
//! against a running server sharing the data directory (issue 5's CLI
//! contract: `muster schema apply --data-dir DIR FILE.json`, `muster schema
//! list`, `muster attributes`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{create_token, muster, run, Api, Output, Server, USER};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
const GENESYS: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
const SITE: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group";

/// How long a running server may take to serve a schema the CLI applied.
const PICKUP_DEADLINE: Duration = Duration::from_secs(5);

fn contoso() -> Value {
    json!({
        "id": CONTOSO,
        "name": "Contoso",
        "attributes": [
            {"name": "region", "type": "string"},
            {"name": "costCenter", "type": "string"}
        ]
    })
}

fn genesys_and_site() -> Value {
    json!([
        {
            "id": GENESYS,
            "name": "Genesys",
            "attributes": [{
                "name": "customFields",
                "type": "complex",
                "subAttributes": [{"name": "BPO_Vendor_ID", "type": "string"}]
            }]
        },
        {
            "id": SITE,
            "name": "Site",
            "attributes": [{"name": "siteCode", "type": "string"}]
        }
    ])
}

fn write_json(dir: &Path, name: &str, value: &Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

/// Runs `muster <args...> --data-dir <data>`.
fn muster_in(data: &Path, args: &[&str]) -> Output {
    run(muster().args(args).arg("--data-dir").arg(data))
}

fn apply(data: &Path, file: &Path, flags: &[&str]) -> Output {
    let mut command = muster();
    command
        .args(["schema", "apply", "--data-dir"])
        .arg(data)
        .args(flags)
        .arg(file);
    run(&mut command)
}

/// Waits until the running server lists `urn` in `/Schemas`.
async fn wait_for_schema(api: &Api, urn: &str) {
    let started = Instant::now();
    loop {
        let reply = api.get(&format!("/Schemas/{urn}")).await;
        if reply.status == StatusCode::OK {
            return;
        }
        assert!(
            started.elapsed() < PICKUP_DEADLINE,
            "the server did not serve {urn} within {PICKUP_DEADLINE:?}: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn applied_schemas_are_listed_and_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = create_token(&data, "entra", &[]);
    let server = Server::start(&data);
    let api = server.api(Some(&secret));

    // One schema in a file.
    let one = apply(
        &data,
        &write_json(dir.path(), "contoso.json", &contoso()),
        &[],
    );
    assert!(one.status.success(), "{one}");
    assert!(
        one.stdout.contains(&format!("declared {CONTOSO} on User")),
        "{one}"
    );
    wait_for_schema(&api, CONTOSO).await;
    let user_type = api.get("/ResourceTypes/User").await;
    assert!(
        user_type.body["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|extension| extension["schema"] == CONTOSO && extension["required"] == false),
        "{user_type:?}"
    );

    // An array of schemas; the Group one binds to Group by its URN.
    let many = apply(
        &data,
        &write_json(dir.path(), "many.json", &genesys_and_site()),
        &[],
    );
    assert!(many.status.success(), "{many}");
    assert!(
        many.stdout.contains(&format!("declared {GENESYS} on User")),
        "{many}"
    );
    assert!(
        many.stdout.contains(&format!("declared {SITE} on Group")),
        "{many}"
    );
    wait_for_schema(&api, GENESYS).await;
    wait_for_schema(&api, SITE).await;

    let listed = muster_in(&data, &["schema", "list"]);
    assert!(listed.status.success(), "{listed}");
    for (urn, resource_type) in [(CONTOSO, "User"), (GENESYS, "User"), (SITE, "Group")] {
        let line = listed
            .stdout
            .lines()
            .find(|line| line.starts_with(&format!("{urn} ")))
            .unwrap_or_else(|| panic!("{urn} not listed: {listed}"));
        assert!(line.contains(resource_type), "{line}");
    }
    let documents: Value =
        serde_json::from_str(&muster_in(&data, &["schema", "list", "--json"]).stdout).unwrap();
    assert_eq!(documents.as_array().unwrap().len(), 3, "{documents}");

    // Values under the new schemas land, and the explain table shows who
    // set them.
    let created = api
        .post(
            "/Users",
            &json!({
                "schemas": [USER, CONTOSO, GENESYS],
                "userName": "ana@contoso.com",
                CONTOSO: {"region": "APAC", "costCenter": "CC-7"},
                GENESYS: {"customFields": {"BPO_Vendor_ID": "BPO-42"}}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body[CONTOSO]["region"], "APAC");
    assert_eq!(
        created.body[GENESYS]["customFields"]["BPO_Vendor_ID"],
        "BPO-42"
    );

    let table = muster_in(&data, &["attributes"]);
    assert!(table.status.success(), "{table}");
    let region = table
        .stdout
        .lines()
        .find(|line| line.contains(&format!("{CONTOSO}:region ")))
        .unwrap_or_else(|| panic!("region not explained: {table}"));
    assert!(
        region.contains(" 1 ") && region.contains("entra"),
        "{region}"
    );
    let rows: Value =
        serde_json::from_str(&muster_in(&data, &["attributes", "--json"]).stdout).unwrap();
    let vendor = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["path"] == format!("{GENESYS}:customFields.BPO_Vendor_ID"))
        .unwrap_or_else(|| panic!("BPO_Vendor_ID not explained: {rows}"));
    assert_eq!(vendor["holders"], 1, "{vendor}");
}

#[test]
fn bad_schema_files_fail_in_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = apply(&data, &write_json(dir.path(), "ok.json", &contoso()), &[]);
    assert!(first.status.success(), "{first}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"id\": ").unwrap();
    let mistyped = json!([
        {"id": GENESYS, "name": "Genesys", "attributes": [{"name": "tier", "type": "integer"}]},
        {"id": SITE, "name": "Site", "attributes": [{"name": "siteCode", "type": "strin"}]}
    ]);
    for (file, expected) in [
        (broken, "not JSON"),
        (write_json(dir.path(), "mistyped.json", &mistyped), "strin"),
        (dir.path().join("missing.json"), "missing.json"),
    ] {
        let output = apply(&data, &file, &[]);
        assert!(!output.status.success(), "{output}");
        assert_eq!(output.stderr.lines().count(), 1, "one line: {output}");
        assert!(output.stderr.contains(expected), "{output}");
    }
    // The valid schema of the refused array was not applied either.
    let listed = muster_in(&data, &["schema", "list"]);
    assert!(listed.stdout.contains(CONTOSO), "{listed}");
    assert!(!listed.stdout.contains(GENESYS), "{listed}");
}

#[tokio::test]
async fn removing_a_schema_that_holds_values_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = create_token(&data, "entra", &[]);
    let applied = apply(&data, &write_json(dir.path(), "c.json", &contoso()), &[]);
    assert!(applied.status.success(), "{applied}");
    let server = Server::start(&data);
    let api = server.api(Some(&secret));
    wait_for_schema(&api, CONTOSO).await;
    let created = api
        .post(
            "/Users",
            &json!({
                "schemas": [USER, CONTOSO],
                "userName": "ben@contoso.com",
                CONTOSO: {"region": "EMEA"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let refused = muster_in(&data, &["schema", "remove", CONTOSO]);
    assert!(!refused.status.success(), "{refused}");
    assert!(refused.stderr.contains("--force"), "{refused}");
    let dry = muster_in(
        &data,
        &["schema", "remove", CONTOSO, "--force", "--dry-run"],
    );
    assert!(dry.status.success(), "{dry}");
    assert!(dry.stdout.starts_with("dry run: would remove"), "{dry}");
    assert!(muster_in(&data, &["schema", "list"])
        .stdout
        .contains(CONTOSO));

    let removed = muster_in(&data, &["schema", "remove", CONTOSO, "--force"]);
    assert!(removed.status.success(), "{removed}");
    assert!(
        removed
            .stdout
            .starts_with(&format!("removed {CONTOSO} from User")),
        "{removed}"
    );
    assert!(
        removed
            .stdout
            .contains(&format!("values removed at {CONTOSO}: 1 resources")),
        "{removed}"
    );
    let started = Instant::now();
    loop {
        let user = api.get(&format!("/Users/{id}")).await;
        if user.body.get(CONTOSO).is_none() {
            break;
        }
        assert!(started.elapsed() < PICKUP_DEADLINE, "{user:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn settings_set_the_undeclared_attribute_policy_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = create_token(&data, "okta", &[]);
    let server = Server::start(&data);
    let api = server.api(Some(&secret));
    let body = |user_name: &str| {
        json!({
            "schemas": [USER, CONTOSO],
            "userName": user_name,
            CONTOSO: {"regoin": "APAC"}
        })
    };
    let refused = api.post("/Users", &body("one@contoso.com")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");

    let shown = muster_in(&data, &["settings", "show"]);
    // Its first line; the other settings follow.
    assert!(
        shown.stdout.starts_with("undeclared-attributes\treject\n"),
        "{shown}"
    );
    let set = muster_in(
        &data,
        &["settings", "set", "--undeclared-attributes", "capture"],
    );
    assert!(set.status.success(), "{set}");
    let shown = muster_in(&data, &["settings", "show"]);
    assert!(
        shown.stdout.starts_with("undeclared-attributes\tcapture\n"),
        "{shown}"
    );
    let started = Instant::now();
    loop {
        let reply = api.post("/Users", &body("two@contoso.com")).await;
        if reply.status == StatusCode::CREATED {
            assert!(reply.body.get(CONTOSO).is_none(), "{reply:?}");
            break;
        }
        assert!(started.elapsed() < PICKUP_DEADLINE, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `muster <args...>` with standard output already closed by its
/// reader, as in `muster attributes | head -1` once `head` has exited.
fn run_with_closed_output(args: &[&str], data: &Path) -> Output {
    // The write end of a pipe whose only reader, `true`, has exited.
    let mut gone = std::process::Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = gone.stdin.take().unwrap();
    assert!(gone.wait().unwrap().success());
    let output = muster()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Output {
        status: output.status,
        stdout: String::new(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn a_listing_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let applied = apply(&data, &write_json(dir.path(), "c.json", &contoso()), &[]);
    assert!(applied.status.success(), "{applied}");
    for args in [
        &["attributes"][..],
        &["schema", "list"],
        &["settings", "show"],
        &["token", "list"],
    ] {
        let output = run_with_closed_output(args, &data);
        assert!(output.status.success(), "{args:?}: {output}");
        assert!(output.stderr.is_empty(), "{args:?}: {output}");
    }
}

#[test]
fn a_change_with_a_closed_output_is_done_whole_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write_json(dir.path(), "many.json", &genesys_and_site());
    let mut args = vec!["schema", "apply"];
    args.push(file.to_str().unwrap());
    let output = run_with_closed_output(&args, &data);
    assert!(!output.status.success(), "{output}");
    assert!(output.stderr.contains("standard output"), "{output}");
    assert!(!output.stderr.contains("panicked"), "{output}");
    // Both schemas were applied, not only the one printed first.
    let listed = muster_in(&data, &["schema", "list"]);
    assert!(listed.stdout.contains(GENESYS), "{listed}");
    assert!(listed.stdout.contains(SITE), "{listed}");

    // A token whose secret cannot be shown says how to get rid of it.
    let token = run_with_closed_output(&["token", "create", "--name", "lost"], &data);
    assert!(!token.status.success(), "{token}");
    assert!(token.stderr.contains("muster token revoke lost"), "{token}");
}
