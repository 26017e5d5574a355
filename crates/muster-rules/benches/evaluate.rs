//! Evaluation benchmarks (issue 10): 200 rules and a 50-row table, one user.
//!
//! Target: evaluating one user in under 20 µs.
//! - `mixed`: 150 rules on group membership, 50 on attributes (title,
//!   department, a custom attribute, `and`/`or`), a cost-center table of 50
//!   rows and a department table; the user is in 5 groups.
//! - `attributes only`: the same, every rule on attributes, so the group
//!   index skips nothing (the worst case).
//! - `none indexed`: every rule on `sw`/`co`, which the index cannot use:
//!   every filter runs.
//! - `explain`: the mixed set, explained (every rule tested, evidence read).
//!
//! Run with `cargo bench -p muster-rules`.

use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use muster_rules::RuleSet;
use muster_scim::{Attribute, AttributeType, Schema, SchemaRegistry};
use serde_json::{json, Value};

const CUSTOM: &str = "urn:contoso:params:scim:schemas:extension:cc:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Which conditions the 200 rules use.
#[derive(Clone, Copy)]
enum Mix {
    /// 150 on group membership, the rest on attributes.
    Groups,
    /// Every rule on attributes (`eq`, `sw`, `and`, `or`).
    Attributes,
    /// Every rule on `sw` / `co`: none indexed, every filter runs.
    Unindexed,
}

fn document(mix: Mix) -> String {
    let group_rules = match mix {
        Mix::Groups => 150,
        Mix::Attributes | Mix::Unindexed => 0,
    };
    let mut text = String::from("[catalog]\n");
    let names = |prefix: &str, count: usize| {
        (0..count)
            .map(|n| format!("\"{prefix} {n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    text += &format!("divisions = [{}]\n", names("Division", 20));
    text += "licenses = [\"CX 1\", \"CX 2\", \"CX 3\"]\n";
    text += &format!(
        "roles = [{}]\n",
        (0..30)
            .map(|n| format!("{{ name = \"Role {n}\", license = \"CX {}\" }}", n % 3 + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text += &format!("skills = [{}]\n", names("Skill", 60));
    text += &format!("languages = [{}]\n", names("Language", 10));
    text += &format!(
        "management_units = [{}]\n",
        (0..50)
            .map(|n| format!(
                "{{ name = \"Unit {n}\", division = \"Division {}\" }}",
                n % 20
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for n in 0..200 {
        let when = if n < group_rules {
            format!("groups[display eq \"Group_{n}\"]")
        } else if matches!(mix, Mix::Unindexed) {
            if n % 2 == 0 {
                format!("title sw \"Title {n}\"")
            } else {
                format!("{ENTERPRISE}:department co \"Dept {n}\"")
            }
        } else {
            match n % 4 {
                0 => format!("title eq \"Title {n}\""),
                1 => format!("{ENTERPRISE}:department sw \"Dept {n}\""),
                2 => format!("{CUSTOM}:region eq \"Region {n}\" and active eq true"),
                _ => format!("title eq \"Title {n}\" or {ENTERPRISE}:department eq \"Dept {n}\""),
            }
        };
        text += &format!(
            "\n[[rules]]\nid = \"rule-{n}\"\npriority = {}\nwhen = '{when}'\ngrants = [{{ role = \"Role {}\", division = \"Division {}\" }}]\nskills = [{{ name = \"Skill {}\", proficiency = {} }}]\n",
            n % 5,
            n % 30,
            n % 20,
            n % 60,
            n % 6
        );
        if n % 10 == 0 {
            text += &format!(
                "languages = [{{ name = \"Language {}\", proficiency = 3 }}]\n",
                n % 10
            );
        }
        if n % 25 == 0 {
            text += &format!("remove_skills = [\"Skill {}\"]\n", (n + 1) % 60);
        }
    }
    text += &format!(
        "\n[[tables]]\nid = \"unit-by-cost-center\"\nkey = \"{ENTERPRISE}:costCenter\"\nsets = \"management_unit\"\n[tables.rows]\n"
    );
    for n in 0..50 {
        text += &format!("\"CC-{}\" = \"Unit {n}\"\n", 4100 + n);
    }
    text += &format!(
        "\n[[tables]]\nid = \"division-by-department\"\nkey = \"{ENTERPRISE}:department\"\nsets = \"home_division\"\nrows = {{ \"Dept 1\" = \"Division 1\", \"Customer Support\" = \"Division 2\" }}\n"
    );
    text
}

fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    let schema = Schema {
        id: CUSTOM.to_owned(),
        name: None,
        description: None,
        attributes: vec![Attribute::new("region", AttributeType::String)],
    };
    let _ = registry.put_extension(schema, "User", false);
    registry
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "ana.reyes@contoso.com",
        "displayName": "Ana Reyes",
        "title": "Title 160",
        "active": true,
        "emails": [{"value": "ana.reyes@contoso.com", "type": "work", "primary": true}],
        "groups": [
            {"value": "g1", "display": "Group_3", "type": "direct"},
            {"value": "g2", "display": "Group_42", "type": "direct"},
            {"value": "g3", "display": "Group_99", "type": "indirect"},
            {"value": "g4", "display": "Genesys_Cloud_Users", "type": "direct"},
            {"value": "g5", "display": "Group_CC_Agents_Tier1", "type": "direct"}
        ],
        ENTERPRISE: {"department": "Customer Support", "costCenter": "CC-4125"},
        CUSTOM: {"region": "Region 162"}
    })
}

fn evaluate(c: &mut Criterion) {
    let registry = registry();
    let Some(user_type) = registry.resource_type("User") else {
        return;
    };
    let user = user();
    for (name, mix) in [
        ("evaluate 200 rules (150 on groups) + 50 rows", Mix::Groups),
        (
            "evaluate 200 rules (all on attributes) + 50 rows",
            Mix::Attributes,
        ),
        (
            "evaluate 200 rules (none indexed) + 50 rows",
            Mix::Unindexed,
        ),
    ] {
        let rule_set = match RuleSet::parse(&document(mix)) {
            Ok(rule_set) => rule_set,
            Err(errors) => {
                eprintln!("{errors}");
                return;
            }
        };
        let groups: Vec<String> = (0..200).map(|n| format!("Group_{n}")).collect();
        if let Err(errors) = rule_set.validate(&registry, user_type, &groups) {
            eprintln!("{errors}");
            return;
        }
        let entitlements = rule_set.evaluate(&registry, user_type, &user);
        eprintln!(
            "{name}: {} grants, {} skills, {} languages, unit {:?}, {} problems",
            entitlements.grants.len(),
            entitlements.skills.len(),
            entitlements.languages.len(),
            entitlements
                .management_unit
                .as_ref()
                .map(|unit| unit.name.as_str()),
            entitlements.problems.len()
        );
        c.bench_function(name, |b| {
            b.iter(|| rule_set.evaluate(&registry, user_type, black_box(&user)))
        });
    }
    let Ok(rule_set) = RuleSet::parse(&document(Mix::Groups)) else {
        return;
    };
    c.bench_function("explain 200 rules (150 on groups) + 50 rows", |b| {
        b.iter(|| rule_set.explain(&registry, user_type, black_box(&user)))
    });
    let text = document(Mix::Groups);
    c.bench_function("parse 200 rules + 50 rows", |b| {
        b.iter(|| RuleSet::parse(black_box(&text)))
    });
}

/// Every benchmark (written out rather than with `criterion_group!`, whose
/// generated function has no doc comment).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    evaluate(&mut criterion);
}

criterion_main!(benches);
