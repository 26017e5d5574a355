//! Issue 12's performance figures ("Performance"): a `genesys-cloud` target
//! against the Genesys Cloud simulator (crates/muster-simulators), on real
//! servers: an in-process `muster_testkit::TestServer` (the whole axum
//! application over a fresh, durable SQLite file) with the seeds' rules,
//! delivering over loopback HTTP to an in-process `GenesysSim`.
//!
//! 1. **requests**: `MUSTER_BENCH_USERS` (1,000; 20 in a smoke run) users
//!    with entitlements (Group_CC_Agents_Tier1: an Agent grant, a skill, a
//!    language, a management unit by cost center, a license), created and
//!    added to the group in Muster *before* the target is put, so the
//!    target's first run is a full push. The simulator's budget is set out
//!    of reach and the target's `rateLimit` to 1,000 requests/s, so nothing
//!    throttles. Measured until every user holds its license at the
//!    simulator: requests per user (goal: at most 1.5), with a breakdown by
//!    method and path, and the time: measured, and projected at Genesys'
//!    300 requests a minute (requests / 5 per second). With
//!    `MUSTER_BENCH_ROLES_OVER_SCIM=1` the target gives home-division grants
//!    as SCIM roles on the create (`genesys.rolesOverScim`).
//! 2. **deactivate**: the real budget scaled down in time (30 requests per
//!    6 s window: 300 a minute) and the target's default rate limit (4.9/s),
//!    `MUSTER_BENCH_LOAD_USERS` (200; 5 in a smoke run) users loading it as
//!    in 1; once a first user holds its license, it is PATCHed
//!    `active=false` in Muster, and the time runs until the simulator shows
//!    it Inactive (goal: under 2 s; given up after
//!    `MUSTER_BENCH_DEACTIVATE_LIMIT` s, 120). Two loads: `deactivate-push`
//!    (users before the target: the worker's initial full push) and
//!    `deactivate-feed` (target first, users after: the change feed).
//!
//! Run: `cargo bench -p muster-sync --bench genesys`. Phases:
//! `MUSTER_BENCH_PHASES` (`requests,deactivate-push,deactivate-feed`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary: a failure must stop it loudly"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muster_simulators::genesys::{GenesysOptions, GenesysSim, UserState};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// As `muster serve` (see crates/muster-cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The seeds' rules, as in crates/muster-server/tests/sync_genesys.rs.
const RULES: &str = r#"
[catalog]
divisions = ["Customer Support", "APAC"]
licenses = ["CX 1"]
roles = [{ name = "Agent", license = "CX 1" }]
skills = ["Billing"]
languages = ["English"]
management_units = [{ name = "Manila Voice", division = "APAC" }]

[[rules]]
id = "tier1-agents"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{ role = "Agent", division = "Customer Support" }]
skills = [{ name = "Billing", proficiency = 3 }]
languages = [{ name = "English", proficiency = 4 }]
home_division = "Customer Support"

[[tables]]
id = "unit-by-cost-center"
key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
sets = "management_unit"

[tables.rows]
"CC-4100" = "Manila Voice"
"#;

/// Members added per group PATCH.
const MEMBERS_PER_PATCH: usize = 100;

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

/// A simulator seeded with the rules' catalog and the pre-existing group.
async fn seeded_sim(options: GenesysOptions) -> GenesysSim {
    let home_is_support = options.home_division_name == "Customer Support";
    let sim = GenesysSim::start(options).await;
    if !home_is_support {
        sim.seed_division("Customer Support");
    }
    let apac = sim.seed_division("APAC");
    sim.seed_role("Agent");
    sim.seed_skill("Billing");
    sim.seed_language("English");
    sim.seed_management_unit("Manila Voice", &apac);
    sim.seed_license("CX 1");
    sim.seed_group("Group_CC_Agents_Tier1");
    sim
}

/// Muster with the rules and Group_CC_Agents_Tier1; gives the group's id.
async fn muster_with_rules() -> (TestServer, String) {
    let muster = TestServer::start().await;
    let group = muster
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Group_CC_Agents_Tier1"
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let rules = muster
        .http
        .put(format!("{}/admin/v1/rules", muster.root))
        .bearer_auth(&muster.token)
        .header("content-type", "application/toml")
        .body(RULES)
        .send()
        .await
        .unwrap();
    assert!(rules.status().is_success(), "rules: {}", rules.status());
    (muster, group_id)
}

/// Whether the target gives home-division grants as SCIM roles
/// (`MUSTER_BENCH_ROLES_OVER_SCIM=1`).
fn roles_over_scim() -> bool {
    std::env::var("MUSTER_BENCH_ROLES_OVER_SCIM").is_ok_and(|value| value == "1")
}

