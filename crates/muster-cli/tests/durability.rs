//! Issue 4, point 6: killing `muster serve` at any moment loses no
//! acknowledged write and never leaves a half-applied PATCH or Bulk
//! operation; SIGTERM drains and exits 0.
//!
//! Each test runs real load against the real binary, records every 2xx in a
//! ledger, stops the process, restarts it on the same data directory and
//! checks the ledger against what the server then returns.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    create_token, patch_body, step_of, user_body, version_of, wait_for, write_load, Ack, Api,
    Ledger, Server, BULK_REQUEST, GROUP,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Concurrent writers per round.
const WRITERS: usize = 6;

/// Starts `WRITERS` load tasks against `api`.
fn start_load(
    api: &Api,
    ledger: &Arc<Ledger>,
    prefix: &str,
) -> Vec<tokio::task::JoinHandle<Result<u64, String>>> {
    (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_load(
                api.clone(),
                ledger.clone(),
                format!("{prefix}-w{writer}"),
            ))
        })
        .collect()
}

/// Waits for every load task; each must have stopped on a transport error,
/// never on an error status.
async fn finish_load(tasks: Vec<tokio::task::JoinHandle<Result<u64, String>>>) -> u64 {
    let mut created = 0;
    for task in tasks {
        match task.await.expect("load task panicked") {
            Ok(count) => created += count,
            Err(error) => panic!("the server answered a write with an error: {error}"),
        }
    }
    created
}

/// After a restart: the ledger holds, and the store still takes writes.
async fn verify_after_restart(server: &Server, token: &str, ledger: &Ledger) -> usize {
    let api = server.api(Some(token));
    let users = api.list_all("Users").await;
    ledger.verify(&users);
    let probe = api
        .post(
            "/Users",
            &user_body(&format!("probe-{}@durable.test", users.len()), 0),
        )
        .await;
    assert_eq!(probe.status, StatusCode::CREATED, "{probe:?}");
    users.len() + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_concurrent_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "load", &["scim.write"]);
    let ledger = Arc::new(Ledger::default());
    let mut server = Server::start(dir.path());
    // Kill after different amounts of work, so the kill lands at different
    // points of the POST / PATCH / group-commit cycle.
    for (round, kill_after) in [25usize, 150, 60, 400, 5].into_iter().enumerate() {
        let api = server.api(Some(&token));
        let before = ledger.count();
        let tasks = start_load(&api, &ledger, &format!("r{round}"));
        wait_for(
            "acknowledged writes before the kill",
            Duration::from_secs(20),
            || ledger.count() >= before + kill_after,
        )
        .await;
        server.kill();
        let created = finish_load(tasks).await;
        assert!(created > 0, "round {round} created nothing");

        server = Server::start(dir.path());
        let stored = verify_after_restart(&server, &token, &ledger).await;
        assert!(stored >= ledger.users(), "round {round}");
    }
}

