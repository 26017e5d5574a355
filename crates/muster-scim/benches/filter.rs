//! Filter parsing and evaluation benchmarks.
//!
//! Targets: a one-clause filter parses in under 1 µs, a five-clause filter
//! with a value path in under 5 µs.

use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use muster_scim::{Filter, SchemaRegistry};
use serde_json::json;

const SIMPLE: &str = r#"userName eq "a@b.c""#;
const FIVE_CLAUSES: &str = r#"userType eq "Employee" and active eq true and emails[type eq "work" and value co "@contoso.com"] and not (meta.lastModified lt "2011-05-13T04:42:34Z")"#;

fn parse(c: &mut Criterion) {
    c.bench_function("parse userName eq", |b| {
        b.iter(|| Filter::parse(black_box(SIMPLE)))
    });
    c.bench_function("parse five clauses with a value path", |b| {
        b.iter(|| Filter::parse(black_box(FIVE_CLAUSES)))
    });
}

fn evaluate(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "bjensen@contoso.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "babs@jensen.org", "type": "home"},
            {"value": "bjensen@contoso.com", "type": "work", "primary": true}
        ],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        }
    });
    for (name, text) in [
        (
            "evaluate userName eq on a user",
            r#"userName eq "BJensen@contoso.com""#,
        ),
        ("evaluate five clauses on a user", FIVE_CLAUSES),
    ] {
        let Ok(filter) = Filter::parse(text) else {
            return;
        };
        assert!(filter.matches(&user, &registry, user_type), "{text}");
        c.bench_function(name, |b| {
            b.iter(|| black_box(&filter).matches(black_box(&user), &registry, user_type))
        });
    }
}

/// Every filter benchmark (written out rather than with `criterion_group!`,
/// whose generated function has no doc comment).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    parse(&mut criterion);
    evaluate(&mut criterion);
}

criterion_main!(benches);
