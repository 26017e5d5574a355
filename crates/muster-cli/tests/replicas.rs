//! Two `muster serve` processes on one PostgreSQL database (two replicas
//! behind a load balancer), raced against each other: a userName POSTed
//! through both at once is created once; PATCHes with `If-Match` through
//! both never lose an update; a schema applied through one is used through
//! the other at once; and the sync engine running in both delivers each
//! change once.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (see `muster_testkit::TestDatabase`);
//! fails rather than skips without it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::time::{Duration, Instant};

use common::{muster, run, Api, Server, PATCH_OP, USER};
use muster_testkit::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The key both replicas seal target secrets with (base64 of 32 bytes).
const SECRETS_KEY: &str = "bXVzdGVyLXJlcGxpY2FzLXRlc3Qta2V5LTMyLWJ5dGU=";

/// Two replicas on one fresh database, and an admin token valid on both.
struct Replicas {
    first: Server,
    second: Server,
    token: String,
    _database: TestDatabase,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Replicas {
    async fn start() -> Replicas {
        let database = TestDatabase::create().await;
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut command = muster();
        command
            .args(["token", "create", "--name", "admin", "--database"])
            .arg(&database.url)
            .arg("--data-dir")
            .arg(dirs.0.path())
            .args([
                "--scope",
                "scim.read",
                "--scope",
                "scim.write",
                "--scope",
                "admin",
            ]);
        let output = run(&mut command);
        assert!(output.status.success(), "{output}");
        let token = output.stdout.trim().to_owned();
        let replica = |dir: &std::path::Path| {
            let url = database.url.clone();
            let dir = dir.to_owned();
            Server::spawn(move |command| {
                command
                    .args(["serve", "--listen", "127.0.0.1:0", "--database"])
                    .arg(url)
                    .arg("--data-dir")
                    .arg(dir)
                    .env("MUSTER_SECRETS_KEY", SECRETS_KEY);
            })
        };
        let first = replica(dirs.0.path());
        let second = replica(dirs.1.path());
        Replicas {
            first,
            second,
            token,
            _database: database,
            _dirs: dirs,
        }
    }

    fn apis(&self) -> (Api, Api) {
        (
            self.first.api(Some(&self.token)),
            self.second.api(Some(&self.token)),
        )
    }
}

/// `PATCH /Users/{id}` replacing `title`, with `If-Match` when given.
async fn patch_title(api: &Api, id: &str, title: &str, if_match: Option<&str>) -> common::Reply {
    let mut request = api
        .http
        .patch(format!("{}/Users/{id}", api.base_url))
        .bearer_auth(api.token.as_deref().unwrap())
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": [PATCH_OP],
                   "Operations": [{"op": "replace", "path": "title", "value": title}]})
            .to_string(),
        );
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    let response = request.send().await.unwrap();
    common::Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap_or(Value::Null),
    }
}