/// `count` users with a PATCH each, and a group of every `group_size` of
/// them, all in one bulk request; names start with `prefix`.
fn bulk_request(prefix: &str, count: usize, group_size: usize) -> Value {
    let mut operations = Vec::new();
    for n in 0..count {
        operations.push(
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"),
            "data": user_body(&format!("{prefix}-u{n}@bulk.test"), 0)}),
        );
        operations.push(
            json!({"method": "PATCH", "path": format!("/Users/bulkId:u{n}"),
            "data": patch_body(1)}),
        );
        if (n + 1) % group_size == 0 {
            let members: Vec<Value> = (n + 1 - group_size..=n)
                .map(|member| json!({"value": format!("bulkId:u{member}"), "type": "User"}))
                .collect();
            operations.push(json!({"method": "POST", "path": "/Groups",
                "bulkId": format!("g{n}"),
                "data": {"schemas": [GROUP], "displayName": format!("{prefix}-group-{n}"),
                         "members": members}}));
        }
    }
    json!({"schemas": [BULK_REQUEST], "Operations": operations})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_bulk_leaves_every_operation_whole() {
    const GROUP_SIZE: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "bulk", &["scim.write"]);
    let server = Server::start(dir.path());
    let api = server.api(Some(&token));
    let ledger = Ledger::default();

    // An acknowledged bulk request: every operation it reports must survive.
    let done = api
        .post("/Bulk", &bulk_request("done", 2 * GROUP_SIZE, GROUP_SIZE))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut acknowledged_groups = Vec::new();
    for operation in done.body["Operations"].as_array().unwrap() {
        let status = operation["status"].as_str().unwrap();
        assert!(status.starts_with('2'), "{operation}");
        let bulk_id = operation["bulkId"].as_str().unwrap_or_default();
        let location = operation["location"].as_str().unwrap();
        let id = location.rsplit('/').next().unwrap().to_owned();
        let version = common::parse_etag(operation["version"].as_str().unwrap()).unwrap();
        if location.contains("/Groups/") {
            acknowledged_groups.push(id);
            continue;
        }
        let step = match operation["method"].as_str().unwrap() {
            "POST" => {
                ids.insert(bulk_id.to_owned(), id.clone());
                0
            }
            "PATCH" => 1,
            other => panic!("unexpected method {other}"),
        };
        let n = if step == 0 {
            bulk_id.trim_start_matches('u').to_owned()
        } else {
            ids.iter()
                .find(|(_, known)| **known == id)
                .map(|(bulk_id, _)| bulk_id.trim_start_matches('u').to_owned())
                .unwrap()
        };
        ledger.record(
            &id,
            Ack {
                user_name: format!("done-u{n}@bulk.test"),
                step,
                version,
            },
        );
    }
    assert_eq!(ledger.users(), 2 * GROUP_SIZE);
    assert_eq!(acknowledged_groups.len(), 2);

    // A large bulk request, killed once part of it is committed.
    let users = 400;
    let request = bulk_request("cut", users, GROUP_SIZE);
    let bulk = {
        let api = api.clone();
        tokio::spawn(async move { api.send(Method::POST, "/Bulk", Some(&request)).await })
    };
    let progress = "/Users?filter=userName%20sw%20%22cut-%22&count=0";
    loop {
        let reply = api.get(progress).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        if reply.body["totalResults"].as_u64().unwrap() >= 2 * GROUP_SIZE as u64 + 5 {
            break;
        }
        assert!(
            !bulk.is_finished(),
            "the bulk request ended before the kill"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let answer = bulk.await.unwrap();
    assert!(
        answer.is_err(),
        "the bulk request was answered before the kill: {answer:?}"
    );

    let server = Server::start(dir.path());
    let api = server.api(Some(&token));
    let all_users = api.list_all("Users").await;
    ledger.verify(&all_users);
    let cut: Vec<&Value> = all_users
        .iter()
        .filter(|user| user["userName"].as_str().unwrap().starts_with("cut-"))
        .collect();
    assert!(
        cut.len() > 2 * GROUP_SIZE && cut.len() < users,
        "the kill did not land mid-request: {} of {users} users",
        cut.len()
    );
    for user in &cut {
        let step = step_of(user);
        assert!(step <= 1, "{user}");
    }
    let user_ids: std::collections::HashSet<&str> = all_users
        .iter()
        .map(|user| user["id"].as_str().unwrap())
        .collect();

    // Each group was created whole, with all its members, or not at all.
    let groups = api.list_all("Groups").await;
    for id in &acknowledged_groups {
        assert!(
            groups.iter().any(|group| group["id"] == id.as_str()),
            "acknowledged group {id} lost"
        );
    }
    let cut_groups: Vec<&Value> = groups
        .iter()
        .filter(|group| {
            group["displayName"]
                .as_str()
                .unwrap()
                .starts_with("cut-group-")
        })
        .collect();
    assert!(
        !cut_groups.is_empty(),
        "no group of the cut request committed"
    );
    for group in groups.iter() {
        let members = group["members"].as_array().cloned().unwrap_or_default();
        assert_eq!(members.len(), GROUP_SIZE, "half-created group: {group}");
        for member in &members {
            assert!(
                user_ids.contains(member["value"].as_str().unwrap()),
                "group member missing: {member} in {group}"
            );
        }
        assert!(version_of(group) >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_writes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "term", &["scim.write"]);
    let ledger = Arc::new(Ledger::default());
    let server = Server::start(dir.path());
    let api = server.api(Some(&token));
    let tasks = start_load(&api, &ledger, "term");
    wait_for(
        "acknowledged writes before SIGTERM",
        Duration::from_secs(20),
        || ledger.count() >= 30,
    )
    .await;
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    let created = finish_load(tasks).await;
    assert!(created > 0);

    let server = Server::start(dir.path());
    verify_after_restart(&server, &token, &ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_promptly_with_idle_connections_open() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "idle", &["scim.write"]);
    let server = Server::start(dir.path());
    let api = server.api(Some(&token));
    // An identity provider keeps its connection alive between calls...
    let created = api.post("/Users", &user_body("idle@durable.test", 0)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    // ...and a client may connect without sending anything yet.
    let silent = std::net::TcpStream::connect(server.root.trim_start_matches("http://")).unwrap();
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "SIGTERM took {:?} with idle connections open",
        started.elapsed()
    );
    drop(silent);
    drop(api);

    let server = Server::start(dir.path());
    let found = server
        .api(Some(&token))
        .get("/Users?filter=userName%20eq%20%22idle@durable.test%22")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{found:?}");
}
