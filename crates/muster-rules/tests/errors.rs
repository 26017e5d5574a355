//! What loading refuses, and how it says so: the rule id, the line and
//! column, and a "did you mean". One `check` per document, comparing every
//! error as displayed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{groups, registry, user_type};
use muster_rules::{ErrorKind, RuleSet};

const CATALOG: &str = r#"[catalog]
divisions = ["Home", "Customer Support"]
licenses = ["CX 1"]
roles = [{ name = "Agent", license = "CX 1" }, "Quality Evaluator"]
skills = ["Billing"]
languages = ["English"]
management_units = [{ name = "Manila Voice", division = "Home" }]
"#;

/// Parses `text` (after the shared catalog when `with_catalog`) and, when
/// it parses, validates it; compares every error as displayed.
fn check(with_catalog: bool, text: &str, expected: &[&str]) {
    let document = if with_catalog {
        format!("{CATALOG}{text}")
    } else {
        text.to_owned()
    };
    let files = |name: &str| {
        match name {
        "units.csv" => Ok("Cost Center,Unit\nCC-4100,Manila Voice\ncc-4100 ,Manila Voice\nCC-4200,Manilla Voice\nCC-4300\n".to_owned()),
        "bad.csv" => Ok("a,b\n\"x,1\n".to_owned()),
        other => Err(format!("no such file '{other}'")),
    }
    };
    let errors: Vec<String> = match RuleSet::parse_with_files(&document, &files) {
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
        Ok(rule_set) => {
            let registry = registry();
            match rule_set.validate(&registry, user_type(&registry), &groups()) {
                Ok(()) => Vec::new(),
                Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
            }
        }
    };
    assert_eq!(errors, expected, "{text}");
}

#[test]
fn syntax() {
    check(
        false,
        "[catalog\n",
        &["line 1, column 9: not valid TOML: unclosed table, expected `]`"],
    );
    check(
        false,
        "{\"rules\": [}",
        &["line 1, column 12: not valid JSON: expected value at line 1 column 12"],
    );
    check(
        false,
        "rules = 3",
        &["line 1, column 9: rules: expected an array, found an integer"],
    );
    check(
        false,
        "[rules]\nid = \"x\"\n",
        &["line 1, column 1: rules: expected a list of rules: write [[rules]] (double brackets) before each one"],
    );
    check(
        false,
        "[catalog]\nroles = [\"Agent\"]\n[rule]\n",
        &["line 3, column 2: rule: unknown key 'rule'; did you mean 'rules'?"],
    );
}

#[test]
fn catalog() {
    check(
        false,
        "[catalog]\ndivisions = [\"Home\", \"Sales\",\n  \"home\"]\n",
        &["line 3, column 3: catalog.divisions[2]: duplicate division name 'home': catalog.divisions[0] on line 2 ('Home') has it already (names are case-insensitive)"],
    );
    check(
        false,
        "[catalog]\nskills = [\"Billing 1\", { name = \"Billing-1\" }]\n",
        &["line 2, column 24: catalog.skills[1]: duplicate skill id 'billing-1': catalog.skills[0] on line 2 ('Billing 1') has it already; give one of them an explicit, different id"],
    );
    check(
        false,
        "[catalog]\nlicenses = [\"CX 1\"]\nroles = [{ name = \"Agent\", license = \"CX1\" }]\nmanagement_units = [\"Manila Voice\", { name = \"Cebu\", division = \"Asia\" }]\n",
        &[
            "line 3, column 38: catalog.roles[0].license: unknown license 'CX1' (not in catalog.licenses); did you mean 'CX 1'?",
            "line 4, column 21: catalog.management_units[0]: management unit 'Manila Voice' needs a division: { name = \"Manila Voice\", division = \"...\" }",
            "line 4, column 65: catalog.management_units[1].division: unknown division 'Asia' (not in catalog.divisions)",
        ],
    );
    check(
        false,
        "[catalog]\ndivisions = [{ name = \"Home\", id = \"Home Division\" }, \"***\", { nam = \"x\" }, 3]\n",
        &[
            "line 2, column 36: catalog.divisions[0].id: an id is lower-case letters and digits in runs joined by single '-' such as 'home-division'; got 'Home Division'",
            "line 2, column 55: catalog.divisions[1]: no id can be derived from '***' (it has no letters or digits); give one: { name = \"***\", id = \"...\" }",
            "line 2, column 62: catalog.divisions[2]: a division needs a name",
            "line 2, column 64: catalog.divisions[2].nam: unknown key 'nam'; did you mean 'name'?",
            "line 2, column 77: catalog.divisions[3]: expected a division name or a table with its name, found an integer",
        ],
    );
}

