//! `muster serve` as a child process: the printed base URL, `--listen` /
//! `--data-dir` and their environment variables, health checks, bearer
//! tokens minted by the CLI, revocation, and no secrets in the log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::time::{Duration, Instant};

use common::{contains_bytes, create_token, files_under, muster, run, user_body, Api, Server};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// `TOKEN_CACHE_TTL` in `muster-server/src/auth.rs`: a revoked token may keep
/// working this long on a server that verified it recently.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

fn assert_scim_error(reply: &common::Reply, status: &str) {
    assert_eq!(
        reply.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{reply:?}"
    );
    assert_eq!(reply.body["status"], status, "{reply:?}");
    assert!(
        reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{reply:?}"
    );
}

#[tokio::test]
async fn serve_prints_the_base_url_and_guards_scim_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let reader = create_token(dir.path(), "reader", &["scim.read"]);
    let writer = create_token(dir.path(), "writer", &["scim.write"]);
    let server = Server::start(dir.path());

    assert!(
        server.first_line.contains(&server.base_url),
        "{}",
        server.first_line
    );
    assert_ne!(
        server.port(),
        0,
        "the printed URL must carry the bound port"
    );
    assert_eq!(
        server.base_url,
        format!("http://127.0.0.1:{}/scim/v2", server.port())
    );

    let anonymous = server.api(None);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            anonymous.get_root(path).await.status,
            StatusCode::OK,
            "{path}"
        );
    }

    let missing = anonymous.get("/Users").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Bearer")),
        "{missing:?}"
    );
    assert_scim_error(&missing, "401");
    let unknown = server.api(Some("mst_not-a-real-token")).get("/Users").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.header("www-authenticate").is_some());

    let read_only = server.api(Some(&reader));
    assert_eq!(read_only.get("/Users").await.status, StatusCode::OK);
    let refused = read_only
        .post("/Users", &user_body("reader@contoso.com", 0))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_scim_error(&refused, "403");
    let refused_patch = read_only
        .call(Method::DELETE, "/Users/does-not-matter", None)
        .await;
    assert_eq!(refused_patch.status, StatusCode::FORBIDDEN);

    let created = server
        .api(Some(&writer))
        .post("/Users", &user_body("writer@contoso.com", 0))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.body["id"].as_str().unwrap();
    let read_back = read_only.get(&format!("/Users/{id}")).await;
    assert_eq!(read_back.status, StatusCode::OK);
    assert_eq!(read_back.body["userName"], "writer@contoso.com");
    assert_eq!(
        read_back.header("content-type"),
        Some("application/scim+json")
    );

    // The log has one line per request naming the client, and no secret.
    let log = server.log();
    assert!(
        log.contains("writer"),
        "no request lines in the log:\n{log}"
    );
    for secret in [&reader, &writer] {
        assert!(!log.contains(secret.as_str()), "secret in the log:\n{log}");
        assert!(!log.contains(&secret[4..]), "secret in the log:\n{log}");
    }
    assert!(!log.contains("mst_not-a-real-token"), "{log}");
    // Written to a file, not a terminal: no colour escape codes.
    assert!(!log.contains('\u{1b}'), "escape codes in the log:\n{log}");
    // Nor anywhere in the data directory, change records included.
    for file in files_under(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [&reader, &writer] {
            assert!(
                !contains_bytes(&bytes, secret.trim_start_matches("mst_").as_bytes()),
                "secret stored in clear in {}",
                file.display()
            );
        }
    }
    assert!(
        server
            .more_stdout()
            .iter()
            .all(|line| !line.contains("mst_")),
        "stdout must not carry secrets"
    );
}

