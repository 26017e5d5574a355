//! The seeds' scenario end to end: the example rule set parsed with its CSV
//! file, validated against the registry and groups, evaluated and explained
//! for Contoso's users.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{contoso, groups, registry, user, user_type};
use muster_rules::{EntitlementChanges, Entitlements, RuleSet, TraceKind};
use serde_json::{json, Value};

/// Evaluates `user` with `rule_set` and compares the extension's JSON.
fn check(rule_set: &RuleSet, user: Value, expected: Value) {
    let registry = registry();
    let entitlements = rule_set.evaluate(&registry, user_type(&registry), &user);
    let got = entitlements.to_json();
    assert_eq!(
        got,
        expected,
        "user {}:\n{}",
        user["userName"],
        serde_json::to_string_pretty(&got).unwrap()
    );
    // Explain carries the same result, and the index changes nothing.
    let explanation = rule_set.explain(&registry, user_type(&registry), &user);
    assert_eq!(explanation.entitlements, entitlements);
}

#[test]
fn the_example_parses_and_validates() {
    let rule_set = contoso();
    let registry = registry();
    if let Err(errors) = rule_set.validate(&registry, user_type(&registry), &groups()) {
        panic!("{errors}");
    }
    assert_eq!(
        rule_set.rule_ids(),
        [
            "cloud-users",
            "tier1-agents",
            "level2-quality",
            "sales-department",
            "apac-tagalog",
            "night-shift",
            "no-contractor-evaluators",
            "division-by-department",
            "unit-by-cost-center",
        ]
    );
    let units: Vec<(&str, &str, &str)> = rule_set
        .catalog()
        .management_units()
        .iter()
        .map(|unit| (unit.id.as_str(), unit.name.as_str(), unit.division.as_str()))
        .collect();
    assert_eq!(
        units,
        [
            ("manila-voice", "Manila Voice", "APAC"),
            ("manila-chat", "Manila Chat", "APAC"),
            ("mnl-night", "Manila Night", "APAC"),
            ("austin-voice", "Austin Voice", "Customer Support"),
        ]
    );
}

#[test]
fn tier1_agent_in_manila() {
    check(
        &contoso(),
        user("ana")
            .groups(&["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"])
            .enterprise("department", "Customer Support")
            .enterprise("costCenter", "CC-4100")
            .contoso("region", json!("APAC"))
            .build(),
        json!({
            "grants": [
                {"role": "Agent", "division": "Customer Support", "rule": "tier1-agents"},
                {"role": "Employee", "division": "Home", "rule": "cloud-users"}
            ],
            "skills": [{"name": "Billing", "proficiency": 3, "rule": "tier1-agents"}],
            "languages": [
                {"name": "English", "proficiency": 4, "rule": "tier1-agents"},
                {"name": "Tagalog", "proficiency": 4, "rule": "apac-tagalog"}
            ],
            "managementUnit": {"name": "Manila Voice", "rule": "unit-by-cost-center"},
            "homeDivision": {"name": "Customer Support", "rule": "division-by-department"},
            "licenses": [{"name": "CX 1", "rule": "tier1-agents"}]
        }),
    );
}

#[test]
fn level2_support_title_makes_a_quality_evaluator() {
    check(
        &contoso(),
        user("ben")
            .groups(&["Genesys_Cloud_Users"])
            .set("title", json!("Level 2 Support"))
            .enterprise("department", "Sales")
            .enterprise("costCenter", "cc-4200 ")
            .build(),
        json!({
            "grants": [
                {"role": "Employee", "division": "Home", "rule": "cloud-users"},
                {"role": "Quality Evaluator", "division": "Customer Support", "rule": "level2-quality"}
            ],
            "skills": [
                {"name": "Sales", "proficiency": 3, "rule": "sales-department"},
                {"name": "Technical Support", "proficiency": 4, "rule": "level2-quality"}
            ],
            "managementUnit": {"name": "Manila Chat", "rule": "unit-by-cost-center"},
            "homeDivision": {"name": "Sales", "rule": "division-by-department"},
            "licenses": [
                {"name": "CX 1", "rule": "cloud-users"},
                {"name": "CX 3", "rule": "level2-quality"}
            ]
        }),
    );
}

