//! What authentication and the rate limit add to a request once a
//! credential is cached (the path of every request but one per client per
//! `TOKEN_CACHE_TTL`): hashing the bearer secret (SHA-256), the cache
//! lookup (and the client's clone), and the client's GCRA rate-limit check.
//! Issue 14's target: under 20 µs per request. See BENCHMARKS.md, "Issue 14".
//!
//! `cargo bench -p muster-server --bench auth`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use muster_core::matching::MatchPolicy;
use muster_core::tokens::{hash_secret, mint_token, Client};
use muster_server::auth::TokenCache;
use muster_store::TenantId;

fn client(name: &str, rate_limit: Option<u32>) -> Client {
    Client {
        name: name.to_owned(),
        tenant: TenantId::default_tenant(),
        scopes: vec!["scim.read".to_owned(), "scim.write".to_owned()],
        matching: MatchPolicy::none(),
        rate_limit,
    }
}

fn checks(c: &mut Criterion) {
    let cache = TokenCache::default();
    // A full cache: 9,999 other credentials besides the one measured.
    for index in 0..9_999 {
        let other = mint_token();
        cache.put(
            other.secret_hash,
            client(&format!("other-{index}"), None),
            None,
        );
    }
    let token = mint_token();
    // A limit no benchmark reaches, so every check is a pass.
    let bench = client("bench", Some(u32::MAX));
    let secret = token.secret;
    // An entry lives TOKEN_CACHE_TTL: the store's answer is put back when
    // it has gone, as a server does once per client per TTL (the database
    // read itself is not measured here).
    let authenticate = || {
        let hash = hash_secret(black_box(&secret));
        match cache.get(&hash) {
            Some(client) => client,
            None => {
                cache.put(hash, bench.clone(), None);
                bench.clone()
            }
        }
    };
    let mut group = c.benchmark_group("auth");
    group.bench_function("hash", |b| b.iter(|| hash_secret(black_box(&secret))));
    group.bench_function("hash+cache", |b| b.iter(authenticate));
    group.bench_function("hash+cache+rate_limit", |b| {
        b.iter(|| {
            let client = authenticate();
            cache
                .rate_limits()
                .admit(&client, 1000)
                .map_err(|_| ())
                .expect("within the limit");
        })
    });
    // A refused request costs the same check plus the 429's body.
    let limited = client("limited", Some(1));
    let _ = cache.rate_limits().admit(&limited, 1000);
    group.bench_function("rate_limit_refusal", |b| {
        b.iter(|| {
            cache
                .rate_limits()
                .admit(black_box(&limited), 1000)
                .is_err()
        })
    });
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
