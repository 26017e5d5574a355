//! `Five9Delivery` against the Five9 simulator: create, modify, skills, unknown skills,
//! matching, deactivation, renames, the operations limit and refused credentials.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use muster_simulators::five9::{Five9Options, Five9Sim, SeedUser};
use muster_sync::five9::{Five9Action, Five9Config, Five9Delivery, Five9Error, Five9Outcome};
use serde_json::{json, Value};

const CC: &str = "urn:muster:params:scim:schemas:extension:contactcenter:2.0:User";

async fn start(options: Five9Options) -> (Five9Sim, Five9Delivery) {
    let sim = Five9Sim::start(options).await;
    for skill in ["Sales", "Support", "Billing"] {
        sim.seed_skill(skill);
    }
    let mut config = Five9Config::new(
        &sim.endpoint(),
        &sim.options().username,
        &sim.options().password,
    );
    config.limit_retry_after = Duration::from_millis(200);
    let delivery = Five9Delivery::new(config, None).unwrap();
    (sim, delivery)
}

fn ada(given: &str, skills: &[(&str, i64)]) -> Value {
    let skills: Vec<Value> = skills
        .iter()
        .map(|(name, p)| json!({"name": name, "proficiency": p, "rule": "r1"}))
        .collect();
    let mut user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", CC],
        "id": "0001", "externalId": "E-1", "userName": "ada@example.com",
        "name": {"givenName": given, "familyName": "Lovelace"},
        "displayName": "Ada Lovelace", "active": true,
        "emails": [{"value": "ada.work@example.com", "type": "work", "primary": true}],
    });
    if !skills.is_empty() {
        user[CC] = json!({ "skills": skills });
    }
    user
}

/// Delivers and checks the action and the operations called.
async fn check(
    sim: &Five9Sim,
    delivery: &Five9Delivery,
    user: Option<&Value>,
    previous: Option<&Value>,
    action: Five9Action,
    operations: &[&str],
) -> Five9Outcome {
    sim.clear_requests();
    let outcome = delivery.deliver_user(user, previous).await.unwrap();
    assert_eq!(outcome.action, action, "{outcome:?}");
    assert_eq!(outcome.operations, operations, "{outcome:?}");
    assert_eq!(sim.operations(), operations, "what the simulator saw");
    outcome
}

