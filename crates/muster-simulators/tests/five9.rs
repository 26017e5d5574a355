//! The Five9 simulator's contract: Basic auth, SOAP envelopes, user and skill operations,
//! WSDL-named faults and the operations limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use muster_simulators::five9::{Five9Options, Five9Sim, SeedUser, NAMESPACE};

fn envelope(operation: &str, inner: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:ser=\"{NAMESPACE}\"><soapenv:Header/><soapenv:Body><ser:{operation}>{inner}</ser:{operation}></soapenv:Body></soapenv:Envelope>"
    )
}

async fn post(sim: &Five9Sim, auth: Option<(&str, &str)>, body: String) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(sim.endpoint())
        .header("content-type", "text/xml; charset=utf-8")
        .body(body);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

async fn call(sim: &Five9Sim, operation: &str, inner: &str) -> (u16, String) {
    let options = sim.options().clone();
    post(
        sim,
        Some((&options.username, &options.password)),
        envelope(operation, inner),
    )
    .await
}

/// Calls and checks the status and that the answer contains every `expected` fragment.
async fn check(sim: &Five9Sim, operation: &str, inner: &str, status: u16, expected: &[&str]) {
    let (got, body) = call(sim, operation, inner).await;
    assert_eq!(got, status, "{operation}: {body}");
    for fragment in expected {
        assert!(
            body.contains(fragment),
            "{operation}: {fragment} not in {body}"
        );
    }
}

const CREATE_ADA: &str = "<userInfo><generalInfo><active>true</active><EMail>ada@example.com</EMail><federationId>E-1</federationId><firstName>Ada &amp; Co</firstName><password>pw</password><userName>ada</userName></generalInfo><roles><agent><alwaysRecorded>false</alwaysRecorded><attachVmToEmail>false</attachVmToEmail><sendEmailOnVm>false</sendEmailOnVm></agent></roles><skills><level>2</level><skillName>Sales</skillName></skills></userInfo>";

#[tokio::test]
async fn basic_auth_is_required() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    let body = envelope("getUsersInfo", "");
    let (status, _) = post(&sim, None, body.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post(&sim, Some(("admin@example.com", "wrong")), body.clone()).await;
    assert_eq!(status, 401);
    let (status, text) = post(&sim, Some(("admin@example.com", "five9-secret")), body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("getUsersInfoResponse"));
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 3);
    assert!(!recorded[0].authenticated && recorded[2].authenticated);
}

#[tokio::test]
async fn create_read_and_modify_a_user() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    sim.seed_skill("Sales");
    check(
        &sim,
        "createUser",
        CREATE_ADA,
        200,
        &[
            "<ns2:createUserResponse",
            "<userName>ada</userName>",
            "<firstName>Ada &amp; Co</firstName>",
        ],
    )
    .await;
    let user = sim.user("ada").unwrap();
    assert_eq!(user.federation_id(), Some("E-1"));
    assert_eq!(user.field("firstName"), Some("Ada & Co"));
    assert!(user.active() && user.agent);
    assert_eq!(user.skills.get("Sales"), Some(&2));
    assert!(user.field("id").is_some());
    // The password is never returned.
    let (_, body) = call(&sim, "getUserInfo", "<userName>ada</userName>").await;
    assert!(!body.contains("<password>"), "{body}");
    assert!(body.contains(
        "<skills><level>2</level><skillName>Sales</skillName><userName>ada</userName></skills>"
    ));
    // Again: UserAlreadyExistsFault, with the WSDL's detail.
    check(
        &sim,
        "createUser",
        CREATE_ADA,
        500,
        &[
            "<faultcode>env:Server</faultcode>",
            "<ns2:UserAlreadyExistsFault xmlns:ns2=\"http://service.admin.ws.five9.com/\">",
            "<userName>ada</userName>",
        ],
    )
    .await;
    // modifyUser changes only what it names; userName cannot change.
    check(&sim, "modifyUser", "<userGeneralInfo><active>false</active><lastName>Lovelace</lastName><userName>ada</userName></userGeneralInfo>", 200, &["modifyUserResponse", "<active>false</active>"]).await;
    let user = sim.user("ada").unwrap();
    assert!(!user.active());
    assert_eq!(user.field("lastName"), Some("Lovelace"));
    assert_eq!(user.field("firstName"), Some("Ada & Co"));
    check(
        &sim,
        "modifyUser",
        "<userGeneralInfo><userName>nobody</userName></userGeneralInfo>",
        500,
        &["UserNotFoundFault", "<userName>nobody</userName>"],
    )
    .await;
    check(
        &sim,
        "getUserInfo",
        "<userName>nobody</userName>",
        500,
        &["UserNotFoundFault"],
    )
    .await;
    check(
        &sim,
        "getUsersInfo",
        "<userNamePattern>^ad</userNamePattern>",
        200,
        &["<return><generalInfo>"],
    )
    .await;
    check(
        &sim,
        "getUsersInfo",
        "<userNamePattern>(</userNamePattern>",
        500,
        &["InvalidRegexpPatternFault"],
    )
    .await;
    // deleteUser is not simulated: a client fault, so a test sees it.
    check(
        &sim,
        "deleteUser",
        "<userName>ada</userName>",
        500,
        &["<faultcode>env:Client</faultcode>"],
    )
    .await;
    check(
        &sim,
        "createUser",
        "<userInfo><generalInfo><userName>x</userName></generalInfo></userInfo>",
        200,
        &[],
    )
    .await;
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test]
async fn skills_and_their_faults() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    sim.seed_skill("Sales");
    sim.seed_user(
        SeedUser::new("bob")
            .field("federationId", "F")
            .skill("Billing", 3),
    );
    let skill = |name: &str, level: i64| {
        format!("<userSkill><level>{level}</level><skillName>{name}</skillName><userName>bob</userName></userSkill>")
    };
    check(
        &sim,
        "userSkillAdd",
        &skill("Sales", 1),
        200,
        &["userSkillAddResponse"],
    )
    .await;
    check(
        &sim,
        "userSkillAdd",
        &skill("Sales", 1),
        500,
        &["UserAlreadyHasSkillFault", "<skillName>Sales</skillName>"],
    )
    .await;
    check(&sim, "userSkillModify", &skill("Sales", 4), 200, &[]).await;
    assert_eq!(sim.user("bob").unwrap().skills.get("Sales"), Some(&4));
    check(
        &sim,
        "userSkillAdd",
        &skill("Nope", 1),
        500,
        &["SkillNotFoundFault", "<skillName>Nope</skillName>"],
    )
    .await;
    check(&sim, "userSkillRemove", &skill("Billing", 3), 200, &[]).await;
    check(
        &sim,
        "userSkillRemove",
        &skill("Billing", 3),
        500,
        &["UserDoesntHaveSkillFault"],
    )
    .await;
    check(
        &sim,
        "userSkillModify",
        &skill("Billing", 3),
        500,
        &["UserDoesntHaveSkillFault"],
    )
    .await;
    check(&sim, "userSkillAdd", "<userSkill><level>1</level><skillName>Sales</skillName><userName>zed</userName></userSkill>", 500, &["UserNotFoundFault"]).await;
    check(&sim, "createUser", "<userInfo><generalInfo><userName>carl</userName></generalInfo><skills><level>1</level><skillName>Nope</skillName></skills></userInfo>", 500, &["SkillNotFoundFault"]).await;
    assert!(
        sim.user("carl").is_none(),
        "a refused createUser creates nothing"
    );
    let faults: Vec<_> = sim.requests().into_iter().filter_map(|r| r.fault).collect();
    assert_eq!(faults.len(), 6);
}

