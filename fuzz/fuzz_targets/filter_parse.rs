//! Parses arbitrary text as a filter. Whatever parses must print to text that
//! parses back to the same tree under the same depth and clause limits, and
//! must check and evaluate against a user without panicking.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use muster_scim::{AttrPath, Filter, FilterLimits, SchemaRegistry, ScimType};
use serde_json::{json, Value};

fn fixture() -> &'static (SchemaRegistry, Value) {
    static FIXTURE: OnceLock<(SchemaRegistry, Value)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let user = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        });
        (SchemaRegistry::builtin(), user)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = FilterLimits::default();
    let filter = match Filter::parse_with(text, &limits) {
        Ok(filter) => filter,
        Err(error) => {
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
            return;
        }
    };
    let printed = filter.to_string();
    let relaxed = FilterLimits {
        max_length: usize::MAX,
        ..limits
    };
    match Filter::parse_with(&printed, &relaxed) {
        Ok(reparsed) => assert_eq!(reparsed, filter, "{text:?} printed as {printed:?}"),
        Err(error) => panic!("{text:?} printed as {printed:?}, which fails: {error}"),
    }

    let (registry, user) = fixture();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let _ = filter.check(registry, user_type);
    let _ = filter.matches(user, registry, user_type);
    if let Some(emails) = registry.resolve_attribute(user_type, &AttrPath::new("emails")) {
        for email in user["emails"].as_array().into_iter().flatten() {
            let _ = filter.matches_element(email, emails.attribute);
        }
    }
});
