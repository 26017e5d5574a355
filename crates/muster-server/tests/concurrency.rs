//! Concurrent writers over HTTP against a real server on a real SQLite file
//! (issue 9, point 8): clients racing read-modify-write cycles on one
//! attribute of one user, each guarded by `If-Match`, lose no update. Every
//! write that succeeded got its own version, the versions are consecutive,
//! the final resource holds every value written, and the change log holds
//! each successful write's value at its version.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use muster_store::{ChangeKind, TenantId};
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Concurrent clients.
const TASKS: usize = 6;
/// Successful writes each client makes.
const WRITES: usize = 4;
/// Attempts a client may make before the test calls it starvation.
const MAX_ATTEMPTS: usize = 500;

/// The version a weak ETag names (`W/"7"` is 7).
fn version(etag: &str) -> u64 {
    etag.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("not a Muster ETag: {etag}"))
}

async fn read(server: &TestServer, id: &str) -> (String, Value) {
    let reply = server.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    (reply.header("etag").unwrap().to_owned(), reply.body)
}

/// Sends `method /Users/{id}` with `If-Match: etag`.
async fn conditional(
    server: &TestServer,
    method: Method,
    id: &str,
    etag: &str,
    body: Value,
) -> Reply {
    server
        .send(
            server
                .http
                .request(method, format!("{}/Users/{id}", server.base_url))
                .bearer_auth(&server.token)
                .header("if-match", etag),
            Some(body),
        )
        .await
}

/// What one client saw: the version each of its successful writes got,
/// with the value it wrote, and how many writes were refused with `412`.
#[derive(Default)]
struct Outcome {
    written: Vec<(u64, String)>,
    refused: usize,
}

/// Waits for every client, a minute at most (a client that failed before
/// the barrier would leave the others waiting).
async fn join(tasks: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for task in tasks {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), task)
            .await
            .expect("a client did not finish within a minute");
        outcomes.push(outcome.unwrap());
    }
    outcomes
}

/// The Update change records of `id`, by version.
async fn updates(server: &TestServer, id: &str) -> BTreeMap<u64, Value> {
    let changes = server
        .store
        .changes(&TenantId::default_tenant(), 0, 1_000_000)
        .await
        .unwrap();
    let mut by_version = BTreeMap::new();
    for change in changes {
        if change.kind == ChangeKind::Update && change.resource_id.0 == id {
            let previous = by_version.insert(change.version, change.payload.to_json());
            assert!(
                previous.is_none(),
                "two changes at version {}",
                change.version
            );
        }
    }
    by_version
}

/// Checks what every client saw against the server's final state: one
/// version per successful write, consecutive from `initial + 1`; at least
/// `TASKS - 1` refusals (the first round races on one ETag).
fn check_versions(outcomes: &[Outcome], initial: u64, last: u64) -> BTreeMap<u64, String> {
    let mut by_version = BTreeMap::new();
    for outcome in outcomes {
        for (version, value) in &outcome.written {
            let previous = by_version.insert(*version, value.clone());
            assert!(
                previous.is_none(),
                "two successful writes got version {version}: {previous:?} and {value}"
            );
        }
    }
    let successes = TASKS * WRITES;
    assert_eq!(by_version.len(), successes);
    let expected: Vec<u64> = (initial + 1..=initial + successes as u64).collect();
    assert_eq!(
        by_version.keys().copied().collect::<Vec<_>>(),
        expected,
        "the successful writes' versions are not consecutive"
    );
    assert_eq!(last, initial + successes as u64, "the final version");
    let refused: usize = outcomes.iter().map(|o| o.refused).sum();
    assert!(
        refused >= TASKS - 1,
        "only {refused} writes were refused: the first round did not race"
    );
    by_version
}

