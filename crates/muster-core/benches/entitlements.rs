//! Stored entitlements at scale (issue 10's performance targets), on a real
//! SQLite file in a temporary directory, durable (`synchronous = FULL`):
//!
//! - a reorganisation moving 10,000 users between groups, through
//!   `Session::patch` as a SCIM client would (one PATCH adds them to the new
//!   group, one empties the old), with every moved user's entitlements
//!   recomputed, stored, indexed and committed: target under 2 s; measured
//!   once before any rule set (the users only get a new version) and once
//!   with the rule set in force;
//! - applying a rule set to 100,000 users (`rules::apply_rules`: the dry-run
//!   summary over every user, then the rule set stored with every changed
//!   user rewritten in its transaction): target under 30 s; and the store's
//!   part alone (`Store::put_rule_set` with `rederive`).
//!
//! The rule set: 200 rules (150 on groups, 50 on title or department), two
//! rules on the reorganised groups, a 50-row cost-center table and a
//! department table. Users: each in one of 150 groups, 10 % of them in the
//! group the reorganisation moves; cost centers from 60 codes (10 unknown to
//! the table: problems).
//!
//! Run: `cargo bench -p muster-core --bench entitlements`. Sizes:
//! `MUSTER_BENCH_USERS` (100000) and `MUSTER_BENCH_MOVED` (10000). Like
//! `muster serve`, it allocates with mimalloc. Run by `cargo test
//! --all-targets` (without `--bench`), it is a smoke test of 300 users.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary: a failure must stop it loudly"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster_core::rules::{apply_rules, ApplyRules, EntitlementDerivation, RulesDocument};
use muster_core::{Limits, Service};
use muster_store::sqlite::{SqliteOptions, SqliteStore};
use muster_store::{Member, NewResource, Precondition, ResourceId, Store, TenantId};
use serde_json::{json, Value};

use common::{actor, document, size, user, CC, GROUP, RULE_GROUPS};

/// As `muster serve` (see crates/muster-cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Creates `count` users, 64 writes in flight (group commit); their ids.
async fn seed_users(store: &Arc<SqliteStore>, count: usize) -> Vec<ResourceId> {
    const TASKS: usize = 64;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in (task..count).step_by(TASKS) {
                let new = NewResource {
                    resource: user(n),
                    ..NewResource::default()
                };
                let created = store
                    .create(&TenantId::default_tenant(), &actor(), "User", new)
                    .await
                    .expect("create a user");
                ids.push((n, created.id));
            }
            ids
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        ids.extend(done.expect("a seeding task"));
    }
    ids.sort_by_key(|(n, _)| *n);
    ids.into_iter().map(|(_, id)| id).collect()
}

async fn seed_group(store: &SqliteStore, name: &str, members: &[ResourceId]) -> ResourceId {
    let new = NewResource {
        resource: json!({"schemas": [GROUP], "displayName": name}),
        members: members
            .iter()
            .map(|id| Member {
                value: id.clone(),
                kind: None,
            })
            .collect(),
        ..NewResource::default()
    };
    store
        .create(&TenantId::default_tenant(), &actor(), "Group", new)
        .await
        .expect("create a group")
        .id
}

/// One PATCH of a group's members through the session, as a client sends it.
async fn patch_members(service: &Service, group: &ResourceId, operation: Value) -> Duration {
    let session = service
        .session(
            TenantId::default_tenant(),
            actor(),
            "https://muster.example.com/scim/v2".to_owned(),
        )
        .await
        .expect("a session");
    let rt = session.resource_type("Groups").expect("Groups");
    let projection = session.projection(&rt, None, None).expect("projection");
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [operation],
    });
    let start = Instant::now();
    session
        .patch(&rt, &group.0, Precondition::None, body, &projection, false)
        .await
        .expect("patch");
    start.elapsed()
}

