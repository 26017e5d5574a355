//! Parses arbitrary text as a rule-set document (TOML or JSON). Nothing may
//! panic. The input may carry a CSV file after a NUL byte: every `csv = ...`
//! a table names reads it. Whatever parses must:
//! - print (`to_json`) to a document that parses back to the same one;
//! - validate, evaluate and explain a user without panicking, explain (which
//!   tests every rule) agreeing with evaluate (which uses the rule index);
//! - evaluate the same twice.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use muster_rules::{RuleSet, CONTACT_CENTER_URN};
use muster_scim::SchemaRegistry;
use serde_json::{json, Value};

fn fixture() -> &'static (SchemaRegistry, Vec<Value>) {
    static FIXTURE: OnceLock<(SchemaRegistry, Vec<Value>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut registry = SchemaRegistry::builtin();
        let _ = registry.put_extension(muster_rules::contact_center_schema(), "User", false);
        let agent = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "ana@contoso.com",
            "title": "Level 2 Support",
            "userType": "Employee",
            "active": true,
            "emails": [{"value": "ana@contoso.com", "type": "work", "primary": true}],
            "groups": [
                {"value": "g1", "display": "Group_CC_Agents_Tier1", "type": "direct"},
                {"value": "g2", "display": "Genesys_Cloud_Users", "type": "indirect"}
            ],
            "meta": {"lastModified": "2011-05-13T04:42:34Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "costCenter": "CC-4100"
            },
            CONTACT_CENTER_URN: {"managementUnit": {"name": "x", "rule": "y"}}
        });
        let mut inactive = agent.clone();
        inactive["active"] = json!(false);
        inactive["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({});
        (registry, vec![agent, inactive])
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (text, csv) = input.split_once('\0').unwrap_or((input, "key,value\n"));
    let read = |_: &str| -> Result<String, String> { Ok(csv.to_owned()) };
    let rule_set = match RuleSet::parse_with_files(text, &read) {
        Ok(rule_set) => rule_set,
        Err(errors) => {
            assert!(!errors.errors().is_empty());
            let _ = errors.to_string();
            return;
        }
    };
    let printed = rule_set.to_json();
    let printed_text = printed.to_string();
    match RuleSet::parse(&printed_text) {
        Ok(reparsed) => assert_eq!(reparsed.to_json(), printed, "{text:?}"),
        Err(errors) => panic!("{text:?} printed as {printed_text}, which fails: {errors}"),
    }

    let (registry, users) = fixture();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let groups = vec!["Group_CC_Agents_Tier1".to_owned()];
    if let Err(errors) = rule_set.validate(registry, user_type, &groups) {
        let _ = errors.to_string();
    }
    for user in users {
        let entitlements = rule_set.evaluate(registry, user_type, user);
        assert_eq!(entitlements, rule_set.evaluate(registry, user_type, user));
        let explanation = rule_set.explain(registry, user_type, user);
        assert_eq!(explanation.entitlements, entitlements, "{text:?}");
        let _ = explanation.to_string();
        let _ = rule_set.matched_rules(registry, user_type, user);
        if user["active"] == json!(false) {
            assert!(entitlements.licenses.is_empty() && entitlements.grants.is_empty());
        }
    }
});