#[tokio::test]
async fn malformed_envelopes_are_client_faults() {
    let sim = Five9Sim::start(Five9Options::default()).await;
    let options = sim.options().clone();
    let auth = Some((options.username.as_str(), options.password.as_str()));
    for body in [
        "not xml",
        "<a><b></a>",
        "<!DOCTYPE x [<!ENTITY e \"x\">]><x>&e;</x>",
    ] {
        let (status, text) = post(&sim, auth, body.to_owned()).await;
        assert_eq!(status, 500, "{body}");
        assert!(text.contains("env:Client"), "{text}");
    }
}

#[tokio::test]
async fn the_operations_limit_faults_until_the_window_ends() {
    let sim = Five9Sim::start(Five9Options {
        operations_limit: Some(2),
        operations_window: Duration::from_millis(400),
        ..Five9Options::default()
    })
    .await;
    check(&sim, "getUsersInfo", "", 200, &[]).await;
    check(&sim, "getUsersInfo", "", 200, &[]).await;
    check(
        &sim,
        "getUsersInfo",
        "",
        500,
        &[
            "OperationsLimitExceededFault",
            "<limit>2</limit>",
            "<operationType>Query</operationType>",
        ],
    )
    .await;
    check(
        &sim,
        "modifyUser",
        "",
        500,
        &["<operationType>Modify</operationType>"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    check(&sim, "getUsersInfo", "", 200, &[]).await;
    sim.reset_operations_window();
    check(&sim, "getUsersInfo", "", 200, &[]).await;
}

#[tokio::test]
async fn unverified_options() {
    let sim = Five9Sim::start(Five9Options {
        require_role: true,
        users_pattern_full_match: true,
        ..Five9Options::default()
    })
    .await;
    let bare = "<userInfo><generalInfo><userName>dora</userName></generalInfo></userInfo>";
    check(
        &sim,
        "createUser",
        bare,
        500,
        &["<ns2:UserHasNoRequiredRoleFault"],
    )
    .await;
    assert!(sim.user("dora").is_none());
    check(
        &sim,
        "createUser",
        CREATE_ADA
            .replace(
                "<skills><level>2</level><skillName>Sales</skillName></skills>",
                "",
            )
            .as_str(),
        200,
        &[],
    )
    .await;
    check(&sim, "getUsersInfo", "<userNamePattern>ad</userNamePattern>", 200, &["<ns2:getUsersInfoResponse xmlns:ns2=\"http://service.admin.ws.five9.com/\"></ns2:getUsersInfoResponse>"]).await;
    check(
        &sim,
        "getUsersInfo",
        "<userNamePattern>ad.*</userNamePattern>",
        200,
        &["<userName>ada</userName>"],
    )
    .await;
}
