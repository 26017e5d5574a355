//! A full write queue answers `503` with `Retry-After` and a SCIM error
//! naming the request id, instead of growing without limit; every write it
//! accepted is stored.

use muster_server::ServerConfig;
use muster_store::sqlite::SqliteOptions;
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_write_queue_answers_503_with_retry_after() {
    let options = SqliteOptions {
        writer_queue: 1,
        ..SqliteOptions::default()
    };
    let server = TestServer::start_with_store(ServerConfig::default(), options).await;
    let mut busy = None;
    let mut created = 0usize;
    // Rounds of concurrent creates until one finds the queue full (bounded).
    for round in 0..20 {
        let mut tasks = Vec::new();
        for n in 0..48 {
            let http = server.http.clone();
            let url = format!("{}/Users", server.base_url);
            let token = server.token.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("busy-{round}-{n}"),
                });
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let request_id = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let body: serde_json::Value = response.json().await?;
                Ok::<_, reqwest::Error>((status, retry_after, request_id, body))
            }));
        }
        for task in tasks {
            let Ok(Ok((status, retry_after, request_id, body))) = task.await else {
                panic!("a request failed to complete");
            };
            match status {
                StatusCode::CREATED => created += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    busy.get_or_insert((retry_after, request_id, body));
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        if busy.is_some() {
            break;
        }
    }
    let Some((retry_after, request_id, body)) = busy else {
        panic!("no request found the one-job write queue full in 20 rounds of 48");
    };
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["status"], "503");
    let detail = body["detail"].as_str().unwrap_or_default();
    let request_id = request_id.unwrap_or_default();
    assert!(
        !request_id.is_empty() && detail.contains(&request_id),
        "{detail}"
    );
    // Every acknowledged create is stored, and the server still writes.
    let listed = server.call(Method::GET, "/Users?count=0", None).await;
    assert_eq!(
        listed.body["totalResults"],
        json!(created),
        "{}",
        listed.body
    );
    let after = server
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "after"})),
        )
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
}
