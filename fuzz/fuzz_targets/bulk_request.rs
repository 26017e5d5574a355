//! Drives the Bulk request path the way the server does, against an
//! in-memory registry and store: arbitrary bytes as JSON, read as a
//! BulkRequest, then pass after pass over the operations: `bulkId:`
//! references resolved against the ids the POST operations "created" so
//! far, the target split from the resolved path, the resource type looked up
//! by endpoint, then `normalize` for POST and PUT, `PatchOp::from_json` and
//! `apply_patch` on a small stored resource for PATCH.
//!
//! Nothing may panic (nor overflow the stack, however many references);
//! every refusal is a 400; a resolved operation holds no reference any more;
//! an operation waits exactly while one of its bulkIds is not created.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use muster_scim::{
    apply_patch, canonicalize, normalize, referenced_bulk_ids, resolve_references, BulkMethod,
    BulkOperation, BulkRequest, BulkTarget, PatchOp, ResourceType, SchemaRegistry, ScimError,
    ScimType,
};
use serde_json::{json, Value};

/// The stored resource a PUT or PATCH of `resource_type` applies to.
fn stored(resource_type: &ResourceType, id: &str) -> Value {
    if resource_type.id == "Group" {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": id,
            "meta": {"resourceType": "Group", "created": "2024-01-01T00:00:00Z",
                     "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
            "displayName": "Sales",
            "members": [{"value": "u-1"}, {"value": "u-2"}]
        })
    } else {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": id,
            "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                     "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""},
            "userName": "bjensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@home.example", "type": "home"}
            ],
            "roles": [{"value": "Admin", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "manager": {"value": "m-1"}
            }
        })
    }
}

/// A refusal of the request path: a 400, never anything else.
fn refused(error: &ScimError) {
    assert_eq!(error.status, 400, "{error}");
}

/// Runs one operation whose references are resolved; returns whether it
/// succeeded.
fn run(
    registry: &SchemaRegistry,
    operation: &BulkOperation,
    path: &str,
    data: Option<&Value>,
) -> bool {
    let target = match BulkTarget::parse(operation.method, path) {
        Ok(target) => target,
        Err(error) => {
            assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax), "{error}");
            refused(&error);
            return false;
        }
    };
    assert_eq!(
        target.id.is_none(),
        operation.method == BulkMethod::Post,
        "{path}"
    );
    let Some(resource_type) = registry.resource_types().iter().find(|rt| {
        rt.endpoint
            .trim_start_matches('/')
            .eq_ignore_ascii_case(&target.endpoint)
    }) else {
        return false;
    };
    let id = target.id.as_deref().unwrap_or("new");
    match (operation.method, data) {
        (BulkMethod::Post | BulkMethod::Put, Some(data)) => {
            match normalize(registry, resource_type, data) {
                Ok(resource) => {
                    let again = canonicalize(registry, resource_type, &resource);
                    assert_eq!(again.as_ref(), Ok(&resource), "not canonical");
                    true
                }
                Err(error) => {
                    refused(&error);
                    false
                }
            }
        }
        (BulkMethod::Patch, Some(data)) => {
            let patch = match PatchOp::from_json(data) {
                Ok(patch) => patch,
                Err(error) => {
                    refused(&error);
                    return false;
                }
            };
            let before = stored(resource_type, id);
            match apply_patch(registry, resource_type, &before, &patch.operations) {
                Ok(outcome) => {
                    let again = canonicalize(registry, resource_type, &outcome.resource);
                    assert_eq!(again.as_ref(), Ok(&outcome.resource), "not canonical");
                    true
                }
                Err(error) => {
                    refused(&error);
                    false
                }
            }
        }
        (BulkMethod::Delete, _) => true,
        (BulkMethod::Post | BulkMethod::Put | BulkMethod::Patch, None) => {
            panic!(
                "BulkRequest::from_json let a {:?} without data through",
                operation.method
            )
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(request) = BulkRequest::from_json(&body) else {
        return;
    };
    let registry = SchemaRegistry::builtin();
    let mut created: HashMap<String, String> = HashMap::new();
    let mut pending: Vec<usize> = (0..request.operations.len()).collect();
    // Pass after pass, as the server runs them, until no operation can run.
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        for index in pending.iter().copied() {
            let Some(operation) = request.operations.get(index) else {
                continue;
            };
            // The target of the path as written never panics either.
            if let Err(error) = operation.target() {
                refused(&error);
            }
            let referenced = referenced_bulk_ids(operation);
            let resolved = resolve_references(operation, &created);
            match (&referenced, &resolved) {
                (Err(expected), Err(error)) => {
                    assert_eq!(error, expected);
                    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{error}");
                    refused(error);
                    continue;
                }
                (Ok(ids), Ok(None)) => {
                    assert!(ids.iter().any(|id| !created.contains_key(*id)));
                    waiting.push(index);
                    continue;
                }
                (Ok(ids), Ok(Some(_))) => {
                    assert!(ids.iter().all(|id| created.contains_key(*id)));
                }
                _ => {
                    panic!("referenced_bulk_ids {referenced:?} but resolve_references {resolved:?}")
                }
            }
            let Ok(Some((path, data))) = resolved else {
                continue;
            };
            // Nothing is left to resolve.
            let after = BulkOperation {
                path: path.clone(),
                data: data.clone(),
                ..operation.clone()
            };
            assert_eq!(referenced_bulk_ids(&after), Ok(vec![]), "{path}");
            let succeeded = run(&registry, operation, &path, data.as_ref());
            if succeeded && operation.method == BulkMethod::Post {
                if let Some(bulk_id) = &operation.bulk_id {
                    created.insert(bulk_id.clone(), format!("fz{index}"));
                }
            }
        }
        if waiting.len() == pending.len() {
            break;
        }
        pending = waiting;
    }
});
