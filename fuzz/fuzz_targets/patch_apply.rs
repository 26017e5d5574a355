//! Parses arbitrary bytes as a PatchOp message and applies it to a fixed,
//! full user. Nothing may panic; a refusal is a 400 (never a 500, which
//! would mean the applier broke its own invariants); a success is canonical
//! (re-canonicalising changes nothing) and `changed` tells the truth.

#![no_main]

use libfuzzer_sys::fuzz_target;
use muster_scim::{
    apply_patch, apply_patch_with, canonicalize, Attribute, AttributeType, Mutability, PatchOp,
    Schema, SchemaRegistry, UndeclaredPolicy,
};
use serde_json::{json, Value};

const CONTOSO: &str = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User";

fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let added = registry.add_schema(Schema {
        id: CONTOSO.to_owned(),
        name: None,
        description: None,
        attributes: vec![
            Attribute::new("region", AttributeType::String),
            Attribute::new("level", AttributeType::Integer),
            Attribute {
                mutability: Mutability::Immutable,
                ..Attribute::new("employeeId", AttributeType::String)
            },
            Attribute {
                multi_valued: true,
                ..Attribute::new("skills", AttributeType::String)
            },
        ],
    });
    assert!(added.is_ok());
    assert!(registry.bind_extension("User", CONTOSO, false).is_ok());
    registry
}

fn full_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            CONTOSO
        ],
        "id": "u-1",
        "externalId": "e-1",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                 "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
        "userName": "bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Agent",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-1234", "type": "work"}],
        "addresses": [{"locality": "Hollywood", "type": "home"}],
        "roles": [{"value": "agent"}],
        "x509Certificates": [{"value": "TUlJ"}],
        "groups": [{"value": "g-1", "display": "Ops"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "m-1", "displayName": "John Smith"}
        },
        CONTOSO: {"region": "EMEA", "employeeId": "E1", "skills": ["voice"]}
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(patch) = PatchOp::from_json(&body) else {
        return;
    };
    let registry = registry();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let user = full_user();
    match apply_patch(&registry, user_type, &user, &patch.operations) {
        Ok(outcome) => {
            let again = canonicalize(&registry, user_type, &outcome.resource);
            assert_eq!(again.as_ref(), Ok(&outcome.resource), "not canonical");
            assert_eq!(outcome.changed, outcome.resource != user, "changed flag");
        }
        Err(error) => assert_eq!(error.status, 400, "{error}"),
    }
    // Capture mode: undeclared paths land in the unmapped object; what is
    // declared obeys the same rules, and nothing escapes into the resource.
    let unmapped = serde_json::Map::new();
    match apply_patch_with(
        &registry,
        user_type,
        &user,
        &unmapped,
        &patch.operations,
        UndeclaredPolicy::Capture,
    ) {
        Ok(patched) => {
            let again = canonicalize(&registry, user_type, &patched.resource);
            assert_eq!(again.as_ref(), Ok(&patched.resource), "not canonical");
            assert_eq!(patched.changed, patched.resource != user, "changed flag");
            assert_eq!(
                patched.unmapped_changed,
                patched.unmapped != unmapped,
                "unmapped changed flag"
            );
        }
        Err(error) => assert_eq!(error.status, 400, "{error}"),
    }
});
