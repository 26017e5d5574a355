//! Issue 17, point 4: `muster backup` copies a serving database under
//! write load, and the copy, restored into a new data directory, holds every
//! write acknowledged before the backup began; `muster restore` refuses a
//! data directory a `muster serve` runs on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_token, run_muster, user_body, Api, Server};
use reqwest::StatusCode;

/// Concurrent writers.
const WRITERS: usize = 4;

/// Users acknowledged before the backup starts (at least).
const BEFORE_BACKUP: usize = 300;

/// Users created by id, as acknowledged with `201 Created`.
type Acknowledged = Arc<Mutex<HashMap<String, String>>>;

/// POSTs users until `stop`, recording each acknowledged one; any answer
/// but `201` fails the test.
async fn write_until(api: Api, prefix: String, acknowledged: Acknowledged, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let user_name = format!("{prefix}-{n}@backup.test");
        n += 1;
        let reply = api.post("/Users", &user_body(&user_name, 0)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = reply.body["id"].as_str().expect("an id").to_owned();
        acknowledged.lock().unwrap().insert(id, user_name);
    }
}

/// Waits until `count()` reaches `at_least`, for at most a minute.
async fn wait_for_count(at_least: usize, count: impl Fn() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < at_least {
        assert!(
            Instant::now() < deadline,
            "the load did not reach {at_least} writes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `muster ARGS` in a blocking task, so the writers keep running.
async fn muster_async(args: Vec<String>) -> common::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_muster(&args)
    })
    .await
    .unwrap()
}

fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it() {
    let source = tempfile::tempdir().unwrap();
    let token = create_token(source.path(), "load", &["scim.write"]);
    let server = Server::start(source.path());
    let api = server.api(Some(&token));
    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_until(
                api.clone(),
                format!("w{writer}"),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            ))
        })
        .collect();
    wait_for_count(BEFORE_BACKUP, || acknowledged.lock().unwrap().len()).await;

    let before_backup = acknowledged.lock().unwrap().clone();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("muster-backup.db");
    let backup = muster_async(vec![
        "backup".into(),
        "--data-dir".into(),
        text(source.path()),
        text(&file),
    ])
    .await;
    assert!(backup.status.success(), "{backup}");
    assert!(backup.stdout.contains("backed up"), "{backup}");
    assert!(backup.stderr.contains("secrets.key"), "{backup}");
    // The load went on during and after the backup.
    wait_for_count(before_backup.len() + 50, || {
        acknowledged.lock().unwrap().len()
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("a writer failed");
    }
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");

    let restored_dir = tempfile::tempdir().unwrap();
    let restore = run_muster(&[
        "restore",
        &text(&file),
        "--data-dir",
        &text(restored_dir.path()),
    ]);
    assert!(restore.status.success(), "{restore}");
    assert!(restore.stdout.contains("restored"), "{restore}");

    let server = Server::start(restored_dir.path());
    let users = server.api(Some(&token)).list_all("Users").await;
    let restored: HashMap<&str, &str> = users
        .iter()
        .map(|user| {
            (
                user["id"].as_str().expect("an id"),
                user["userName"].as_str().expect("a userName"),
            )
        })
        .collect();
    for (id, user_name) in &before_backup {
        assert_eq!(
            restored.get(id.as_str()),
            Some(&user_name.as_str()),
            "user {user_name} ({id}) was acknowledged before the backup began but is not restored"
        );
    }
    let all = acknowledged.lock().unwrap().len();
    assert!(
        restored.len() >= before_backup.len() && restored.len() <= all,
        "restored {} users; {} acknowledged before the backup, {all} in all",
        restored.len(),
        before_backup.len()
    );

    // A restore onto the directory this server runs on is refused, and
    // changes nothing.
    let refused = run_muster(&[
        "restore",
        &text(&file),
        "--data-dir",
        &text(restored_dir.path()),
    ]);
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused
            .stderr
            .contains("refusing to restore over a live database"),
        "{refused}"
    );
    let after = server.api(Some(&token)).list_all("Users").await;
    assert_eq!(after.len(), users.len());

    // Stopped, the directory can be restored again; what it held is kept.
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let again = run_muster(&[
        "restore",
        &text(&file),
        "--data-dir",
        &text(restored_dir.path()),
    ]);
    assert!(again.status.success(), "{again}");
    let kept = again
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("the database it replaced is kept as "))
        .unwrap_or_else(|| panic!("no kept-aside file named: {again}"));
    assert!(Path::new(kept).is_file(), "{kept} is not there");
}

#[test]
fn backup_and_restore_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let check = |args: &[&str], expected: &str| {
        let output = run_muster(args);
        assert!(!output.status.success(), "{output}");
        assert!(
            output.stderr.contains(expected),
            "expected '{expected}': {output}"
        );
    };
    // PostgreSQL: pg_dump and pg_restore, named.
    let url = "postgres://muster:secret@db.example.com/muster";
    check(
        &["backup", "--database", url, &text(&file)],
        "pg_dump --format=custom",
    );
    check(&["restore", &text(&file), "--database", url], "pg_restore");
    for args in [
        ["backup", "--database", url, &text(&file)],
        ["restore", &text(&file), "--database", url],
    ] {
        assert!(
            !run_muster(&args).stderr.contains("secret"),
            "the password is never printed"
        );
    }
    // No database to back up.
    check(
        &[
            "backup",
            "--data-dir",
            &text(&dir.path().join("empty")),
            &text(&file),
        ],
        "no Muster database",
    );
    // Not a Muster database: the data directory is left as it was.
    std::fs::write(&file, "not a database").unwrap();
    let target = dir.path().join("target");
    create_token(&target, "stays", &[]);
    check(
        &["restore", &text(&file), "--data-dir", &text(&target)],
        "not a readable SQLite database",
    );
    let tokens = run_muster(&["token", "list", "--data-dir", &text(&target)]);
    assert!(tokens.stdout.starts_with("stays\t"), "{tokens}");
}
