//! The Genesys Cloud simulator's contract, exercised over real HTTP.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed request must fail the test loudly"
)]

use std::time::Duration;

use base64::Engine as _;
use muster_simulators::genesys::{GenesysOptions, GenesysSim, SeedUser, UserState};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GEN: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";

/// A simulator plus a client holding a token fetched over `/oauth/token`.
struct Fixture {
    sim: GenesysSim,
    http: reqwest::Client,
    token: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Fixture {
    async fn new(options: GenesysOptions) -> Self {
        let sim = GenesysSim::start(options).await;
        let http = reqwest::Client::new();
        let (status, body) = token(&sim, &http, "muster-client", "muster-secret").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_string();
        Self { sim, http, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.sim.api_base_url());
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, &format!("/api/v2/scim/v2{path}"), body)
            .await
    }
}

async fn token(
    sim: &GenesysSim,
    http: &reqwest::Client,
    id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let resp = http
        .post(format!("{}/oauth/token", sim.login_url()))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

fn scim_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, GEN],
        "userName": user_name,
        "displayName": user_name,
        "active": true,
    })
}

#[tokio::test]
async fn oauth_client_credentials() {
    let sim = GenesysSim::start(GenesysOptions::default()).await;
    let http = reqwest::Client::new();
    let (status, body) = token(&sim, &http, "muster-client", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for key in ["error", "description", "error_description"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    let (status, body) = token(&sim, &http, "muster-client", "muster-secret").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    // No token: 401 in the Platform API's error shape.
    let resp = http
        .get(format!("{}/api/v2/scim/v2/Users", sim.api_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "authentication.required");

    // An expired token is refused.
    let short = GenesysSim::start(GenesysOptions {
        token_lifetime: Duration::from_millis(300),
        ..GenesysOptions::default()
    })
    .await;
    let token = short.issue_token();
    let home = format!(
        "{}/api/v2/authorization/divisions/home",
        short.api_base_url()
    );
    let resp = http.get(&home).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = http.get(&home).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn scim_create_filter_and_page_cap() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let sales = f.sim.seed_division("Sales");
    f.sim.seed_role("Agent");
    f.sim.seed_skill("Billing");
    f.sim.seed_language("French");
    let boss = f.sim.seed_user(SeedUser::new("boss@example.com"));

    let mut user = scim_user("ada@example.com");
    user["name"] = json!({"givenName": "Ada", "familyName": "Lovelace"});
    user["externalId"] = json!("entra-1");
    user["emails"] = json!([{"type": "work", "value": "ada.work@example.com"}]);
    user["roles"] = json!([{"value": "Agent"}]);
    user[ENT] = json!({"division": "Sales", "department": "Ops", "manager": {"value": boss}, "employeeNumber": "E1"});
    user[GEN] = json!({"routingSkills": [{"name": "Billing", "proficiency": 3}], "routingLanguages": [{"name": "French", "proficiency": 5}]});
    let a = f.scim(Method::POST, "/Users", Some(user.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.headers["etag"], "W/\"1\"");
    let id = a.body["id"].as_str().unwrap().to_string();
    // givenName/familyName are not supported: accepted and ignored.
    assert!(a.body.get("name").is_none());
    assert_eq!(a.body[ENT]["division"], "Sales");
    assert_eq!(a.body["roles"], json!([{"value": "Agent"}]));
    let stored = f.sim.user_by_user_name("ADA@example.com").unwrap();
    assert_eq!(stored.division_id, sales);
    assert_eq!(stored.manager_id.as_deref(), Some(boss.as_str()));
    assert_eq!(f.sim.skills_of(&id)[0].name, "Billing");
    assert_eq!(f.sim.languages_of(&id)[0].proficiency, 5.0);
    // SCIM roles land in the home division (option).
    assert_eq!(
        f.sim.grants_of(&id).own[0].division_id,
        f.sim.home_division_id()
    );

    // Uniqueness and unknown names.
    let a = f.scim(Method::POST, "/Users", Some(user.clone())).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["scimType"], "uniqueness");
    assert_eq!(a.body["status"], "409");
    let mut bad = scim_user("bob@example.com");
    bad[GEN] = json!({"routingSkills": [{"name": "billing", "proficiency": 1}]});
    let a = f.scim(Method::POST, "/Users", Some(bad)).await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "skill names are case-sensitive"
    );
    assert_eq!(a.body["scimType"], "invalidValue");

    // Filters: eq on the documented attributes only.
    for (filter, want) in [
        ("userName eq \"ada@example.com\"", 1),
        ("externalId eq \"entra-1\"", 1),
        ("email eq \"ada.work@example.com\"", 1),
        (&*format!("manager eq \"{boss}\""), 1),
        ("division eq \"Sales\"", 1),
        ("employeeNumber eq \"E1\"", 1),
        (&*format!("id eq \"{id}\""), 1),
        (
            "externalIds[authority eq \"x-pc:scimv2:v1\" and value eq \"entra-1\"]",
            1,
        ),
        ("userName eq \"nobody@example.com\"", 0),
    ] {
        let q = format!("/Users?filter={}", urlencode(filter));
        let a = f.scim(Method::GET, &q, None).await;
        assert_eq!(a.status, StatusCode::OK, "{filter}: {}", a.body);
        assert_eq!(a.body["totalResults"], want, "{filter}");
    }
    for filter in [
        "userName sw \"ada\"",
        "title eq \"x\"",
        "userName eq \"a\" or userName eq \"b\"",
    ] {
        let a = f
            .scim(
                Method::GET,
                &format!("/Users?filter={}", urlencode(filter)),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(a.body["scimType"], "invalidFilter");
    }

    // Paging: 25 by default, a page over 25 is 429 unless the heavy attributes are excluded.
    let a = f.scim(Method::GET, "/Users", None).await;
    assert_eq!(a.body["itemsPerPage"], 2);
    let a = f.scim(Method::GET, "/Users?count=26", None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let excl = "externalId,roles,urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills,routingLanguages";
    let a = f
        .scim(
            Method::GET,
            &format!("/Users?count=50&excludedAttributes={excl}"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body["Resources"][0].get("roles").is_none());
    let a = f
        .scim(
            Method::GET,
            "/Users?count=40&attributes=userName,displayName",
            None,
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "an include list without the heavy ones"
    );
    let first = a.body["Resources"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["active", "displayName", "id", "meta", "schemas", "userName"]
    );
    assert_eq!(f.sim.max_page_size_seen(), 50);
    let a = f.scim(Method::GET, "/Users?count=0", None).await;
    assert_eq!(a.body["totalResults"], 2);
    assert_eq!(a.body["Resources"], json!([]));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn scim_versions_patch_and_soft_delete() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let role = f.sim.seed_role("Agent");
    let a = f
        .scim(Method::POST, "/Users", Some(scim_user("cy@example.com")))
        .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    f.sim.seed_user_grant(&id, &role, &f.sim.home_division_id());
    let path = format!("/api/v2/scim/v2/Users/{id}");

    // A stale If-Match is 400 invalidVers.
    let a = f
        .call_with(
            Method::PATCH,
            &path,
            Some(json!({"Operations": [{"op": "replace", "path": "title", "value": "Lead"}]})),
            &[("if-match", "\"0\"")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["scimType"], "invalidVers");
    let a = f
        .call_with(Method::PATCH, &path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}, {"op": "add", "path": "emails[type eq \"work\"].value", "value": "cy.w@example.com"}]})), &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["title"], "Lead");
    assert_eq!(f.sim.grants_of(&id).own.len(), 1, "PATCH keeps roles");
    let a = f
        .call_with(Method::GET, &path, None, &[("if-none-match", "W/\"2\"")])
        .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);

    // active=false: inactive, out of the unfiltered list, found with `active eq false`.
    let a = f
        .call(
            Method::PATCH,
            &path,
            Some(json!({"Operations": [{"op": "replace", "value": {"active": false}}]})),
        )
        .await;
    assert_eq!(a.body["active"], false);
    assert_eq!(
        f.scim(Method::GET, "/Users", None).await.body["totalResults"],
        0
    );
    let q = format!("/Users?filter={}", urlencode("active eq false"));
    assert_eq!(f.scim(Method::GET, &q, None).await.body["totalResults"], 1);
    let q = format!(
        "/Users?filter={}",
        urlencode("userName eq \"cy@example.com\"")
    );
    assert_eq!(
        f.scim(Method::GET, &q, None).await.body["totalResults"],
        0,
        "a filter returns active users only (option)"
    );

    // DELETE soft-deletes: invisible to SCIM, found by the users search, restorable.
    let a = f
        .call_with(Method::DELETE, &path, None, &[("if-match", "\"1\"")])
        .await;
    assert_eq!(a.body["scimType"], "invalidVers");
    let a = f.call(Method::DELETE, &path, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        f.call(Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(f.sim.user(&id).unwrap().state, UserState::Deleted);
    let a = f
        .scim(Method::POST, "/Users", Some(scim_user("cy@example.com")))
        .await;
    assert_eq!(
        a.status,
        StatusCode::CONFLICT,
        "a deleted user's userName stays taken"
    );
    let a = f
        .call(Method::POST, "/api/v2/users/search", Some(json!({"query": [{"fields": ["email"], "value": "cy@example.com", "type": "EXACT"}, {"fields": ["state"], "values": ["deleted"], "type": "EXACT"}]})))
        .await;
    assert_eq!(a.body["total"], 1, "{}", a.body);
    let version = a.body["results"][0]["version"].as_u64().unwrap();
    let api = format!("/api/v2/users/{id}");
    let a = f
        .call(
            Method::PATCH,
            &api,
            Some(json!({"state": "active", "version": version - 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["code"], "general.conflict");
    let a = f
        .call(
            Method::PATCH,
            &api,
            Some(json!({"state": "active", "version": version})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["state"], "active");
    assert!(
        f.sim.grants_of(&id).own.is_empty(),
        "roles are not restored"
    );
}

#[tokio::test]
async fn grants_inherited_propagating_and_stale() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let home = f.sim.home_division_id();
    let sales = f.sim.seed_division("Sales");
    let agent = f.sim.seed_role("Agent");
    let supervisor = f.sim.seed_role("Supervisor");
    let fresh = f.sim.seed_role_just_created("Brand New");
    let user = f.sim.seed_user(SeedUser::new("dee@example.com"));
    let group = f.sim.seed_group("Agents");
    f.sim.seed_group_grant(&group, &agent, &sales);
    f.sim.seed_group_member(&group, &user);
    let subj = format!("/api/v2/authorization/subjects/{user}");

    let a = f
        .call(Method::POST, &format!("{subj}/bulkadd?subjectType=PC_USER"), Some(json!({"grants": [{"roleId": agent, "divisionId": sales}, {"roleId": supervisor, "divisionId": home}]})))
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = f
        .call(Method::GET, &format!("{subj}?includeDuplicates=true"), None)
        .await;
    let grants = a.body["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3, "{}", a.body);
    assert!(grants.iter().any(|g| g["subjectId"] == group.as_str()));
    let a = f.call(Method::GET, &subj, None).await;
    assert_eq!(
        a.body["grants"].as_array().unwrap().len(),
        2,
        "duplicates folded"
    );

    // bulkreplace keeps the inherited grant.
    let a = f
        .call(
            Method::POST,
            &format!("{subj}/bulkreplace?subjectType=PC_USER"),
            Some(json!({"grants": [{"roleId": supervisor, "divisionId": sales}]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let g = f.sim.grants_of(&user);
    assert_eq!(g.own.len(), 1);
    assert_eq!(g.inherited.len(), 1);
    assert_eq!(g.inherited[0].group_id, group);

    // A just-created role 404s until it propagates.
    let add_fresh = json!({"grants": [{"roleId": fresh, "divisionId": home}]});
    let a = f
        .call(
            Method::POST,
            &format!("{subj}/bulkadd?subjectType=PC_USER"),
            Some(add_fresh.clone()),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .call(
            Method::GET,
            "/api/v2/authorization/roles?name=Brand%20New",
            None,
        )
        .await;
    assert_eq!(a.body["total"], 1, "the lookup finds it already");

    // bulkremove with one stale id fails whole; the single delete works.
    let gone = f.sim.seed_role("Gone");
    f.sim.delete_role(&gone);
    let a = f
        .call(Method::POST, &format!("{subj}/bulkremove"), Some(json!({"grants": [{"roleId": supervisor, "divisionId": sales}, {"roleId": gone, "divisionId": sales}]})))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(f.sim.grants_of(&user).own.len(), 1, "nothing removed");
    let a = f
        .call(
            Method::DELETE,
            &format!("{subj}/divisions/{sales}/roles/{supervisor}"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(f.sim.grants_of(&user).own.is_empty());
    assert_eq!(f.sim.grants_of(&user).inherited.len(), 1);

    // Move the user's division.
    let a = f
        .call(
            Method::POST,
            &format!("/api/v2/authorization/divisions/{sales}/objects/USER"),
            Some(json!([user])),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(f.sim.user(&user).unwrap().division_id, sales);
}

#[tokio::test]
async fn wfm_moves_report_per_user_results() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let home = f.sim.home_division_id();
    let mu = f.sim.seed_management_unit("Dublin", &home);
    let small = f.sim.seed_management_unit("Small", &home);
    f.sim.set_management_unit_agent_limit(&small, 0);
    let a = f.sim.seed_user(SeedUser::new("a@example.com"));
    let b = f.sim.seed_user(SeedUser::new("b@example.com"));
    let mv =
        |ids: Vec<&str>, dest: Value| json!({"userIds": ids, "destinationManagementUnitId": dest});
    let results = |v: &Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_string())
            .collect()
    };
    let path = "/api/v2/workforcemanagement/agents";
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a], json!(mu))))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(results(&r.body), ["MoveSuccessful"]);
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a, &b], json!(mu))))
        .await;
    assert_eq!(results(&r.body), ["AlreadyMoved", "MoveSuccessful"]);
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a], json!("no-such-mu"))))
        .await;
    assert_eq!(results(&r.body), ["DestinationManagementUnitDoesNotExist"]);
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a], json!(small))))
        .await;
    assert_eq!(
        results(&r.body),
        ["DestinationManagementUnitAgentLimitExceeded"]
    );
    let r = f
        .call(
            Method::GET,
            &format!("/api/v2/workforcemanagement/agents/{a}/managementunit"),
            None,
        )
        .await;
    assert_eq!(r.body["managementUnit"]["id"], mu.as_str());
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a], Value::Null)))
        .await;
    assert_eq!(results(&r.body), ["MoveSuccessful"]);
    assert_eq!(f.sim.management_unit_of(&a), None);
    let r = f
        .call(Method::POST, path, Some(mv(vec![&a], Value::Null)))
        .await;
    assert_eq!(results(&r.body), ["NothingToDo"]);
}

