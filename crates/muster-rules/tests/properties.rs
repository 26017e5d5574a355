//! Properties of evaluation over generated rule sets and users:
//! - deterministic, and independent of the order of rules, tables, table
//!   rows and catalog entries (byte-equal JSON);
//! - the group index never changes a result (evaluate = explain, which
//!   tests every rule);
//! - adding a rule of lower priority never changes a single-valued winner;
//! - an inactive user never holds grants, skills, languages or licenses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_rules::RuleSet;
use muster_scim::SchemaRegistry;
use proptest::prelude::*;
use serde_json::{json, Value};

const DIVISIONS: [&str; 3] = ["Home", "Sales", "Support"];
const ROLES: [(&str, Option<&str>); 4] = [
    ("Agent", Some("CX 1")),
    ("Evaluator", Some("CX 3")),
    ("Viewer", None),
    ("Lead", Some("CX 3")),
];
const LICENSES: [&str; 2] = ["CX 1", "CX 3"];
const SKILLS: [&str; 3] = ["Billing", "Sales", "Tech"];
const LANGUAGES: [&str; 2] = ["English", "Tagalog"];
const UNITS: [&str; 3] = ["Manila", "Cebu", "Austin"];
const GROUPS: [&str; 4] = ["G0", "G1", "G2", "G3"];
const TITLES: [&str; 3] = ["T0", "T1", "T2"];

#[derive(Debug, Clone)]
struct GenRule {
    priority: i64,
    when: Option<String>,
    grants: Vec<(usize, usize)>,
    skills: Vec<(usize, u8)>,
    languages: Vec<(usize, u8)>,
    licenses: Vec<usize>,
    unit: Option<usize>,
    home: Option<usize>,
    remove_roles: Vec<(usize, Option<usize>)>,
    remove_skills: Vec<usize>,
}

#[derive(Debug, Clone)]
struct GenTable {
    priority: i64,
    when: Option<String>,
    rows: Vec<(usize, usize)>,
}

fn condition() -> impl Strategy<Value = Option<String>> {
    let group = (0..GROUPS.len()).prop_map(|g| format!("groups[display eq \"{}\"]", GROUPS[g]));
    let title = (0..TITLES.len()).prop_map(|t| format!("title eq \"{}\"", TITLES[t]));
    prop_oneof![
        1 => Just(None),
        3 => group.clone().prop_map(Some),
        2 => title.clone().prop_map(Some),
        2 => (group.clone(), title.clone()).prop_map(|(g, t)| Some(format!("{g} and {t}"))),
        2 => (group.clone(), group.clone()).prop_map(|(a, b)| Some(format!("{a} or {b}"))),
        1 => title.prop_map(|t| Some(format!("not ({t})"))),
        1 => (0..GROUPS.len()).prop_map(|g| Some(format!("groups.display eq \"{}\"", GROUPS[g].to_lowercase()))),
        1 => prop::sample::select(vec![
            // Text that equals differently: booleans written as strings,
            // dateTime compared as instants, a caseExact attribute, a
            // complex attribute compared by its value.
            "active eq \"TRUE\"",
            "meta.lastModified eq \"2011-05-13T04:42:34Z\"",
            "externalId eq \"ABC\"",
            "emails eq \"A@X.COM\"",
            "title eq \"t0\" or active eq \"false\"",
        ])
        .prop_map(|text| Some(text.to_owned())),
    ]
}

fn rule() -> impl Strategy<Value = GenRule> {
    (
        0i64..4,
        condition(),
        prop::collection::vec((0..ROLES.len(), 0..DIVISIONS.len()), 0..3),
        prop::collection::vec((0..SKILLS.len(), 0u8..6), 0..3),
        prop::collection::vec((0..LANGUAGES.len(), 0u8..6), 0..2),
        prop::collection::vec(0..LICENSES.len(), 0..2),
        prop::option::weighted(0.4, 0..UNITS.len()),
        prop::option::weighted(0.3, 0..DIVISIONS.len()),
        prop::collection::vec((0..ROLES.len(), prop::option::of(0..DIVISIONS.len())), 0..2),
        prop::collection::vec(0..SKILLS.len(), 0..2),
    )
        .prop_map(
            |(
                priority,
                when,
                grants,
                skills,
                languages,
                licenses,
                unit,
                home,
                remove_roles,
                remove_skills,
            )| {
                GenRule {
                    priority,
                    when,
                    grants,
                    skills,
                    languages,
                    licenses,
                    unit,
                    home,
                    remove_roles,
                    remove_skills,
                }
            },
        )
}

