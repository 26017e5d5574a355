//! Issue 11, point 4: killing Muster (SIGKILL) during a burst of 1,000
//! changes loses none and applies none twice in a way the target can see.
//! The target is a second `muster serve`; every acknowledged user must be
//! there exactly once, created once and never rewritten (version 1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_token, run_muster, version_of, Api, Server, USER};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Users in the whole burst.
const BURST: u64 = 1000;

/// Acknowledged users before the kill.
const KILL_AFTER: u64 = 350;

/// Concurrent writers.
const WRITERS: u64 = 6;

/// Creates users until `stop` or until `BURST` were acknowledged in all;
/// records each acknowledged userName. Returns on the first transport error
/// (the server was killed).
async fn burst(
    api: Api,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let n = next.fetch_add(1, Ordering::SeqCst);
        if n >= BURST {
            return;
        }
        let user_name = format!("agent{n:04}@contoso.com");
        let body = json!({"schemas": [USER], "userName": user_name, "externalId": format!("hr-{n}"), "active": true});
        match api.send(Method::POST, "/Users", Some(&body)).await {
            Ok(reply) if reply.status == StatusCode::CREATED => {
                acked.lock().unwrap().push(user_name);
            }
            Ok(reply) => panic!("create {user_name}: {} {}", reply.status, reply.body),
            Err(_) => return,
        }
    }
}

async fn run_burst(
    api: &Api,
    next: &Arc<AtomicU64>,
    acked: &Arc<Mutex<Vec<String>>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|_| {
            tokio::spawn(burst(
                api.clone(),
                Arc::clone(next),
                Arc::clone(acked),
                Arc::clone(stop),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_burst_loses_no_change_and_repeats_none() {
    let target_dir = tempfile::tempdir().unwrap();
    let target_token = create_token(
        target_dir.path(),
        "muster-source",
        &["scim.read", "scim.write"],
    );
    let target_reader = create_token(target_dir.path(), "checker", &["scim.read"]);
    let target = Server::start(target_dir.path());

    let source_dir = tempfile::tempdir().unwrap();
    let source_token = create_token(source_dir.path(), "entra", &["scim.read", "scim.write"]);
    let document = json!({
        "name": "downstream",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target_token},
        "rateLimit": {"requestsPerSecond": 5000, "burst": 500}
    });
    let file = source_dir.path().join("target.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let applied = run_muster(&[
        "target",
        "apply",
        "--data-dir",
        &source_dir.path().display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(applied.status.success(), "{applied}");

    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));

    // First half of the burst, then SIGKILL wherever the engine is.
    let source = Server::start(source_dir.path());
    let api = source.api(Some(&source_token));
    let writers = run_burst(&api, &next, &acked, &stop).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (acked.lock().unwrap().len() as u64) < KILL_AFTER {
        assert!(Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    source.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    // Users whose create was cut short may or may not exist: give them
    // their numbers back only if acknowledged (never re-sent).
    let before_kill = acked.lock().unwrap().len();

    // Restart on the same data directory and finish the burst.
    let source = Server::start(source_dir.path());
    let api = source.api(Some(&source_token));
    for writer in run_burst(&api, &next, &acked, &stop).await {
        writer.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before_kill,
        "the burst went on after the restart"
    );

    // Every acknowledged user arrives at the target, once, created once.
    let checker = target.api(Some(&target_reader));
    let deadline = Instant::now() + Duration::from_secs(180);
    let at_target = loop {
        let users = checker.list_all("Users").await;
        let by_name: HashMap<String, serde_json::Value> = users
            .iter()
            .map(|user| {
                (
                    user["userName"].as_str().unwrap_or_default().to_owned(),
                    user.clone(),
                )
            })
            .collect();
        assert_eq!(by_name.len(), users.len(), "a user arrived twice");
        if acked.iter().all(|name| by_name.contains_key(name)) {
            break by_name;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged users at the target",
            acked
                .iter()
                .filter(|name| by_name.contains_key(*name))
                .count(),
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for name in &acked {
        let user = &at_target[name];
        assert_eq!(
            version_of(user),
            1,
            "{name} was written more than once: {user}"
        );
    }
    // Nothing but what Muster committed: at most the users attempted.
    assert!(at_target.len() as u64 <= BURST);
    drop(source);
    drop(target);
}