#[test]
fn a_contractor_loses_the_evaluator_role_to_the_removal() {
    check(
        &contoso(),
        user("cy")
            .groups(&["Genesys_Cloud_Users"])
            .set("title", json!("Level 2 Support"))
            .set("userType", json!("Contractor"))
            .enterprise("department", "Customer Support")
            .enterprise("costCenter", "CC-5100")
            .build(),
        json!({
            "grants": [{"role": "Employee", "division": "Home", "rule": "cloud-users"}],
            "skills": [{"name": "Technical Support", "proficiency": 4, "rule": "level2-quality"}],
            "managementUnit": {"name": "Austin Voice", "rule": "unit-by-cost-center"},
            "homeDivision": {"name": "Customer Support", "rule": "division-by-department"},
            "licenses": [{"name": "CX 1", "rule": "cloud-users"}]
        }),
    );
}

#[test]
fn a_missing_cost_center_is_flagged_and_gives_no_unit() {
    check(
        &contoso(),
        user("carla")
            .groups(&["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"])
            .enterprise("department", "Customer Support")
            .build(),
        json!({
            "grants": [
                {"role": "Agent", "division": "Customer Support", "rule": "tier1-agents"},
                {"role": "Employee", "division": "Home", "rule": "cloud-users"}
            ],
            "skills": [{"name": "Billing", "proficiency": 3, "rule": "tier1-agents"}],
            "languages": [{"name": "English", "proficiency": 4, "rule": "tier1-agents"}],
            "homeDivision": {"name": "Customer Support", "rule": "division-by-department"},
            "licenses": [{"name": "CX 1", "rule": "tier1-agents"}],
            "problems": [{
                "code": "missingKey",
                "detail": "table 'unit-by-cost-center' looks up urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter, which this user does not have; it gives no management unit",
                "rules": ["unit-by-cost-center"]
            }]
        }),
    );
}

#[test]
fn an_unknown_cost_center_is_flagged() {
    check(
        &contoso(),
        user("eve")
            .groups(&["Genesys_Cloud_Users"])
            .enterprise("department", "Marketing")
            .enterprise("costCenter", "CC-9999")
            .build(),
        json!({
            "grants": [{"role": "Employee", "division": "Home", "rule": "cloud-users"}],
            "licenses": [{"name": "CX 1", "rule": "cloud-users"}],
            "problems": [
                {
                    "code": "unknownKey",
                    "detail": "table 'division-by-department' has no row for urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department 'Marketing'; it gives no division",
                    "rules": ["division-by-department"]
                },
                {
                    "code": "unknownKey",
                    "detail": "table 'unit-by-cost-center' has no row for urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter 'CC-9999'; it gives no management unit",
                    "rules": ["unit-by-cost-center"]
                }
            ]
        }),
    );
}

#[test]
fn the_night_shift_outranks_the_cost_center_without_a_problem() {
    // No cost center, but a rule of higher priority decides the unit: the
    // missing key could not have changed anything, so it is not a problem.
    check(
        &contoso(),
        user("nick")
            .groups(&["Genesys_Cloud_Users", "Group_CC_Night_Shift"])
            .enterprise("department", "APAC Operations")
            .build(),
        json!({
            "grants": [{"role": "Employee", "division": "Home", "rule": "cloud-users"}],
            "managementUnit": {"name": "Manila Night", "rule": "night-shift"},
            "homeDivision": {"name": "APAC", "rule": "division-by-department"},
            "licenses": [{"name": "CX 1", "rule": "cloud-users"}]
        }),
    );
}

