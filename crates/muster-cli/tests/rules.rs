//! `muster rules ...` and `muster explain user` against a running server
//! sharing the data directory, with the example rule file built from the
//! seeds (`crates/muster-rules/examples/contoso.toml` and its CSV).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{create_token, run_muster, Api, Output, Server, USER};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CC: &str = "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const REGION: &str = "urn:contoso:params:scim:schemas:extension:cc:2.0:User";

/// How long a running server may take to serve rules the CLI applied.
const PICKUP_DEADLINE: Duration = Duration::from_secs(5);

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../muster-rules/examples")
}

/// The example files copied to a directory of their own.
fn rule_files(directory: &Path) -> PathBuf {
    for name in ["contoso.toml", "cost-centers.csv"] {
        std::fs::copy(examples().join(name), directory.join(name)).unwrap();
    }
    directory.join("contoso.toml")
}

fn muster(args: &[&str], data_dir: &Path, file: Option<&Path>) -> Output {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.push("--data-dir".to_owned());
    all.push(data_dir.display().to_string());
    if let Some(file) = file {
        all.push(file.display().to_string());
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_muster(&refs)
}

async fn create(api: &Api, path: &str, body: Value) -> String {
    let reply = api.post(path, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Polls a user until its entitlements satisfy `ready`.
async fn entitlements_when(api: &Api, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = api.get(&format!("/Users/{id}")).await;
        let value = reply.body[CC].clone();
        if ready(&value) || started.elapsed() > PICKUP_DEADLINE {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_checked_applied_explained_and_rolled_back_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let file = rule_files(files.path());
    let token = create_token(data.path(), "admin", &["admin"]);
    let server = Server::start(data.path());
    let api = server.api(Some(&token));

    // The example names a custom extension, three groups and users.
    let schema = json!({"id": REGION, "name": "ContosoCC",
        "attributes": [{"name": "region", "type": "string"}]});
    let http = reqwest::Client::new();
    let declared = http
        .put(format!("{}/admin/v1/schemas/{REGION}", server.root))
        .bearer_auth(&token)
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), StatusCode::CREATED);

    let alice = create(
        &api,
        "/Users",
        json!({"schemas": [USER, ENTERPRISE, REGION],
        "userName": "alice@contoso.com", "active": true, "title": "Agent",
        ENTERPRISE: {"department": "APAC Operations", "costCenter": "CC-4100"},
        REGION: {"region": "APAC"}}),
    )
    .await;
    let bob = create(
        &api,
        "/Users",
        json!({"schemas": [USER, ENTERPRISE],
        "userName": "bob@contoso.com", "active": true, "title": "Level 2 Support",
        ENTERPRISE: {"department": "Customer Support"}}),
    )
    .await;
    for (name, members) in [
        ("Genesys_Cloud_Users", vec![alice.clone(), bob.clone()]),
        ("Group_CC_Agents_Tier1", vec![alice.clone()]),
        ("Group_CC_Night_Shift", vec![]),
    ] {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        create(
            &api,
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name, "members": members}),
        )
        .await;
    }

    // check: valid; a typo is refused with the rule id, the line and a
    // "did you mean", and changes nothing.
    let checked = muster(&["rules", "check"], data.path(), Some(&file));
    assert!(checked.status.success(), "{checked}");
    assert!(checked.stdout.contains("valid"), "{checked}");
    let typo = files.path().join("typo.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &typo,
        text.replace("\"Manila Night\"\n", "\"Manila Nite\"\n"),
    )
    .unwrap();
    let refused = muster(&["rules", "check"], data.path(), Some(&typo));
    assert!(!refused.status.success(), "{refused}");
    assert!(refused.stderr.contains("night-shift"), "{refused}");
    assert!(refused.stderr.contains("line"), "{refused}");
    assert!(refused.stderr.contains("Manila Night"), "{refused}");

    // A dry run shows the change across all users and for one, storing nothing.
    let dry = muster(
        &["rules", "apply", "--dry-run", "--user", "alice@contoso.com"],
        data.path(),
        Some(&file),
    );
    assert!(dry.status.success(), "{dry}");
    assert!(dry.stdout.contains("dry run"), "{dry}");
    assert!(dry.stdout.contains("Manila Voice"), "{dry}");
    let shown = muster(&["rules", "show"], data.path(), None);
    assert!(!shown.status.success(), "{shown}");

    // Apply: version 1, served at once by the running server.
    let applied = muster(&["rules", "apply"], data.path(), Some(&file));
    assert!(applied.status.success(), "{applied}");
    assert!(
        applied.stdout.contains("applied rule set version 1"),
        "{applied}"
    );
    let a = entitlements_when(&api, &alice, |value| !value.is_null()).await;
    assert_eq!(a["managementUnit"]["name"], "Manila Voice", "{a}");
    let languages = a["languages"].to_string();
    assert!(languages.contains("Tagalog"), "{a}");
    // The example reads a CSV file, so the version is kept self-contained:
    // its JSON form, the rows inlined.
    let shown = muster(&["rules", "show"], data.path(), None);
    let stored: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert!(stored.to_string().contains("CC-4200"), "{shown}");

    let stats = muster(&["rules", "stats"], data.path(), None);
    assert!(stats.status.success(), "{stats}");
    assert!(stats.stdout.contains("tier1-agents"), "{stats}");
    assert!(stats.stdout.contains("bob@contoso.com"), "{stats}");

    let explained = muster(&["explain", "user"], data.path(), None);
    assert!(
        !explained.status.success(),
        "a user is required: {explained}"
    );
    let mut args: Vec<String> = ["explain", "user", "--data-dir"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    args.push(data.path().display().to_string());
    args.push("bob@contoso.com".to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let explained = run_muster(&refs);
    assert!(explained.status.success(), "{explained}");
    let explanation: Value = serde_json::from_str(&explained.stdout).unwrap();
    let text = explanation.to_string();
    assert!(
        text.contains("level2-quality") && text.contains("missingKey"),
        "{text}"
    );

    // Roll back is a new version; the history shows all.
    let again = muster(&["rules", "apply", "--version", "1"], data.path(), None);
    assert!(again.status.success(), "{again}");
    assert!(
        again.stdout.contains("applied rule set version 2"),
        "{again}"
    );
    let history = muster(&["rules", "history"], data.path(), None);
    assert!(
        history.stdout.contains("rollback to version 1"),
        "{history}"
    );
    assert_eq!(history.stdout.lines().count(), 3, "{history}");
    let by_api: Value = http
        .get(format!("{}/admin/v1/rules", server.root))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_api["version"], 2, "{by_api}");
}