/// Puts the `genesys-cloud` target; `rate` is `(requests/s, burst)`, or
/// `None` for the kind's default (4.9/s, no burst).
async fn put_target(muster: &TestServer, sim: &GenesysSim, rate: Option<(f64, u32)>) {
    let options = sim.options().clone();
    let mut document = json!({
        "name": "genesys",
        "kind": "genesys-cloud",
        "apiBaseUrl": sim.api_base_url(),
        "loginUrl": sim.login_url(),
        "auth": {
            "type": "oauth-client-credentials",
            "clientId": options.client_id,
            "clientSecret": options.client_secret
        },
        "scope": {"groups": "all"},
    });
    if let Some((rate, burst)) = rate {
        document["rateLimit"] = json!({"requestsPerSecond": rate, "burst": burst});
    }
    if roles_over_scim() {
        document["genesys"] = json!({"rolesOverScim": true});
    }
    let put = muster
        .admin(Method::PUT, "/targets/genesys", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

fn user_body(user_name: &str, n: u64) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "active": true,
        "displayName": format!("Agent {n}"),
        "name": {"givenName": "Agent", "familyName": format!("N{n}")},
        "title": "Agent",
        "emails": [{"type": "work", "value": user_name, "primary": true}],
        ENTERPRISE: {"costCenter": "CC-4100", "department": "Customer Support"}
    })
}

/// Creates `count` users with 8 clients; gives userName -> Muster id.
async fn create_users(muster: &TestServer, prefix: &str, count: u64) -> HashMap<String, String> {
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let next = Arc::clone(&next);
        let ids = Arc::clone(&ids);
        let http = muster.http.clone();
        let url = format!("{}/Users", muster.base_url);
        let token = muster.token.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                let user_name = format!("{prefix}{n}@contoso.com");
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(user_body(&user_name, n).to_string())
                    .send()
                    .await
                    .expect("send");
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let id = body["id"].as_str().unwrap().to_owned();
                ids.lock().unwrap().insert(user_name, id);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(ids).unwrap().into_inner().unwrap()
}

/// Adds the users to the group, `MEMBERS_PER_PATCH` at a time.
async fn add_members(muster: &TestServer, group_id: &str, ids: &HashMap<String, String>) {
    let mut all: Vec<&String> = ids.values().collect();
    all.sort();
    for chunk in all.chunks(MEMBERS_PER_PATCH) {
        let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
        let reply = muster
            .patch(
                &format!("/Groups/{group_id}"),
                json!({
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "members", "value": members}]
                }),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }
}

/// Users at the simulator holding a license.
fn licensed(sim: &GenesysSim) -> Vec<String> {
    sim.users()
        .into_iter()
        .filter(|user| !user.licenses.is_empty())
        .map(|user| user.user_name)
        .collect()
}

