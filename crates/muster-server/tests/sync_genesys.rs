//! Issue 12: a `genesys-cloud` target against the Genesys Cloud simulator
//! (crates/muster-simulators): an Entra-shaped user with the seeds' groups
//! and cost center arrives with its role granted in the right division,
//! its skills, language, management unit and license; a deactivation frees
//! the license; groups are never created; pages never exceed 25; the
//! request budget is never exceeded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use std::time::Duration;

use muster_simulators::genesys::{GenesysOptions, GenesysSim, SeedUser, UserState};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, group, patch, put_genesys_target, put_rules};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const RULES: &str = r#"
[catalog]
divisions = ["Customer Support", "APAC"]
licenses = ["CX 1"]
roles = [{ name = "Agent", license = "CX 1" }]
skills = ["Billing"]
languages = ["English"]
management_units = [{ name = "Manila Voice", division = "APAC" }]

[[rules]]
id = "tier1-agents"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{ role = "Agent", division = "Customer Support" }]
skills = [{ name = "Billing", proficiency = 3 }]
languages = [{ name = "English", proficiency = 4 }]
home_division = "Customer Support"

[[tables]]
id = "unit-by-cost-center"
key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
sets = "management_unit"

[tables.rows]
"CC-4100" = "Manila Voice"
"#;

