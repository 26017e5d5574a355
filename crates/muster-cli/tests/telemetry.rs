//! Logs and traces of `muster serve`: `--log-format json` lines carrying
//! each request's id, tenant and client, and spans exported over OTLP/HTTP
//! (`--otlp-endpoint`) to a collector the test runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{create_token, Server};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn json_log_lines_carry_the_request_id_tenant_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "robot", &["scim.read"]);
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(dir.path());
    });
    let api = server.api(Some(&token));
    let response = api
        .http
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(&token)
        .header("x-request-id", "json-log-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = server.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect();
        if let Some(line) = lines
            .into_iter()
            .find(|line| line["span"]["request_id"] == "json-log-42")
        {
            break line;
        }
        assert!(Instant::now() < deadline, "no request line in {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(line["fields"]["message"], "request", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert_eq!(line["span"]["tenant"], "default", "{line}");
    assert_eq!(line["span"]["client"], "robot", "{line}");
    assert!(!line.to_string().contains(&token), "no secret logged");
}

/// What the test's collector received: each POST's path, content type and
/// body.
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// An OTLP/HTTP collector on `127.0.0.1:0` keeping every POST.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let keep = Arc::clone(&received);
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let keep = Arc::clone(&keep);
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                keep.lock()
                    .unwrap()
                    .push((uri.path().to_owned(), content_type, body));
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http_with_the_request_id_tenant_and_client() {
    let (endpoint, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "traced-robot", &["scim.read"]);
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--otlp-endpoint"])
            .arg(&endpoint)
            .arg("--data-dir")
            .arg(dir.path())
            // Export batches every 200 ms rather than every 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    });
    let api = server.api(Some(&token));
    let response = api
        .http
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(&token)
        .header("x-request-id", "otlp-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exported = received.lock().unwrap().clone();
        let span = exported
            .iter()
            .find(|(_, _, body)| contains(body, "otlp-request-7"));
        if let Some((path, content_type, body)) = span {
            assert_eq!(path, "/v1/traces");
            assert_eq!(content_type, "application/x-protobuf");
            for expected in ["request", "request_id", "tenant", "default", "traced-robot"] {
                assert!(contains(body, expected), "{expected} missing from the span");
            }
            assert!(!contains(body, &token), "no secret exported");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span exported ({} posts); log:\n{}",
            exported.len(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