fn table() -> impl Strategy<Value = GenTable> {
    (
        0i64..4,
        condition(),
        prop::collection::btree_map(0..TITLES.len(), 0..UNITS.len(), 0..3),
    )
        .prop_map(|(priority, when, rows)| GenTable {
            priority,
            when,
            rows: rows.into_iter().collect(),
        })
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The document for `rules` and `tables`; the catalog reversed when
/// `reverse_catalog`, table rows reversed when `reverse_rows`.
fn document(
    rules: &[(usize, GenRule)],
    tables: &[(usize, GenTable)],
    reverse_catalog: bool,
    reverse_rows: bool,
) -> String {
    let list = |items: Vec<String>| {
        let mut items = items;
        if reverse_catalog {
            items.reverse();
        }
        format!("[{}]", items.join(", "))
    };
    let names = |names: &[&str]| list(names.iter().map(|name| quoted(name)).collect());
    let mut text = String::from("[catalog]\n");
    text += &format!("divisions = {}\n", names(&DIVISIONS));
    text += &format!("licenses = {}\n", names(&LICENSES));
    text += &format!("skills = {}\n", names(&SKILLS));
    text += &format!("languages = {}\n", names(&LANGUAGES));
    text += &format!(
        "roles = {}\n",
        list(
            ROLES
                .iter()
                .map(|(name, license)| match license {
                    Some(license) => format!(
                        "{{ name = {}, license = {} }}",
                        quoted(name),
                        quoted(license)
                    ),
                    None => quoted(name),
                })
                .collect()
        )
    );
    text += &format!(
        "management_units = {}\n",
        list(
            UNITS
                .iter()
                .map(|name| format!("{{ name = {}, division = \"Home\" }}", quoted(name)))
                .collect()
        )
    );
    for (id, rule) in rules {
        text += &format!(
            "\n[[rules]]\nid = \"r{id}\"\npriority = {}\n",
            rule.priority
        );
        if let Some(when) = &rule.when {
            text += &format!("when = {}\n", quoted(when));
        }
        let grants: Vec<String> = rule
            .grants
            .iter()
            .map(|(role, division)| {
                format!(
                    "{{ role = {}, division = {} }}",
                    quoted(ROLES[*role].0),
                    quoted(DIVISIONS[*division])
                )
            })
            .collect();
        text += &format!("grants = [{}]\n", grants.join(", "));
        let skills: Vec<String> = rule
            .skills
            .iter()
            .map(|(skill, p)| format!("{{ name = {}, proficiency = {p} }}", quoted(SKILLS[*skill])))
            .collect();
        text += &format!("skills = [{}]\n", skills.join(", "));
        let languages: Vec<String> = rule
            .languages
            .iter()
            .map(|(language, p)| {
                format!(
                    "{{ name = {}, proficiency = {p} }}",
                    quoted(LANGUAGES[*language])
                )
            })
            .collect();
        text += &format!("languages = [{}]\n", languages.join(", "));
        let licenses: Vec<String> = rule.licenses.iter().map(|l| quoted(LICENSES[*l])).collect();
        text += &format!("licenses = [{}]\n", licenses.join(", "));
        if let Some(unit) = rule.unit {
            text += &format!("management_unit = {}\n", quoted(UNITS[unit]));
        }
        if let Some(home) = rule.home {
            text += &format!("home_division = {}\n", quoted(DIVISIONS[home]));
        }
        let removals: Vec<String> = rule
            .remove_roles
            .iter()
            .map(|(role, division)| match division {
                Some(division) => format!(
                    "{{ role = {}, division = {} }}",
                    quoted(ROLES[*role].0),
                    quoted(DIVISIONS[*division])
                ),
                None => quoted(ROLES[*role].0),
            })
            .collect();
        text += &format!("remove_roles = [{}]\n", removals.join(", "));
        let removals: Vec<String> = rule
            .remove_skills
            .iter()
            .map(|s| quoted(SKILLS[*s]))
            .collect();
        text += &format!("remove_skills = [{}]\n", removals.join(", "));
    }
    for (id, table) in tables {
        text += &format!(
            "\n[[tables]]\nid = \"t{id}\"\npriority = {}\nkey = \"title\"\nsets = \"management_unit\"\n",
            table.priority
        );
        if let Some(when) = &table.when {
            text += &format!("when = {}\n", quoted(when));
        }
        let mut rows: Vec<String> = table
            .rows
            .iter()
            .map(|(title, unit)| format!("{} = {}", quoted(TITLES[*title]), quoted(UNITS[*unit])))
            .collect();
        if reverse_rows {
            rows.reverse();
        }
        text += &format!("rows = {{ {} }}\n", rows.join(", "));
    }
    text
}

fn user() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_set(0..GROUPS.len(), 0..4),
        prop::option::of(0..TITLES.len()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(groups, title, active)| {
            let mut user = json!({
                "userName": "u@contoso.com",
                "externalId": "abc",
                "emails": [{"value": "a@x.com", "type": "work"}],
                "meta": {"lastModified": "2011-05-13T04:42:34+00:00"}
            });
            if !groups.is_empty() {
                user["groups"] = Value::Array(
                    groups
                        .iter()
                        .map(|g| json!({"value": format!("id{g}"), "display": GROUPS[*g], "type": "direct"}))
                        .collect(),
                );
            }
            if let Some(title) = title {
                user["title"] = json!(TITLES[title]);
            }
            if let Some(active) = active {
                user["active"] = json!(active);
            }
            user
        })
}

