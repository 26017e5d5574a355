//! Per-client rate limits and request limits over real HTTP: a client at
//! ten times its limit gets `429` with `Retry-After` and SCIM bodies while
//! `/healthz` answers within 50 ms and another client within its own limit
//! gets only `2xx`; headers beyond the limits are `431`; a request over its
//! time is `503`, never a hang. Runs on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster_server::limits::ClientLimits;
use muster_server::ServerConfig;
use muster_store::clients::CredentialOptions;
use muster_store::TenantId;
use muster_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A token with its own rate limit (requests per second).
async fn limited_token(server: &TestServer, name: &str, rate: u32) -> String {
    let token = server.token_with(name, &["scim.read"]).await;
    server
        .store
        .set_token_options(
            &TenantId::default_tenant(),
            name,
            CredentialOptions {
                matching: Vec::new(),
                rate_limit: Some(rate),
            },
        )
        .await
        .unwrap();
    token
}

#[derive(Default)]
struct Tally {
    ok: usize,
    limited: usize,
    other: Vec<u16>,
}

// Several threads: on one, the probe would wait behind the flood's own
// client work in this test process, which is not what is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_client_is_limited_and_nobody_else_is() {
    let server = Arc::new(TestServer::start().await);
    // The flooder may make 20 requests a second and sends 200 a second
    // from 40 concurrent connections for two seconds; the calm client may
    // make 50 and sends 10.
    let flooder = limited_token(&server, "flooder", 20).await;
    let calm = limited_token(&server, "calm", 50).await;
    let url = format!("{}/ServiceProviderConfig", server.base_url);
    let duration = Duration::from_secs(2);
    let started = Instant::now();

    let mut floods = Vec::new();
    for _ in 0..40 {
        let (server, url, flooder) = (Arc::clone(&server), url.clone(), flooder.clone());
        floods.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut bodies = Vec::new();
            // 40 tasks, one request each 200 ms: 200 a second.
            while started.elapsed() < duration {
                let response = server
                    .http
                    .get(&url)
                    .bearer_auth(&flooder)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                let body: Value = response.json().await.unwrap_or(Value::Null);
                match status {
                    StatusCode::OK => tally.ok += 1,
                    StatusCode::TOO_MANY_REQUESTS => {
                        tally.limited += 1;
                        assert!(retry_after.is_some_and(|seconds| seconds >= 1), "{body}");
                        bodies.push(body);
                    }
                    other => tally.other.push(other.as_u16()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (tally, bodies)
        }));
    }
    let calm_task = {
        let (server, url) = (Arc::clone(&server), url.clone());
        tokio::spawn(async move {
            let mut tally = Tally::default();
            while started.elapsed() < duration {
                let status = server
                    .http
                    .get(&url)
                    .bearer_auth(&calm)
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status.is_success() {
                    tally.ok += 1;
                } else {
                    tally.other.push(status.as_u16());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tally
        })
    };
    let health_task = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            // The liveness check must answer within 50 ms; the readiness
            // check (a database round trip) must answer, never be limited.
            let mut slowest = Duration::ZERO;
            let mut probes = 0;
            while started.elapsed() < duration {
                let sent = Instant::now();
                let status = server
                    .http
                    .get(format!("{}/healthz", server.root))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, StatusCode::OK, "/healthz");
                slowest = slowest.max(sent.elapsed());
                probes += 1;
                let ready = server
                    .http
                    .get(format!("{}/readyz", server.root))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(ready, StatusCode::OK, "/readyz");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, probes)
        })
    };

    let mut flood = Tally::default();
    let mut bodies = Vec::new();
    for task in floods {
        let (tally, task_bodies) = task.await.unwrap();
        flood.ok += tally.ok;
        flood.limited += tally.limited;
        flood.other.extend(tally.other);
        bodies.extend(task_bodies);
    }
    let calm = calm_task.await.unwrap();
    let (slowest, probes) = health_task.await.unwrap();

    assert!(flood.other.is_empty(), "flooder got {:?}", flood.other);
    // Over two seconds at 20 a second with a burst of 20: at most about 60
    // answered, the rest refused.
    assert!(flood.ok <= 70, "the flooder got {} answers", flood.ok);
    assert!(
        flood.limited >= 200,
        "only {} requests refused",
        flood.limited
    );
    for body in &bodies {
        assert_eq!(body["schemas"][0], ERROR, "{body}");
        assert_eq!(body["status"], "429", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("flooder")),
            "{body}"
        );
    }
    assert!(
        calm.other.is_empty(),
        "the calm client got {:?}",
        calm.other
    );
    assert!(calm.ok >= 15, "the calm client got {} answers", calm.ok);
    assert!(probes >= 20, "only {probes} health probes");
    eprintln!(
        "flooder: {} answered, {} refused; calm: {} answered; slowest /healthz: {slowest:?} ({probes} probes)",
        flood.ok, flood.limited, calm.ok
    );
    assert!(
        slowest < Duration::from_millis(50),
        "a health check took {slowest:?} under the flood"
    );
}

