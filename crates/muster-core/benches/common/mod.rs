//! What the entitlement benchmarks share: sizes from the environment, the
//! 200-rule set with its cost-center table, and the users.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use muster_store::Actor;
use serde_json::{json, Value};

/// The enterprise extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The contact-center extension.
pub const CC: &str = "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";

/// Groups the 150 group rules name.
pub const RULE_GROUPS: usize = 150;

pub fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

pub fn actor() -> Actor {
    Actor {
        client: "bench".to_owned(),
        request_id: "bench".to_owned(),
    }
}

/// The rule set; `shift` moves every cost center to another unit, and
/// `queues` adds two rules on the groups `Queue_A` and `Queue_B` (which must
/// then exist).
pub fn document(shift: usize, queues: bool) -> String {
    let names = |prefix: &str, count: usize| {
        (0..count)
            .map(|n| format!("\"{prefix} {n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = String::from("[catalog]\n");
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
        let when = if n < RULE_GROUPS {
            format!("groups[display eq \"Group_{n}\"]")
        } else if n % 2 == 0 {
            format!("title eq \"Title {n}\"")
        } else {
            format!("{ENTERPRISE}:department eq \"Dept {}\"", n % 100)
        };
        text += &format!(
            "\n[[rules]]\nid = \"rule-{n}\"\npriority = {}\nwhen = '{when}'\ngrants = [{{ role = \"Role {}\", division = \"Division {}\" }}]\nskills = [{{ name = \"Skill {}\", proficiency = {} }}]\n",
            n % 5,
            n % 30,
            n % 20,
            n % 60,
            n % 6
        );
    }
    let queue_rules: &[(&str, usize)] = if queues {
        &[("Queue_A", 1), ("Queue_B", 2)]
    } else {
        &[]
    };
    for (queue, role) in queue_rules {
        text += &format!(
            "\n[[rules]]\nid = \"{queue}\"\nwhen = 'groups[display eq \"{queue}\"]'\ngrants = [{{ role = \"Role {role}\", division = \"Division {role}\" }}]\nlanguages = [{{ name = \"Language {role}\", proficiency = 4 }}]\n"
        );
    }
    text += &format!(
        "\n[[tables]]\nid = \"unit-by-cost-center\"\nkey = \"{ENTERPRISE}:costCenter\"\nsets = \"management_unit\"\n[tables.rows]\n"
    );
    for n in 0..50 {
        text += &format!("\"CC-{}\" = \"Unit {}\"\n", 4100 + n, (n + shift) % 50);
    }
    text += &format!(
        "\n[[tables]]\nid = \"division-by-department\"\nkey = \"{ENTERPRISE}:department\"\nsets = \"home_division\"\nrows = {{ \"Dept 1\" = \"Division 1\", \"Dept 2\" = \"Division 2\" }}\n"
    );
    text
}

pub fn user(n: usize) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": format!("user{n}@contoso.com"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "emails": [{"value": format!("user{n}@contoso.com"), "type": "work", "primary": true}],
        "title": format!("Title {}", n % 200),
        "active": true,
        ENTERPRISE: {
            "department": format!("Dept {}", n % 100),
            "costCenter": format!("CC-{}", 4100 + n % 60),
            "employeeNumber": format!("{n}"),
        },
    })
}
