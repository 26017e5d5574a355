//! The NICE CXone platform stage (`muster_sync::nice`) against the CXone
//! simulator: skills added with converted proficiency, changed, removed,
//! unknown names reported, the token reused and renewed, a wrong key refused.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use muster_rules::CONTACT_CENTER_URN;
use muster_simulators::nice::{NiceOptions, NiceSim};
use muster_sync::nice::{AgentIdSource, NiceConfig, NicePlatform, ProficiencyScale};
use serde_json::{json, Value};

fn config(sim: &NiceSim) -> NiceConfig {
    NiceConfig {
        api_root: sim.admin_api_root(),
        token_url: sim.token_url(),
        access_key_id: sim.options().access_key_id.clone(),
        access_key_secret: sim.options().access_key_secret.clone(),
        proficiency: ProficiencyScale::default(),
        agent_id: AgentIdSource::default(),
        rate_limit: None,
    }
}

/// Creates a user over the simulator's SCIM (as the SCIM delivery would) and
/// returns the user as CXone answered.
async fn scim_user(sim: &NiceSim, http: &reqwest::Client, user_name: &str) -> Value {
    let response = http
        .post(format!("{}/Users", sim.scim_base_url()))
        .bearer_auth(sim.issue_token())
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": user_name, "type": "work", "primary": true}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A Muster user whose computed entitlements carry these skills.
fn user(skills: &[(&str, f64)]) -> Value {
    let skills: Vec<Value> = skills
        .iter()
        .map(|(name, p)| json!({"name": name, "proficiency": p}))
        .collect();
    json!({"userName": "ada@example.com", CONTACT_CENTER_URN: {"skills": skills}})
}

fn agent_id(scim: &Value) -> u64 {
    scim["urn:ietf:params:scim:schemas:extension:nice:2.0:User"]["agentId"]
        .as_u64()
        .unwrap()
}

/// The agent's skills at the simulator as (name, proficiency).
fn held(sim: &NiceSim, agent: u64) -> Vec<(String, u8)> {
    sim.skills_of(agent)
        .into_iter()
        .map(|s| (s.skill_name, s.proficiency))
        .collect()
}

/// The skill calls recorded (method, body) since the last clear.
fn skill_calls(sim: &NiceSim) -> Vec<(String, Value)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/skills") && r.path.contains("/agents/"))
        .map(|r| (r.method.clone(), r.body_json()))
        .collect()
}

fn pairs(list: &[(&str, u8)]) -> Vec<(String, u8)> {
    list.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
}

#[tokio::test]
async fn skills_are_added_changed_and_removed() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let billing = sim.seed_skill("Billing");
    sim.seed_skill("Sales");
    sim.seed_skill("Support");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    let agent = agent_id(&scim);
    let platform = NicePlatform::new(config(&sim)).unwrap();

    // Added, with converted proficiency (5 → 1, 2 → 12), in one POST.
    let (state, missing) = platform
        .deliver_skills(
            &http,
            &scim,
            &user(&[("Billing", 5.0), ("Sales", 2.0)]),
            None,
        )
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(held(&sim, agent), pairs(&[("Billing", 1), ("Sales", 12)]));
    let calls = skill_calls(&sim);
    assert_eq!(calls.len(), 2, "{calls:?}"); // GET (before unknown), POST
    assert_eq!(calls[0].0, "GET");
    assert_eq!(calls[1].0, "POST");
    assert_eq!(
        calls[1].1["skills"][0],
        json!({"skillId": billing, "isActive": true, "proficiency": 1})
    );
    assert_eq!(state["agentId"], json!(agent));

    // Changed (Billing 5 → 3 gives 9) and added (Support 4 → 5), from the
    // delivered state: no read, one POST and one PUT.
    sim.clear_requests();
    let (state, missing) = platform
        .deliver_skills(
            &http,
            &scim,
            &user(&[("Billing", 3.0), ("Sales", 2.0), ("Support", 4.0)]),
            Some(&state),
        )
        .await
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(
        held(&sim, agent),
        pairs(&[("Billing", 9), ("Sales", 12), ("Support", 5)])
    );
    let methods: Vec<String> = skill_calls(&sim).into_iter().map(|c| c.0).collect();
    assert_eq!(methods, ["POST", "PUT"]);

    // Removed: one DELETE naming only the skill id.
    sim.clear_requests();
    let (state, _) = platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 3.0)]), Some(&state))
        .await
        .unwrap();
    assert_eq!(held(&sim, agent), pairs(&[("Billing", 9)]));
    let calls = skill_calls(&sim);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "DELETE");
    assert_eq!(calls[0].1["skills"].as_array().unwrap().len(), 2);
    assert!(calls[0].1["skills"][0].get("proficiency").is_none());

    // Nothing changed: no call at all.
    sim.clear_requests();
    platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 3.0)]), Some(&state))
        .await
        .unwrap();
    assert!(skill_calls(&sim).is_empty());

    // Everything removed.
    platform
        .deliver_skills(&http, &scim, &user(&[]), Some(&state))
        .await
        .unwrap();
    assert!(held(&sim, agent).is_empty());
}

#[tokio::test]
async fn unknown_skills_are_reported_and_the_rest_delivered() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    sim.seed_skill("Billing");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    let platform = NicePlatform::new(config(&sim)).unwrap();
    let (state, missing) = platform
        .deliver_skills(
            &http,
            &scim,
            &user(&[("billing", 4.0), ("Mandarin", 5.0)]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].what, "skill Mandarin");
    assert!(missing[0].reason.contains("no skill named 'Mandarin'"));
    assert_eq!(held(&sim, agent_id(&scim)), pairs(&[("Billing", 5)]));
    assert_eq!(state["skills"].as_array().unwrap().len(), 1);

    // The skill list is cached: a second delivery does not read it again.
    sim.clear_requests();
    platform
        .deliver_skills(
            &http,
            &scim,
            &user(&[("billing", 4.0), ("Mandarin", 5.0)]),
            Some(&state),
        )
        .await
        .unwrap();
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.path.ends_with("/skills") || r.path.contains("/agents/")));
}