fn user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_name_posted_through_both_replicas_is_created_once() {
    let replicas = Replicas::start().await;
    let (first, second) = replicas.apis();
    for round in 0..20 {
        let name = format!("agent{round}@contoso.com");
        // The same name, spelled in another case, through the other replica.
        let (lower, upper) = (user(&name), user(&name.to_uppercase()));
        let (a, b) = tokio::join!(first.post("/Users", &lower), second.post("/Users", &upper));
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 409],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let conflict = if a.status == StatusCode::CONFLICT {
            &a
        } else {
            &b
        };
        assert_eq!(conflict.body["scimType"], "uniqueness", "{}", conflict.body);
    }
    let users = first.list_all("Users").await;
    assert_eq!(users.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_match_patches_through_both_replicas_never_lose_an_update() {
    let replicas = Replicas::start().await;
    let (first, second) = replicas.apis();
    let created = first.post("/Users", &user("race@contoso.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // The same version through both at once: exactly one wins.
    for round in 0..20 {
        let current = second.get(&format!("/Users/{id}")).await;
        let etag = current.header("etag").unwrap().to_owned();
        let (one, two) = (format!("first {round}"), format!("second {round}"));
        let (a, b) = tokio::join!(
            patch_title(&first, &id, &one, Some(&etag)),
            patch_title(&second, &id, &two, Some(&etag)),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 412],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let winner = if a.status == StatusCode::OK { &a } else { &b };
        let read = first.get(&format!("/Users/{id}")).await;
        assert_eq!(read.body["title"], winner.body["title"], "round {round}");
    }

    // Read, add one, write with If-Match, retry on 412: every increment counts.
    let increments = 25;
    let count = |api: Api, id: String| async move {
        for _ in 0..increments {
            loop {
                let current = api.get(&format!("/Users/{id}")).await;
                let etag = current.header("etag").unwrap().to_owned();
                let value: u64 = current.body["title"]
                    .as_str()
                    .and_then(|title| title.strip_prefix("count "))
                    .and_then(|number| number.parse().ok())
                    .unwrap_or(0);
                let written =
                    patch_title(&api, &id, &format!("count {}", value + 1), Some(&etag)).await;
                match written.status {
                    StatusCode::OK => break,
                    StatusCode::PRECONDITION_FAILED => continue,
                    other => panic!("{other}: {}", written.body),
                }
            }
        }
    };
    tokio::join!(
        count(first.clone(), id.clone()),
        count(second.clone(), id.clone())
    );
    let read = second.get(&format!("/Users/{id}")).await;
    assert_eq!(read.body["title"], format!("count {}", 2 * increments));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_applied_through_one_replica_is_used_through_the_other_at_once() {
    let replicas = Replicas::start().await;
    let (first, second) = replicas.apis();
    // Both replicas have served (and cached) the schemas before the change.
    for api in [&first, &second] {
        let answer = api
            .post("/Users", &user(&format!("{}@x", api.root.len())))
            .await;
        assert!(answer.status.is_success() || answer.status == StatusCode::CONFLICT);
    }
    let urn = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";
    let schema = json!({
        "id": urn, "name": "Contoso",
        "attributes": [{"name": "region", "type": "string", "multiValued": false,
                        "required": false, "caseExact": false, "mutability": "readWrite",
                        "returned": "default", "uniqueness": "none"}]
    });
    let put = first
        .http
        .put(format!("{}/admin/v1/schemas/{urn}", first.root))
        .bearer_auth(&replicas.token)
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    // At once through the other replica, with no pause in between.
    let body = json!({"schemas": [USER, urn], "userName": "emea@contoso.com",
                      urn: {"region": "EMEA"}});
    let created = second.post("/Users", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body[urn]["region"], "EMEA");
    let found = first
        .get("/Users?filter=urn:ietf:params:scim:schemas:extension:contoso:2.0:User:region%20eq%20%22emea%22")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
}

/// The `muster_sync_deliveries_total` lines of a target on each replica:
/// (replica root, outcome, count).
async fn deliveries(apis: &[&Api], target: &str) -> Vec<(String, String, u64)> {
    let mut counted = Vec::new();
    for api in apis {
        let text = api
            .http
            .get(format!("{}/metrics", api.root))
            .bearer_auth(api.token.as_deref().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in text.lines().filter(|line| {
            line.starts_with("muster_sync_deliveries_total")
                && line.contains(&format!("target=\"{target}\""))
        }) {
            let outcome = line
                .split("outcome=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            counted.push((
                api.root.clone(),
                outcome.to_owned(),
                value.map_or(0, |value| value as u64),
            ));
        }
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sync_engines_of_both_replicas_deliver_each_change_once() {
    let replicas = Replicas::start().await;
    let (first, second) = replicas.apis();
    // The target: another Muster, on SQLite.
    let target_dir = tempfile::tempdir().unwrap();
    let target_token = common::create_token(target_dir.path(), "hub", &["scim.read", "scim.write"]);
    let target = Server::start(target_dir.path());
    let target_api = target.api(Some(&target_token));
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target_token},
        "scope": {"users": "active eq true", "groups": "all"},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "active", "expression": "active"},
            {"target": "title", "expression": "title"},
        ],
    });
    let put = first
        .http
        .put(format!("{}/admin/v1/targets/downstream", first.root))
        .bearer_auth(&replicas.token)
        .json(&document)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());

    let count = 30;
    for index in 0..count {
        let api = if index % 2 == 0 { &first } else { &second };
        let created = api
            .post("/Users", &user(&format!("agent{index}@contoso.com")))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = target_api.list_all("Users").await.len();
        if delivered == count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {count} users reached the target; logs:\n{}\n{}",
            replicas.first.log(),
            replicas.second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a second deliverer, if there were one, catch up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Created once each, by one replica; the other delivered nothing.
    let counted = deliveries(&[&first, &second], "downstream").await;
    let created: u64 = counted
        .iter()
        .filter(|(_, outcome, _)| outcome == "created")
        .map(|(_, _, value)| value)
        .sum();
    assert_eq!(created, u64::try_from(count).unwrap(), "{counted:#?}");
    let mut deliverers: Vec<&str> = counted
        .iter()
        .filter(|(_, _, value)| *value > 0)
        .map(|(root, _, _)| root.as_str())
        .collect();
    deliverers.dedup();
    assert_eq!(deliverers.len(), 1, "{counted:#?}");
}

/// The database URL may hold a password: `serve` names the database and
/// its host, and neither its output nor its log holds the password.
#[tokio::test]
async fn serve_on_postgres_never_prints_the_password_of_its_url() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let with_password = database.url.replacen(
        "postgres://postgres@",
        "postgres://postgres:pw-8c1e-secret@",
        1,
    );
    assert_ne!(with_password, database.url, "{}", database.url);
    let url = with_password.clone();
    let data_dir = dir.path().to_owned();
    let server = Server::spawn(move |command| {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("MUSTER_DATABASE_URL", url)
            .env("MUSTER_LOG", "debug");
    });
    let mut printed = vec![server.first_line.clone()];
    tokio::time::sleep(Duration::from_millis(300)).await;
    printed.extend(server.more_stdout());
    let printed = printed.join("\n");
    assert!(
        printed.contains("Database: PostgreSQL, database muster_http_"),
        "{printed}"
    );
    let log = server.log();
    for text in [&printed, &log] {
        assert!(!text.contains("pw-8c1e-secret"), "{text}");
    }
}
