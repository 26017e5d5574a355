//! Issue 12: `nice-cxone` and `five9` targets end to end, against their
//! simulators (crates/muster-simulators): an Entra-shaped user in the
//! seeds' Tier 1 group arrives with its routing skill at the platform's
//! proficiency scale; a deactivation arrives; an unknown skill is reported
//! as not delivered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use muster_simulators::five9::{Five9Options, Five9Sim};
use muster_simulators::nice::{NiceOptions, NiceSim};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, put_rules};

const RULES: &str = r#"
[catalog]
divisions = ["Customer Support"]
skills = ["Billing", "Spanish Sales"]

[[rules]]
id = "tier1-agents"
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
skills = [{ name = "Billing", proficiency = 5 }, { name = "Spanish Sales", proficiency = 2 }]
"#;

/// Muster with the rules, a target, and an agent in Tier 1; returns the
/// server and the agent's id.
async fn muster_with(target: Value) -> (TestServer, String) {
    let muster = TestServer::start().await;
    let group = muster
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Group_CC_Agents_Tier1"
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let rules = put_rules(&muster, "", RULES).await;
    assert!(rules.status.is_success(), "{}", rules.body);
    let name = target["name"].as_str().unwrap().to_owned();
    let put = muster
        .admin(Method::PUT, &format!("/targets/{name}"), Some(target))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let created = muster
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ana.lima@contoso.com",
                "externalId": "e-ana",
                "active": true,
                "displayName": "Ana Lima",
                "name": {"givenName": "Ana", "familyName": "Lima"},
                "emails": [{"type": "work", "value": "ana.lima@contoso.com", "primary": true}]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let added = muster
        .patch(
            &format!("/Groups/{group_id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]
            }),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    (muster, id)
}

async fn deactivate(muster: &TestServer, id: &str) {
    let reply = muster
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_nice_cxone_agent_gets_its_skill_on_the_one_to_twenty_scale() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    sim.seed_role("Agent");
    sim.seed_skill("Billing");
    let options = NiceOptions::default();
    let (muster, id) = muster_with(json!({
        "name": "cxone",
        "kind": "nice-cxone",
        "baseUrl": sim.scim_base_url(),
        "apiBaseUrl": sim.admin_api_root(),
        "auth": {
            "type": "access-key",
            "tokenUrl": sim.token_url(),
            "accessKeyId": options.access_key_id,
            "accessKeySecret": options.access_key_secret
        }
    }))
    .await;
    let agent = eventually(20, "the agent's skill", || async {
        let user = sim.user_by_user_name("ana.lima@contoso.com")?;
        (!sim.skills_of(user.agent_id).is_empty()).then_some(user)
    })
    .await;
    let skills = sim.skills_of(agent.agent_id);
    assert_eq!(skills.len(), 1, "{skills:?}");
    let billing = skills.first().unwrap();
    assert_eq!(billing.skill_name, "Billing");
    assert_eq!(billing.proficiency, 1, "Muster's 5 is CXone's 1 (best)");

    // The skill CXone does not have is reported, not dropped silently.
    let explain = muster
        .admin(
            Method::GET,
            "/users/ana.lima@contoso.com/targets/cxone",
            None,
        )
        .await;
    assert_eq!(explain.status, StatusCode::OK, "{}", explain.body);
    assert!(
        explain.body["notSent"]
            .to_string()
            .contains("Spanish Sales"),
        "{}",
        explain.body
    );

    deactivate(&muster, &id).await;
    eventually(20, "the deactivation at CXone", || async {
        let user = sim.user_by_user_name("ana.lima@contoso.com")?;
        (!user.active).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_five9_user_is_keyed_on_federation_id_and_gets_its_skill_level() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    sim.seed_skill("Billing");
    let options = Five9Options::default();
    let (muster, id) = muster_with(json!({
        "name": "five9",
        "kind": "five9",
        "baseUrl": sim.endpoint(),
        "auth": {"type": "basic", "username": options.username, "password": options.password},
        "rateLimit": {"requestsPerSecond": 50, "burst": 10}
    }))
    .await;
    let user = eventually(20, "the Five9 user with its skill", || async {
        let user = sim.user("ana.lima@contoso.com")?;
        (!user.skills.is_empty()).then_some(user)
    })
    .await;
    assert_eq!(user.field("federationId"), Some("e-ana"));
    assert_eq!(user.skills.get("Billing"), Some(&1), "{:?}", user.skills);
    assert!(!user.skills.contains_key("Spanish Sales"));
    let explain = muster
        .admin(
            Method::GET,
            "/users/ana.lima@contoso.com/targets/five9",
            None,
        )
        .await;
    assert_eq!(explain.status, StatusCode::OK, "{}", explain.body);
    assert!(
        explain.body["answer"].to_string().contains("Spanish Sales"),
        "the missing skill is reported: {}",
        explain.body
    );

    deactivate(&muster, &id).await;
    eventually(20, "the deactivation at Five9", || async {
        let user = sim.user("ana.lima@contoso.com")?;
        (user.field("active") == Some("false")).then_some(())
    })
    .await;
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
}
