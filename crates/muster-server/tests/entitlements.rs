//! Contact-center entitlements over HTTP, replaying the seeds: groups
//! `Group_CC_Agents_Tier1` and `Genesys_Cloud_Users`, department to
//! division, "Level 2 Support" to "Quality Evaluator", cost center
//! "CC-4100" to "Manila Voice", a missing cost center, a group rename, a
//! reorganisation, a deactivation, and a rule change seen first in a dry
//! run, then applied, then rolled back.

#![allow(
    clippy::expect_used,
    reason = "a failed request must fail the test loudly"
)]

#[allow(dead_code, reason = "each test file uses some of the shared helpers")]
mod support;

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{create, group, patch, put_rules, CC, ENTERPRISE, PATCH, USER};

/// The seeds' rule set; `{unit}` is where CC-4100 lands.
fn rules(unit: &str) -> String {
    format!(
        r#"
# Contoso, as in seeds 000 and 004
[catalog]
divisions = ["Home", "Customer Support", "APAC"]
licenses = ["CX 1", "CX 3"]
roles = [
  {{ name = "Employee", license = "CX 1" }},
  {{ name = "Agent", license = "CX 1" }},
  {{ name = "Quality Evaluator", license = "CX 3" }},
]
skills = ["Billing"]
languages = ["English"]
management_units = [
  {{ name = "Manila Voice", division = "APAC" }},
  {{ name = "Manila Chat", division = "APAC" }},
]

[defaults]
home_division = "Home"

[[rules]]
id = "cloud-users"
when = 'groups[display eq "Genesys_Cloud_Users"]'
grants = [{{ role = "Employee", division = "Home" }}]

[[rules]]
id = "tier1-agents"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{{ role = "Agent", division = "Customer Support" }}]
skills = [{{ name = "Billing", proficiency = 3 }}]

[[rules]]
id = "level2-quality"
when = 'title eq "Level 2 Support"'
grants = [{{ role = "Quality Evaluator", division = "Customer Support" }}]

[[tables]]
id = "division-by-department"
when = 'groups[display eq "Genesys_Cloud_Users"]'
key = "{ENTERPRISE}:department"
sets = "home_division"
rows = {{ "Customer Support" = "Customer Support", "APAC Operations" = "APAC" }}

[[tables]]
id = "unit-by-cost-center"
when = 'groups[display eq "Genesys_Cloud_Users"]'
key = "{ENTERPRISE}:costCenter"
sets = "management_unit"
rows = {{ "CC-4100" = "{unit}" }}
"#
    )
}

async fn user(server: &TestServer, name: &str, title: &str, enterprise: Value) -> String {
    create(
        server,
        "/Users",
        json!({"schemas": [USER, ENTERPRISE], "userName": name, "title": title, "active": true,
               ENTERPRISE: enterprise}),
    )
    .await
}

async fn entitlements(server: &TestServer, id: &str) -> Value {
    let reply = server
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body[CC].clone()
}

