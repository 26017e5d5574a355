//! The sync engine's performance targets (issue 11, "Performance"), on real
//! servers: in-process `muster_testkit::TestServer`s (the whole axum
//! application over a fresh, durable SQLite file: WAL,
//! `synchronous = FULL`), talking real HTTP over loopback. The bench client,
//! the source Muster, its sync worker and the target share the process and
//! the machine's CPUs.
//!
//! 1. **latency**: a steady `MUSTER_BENCH_RATE` changes/s (100; half creates,
//!    half PATCHes of a user created earlier, never one in flight) for
//!    `MUSTER_BENCH_SECONDS` (30) against a source Muster delivering to a
//!    second Muster. A change's latency runs from the instant the source
//!    acknowledged it (the HTTP response read by the client) to the instant
//!    a poller of the target's change feed (`Store::changes`, every 2 ms)
//!    sees the target's record carrying that state (or a later state of the
//!    same user: coalesced changes count as delivered with it). Also given:
//!    the latency to the target's commit stamp (`at`, ms precision, same
//!    clock). Targets: p50 < 100 ms, p99 < 1 s.
//! 2. **reconcile**: `MUSTER_BENCH_USERS` (10,000) users at the source; the
//!    time of a new target's initial full push (the worker's first run) to a
//!    second Muster until it holds every user; then `Targets::reconcile`
//!    against the target in line, and a reconcile into a fresh, empty second
//!    target (put and paused through the library, so only the reconcile
//!    delivers). Target rate limit 5,000 requests/s. Target: under 60 s.
//! 3. **cost**: durable `POST /Users` throughput with `MUSTER_BENCH_CLIENTS`
//!    (16) clients for `MUSTER_BENCH_COST_SECONDS` (10) with no target and
//!    with one target delivering to a minimal SCIM sink in this process
//!    (201 with an id to POST, 200 to PATCH, an empty ListResponse to GET),
//!    alternated `MUSTER_BENCH_ROUNDS` (2) times, each on fresh servers.
//!    Target: the cost under 20 % of the throughput without a target.
//!
//! Run: `cargo bench -p muster-sync --bench delivery`. Phases:
//! `MUSTER_BENCH_PHASES` (`latency,reconcile,cost`). Like `muster serve`, it
//! allocates with mimalloc.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary: a failure must stop it loudly"
)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use muster_core::{Limits, Service};
use muster_store::{Actor, ChangePayload, Store, TenantId};
use muster_sync::secrets::SecretKey;
use muster_sync::Targets;
use muster_targets::TargetDocument;
use muster_testkit::TestServer;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// As `muster serve` (see crates/muster-cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";

/// Set when run without `--bench` (by `cargo test --all-targets`): tiny sizes.
static SMOKE: AtomicBool = AtomicBool::new(false);

/// A size from the environment, else `default` (`smoke` in a smoke run).
fn size(name: &str, default: u64, smoke: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if SMOKE.load(Ordering::Relaxed) {
            smoke
        } else {
            default
        })
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// An Entra-shaped user: core and enterprise attributes.
fn user_body(user_name: &str, n: u64, title: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "active": true,
        "displayName": format!("Agent {n}"),
        "name": {"givenName": "Agent", "familyName": format!("N{n}")},
        "title": title,
        "emails": [{"type": "work", "value": user_name, "primary": true}],
        "phoneNumbers": [{"type": "work", "value": format!("+1 555 {:07}", n % 10_000_000)}],
        ENTERPRISE: {"department": format!("Dept {}", n % 20), "employeeNumber": format!("{n}")}
    })
}

fn target_document(name: &str, base_url: &str, token: &str, rate: f64, burst: u32) -> Value {
    json!({
        "name": name,
        "kind": "scim",
        "baseUrl": base_url,
        "auth": {"type": "bearer", "token": token},
        "scope": {"groups": "none"},
        "rateLimit": {"requestsPerSecond": rate, "burst": burst},
    })
}

