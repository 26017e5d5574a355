//! Filter evaluation over canonical resource JSON, and checking filters
//! against the schemas of a resource type.

// Test code: a failed unwrap or panic is a failed test. clippy.toml allows them
// inside #[test] functions only, not in the helpers they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::schema::builtin::ENTERPRISE_USER_SCHEMA;
use muster_scim::{
    AttrPath, Attribute, AttributeType, Filter, FilterLimits, ResourceType, Schema, SchemaRegistry,
    ScimType,
};
use serde_json::{json, Value};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// The built-in registry plus a custom User extension with numbers, a
/// dateTime and a multi-valued string.
fn registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin();
    registry
        .add_schema(Schema {
            id: ACME.to_owned(),
            name: Some("Acme".to_owned()),
            description: None,
            attributes: vec![
                Attribute::new("badgeNumber", AttributeType::Integer),
                Attribute::new("score", AttributeType::Decimal),
                Attribute::new("hireDate", AttributeType::DateTime),
                Attribute {
                    multi_valued: true,
                    ..Attribute::new("tags", AttributeType::String)
                },
                Attribute {
                    case_exact: true,
                    ..Attribute::new("code", AttributeType::String)
                },
            ],
        })
        .unwrap();
    registry.bind_extension("User", ACME, false).unwrap();
    registry
}

/// Barbara Jensen, after RFC 7643 section 8.2, in canonical form. Her work
/// email is at example.com, her home email at contoso.
fn user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE_USER_SCHEMA,
            ACME
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen-EXT",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@Contoso.com", "type": "home"}
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
             "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}
        ],
        "groups": [
            {"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides", "type": "direct"}
        ],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\"",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        },
        ENTERPRISE_USER_SCHEMA: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith"
            }
        },
        ACME: {
            "badgeNumber": 1042,
            "score": 87.5,
            "hireDate": "2009-03-01T09:00:00+01:00",
            "tags": ["Blue", "green"],
            "code": "AbC"
        }
    })
}

fn user_type(registry: &SchemaRegistry) -> &ResourceType {
    registry.resource_type("User").unwrap()
}