#[test]
fn rules() {
    check(
        true,
        r#"
[[rules]]
id = "tier1"
prority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{ role = "Agnet", division = "Customer Suport" }]
skills = [{ name = "Billing", proficiency = 6 }, { name = "billing" }]
management_unit = "Manila"
remove_roles = ["Quality Evaluator", { role = "Agent", division = "Nowhere" }]
"#,
        &[
            "line 11, column 1: rule 'tier1': rules[0].prority: unknown key 'prority'; did you mean 'priority'?",
            "line 13, column 20: rule 'tier1': rules[0].grants[0].role: unknown role 'Agnet' (not in catalog.roles); did you mean 'Agent'?",
            "line 13, column 40: rule 'tier1': rules[0].grants[0].division: unknown division 'Customer Suport' (not in catalog.divisions); did you mean 'Customer Support'?",
            "line 14, column 45: rule 'tier1': rules[0].skills[0].proficiency: a proficiency is 0 to 5; got 6",
            "line 14, column 50: rule 'tier1': rules[0].skills[1]: 'proficiency' is missing",
            "line 15, column 19: rule 'tier1': rules[0].management_unit: unknown management unit 'Manila' (not in catalog.management_units); did you mean 'Manila Voice'?",
            "line 16, column 67: rule 'tier1': rules[0].remove_roles[1].division: unknown division 'Nowhere' (not in catalog.divisions)",
        ],
    );
    check(
        true,
        r#"
[[rules]]
id = "a"
when = 'title eq "x"'

[[rules]]
id = "A"
when = 'title eq'

[[rules]]
when = 'title pr'

[[rules]]
id = "defaults"

[[rules]]
id = "has space"
"#,
        &[
            "line 14, column 6: rule 'A': rules[1].id: duplicate rule id 'A': rules[0] on line 9 has it already (ids are case-insensitive)",
            "line 15, column 8: rules[1].when: not a SCIM filter: expected a value (a JSON string, a number, true, false or null) at position 8, found the end of the filter",
            "line 17, column 1: rules[2]: every rule needs an id (id = \"tier1-agents\"): results and explanations name it",
            "line 21, column 6: rule 'defaults': rules[3].id: 'defaults' is reserved for what [defaults] gives",
            "line 24, column 6: rules[4].id: a rule id is 1 to 100 ASCII letters, digits, '-', '_' or '.'; got 'has space'",
        ],
    );
}

#[test]
fn tables() {
    check(
        true,
        r#"
[[tables]]
id = "units"
key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
sets = "management_units"
rows = { "CC-1" = "Manila Voice" }

[[tables]]
id = "roles-by-title"
key = "title"
sets = "role"
proficiency = 3
rows = { "Lead" = "Agent" }

[[tables]]
id = "dupes"
key = "title"
sets = "license"
rows = { "A" = "CX 1", " a" = "CX 1", "b" = "CX 2" }
"#,
        &[
            "line 12, column 8: rule 'units': tables[0].sets: a table sets one of management_unit, home_division, role, skill, language, license; got 'management_units'; did you mean 'management_unit'?",
            "line 15, column 1: rule 'roles-by-title': tables[1]: a table that sets a role needs 'division' for every row",
            "line 19, column 15: rule 'roles-by-title': tables[1].proficiency: 'proficiency' applies only to tables that set a role (division) or a skill or language (proficiency)",
            "line 26, column 24: rule 'dupes': tables[2].rows.\" a\": duplicate key 'a': the row 'A' on line 26 has it already (keys are compared case-insensitively; set case_sensitive = true to tell them apart)",
            "line 26, column 45: rule 'dupes': tables[2].rows.b: unknown license 'CX 2' (not in catalog.licenses); did you mean 'CX 1'?",
        ],
    );
    check(
        true,
        r#"
[[tables]]
id = "units"
key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
sets = "management_unit"
csv = "units.csv"
"#,
        &[
            "units.csv:line 3, column 1: rule 'units': tables[0].csv: duplicate key 'cc-4100': units.csv line 2 has it already (keys are compared case-insensitively; set case_sensitive = true to tell them apart)",
            "units.csv:line 4, column 1: rule 'units': tables[0].csv: unknown management unit 'Manilla Voice' (not in catalog.management_units); did you mean 'Manila Voice'?",
            "units.csv:line 5, column 1: rule 'units': tables[0].csv: the row has 1 fields; the key and value columns are number 1 and 2",
        ],
    );
    check(
        true,
        r#"
[[tables]]
id = "t1"
key = "title"
sets = "home_division"
csv = "missing.csv"

[[tables]]
id = "t2"
key = "title"
sets = "home_division"
csv = "bad.csv"

[[tables]]
id = "t3"
key = "title"
sets = "management_unit"
csv = "units.csv"
columns = ["Cost Centre", "Unit"]

[[tables]]
id = "t4"
key = "title."
sets = "home_division"
"#,
        &[
            "line 13, column 7: rule 't1': tables[0].csv: cannot read 'missing.csv': no such file 'missing.csv'",
            "line 28, column 1: rule 't4': tables[3]: a table needs rows: rows = { \"key\" = \"name\", ... }, or csv = \"file.csv\"",
            "line 30, column 7: rule 't4': tables[3].key: 'title.' is not an attribute path: '' must start with a letter and hold only letters, digits, '-' and '_'",
            "bad.csv:line 2, column 1: rule 't2': tables[1].csv: a quoted field is not closed",
            "units.csv:line 1, column 1: rule 't3': tables[2].columns: 'units.csv' has no column 'Cost Centre'; its header has 'Cost Center', 'Unit'; did you mean 'Cost Center'?",
        ],
    );
}