#[tokio::test]
async fn an_entra_user_arrives_in_genesys_with_its_entitlements() {
    let sim = GenesysSim::start(GenesysOptions::default()).await;
    let support = sim.seed_division("Customer Support");
    let apac = sim.seed_division("APAC");
    let agent = sim.seed_role("Agent");
    let billing = sim.seed_skill("Billing");
    let english = sim.seed_language("English");
    let manila = sim.seed_management_unit("Manila Voice", &apac);
    let license = sim.seed_license("CX 1");
    let tier1 = sim.seed_group("Group_CC_Agents_Tier1");

    let (muster, group_id) = muster_for(&sim).await;
    let options = sim.options().clone();

    // Entra creates the agent, then adds it to the group.
    let created = muster
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "ana.lima@contoso.com",
                "externalId": "e-ana",
                "active": true,
                "displayName": "Ana Lima",
                ENTERPRISE: {"costCenter": "CC-4100", "department": "Customer Support"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    membership(&muster, &group_id, "add", &id).await;

    let user = eventually(20, "the user in Genesys with its license", || async {
        let user = sim.user_by_user_name("ana.lima@contoso.com")?;
        (!sim.licenses_of(&user.id).is_empty()).then_some(user)
    })
    .await;
    let grants = sim.grants_of(&user.id);
    assert!(
        grants
            .own
            .iter()
            .any(|grant| grant.role_id == agent && grant.division_id == support),
        "Agent in Customer Support: {grants:?}"
    );
    let skills = sim.skills_of(&user.id);
    assert!(
        skills
            .iter()
            .any(|skill| skill.id == billing && (skill.proficiency - 3.0).abs() < f64::EPSILON),
        "{skills:?}"
    );
    let languages = sim.languages_of(&user.id);
    assert!(
        languages.iter().any(|language| language.id == english),
        "{languages:?}"
    );
    assert_eq!(
        sim.management_unit_of(&user.id).as_deref(),
        Some(manila.as_str())
    );
    assert_eq!(sim.licenses_of(&user.id), vec![license.clone()]);
    eventually(20, "the membership in the pre-existing group", || async {
        sim.group_members(&tier1).contains(&user.id).then_some(())
    })
    .await;

    // The end-to-end explain names what was not delivered, and why.
    let explain = muster
        .admin(
            Method::GET,
            "/users/ana.lima@contoso.com/targets/genesys",
            None,
        )
        .await;
    assert_eq!(explain.status, StatusCode::OK, "{}", explain.body);
    assert_eq!(explain.body["remoteId"], user.id.as_str());
    let not_sent = explain.body["notSent"].to_string();
    assert!(not_sent.contains("costCenter"), "{not_sent}");

    // Deactivation frees the license and takes the grants away.
    let disabled = muster
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    eventually(20, "the license freed", || async {
        sim.licenses_of(&user.id).is_empty().then_some(())
    })
    .await;
    let after = sim.user(&user.id).unwrap();
    assert_eq!(after.state, UserState::Inactive, "deactivated at Genesys");

    // Genesys' contract held throughout.
    assert_eq!(
        sim.groups_created(),
        0,
        "no group was ever created at Genesys"
    );
    assert!(sim.max_page_size_seen() <= 25);
    assert!(sim.max_requests_per_window() <= usize::try_from(options.rate_limit).unwrap());
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
    let _: Value = explain.body;
}

/// Muster with the seeds' rules and a `genesys-cloud` target pointing at
/// `sim`; returns the server and the id of Group_CC_Agents_Tier1 in Muster.
async fn muster_for(sim: &GenesysSim) -> (TestServer, String) {
    let (muster, group_id) = muster_with_rules().await;
    put_genesys_target(&muster, sim, Value::Null).await;
    (muster, group_id)
}

/// Muster with the seeds' rules, no target yet; returns the server and the
/// id of Group_CC_Agents_Tier1 in Muster.
async fn muster_with_rules() -> (TestServer, String) {
    let muster = TestServer::start().await;
    let group_id = group(&muster, "Group_CC_Agents_Tier1", &[]).await;
    let rules = put_rules(&muster, "", RULES).await;
    assert!(rules.status.is_success(), "{}", rules.body);
    (muster, group_id)
}

async fn membership(muster: &TestServer, group_id: &str, op: &str, user_id: &str) {
    let operation = if op == "add" {
        json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
    } else {
        json!({"op": "remove", "path": format!("members[value eq \"{user_id}\"]")})
    };
    patch(muster, &format!("/Groups/{group_id}"), json!([operation])).await;
}

#[tokio::test]
async fn a_rehire_is_restored_and_a_reorganisation_keeps_inherited_grants() {
    let sim = GenesysSim::start(GenesysOptions::default()).await;
    let support = sim.seed_division("Customer Support");
    let apac = sim.seed_division("APAC");
    let agent = sim.seed_role("Agent");
    let supervisor = sim.seed_role("Supervisor");
    sim.seed_skill("Billing");
    sim.seed_language("English");
    sim.seed_management_unit("Manila Voice", &apac);
    sim.seed_license("CX 1");
    sim.seed_group("Group_CC_Agents_Tier1");
    // Left last year: soft-deleted at Genesys, its userName still taken.
    let former = sim.seed_user(
        SeedUser::new("re.hire@contoso.com")
            .state(UserState::Deleted)
            .external_id("e-rehire"),
    );
    let (muster, tier1) = muster_for(&sim).await;

    let created = muster
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "re.hire@contoso.com",
                "externalId": "e-rehire",
                "active": true,
                "displayName": "Re Hire",
                ENTERPRISE: {"costCenter": "CC-4100"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    membership(&muster, &tier1, "add", &id).await;

    // Restored, not duplicated, and its role granted again.
    eventually(20, "the restored user with its Agent grant", || async {
        let grants = sim.grants_of(&former);
        grants
            .own
            .iter()
            .any(|grant| grant.role_id == agent && grant.division_id == support)
            .then_some(())
    })
    .await;
    let restored = sim.user(&former).unwrap();
    assert_eq!(restored.state, UserState::Active);
    let named: Vec<_> = sim
        .users()
        .into_iter()
        .filter(|user| user.user_name == "re.hire@contoso.com")
        .collect();
    assert_eq!(named.len(), 1, "restored, not created again");

    // A grant the user inherits from a Genesys group is Genesys' business.
    let supervisors = sim.seed_group("GC_Supervisors");
    sim.seed_group_grant(&supervisors, &supervisor, &sim.home_division_id());
    sim.seed_group_member(&supervisors, &former);

    // Reorganisation: out of Tier 1, so the Agent grant and skills go.
    membership(&muster, &tier1, "remove", &id).await;
    eventually(20, "the Agent grant removed", || async {
        let grants = sim.grants_of(&former);
        (!grants.own.iter().any(|grant| grant.role_id == agent)).then_some(())
    })
    .await;
    eventually(20, "the skills removed", || async {
        sim.skills_of(&former).is_empty().then_some(())
    })
    .await;
    let grants = sim.grants_of(&former);
    assert!(
        grants
            .inherited
            .iter()
            .any(|grant| grant.role_id == supervisor),
        "the inherited grant stays: {grants:?}"
    );
    for request in sim.requests() {
        assert!(
            !(request.method == "POST" && request.path.ends_with("/bulkremove")),
            "grants are removed singly, never in bulk"
        );
        assert!(
            !request.path.contains(&format!("/roles/{supervisor}")),
            "the inherited grant was never touched: {} {}",
            request.method,
            request.path
        );
    }
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
}

/// Genesys answers 404 for a role for a while after it is made, and 429
/// above its budget: Muster waits the role out and honours Retry-After;
/// every user arrives with its grant, none is dead-lettered (a budget of 6
/// requests per 2 s).
#[tokio::test]
async fn a_new_role_and_a_tight_budget_are_waited_out() {
    let options = GenesysOptions {
        rate_limit: 6,
        rate_limit_window: Duration::from_secs(2),
        new_role_propagation: Duration::from_secs(3),
        ..GenesysOptions::default()
    };
    let sim = GenesysSim::start(options).await;
    let support = sim.seed_division("Customer Support");
    let apac = sim.seed_division("APAC");
    let agent = sim.seed_role_just_created("Agent");
    sim.seed_skill("Billing");
    sim.seed_language("English");
    sim.seed_management_unit("Manila Voice", &apac);
    sim.seed_license("CX 1");
    sim.seed_group("Group_CC_Agents_Tier1");
    let (muster, tier1) = muster_for(&sim).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = muster
            .post(
                "/Users",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                    "userName": format!("agent{n}@contoso.com"),
                    "externalId": format!("e-{n}"),
                    "active": true,
                    ENTERPRISE: {"costCenter": "CC-4100"}
                }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        membership(&muster, &tier1, "add", id).await;
    }
    let debug = async {
        let state = muster.admin(Method::GET, "/targets/genesys", None).await;
        let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
        let requests: Vec<String> = sim
            .requests()
            .iter()
            .rev()
            .take(30)
            .map(|request| format!("{} {} {}", request.method, request.path, request.status))
            .collect();
        format!("{}\n{}\n{requests:#?}", state.body, letters.body)
    };
    let granted = tokio::time::timeout(Duration::from_secs(40), async {
        for n in 0..3 {
            let name = format!("agent{n}@contoso.com");
            loop {
                let done = sim.user_by_user_name(&name).is_some_and(|user| {
                    sim.grants_of(&user.id)
                        .own
                        .iter()
                        .any(|grant| grant.role_id == agent && grant.division_id == support)
                });
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
    if granted.is_err() {
        panic!("not every agent was granted: {}", debug.await);
    }
    let throttled = sim
        .requests()
        .iter()
        .filter(|request| request.status == 429)
        .count();
    assert!(throttled > 0, "the budget was hit");
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
}

#[tokio::test]
async fn a_batch_shares_unit_and_license_requests_and_home_grants_ride_the_create() {
    // Genesys grants SCIM roles in the organisation's home division.
    let sim = GenesysSim::start(GenesysOptions {
        home_division_name: "Customer Support".into(),
        ..GenesysOptions::default()
    })
    .await;
    let support = sim.home_division_id();
    let apac = sim.seed_division("APAC");
    let agent = sim.seed_role("Agent");
    sim.seed_skill("Billing");
    sim.seed_language("English");
    let unit = sim.seed_management_unit("Manila Voice", &apac);
    let license = sim.seed_license("CX 1");
    sim.seed_group("Group_CC_Agents_Tier1");
    let (muster, tier1) = muster_with_rules().await;

    let mut ids = Vec::new();
    for n in 0..5 {
        let created = muster
            .post(
                "/Users",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                    "userName": format!("batch{n}@contoso.com"),
                    "externalId": format!("b-{n}"),
                    "active": true,
                    ENTERPRISE: {"costCenter": "CC-4100"}
                }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let reply = muster
        .patch(
            &format!("/Groups/{tier1}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": members}]
            }),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    // The target's first run pushes the five users, entitlements and all.
    put_genesys_target(
        &muster,
        &sim,
        json!({"rolesOverScim": true, "batchSize": 3}),
    )
    .await;

    let users = eventually(30, "five users licensed in their unit", || async {
        let users: Vec<_> = (0..5)
            .filter_map(|n| sim.user_by_user_name(&format!("batch{n}@contoso.com")))
            .filter(|user| sim.licenses_of(&user.id) == vec![license.clone()])
            .collect();
        (users.len() == 5).then_some(users)
    })
    .await;
    for user in &users {
        assert_eq!(
            sim.management_unit_of(&user.id),
            Some(unit.clone()),
            "{}",
            user.id
        );
        let own = sim.grants_of(&user.id).own;
        assert!(
            own.iter()
                .any(|grant| grant.role_id == agent && grant.division_id == support),
            "the Agent grant in Customer Support: {own:?}"
        );
    }
    let requests = sim.requests();
    let count = |method: &str, path: &str| {
        requests
            .iter()
            .filter(|request| request.method == method && request.path.ends_with(path))
            .count()
    };
    assert_eq!(count("POST", "/bulkadd"), 0, "grants rode the SCIM creates");
    let creates: Vec<_> = requests
        .iter()
        .filter(|request| request.method == "POST" && request.path == "/api/v2/scim/v2/Users")
        .collect();
    assert_eq!(creates.len(), 5);
    for create in creates {
        let body: Value = serde_json::from_str(&create.body).unwrap();
        assert_eq!(body["roles"], json!([{"value": "Agent"}]), "{body}");
    }
    // Five users, at most three a request: two moves and two license calls.
    let moves: Vec<Value> = requests
        .iter()
        .filter(|request| request.path == "/api/v2/workforcemanagement/agents")
        .map(|request| serde_json::from_str(&request.body).unwrap())
        .collect();
    assert_eq!(moves.len(), 2, "{moves:?}");
    assert!(moves
        .iter()
        .all(|body| body["userIds"].as_array().unwrap().len() <= 3));
    assert_eq!(count("POST", "/api/v2/license/organization"), 2);

    // A batch size out of range, or the settings on another kind, is refused.
    let options = sim.options().clone();
    let too_big = json!({
        "name": "genesys2",
        "kind": "genesys-cloud",
        "apiBaseUrl": sim.api_base_url(),
        "loginUrl": sim.login_url(),
        "auth": {
            "type": "oauth-client-credentials",
            "clientId": options.client_id,
            "clientSecret": options.client_secret
        },
        "genesys": {"batchSize": 101}
    });
    let other_kind = json!({
        "name": "plain",
        "kind": "scim",
        "baseUrl": "https://scim.example.com/scim/v2",
        "auth": {"type": "bearer", "token": "t"},
        "genesys": {"rolesOverScim": true}
    });
    for (name, document, field) in [
        ("genesys2", too_big, "genesys.batchSize"),
        ("plain", other_kind, "genesys"),
    ] {
        let put = muster
            .admin(Method::PUT, &format!("/targets/{name}"), Some(document))
            .await;
        assert_eq!(put.status, StatusCode::BAD_REQUEST, "{}", put.body);
        let detail = put.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{detail}");
    }
}

#[tokio::test]
async fn a_write_that_loses_a_race_is_read_again_and_sent_with_the_version() {
    let sim = GenesysSim::start(GenesysOptions::default()).await;
    sim.seed_group("Group_CC_Agents_Tier1");
    let (muster, _) = muster_for(&sim).await;
    let created = muster
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "race@contoso.com",
                "displayName": "Before",
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let user = eventually(20, "the user at Genesys", || async {
        sim.user_by_user_name("race@contoso.com")
    })
    .await;

    sim.race_next_write(&user.id);
    let renamed = muster
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "After"}]
            }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    eventually(20, "the new display name at Genesys", || async {
        sim.user_by_user_name("race@contoso.com")
            .filter(|user| user.display_name == "After")
    })
    .await;
    let path = format!("/api/v2/scim/v2/Users/{}", user.id);
    let exchanges: Vec<(String, u16)> = sim
        .requests()
        .iter()
        .filter(|request| request.path == path)
        .map(|request| (request.method.clone(), request.status))
        .collect();
    assert_eq!(
        exchanges,
        vec![
            ("PATCH".to_owned(), 400),
            ("GET".to_owned(), 200),
            ("PATCH".to_owned(), 200)
        ]
    );
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert_eq!(letters.body["totalResults"], 0, "{}", letters.body);
}