/// Moves `moved` from one group to the other: add to `to`, then empty `from`.
async fn reorganise(
    service: &Service,
    moved: &[ResourceId],
    from: &ResourceId,
    to: &ResourceId,
) -> (Duration, Duration) {
    let members: Vec<Value> = moved.iter().map(|id| json!({"value": id.0})).collect();
    let added = patch_members(
        service,
        to,
        json!({"op": "add", "path": "members", "value": members}),
    )
    .await;
    let removed = patch_members(
        service,
        from,
        json!({"op": "replace", "path": "members", "value": []}),
    )
    .await;
    (added, removed)
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

async fn entitlements_of(store: &SqliteStore, id: &ResourceId) -> Value {
    store
        .get(&TenantId::default_tenant(), "User", id, false)
        .await
        .expect("get")
        .resource[CC]
        .clone()
}

async fn run() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
    let measuring = std::env::args().any(|argument| argument == "--bench");
    let (default_users, default_moved) = if measuring {
        (100_000, 10_000)
    } else {
        (300, 100)
    };
    let users = size("MUSTER_BENCH_USERS", default_users);
    let moved = size("MUSTER_BENCH_MOVED", default_moved).min(users);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tenant = TenantId::default_tenant();
    println!(
        "stored entitlements: {users} users, {moved} moved; data in {}",
        dir.path().display()
    );

    // Seeded without fsync, then reopened durable for the measurements.
    let start = Instant::now();
    let (ids, queue_a, queue_b) = {
        let fast = SqliteOptions {
            durable: false,
            ..SqliteOptions::default()
        };
        let store = Arc::new(SqliteStore::open_with(dir.path(), &fast).expect("open"));
        let ids = seed_users(&store, users).await;
        for n in 0..RULE_GROUPS {
            let members: Vec<ResourceId> =
                ids.iter().skip(n).step_by(RULE_GROUPS).cloned().collect();
            seed_group(&store, &format!("Group_{n}"), &members).await;
        }
        let queue_a = seed_group(&store, "Queue_A", &ids[..moved]).await;
        let queue_b = seed_group(&store, "Queue_B", &[]).await;
        (ids, queue_a, queue_b)
    };
    println!("seeded in {}", seconds(start.elapsed()));
    let store = Arc::new(SqliteStore::open(dir.path()).expect("reopen durable"));
    let service = Service::new(Arc::clone(&store) as Arc<dyn Store>, Limits::default());
    let moved_ids = &ids[..moved];

    // 1. The reorganisation without a rule set: the moved users only get a
    //    new version (one json_set UPDATE through nested groups).
    let (added, removed) = reorganise(&service, moved_ids, &queue_a, &queue_b).await;
    println!(
        "reorganisation of {moved} users, no rule set:   add {} + empty {} = {}",
        seconds(added),
        seconds(removed),
        seconds(added + removed)
    );

    // 2. The first rule set: every user gets its entitlements stored.
    let start = Instant::now();
    let report = apply_rules(
        store.as_ref(),
        &tenant,
        &actor(),
        &RulesDocument {
            text: &document(0, true),
            files: None,
        },
        &ApplyRules::default(),
    )
    .await
    .expect("apply version 1");
    println!(
        "apply rule set v1 to {users} users (first):      {} ({} rewritten)",
        seconds(start.elapsed()),
        report.rewritten.unwrap_or(0)
    );
    let sample = entitlements_of(&store, &ids[0]).await;
    println!(
        "  a user's entitlements: {} bytes of JSON",
        sample.to_string().len()
    );

    // 3. A new rule set: every cost center to another unit.
    service.invalidate(&tenant);
    let start = Instant::now();
    let report = apply_rules(
        store.as_ref(),
        &tenant,
        &actor(),
        &RulesDocument {
            text: &document(1, true),
            files: None,
        },
        &ApplyRules::default(),
    )
    .await
    .expect("apply version 2");
    println!(
        "apply rule set v2 to {users} users (units move): {} ({} rewritten)",
        seconds(start.elapsed()),
        report.rewritten.unwrap_or(0)
    );

    // 4. The store's part alone: v1 again, put with rederive (no summary).
    let view = muster_core::tenant::load_view(store.as_ref(), &tenant)
        .await
        .expect("view");
    let v1 = muster_rules::RuleSet::parse(&document(0, true)).expect("parse");
    let rules = Arc::new(muster_core::rules::RulesInForce {
        version: 3,
        rule_set: v1,
    });
    let derivation =
        EntitlementDerivation::shared(rules, Arc::clone(&view.registry)).expect("derivation");
    let start = Instant::now();
    let applied = store
        .put_rule_set(
            &tenant,
            &actor(),
            &document(0, true),
            "toml",
            "bench",
            Some(derivation),
            Some(view.generation),
        )
        .await
        .expect("put");
    println!(
        "put_rule_set with rederive, {users} users:        {} ({} rewritten)",
        seconds(start.elapsed()),
        applied.rewritten
    );

    // 5. The reorganisation with the rule set in force: every moved user's
    //    entitlements recomputed, stored and indexed, in each PATCH's
    //    transaction.
    service.invalidate(&tenant);
    let before = entitlements_of(&store, &ids[0]).await;
    let (added, removed) = reorganise(&service, moved_ids, &queue_b, &queue_a).await;
    let after = entitlements_of(&store, &ids[0]).await;
    assert_ne!(before, after, "the moved users' entitlements changed");
    println!(
        "reorganisation of {moved} users, with rules:    add {} + empty {} = {}",
        seconds(added),
        seconds(removed),
        seconds(added + removed)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}