#[tokio::test]
async fn serve_reads_listen_and_data_dir_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("env-data");
    let created = run(muster()
        .env("MUSTER_DATA_DIR", &data_dir)
        .args(["token", "create", "--name", "env"]));
    assert!(created.status.success(), "{created}");
    let secret = created.stdout.trim_end().to_owned();

    let server = Server::spawn(|command| {
        command
            .current_dir(dir.path())
            .env("MUSTER_LISTEN", "127.0.0.1:0")
            .env("MUSTER_DATA_DIR", &data_dir)
            .arg("serve");
    });
    assert_eq!(
        server.base_url,
        format!("http://127.0.0.1:{}/scim/v2", server.port())
    );
    assert!(data_dir.join("muster.db").is_file());
    assert!(
        !dir.path().join("muster-data").exists(),
        "the default data directory was used instead of MUSTER_DATA_DIR"
    );
    // The token minted in MUSTER_DATA_DIR works, so the server uses that database.
    let reply = server.api(Some(&secret)).get("/Users").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["totalResults"], 0);
}

#[tokio::test]
async fn flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let flag_dir = dir.path().join("flag");
    let env_dir = dir.path().join("env");
    let secret = create_token(&flag_dir, "flag", &[]);
    let server = Server::spawn(|command| {
        command
            .env("MUSTER_LISTEN", "127.0.0.1:1")
            .env("MUSTER_DATA_DIR", &env_dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&flag_dir);
    });
    assert_ne!(server.port(), 1);
    assert!(!env_dir.exists());
    let reply = server.api(Some(&secret)).get("/Users").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

#[test]
fn serve_fails_clearly_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut command = muster();
    command
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(dir.path());
    let output = run(&mut command);
    assert!(!output.status.success(), "{output}");
    assert!(output.stderr.contains(&address), "{output}");
    assert!(!output.stdout.contains("http://"), "{output}");
}

async fn status_of(api: &Api) -> StatusCode {
    api.get("/Users?count=0").await.status
}

#[tokio::test]
async fn revoked_token_stops_working_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let keep = create_token(dir.path(), "keep", &["scim.read"]);
    let server = Server::start(dir.path());
    // A token created while the server runs works at once.
    let gone = create_token(dir.path(), "gone", &["scim.read"]);
    let keep_api = server.api(Some(&keep));
    let gone_api = server.api(Some(&gone));
    assert_eq!(status_of(&keep_api).await, StatusCode::OK);
    assert_eq!(status_of(&gone_api).await, StatusCode::OK);

    let revoked = run(muster()
        .args(["token", "revoke", "gone", "--data-dir"])
        .arg(dir.path()));
    assert!(revoked.status.success(), "{revoked}");
    let revoked_at = Instant::now();
    // The server may keep a verified token cached for TOKEN_CACHE_TTL.
    let reply = loop {
        let reply = gone_api.get("/Users?count=0").await;
        if reply.status != StatusCode::OK
            || revoked_at.elapsed() > TOKEN_CACHE_TTL + Duration::from_secs(2)
        {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "revoked token still accepted {:?} after revoke",
        revoked_at.elapsed()
    );
    assert!(reply.header("www-authenticate").is_some());
    assert_eq!(status_of(&keep_api).await, StatusCode::OK);

    // A fresh server refuses it from the first request.
    server.kill();
    let server = Server::start(dir.path());
    let body: Value = server.api(Some(&gone)).get("/Users").await.body;
    assert_eq!(body["status"], "401", "{body}");
    assert_eq!(status_of(&server.api(Some(&keep))).await, StatusCode::OK);
}

/// Threads of process `pid` whose name starts with `prefix` (Linux names
/// are cut to 15 bytes).
#[cfg(target_os = "linux")]
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn readers_sets_the_reader_threads() {
    let dir = tempfile::tempdir().unwrap();
    let secret = create_token(dir.path(), "readers", &[]);
    let server = Server::spawn(|command| {
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--readers",
                "3",
                "--data-dir",
            ])
            .arg(dir.path());
    });
    let reply = server.api(Some(&secret)).get("/Users").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(threads_named(server.pid(), "muster-sqlite-r"), 3);
}

#[test]
fn readers_must_be_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = muster();
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--readers",
            "0",
            "--data-dir",
        ])
        .arg(dir.path());
    let output = run(&mut command);
    assert!(!output.status.success(), "{output}");
    assert!(output.stderr.contains("--readers"), "{output}");
    assert!(!dir.path().join("muster.db").exists(), "{output}");
}