/// Sends a SCIM request; gives the status and the body.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", SCIM_JSON)
            .body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn put_target(server: &TestServer, document: &Value) {
    let name = document["name"].as_str().unwrap();
    let reply = server
        .admin(
            reqwest::Method::PUT,
            &format!("/targets/{name}"),
            Some(document.clone()),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
}

async fn total_users(server: &TestServer) -> u64 {
    let reply = server.get("/Users?count=0").await;
    reply.body["totalResults"].as_u64().unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    println!(
        "  {label:<44} n={:<6} p50 {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        values.len(),
        percentile(values, 50.0),
        percentile(values, 90.0),
        percentile(values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    );
}

fn wall_ms(instant: OffsetDateTime) -> f64 {
    (instant.unix_timestamp_nanos() / 1_000) as f64 / 1_000.0
}

fn parse_ms(text: &str) -> Option<f64> {
    let instant =
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(wall_ms(instant))
}

// ---------------------------------------------------------------- latency

/// One change sent at the source.
struct Sent {
    user: u64,
    version: u64,
    acked: Instant,
    acked_wall_ms: f64,
}

/// A state of a user seen at the target.
struct Seen {
    version: u64,
    seen: Instant,
    at_ms: Option<f64>,
}

/// Reads the target's change feed and notes each (user, version) it shows.
async fn watch_target(
    store: Arc<dyn Store>,
    prefix: String,
    seen: Arc<Mutex<HashMap<u64, Vec<Seen>>>>,
    stop: Arc<AtomicBool>,
) {
    let tenant = tenant();
    let mut cursor = store.change_head(&tenant).await.unwrap();
    while !stop.load(Ordering::Relaxed) {
        let changes = store.changes(&tenant, cursor, 1000).await.unwrap();
        let now = Instant::now();
        if changes.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let mut seen = seen.lock().unwrap();
        for change in &changes {
            cursor = cursor.max(change.sequence);
            let ChangePayload::Resource { resource, .. } = &change.payload else {
                continue;
            };
            let Some(user) = resource["userName"]
                .as_str()
                .and_then(|name| name.strip_prefix(&prefix))
                .and_then(|rest| rest.split('@').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(version) = resource["title"]
                .as_str()
                .and_then(|title| title.strip_prefix('v'))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            seen.entry(user).or_default().push(Seen {
                version,
                seen: now,
                at_ms: parse_ms(&change.at),
            });
        }
    }
}

async fn latency() {
    let rate = size("MUSTER_BENCH_RATE", 100, 20);
    let seconds = size("MUSTER_BENCH_SECONDS", 30, 1);
    println!("latency: {rate} changes/s for {seconds} s, creates and PATCHes mixed");
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    put_target(
        &source,
        &target_document("downstream", &target.base_url, &target.token, 1000.0, 100),
    )
    .await;
    let prefix = "lat-".to_owned();
    let seen = Arc::new(Mutex::new(HashMap::<u64, Vec<Seen>>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let target_store: Arc<dyn Store> = target.store.clone();
    let watcher = tokio::spawn(watch_target(
        target_store,
        prefix.clone(),
        Arc::clone(&seen),
        Arc::clone(&stop),
    ));
    // Warm up: the worker's first (empty) full push, one user through.
    let http = reqwest::Client::new();
    let users_url = format!("{}/Users", source.base_url);
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        &users_url,
        &source.token,
        Some(&user_body("warmup@bench.example", 0, "v0")),
    )
    .await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    while total_users(&target).await < 1 {
        assert!(Instant::now() < deadline, "warm-up user never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let ack_ms = Arc::new(Mutex::new(Vec::<f64>::new()));
    // Users created and not in flight: (n, id, last version).
    let idle = Arc::new(Mutex::new(VecDeque::<(u64, String, u64)>::new()));
    let mut next_user = 0u64;
    let mut tasks = Vec::new();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let total = rate * seconds;
    let mut patches = 0u64;
    for i in 0..total {
        ticker.tick().await;
        let picked = if i % 2 == 1 {
            idle.lock().unwrap().pop_front()
        } else {
            None
        };
        let http = http.clone();
        let token = source.token.clone();
        let base = source.base_url.clone();
        let sent = Arc::clone(&sent);
        let ack_ms = Arc::clone(&ack_ms);
        let idle = Arc::clone(&idle);
        let prefix = prefix.clone();
        match picked {
            Some((n, id, version)) => {
                patches += 1;
                let version = version + 1;
                tasks.push(tokio::spawn(async move {
                    let body = json!({
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "path": "title", "value": format!("v{version}")}]
                    });
                    let begun = Instant::now();
                    let (status, reply) = send(
                        &http,
                        reqwest::Method::PATCH,
                        &format!("{base}/Users/{id}"),
                        &token,
                        Some(&body),
                    )
                    .await;
                    let acked = Instant::now();
                    let acked_wall_ms = wall_ms(OffsetDateTime::now_utc());
                    assert_eq!(status, 200, "{reply}");
                    ack_ms
                        .lock()
                        .unwrap()
                        .push((acked - begun).as_secs_f64() * 1e3);
                    sent.lock().unwrap().push(Sent {
                        user: n,
                        version,
                        acked,
                        acked_wall_ms,
                    });
                    idle.lock().unwrap().push_back((n, id, version));
                }));
            }
            None => {
                let n = next_user;
                next_user += 1;
                tasks.push(tokio::spawn(async move {
                    let user_name = format!("{prefix}{n}@bench.example");
                    let body = user_body(&user_name, n, "v0");
                    let begun = Instant::now();
                    let (status, reply) = send(
                        &http,
                        reqwest::Method::POST,
                        &format!("{base}/Users"),
                        &token,
                        Some(&body),
                    )
                    .await;
                    let acked = Instant::now();
                    let acked_wall_ms = wall_ms(OffsetDateTime::now_utc());
                    assert_eq!(status, 201, "{reply}");
                    ack_ms
                        .lock()
                        .unwrap()
                        .push((acked - begun).as_secs_f64() * 1e3);
                    sent.lock().unwrap().push(Sent {
                        user: n,
                        version: 0,
                        acked,
                        acked_wall_ms,
                    });
                    let id = reply["id"].as_str().unwrap().to_owned();
                    idle.lock().unwrap().push_back((n, id, 0));
                }));
            }
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  sent {total} changes ({} creates, {patches} PATCHes) in {elapsed:.1} s: {:.1}/s",
        total - patches,
        total as f64 / elapsed
    );
    // Wait for the last change to arrive (or 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = {
            let sent = sent.lock().unwrap();
            let seen = seen.lock().unwrap();
            sent.iter()
                .filter(|change| {
                    !seen.get(&change.user).is_some_and(|states| {
                        states.iter().any(|state| state.version >= change.version)
                    })
                })
                .count()
        };
        if missing == 0 || Instant::now() > deadline {
            if missing > 0 {
                println!("  MISSING at the target after 60 s: {missing} changes");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let sent = sent.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut visible = Vec::new();
    let mut committed = Vec::new();
    let mut negative = 0u64;
    for change in sent.iter() {
        let Some(state) = seen.get(&change.user).and_then(|states| {
            states
                .iter()
                .filter(|state| state.version >= change.version)
                .min_by_key(|state| state.seen)
        }) else {
            continue;
        };
        let waited = state.seen.saturating_duration_since(change.acked);
        if state.seen < change.acked {
            negative += 1;
        }
        visible.push(waited.as_secs_f64() * 1e3);
        if let Some(at_ms) = state.at_ms {
            committed.push((at_ms - change.acked_wall_ms).max(0.0));
        }
    }
    summary(
        "source ack (client's request time)",
        &mut ack_ms.lock().unwrap(),
    );
    summary("ack -> visible in target's feed (poll 2 ms)", &mut visible);
    summary("ack -> target's commit stamp `at` (1 ms)", &mut committed);
    if negative > 0 {
        println!("  ({negative} changes seen at the target before the client read the ack: 0 ms)");
    }
}

// -------------------------------------------------------------- reconcile

async fn create_users(server: &TestServer, prefix: &str, count: u64, clients: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = Arc::clone(&next);
        let http = http.clone();
        let url = format!("{}/Users", server.base_url);
        let token = server.token.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                let body = user_body(&format!("{prefix}{n}@bench.example"), n, "Agent");
                let (status, reply) =
                    send(&http, reqwest::Method::POST, &url, &token, Some(&body)).await;
                assert_eq!(status, 201, "{reply}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn wait_for_users(server: &TestServer, count: u64, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if total_users(server).await >= count {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reconcile() {
    let users = size("MUSTER_BENCH_USERS", 10_000, 50);
    let rate = size("MUSTER_BENCH_TARGET_RATE", 5_000, 5_000) as f64;
    println!("reconcile: {users} users, target rate limit {rate}/s");
    let source = TestServer::start().await;
    let started = Instant::now();
    create_users(&source, "rec-", users, 16).await;
    println!(
        "  created {users} users at the source in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. A new target's initial full push (the worker's first run).
    let target = TestServer::start().await;
    let started = Instant::now();
    put_target(
        &source,
        &target_document("downstream", &target.base_url, &target.token, rate, 500),
    )
    .await;
    match wait_for_users(&target, users, Duration::from_secs(600)).await {
        Some(_) => println!(
            "  initial full push of a new target: {users} users in {:.2} s ({:.0} users/s)",
            started.elapsed().as_secs_f64(),
            users as f64 / started.elapsed().as_secs_f64()
        ),
        None => println!("  initial full push: NOT DONE after 600 s"),
    }

    // 2. Reconciles through the library, as `muster sync reconcile` does.
    let store: Arc<dyn Store> = source.store.clone();
    let service = Arc::new(Service::new(store, Limits::default()));
    let key = SecretKey::load_or_create(source.data_dir()).unwrap();
    let targets = Targets::new(
        Arc::clone(&service),
        key,
        std::env::temp_dir().join("muster-bench-exports"),
    );
    let started = Instant::now();
    let report = targets
        .reconcile(&tenant(), "downstream", false, None)
        .await
        .unwrap();
    println!(
        "  reconcile, target in line: {:.2} s (unchanged {}, created {}, updated {}, failed {})",
        started.elapsed().as_secs_f64(),
        report.unchanged,
        report.created.len(),
        report.updated.len(),
        report.failed.len()
    );

    // 3. A reconcile into an empty target: put and paused at once through
    //    the library, so the engine's worker never runs it.
    let fresh = TestServer::start().await;
    let document = target_document("fresh", &fresh.base_url, &fresh.token, rate, 500);
    let document = TargetDocument::from_json(&document.to_string()).unwrap();
    let actor = Actor {
        client: "bench".into(),
        request_id: "bench".into(),
    };
    targets
        .apply(&tenant(), &actor, None, document)
        .await
        .unwrap();
    targets
        .pause(&tenant(), &actor, "fresh", "bench")
        .await
        .unwrap();
    let started = Instant::now();
    let report = targets
        .reconcile(&tenant(), "fresh", false, None)
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    println!(
        "  reconcile into an empty target: {took:.2} s ({:.0} users/s; created {}, unchanged {}, failed {}); target holds {}",
        users as f64 / took,
        report.created.len(),
        report.unchanged,
        report.failed.len(),
        total_users(&fresh).await
    );
}

// ------------------------------------------------------------------- cost

#[derive(Default)]
struct Sink {
    posts: AtomicU64,
    patches: AtomicU64,
    gets: AtomicU64,
    /// Set once the load stopped: gaps are then counted as "drain".
    draining: AtomicBool,
    gaps: Mutex<Gaps>,
}

/// Time between the arrivals of successive requests at the sink (the
/// worker sends one at a time): after a GET, the next request of the same
/// user (one HTTP exchange); after a POST, the first request of the next
/// user (the POST's answer, recording the delivery, reading the next user).
#[derive(Default)]
struct Gaps {
    last: Option<(Instant, bool)>,
    /// [load, drain] x [after a GET, after a POST]: (sum in ms, count).
    sums: [[(f64, u64); 2]; 2],
}

impl Sink {
    fn arrived(&self, post: bool) {
        let now = Instant::now();
        let phase = usize::from(self.draining.load(Ordering::Relaxed));
        let mut gaps = self.gaps.lock().unwrap();
        if let Some((last, after_post)) = gaps.last {
            let slot = &mut gaps.sums[phase][usize::from(after_post)];
            slot.0 += (now - last).as_secs_f64() * 1e3;
            slot.1 += 1;
        }
        gaps.last = Some((now, post));
    }

    fn gap(&self, phase: usize, after_post: bool) -> f64 {
        let (sum, count) = self.gaps.lock().unwrap().sums[phase][usize::from(after_post)];
        sum / count.max(1) as f64
    }
}

async fn sink_post(State(sink): State<Arc<Sink>>, body: axum::body::Bytes) -> impl IntoResponse {
    sink.arrived(true);
    let n = sink.posts.fetch_add(1, Ordering::Relaxed);
    let mut answer: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("id".into(), json!(format!("sink-{n}")));
    }
    (
        StatusCode::CREATED,
        [("content-type", SCIM_JSON)],
        answer.to_string(),
    )
}

async fn sink_patch(State(sink): State<Arc<Sink>>) -> impl IntoResponse {
    sink.patches.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, [("content-type", SCIM_JSON)], "{}")
}

async fn sink_list(State(sink): State<Arc<Sink>>) -> impl IntoResponse {
    sink.arrived(false);
    sink.gets.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": []
    });
    (
        StatusCode::OK,
        [("content-type", SCIM_JSON)],
        body.to_string(),
    )
}

async fn start_sink() -> (Arc<Sink>, String) {
    let sink = Arc::new(Sink::default());
    let app = axum::Router::new()
        .route("/scim/v2/Users", get(sink_list).post(sink_post))
        .route("/scim/v2/Users/{id}", patch(sink_patch).put(sink_patch))
        .with_state(Arc::clone(&sink));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (sink, format!("http://{address}/scim/v2"))
}

/// Durable POSTs for `seconds` with `clients`; gives POSTs/s and how many.
async fn post_load(server: &TestServer, prefix: &str, clients: u64, seconds: u64) -> (f64, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = Arc::clone(&next);
        let done = Arc::clone(&done);
        let http = http.clone();
        let url = format!("{}/Users", server.base_url);
        let token = server.token.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = user_body(&format!("{prefix}{n}@bench.example"), n, "Agent");
                let (status, reply) =
                    send(&http, reqwest::Method::POST, &url, &token, Some(&body)).await;
                assert_eq!(status, 201, "{reply}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let count = done.load(Ordering::Relaxed);
    (count as f64 / started.elapsed().as_secs_f64(), count)
}

async fn cost() {
    let clients = size("MUSTER_BENCH_CLIENTS", 16, 2);
    let seconds = size("MUSTER_BENCH_COST_SECONDS", 10, 1);
    let rounds = size("MUSTER_BENCH_ROUNDS", 2, 1);
    println!("cost: durable POST /Users, {clients} clients, {seconds} s per run");
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 1..=rounds {
        {
            let server = TestServer::start().await;
            let (rate, count) = post_load(&server, "plain-", clients, seconds).await;
            println!("  round {round}, no target:      {rate:>8.0} POST/s ({count} users)");
            without.push(rate);
        }
        {
            let server = TestServer::start().await;
            let (sink, url) = start_sink().await;
            put_target(
                &server,
                &target_document("sink", &url, "sink-token", 10_000.0, 1_000),
            )
            .await;
            let (rate, count) = post_load(&server, "synced-", clients, seconds).await;
            let at_end = sink.posts.load(Ordering::Relaxed);
            sink.draining.store(true, Ordering::Relaxed);
            let drained = Instant::now();
            let deadline = drained + Duration::from_secs(120);
            while sink.posts.load(Ordering::Relaxed) < count && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let drain = drained.elapsed().as_secs_f64();
            let delivered = sink.posts.load(Ordering::Relaxed);
            println!(
                "  round {round}, one target:     {rate:>8.0} POST/s ({count} users; delivered during the load {at_end} ({:.0}/s), all {delivered} after {drain:.1} s more ({:.0}/s alone); ingest-to-delivered {:.0} users/s; sink GETs {}, PATCHes {})",
                at_end as f64 / seconds as f64,
                (delivered - at_end) as f64 / drain.max(0.001),
                delivered as f64 / (seconds as f64 + drain),
                sink.gets.load(Ordering::Relaxed),
                sink.patches.load(Ordering::Relaxed),
            );
            println!(
                "    sink request gaps: during the load {:.2} ms after a GET, {:.2} ms after a POST; draining {:.2} / {:.2} ms",
                sink.gap(0, false),
                sink.gap(0, true),
                sink.gap(1, false),
                sink.gap(1, true),
            );
            with.push(rate);
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let (plain, synced) = (mean(&without), mean(&with));
    println!(
        "  mean: no target {plain:.0} POST/s, one target {synced:.0} POST/s: cost {:.1} % (target < 20 %)",
        (1.0 - synced / plain) * 100.0
    );
}

fn main() {
    let phases = std::env::var("MUSTER_BENCH_PHASES")
        .unwrap_or_else(|_| "latency,reconcile,cost".to_owned());
    // `cargo test --all-targets` runs benches as a smoke test: keep it tiny.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    SMOKE.store(smoke, Ordering::Relaxed);
    if smoke {
        println!("(smoke run: `cargo bench` runs the full sizes)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for phase in phases.split(',') {
            match phase.trim() {
                "latency" => latency().await,
                "reconcile" => reconcile().await,
                "cost" => cost().await,
                other => panic!("unknown phase '{other}'"),
            }
        }
    });
}