#[test]
fn a_tie_of_equal_priorities_leaves_the_unit_unset() {
    // The same file with the night-shift rule at the table's priority.
    let text = common::contoso_text().replace(
        "id = \"night-shift\"\npriority = 10",
        "id = \"night-shift\"\npriority = 0",
    );
    let rule_set = RuleSet::parse_with_files(&text, &common::read_example_file).unwrap();
    check(
        &rule_set,
        user("nora")
            .groups(&["Genesys_Cloud_Users", "Group_CC_Night_Shift"])
            .enterprise("department", "APAC Operations")
            .enterprise("costCenter", "CC-4100")
            .build(),
        json!({
            "grants": [{"role": "Employee", "division": "Home", "rule": "cloud-users"}],
            "homeDivision": {"name": "APAC", "rule": "division-by-department"},
            "licenses": [{"name": "CX 1", "rule": "cloud-users"}],
            "problems": [{
                "code": "tie",
                "detail": "management unit: rules 'night-shift', 'unit-by-cost-center' of the same priority 0 give different values ('Manila Night', 'Manila Voice'); none is set",
                "rules": ["night-shift", "unit-by-cost-center"]
            }]
        }),
    );
}

#[test]
fn an_inactive_user_holds_no_grants_or_licenses() {
    let rule_set = contoso();
    let active = user("dan")
        .groups(&["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"])
        .enterprise("department", "Customer Support")
        .enterprise("costCenter", "CC-4100");
    let inactive = active.set("active", json!(false)).build();
    check(
        &rule_set,
        inactive.clone(),
        json!({
            "managementUnit": {"name": "Manila Voice", "rule": "unit-by-cost-center"},
            "homeDivision": {"name": "Customer Support", "rule": "division-by-department"}
        }),
    );
    // Deactivation frees the licenses: the dry-run diff says so.
    let registry = registry();
    let mut reactivated = inactive.clone();
    reactivated["active"] = json!(true);
    let before = rule_set.evaluate(&registry, user_type(&registry), &reactivated);
    let after = rule_set.evaluate(&registry, user_type(&registry), &inactive);
    let changes = EntitlementChanges::between(&before, &after);
    assert_eq!(
        serde_json::to_value(&changes).unwrap(),
        json!({
            "grantsRemoved": [
                {"role": "Agent", "division": "Customer Support", "rule": "tier1-agents"},
                {"role": "Employee", "division": "Home", "rule": "cloud-users"}
            ],
            "skillsRemoved": [{"name": "Billing", "proficiency": 3, "rule": "tier1-agents"}],
            "languagesRemoved": [{"name": "English", "proficiency": 4, "rule": "tier1-agents"}],
            "licensesRemoved": [{"name": "CX 1", "rule": "tier1-agents"}]
        })
    );
}

#[test]
fn users_outside_every_rule_get_the_defaults() {
    check(
        &contoso(),
        user("olga").enterprise("department", "Finance").build(),
        json!({"homeDivision": {"name": "Home", "rule": "defaults"}}),
    );
}