#[tokio::test]
async fn the_server_default_applies_and_zero_means_unlimited() {
    let server = TestServer::start_with(ServerConfig {
        clients: ClientLimits {
            default_rate_limit: 5,
            ..ClientLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let defaulted = server.token_with("defaulted", &["scim.read"]).await;
    let unlimited = limited_token(&server, "unlimited", 0).await;
    let count = |token: String| {
        let server = &server;
        async move {
            let mut limited = 0;
            for _ in 0..30 {
                let reply = server
                    .call_as(&token, reqwest::Method::GET, "/scim/v2/ResourceTypes", None)
                    .await;
                if reply.status == StatusCode::TOO_MANY_REQUESTS {
                    limited += 1;
                }
            }
            limited
        }
    };
    assert!(count(defaulted).await >= 20);
    assert_eq!(count(unlimited).await, 0);
}

#[tokio::test]
async fn headers_beyond_the_limits_are_refused() {
    let server = TestServer::start().await;
    let mut request = server
        .http
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(&server.token);
    for index in 0..80 {
        request = request.header(format!("x-padding-{index}"), "x");
    }
    let many = server.send(request, None).await;
    assert_eq!(
        many.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{}",
        many.body
    );
    assert_eq!(many.body["status"], "431");
    let large = server
        .send(
            server
                .http
                .get(format!("{}/Users", server.base_url))
                .bearer_auth(&server.token)
                .header("x-padding", "x".repeat(20_000)),
            None,
        )
        .await;
    assert_eq!(large.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(large.body["schemas"][0], ERROR);
}

#[tokio::test]
async fn a_request_over_its_time_is_answered_503() {
    let server = TestServer::start_with(ServerConfig {
        clients: ClientLimits {
            request_timeout: Duration::from_millis(20),
            ..ClientLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    // 300 durable creates in one Bulk take far longer than 20 ms (a request
    // that finishes within its first poll can beat any timer, so the test
    // needs one that is really slow, not a tiny limit).
    let operations: Vec<serde_json::Value> = (0..300)
        .map(|n| {
            serde_json::json!({
                "method": "POST",
                "path": "/Users",
                "bulkId": format!("u{n}"),
                "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("slow{n}@example.com"),
                },
            })
        })
        .collect();
    let bulk = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    });
    let started = Instant::now();
    let reply = server.post("/Bulk", bulk).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["schemas"][0], ERROR);
    assert_eq!(reply.body["status"], "503");
    assert_eq!(reply.header("retry-after"), Some("1"));
}

/// A token request for `client_id` by HTTP Basic.
fn token_request(server: &TestServer, client_id: &str, secret: &str) -> reqwest::RequestBuilder {
    server
        .http
        .post(format!("{}/oauth/token", server.root))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
}

/// An OAuth client of the default tenant with `scim.read`; returns its
/// `client_id` and secret.
async fn oauth_client(
    server: &TestServer,
    name: &str,
    rate_limit: Option<u32>,
) -> (String, String) {
    let new = muster_core::clients::mint_client().await.unwrap();
    server
        .store
        .create_client(
            &TenantId::default_tenant(),
            muster_store::clients::ClientRecord {
                name: name.to_owned(),
                client_id: new.client_id.clone(),
                secret_hash: new.secret_hash,
                previous_secret_hash: None,
                previous_valid_until: None,
                scopes: vec!["scim.read".to_owned()],
                options: CredentialOptions {
                    matching: Vec::new(),
                    rate_limit,
                },
                created: String::new(),
            },
        )
        .await
        .unwrap();
    (new.client_id, new.secret)
}

/// An access token for the client.
async fn access_token(server: &TestServer, client_id: &str, secret: &str) -> String {
    let reply = server
        .send(token_request(server, client_id, secret), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

// A client_id is no secret (RFC 6749 2.2): who knows only that must not
// spend the client's budgets, on SCIM or at the token endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_secrets_spend_none_of_the_client_budgets() {
    let server = Arc::new(TestServer::start().await);
    let (id, secret) = oauth_client(&server, "okta", Some(2)).await;
    let token = access_token(&server, &id, &secret).await;
    // Four guessers send wrong secrets for its client_id, without pause,
    // for two seconds.
    let duration = Duration::from_secs(2);
    let started = Instant::now();
    let mut guessers = Vec::new();
    for _ in 0..4 {
        let (server, id) = (Arc::clone(&server), id.clone());
        guessers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while started.elapsed() < duration {
                let status = token_request(&server, &id, "mcs_wrong")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                statuses.push(status);
            }
            statuses
        }));
    }
    // Meanwhile the client, within its 2 a second, reads, and gets a new
    // token: every request answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut scim = Vec::new();
    while started.elapsed() < duration - Duration::from_millis(600) {
        let reply = server
            .call_as(&token, reqwest::Method::GET, "/scim/v2/ResourceTypes", None)
            .await;
        scim.push(reply.status.as_u16());
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let renewed = server
        .send(token_request(&server, &id, &secret), None)
        .await;
    let mut guessed = Vec::new();
    for guesser in guessers {
        guessed.extend(guesser.await.unwrap());
    }
    assert!(scim.len() >= 2, "{scim:?}");
    assert!(
        scim.iter().all(|status| *status == 200),
        "SCIM under guesses: {scim:?}"
    );
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    // The guesses were verified and refused (never counted as the
    // client's: no 429); a flood beyond the verification bound would be
    // 503 for every client alike.
    assert!(!guessed.is_empty());
    assert!(
        guessed.iter().all(|status| *status == 401),
        "guesses: {guessed:?}"
    );
}

#[tokio::test]
async fn verified_token_requests_count_against_the_client_limits() {
    let server = TestServer::start().await;
    let count = |statuses: &[u16], status: u16| statuses.iter().filter(|s| **s == status).count();
    // Sent at once: verifications are slow, one after another they would
    // spread over more than a second.
    let requests = |id: String, secret: String, count: usize| {
        let server = &server;
        async move {
            let sent: Vec<_> = (0..count)
                .map(|_| {
                    let request = token_request(server, &id, &secret);
                    tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
                })
                .collect();
            let mut statuses = Vec::new();
            for request in sent {
                statuses.push(request.await.unwrap());
            }
            statuses
        }
    };
    // A client limited to 1 a second: its verified requests beyond that
    // are 429. (Verifications finish one per CPU at a time, tens to
    // hundreds of milliseconds apart: the bound allows for the refill.)
    let (slow, slow_secret) = oauth_client(&server, "slow", Some(1)).await;
    let started = Instant::now();
    let statuses = requests(slow, slow_secret, 6).await;
    let most = 1 + started.elapsed().as_secs_f64().ceil() as usize;
    assert_eq!(
        count(&statuses, 200) + count(&statuses, 429),
        6,
        "{statuses:?}"
    );
    assert!(count(&statuses, 200) >= 1, "{statuses:?}");
    assert!(
        count(&statuses, 200) <= most,
        "{statuses:?}, at most {most}"
    );
}

// A bearer token and an OAuth client of one name but different rates keep
// their own counts: alternating them gets no more than both limits.
#[tokio::test]
async fn a_token_and_a_client_of_one_name_stay_within_their_limits() {
    let server = TestServer::start().await;
    let bearer = limited_token(&server, "okta", 2).await;
    let (id, secret) = oauth_client(&server, "okta", Some(20)).await;
    let access = access_token(&server, &id, &secret).await;
    let started = Instant::now();
    let (mut ok, mut limited) = ([0usize; 2], [0usize; 2]);
    let mut turn = 0;
    // A second and a half, and until both were refused (a slow machine).
    while started.elapsed() < Duration::from_millis(1500) || limited.contains(&0) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{ok:?} {limited:?}"
        );
        let credential = if turn % 2 == 0 { &bearer } else { &access };
        let reply = server
            .call_as(
                credential,
                reqwest::Method::GET,
                "/scim/v2/ResourceTypes",
                None,
            )
            .await;
        match reply.status {
            StatusCode::OK => ok[turn % 2] += 1,
            StatusCode::TOO_MANY_REQUESTS => limited[turn % 2] += 1,
            other => panic!("{other}: {}", reply.body),
        }
        turn += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Bursts (2 and 20, one already spent on the token) plus the rates.
    let most = |rate: f64| (rate + rate * seconds).ceil() as usize + 1;
    assert!(ok[0] <= most(2.0), "bearer: {ok:?} ok, {limited:?} limited");
    assert!(
        ok[1] <= most(20.0),
        "client: {ok:?} ok, {limited:?} limited"
    );
    assert!(ok[0] >= 2 && ok[1] >= 19, "{ok:?}");
    assert!(limited[0] > 0 && limited[1] > 0, "{limited:?}");
}