/// `METHOD /path` with the ids replaced by `{id}` and the query dropped.
fn shape(method: &str, path: &str) -> String {
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let digits = segment.chars().filter(char::is_ascii_digit).count();
            if segment.len() >= 8 && digits > 0 && !segment.starts_with('v') {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

/// Prints the requests by shape: those made fewer than once per 10 users
/// (the one-off lookups, the token) are summed on one line.
fn breakdown(sim: &GenesysSim, users: u64) {
    let mut shapes = BTreeMap::<String, u64>::new();
    for request in sim.requests() {
        *shapes
            .entry(shape(&request.method, &request.path))
            .or_default() += 1;
    }
    let threshold = (users / 10).max(2);
    let (mut lookups, mut lookup_kinds) = (0u64, 0u64);
    let mut rows: Vec<(String, u64)> = Vec::new();
    for (shape, count) in shapes {
        if count < threshold {
            lookups += count;
            lookup_kinds += 1;
        } else {
            rows.push((shape, count));
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    for (shape, count) in rows {
        println!(
            "    {shape:<64} {count:>7}  ({:.2}/user)",
            count as f64 / users as f64
        );
    }
    println!("    one-off lookups and the token: {lookups} requests of {lookup_kinds} kinds");
}

// ---------------------------------------------------------------- requests

async fn requests() {
    let users = size("MUSTER_BENCH_USERS", 1_000, 20);
    println!("requests: initial load of {users} users with entitlements, nothing throttled");
    let mut options = GenesysOptions {
        rate_limit: 1_000_000_000,
        ..GenesysOptions::default()
    };
    if roles_over_scim() {
        // Genesys grants SCIM roles in the organisation's home division:
        // the seeds' grants are in Customer Support, made the home here.
        options.home_division_name = "Customer Support".into();
        println!("  with genesys.rolesOverScim (Customer Support is the home division)");
    }
    let sim = seeded_sim(options).await;
    let (muster, group_id) = muster_with_rules().await;
    let started = Instant::now();
    let ids = create_users(&muster, "load", users).await;
    add_members(&muster, &group_id, &ids).await;
    println!(
        "  created {users} users in Muster and added them to the group in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    put_target(&muster, &sim, Some((1_000.0, 100))).await;
    let limit = Duration::from_secs(size("MUSTER_BENCH_LIMIT", 1_800, 120));
    let done = loop {
        if licensed(&sim).len() as u64 >= users {
            break true;
        }
        if started.elapsed() > limit {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed().as_secs_f64();
    let recorded = sim.requests();
    let total = recorded.len() as u64;
    let throttled = recorded
        .iter()
        .filter(|request| request.status == 429)
        .count();
    let failed = recorded
        .iter()
        .filter(|request| request.status >= 400 && request.status != 429)
        .count();
    if !done {
        println!(
            "  NOT DONE after {} s: {} of {users} licensed",
            limit.as_secs(),
            licensed(&sim).len()
        );
    }
    println!(
        "  every user licensed at the simulator after {took:.1} s at up to 1,000 requests/s ({:.0} requests/s)",
        total as f64 / took
    );
    println!(
        "  requests: {total} for {users} users: {:.2} per user (goal: at most 1.5); 429s {throttled}, other errors {failed}",
        total as f64 / users as f64
    );
    breakdown(&sim, users);
    let projected = total as f64 / 5.0;
    println!(
        "  projected at 300 requests a minute: {projected:.0} s ({:.1} min); for 10,000 users: {:.1} h",
        projected / 60.0,
        projected / users as f64 * 10_000.0 / 3_600.0
    );
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    println!("  dead letters: {}", letters.body["totalResults"]);
}

// -------------------------------------------------------------- deactivate

async fn deactivate(full_push: bool) {
    let users = size("MUSTER_BENCH_LOAD_USERS", 200, 5);
    let window = size("MUSTER_BENCH_WINDOW_SECONDS", 6, 6);
    let limit = Duration::from_secs(size("MUSTER_BENCH_DEACTIVATE_LIMIT", 120, 60));
    let load = if full_push {
        "users before the target: the initial full push"
    } else {
        "target first, users after: the change feed"
    };
    println!(
        "deactivate ({load}): {users} users loading a budget of 300/min \
         ({} per {window} s), target at its default 4.9/s",
        window * 5
    );
    let sim = seeded_sim(GenesysOptions {
        rate_limit: u32::try_from(window * 5).unwrap(),
        rate_limit_window: Duration::from_secs(window),
        ..GenesysOptions::default()
    })
    .await;
    let (muster, group_id) = muster_with_rules().await;
    let ids = if full_push {
        let ids = create_users(&muster, "busy", users).await;
        add_members(&muster, &group_id, &ids).await;
        put_target(&muster, &sim, None).await;
        ids
    } else {
        put_target(&muster, &sim, None).await;
        let ids = create_users(&muster, "busy", users).await;
        add_members(&muster, &group_id, &ids).await;
        ids
    };
    let loaded = Instant::now();
    // A first user delivered with its license.
    let user_name = loop {
        if let Some(name) = licensed(&sim).into_iter().next() {
            break name;
        }
        assert!(
            loaded.elapsed() < Duration::from_secs(300),
            "no user licensed at the simulator after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let remote = sim.user_by_user_name(&user_name).unwrap().id;
    let before = sim.requests().len();
    println!(
        "  {user_name} licensed {:.1} s into the load ({before} requests so far; {} of {users} licensed)",
        loaded.elapsed().as_secs_f64(),
        licensed(&sim).len()
    );
    let id = &ids[&user_name];
    let reply = muster
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let acked = Instant::now();
    let reached = loop {
        if sim
            .user(&remote)
            .is_some_and(|user| user.state == UserState::Inactive)
        {
            break Some(acked.elapsed());
        }
        if acked.elapsed() > limit {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let recorded = sim.requests();
    let throttled = recorded
        .iter()
        .filter(|request| request.status == 429)
        .count();
    let busy = licensed(&sim).len();
    match reached {
        Some(took) => println!(
            "  deactivation reached the simulator (Inactive) {:.2} s after Muster's ack (goal: under 2 s)",
            took.as_secs_f64()
        ),
        None => println!(
            "  deactivation NOT at the simulator after {} s (goal: under 2 s)",
            limit.as_secs()
        ),
    }
    println!(
        "  meanwhile: {} requests, {busy} of {users} licensed, 429s so far {throttled}, \
         most requests in one window {}",
        recorded.len() - before,
        sim.max_requests_per_window()
    );
}

fn main() {
    let phases = std::env::var("MUSTER_BENCH_PHASES")
        .unwrap_or_else(|_| "requests,deactivate-push,deactivate-feed".to_owned());
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
                "requests" => requests().await,
                "deactivate-push" => deactivate(true).await,
                "deactivate-feed" => deactivate(false).await,
                other => panic!("unknown phase '{other}'"),
            }
        }
    });
}