#[tokio::test]
async fn the_lifecycle_of_a_user() {
    let (sim, delivery) = start(Five9Options::default()).await;
    // Create, with skills from the computed extension (proficiency 4 → level 2, 2 → 4).
    let user = ada("Ada", &[("Sales", 4), ("Support", 2)]);
    let created = check(
        &sim,
        &delivery,
        Some(&user),
        None,
        Five9Action::Created,
        &["getUserInfo", "createUser", "userSkillAdd", "userSkillAdd"],
    )
    .await;
    assert!(created.not_delivered.is_empty());
    let five9 = sim.user("ada@example.com").unwrap();
    assert_eq!(five9.federation_id(), Some("E-1"));
    assert_eq!(five9.field("firstName"), Some("Ada"));
    assert_eq!(five9.field("lastName"), Some("Lovelace"));
    assert_eq!(five9.field("EMail"), Some("ada.work@example.com"));
    assert_eq!(five9.field("fullName"), Some("Ada Lovelace"));
    assert!(five9.active() && five9.agent);
    assert_eq!(five9.skills.get("Sales"), Some(&2));
    assert_eq!(five9.skills.get("Support"), Some(&4));
    let previous = created.delivered.unwrap();
    assert_eq!(previous["userName"], "ada@example.com");
    assert_eq!(previous["federationId"], "E-1");

    // Nothing changed: one read.
    check(
        &sim,
        &delivery,
        Some(&user),
        Some(&previous),
        Five9Action::Unchanged,
        &["getUserInfo"],
    )
    .await;

    // A changed name: modifyUser with only that field.
    let user = ada("Augusta", &[("Sales", 4), ("Support", 2)]);
    let updated = check(
        &sim,
        &delivery,
        Some(&user),
        Some(&previous),
        Five9Action::Updated,
        &["getUserInfo", "modifyUser"],
    )
    .await;
    let sent = &sim.requests()[1].body;
    assert!(
        sent.contains("<firstName>Augusta</firstName>") && !sent.contains("<lastName>"),
        "{sent}"
    );
    assert_eq!(
        sim.user("ada@example.com").unwrap().field("firstName"),
        Some("Augusta")
    );
    let previous = updated.delivered.unwrap();

    // A skill level change, and a skill removed; a skill an administrator gave stays.
    {
        // The administrator's own grant, made at Five9.
        let mut admin = delivery_for_admin(&sim).await;
        admin.skill("ada@example.com", "Billing", 7).await;
    }
    let user = ada("Augusta", &[("Sales", 5)]);
    let changed = check(
        &sim,
        &delivery,
        Some(&user),
        Some(&previous),
        Five9Action::Updated,
        &["getUserInfo", "userSkillModify", "userSkillRemove"],
    )
    .await;
    let five9 = sim.user("ada@example.com").unwrap();
    assert_eq!(five9.skills.get("Sales"), Some(&1));
    assert_eq!(five9.skills.get("Support"), None);
    assert_eq!(
        five9.skills.get("Billing"),
        Some(&7),
        "not Muster's to remove"
    );
    let previous = changed.delivered.unwrap();

    // An unknown skill is reported, the rest delivered.
    let user = ada("Augusta", &[("Sales", 5), ("Nope", 3)]);
    let unknown = check(
        &sim,
        &delivery,
        Some(&user),
        Some(&previous),
        Five9Action::Unchanged,
        &["getUserInfo", "userSkillAdd"],
    )
    .await;
    assert_eq!(unknown.not_delivered.len(), 1);
    assert_eq!(
        unknown.not_delivered[0].attribute,
        "skills[name eq \"Nope\"]"
    );
    assert!(unknown.not_delivered[0]
        .reason
        .contains("no skill named Nope"));
    let previous = unknown.delivered.unwrap();
    assert!(previous["skills"].get("Nope").is_none());

    // A rename is not delivered.
    let mut renamed = user.clone();
    renamed["userName"] = json!("augusta@example.com");
    let outcome = check(
        &sim,
        &delivery,
        Some(&renamed),
        Some(&previous),
        Five9Action::Unchanged,
        &["getUserInfo", "userSkillAdd"],
    )
    .await;
    assert!(
        outcome
            .not_delivered
            .iter()
            .any(|n| n.attribute == "userName"),
        "{outcome:?}"
    );
    assert!(sim.user("augusta@example.com").is_none());
    assert_eq!(
        outcome.delivered.as_ref().unwrap()["userName"],
        "ada@example.com"
    );

    // Deprovisioned: deactivated, never deleted; twice is nothing.
    let gone = check(
        &sim,
        &delivery,
        None,
        Some(&previous),
        Five9Action::Deactivated,
        &["modifyUser"],
    )
    .await;
    assert!(sim.requests()[0].body.contains("<active>false</active>"));
    assert!(!sim.user("ada@example.com").unwrap().active());
    let previous = gone.delivered.unwrap();
    assert_eq!(previous["active"], false);
    check(
        &sim,
        &delivery,
        None,
        Some(&previous),
        Five9Action::Unchanged,
        &[],
    )
    .await;
    check(&sim, &delivery, None, None, Five9Action::Absent, &[]).await;

    // Back in scope: reactivated.
    let back = check(
        &sim,
        &delivery,
        Some(&ada("Augusta", &[("Sales", 5)])),
        Some(&previous),
        Five9Action::Updated,
        &["getUserInfo", "modifyUser"],
    )
    .await;
    assert!(sim.user("ada@example.com").unwrap().active());
    assert_eq!(back.delivered.unwrap()["active"], true);

    // No deleteUser, and never the password in a body.
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.body.contains("deleteUser")));
}

/// Direct SOAP calls, as an administrator at Five9 would make them.
struct Admin {
    endpoint: String,
    username: String,
    password: String,
}

impl Admin {
    async fn skill(&mut self, user: &str, skill: &str, level: i64) {
        let body = format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:f=\"http://service.admin.ws.five9.com/\"><s:Body><f:userSkillAdd><userSkill><level>{level}</level><skillName>{skill}</skillName><userName>{user}</userName></userSkill></f:userSkillAdd></s:Body></s:Envelope>"
        );
        let status = reqwest::Client::new()
            .post(&self.endpoint)
            .basic_auth(&self.username, Some(&self.password))
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
}

async fn delivery_for_admin(sim: &Five9Sim) -> Admin {
    Admin {
        endpoint: sim.endpoint(),
        username: sim.options().username.clone(),
        password: sim.options().password.clone(),
    }
}

#[tokio::test]
async fn a_pre_existing_user_is_matched() {
    let (sim, delivery) = start(Five9Options::default()).await;
    // Found by userName: matched and brought in line.
    sim.seed_user(
        SeedUser::new("ada@example.com")
            .field("firstName", "Old")
            .skill("Billing", 2),
    );
    let user = ada("Ada", &[("Sales", 3)]);
    let matched = check(
        &sim,
        &delivery,
        Some(&user),
        None,
        Five9Action::Matched,
        &["getUserInfo", "modifyUser", "userSkillAdd"],
    )
    .await;
    let five9 = sim.user("ada@example.com").unwrap();
    assert_eq!(five9.federation_id(), Some("E-1"));
    assert_eq!(five9.field("firstName"), Some("Ada"));
    assert_eq!(
        five9.skills.get("Billing"),
        Some(&2),
        "a matched user keeps skills Muster never gave"
    );
    assert_eq!(matched.delivered.unwrap()["skills"], json!({"Sales": 3}));

    // Created between lookup and create: UserAlreadyExists means match.
    sim.seed_user(SeedUser::new("bob@example.com"));
    sim.hide_from_reads("bob@example.com");
    let mut bob = ada("Bob", &[]);
    bob["userName"] = json!("bob@example.com");
    bob["externalId"] = json!("E-2");
    sim.clear_requests();
    let err = delivery.deliver_user(Some(&bob), None).await;
    // Hidden from reads, the re-read misses too: the fault stands as a refusal.
    assert!(
        matches!(err, Err(Five9Error::Refused { ref operation, .. }) if operation == "createUser"),
        "{err:?}"
    );
    assert_eq!(
        sim.operations(),
        ["getUserInfo", "createUser", "getUserInfo"]
    );
}

