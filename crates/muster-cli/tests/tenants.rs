//! `muster tenant create|list|remove` and `--tenant` (env `MUSTER_TENANT`)
//! on other commands, with the real binary: a token made in tenant b works
//! at b's URL only, a schema applied in b is listed in b only, a tenant
//! that does not exist (or is not a name) is a clear error. On SQLite, and
//! on PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;

use common::{muster, run, Api, Output, Server, USER};
use muster_testkit::{on_postgres, TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const REGION: &str = "urn:ietf:params:scim:schemas:extension:region:2.0:User";

/// Where the commands work: a data directory, and a PostgreSQL database
/// when the tests run on PostgreSQL.
struct Place {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Place {
    async fn new() -> Place {
        Place {
            dir: tempfile::tempdir().unwrap(),
            database: if on_postgres() {
                Some(TestDatabase::create().await)
            } else {
                None
            },
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `muster ARGS --data-dir DATA [--database URL]`, with `env` set.
    fn muster(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = muster();
        command.args(args).arg("--data-dir").arg(self.data());
        if let Some(database) = &self.database {
            command.arg("--database").arg(&database.url);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        run(&mut command)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = self.muster(args, &[]);
        assert!(output.status.success(), "muster {args:?}: {output}");
        output
    }

    fn fails(&self, args: &[&str], says: &str) -> Output {
        let output = self.muster(args, &[]);
        assert!(
            !output.status.success(),
            "muster {args:?} succeeded: {output}"
        );
        assert!(output.stderr.contains(says), "muster {args:?}: {output}");
        output
    }
}

fn write_json(dir: &Path, name: &str, value: &Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn tenant_commands_and_the_tenant_flag() {
    let place = Place::new().await;
    // A fresh database has the default tenant only.
    place.ok(&[
        "token",
        "create",
        "--name",
        "default-admin",
        "--scope",
        "admin",
    ]);
    let listed = place.ok(&["tenant", "list"]);
    assert!(listed.stdout.contains("default"), "{listed}");

    // Names: the one form, refused otherwise; twice is a conflict.
    for bad in ["B", "a_b", "a.b", "Acme", &"a".repeat(64), "é"] {
        place.fails(&["tenant", "create", bad], "is not a tenant name");
    }
    place.ok(&["tenant", "create", "b"]);
    place.fails(&["tenant", "create", "b"], "already exists");

    // --tenant names a tenant that must exist, in the one form.
    place.fails(
        &["token", "create", "--name", "x", "--tenant", "nope"],
        "tenant 'nope' does not exist",
    );
    place.fails(
        &["token", "list", "--tenant", "Nope"],
        "is not a tenant name",
    );
    place.fails(&["schema", "list", "--tenant", "nope"], "does not exist");

    // A token made in b lists in b only, also through MUSTER_TENANT.
    let made = place.ok(&["token", "create", "--name", "b-writer", "--tenant", "b"]);
    let b_secret = made.stdout.trim().to_owned();
    assert!(b_secret.starts_with("mst_"), "{made}");
    let in_b = place.ok(&["token", "list", "--tenant", "b"]);
    assert!(in_b.stdout.contains("b-writer"), "{in_b}");
    assert!(!in_b.stdout.contains("default-admin"), "{in_b}");
    let in_default = place.ok(&["token", "list"]);
    assert!(!in_default.stdout.contains("b-writer"), "{in_default}");
    let by_env = place.muster(&["token", "list"], &[("MUSTER_TENANT", "b")]);
    assert!(by_env.stdout.contains("b-writer"), "{by_env}");

    // A schema applied in b is b's only.
    let schema = json!({"id": REGION, "name": "Region",
                        "attributes": [{"name": "code", "type": "string"}]});
    let file = write_json(place.dir.path(), "region.json", &schema);
    place.ok(&["schema", "apply", "--tenant", "b", file.to_str().unwrap()]);
    let b_schemas = place.ok(&["schema", "list", "--tenant", "b"]);
    assert!(b_schemas.stdout.contains(REGION), "{b_schemas}");
    let default_schemas = place.ok(&["schema", "list"]);
    assert!(
        !default_schemas.stdout.contains(REGION),
        "{default_schemas}"
    );
    place.ok(&[
        "settings",
        "set",
        "--tenant",
        "b",
        "--undeclared-attributes",
        "capture",
    ]);
    let b_settings = place.ok(&["settings", "show", "--tenant", "b"]);
    assert!(b_settings.stdout.contains("capture"), "{b_settings}");
    let default_settings = place.ok(&["settings", "show"]);
    assert!(
        default_settings.stdout.contains("reject"),
        "{default_settings}"
    );

    // The token works at b's URL, and only there.
    let server = match &place.database {
        Some(database) => Server::spawn(|command| {
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(place.data())
                .arg("--database")
                .arg(&database.url);
        }),
        None => Server::start(&place.data()),
    };
    let mut api: Api = server.api(Some(&b_secret));
    api.base_url = format!("{}/t/b/scim/v2", server.root);
    let created = api
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"schemas": [USER, REGION], "userName": "bea", REGION: {"code": "eu"}})),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.header("location"),
        Some(
            format!(
                "{}/t/b/scim/v2/Users/{}",
                server.root,
                created.body["id"].as_str().unwrap()
            )
            .as_str()
        )
    );
    let mut default_api = server.api(Some(&b_secret));
    default_api.base_url = format!("{}/scim/v2", server.root);
    let elsewhere = default_api.send(Method::GET, "/Users", None).await.unwrap();
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);

    // Export and import work in the tenant named.
    let exported = place.dir.path().join("b.jsonl");
    place.ok(&[
        "export",
        "--tenant",
        "b",
        "--output",
        exported.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("\"bea\""), "{text}");
    let default_export = place.dir.path().join("default.jsonl");
    place.ok(&["export", "--output", default_export.to_str().unwrap()]);
    assert!(!std::fs::read_to_string(&default_export)
        .unwrap()
        .contains("\"bea\""));
    place.ok(&["tenant", "create", "c"]);
    place.ok(&["schema", "apply", "--tenant", "c", file.to_str().unwrap()]);
    place.ok(&["import", "--tenant", "c", exported.to_str().unwrap()]);
    place.fails(
        &["import", "--tenant", "nope", exported.to_str().unwrap()],
        "does not exist",
    );

    // The list counts each tenant's users and tokens.
    let listed = place.ok(&["tenant", "list", "--json"]);
    let tenants: Value = serde_json::from_str(&listed.stdout).unwrap();
    let b = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|tenant| tenant["name"] == "b")
        .unwrap();
    assert_eq!(
        (&b["users"], &b["groups"], &b["tokens"]),
        (&json!(1), &json!(0), &json!(1))
    );
    let c = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|tenant| tenant["name"] == "c")
        .unwrap();
    assert_eq!((&c["users"], &c["tokens"]), (&json!(1), &json!(0)));

    // Removal: never default; b only with --force while it holds anything.
    place.fails(
        &["tenant", "remove", "default", "--force"],
        "cannot be removed",
    );
    place.fails(&["tenant", "remove", "b"], "still holds");
    place.fails(&["tenant", "remove", "nope"], "does not exist");
    let removed = place.ok(&["tenant", "remove", "b", "--force"]);
    assert!(removed.stderr.contains("removed tenant 'b'"), "{removed}");
    let listed = place.ok(&["tenant", "list"]);
    assert!(
        !listed.stdout.lines().any(|line| line.starts_with("b ")),
        "{listed}"
    );
    place.fails(
        &["token", "list", "--tenant", "b"],
        "tenant 'b' does not exist",
    );
    // Its token stops working (within the token cache's life).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = api.send(Method::GET, "/Users", None).await.unwrap();
        if reply.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", reply.status);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A tenant with nothing goes without --force.
    place.ok(&["tenant", "create", "empty-1"]);
    place.ok(&["tenant", "remove", "empty-1"]);
}