/// Parses `filter`, checks it against the User type, and asserts whether
/// `resource` matches.
fn check(resource: &Value, filter: &str, expected: bool) {
    let registry = registry();
    let resource_type = user_type(&registry);
    let parsed = Filter::parse(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
    assert_eq!(
        parsed.matches(resource, &registry, resource_type),
        expected,
        "{filter}"
    );
}

#[test]
fn strings_and_case_exactness() {
    let user = user();
    for (filter, expected) in [
        (r#"userName eq "BJensen@Example.com""#, true),
        (r#"userName ne "BJensen@Example.com""#, false),
        (r#"userName ne "someone@else""#, true),
        (r#"userName sw "BJENSEN""#, true),
        (r#"userName ew "@EXAMPLE.COM""#, true),
        (r#"userName co "jensen@""#, true),
        (r#"userName co "nobody""#, false),
        (r#"externalId eq "bjensen-EXT""#, true),
        (r#"externalId eq "bjensen-ext""#, false),
        (r#"externalId sw "bjensen-E""#, true),
        (r#"externalId sw "BJENSEN""#, false),
        (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
        (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
        (r#"name.familyName eq "jensen""#, true),
        (
            r#"name.givenName sw "bar" and name.givenName ew "ARA""#,
            true,
        ),
        (r#"displayName gt "Babs""#, true),
        (r#"displayName gt "babs jensen""#, false),
        (r#"displayName ge "BABS JENSEN""#, true),
        (r#"displayName lt "c""#, true),
        (r#"displayName le "Ba""#, false),
        (r#"title eq 42"#, false),
        (r#"title eq true"#, false),
        (r#"meta.version eq "W/\"3694e05e9dff591\"""#, true),
        (r#"meta.resourceType eq "user""#, false),
        (&format!(r#"{ACME}:code eq "AbC""#), true),
        (&format!(r#"{ACME}:code eq "abc""#), false),
        (&format!(r#"{ACME}:code gt "ABC""#), true),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn presence_and_null() {
    let user = user();
    for (filter, expected) in [
        ("title pr", true),
        ("nickName pr", false),
        ("name pr", true),
        ("name.middleName pr", false),
        ("emails pr", true),
        ("emails.primary pr", true),
        ("ims pr", false),
        ("title eq null", false),
        ("title ne null", true),
        ("nickName eq null", true),
        ("nickName ne null", false),
        ("emails.display eq null", true),
        ("nickName gt null", false),
        ("nickName co null", false),
        ("not (nickName pr)", true),
    ] {
        check(&user, filter, expected);
    }
    let empty = json!({
        "userName": "x",
        "nickName": "",
        "title": null,
        "emails": [],
        "name": {},
        "phoneNumbers": [{}]
    });
    for (filter, expected) in [
        ("userName pr", true),
        ("nickName pr", false),
        ("title pr", false),
        ("emails pr", false),
        ("name pr", false),
        ("phoneNumbers pr", false),
        ("nickName eq null", true),
        ("title eq null", true),
    ] {
        check(&empty, filter, expected);
    }
}

#[test]
fn booleans() {
    let user = user();
    for (filter, expected) in [
        ("active eq true", true),
        ("active eq TRUE", true),
        ("active eq false", false),
        ("active ne false", true),
        ("active ne true", false),
        ("active gt false", false),
        ("active ge true", false),
        ("active co true", false),
        (r#"active eq "true""#, true),
        (r#"active eq "yes""#, false),
        ("emails[primary eq true]", true),
        ("emails.primary eq true", true),
        ("emails.primary eq false", false),
        ("emails[not (primary eq true)]", true),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn date_times_compare_as_instants() {
    let user = user();
    for (filter, expected) in [
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:33.999Z""#, true),
        (r#"meta.lastModified lt "2011-05-13T06:42:35+02:00""#, true),
        (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
        (r#"meta.lastModified ne "2011-05-13T06:42:34+02:00""#, false),
        (r#"meta.lastModified le "2011-05-13t04:42:34z""#, true),
        // Not RFC 3339: compared as strings.
        (r#"meta.lastModified gt "2011""#, true),
        (r#"meta.lastModified lt "2011-05""#, false),
        (r#"meta.lastModified sw "2011-05-13""#, true),
        (
            r#"meta.created lt "2011-01-01T00:00:00Z" and meta.lastModified gt "2011-01-01T00:00:00Z""#,
            true,
        ),
        (
            &format!(r#"{ACME}:hireDate lt "2009-03-01T08:30:00Z""#),
            true,
        ),
        (
            &format!(r#"{ACME}:hireDate gt "2009-03-01T08:30:00+01:00""#),
            true,
        ),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn numbers() {
    let user = user();
    for (filter, expected) in [
        ("badgeNumber", 1042, "eq", true),
        ("badgeNumber", 1042, "ne", false),
        ("badgeNumber", 1000, "gt", true),
        ("badgeNumber", 1042, "ge", true),
        ("badgeNumber", 1042, "lt", false),
        ("badgeNumber", 1043, "lt", true),
        ("badgeNumber", 1042, "le", true),
        ("badgeNumber", 1042, "co", false),
        ("badgeNumber", 1042, "sw", false),
    ]
    .map(|(attribute, number, op, expected)| {
        (format!("{ACME}:{attribute} {op} {number}"), expected)
    }) {
        check(&user, &filter, expected);
    }
    for (filter, expected) in [
        ("badgeNumber eq 1042.0", true),
        ("badgeNumber eq 1.042e3", true),
        ("badgeNumber gt -5", true),
        (r#"badgeNumber eq "1042""#, false),
        ("score gt 87", true),
        ("score eq 87.5", true),
        ("score lt 87.50001", true),
        ("score le 8.75E1", true),
    ] {
        check(&user, &format!("{ACME}:{filter}"), expected);
    }
}

#[test]
fn multi_valued_attributes() {
    let user = user();
    for (filter, expected) in [
        // Without a sub-attribute, a complex multi-valued attribute compares `value`.
        (r#"emails co "@contoso""#, true),
        (r#"emails eq "BJENSEN@example.com""#, true),
        (r#"emails sw "nobody""#, false),
        (r#"emails.type eq "work""#, true),
        (r#"emails.type eq "WORK""#, true),
        (r#"emails.type eq "other""#, false),
        // `ne` is `not (eq)`: false when any value equals.
        (r#"emails.type ne "work""#, false),
        (r#"emails.type ne "other""#, true),
        // Across elements versus within one element.
        (
            r#"emails.type eq "work" and emails.value co "@contoso""#,
            true,
        ),
        (r#"emails[type eq "work" and value co "@contoso"]"#, false),
        (r#"emails[type eq "home" and value co "@contoso"]"#, true),
        (r#"emails[TYPE eq "Home" AND Value co "@CONTOSO"]"#, true),
        (
            r#"emails[type eq "work"] and emails[value co "@contoso"]"#,
            true,
        ),
        (r#"emails[type pr]"#, true),
        (r#"emails[display pr]"#, false),
        (r#"emails[type eq "work" or type eq "other"]"#, true),
        (
            r#"phoneNumbers[type eq "mobile" and value ew "4444"]"#,
            true,
        ),
        (r#"addresses[type eq "work" and postalCode sw "916"]"#, true),
        (r#"addresses[type eq "home"]"#, false),
        (r#"groups.display eq "tour guides""#, true),
        (r#"groups[type eq "direct" and display co "Guide"]"#, true),
        // A value path on a singular complex attribute.
        (r#"name[givenName eq "barbara" and familyName pr]"#, true),
        (r#"name[givenName eq "bob"]"#, false),
        // A simple multi-valued attribute: `value` is the element itself.
        (&format!(r#"{ACME}:tags eq "blue""#), true),
        (&format!(r#"{ACME}:tags ne "green""#), false),
        (&format!(r#"{ACME}:tags[value eq "GREEN"]"#), true),
        (&format!(r#"{ACME}:tags[value sw "r"]"#), false),
        // Unknown sub-attributes inside a value path match nothing.
        (r#"emails[nope eq "x"]"#, false),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn extension_attributes() {
    let user = user();
    let enterprise = ENTERPRISE_USER_SCHEMA;
    for (filter, expected) in [
        (
            format!(r#"{enterprise}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            true,
        ),
        // manager.value is caseExact.
        (
            format!(r#"{enterprise}:manager.value eq "26118915-6090-4610-87E4-49D8CA9F808D""#),
            false,
        ),
        (
            format!(r#"{enterprise}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            true,
        ),
        (
            format!(r#"{enterprise}:manager[displayName eq "john smith"]"#),
            true,
        ),
        (format!("{enterprise}:manager pr"), true),
        (
            format!(r#"{enterprise}:department eq "tour operations""#),
            true,
        ),
        (format!(r#"{enterprise}:employeeNumber gt "700000""#), true),
        (format!(r#"{enterprise}:employeeNumber lt "700000""#), false),
        (
            format!("{enterprise}:costCenter pr and {enterprise}:division sw \"theme\""),
            true,
        ),
        (r#"URN:IETF:params:scim:schemas:extension:ENTERPRISE:2.0:User:Department eq "Tour Operations""#.to_owned(),
            true,
        ),
        // Core attributes may carry the core schema URN.
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#
                .to_owned(),
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "Barbara""#.to_owned(),
            true,
        ),
        // `department` is not a core attribute.
        (r#"department eq "Tour Operations""#.to_owned(), false),
    ] {
        check(&user, &filter, expected);
    }
    let without_extension = json!({"userName": "x"});
    check(
        &without_extension,
        &format!("{enterprise}:department pr"),
        false,
    );
    check(
        &without_extension,
        &format!("{enterprise}:department eq null"),
        true,
    );
}

#[test]
fn logic() {
    let user = user();
    for (filter, expected) in [
        (r#"title pr and userType eq "Employee""#, true),
        (r#"title pr and userType eq "Intern""#, false),
        (
            r#"userType eq "Intern" or name.givenName eq "barbara""#,
            true,
        ),
        (r#"userType eq "Intern" or name.givenName eq "bob""#, false),
        (
            r#"userType eq "Intern" or title pr and active eq true"#,
            true,
        ),
        (
            r#"(userType eq "Intern" or title pr) and active eq false"#,
            false,
        ),
        (r#"not (userType eq "Intern")"#, true),
        (r#"not (not (userType eq "Employee"))"#, true),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            false,
        ),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn unknown_attributes_match_nothing() {
    let user = user();
    for (filter, expected) in [
        (r#"foo eq "x""#, false),
        (r#"foo ne "x""#, false),
        ("foo pr", false),
        ("foo eq null", false),
        ("name.nope pr", false),
        (r#"nope[type eq "work"]"#, false),
        (&format!("{ENTERPRISE_USER_SCHEMA} pr"), false),
        // `not` of a clause that matches nothing matches; the server rejects
        // such filters with `Filter::check` before evaluating.
        (r#"not (foo eq "x")"#, true),
    ] {
        check(&user, filter, expected);
    }
}

#[test]
fn json_keys_are_found_whatever_their_case() {
    let loose = json!({
        "USERNAME": "bjensen",
        "Emails": [{"Value": "b@contoso.com", "TYPE": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Ops"}
    });
    check(&loose, r#"userName eq "bjensen""#, true);
    check(
        &loose,
        r#"emails[type eq "work" and value co "@contoso"]"#,
        true,
    );
    check(
        &loose,
        &format!(r#"{ENTERPRISE_USER_SCHEMA}:department eq "ops""#),
        true,
    );
    check(&json!("not an object"), "userName pr", false);
    check(
        &json!({"emails": "not an array"}),
        r#"emails eq "x""#,
        false,
    );
}

#[test]
fn groups() {
    let registry = registry();
    let group_type = registry.resource_type("Group").unwrap();
    let group = json!({
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"}
        ]
    });
    for (filter, expected) in [
        (r#"displayName eq "tour guides""#, true),
        (
            r#"members[value eq "902c246b-6245-4190-8e05-00816be7344a"]"#,
            true,
        ),
        (
            r#"members[value eq "902C246B-6245-4190-8E05-00816BE7344A"]"#,
            false,
        ),
        (r#"members.display co "pepper""#, true),
        (r#"userName pr"#, false),
    ] {
        let parsed = Filter::parse(filter).unwrap();
        assert_eq!(
            parsed.matches(&group, &registry, group_type),
            expected,
            "{filter}"
        );
    }
}

#[test]
fn matches_element() {
    let registry = registry();
    let resource_type = user_type(&registry);
    let emails = registry
        .resolve_attribute(resource_type, &AttrPath::new("emails"))
        .unwrap()
        .attribute;
    let work = json!({"value": "b@contoso.com", "type": "work", "primary": true});
    let home = json!({"value": "b@example.org", "type": "home"});
    for (filter, on_work, on_home) in [
        (r#"type eq "work""#, true, false),
        (r#"TYPE eq "WORK""#, true, false),
        (r#"type eq "work" and value co "@contoso""#, true, false),
        (r#"value ew ".org" or primary eq true"#, true, true),
        (r#"not (primary pr)"#, false, true),
        (r#"primary ne true"#, false, true),
        (r#"display eq null"#, true, true),
        (r#"unknown pr"#, false, false),
        (r#"emails.type eq "work""#, false, false),
        (r#"type[value pr]"#, false, false),
    ] {
        let parsed = Filter::parse(filter).unwrap();
        assert_eq!(
            parsed.matches_element(&work, emails),
            on_work,
            "{filter} on work"
        );
        assert_eq!(
            parsed.matches_element(&home, emails),
            on_home,
            "{filter} on home"
        );
    }
    let code = Attribute {
        multi_valued: true,
        case_exact: true,
        ..Attribute::new("codes", AttributeType::String)
    };
    let parsed = Filter::parse(r#"value eq "AbC""#).unwrap();
    assert!(parsed.matches_element(&json!("AbC"), &code));
    assert!(!parsed.matches_element(&json!("abc"), &code));
}

#[test]
fn deep_filters_evaluate() {
    let unlimited = FilterLimits {
        max_length: usize::MAX,
        max_depth: usize::MAX,
        max_clauses: usize::MAX,
    };
    let input = format!("{}title pr{}", "not (".repeat(256), ")".repeat(256));
    let parsed = Filter::parse_with(&input, &unlimited).unwrap();
    let registry = registry();
    assert!(parsed.matches(&user(), &registry, user_type(&registry)));
    assert!(parsed.check(&registry, user_type(&registry)).is_ok());
}

/// Parses `filter` and checks it against the User type: `Ok(())` or the
/// exact error detail.
fn check_schema(filter: &str, expected: Result<(), &str>) {
    let registry = registry();
    let parsed = Filter::parse(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
    let result = parsed.check(&registry, user_type(&registry));
    match expected {
        Ok(()) => assert!(result.is_ok(), "{filter}: {result:?}"),
        Err(detail) => {
            let error = result.unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{filter}");
            assert_eq!(error.detail, detail, "{filter}");
        }
    }
}

#[test]
fn check_names_the_unknown_attribute() {
    let enterprise = ENTERPRISE_USER_SCHEMA;
    check_schema(r#"userName eq "x" and name.givenName pr"#, Ok(()));
    check_schema(
        r#"emails[type eq "work" and value co "@x"] or meta.lastModified gt "2020-01-01T00:00:00Z""#,
        Ok(()),
    );
    check_schema(&format!(r#"{enterprise}:manager.value eq "x""#), Ok(()));
    check_schema(&format!(r#"{ACME}:tags[value eq "x"]"#), Ok(()));
    check_schema(r#"USERNAME eq "x" and EMAILS[TYPE eq "work"]"#, Ok(()));
    check_schema(
        r#"title pr and usrName eq "x""#,
        Err("unknown attribute 'usrName': no schema of resource type User declares it; did you mean 'userName'?"),
    );
    check_schema(
        r#"not (name.givenNmae pr)"#,
        Err("unknown attribute 'name.givenNmae': no schema of resource type User declares it; did you mean 'name.givenName'?"),
    );
    check_schema(
        r#"emails[tpye eq "work"]"#,
        Err("unknown attribute 'emails.tpye': no schema of resource type User declares it; did you mean 'emails.type'?"),
    );
    check_schema(
        r#"zzzzzz pr"#,
        Err("unknown attribute 'zzzzzz': no schema of resource type User declares it"),
    );
    check_schema(
        &format!("{enterprise} pr"),
        Err(&format!(
            "'{enterprise}' names the extension schema {enterprise}, not an attribute; filter on one of its attributes ('{enterprise}:attributeName')"
        )),
    );
    check_schema(
        r#"members[value eq "x"]"#,
        Err("unknown attribute 'members': no schema of resource type User declares it"),
    );
}