#[test]
fn parse_without_files_refuses_csv() {
    let text = format!(
        "{CATALOG}[[tables]]\nid = \"t\"\nkey = \"title\"\nsets = \"home_division\"\ncsv = \"x.csv\"\n"
    );
    let Err(errors) = RuleSet::parse(&text) else {
        panic!("refused");
    };
    assert_eq!(errors.errors().len(), 1);
    assert_eq!(errors.errors()[0].kind, ErrorKind::Csv);
    assert!(
        errors.errors()[0].message.contains("inline the rows"),
        "{errors}"
    );
}

#[test]
fn validation() {
    check(
        true,
        r#"
[[rules]]
id = "typo"
when = 'tittle eq "Level 2 Support"'

[[rules]]
id = "group-typo"
when = 'groups[display eq "Group_CC_Agent_Tier1"] or groups.display eq "genesys_cloud_users"'

[[rules]]
id = "secret"
when = 'password pr'

[[rules]]
id = "custom"
when = 'urn:contoso:params:scim:schemas:extension:cc:2.0:User:regoin eq "APAC"'

[[rules]]
id = "loop"
when = 'urn:muster:params:scim:schemas:extension:contactcenter:2.0:User:managementUnit.name pr'

[[tables]]
id = "emails"
key = "emails.value"
sets = "home_division"
rows = { "x" = "Home" }

[[tables]]
id = "name"
key = "name"
sets = "home_division"
rows = { "x" = "Home" }

[[tables]]
id = "cc"
key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCentre"
sets = "home_division"
rows = { "x" = "Home" }
"#,
        &[
            "line 11, column 8: rule 'typo': rules[0].when: unknown attribute 'tittle': no schema of resource type User declares it; did you mean 'title'?",
            "line 15, column 8: rule 'group-typo': rules[1].when: no group has the display name 'Group_CC_Agent_Tier1'; did you mean 'Group_CC_Agents_Tier1'?",
            "line 19, column 8: rule 'secret': rules[2].when: attribute 'password' is never returned (returned: never) and cannot be filtered, sorted or selected",
            "line 23, column 8: rule 'custom': rules[3].when: unknown attribute 'urn:contoso:params:scim:schemas:extension:cc:2.0:User:regoin': no schema of resource type User declares it; did you mean 'urn:contoso:params:scim:schemas:extension:cc:2.0:User:region'?",
            "line 27, column 8: rule 'loop': rules[4].when: 'urn:muster:params:scim:schemas:extension:contactcenter:2.0:User:managementUnit.name' is computed by the rules themselves; a rule cannot depend on it",
            "line 31, column 7: rule 'emails': tables[0].key: 'emails.value' is multi-valued; a table key must hold one value (match one of several values with a rule's when instead)",
            "line 37, column 7: rule 'name': tables[1].key: 'name' is complex; look up one of its sub-attributes ('name.formatted', 'name.familyName', 'name.givenName', 'name.middleName', 'name.honorificPrefix', 'name.honorificSuffix')",
            "line 43, column 7: rule 'cc': tables[2].key: unknown attribute 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCentre': no schema of resource type User declares it; did you mean 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter'?",
        ],
    );
}

#[test]
fn json_documents_carry_fields_and_rule_ids() {
    check(
        false,
        r#"{"catalog": {"roles": ["Agent"], "divisions": ["Home"]},
            "rules": [{"id": "r1", "grants": [{"role": "agent", "division": "Hmoe"}], "priority": "high"}]}"#,
        &[
            "rule 'r1': rules[0].priority: expected an integer, found a string",
            "rule 'r1': rules[0].grants[0].division: unknown division 'Hmoe' (not in catalog.divisions); did you mean 'Home'?",
        ],
    );
}