#[tokio::test]
async fn the_token_is_reused_and_renewed_after_expiry() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    sim.seed_skill("Billing");
    let http = reqwest::Client::new();
    let platform = NicePlatform::new(config(&sim)).unwrap();
    let mut scims = Vec::new();
    for n in 0..3 {
        let scim = scim_user(&sim, &http, &format!("agent{n}@example.com")).await;
        platform
            .deliver_skills(&http, &scim, &user(&[("Billing", 1.0)]), None)
            .await
            .unwrap();
        scims.push(scim);
    }
    assert_eq!(sim.tokens_issued(), 1);
    // The token endpoint's body is never recorded in clear.
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.body.contains(&sim.options().access_key_secret)));

    // An expired token answers 401: a new one is fetched and the call made again.
    sim.expire_tokens();
    platform
        .deliver_skills(&http, &scims[0], &user(&[("Billing", 5.0)]), None)
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 2);
    assert_eq!(held(&sim, agent_id(&scims[0])), pairs(&[("Billing", 1)]));
}

#[tokio::test]
async fn a_wrong_key_is_an_error_that_never_shows_the_secret() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    let platform = NicePlatform::new(NiceConfig {
        access_key_secret: "wrong-secret-value".into(),
        ..config(&sim)
    })
    .unwrap();
    let error = platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 5.0)]), None)
        .await
        .unwrap_err();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("wrong-secret-value"), "{error}");
    assert_eq!(sim.tokens_issued(), 0);
}

#[tokio::test]
async fn a_stale_record_is_corrected_from_what_cxone_holds() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    let billing = sim.seed_skill("Billing");
    let sales = sim.seed_skill("Sales");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    let agent = agent_id(&scim);
    let platform = NicePlatform::new(config(&sim)).unwrap();
    let (state, _) = platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 5.0)]), None)
        .await
        .unwrap();
    // An admin removes Billing and adds Sales in the console.
    let token = sim.issue_token();
    http.delete(format!("{}/agents/{agent}/skills", sim.admin_api_root()))
        .bearer_auth(&token)
        .json(&json!({"skills": [{"skillId": billing}]}))
        .send()
        .await
        .unwrap();
    sim.seed_agent_skill(agent, sales, 3);
    // The record says Billing is held at 1: the PUT fails, the agent is read
    // and brought to what Muster computes.
    platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 4.0)]), Some(&state))
        .await
        .unwrap();
    assert_eq!(held(&sim, agent), pairs(&[("Billing", 5)]));
}

#[tokio::test]
async fn unknown_state_reads_the_agent_and_removes_skills_not_computed() {
    let sim = NiceSim::start(NiceOptions::default()).await;
    sim.seed_skill("Billing");
    let sales = sim.seed_skill("Sales");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    let agent = agent_id(&scim);
    sim.seed_agent_skill(agent, sales, 7);
    let platform = NicePlatform::new(config(&sim)).unwrap();
    platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 0.0)]), None)
        .await
        .unwrap();
    assert_eq!(held(&sim, agent), pairs(&[("Billing", 20)]));
}

#[tokio::test]
async fn agent_id_by_search_and_a_custom_scale() {
    let sim = NiceSim::start(NiceOptions {
        agent_id_attribute: None,
        ..NiceOptions::default()
    })
    .await;
    sim.seed_skill("Billing");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    assert!(scim
        .get("urn:ietf:params:scim:schemas:extension:nice:2.0:User")
        .and_then(|e| e.get("agentId"))
        .is_none());

    // The default source cannot find it: an error, nothing sent.
    let by_attribute = NicePlatform::new(config(&sim)).unwrap();
    let error = by_attribute
        .deliver_skills(&http, &scim, &user(&[("Billing", 5.0)]), None)
        .await
        .unwrap_err();
    assert!(error.contains("no agent id"), "{error}");

    let platform = NicePlatform::new(NiceConfig {
        agent_id: AgentIdSource::SearchByUserName,
        proficiency: ProficiencyScale { best: 1, worst: 10 },
        ..config(&sim)
    })
    .unwrap();
    let (state, _) = platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 2.5)]), None)
        .await
        .unwrap();
    let agent = sim.user_by_user_name("ada@example.com").unwrap().agent_id;
    assert_eq!(state["agentId"], json!(agent));
    assert_eq!(held(&sim, agent), pairs(&[("Billing", 6)]));
}

#[tokio::test]
async fn a_throttled_call_is_an_error_to_retry() {
    let sim = NiceSim::start(NiceOptions {
        rate_limit: Some(2),
        ..NiceOptions::default()
    })
    .await;
    sim.seed_skill("Billing");
    let http = reqwest::Client::new();
    let scim = scim_user(&sim, &http, "ada@example.com").await;
    // Our own bucket is generous; the simulator's budget of 2 is not.
    let platform = NicePlatform::new(NiceConfig {
        rate_limit: Some(muster_targets::RateLimit {
            requests_per_second: 100.0,
            burst: 10,
        }),
        ..config(&sim)
    })
    .unwrap();
    let error = platform
        .deliver_skills(&http, &scim, &user(&[("Billing", 5.0)]), None)
        .await
        .unwrap_err();
    assert!(error.contains("429"), "{error}");
    assert!(sim.requests().iter().any(|r| r.status == 429));
}