#[tokio::test]
async fn racing_if_match_puts_of_one_attribute_lose_no_update() {
    let server = Arc::new(TestServer::start().await);
    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "contended@x.test",
                   "emails": [{"value": "seed@x.test", "type": "work"}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let initial = version(created.header("etag").unwrap());

    // Every client reads the same version first, then all write: exactly
    // one of that round can win.
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (server, id, barrier) = (server.clone(), id.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut first_round = true;
            for write in 0..WRITES {
                let token = format!("t{task}-w{write}@x.test");
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts <= MAX_ATTEMPTS, "client {task} starved");
                    let (etag, mut body) = read(&server, &id).await;
                    if first_round {
                        barrier.wait().await;
                        first_round = false;
                    }
                    // Read-modify-write: append this client's value to what
                    // was read, and PUT it all back if nothing changed since.
                    let object = body.as_object_mut().unwrap();
                    object.remove("meta");
                    object.remove("groups");
                    object["emails"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"value": token, "type": "other"}));
                    let reply = conditional(&server, Method::PUT, &id, &etag, body).await;
                    match reply.status {
                        StatusCode::OK => {
                            let got = version(reply.header("etag").unwrap());
                            assert_eq!(got, version(&etag) + 1, "{}", reply.body);
                            outcome.written.push((got, token.clone()));
                            break;
                        }
                        StatusCode::PRECONDITION_FAILED => outcome.refused += 1,
                        other => panic!("client {task}: PUT answered {other}: {}", reply.body),
                    }
                }
            }
            outcome
        }));
    }
    let outcomes = join(tasks).await;

    let (etag, user) = read(&server, &id).await;
    let written = check_versions(&outcomes, initial, version(&etag));
    let mut emails: Vec<String> = user["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|email| email["value"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    let mut expected: Vec<String> = written.values().cloned().collect();
    expected.push("seed@x.test".to_owned());
    expected.sort();
    assert_eq!(emails, expected, "an appended value was lost");

    // The change log holds each successful write at its version, with the
    // values that write saw: every value of an earlier version, and its own.
    let changes = updates(&server, &id).await;
    assert_eq!(
        changes.keys().copied().collect::<Vec<_>>(),
        written.keys().copied().collect::<Vec<_>>()
    );
    for (version, payload) in &changes {
        let text = payload["resource"]["emails"].to_string();
        for (earlier, value) in written.range(..=version) {
            assert!(
                text.contains(value.as_str()),
                "the change at version {version} lacks {value} (written at {earlier}): {text}"
            );
        }
        for (later, value) in written.range(version + 1..) {
            assert!(
                !text.contains(value.as_str()),
                "the change at version {version} holds {value}, written later at {later}"
            );
        }
    }
}

#[tokio::test]
async fn racing_if_match_patches_of_one_attribute_lose_no_update() {
    let server = Arc::new(TestServer::start().await);
    let created = server
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "patched@x.test", "displayName": "start"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let initial = version(created.header("etag").unwrap());

    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (server, id, barrier) = (server.clone(), id.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut first_round = true;
            for write in 0..WRITES {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts <= MAX_ATTEMPTS, "client {task} starved");
                    let (etag, body) = read(&server, &id).await;
                    if first_round {
                        barrier.wait().await;
                        first_round = false;
                    }
                    // A counter: the value read, plus this client's mark.
                    let seen = body["displayName"].as_str().unwrap().to_owned();
                    let value = format!("{seen}|t{task}w{write}");
                    let reply = conditional(
                        &server,
                        Method::PATCH,
                        &id,
                        &etag,
                        json!({"schemas": [PATCH_OP], "Operations": [
                            {"op": "replace", "path": "displayName", "value": value}]}),
                    )
                    .await;
                    match reply.status {
                        StatusCode::OK => {
                            let got = version(reply.header("etag").unwrap());
                            assert_eq!(got, version(&etag) + 1, "{}", reply.body);
                            assert_eq!(reply.body["displayName"], value.as_str());
                            outcome.written.push((got, value));
                            break;
                        }
                        StatusCode::PRECONDITION_FAILED => outcome.refused += 1,
                        other => panic!("client {task}: PATCH answered {other}: {}", reply.body),
                    }
                }
            }
            outcome
        }));
    }
    let outcomes = join(tasks).await;

    let (etag, user) = read(&server, &id).await;
    let written = check_versions(&outcomes, initial, version(&etag));
    // Each write extended the value the previous version held: the chain
    // has every mark, once, in version order.
    let final_value = user["displayName"].as_str().unwrap();
    assert_eq!(
        Some(final_value),
        written.values().last().map(String::as_str)
    );
    let marks: Vec<&str> = final_value.split('|').collect();
    assert_eq!(marks.len(), 1 + TASKS * WRITES, "{final_value}");
    let mut previous = "start".to_owned();
    for value in written.values() {
        assert!(
            value.starts_with(&format!("{previous}|")),
            "a write did not build on the version before it: {previous} -> {value}"
        );
        previous.clone_from(value);
    }

    // The change log: one update per successful write, with its value.
    let changes = updates(&server, &id).await;
    assert_eq!(changes.len(), written.len());
    for (version, value) in &written {
        let payload = changes
            .get(version)
            .unwrap_or_else(|| panic!("no change at version {version}"));
        assert_eq!(
            payload["resource"]["displayName"],
            value.as_str(),
            "the change at version {version}"
        );
    }
}
