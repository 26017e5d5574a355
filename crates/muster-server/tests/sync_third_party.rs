//! The sync engine end to end against a third-party SCIM server: PyPI's
//! `scim2-server` (an in-memory SCIM 2.0 server, RFC 7643 schemas, User and
//! Group resource types, served under `/v2`), started as a child process.
//!
//! `MUSTER_SCIM2_SERVER` names its executable (`.ci/run` sets it to the
//! `.venv` it creates from `scripts/requirements.txt`). Without the variable
//! the test says it was skipped and passes, so `cargo test` works on a
//! machine without Python; with it, a missing binary or a server that does
//! not start fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::urlencode;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const VARIABLE: &str = "MUSTER_SCIM2_SERVER";

/// A running `scim2-server`, killed when dropped.
struct Scim2Server {
    child: Child,
    /// `http://127.0.0.1:PORT/v2`.
    base_url: String,
    /// The bearer token it accepts (it refuses requests without it).
    token: String,
    http: reqwest::Client,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scim2Server {
    /// Starts the server named by `MUSTER_SCIM2_SERVER`, or `None` when the
    /// variable is not set. Fails the test if it is set and the server
    /// cannot be started.
    async fn start() -> Option<Scim2Server> {
        let Some(program) = std::env::var_os(VARIABLE) else {
            // Straight to stderr, past the test harness's capture, so the
            // skip shows in a plain `cargo test`.
            let _ = writeln!(
                std::io::stderr(),
                "sync_third_party skipped: {VARIABLE} is not set (the path of PyPI's \
                 scim2-server executable)"
            );
            return None;
        };
        let program = PathBuf::from(program);
        assert!(
            program.is_file(),
            "{VARIABLE}={} does not name a file",
            program.display()
        );
        // A free port can be taken by someone else between our probe and
        // the server's bind: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::spawn(&program).await {
                Ok(server) => return Some(server),
                Err(log) => last_log = log,
            }
        }
        panic!(
            "{} did not start; its output:\n{last_log}",
            program.display()
        );
    }

    async fn spawn(program: &Path) -> Result<Scim2Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("scim2-server.log");
        let out = std::fs::File::create(&log).expect("the log file");
        let err = out.try_clone().expect("the log file");
        let token = format!("scim2-{port}-{}", std::process::id());
        let child = Command::new(program)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", &token])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
        let mut server = Scim2Server {
            child,
            base_url: format!("http://127.0.0.1:{port}/v2"),
            token,
            http: reqwest::Client::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited with {status}\n{}", server.log_text()));
            }
            if let Ok(response) = server
                .http
                .get(format!("{}/ServiceProviderConfig", server.base_url))
                .bearer_auth(&server.token)
                .send()
                .await
            {
                if response.status() == StatusCode::OK {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not answering after 30 s\n{}", server.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("scim2-server answers");
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .expect("scim2-server answers");
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The one resource at `endpoint` matching `filter`, if there is one.
    async fn find(&self, endpoint: &str, filter: &str) -> Option<Value> {
        let (status, body) = self
            .get(&format!("/{endpoint}?filter={}", urlencode(filter)))
            .await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
        let resources = body["Resources"].as_array().cloned().unwrap_or_default();
        assert!(
            resources.len() <= 1,
            "duplicates for {filter}: {resources:?}"
        );
        resources.into_iter().next()
    }
}

/// Polls `probe` until it gives `Some`; after `seconds`, fails the test
/// with what Muster says about the target (dead letters included) and the
/// requests scim2-server logged.
async fn eventually<T, F, Fut>(
    source: &TestServer,
    target: &Scim2Server,
    what: &str,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        if Instant::now() > deadline {
            let state = source.admin(Method::GET, "/targets/scim2", None).await;
            let letters = source.admin(Method::GET, "/sync/dead-letters", None).await;
            panic!(
                "timed out waiting for {what}\ntarget state: {}\ndead letters: {}\n\
                 scim2-server log:\n{}",
                state.body,
                letters.body,
                target.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An Entra-style phone mapping: `tel:` and the number without spaces.
const PHONE: &str = "Append(\"tel:\", StripSpaces(Item([phoneNumbers.value], 1)))";

fn target_document(target: &Scim2Server, phone: &str) -> Value {
    json!({
        "name": "scim2",
        "kind": "scim",
        "baseUrl": target.base_url,
        "auth": {"type": "bearer", "token": target.token},
        "scope": {"users": "not (active eq false)", "groups": "all"},
        "rateLimit": {"requestsPerSecond": 500, "burst": 50},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "active", "expression": "active"},
            {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"},
            {"target": "name.givenName", "expression": "name.givenName"},
            {"target": "name.familyName", "expression": "name.familyName"},
            {"target": "phoneNumbers[type eq \"work\"].value",
             "expression": phone},
            {"target": "title", "expression": "IIF([title]=\"Level 2 Support\", \"Quality Evaluator\", [title])"},
            {"target": format!("{ENTERPRISE}:department"), "expression": format!("[{ENTERPRISE}:department]")},
        ],
    })
}

#[tokio::test]
async fn changes_reach_scim2_server_mapped() {
    let Some(target) = Scim2Server::start().await else {
        return;
    };
    let source = TestServer::start().await;
    let put = source
        .admin(
            Method::PUT,
            "/targets/scim2",
            Some(target_document(&target, PHONE)),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(!put.body.to_string().contains(&target.token));

    // A user created at Muster arrives mapped.
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "ana.lima@contoso.com",
                "externalId": "e-ana",
                "active": true,
                "name": {"givenName": "Ana", "familyName": "Lima"},
                "title": "Level 2 Support",
                "phoneNumbers": [{"type": "work", "value": "+1 555 123 4567"}],
                ENTERPRISE: {"department": "Sales"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let by_name = "userName eq \"ana.lima@contoso.com\"";
    let delivered = eventually(&source, &target, "the user at scim2-server", || {
        target.find("Users", by_name)
    })
    .await;
    assert_eq!(delivered["displayName"], "Ana Lima", "{delivered}");
    assert_eq!(delivered["name"]["givenName"], "Ana", "{delivered}");
    assert_eq!(delivered["title"], "Quality Evaluator", "{delivered}");
    assert_eq!(delivered["externalId"], "e-ana", "{delivered}");
    assert_eq!(delivered["active"], true, "{delivered}");
    assert_eq!(
        delivered["phoneNumbers"][0]["value"], "tel:+15551234567",
        "{delivered}"
    );
    assert_eq!(delivered["phoneNumbers"][0]["type"], "work", "{delivered}");
    assert_eq!(delivered[ENTERPRISE]["department"], "Sales", "{delivered}");
    let schemas = delivered["schemas"].as_array().cloned().unwrap_or_default();
    assert!(schemas.contains(&json!(ENTERPRISE)), "{delivered}");
    let remote_id = delivered["id"].as_str().unwrap().to_owned();
    // scim2-server finds it by externalId too (Muster's idempotent look-up).
    let by_external = target.find("Users", "externalId eq \"e-ana\"").await;
    assert_eq!(
        by_external.map(|user| user["id"].clone()),
        Some(json!(remote_id))
    );

    // A PATCH at Muster arrives, in place.
    let patched = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "title", "value": "Team Lead"},
                    {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Support"},
                    {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 000 1111"},
                ]
            }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let updated = eventually(&source, &target, "the PATCH at scim2-server", || async {
        let user = target.find("Users", by_name).await?;
        (user["title"] == "Team Lead").then_some(user)
    })
    .await;
    assert_eq!(updated[ENTERPRISE]["department"], "Support", "{updated}");
    assert_eq!(
        updated["phoneNumbers"][0]["value"], "tel:+15550001111",
        "{updated}"
    );
    assert_eq!(
        updated["id"],
        remote_id.as_str(),
        "updated, not created again"
    );

    // Removing a value at Muster clears it at scim2-server.
    let cleared = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "title"}]
            }),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    eventually(
        &source,
        &target,
        "the cleared title at scim2-server",
        || async {
            let user = target.find("Users", by_name).await?;
            user.get("title").is_none().then_some(())
        },
    )
    .await;

    // A group with a member arrives, the member as scim2-server's id.
    let group = source
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Group_CC_Agents_Tier1",
                "members": [{"value": id}]
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let remote_group = eventually(&source, &target, "the group at scim2-server", || async {
        let group = target
            .find("Groups", "displayName eq \"Group_CC_Agents_Tier1\"")
            .await?;
        group["members"].as_array()?.first()?;
        Some(group)
    })
    .await;
    assert_eq!(
        remote_group["members"][0]["value"],
        remote_id.as_str(),
        "{remote_group}"
    );

    // A membership change (one member added, one removed) arrives.
    let ben = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ben.ko@contoso.com",
                "name": {"givenName": "Ben", "familyName": "Ko"},
                "phoneNumbers": [{"type": "work", "value": "+1 555 222 3333"}]
            }),
        )
        .await;
    assert_eq!(ben.status, StatusCode::CREATED, "{}", ben.body);
    let ben_id = ben.body["id"].as_str().unwrap().to_owned();
    let ben_remote = eventually(
        &source,
        &target,
        "the second user at scim2-server",
        || async {
            let user = target
                .find("Users", "userName eq \"ben.ko@contoso.com\"")
                .await?;
            user["id"].as_str().map(str::to_owned)
        },
    )
    .await;
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let members = source
        .patch(
            &format!("/Groups/{group_id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": ben_id}]},
                    {"op": "remove", "path": format!("members[value eq \"{id}\"]")},
                ]
            }),
        )
        .await;
    // Muster answers a membership-only PATCH with 204 (RFC 7644 3.5.2).
    assert!(
        [StatusCode::OK, StatusCode::NO_CONTENT].contains(&members.status),
        "{}: {}",
        members.status,
        members.body
    );
    let regrouped = eventually(
        &source,
        &target,
        "the membership change at scim2-server",
        || async {
            let group = target
                .find("Groups", "displayName eq \"Group_CC_Agents_Tier1\"")
                .await?;
            let values: Vec<Value> = group["members"]
                .as_array()
                .map(|members| {
                    members
                        .iter()
                        .map(|member| member["value"].clone())
                        .collect()
                })
                .unwrap_or_default();
            (values == [json!(ben_remote)]).then_some(group)
        },
    )
    .await;
    assert_eq!(regrouped["id"], remote_group["id"], "{regrouped}");

    // Deactivation at Muster (active false) arrives.
    let deactivated = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    let inactive = eventually(
        &source,
        &target,
        "the deactivation at scim2-server",
        || async {
            let user = target.find("Users", by_name).await?;
            (user["active"] == false).then_some(user)
        },
    )
    .await;
    assert_eq!(inactive["id"], remote_id.as_str(), "{inactive}");

    // Nothing went to the dead letters: scim2-server took every request.
    let status = source.admin(Method::GET, "/targets/scim2", None).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(
        status.body["deadLetters"],
        0,
        "{}\ndead letters: {}\nscim2-server log:\n{}",
        status.body,
        source
            .admin(Method::GET, "/sync/dead-letters", None)
            .await
            .body,
        target.log_text()
    );
}

