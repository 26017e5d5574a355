//! Attacks on the batched Genesys platform stage (management-unit moves
//! and license changes sent for many users a request): one user Genesys no
//! longer knows must not sink the other users of its batch; the grants a
//! user was given in a batch that failed are recorded, so a later shrink of
//! its entitlements removes them; a provision on demand whose batched move
//! failed does not report "updated".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use std::time::Duration;

use muster_simulators::genesys::{GenesysOptions, GenesysSim};
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, group, patch, put_genesys_target, put_rules};

const RULES: &str = r#"
[catalog]
divisions = ["Customer Support", "APAC"]
roles = ["Agent"]
management_units = [{ name = "Manila Voice", division = "APAC" }]

[[rules]]
id = "tier1-unit"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
management_unit = "Manila Voice"

[[rules]]
id = "tier1-agent-grant"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"] and title eq "agent"'
grants = [{ role = "Agent", division = "Customer Support" }]
"#;

async fn create_user(muster: &TestServer, user_name: &str, title: &str) -> String {
    let created = muster
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "title": title,
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// An administrator deletes a user at Genesys, behind Muster's back.
async fn delete_at_genesys(sim: &GenesysSim, id: &str) {
    let deleted = reqwest::Client::new()
        .delete(format!("{}/Users/{id}", sim.scim_base_url()))
        .bearer_auth(sim.issue_token())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

/// Two users at Genesys (x a clerk, y an agent), x then deleted at Genesys
/// behind Muster's back, and one change putting both into Tier 1 (y gets
/// the Agent grant and the unit, x only the unit): the batch holding x's
/// stale id. Returns once y holds its Agent grant, and a moment more.
struct StaleBatch {
    sim: GenesysSim,
    muster: TestServer,
    tier1: String,
    y: String,
    genesys_y: String,
    /// The management unit's id.
    unit: String,
    /// The Agent role's id.
    agent: String,
    /// Customer Support's division id.
    support: String,
}

impl StaleBatch {
    async fn run() -> StaleBatch {
        let sim = GenesysSim::start(GenesysOptions::default()).await;
        let support = sim.seed_division("Customer Support");
        let apac = sim.seed_division("APAC");
        let agent = sim.seed_role("Agent");
        let unit = sim.seed_management_unit("Manila Voice", &apac);
        sim.seed_group("Group_CC_Agents_Tier1");

        let muster = TestServer::start().await;
        let tier1 = group(&muster, "Group_CC_Agents_Tier1", &[]).await;
        let rules = put_rules(&muster, "", RULES).await;
        assert!(rules.status.is_success(), "{}", rules.body);
        let x = create_user(&muster, "x@contoso.com", "clerk").await;
        let y = create_user(&muster, "y@contoso.com", "agent").await;
        put_genesys_target(&muster, &sim, Value::Null).await;
        let (gx, gy) = eventually(20, "both users at Genesys", || async {
            Some((
                sim.user_by_user_name("x@contoso.com")?,
                sim.user_by_user_name("y@contoso.com")?,
            ))
        })
        .await;
        delete_at_genesys(&sim, &gx.id).await;
        patch(
            &muster,
            &format!("/Groups/{tier1}"),
            json!([{"op": "add", "path": "members", "value": [{"value": x}, {"value": y}]}]),
        )
        .await;
        let scenario = StaleBatch {
            sim,
            muster,
            tier1,
            y,
            genesys_y: gy.id,
            unit,
            agent,
            support,
        };
        eventually(20, "y's Agent grant", || async {
            scenario.y_has_agent().then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        scenario
    }

    fn y_has_agent(&self) -> bool {
        self.sim
            .grants_of(&self.genesys_y)
            .own
            .iter()
            .any(|grant| grant.role_id == self.agent && grant.division_id == self.support)
    }
}

#[tokio::test]
async fn one_user_deleted_at_genesys_does_not_sink_the_batch() {
    let scenario = StaleBatch::run().await;
    let letters = scenario
        .muster
        .admin(Method::GET, "/sync/dead-letters", None)
        .await;
    // y is a live, known user: its move must arrive whatever became of x.
    assert_eq!(
        scenario.sim.management_unit_of(&scenario.genesys_y),
        Some(scenario.unit.clone()),
        "y's management unit never reached Genesys (the batch's move request failed \
         as a whole for x's unknown id); dead letters: {}",
        letters.body
    );
}

#[tokio::test]
async fn a_grant_given_in_a_failed_batch_is_removed_when_entitlements_shrink() {
    let scenario = StaleBatch::run().await;
    let (muster, tier1, y) = (&scenario.muster, &scenario.tier1, &scenario.y);
    let has_agent = || scenario.y_has_agent();

    // y leaves Tier 1: its Agent grant must go.
    patch(
        muster,
        &format!("/Groups/{tier1}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{y}\"]")}]),
    )
    .await;
    let mut removed = false;
    for _ in 0..100 {
        if !has_agent() {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        removed,
        "y left Tier 1 but keeps the Agent grant: it was given at once in a batch whose \
         move failed, and never recorded"
    );
}

#[tokio::test]
async fn a_provision_on_demand_whose_batched_move_fails_does_not_report_updated() {
    let sim = GenesysSim::start(GenesysOptions::default()).await;
    sim.seed_division("Customer Support");
    let apac = sim.seed_division("APAC");
    sim.seed_role("Agent");
    sim.seed_management_unit("Manila Voice", &apac);
    sim.seed_group("Group_CC_Agents_Tier1");

    let muster = TestServer::start().await;
    let tier1 = group(&muster, "Group_CC_Agents_Tier1", &[]).await;
    let rules = put_rules(&muster, "", RULES).await;
    assert!(rules.status.is_success(), "{}", rules.body);
    let x = create_user(&muster, "x@contoso.com", "clerk").await;
    // No automatic delivery of x's later changes: the target is
    // provisioned on demand only after the first push.
    put_genesys_target(&muster, &sim, Value::Null).await;
    let gx = eventually(20, "x at Genesys", || async {
        sim.user_by_user_name("x@contoso.com")
    })
    .await;
    delete_at_genesys(&sim, &gx.id).await;
    patch(
        &muster,
        &format!("/Groups/{tier1}"),
        json!([{"op": "add", "path": "members", "value": [{"value": x}]}]),
    )
    .await;
    // Let the worker try (and dead-letter) first, then provision on demand.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reply = muster
        .admin(
            Method::POST,
            &format!("/users/{x}/targets/genesys/provision"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let outcome = reply.body["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let letters = muster.admin(Method::GET, "/sync/dead-letters", None).await;
    assert!(
        !outcome.starts_with("updated"),
        "provision on demand reports '{outcome}' while its move failed; dead letters: {}",
        letters.body
    );
}