fn parse(text: &str) -> RuleSet {
    RuleSet::parse(text).unwrap_or_else(|errors| panic!("{errors}\n{text}"))
}

fn evaluate(rule_set: &RuleSet, user: &Value) -> String {
    let registry = SchemaRegistry::builtin();
    let user_type = registry.resource_type("User").unwrap();
    serde_json::to_string(&rule_set.evaluate(&registry, user_type, user)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn order_does_not_matter(
        rules in prop::collection::vec(rule(), 0..8),
        tables in prop::collection::vec(table(), 0..3),
        user in user(),
    ) {
        let rules: Vec<(usize, GenRule)> = rules.into_iter().enumerate().collect();
        let tables: Vec<(usize, GenTable)> = tables.into_iter().enumerate().collect();
        let forward = parse(&document(&rules, &tables, false, false));
        let mut reversed_rules = rules.clone();
        reversed_rules.reverse();
        let mut reversed_tables = tables.clone();
        reversed_tables.reverse();
        let backward = parse(&document(&reversed_rules, &reversed_tables, true, true));
        let first = evaluate(&forward, &user);
        prop_assert_eq!(&first, &evaluate(&forward, &user));
        prop_assert_eq!(&first, &evaluate(&backward, &user));

        // The group index changes nothing: explain tests every rule.
        let registry = SchemaRegistry::builtin();
        let user_type = registry.resource_type("User").unwrap();
        let explained = forward.explain(&registry, user_type, &user);
        prop_assert_eq!(first, serde_json::to_string(&explained.entitlements).unwrap());
    }

    #[test]
    fn a_lower_priority_rule_never_changes_a_single_valued_winner(
        rules in prop::collection::vec(rule(), 1..8),
        extra in rule(),
        user in user(),
    ) {
        let rules: Vec<(usize, GenRule)> = rules.into_iter().enumerate().collect();
        let base = parse(&document(&rules, &[], false, false));
        let registry = SchemaRegistry::builtin();
        let user_type = registry.resource_type("User").unwrap();
        let before = base.evaluate(&registry, user_type, &user);
        let priority_of = |id: &str| {
            rules
                .iter()
                .find(|(n, _)| format!("r{n}") == id)
                .map(|(_, rule)| rule.priority)
        };
        for (winner, pick) in [
            (before.management_unit.clone(), 0),
            (before.home_division.clone(), 1),
        ] {
            let Some(winner) = winner else { continue };
            let Some(top) = priority_of(&winner.rule) else { continue };
            let mut lower = extra.clone();
            lower.priority = top - 1;
            let mut extended = rules.clone();
            extended.push((rules.len(), lower));
            let after = parse(&document(&extended, &[], false, false))
                .evaluate(&registry, user_type, &user);
            let kept = if pick == 0 { after.management_unit } else { after.home_division };
            prop_assert_eq!(kept, Some(winner));
        }
    }

    #[test]
    fn an_inactive_user_holds_nothing_billable(
        rules in prop::collection::vec(rule(), 0..8),
        tables in prop::collection::vec(table(), 0..2),
        user in user(),
    ) {
        let rules: Vec<(usize, GenRule)> = rules.into_iter().enumerate().collect();
        let tables: Vec<(usize, GenTable)> = tables.into_iter().enumerate().collect();
        let rule_set = parse(&document(&rules, &tables, false, false));
        let mut inactive = user;
        inactive["active"] = json!(false);
        let registry = SchemaRegistry::builtin();
        let user_type = registry.resource_type("User").unwrap();
        let entitlements = rule_set.evaluate(&registry, user_type, &inactive);
        prop_assert!(entitlements.licenses.is_empty());
        prop_assert!(entitlements.grants.is_empty());
        prop_assert!(entitlements.skills.is_empty());
        prop_assert!(entitlements.languages.is_empty());
    }
}