#[tokio::test]
async fn user_already_exists_is_a_match() {
    let (sim, delivery) = start(Five9Options::default()).await;
    // The user appears at Five9 after the lookup: the simulator hides it from the first
    // read only by seeding it between the two (here: seed, hide, then reveal on create).
    sim.seed_user(SeedUser::new("carl@example.com").field("federationId", "E-3"));
    let mut carl = ada("Carl", &[("Support", 1)]);
    carl["userName"] = json!("carl@example.com");
    carl["externalId"] = json!("E-3");
    sim.hide_from_reads("carl@example.com");
    sim.reveal_after_create_fault("carl@example.com");
    let outcome = check(
        &sim,
        &delivery,
        Some(&carl),
        None,
        Five9Action::Matched,
        &[
            "getUserInfo",
            "createUser",
            "getUserInfo",
            "modifyUser",
            "userSkillAdd",
        ],
    )
    .await;
    assert_eq!(
        sim.requests()[1].fault.as_deref(),
        Some("UserAlreadyExistsFault")
    );
    assert_eq!(
        sim.user("carl@example.com").unwrap().skills.get("Support"),
        Some(&5)
    );
    assert_eq!(outcome.delivered.unwrap()["federationId"], "E-3");
}

#[tokio::test]
async fn another_users_account_is_refused() {
    let (sim, delivery) = start(Five9Options::default()).await;
    sim.seed_user(SeedUser::new("ada@example.com").field("federationId", "SOMEONE-ELSE"));
    let err = delivery.deliver_user(Some(&ada("Ada", &[])), None).await;
    assert!(matches!(err, Err(Five9Error::Refused { .. })), "{err:?}");
    assert_eq!(
        sim.user("ada@example.com").unwrap().field("firstName"),
        None
    );
}

#[tokio::test]
async fn the_operations_limit_is_retried() {
    let (sim, delivery) = start(Five9Options {
        operations_limit: Some(3),
        operations_window: Duration::from_secs(600),
        ..Five9Options::default()
    })
    .await;
    let user = ada("Ada", &[("Sales", 4), ("Support", 2), ("Billing", 1)]);
    let err = delivery.deliver_user(Some(&user), None).await;
    match err {
        Err(Five9Error::Retry { after, reason }) => {
            assert_eq!(after, Duration::from_millis(200));
            assert!(reason.contains("OperationsLimitExceededFault"), "{reason}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // getUserInfo, createUser, userSkillAdd(Sales) went through; Support hit the limit.
    assert_eq!(sim.user("ada@example.com").unwrap().skills.len(), 1);
    sim.reset_operations_window();
    // The next attempt (nothing was recorded as delivered) finishes the job.
    let outcome = check(
        &sim,
        &delivery,
        Some(&user),
        None,
        Five9Action::Matched,
        &["getUserInfo", "userSkillAdd", "userSkillAdd"],
    )
    .await;
    let five9 = sim.user("ada@example.com").unwrap();
    assert_eq!(five9.skills.len(), 3);
    assert_eq!(sim.users().len(), 1);
    assert_eq!(
        outcome.delivered.unwrap()["skills"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn refused_credentials_and_the_password() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    let config = Five9Config::new(&sim.endpoint(), "admin@example.com", "not-the-password");
    let delivery = Five9Delivery::new(config, None).unwrap();
    let err = delivery
        .deliver_user(Some(&ada("Ada", &[])), None)
        .await
        .unwrap_err();
    assert_eq!(err, Five9Error::Unauthorized { status: 401 });
    assert!(!format!("{err} {err:?} {delivery:?}").contains("not-the-password"));
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.body.contains("not-the-password")));
}

#[tokio::test]
async fn a_transport_error_is_retried() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    let endpoint = sim.endpoint();
    drop(sim);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let delivery = Five9Delivery::new(Five9Config::new(&endpoint, "a", "secret-pw"), None).unwrap();
    let err = delivery
        .deliver_user(Some(&ada("Ada", &[])), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Five9Error::Retry { .. }), "{err:?}");
    assert!(!err.to_string().contains("secret-pw"));
}

#[tokio::test]
async fn the_rate_limit_spaces_calls() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    sim.seed_skill("Sales");
    let config = Five9Config::new(
        &sim.endpoint(),
        &sim.options().username,
        &sim.options().password,
    );
    let rate = muster_targets::RateLimit {
        requests_per_second: 20.0,
        burst: 1,
    };
    let delivery = Five9Delivery::new(config, Some(rate)).unwrap();
    let started = std::time::Instant::now();
    let outcome = delivery
        .deliver_user(Some(&ada("Ada", &[("Sales", 1)])), None)
        .await
        .unwrap();
    assert_eq!(outcome.operations.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
}
