//! PATCH and validation benchmarks.
//!
//! Targets: a ten-operation PATCH applied to a full user in under 10 µs;
//! normalising a full user body is reported alongside.

use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use muster_scim::schema::builtin::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use muster_scim::{apply_patch, normalize, PatchOp, SchemaRegistry};
use serde_json::{json, Value};

/// A stored user with every commonly provisioned attribute.
fn full_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7a2e4a1c0e11",
        "meta": {
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-01-01T00:00:00Z",
            "version": "W/\"7\""
        },
        "userName": "bjensen@contoso.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "emails": [
            {"value": "bjensen@contoso.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "addresses": [{
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "type": "work",
            "primary": true
        }],
        "roles": [{"value": "agent"}],
        ENTERPRISE_USER_SCHEMA: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

/// Ten operations of the shapes identity providers send.
fn ten_operations() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "title", "value": "Senior Tour Guide"},
            {"op": "Replace", "path": "name.givenName", "value": "Barb"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barb@contoso.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "555-555-3333"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Burbank"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-2"},
            {"op": "Replace", "value": {
                "displayName": "Barb Jensen",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"
            }},
            {"op": "Add", "path": "roles", "value": [{"value": "supervisor"}]},
            {"op": "Remove", "path": "nickName"}
        ]
    })
}

fn patch(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let user = full_user();
    let Ok(message) = PatchOp::from_json(&ten_operations()) else {
        return;
    };
    c.bench_function("apply ten-operation PATCH to a full user", |b| {
        b.iter(|| {
            apply_patch(
                &registry,
                user_type,
                black_box(&user),
                black_box(&message.operations),
            )
        })
    });
    c.bench_function(
        "apply ten-operation PATCH to a full user (result dropped outside the timing)",
        |b| {
            b.iter_with_large_drop(|| {
                apply_patch(
                    &registry,
                    user_type,
                    black_box(&user),
                    black_box(&message.operations),
                )
            })
        },
    );
    // The floor: apply_patch takes the stored resource by reference, so it
    // clones it once and the caller drops the result.
    c.bench_function("baseline: clone and drop a full user", |b| {
        b.iter(|| black_box(&user).clone())
    });
    let body = ten_operations();
    c.bench_function("parse ten-operation PatchOp", |b| {
        b.iter(|| PatchOp::from_json(black_box(&body)))
    });
}

fn validate(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let body = full_user();
    c.bench_function("normalize a full user", |b| {
        b.iter(|| normalize(&registry, user_type, black_box(&body)))
    });
}

/// Large multi-valued attributes: `add` and `remove` look values up by key,
/// so 10,000 values cost milliseconds, not the seconds a pairwise scan took
/// (issue 9: one request must not hold a worker).
fn large_lists(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let emails = |prefix: &str| -> Vec<Value> {
        (0..10_000)
            .map(|i| json!({"value": format!("{prefix}{i}@contoso.com")}))
            .collect()
    };
    let message = |op: &str, value: Vec<Value>| {
        PatchOp::from_json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "emails", "value": value}]
        }))
    };
    let user = full_user();
    let (Ok(add), Ok(remove)) = (message("add", emails("a")), message("remove", emails("A")))
    else {
        return;
    };
    let Ok(large) = apply_patch(&registry, user_type, &user, &add.operations) else {
        return;
    };
    c.bench_function("add 10,000 emails in one operation", |b| {
        b.iter(|| apply_patch(&registry, user_type, black_box(&user), &add.operations))
    });
    c.bench_function("remove 10,000 of 10,002 emails by value", |b| {
        b.iter(|| {
            apply_patch(
                &registry,
                user_type,
                black_box(&large.resource),
                &remove.operations,
            )
        })
    });
}

/// Every PATCH benchmark (written out rather than with `criterion_group!`,
/// whose generated function has no doc comment).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    patch(&mut criterion);
    validate(&mut criterion);
    large_lists(&mut criterion);
}

criterion_main!(benches);
