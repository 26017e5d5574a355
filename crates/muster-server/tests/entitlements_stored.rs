//! Stored entitlements over HTTP: the contact-center extension is stored
//! with each user (recomputed in the transaction of the change that affects
//! it), so filters find users by it, each change of it is a new version
//! with a change record, and no read shows a stale value after a user
//! PATCH, a membership change (also through a nested group), a group
//! rename, a rule-set apply or a rollback.

#![allow(
    clippy::expect_used,
    reason = "a failed request must fail the test loudly"
)]

use muster_store::sqlite::DATABASE_FILE;
#[allow(dead_code, reason = "this file uses part of the shared helpers")]
mod support;

use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{create, found, group, patch, put_rules, CC, ENTERPRISE, USER};

/// Agents by group, quality evaluators by title, supervisors by a group
/// reached through nesting, the unit by cost center (`{unit}` is where
/// CC-4100 lands; only users with a cost center are looked up).
fn rules(unit: &str) -> String {
    format!(
        r#"
[catalog]
divisions = ["Customer Support", "APAC"]
licenses = ["CX 1", "CX 3"]
roles = [
  {{ name = "Agent", license = "CX 1" }},
  {{ name = "Quality Evaluator", license = "CX 3" }},
  {{ name = "Supervisor", license = "CX 3" }},
]
management_units = [
  {{ name = "Manila Voice", division = "APAC" }},
  {{ name = "Manila Chat", division = "APAC" }},
]

[[rules]]
id = "tier1-agents"
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{{ role = "Agent", division = "Customer Support" }}]

[[rules]]
id = "level2-quality"
when = 'title eq "Level 2 Support"'
grants = [{{ role = "Quality Evaluator", division = "Customer Support" }}]

[[rules]]
id = "supervisors"
when = 'groups[display eq "Supervisors"]'
grants = [{{ role = "Supervisor", division = "Customer Support" }}]

[[tables]]
id = "unit-by-cost-center"
when = '{ENTERPRISE}:costCenter pr'
key = "{ENTERPRISE}:costCenter"
sets = "management_unit"
rows = {{ "CC-4100" = "{unit}" }}
"#
    )
}

