//! The NICE CXone simulator's contract: access-key tokens, SCIM Users with the
//! fixed set of fields, the Agent role, and the Admin API's agent skills.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use muster_simulators::nice::{NiceOptions, NiceSim, UnknownAttributes, NICE_EXTENSION};
use reqwest::Method;
use serde_json::{json, Value};

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    fn new(sim: &NiceSim) -> Self {
        Self {
            http: reqwest::Client::new(),
            token: sim.issue_token(),
        }
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn ada() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "externalId": "e-1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        "displayName": "Ada L",
    })
}

#[tokio::test]
async fn access_key_tokens() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let http = reqwest::Client::new();
    let token = |id: &str, secret: &str| {
        http.post(sim.token_url())
            .json(&json!({"accessKeyId": id, "accessKeySecret": secret}))
            .send()
    };
    let wrong = token("muster-access-key", "nope").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let good = token("muster-access-key", "muster-access-secret")
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let body: Value = good.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap().to_owned();

    let skills = format!("{}/skills", sim.admin_api_root());
    assert_eq!(http.get(&skills).send().await.unwrap().status(), 401);
    let with = http.get(&skills).bearer_auth(&access).send().await.unwrap();
    assert_eq!(with.status(), 200);
    sim.expire_tokens();
    let expired = http.get(&skills).bearer_auth(&access).send().await.unwrap();
    assert_eq!(expired.status(), 401);
    // The secret is never recorded.
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.body.contains("muster-access-secret")));
}

#[tokio::test]
async fn scim_users_follow_the_fixed_field_set() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let c = Client::new(&sim);
    let users = format!("{}/Users", sim.scim_base_url());

    // Required fields.
    for missing in [
        "/userName",
        "/name/givenName",
        "/name/familyName",
        "/emails",
    ] {
        let mut body = ada();
        let (parent, key) = missing.rsplit_once('/').unwrap();
        body.pointer_mut(if parent.is_empty() { "" } else { parent })
            .and_then(Value::as_object_mut)
            .unwrap()
            .remove(key);
        let (status, error) = c.call(Method::POST, &users, Some(body)).await;
        assert_eq!(status, 400, "{missing}: {error}");
    }

    // Created with the Agent role and an agent id; unknown attributes ignored.
    let mut body = ada();
    body["costCenter"] = json!("CC-1");
    let (status, created) = c.call(Method::POST, &users, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("costCenter").is_none());
    assert_eq!(created[NICE_EXTENSION]["primaryRole"], "Agent");
    let agent_id = created[NICE_EXTENSION]["agentId"].as_u64().unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = c.call(Method::POST, &users, Some(ada())).await;
    assert_eq!(status, 409);

    // Filters.
    for filter in ["userName eq \"ADA@example.com\"", "externalId eq \"e-1\""] {
        let url = format!("{users}?filter={}", urlencode(filter));
        let (status, list) = c.call(Method::GET, &url, None).await;
        assert_eq!(status, 200);
        assert_eq!(list["totalResults"], 1, "{filter}");
    }
    let url = format!("{users}?filter={}", urlencode("displayName eq \"x\""));
    assert_eq!(c.call(Method::GET, &url, None).await.0, 400);

    // PATCH (Entra's shapes) and deactivation.
    let one = format!("{users}/{id}");
    let (status, patched) = c
        .call(
            Method::PATCH,
            &one,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
                    {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "augusta@example.com"},
                    {"op": "replace", "path": "active", "value": "False"},
                ]
            })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"]["givenName"], "Augusta");
    assert_eq!(patched["emails"][0]["value"], "augusta@example.com");
    assert_eq!(patched["active"], false);
    let stored = sim.user_by_user_name("ada@example.com").unwrap();
    assert!(!stored.active);
    assert_eq!(stored.agent_id, agent_id);

    // Removing a required field is refused.
    let (status, _) = c
        .call(
            Method::PATCH,
            &one,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "name.familyName"}]
            })),
        )
        .await;
    assert_eq!(status, 400);

    // PUT replaces.
    let (status, put) = c.call(Method::PUT, &one, Some(ada())).await;
    assert_eq!(status, 200);
    assert_eq!(put["name"]["givenName"], "Ada");
    assert_eq!(put["meta"]["version"], "W/\"3\"");

    // DELETE is not offered.
    assert_eq!(c.call(Method::DELETE, &one, None).await.0, 405);
}

