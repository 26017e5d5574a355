//! GET of a user with computed entitlements against one without (issue 10:
//! "within 10 %").
//!
//! Two stores (two tenants' worth of data, each a durable SQLite file in a
//! temporary directory) hold the same users, groups and memberships; in the
//! first a rule set is in force (the bench set of `entitlements.rs`: 200
//! rules, a 50-row cost-center table, a department table), so each user
//! carries the read-only contact-center extension (about 600 bytes); the
//! second has no rule set. Each GET is what `GET /Users/{id}` does below HTTP:
//! a session (the tenant view, cached), the resource type, the default
//! projection, `Session::get` (the stored row, its groups, projection and
//! `meta`), then the body serialised to bytes. Rounds alternate between the
//! two stores so both see the same machine; per round, every user is read
//! once in a shuffled order. Prints the median time per GET of each store
//! and their ratio.
//!
//! Run: `cargo bench -p muster-core --bench get_entitlements`. Sizes:
//! `MUSTER_BENCH_USERS` (10000) and `MUSTER_BENCH_ROUNDS` (10);
//! `MUSTER_BENCH_ONLY=with` (or `without`) reads one store only, to profile
//! it. Like
//! `muster serve`, it allocates with mimalloc. Run by `cargo test
//! --all-targets` (without `--bench`), it is a smoke test of 200 users.

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

use muster_core::rules::{apply_rules, ApplyRules, RulesDocument};
use muster_core::{Limits, Service};
use muster_store::sqlite::{SqliteOptions, SqliteStore};
use muster_store::{Member, NewResource, ResourceId, Store, TenantId};
use serde_json::json;

use common::{actor, document, size, user, CC, GROUP, RULE_GROUPS};

/// As `muster serve` (see crates/muster-cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A store with `users` users, each in one of the 150 rule groups (and,
/// for one user in three, in a second); with the rule set applied when
/// `rules`. The users' ids, in creation order.
async fn seed(dir: &std::path::Path, users: usize, rules: bool) -> Vec<ResourceId> {
    let tenant = TenantId::default_tenant();
    let fast = SqliteOptions {
        durable: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir, &fast).expect("open");
    let mut ids = Vec::with_capacity(users);
    for n in 0..users {
        let new = NewResource {
            resource: user(n),
            ..NewResource::default()
        };
        let created = store
            .create(&tenant, &actor(), "User", new)
            .await
            .expect("create a user");
        ids.push(created.id);
    }
    for group in 0..RULE_GROUPS {
        let members = ids
            .iter()
            .enumerate()
            .filter(|(n, _)| {
                n % RULE_GROUPS == group || (n % 3 == 0 && (n / 3) % RULE_GROUPS == group)
            })
            .map(|(_, id)| Member {
                value: id.clone(),
                kind: None,
            })
            .collect();
        let new = NewResource {
            resource: json!({"schemas": [GROUP], "displayName": format!("Group_{group}")}),
            members,
            ..NewResource::default()
        };
        store
            .create(&tenant, &actor(), "Group", new)
            .await
            .expect("create a group");
    }
    if rules {
        apply_rules(
            &store,
            &tenant,
            &actor(),
            &RulesDocument {
                text: &document(0, false),
                files: None,
            },
            &ApplyRules::default(),
        )
        .await
        .expect("apply the rule set");
    }
    ids
}

/// One `GET /Users/{id}` below HTTP: session, resource type, projection,
/// read, and the body serialised. Returns the body's length.
async fn get(service: &Service, id: &ResourceId) -> usize {
    let session = service
        .session(
            TenantId::default_tenant(),
            actor(),
            "https://muster.example.com/scim/v2".to_owned(),
        )
        .await
        .expect("a session");
    let rt = session.resource_type("Users").expect("Users");
    let projection = session.projection(&rt, None, None).expect("projection");
    let rendered = session.get(&rt, &id.0, &projection).await.expect("get");
    let body = rendered.body.expect("a body");
    serde_json::to_vec(&body).expect("serialise").len()
}