async fn apply(server: &TestServer, query: &str, text: &str) -> Value {
    let reply = put_rules(server, query, text).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn user(server: &TestServer, name: &str, title: &str, cost_center: Option<&str>) -> String {
    let mut body = json!({"schemas": [USER, ENTERPRISE], "userName": name, "title": title,
                          "active": true, ENTERPRISE: {"department": "Support"}});
    if let Some(code) = cost_center {
        body[ENTERPRISE]["costCenter"] = json!(code);
    }
    create(server, "/Users", body).await
}

/// The user as read: its stored entitlements and its version.
async fn read(server: &TestServer, id: &str) -> (Value, u64) {
    let reply = server
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let version = reply.body["meta"]["version"]
        .as_str()
        .and_then(muster_core::parse_etag)
        .expect("a version");
    (reply.body[CC].clone(), version)
}

fn unit_filter(unit: &str) -> String {
    format!("{CC}:managementUnit.name eq \"{unit}\"")
}

fn role_filter(role: &str) -> String {
    format!("{CC}:grants.role eq \"{role}\"")
}

fn roles(entitlements: &Value) -> Vec<String> {
    entitlements["grants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|grant| grant["role"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// One row of the `changes` table.
#[derive(Debug)]
struct Change {
    sequence: i64,
    kind: String,
    resource_id: String,
    version: i64,
    payload: Value,
}

/// The change records after `after`, read from the database file.
fn changes(server: &TestServer, after: i64) -> Vec<Change> {
    let connection = rusqlite::Connection::open_with_flags(
        server.data_dir().join(DATABASE_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database");
    let mut statement = connection
        .prepare(
            "SELECT sequence, kind, resource_id, version, payload FROM changes
             WHERE sequence > ?1 ORDER BY sequence",
        )
        .expect("prepare");
    let rows = statement
        .query_map([after], |row| {
            let payload: String = row.get(4)?;
            Ok(Change {
                sequence: row.get(0)?,
                kind: row.get(1)?,
                resource_id: row.get(2)?,
                version: row.get(3)?,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            })
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn last_sequence(server: &TestServer) -> i64 {
    changes(server, 0)
        .last()
        .map_or(0, |change| change.sequence)
}

/// The update records of one resource after `after`.
fn updates_of(server: &TestServer, after: i64, id: &str) -> Vec<Change> {
    changes(server, after)
        .into_iter()
        .filter(|change| change.resource_id == id && change.kind == "update")
        .collect()
}

#[tokio::test]
async fn filters_find_users_by_their_stored_entitlements() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice@contoso.com", "Agent", Some("CC-4100")).await;
    let bob = user(&server, "bob@contoso.com", "Level 2 Support", None).await;
    user(&server, "carol@contoso.com", "Clerk", None).await;
    group(&server, "Group_CC_Agents_Tier1", &[&alice]).await;
    group(&server, "Supervisors", &[]).await;
    // Before a rule set is in force the extension does not exist: a filter
    // on it is refused, naming it.
    let early = server
        .http
        .get(format!("{}/Users", server.base_url))
        .query(&[("filter", unit_filter("Manila Voice"))])
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("send");
    assert_eq!(early.status(), StatusCode::BAD_REQUEST);
    let report = apply(&server, "", &rules("Manila Voice")).await;
    assert_eq!(report["rewritten"], 2, "alice and bob: {report}");

    assert_eq!(
        found(&server, &unit_filter("Manila Voice")).await,
        ["alice@contoso.com"]
    );
    assert_eq!(
        found(&server, &role_filter("Agent")).await,
        ["alice@contoso.com"]
    );
    assert_eq!(
        found(&server, &role_filter("Quality Evaluator")).await,
        ["bob@contoso.com"]
    );
    assert_eq!(
        found(
            &server,
            &format!("{CC}:licenses.name eq \"CX 1\" or {CC}:licenses.name eq \"CX 3\"")
        )
        .await,
        ["alice@contoso.com", "bob@contoso.com"]
    );
    assert_eq!(
        found(&server, &format!("not ({CC}:grants pr)")).await,
        ["carol@contoso.com"]
    );
    // A user PATCH that gives bob the cost center: the filter finds him
    // at once.
    patch(
        &server,
        &format!("/Users/{bob}"),
        json!([{"op": "add", "path": format!("{ENTERPRISE}:costCenter"), "value": "CC-4100"}]),
    )
    .await;
    assert_eq!(
        found(&server, &unit_filter("Manila Voice")).await,
        ["alice@contoso.com", "bob@contoso.com"]
    );
    // The projection of the extension works on the stored value.
    let reply = server
        .call(
            Method::GET,
            &format!("/Users/{bob}?attributes={CC}:managementUnit"),
            None,
        )
        .await;
    assert_eq!(
        reply.body[CC],
        json!({"managementUnit": {"name": "Manila Voice", "rule": "unit-by-cost-center"}}),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_membership_change_through_a_nested_group_recomputes_with_a_version_and_a_change_record()
{
    let server = TestServer::start_sqlite().await;
    let dave = user(&server, "dave@contoso.com", "Team Lead", None).await;
    let leads = group(&server, "Team_Leads", &[&dave]).await;
    let supervisors = group(&server, "Supervisors", &[]).await;
    group(&server, "Group_CC_Agents_Tier1", &[]).await;
    apply(&server, "", &rules("Manila Voice")).await;
    let (before, version) = read(&server, &dave).await;
    assert_eq!(before, Value::Null, "no rule matches dave yet");

    // Team_Leads joins Supervisors: dave is under Supervisors indirectly.
    let sequence = last_sequence(&server);
    patch(
        &server,
        &format!("/Groups/{supervisors}"),
        json!([{"op": "add", "path": "members", "value": [{"value": leads}]}]),
    )
    .await;
    let (after, new_version) = read(&server, &dave).await;
    assert_eq!(roles(&after), ["Supervisor"], "{after}");
    assert_eq!(new_version, version + 1);
    let records = updates_of(&server, sequence, &dave);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].version, i64::try_from(new_version).unwrap_or(0));
    // Only the derived value: the rest of dave did not change.
    assert_eq!(records[0].payload, json!({"groups": "changed", CC: after}));
    assert_eq!(
        found(&server, &role_filter("Supervisor")).await,
        ["dave@contoso.com"]
    );

    // Team_Leads leaves Supervisors: the grant goes, with a new version.
    let sequence = last_sequence(&server);
    patch(
        &server,
        &format!("/Groups/{supervisors}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{leads}\"]")}]),
    )
    .await;
    let (gone, last_version) = read(&server, &dave).await;
    assert_eq!(gone, Value::Null);
    assert_eq!(last_version, new_version + 1);
    let records = updates_of(&server, sequence, &dave);
    assert_eq!(records.len(), 1);
    // The entitlements are now absent: `null`.
    assert_eq!(
        records[0].payload,
        json!({"groups": "changed", CC: null}),
        "{:?}",
        records[0]
    );
    assert!(found(&server, &role_filter("Supervisor")).await.is_empty());
}

#[tokio::test]
async fn a_rule_set_apply_rewrites_in_its_transaction_only_the_users_whose_entitlements_change() {
    let server = TestServer::start_sqlite().await;
    let alice = user(&server, "alice@contoso.com", "Agent", Some("CC-4100")).await;
    let erin = user(&server, "erin@contoso.com", "Agent", Some("CC-4100")).await;
    let bob = user(&server, "bob@contoso.com", "Level 2 Support", None).await;
    let carol = user(&server, "carol@contoso.com", "Clerk", None).await;
    group(&server, "Group_CC_Agents_Tier1", &[&alice]).await;
    group(&server, "Supervisors", &[]).await;
    apply(&server, "", &rules("Manila Voice")).await;
    let mut versions = Vec::new();
    for id in [&alice, &erin, &bob, &carol] {
        versions.push(read(&server, id).await.1);
    }

    // Version 2 moves CC-4100 to Manila Chat: alice and erin change; bob
    // and carol do not.
    let sequence = last_sequence(&server);
    let report = apply(&server, "", &rules("Manila Chat")).await;
    assert_eq!(report["version"], 2);
    assert_eq!(report["rewritten"], 2, "{report}");
    let records = changes(&server, sequence);
    // The rule set's record, then one update per rewritten user, with no
    // other write between them: one transaction.
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|change| (change.kind.as_str(), change.resource_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("rule_set", "2"),
            ("update", alice.as_str()),
            ("update", erin.as_str())
        ]
    );
    for (record, id) in records.iter().skip(1).zip([&alice, &erin]) {
        let (entitlements, version) = read(&server, id).await;
        assert_eq!(entitlements["managementUnit"]["name"], "Manila Chat");
        assert_eq!(record.payload["resource"][CC], entitlements);
        assert_eq!(record.payload["ruleSet"], 2);
        assert_eq!(record.version, i64::try_from(version).unwrap_or(0));
    }
    let mut after = Vec::new();
    for id in [&alice, &erin, &bob, &carol] {
        after.push(read(&server, id).await.1);
    }
    assert_eq!(
        after,
        [versions[0] + 1, versions[1] + 1, versions[2], versions[3]],
        "only the users whose entitlements changed get a new version"
    );
    assert!(found(&server, &unit_filter("Manila Voice"))
        .await
        .is_empty());
    assert_eq!(
        found(&server, &unit_filter("Manila Chat")).await,
        ["alice@contoso.com", "erin@contoso.com"]
    );

    // A dry run rewrites nothing.
    let sequence = last_sequence(&server);
    let dry = put_rules(&server, "?dryRun=true", &rules("Manila Voice")).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(dry.body.get("rewritten").is_none(), "{}", dry.body);
    assert!(changes(&server, sequence).is_empty());
}

#[tokio::test]
async fn no_read_is_stale_after_any_change_that_affects_entitlements() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice@contoso.com", "Agent", Some("CC-4100")).await;
    let bob = user(&server, "bob@contoso.com", "Clerk", None).await;
    let tier1 = group(&server, "Group_CC_Agents_Tier1", &[&alice]).await;
    let supervisors = group(&server, "Supervisors", &[]).await;
    apply(&server, "", &rules("Manila Voice")).await;
    let (a, mut alice_version) = read(&server, &alice).await;
    assert_eq!(roles(&a), ["Agent"]);
    let (b, mut bob_version) = read(&server, &bob).await;
    assert_eq!(b, Value::Null);

    // Each step: what changed, then bob's and alice's roles and unit as a
    // GET must show them at once, and whether each got a new version.
    struct Expect {
        bob_roles: &'static [&'static str],
        alice_roles: &'static [&'static str],
        alice_unit: &'static str,
        bob_changed: bool,
        alice_changed: bool,
    }
    let check = |step: &'static str, expect: Expect| {
        let server = &server;
        let (alice, bob) = (&alice, &bob);
        async move {
            let (b, bv) = read(server, bob).await;
            let (a, av) = read(server, alice).await;
            assert_eq!(roles(&b), expect.bob_roles, "{step}: bob {b}");
            assert_eq!(roles(&a), expect.alice_roles, "{step}: alice {a}");
            assert_eq!(
                a["managementUnit"]["name"], expect.alice_unit,
                "{step}: alice {a}"
            );
            (bv, av, expect.bob_changed, expect.alice_changed)
        }
    };
    let mut verify = |(bv, av, bob_changed, alice_changed): (u64, u64, bool, bool), step: &str| {
        assert_eq!(bv > bob_version, bob_changed, "{step}: bob's version");
        assert_eq!(av > alice_version, alice_changed, "{step}: alice's version");
        bob_version = bv;
        alice_version = av;
    };

    // 1. A user PATCH: bob becomes Level 2 Support.
    patch(
        &server,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "title", "value": "Level 2 Support"}]),
    )
    .await;
    verify(
        check(
            "user patch",
            Expect {
                bob_roles: &["Quality Evaluator"],
                alice_roles: &["Agent"],
                alice_unit: "Manila Voice",
                bob_changed: true,
                alice_changed: false,
            },
        )
        .await,
        "user patch",
    );
    // 2. A group membership PATCH: bob joins Tier 1, alice leaves.
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([
            {"op": "add", "path": "members", "value": [{"value": bob}]},
            {"op": "remove", "path": format!("members[value eq \"{alice}\"]")}
        ]),
    )
    .await;
    verify(
        check(
            "membership patch",
            Expect {
                bob_roles: &["Agent", "Quality Evaluator"],
                alice_roles: &[],
                alice_unit: "Manila Voice",
                bob_changed: true,
                alice_changed: true,
            },
        )
        .await,
        "membership patch",
    );
    // 3. A group rename: the rule names the old name; bob is no agent.
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "replace", "path": "displayName", "value": "Group_CC_Agents_Tier1_Old"}]),
    )
    .await;
    verify(
        check(
            "group rename",
            Expect {
                bob_roles: &["Quality Evaluator"],
                alice_roles: &[],
                alice_unit: "Manila Voice",
                bob_changed: true,
                alice_changed: false,
            },
        )
        .await,
        "group rename",
    );
    // And back: bob is an agent again.
    patch(
        &server,
        &format!("/Groups/{tier1}"),
        json!([{"op": "replace", "path": "displayName", "value": "Group_CC_Agents_Tier1"}]),
    )
    .await;
    verify(
        check(
            "group renamed back",
            Expect {
                bob_roles: &["Agent", "Quality Evaluator"],
                alice_roles: &[],
                alice_unit: "Manila Voice",
                bob_changed: true,
                alice_changed: false,
            },
        )
        .await,
        "group renamed back",
    );
    // 4. A rule apply: CC-4100 goes to Manila Chat.
    apply(&server, "", &rules("Manila Chat")).await;
    verify(
        check(
            "rule apply",
            Expect {
                bob_roles: &["Agent", "Quality Evaluator"],
                alice_roles: &[],
                alice_unit: "Manila Chat",
                bob_changed: false,
                alice_changed: true,
            },
        )
        .await,
        "rule apply",
    );
    // 5. A rollback to version 1: Manila Voice again.
    let rollback = apply(&server, "?version=1", "").await;
    assert_eq!(rollback["version"], 3);
    assert_eq!(rollback["rewritten"], 1, "{rollback}");
    verify(
        check(
            "rollback",
            Expect {
                bob_roles: &["Agent", "Quality Evaluator"],
                alice_roles: &[],
                alice_unit: "Manila Voice",
                bob_changed: false,
                alice_changed: true,
            },
        )
        .await,
        "rollback",
    );
    // A PUT that leaves the extension out does not drop it: the store
    // derives it again (and nothing changed, so no new version).
    let reply = server
        .call(
            Method::PUT,
            &format!("/Users/{alice}"),
            Some(
                json!({"schemas": [USER, ENTERPRISE], "userName": "alice@contoso.com",
                        "title": "Agent", "active": true,
                        ENTERPRISE: {"department": "Support", "costCenter": "CC-4100"}}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body[CC]["managementUnit"]["name"], "Manila Voice");
    assert_eq!(read(&server, &alice).await.1, alice_version);
    // A deleted group: its users are recomputed too.
    patch(
        &server,
        &format!("/Groups/{supervisors}"),
        json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]),
    )
    .await;
    assert_eq!(
        roles(&read(&server, &bob).await.0),
        ["Agent", "Quality Evaluator", "Supervisor"]
    );
    let (_, bob_version) = read(&server, &bob).await;
    let deleted = server
        .call(Method::DELETE, &format!("/Groups/{supervisors}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let (b, version) = read(&server, &bob).await;
    assert_eq!(roles(&b), ["Agent", "Quality Evaluator"]);
    assert_eq!(version, bob_version + 1);
    assert!(found(&server, &role_filter("Supervisor")).await.is_empty());
}