/// The phone mapping without a value for a user without a phone (the plain
/// [`PHONE`] gives `"tel:"` then, as `Append` documents).
const PHONE_OR_NONE: &str = "IIF(IsPresent([phoneNumbers.value]), \
     Append(\"tel:\", StripSpaces(Item([phoneNumbers.value], 1))), Item([phoneNumbers.value], 1))";

/// A mapped value whose element the target does not have yet must be
/// added: RFC 7644 section 3.5.2.3 has a `replace` whose value filter
/// matches nothing answered with 400 `noTarget`, as scim2-server does.
#[tokio::test]
async fn an_element_the_target_lacks_is_added() {
    let Some(target) = Scim2Server::start().await else {
        return;
    };
    let source = TestServer::start().await;
    let put = source
        .admin(
            Method::PUT,
            "/targets/scim2",
            Some(target_document(&target, PHONE_OR_NONE)),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    // A user created without a phone, who gets one later.
    let created = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "cho.park@contoso.com",
                "name": {"givenName": "Cho", "familyName": "Park"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let by_name = "userName eq \"cho.park@contoso.com\"";
    let delivered = eventually(&source, &target, "the user at scim2-server", || {
        target.find("Users", by_name)
    })
    .await;
    assert!(delivered.get("phoneNumbers").is_none(), "{delivered}");
    let patched = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "+1 555 444 5555"}]},
                    {"op": "replace", "path": "title", "value": "Agent"},
                ]
            }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let updated = eventually(
        &source,
        &target,
        "the new phone at scim2-server",
        || async {
            let user = target.find("Users", by_name).await?;
            (user["title"] == "Agent").then_some(user)
        },
    )
    .await;
    assert_eq!(
        updated["phoneNumbers"],
        json!([{"type": "work", "value": "tel:+15554445555"}]),
        "{updated}"
    );

    // Removed at Muster, the number leaves scim2-server.
    let removed = source
        .patch(
            &format!("/Users/{id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "remove", "path": "phoneNumbers"},
                    {"op": "replace", "path": "title", "value": "Former Agent"},
                ]
            }),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let cleared = eventually(
        &source,
        &target,
        "the removed phone at scim2-server",
        || async {
            let user = target.find("Users", by_name).await?;
            (user["title"] == "Former Agent").then_some(user)
        },
    )
    .await;
    let numbers: Vec<Value> = cleared["phoneNumbers"]
        .as_array()
        .map(|numbers| {
            numbers
                .iter()
                .filter_map(|n| n.get("value").cloned())
                .collect()
        })
        .unwrap_or_default();
    assert!(numbers.is_empty(), "{cleared}");

    // An account scim2-server already has (same externalId, no phone) is
    // matched and updated, not created twice.
    let (status, existing) = target
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "dan.roe@contoso.com",
                "externalId": "e-dan",
                "title": "Old Title"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{existing}");
    let dan_remote = existing["id"].as_str().unwrap().to_owned();
    let dan = source
        .post(
            "/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "dan.roe@contoso.com",
                "externalId": "e-dan",
                "name": {"givenName": "Dan", "familyName": "Roe"},
                "title": "Agent",
                "phoneNumbers": [{"type": "work", "value": "+1 555 666 7777"}]
            }),
        )
        .await;
    assert_eq!(dan.status, StatusCode::CREATED, "{}", dan.body);
    let matched = eventually(
        &source,
        &target,
        "the matched account at scim2-server",
        || async {
            let user = target.find("Users", "externalId eq \"e-dan\"").await?;
            (user["title"] == "Agent").then_some(user)
        },
    )
    .await;
    assert_eq!(matched["id"], dan_remote.as_str(), "{matched}");
    assert_eq!(matched["displayName"], "Dan Roe", "{matched}");
    assert_eq!(
        matched["phoneNumbers"],
        json!([{"type": "work", "value": "tel:+15556667777"}]),
        "{matched}"
    );

    let status = source.admin(Method::GET, "/targets/scim2", None).await;
    assert_eq!(status.body["deadLetters"], 0, "{}", status.body);
}