#[tokio::test]
async fn no_agent_role_no_creation_and_strict_mode_refuses_unknown_attributes() {
    let sim = NiceSim::start(NiceOptions {
        unknown_attributes: UnknownAttributes::Refuse,
        ..NiceOptions::default()
    })
    .await;
    let c = Client::new(&sim);
    let users = format!("{}/Users", sim.scim_base_url());
    let mut body = ada();
    body["costCenter"] = json!("CC-1");
    let (status, error) = c.call(Method::POST, &users, Some(body)).await;
    assert_eq!(status, 400);
    assert_eq!(error["scimType"], "invalidSyntax");

    sim.delete_role("Agent");
    let (status, error) = c.call(Method::POST, &users, Some(ada())).await;
    assert_eq!(status, 400);
    assert!(error["detail"].as_str().unwrap().contains("Agent"));
    assert!(sim.users().is_empty());
}

#[tokio::test]
async fn agent_skills() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let billing = sim.seed_skill("Billing");
    let sales = sim.seed_skill("Sales");
    let agent = sim.seed_user("ada@example.com");
    let c = Client::new(&sim);
    let root = sim.admin_api_root();
    let url = format!("{root}/agents/{agent}/skills");

    let (status, list) = c
        .call(
            Method::GET,
            &format!("{root}/skills?searchString=bill"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        list["skills"],
        json!([{"skillId": billing, "skillName": "Billing", "isActive": true, "mediaTypeId": 4}])
    );
    let (_, found) = c
        .call(
            Method::GET,
            &format!("{root}/agents?searchString=ada%40example.com"),
            None,
        )
        .await;
    assert_eq!(found["agents"][0]["agentId"], agent);

    let assign = |skill: u64, p: u64| json!({"skills": [{"skillId": skill, "isActive": true, "proficiency": p}]});
    assert_eq!(
        c.call(Method::POST, &url, Some(assign(billing, 21)))
            .await
            .0,
        400
    );
    assert_eq!(c.call(Method::POST, &url, Some(assign(99, 3))).await.0, 400);
    assert_eq!(
        c.call(Method::PUT, &url, Some(assign(billing, 3))).await.0,
        400
    );
    assert_eq!(
        c.call(Method::POST, &url, Some(assign(billing, 3))).await.0,
        200
    );
    assert_eq!(
        c.call(Method::POST, &url, Some(assign(billing, 3))).await.0,
        400
    );
    assert_eq!(
        c.call(Method::PUT, &url, Some(assign(billing, 7))).await.0,
        200
    );
    assert_eq!(
        c.call(Method::POST, &url, Some(assign(sales, 1))).await.0,
        200
    );
    let (status, held) = c.call(Method::GET, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(held["totalRecords"], 2);
    assert_eq!(held["agentSkillAssignments"][0]["proficiency"], 7);
    let remove = json!({"skills": [{"skillId": sales}]});
    assert_eq!(
        c.call(Method::DELETE, &url, Some(remove.clone())).await.0,
        200
    );
    assert_eq!(c.call(Method::DELETE, &url, Some(remove)).await.0, 200);
    assert_eq!(sim.skills_of(agent).len(), 1);
    assert_eq!(
        c.call(Method::GET, &format!("{root}/agents/1/skills"), None)
            .await
            .0,
        404
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_optional_budget_answers_429_with_retry_after() {
    let sim = NiceSim::start(NiceOptions {
        rate_limit: Some(2),
        ..NiceOptions::default()
    })
    .await;
    let c = Client::new(&sim);
    let url = format!("{}/skills", sim.admin_api_root());
    assert_eq!(c.call(Method::GET, &url, None).await.0, 200);
    assert_eq!(c.call(Method::GET, &url, None).await.0, 200);
    let response = c.http.get(&url).bearer_auth(&c.token).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
}
