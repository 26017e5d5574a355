//! The sync engine against a target that throttles and one that goes down:
//! a proxy in front of a second Muster answers `429` with `Retry-After`
//! above a tiny rate, or `503` while "down". Every change still arrives,
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_testkit::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

/// A proxy to a SCIM service that throttles and can be taken down.
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    /// Requests allowed per second before `429`.
    per_second: u64,
    window: Mutex<(Instant, u64)>,
    throttled: AtomicU64,
    down: AtomicBool,
    refused_while_down: AtomicU64,
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    if proxy.down.load(Ordering::SeqCst) {
        proxy.refused_while_down.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    {
        let mut window = proxy.window.lock().unwrap();
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        window.1 += 1;
        if window.1 > proxy.per_second {
            proxy.throttled.fetch_add(1, Ordering::SeqCst);
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", "1".parse().unwrap());
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "429",
                "detail": "too many requests"
            });
            return (StatusCode::TOO_MANY_REQUESTS, headers, body.to_string()).into_response();
        }
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut upstream = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(bytes.to_vec());
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = parts.headers.get(name) {
            upstream = upstream.header(name, value);
        }
    }
    match upstream.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/scim+json")], bytes).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn start_proxy(target: &TestServer, per_second: u64) -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        upstream: target.root.clone(),
        http: reqwest::Client::new(),
        per_second,
        window: Mutex::new((Instant::now(), 0)),
        throttled: AtomicU64::new(0),
        down: AtomicBool::new(false),
        refused_while_down: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::clone(&proxy));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (proxy, format!("http://{address}/scim/v2"))
}

async fn users_at(target: &TestServer) -> Vec<Value> {
    let reply = target.get("/Users?count=1000").await;
    reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_for_users(target: &TestServer, count: usize, seconds: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let users = users_at(target).await;
        if users.len() >= count || Instant::now() > deadline {
            return users;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_users(source: &TestServer, prefix: &str, count: usize) {
    for n in 0..count {
        let reply = source
            .post(
                "/Users",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("{prefix}{n:03}@contoso.com"),
                    "externalId": format!("{prefix}-{n}")
                }),
            )
            .await;
        assert_eq!(reply.status, reqwest::StatusCode::CREATED, "{}", reply.body);
    }
}

fn document(base_url: &str, token: &str) -> Value {
    json!({
        "name": "throttled",
        "kind": "scim",
        "baseUrl": base_url,
        "auth": {"type": "bearer", "token": token},
        "rateLimit": {"requestsPerSecond": 200, "burst": 50}
    })
}

#[tokio::test]
async fn a_throttling_target_gets_everything_after_backing_off() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let (proxy, url) = start_proxy(&target, 8).await;
    let put = source
        .admin(
            Method::PUT,
            "/targets/throttled",
            Some(document(&url, &target.token)),
        )
        .await;
    assert_eq!(put.status, reqwest::StatusCode::OK, "{}", put.body);
    create_users(&source, "first", 1).await;
    assert_eq!(wait_for_users(&target, 1, 10).await.len(), 1);
    create_users(&source, "burst", 24).await;
    let users = wait_for_users(&target, 25, 40).await;
    assert_eq!(users.len(), 25, "every change arrived");
    let mut names: Vec<&str> = users
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 25, "each once");
    assert!(
        proxy.throttled.load(Ordering::SeqCst) > 0,
        "the proxy throttled"
    );
    let metrics = source
        .call_as(&source.token, Method::GET, "/metrics", None)
        .await;
    let text = String::from_utf8_lossy(
        &source
            .http
            .get(format!("{}/metrics", source.root))
            .bearer_auth(&source.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .into_owned();
    assert_eq!(metrics.status, reqwest::StatusCode::OK);
    assert!(text.contains("status=\"429\""), "{text}");
    assert!(
        text.contains("muster_sync_delivery_latency_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn a_target_that_goes_down_gets_everything_when_it_comes_back() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let (proxy, url) = start_proxy(&target, 10_000).await;
    let put = source
        .admin(
            Method::PUT,
            "/targets/throttled",
            Some(document(&url, &target.token)),
        )
        .await;
    assert_eq!(put.status, reqwest::StatusCode::OK, "{}", put.body);
    create_users(&source, "before", 3).await;
    assert_eq!(wait_for_users(&target, 3, 10).await.len(), 3);

    proxy.down.store(true, Ordering::SeqCst);
    create_users(&source, "during", 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        proxy.refused_while_down.load(Ordering::SeqCst) > 0,
        "deliveries were tried"
    );
    assert_eq!(
        users_at(&target).await.len(),
        3,
        "nothing got through while down"
    );
    let status = source.admin(Method::GET, "/targets/throttled", None).await;
    assert!(
        status.body["queueDepth"].as_u64().unwrap_or(0) > 0,
        "{}",
        status.body
    );

    proxy.down.store(false, Ordering::SeqCst);
    let users = wait_for_users(&target, 8, 90).await;
    assert_eq!(users.len(), 8, "every change arrived after the outage");
    let letters = source.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
}