#[test]
fn explain_shows_why_a_rule_did_not_match() {
    let rule_set = contoso();
    let registry = registry();
    let carla = user("carla")
        .groups(&["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"])
        .set("title", json!("Level 1 Support"))
        .enterprise("department", "Customer Support")
        .build();
    let explanation = rule_set.explain(&registry, user_type(&registry), &carla);
    let trace = |id: &str| {
        explanation
            .rules
            .iter()
            .find(|trace| trace.rule == id)
            .unwrap()
    };

    let level2 = trace("level2-quality");
    assert!(!level2.matched);
    assert_eq!(
        serde_json::to_value(&level2.evidence).unwrap(),
        json!([{
            "condition": "title eq \"Level 2 Support\"",
            "path": "title",
            "values": ["Level 1 Support"],
            "holds": false
        }])
    );

    let night = trace("night-shift");
    assert_eq!(
        serde_json::to_value(&night.evidence).unwrap(),
        json!([{
            "condition": "groups[display eq \"Group_CC_Night_Shift\"]",
            "path": "groups.display",
            "values": ["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"],
            "holds": false
        }])
    );

    let tier1 = trace("tier1-agents");
    assert!(tier1.matched);
    assert_eq!(
        tier1.effects.first().map(|e| e.outcome.as_str()),
        Some("held")
    );

    let unit = trace("unit-by-cost-center");
    assert_eq!(unit.kind, TraceKind::Table);
    assert!(unit.matched);
    let lookup = unit.lookup.as_ref().unwrap();
    assert_eq!(lookup.value, None);

    let held: Vec<(&str, &str)> = explanation
        .held
        .iter()
        .map(|item| (item.entitlement.as_str(), item.rule.as_str()))
        .collect();
    assert_eq!(
        held,
        [
            ("home division 'Customer Support'", "division-by-department"),
            ("language 'English' (4)", "tier1-agents"),
            ("license 'CX 1' (needed by role 'Agent')", "tier1-agents"),
            ("role 'Agent' in 'Customer Support'", "tier1-agents"),
            ("role 'Employee' in 'Home'", "cloud-users"),
            ("skill 'Billing' (3)", "tier1-agents"),
        ]
    );
    let division = explanation
        .held
        .iter()
        .find(|item| item.rule == "division-by-department")
        .unwrap();
    assert_eq!(
        division.evidence.last().map(|e| e.values.clone()),
        Some(vec![json!("Customer Support")])
    );

    let text = explanation.to_string();
    assert!(
        text.contains("'level2-quality' (priority 0) does not match: title eq \"Level 2 Support\"\n      fails title eq \"Level 2 Support\": title is \"Level 1 Support\""),
        "{text}"
    );
    assert!(
        text.contains(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter is missing"
        ),
        "{text}"
    );
}

#[test]
fn explain_walks_and_or_and_not() {
    let text = r#"
[catalog]
roles = ["Agent"]
divisions = ["Home"]

[[rules]]
id = "and"
when = 'title eq "A" and userType eq "B" and nickName eq "C"'
grants = [{ role = "Agent", division = "Home" }]

[[rules]]
id = "or"
when = 'title eq "X" or userType eq "Y"'
grants = [{ role = "Agent", division = "Home" }]

[[rules]]
id = "not"
when = 'not (title eq "A")'
grants = [{ role = "Agent", division = "Home" }]
"#;
    let rule_set = RuleSet::parse(text).unwrap();
    let registry = registry();
    let someone = user("x")
        .set("title", json!("A"))
        .set("userType", json!("Z"))
        .build();
    let explanation = rule_set.explain(&registry, user_type(&registry), &someone);
    let conditions = |id: &str| -> Vec<(String, bool, Vec<Value>)> {
        explanation
            .rules
            .iter()
            .find(|trace| trace.rule == id)
            .unwrap()
            .evidence
            .iter()
            .map(|e| (e.condition.clone(), e.holds, e.values.clone()))
            .collect()
    };
    // And: the first failing operand only.
    assert_eq!(
        conditions("and"),
        [("userType eq \"B\"".to_owned(), false, vec![json!("Z")])]
    );
    // Or: every operand.
    assert_eq!(
        conditions("or"),
        [
            ("title eq \"X\"".to_owned(), false, vec![json!("A")]),
            ("userType eq \"Y\"".to_owned(), false, vec![json!("Z")]),
        ]
    );
    // Not: the operand that held.
    assert_eq!(
        conditions("not"),
        [("title eq \"A\"".to_owned(), true, vec![json!("A")])]
    );
    assert_eq!(explanation.entitlements, Entitlements::default());
}

#[test]
fn json_and_toml_give_the_same_rule_set() {
    let toml = contoso();
    let json_text = serde_json::to_string_pretty(&toml.to_json()).unwrap();
    let json = RuleSet::parse(&json_text).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(json.to_json(), toml.to_json());
    let registry = registry();
    let someone = user("ana")
        .groups(&["Genesys_Cloud_Users", "Group_CC_Agents_Tier1"])
        .enterprise("department", "Customer Support")
        .enterprise("costCenter", "CC-4100")
        .build();
    assert_eq!(
        json.evaluate(&registry, user_type(&registry), &someone),
        toml.evaluate(&registry, user_type(&registry), &someone)
    );
}