/// Reads every user once, in `order`; the time per GET.
async fn round(service: &Service, ids: &[ResourceId], order: &[usize]) -> Duration {
    let start = Instant::now();
    let mut bytes = 0;
    for position in order {
        bytes += get(service, &ids[*position]).await;
    }
    std::hint::black_box(bytes);
    start.elapsed() / u32::try_from(order.len().max(1)).expect("a count")
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// A fixed permutation of `0..count` (a linear congruential shuffle), the
/// same for both stores.
fn shuffled(count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..count).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from(state >> 33).expect("fits") % (i + 1);
        order.swap(i, j);
    }
    order
}

async fn run() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
    let measuring = std::env::args().any(|argument| argument == "--bench");
    let (default_users, default_rounds) = if measuring { (10_000, 10) } else { (200, 2) };
    let users = size("MUSTER_BENCH_USERS", default_users);
    let rounds = size("MUSTER_BENCH_ROUNDS", default_rounds).max(1);
    let with_dir = tempfile::tempdir().expect("a temporary directory");
    let without_dir = tempfile::tempdir().expect("a temporary directory");
    println!("GET with and without entitlements: {users} users, {rounds} rounds");

    let start = Instant::now();
    let with_ids = seed(with_dir.path(), users, true).await;
    let without_ids = seed(without_dir.path(), users, false).await;
    println!("seeded in {:.1} s", start.elapsed().as_secs_f64());

    let with_store = Arc::new(SqliteStore::open(with_dir.path()).expect("reopen durable"));
    let without_store = Arc::new(SqliteStore::open(without_dir.path()).expect("reopen durable"));
    let with = Service::new(with_store as Arc<dyn Store>, Limits::default());
    let without = Service::new(without_store as Arc<dyn Store>, Limits::default());

    // The same user in both, differing only by the computed extension.
    let sample_with = with
        .store()
        .get(&TenantId::default_tenant(), "User", &with_ids[0], false)
        .await
        .expect("get")
        .resource;
    let sample_without = without
        .store()
        .get(&TenantId::default_tenant(), "User", &without_ids[0], false)
        .await
        .expect("get")
        .resource;
    assert!(sample_with.get(CC).is_some(), "entitlements are stored");
    assert!(sample_without.get(CC).is_none(), "no entitlements");
    println!(
        "  a user's body: {} bytes with entitlements ({} of them the extension), {} without",
        sample_with.to_string().len(),
        sample_with[CC].to_string().len(),
        sample_without.to_string().len()
    );

    let order = shuffled(users);
    // `MUSTER_BENCH_ONLY=with|without`: read one store only (to profile it).
    if let Ok(only) = std::env::var("MUSTER_BENCH_ONLY") {
        let (service, ids) = if only == "with" {
            (&with, &with_ids)
        } else {
            (&without, &without_ids)
        };
        for _ in 0..rounds {
            let time = round(service, ids, &order).await;
            println!("{only}: {:.2} µs per GET", time.as_secs_f64() * 1e6);
        }
        return;
    }
    // Warm both (page cache, tenant views, SQLite caches).
    round(&with, &with_ids, &order).await;
    round(&without, &without_ids, &order).await;
    let mut with_times = Vec::new();
    let mut without_times = Vec::new();
    for n in 0..rounds {
        // Alternate which goes first, so drift favours neither.
        let (a, b) = if n % 2 == 0 {
            let a = round(&with, &with_ids, &order).await;
            (a, round(&without, &without_ids, &order).await)
        } else {
            let b = round(&without, &without_ids, &order).await;
            (round(&with, &with_ids, &order).await, b)
        };
        println!(
            "round {n}: with {:.2} µs, without {:.2} µs per GET",
            a.as_secs_f64() * 1e6,
            b.as_secs_f64() * 1e6
        );
        with_times.push(a);
        without_times.push(b);
    }
    // Rounds are paired (back to back), so the ratio within a round is
    // the least sensitive to the machine's drift.
    let mut ratios: Vec<f64> = with_times
        .iter()
        .zip(&without_times)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let paired = ratios[ratios.len() / 2];
    let with_median = median(with_times);
    let without_median = median(without_times);
    let ratio = with_median.as_secs_f64() / without_median.as_secs_f64();
    println!(
        "median per GET: with entitlements {:.2} µs, without {:.2} µs: {:+.1} % (target within 10 %)",
        with_median.as_secs_f64() * 1e6,
        without_median.as_secs_f64() * 1e6,
        (ratio - 1.0) * 100.0
    );
    println!(
        "median of the per-round ratios: {:+.1} %",
        (paired - 1.0) * 100.0
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