fn roles(entitlements: &Value) -> Vec<String> {
    entitlements["grants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|grant| {
            format!(
                "{} in {}",
                grant["role"].as_str().unwrap_or_default(),
                grant["division"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_seeds_scenario_end_to_end() {
    let server = TestServer::start().await;
    let alice = user(
        &server,
        "alice@contoso.com",
        "Agent",
        json!({"department": "APAC Operations", "costCenter": "CC-4100"}),
    )
    .await;
    let bob = user(
        &server,
        "bob@contoso.com",
        "Level 2 Support",
        json!({"department": "Customer Support"}),
    )
    .await;
    let carol = user(&server, "carol@contoso.com", "Clerk", json!({})).await;
    let tier1 = group(&server, "Group_CC_Agents_Tier1", &[&alice]).await;
    group(&server, "Genesys_Cloud_Users", &[&alice, &bob]).await;

    // No rule set is in force yet: no extension.
    let schemas = server
        .call(Method::GET, &format!("/Schemas/{CC}"), None)
        .await;
    assert_eq!(schemas.status, StatusCode::NOT_FOUND, "{}", schemas.body);
    assert_eq!(entitlements(&server, &alice).await, Value::Null);

    // A reference to a group or attribute that does not exist is refused
    // with the rule id and a "did you mean"; nothing is stored.
    let typo = rules("Manila Voice").replace("Group_CC_Agents_Tier1", "Group_CC_Agent_Tier1");
    let refused = put_rules(&server, "", &typo).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("tier1-agents") && detail.contains("Group_CC_Agents_Tier1"),
        "{detail}"
    );
    let unknown = rules("Manila Voice").replace("title eq", "jobTitle eq");
    let refused = put_rules(&server, "", &unknown).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("level2-quality"));
    let none = server.admin(Method::GET, "/rules", None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);

    // Dry run first: what would change, for whom; nothing is stored.
    let dry = put_rules(
        &server,
        "?dryRun=true&user=bob@contoso.com",
        &rules("Manila Voice"),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(dry.body["summary"]["users"], 3);
    assert_eq!(dry.body["user"]["userName"], "bob@contoso.com");
    assert_eq!(
        dry.body["summary"]["usersGainingProblems"]["users"],
        json!(["bob@contoso.com"])
    );
    assert_eq!(entitlements(&server, &alice).await, Value::Null);

    let applied = put_rules(&server, "", &rules("Manila Voice")).await;
    assert_eq!(applied.status, StatusCode::CREATED, "{}", applied.body);
    assert_eq!(applied.body["version"], 1);
    // Now the extension is listed in /Schemas and on the User type.
    let schemas = server
        .call(Method::GET, &format!("/Schemas/{CC}"), None)
        .await;
    assert_eq!(schemas.status, StatusCode::OK, "{}", schemas.body);
    let user_type = server.call(Method::GET, "/ResourceTypes/User", None).await;
    assert!(
        user_type.body.to_string().contains(CC),
        "{}",
        user_type.body
    );

    // Alice: Tier 1 agent in the cloud group, CC-4100: Manila Voice.
    let a = entitlements(&server, &alice).await;
    assert_eq!(
        a["managementUnit"],
        json!({"name": "Manila Voice", "rule": "unit-by-cost-center"})
    );
    assert_eq!(a["homeDivision"]["name"], "APAC");
    assert_eq!(roles(&a), ["Agent in Customer Support", "Employee in Home"]);
    assert_eq!(a["skills"][0]["name"], "Billing");
    assert_eq!(a["licenses"][0]["name"], "CX 1");
    // Bob: Level 2 Support evaluates quality; no cost center: no unit, a problem.
    let b = entitlements(&server, &bob).await;
    assert!(
        roles(&b).contains(&"Quality Evaluator in Customer Support".to_owned()),
        "{b}"
    );
    assert!(b.get("managementUnit").is_none(), "{b}");
    assert_eq!(b["problems"][0]["code"], "missingKey", "{b}");
    // Carol: no rule matches: the defaults.
    let c = entitlements(&server, &carol).await;
    assert_eq!(
        c["homeDivision"],
        json!({"name": "Home", "rule": "defaults"})
    );
    assert!(c.get("grants").is_none(), "{c}");

    // Filtered reads and projections carry it too.
    let listed = server
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22alice@contoso.com%22",
            None,
        )
        .await;
    assert_eq!(
        listed.body["Resources"][0][CC]["managementUnit"]["name"],
        "Manila Voice"
    );

    // Explain: each entitlement with its rule, each failed rule with the
    // condition and the value seen.
    let explained = server
        .admin(
            Method::GET,
            &format!("/users/{bob}/entitlements/explain"),
            None,
        )
        .await;
    assert_eq!(explained.status, StatusCode::OK, "{}", explained.body);
    let text = explained.body.to_string();
    assert!(
        text.contains("level2-quality") && text.contains("Level 2 Support"),
        "{text}"
    );
    assert!(
        text.contains("tier1-agents") && text.contains("Group_CC_Agents_Tier1"),
        "{text}"
    );
    let by_name = server
        .admin(
            Method::GET,
            "/users/alice@contoso.com/entitlements/explain",
            None,
        )
        .await;
    assert_eq!(by_name.status, StatusCode::OK, "{}", by_name.body);

    // Coverage.
    let stats = server.admin(Method::GET, "/rules/stats", None).await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["users"], 3);
    assert_eq!(stats.body["usersWithProblems"], 1);
    let tier1_users = stats.body["rules"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["rule"] == "tier1-agents"))
        .map(|row| row["users"].clone());
    assert_eq!(tier1_users, Some(json!(1)));

    // A group rename: the rule names the old group, so alice is no agent.
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "replace", "path": "displayName", "value": "Group_CC_Agents_Tier1_Old"}]),
    )
    .await;
    assert_eq!(
        roles(&entitlements(&server, &alice).await),
        ["Employee in Home"]
    );
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "replace", "path": "displayName", "value": "Group_CC_Agents_Tier1"}]),
    )
    .await;
    // A reorganisation: bob joins Tier 1, alice leaves.
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([
            {"op": "add", "path": "members", "value": [{"value": bob}]},
            {"op": "remove", "path": format!("members[value eq \"{alice}\"]")}
        ]),
    )
    .await;
    assert!(
        roles(&entitlements(&server, &bob).await).contains(&"Agent in Customer Support".to_owned())
    );
    assert_eq!(
        roles(&entitlements(&server, &alice).await),
        ["Employee in Home"]
    );
    // Deactivation frees every license at once; reactivation restores.
    patch(
        &server,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    let inactive = entitlements(&server, &bob).await;
    assert!(
        inactive.get("licenses").is_none() && inactive.get("grants").is_none(),
        "{inactive}"
    );
    patch(
        &server,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    assert!(entitlements(&server, &bob).await.get("licenses").is_some());

    // Clients never write the computed extension.
    let written = server
        .call(
            Method::POST,
            "/Users",
            Some(
                json!({"schemas": [USER, CC], "userName": "dave@contoso.com",
            CC: {"managementUnit": {"name": "Manila Voice"}}}),
            ),
        )
        .await;
    assert_eq!(written.status, StatusCode::BAD_REQUEST, "{}", written.body);
    assert_eq!(written.body["scimType"], "mutability");
    let patched = server
        .call(Method::PATCH, &format!("/Users/{alice}"), Some(json!({"schemas": [PATCH],
            "Operations": [{"op": "replace", "path": format!("{CC}:managementUnit.name"), "value": "Manila Chat"}]})))
        .await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{}", patched.body);
    assert_eq!(patched.body["scimType"], "mutability");

    // A rule change: dry run, apply, roll back.
    let dry = put_rules(&server, "?dryRun=true", &rules("Manila Chat")).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let moved = dry.body["summary"]["changes"]
        .as_array()
        .and_then(|changes| {
            changes
                .iter()
                .find(|c| c["change"] == "Manila Voice -> Manila Chat")
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(moved["count"], 1, "{}", dry.body);
    assert_eq!(moved["users"], json!(["alice@contoso.com"]));
    assert_eq!(
        entitlements(&server, &alice).await["managementUnit"]["name"],
        "Manila Voice"
    );
    let v2 = put_rules(&server, "", &rules("Manila Chat")).await;
    assert_eq!(v2.body["version"], 2, "{}", v2.body);
    assert_eq!(
        entitlements(&server, &alice).await["managementUnit"]["name"],
        "Manila Chat"
    );
    let rollback = put_rules(&server, "?version=1", "").await;
    assert_eq!(rollback.status, StatusCode::CREATED, "{}", rollback.body);
    assert_eq!(rollback.body["version"], 3);
    assert_eq!(
        entitlements(&server, &alice).await["managementUnit"]["name"],
        "Manila Voice"
    );
    let history = server.admin(Method::GET, "/rules/history", None).await;
    let notes: Vec<Value> = history.body["Resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| json!([item["version"], item["note"]]))
        .collect();
    assert_eq!(
        notes,
        [
            json!([1, ""]),
            json!([2, ""]),
            json!([3, "rollback to version 1"])
        ]
    );
    let shown = server.admin(Method::GET, "/rules?version=1", None).await;
    assert!(shown.body["document"]
        .as_str()
        .unwrap_or_default()
        .starts_with("\n# Contoso"));
}

#[tokio::test]
async fn rules_need_the_admin_scope_and_a_rule_format() {
    let server = TestServer::start().await;
    let writer = server.token_with("writer", &["scim.write"]).await;
    let reply = server
        .call_as(&writer, Method::GET, "/admin/v1/rules", None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let wrong = server
        .http
        .put(format!("{}/admin/v1/rules", server.root))
        .bearer_auth(&server.token)
        .header("content-type", "application/xml")
        .body("<rules/>")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let json_rules =
        json!({"catalog": {"divisions": ["Home"]}, "defaults": {"home_division": "Home"}});
    let reply = server.admin(Method::PUT, "/rules", Some(json_rules)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let shown = server.admin(Method::GET, "/rules", None).await;
    assert_eq!(shown.body["format"], "json");
}