#[tokio::test]
async fn licenses_assign_remove_and_deactivation_frees() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let cx3 = f.sim.seed_license("cloudCX3");
    let a = f.sim.seed_user(SeedUser::new("a@example.com"));
    let r = f
        .call(Method::POST, "/api/v2/license/organization", Some(json!({"assignments": [{"licenseId": cx3, "userIdsAdd": [a, "nobody"], "userIdsRemove": []}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body[0]["result"], "Success");
    assert_eq!(r.body[1]["result"], "UserNotFound");
    assert_eq!(f.sim.licenses_of(&a), ["cloudCX3"]);
    let r = f
        .call(Method::GET, &format!("/api/v2/license/users/{a}"), None)
        .await;
    assert_eq!(r.body["licenses"][0]["id"], "cloudCX3");
    let r = f
        .scim(
            Method::PATCH,
            &format!("/Users/{a}"),
            Some(json!({"Operations": [{"op": "replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        f.sim.licenses_of(&a).is_empty(),
        "deactivation frees the license"
    );
}

#[tokio::test]
async fn skills_and_languages_over_the_platform_api() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let billing = f.sim.seed_skill("Billing");
    let sales = f.sim.seed_skill("Sales");
    let french = f.sim.seed_language("French");
    let u = f.sim.seed_user(SeedUser::new("a@example.com"));
    let base = format!("/api/v2/users/{u}");
    let r = f
        .call(
            Method::PUT,
            &format!("{base}/routingskills/bulk"),
            Some(json!([{"id": billing, "proficiency": 2}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["entities"][0]["name"], "Billing");
    f.call(
        Method::PATCH,
        &format!("{base}/routingskills/bulk"),
        Some(json!([{"id": sales, "proficiency": 4}])),
    )
    .await;
    assert_eq!(f.sim.skills_of(&u).len(), 2);
    f.call(
        Method::PUT,
        &format!("{base}/routingskills/bulk"),
        Some(json!([{"id": sales, "proficiency": 1}])),
    )
    .await;
    assert_eq!(f.sim.skills_of(&u).len(), 1, "PUT bulk replaces");
    let too_many: Vec<Value> = (0..51)
        .map(|_| json!({"id": french, "proficiency": 1}))
        .collect();
    let r = f
        .call(
            Method::PATCH,
            &format!("{base}/routinglanguages/bulk"),
            Some(Value::Array(too_many)),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = f
        .call(
            Method::PUT,
            &format!("{base}/routinglanguages/bulk"),
            Some(json!([])),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no PUT bulk for languages"
    );
    f.call(
        Method::PATCH,
        &format!("{base}/routinglanguages/bulk"),
        Some(json!([{"id": french, "proficiency": 5}])),
    )
    .await;
    let r = f
        .call(Method::GET, &format!("{base}/routinglanguages"), None)
        .await;
    assert_eq!(r.body["entities"][0]["name"], "French");
}

#[tokio::test]
async fn groups_pre_exist_and_are_never_created() {
    let f = Fixture::new(GenesysOptions::default()).await;
    let group = f.sim.seed_group("Tier 1");
    let u = f.sim.seed_user(SeedUser::new("a@example.com"));
    let r = f
        .scim(
            Method::GET,
            &format!("/Groups?filter={}", urlencode("displayName eq \"tier 1\"")),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = f
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(
                json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": u}]}]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(f.sim.group_members(&group), std::slice::from_ref(&u));
    let r = f
        .scim(Method::POST, "/Groups", Some(json!({"displayName": "New"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(f.sim.groups_created(), 1, "the attempt is counted");
    let r = f
        .scim(Method::DELETE, &format!("/Groups/{group}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn budget_then_429_with_retry_after() {
    let f = Fixture::new(GenesysOptions {
        rate_limit: 3,
        rate_limit_window: Duration::from_secs(2),
        ..GenesysOptions::default()
    })
    .await;
    for n in 1..=3 {
        let a = f
            .call(Method::GET, "/api/v2/authorization/divisions/home", None)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["inin-ratelimit-allowed"], "3");
        assert_eq!(a.headers["inin-ratelimit-count"], n.to_string().as_str());
        assert!(a.headers.contains_key("inin-ratelimit-reset"));
    }
    let a = f.scim(Method::GET, "/Users", None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(a.body["code"], "too.many.requests.retry.after");
    assert_eq!(a.body["status"], 429);
    assert!(a.body["message"]
        .as_str()
        .unwrap()
        .contains("Retry the request in ["));
    assert_eq!(f.sim.max_requests_per_window(), 4);
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let a = f.scim(Method::GET, "/Users", None).await;
    assert_eq!(a.status, StatusCode::OK, "the window reset");

    // The recorder saw everything, with the token and the status answered.
    let reqs = f.sim.requests();
    assert_eq!(reqs.first().unwrap().path, "/oauth/token");
    let limited: Vec<_> = reqs.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 1);
    assert!(limited[0].is_scim());
    assert_eq!(limited[0].token.as_deref(), Some(f.token.as_str()));
}

#[tokio::test]
async fn options_cover_unverified_facts() {
    let f = Fixture::new(GenesysOptions {
        scim_conflict_on_deleted: false,
        scim_filter_includes_inactive: true,
        wfm_move_status: 202,
        removed_group_endpoint_status: 405,
        ..GenesysOptions::default()
    })
    .await;
    f.sim
        .seed_user(SeedUser::new("old@example.com").state(UserState::Deleted));
    f.sim.seed_user(
        SeedUser::new("off@example.com")
            .state(UserState::Inactive)
            .external_id("x1"),
    );
    let a = f
        .scim(Method::POST, "/Users", Some(scim_user("old@example.com")))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let q = format!("/Users?filter={}", urlencode("externalId eq \"x1\""));
    assert_eq!(f.scim(Method::GET, &q, None).await.body["totalResults"], 1);
    let mu = f.sim.seed_management_unit("MU", &f.sim.home_division_id());
    let id = a.body["id"].as_str().unwrap();
    let r = f
        .call(
            Method::POST,
            "/api/v2/workforcemanagement/agents",
            Some(json!({"userIds": [id], "destinationManagementUnitId": mu})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = f
        .scim(Method::POST, "/Groups", Some(json!({"displayName": "G"})))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
