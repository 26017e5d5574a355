//! `muster offboard USERNAME` and `muster unlock USERNAME` through the
//! built binary, on the database a running `muster serve` uses: the user is
//! inactive and locked at once, the server's sync worker delivers it to a
//! SCIM target (a second Muster), the identity provider cannot reactivate
//! it until `muster unlock`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{create_token, run_muster, Api, Output, Server, USER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn at(data_dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.push("--data-dir".to_owned());
    all.push(data_dir.display().to_string());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_muster(&refs)
}

async fn target_user(api: &Api, user_name: &str) -> Option<Value> {
    let reply = api
        .get(&format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            user_name.replace('@', "%40")
        ))
        .await;
    reply.body["Resources"][0]
        .as_object()
        .cloned()
        .map(Value::Object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboard_and_unlock_on_the_database_of_a_running_server() {
    let target_data = tempfile::tempdir().unwrap();
    let target_token = create_token(target_data.path(), "hub", &[]);
    let target = Server::start(target_data.path());
    let target_api = target.api(Some(&target_token));

    let data = tempfile::tempdir().unwrap();
    let admin = create_token(data.path(), "ops", &["admin"]);
    let server = Server::start(data.path());
    let api = server.api(Some(&admin));
    let document = json!({"name": "second", "kind": "scim", "baseUrl": target.base_url,
    "auth": {"type": "bearer", "token": target_token},
    "mappings": [
        {"target": "userName", "expression": "userName"},
        {"target": "active", "expression": "active"},
    ]});
    let put = api
        .http
        .put(format!("{}/admin/v1/targets/second", server.root))
        .bearer_auth(&admin)
        .json(&document)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let created = api
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "alice@contoso.com", "active": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while target_user(&target_api, "alice@contoso.com")
        .await
        .is_none()
    {
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A backlog for the worker: 200 creates it delivers at 100 a second.
    for index in 0..200 {
        let reply = api
            .post(
                "/Users",
                &json!({"schemas": [USER], "userName": format!("new{index}@contoso.com")}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    // By userName, in any case.
    let started = Instant::now();
    let offboarded = at(
        data.path(),
        &[
            "offboard",
            "ALICE@contoso.com",
            "--reason",
            "terminated",
            "--json",
        ],
    );
    assert!(offboarded.status.success(), "{offboarded}");
    let answer: Value = serde_json::from_str(&offboarded.stdout).unwrap();
    assert_eq!(answer["id"], json!(id), "{offboarded}");
    assert_eq!(answer["active"], json!(false));
    assert_eq!(answer["locked"], json!(true));
    assert_eq!(answer["lock"]["reason"], "terminated");
    assert!(answer["lock"]["lockedBy"]
        .as_str()
        .unwrap()
        .starts_with("cli:"));
    let committed = started.elapsed();
    let user = api.get(&format!("/Users/{id}")).await;
    assert_eq!(user.body["active"], json!(false), "{}", user.body);
    // The running server's worker delivers it.
    loop {
        let at_target = target_user(&target_api, "alice@contoso.com").await.unwrap();
        if at_target["active"] == json!(false) {
            let backlog = target_api.get("/Users?count=0").await.body["totalResults"].clone();
            println!(
                "muster offboard: committed (process start to exit) {} ms; inactive at the \
                 target after {} ms, with the worker busy (target holds {backlog} of 201 users)",
                committed.as_millis(),
                started.elapsed().as_millis()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not delivered: {at_target}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The identity provider cannot reactivate it.
    let reactivate = json!({"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "True"}]});
    let reply = api
        .call(Method::PATCH, &format!("/Users/{id}"), Some(&reactivate))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["active"], json!(false), "{}", reply.body);

    // An export and import carries the lock over.
    let moved = tempfile::tempdir().unwrap();
    let file = moved.path().join("export.jsonl");
    let exported = at(data.path(), &["export", "-o", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{exported}");
    let copy = moved.path().join("copy");
    let imported = at(&copy, &["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported}");
    let copied = at(&copy, &["unlock", "alice@contoso.com", "--json"]);
    assert!(copied.status.success(), "{copied}");
    let copied: Value = serde_json::from_str(&copied.stdout).unwrap();
    assert_eq!(
        copied["changed"],
        json!(true),
        "the lock was not imported: {copied}"
    );
    assert_eq!(copied["active"], json!(false));

    let unlocked = at(data.path(), &["unlock", "alice@contoso.com"]);
    assert!(unlocked.status.success(), "{unlocked}");
    assert!(unlocked.stdout.contains("unlocked"), "{unlocked}");
    let reply = api
        .call(Method::PATCH, &format!("/Users/{id}"), Some(&reactivate))
        .await;
    assert_eq!(reply.body["active"], json!(true), "{}", reply.body);
    let again = at(data.path(), &["unlock", "alice@contoso.com"]);
    assert!(again.status.success(), "{again}");
    assert!(again.stdout.contains("was not locked"), "{again}");

    for args in [
        &["offboard", "nobody@contoso.com"][..],
        &["unlock", "nobody@contoso.com"][..],
    ] {
        let missing = at(data.path(), args);
        assert!(!missing.status.success(), "{missing}");
        assert!(missing.stderr.contains("no user"), "{missing}");
    }
}
