//! Attacks on the sync engine's inputs over HTTP (targets, dead letters,
//! provision on demand, the expression evaluator): each test is the
//! regression test of one finding of the review. Bad input gets a SCIM
//! `400` naming the field and what was expected, changes nothing, and a
//! target's secret never appears in an answer, the database files, a dead
//! letter or a dry run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use std::time::{Duration, Instant};

use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Asserts `reply` is a SCIM `400 invalidValue` whose detail holds every
/// one of `words` and none of `never`.
fn refused(what: &str, reply: &Reply, words: &[&str], never: &[&str]) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.body["schemas"][0], ERROR, "{what}: {}", reply.body);
    assert_eq!(
        reply.body["scimType"], "invalidValue",
        "{what}: {}",
        reply.body
    );
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    for word in words {
        assert!(detail.contains(word), "{what}: '{word}' not in: {detail}");
    }
    for secret in never {
        assert!(
            !reply.body.to_string().contains(secret),
            "{what}: the answer repeats '{secret}': {detail}"
        );
    }
}

fn scim_target(name: &str, base_url: &str, token: Value) -> Value {
    json!({
        "name": name,
        "kind": "scim",
        "baseUrl": base_url,
        "auth": {"type": "bearer", "token": token},
    })
}

/// Finding: `{"env": "ANY"}` read any variable of the server process and
/// sent it as the bearer token to a URL of the admin's choosing (HOME,
/// cloud credentials, MUSTER_SECRETS_KEY). Only `MUSTER_TARGET_*` now.
#[tokio::test]
async fn env_secrets_outside_the_target_prefix_are_refused() {
    let server = TestServer::start().await;
    for env in [
        "HOME",
        "MUSTER_SECRETS_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "MUSTER_TARGET_",
        "MUSTER_TARGET_lower",
        "",
    ] {
        let document = scim_target(
            "envy",
            "https://cc.example.com/scim/v2",
            json!({"env": env}),
        );
        let reply = server
            .admin(Method::PUT, "/targets/envy", Some(document))
            .await;
        refused(env, &reply, &["auth.token", "MUSTER_TARGET_"], &[]);
    }
    let gone = server.admin(Method::GET, "/targets/envy", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    let document = scim_target(
        "envy",
        "https://cc.example.com/scim/v2",
        json!({"env": "MUSTER_TARGET_CC_TOKEN"}),
    );
    let put = server
        .admin(Method::PUT, "/targets/envy", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(
        put.body["document"]["auth"]["token"],
        json!({"env": "MUSTER_TARGET_CC_TOKEN"})
    );
}

/// Finding: `{"redacted": true}` kept the stored token while `baseUrl`
/// moved to another host, so whoever may put targets could have the stored
/// token sent to their own server without ever seeing it.
#[tokio::test]
async fn a_kept_secret_does_not_follow_a_new_host() {
    let server = TestServer::start().await;
    let token = "Kept-Token-Never-Moves-41";
    let put = server
        .admin(
            Method::PUT,
            "/targets/kept",
            Some(scim_target(
                "kept",
                "https://cc.example.com/scim/v2",
                json!(token),
            )),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    for (base_url, token) in [
        (
            "https://attacker.example.net/scim/v2",
            json!({"redacted": true}),
        ),
        ("http://cc.example.com/scim/v2", json!({"redacted": true})),
        (
            "https://cc.example.com:8443/scim/v2",
            json!({"redacted": true}),
        ),
    ] {
        let reply = server
            .admin(
                Method::PUT,
                "/targets/kept",
                Some(scim_target("kept", base_url, token)),
            )
            .await;
        refused(base_url, &reply, &["auth.token", "baseUrl"], &[]);
    }
    let stored = server.admin(Method::GET, "/targets/kept", None).await;
    assert_eq!(
        stored.body["document"]["baseUrl"], "https://cc.example.com/scim/v2",
        "{}",
        stored.body
    );
    // `{"sealed": ...}` from a client is refused, even where the secret
    // would be kept (it used to be read silently as "keep").
    let planted = server
        .admin(
            Method::PUT,
            "/targets/kept",
            Some(scim_target(
                "kept",
                "https://cc.example.com/scim/v2",
                json!({"sealed": "AAAA"}),
            )),
        )
        .await;
    refused("sealed", &planted, &["auth.token", "sealed"], &[]);
    // The same host, another path: the secret is kept.
    let moved = server
        .admin(
            Method::PUT,
            "/targets/kept",
            Some(scim_target(
                "kept",
                "https://cc.example.com/other/scim/v2",
                json!({"redacted": true}),
            )),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    // Another host with the secret given again is fine.
    let given = server
        .admin(
            Method::PUT,
            "/targets/kept",
            Some(scim_target(
                "kept",
                "https://new.example.com/scim/v2",
                json!("New-Token-7"),
            )),
        )
        .await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.body);
}

/// Finding: a credential in a URL's query string (`?token=`,
/// `?client_secret=`) was stored in clear and returned by every GET; a URL
/// refused for another reason was repeated whole in the error, password
/// included; a fragment was silently dropped.
#[tokio::test]
async fn credentials_in_urls_are_refused_and_never_repeated() {
    let server = TestServer::start().await;
    let cases = [
        (
            "query token",
            scim_target(
                "urls",
                "https://cc.example.com/scim/v2?token=Query-Secret-01",
                json!("t"),
            ),
            "baseUrl",
            "Query-Secret-01",
        ),
        (
            "fragment",
            scim_target(
                "urls",
                "https://cc.example.com/scim/v2#Frag-Secret-02",
                json!("t"),
            ),
            "baseUrl",
            "Frag-Secret-02",
        ),
        (
            "userinfo that does not parse",
            scim_target("urls", "https://u:Pass Word-03@cc example/scim", json!("t")),
            "baseUrl",
            "Word-03",
        ),
        (
            "userinfo with another scheme",
            scim_target(
                "urls",
                "ftp://u:Ftp-Secret-04@cc.example.com/scim",
                json!("t"),
            ),
            "baseUrl",
            "Ftp-Secret-04",
        ),
        (
            "oauth client secret in the token URL",
            json!({
                "name": "urls",
                "kind": "scim",
                "baseUrl": "https://cc.example.com/scim/v2",
                "auth": {
                    "type": "oauth-client-credentials",
                    "tokenUrl": "https://idp.example.com/token?client_secret=Query-Secret-05",
                    "clientId": "muster",
                    "clientSecret": "Client-Secret-05",
                },
            }),
            "auth.tokenUrl",
            "Query-Secret-05",
        ),
    ];
    for (what, document, field, secret) in cases {
        let reply = server
            .admin(Method::PUT, "/targets/urls", Some(document))
            .await;
        refused(what, &reply, &[field], &[secret]);
    }
    let gone = server.admin(Method::GET, "/targets/urls", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    let text = server.stored_text().await;
    for secret in ["Query-Secret-01", "Query-Secret-05", "Client-Secret-05"] {
        assert!(!text.contains(secret), "{secret} is in the database files");
    }
    // A token endpoint may take a non-secret parameter (Azure AD B2C's `p`).
    let b2c = json!({
        "name": "urls",
        "kind": "scim",
        "baseUrl": "https://cc.example.com/scim/v2",
        "auth": {
            "type": "oauth-client-credentials",
            "tokenUrl": "https://tenant.b2clogin.com/tenant.onmicrosoft.com/oauth2/v2.0/token?p=b2c_1_signin",
            "clientId": "muster",
            "clientSecret": "Client-Secret-06",
        },
    });
    let put = server.admin(Method::PUT, "/targets/urls", Some(b2c)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(!put.body.to_string().contains("Client-Secret-06"));
}

/// Finding: a secret was read as "the first form that fits", so members
/// were silently dropped (`{"env": .., "note": ..}`), `{"redacted": false}`
/// meant redacted, and a wrong type gave "did not match any variant of
/// untagged enum Secret".
#[tokio::test]
async fn secrets_are_read_strictly() {
    let server = TestServer::start().await;
    for (what, token) in [
        ("redacted false", json!({"redacted": false})),
        (
            "env with an extra member",
            json!({"env": "MUSTER_TARGET_A", "note": "dropped"}),
        ),
        ("a number", json!(42)),
        ("null", Value::Null),
        ("an unknown member", json!({"value": "Secret-In-Value-07"})),
    ] {
        let reply = server
            .admin(
                Method::PUT,
                "/targets/strict",
                Some(scim_target(
                    "strict",
                    "https://cc.example.com/scim/v2",
                    token,
                )),
            )
            .await;
        refused(
            what,
            &reply,
            &["expected the secret as a string"],
            &["Secret-In-Value-07"],
        );
    }
}

/// Finding: nesting `Replace` (or `Join`, `ConvertToBase64`) multiplied a
/// value at every level: a 2 KB expression made the server allocate
/// gigabytes (it was killed at 2.4 GB and rising). Every function's text is
/// now bounded.
#[tokio::test]
async fn expressions_cannot_exhaust_memory() {
    let server = TestServer::start().await;
    let mut doubling = "[x]".to_owned();
    for _ in 0..40 {
        doubling = format!("Replace({doubling}, \"a\", , , \"aa\", , )");
    }
    let mut regex_doubling = "[x]".to_owned();
    for _ in 0..40 {
        regex_doubling = format!("Replace({regex_doubling}, , \"a\", , \"aa\", , )");
    }
    let mut base64 = "[x]".to_owned();
    for _ in 0..30 {
        base64 = format!("ConvertToBase64({base64})");
    }
    let wide = "b".repeat(4096);
    let mut join = format!("\"{wide}\"");
    for _ in 0..4 {
        join = format!("Join({join}, Split([x], \"a\"))");
    }
    for (what, expression) in [
        ("Replace", doubling),
        ("Replace with a regex", regex_doubling),
        ("ConvertToBase64", base64),
        ("Join", join),
    ] {
        let started = Instant::now();
        let reply = server
            .admin(
                Method::POST,
                "/expressions/evaluate",
                Some(json!({"expression": expression, "attributes": {"x": "ab".repeat(500)}})),
            )
            .await;
        refused(what, &reply, &["longer than", "bytes"], &[]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} took {:?}",
            started.elapsed()
        );
    }
}

/// Finding: expressions had no size limit: a 1 MB constant was stored as a
/// mapping (and sent with every user), a 100 KB expression was evaluated.
#[tokio::test]
async fn oversized_expressions_are_refused() {
    let server = TestServer::start().await;
    let huge = format!("\"{}\"", "A".repeat(100_000));
    let reply = server
        .admin(
            Method::POST,
            "/expressions/evaluate",
            Some(json!({"expression": huge})),
        )
        .await;
    refused("evaluate", &reply, &["at most 32768 bytes"], &[]);
    let mut document = scim_target("huge", "https://cc.example.com/scim/v2", json!("t"));
    document["mappings"] = json!([
        {"target": "userName", "expression": "userName"},
        {"target": "title", "expression": format!("\"{}\"", "A".repeat(1_000_000))},
    ]);
    let reply = server
        .admin(Method::PUT, "/targets/huge", Some(document))
        .await;
    refused(
        "mapping",
        &reply,
        &["mappings[1].expression", "at most 32768 bytes"],
        &[],
    );
    let gone = server.admin(Method::GET, "/targets/huge", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

/// Finding: a dead letter id that is not a number (`abc`, `-1`, one past
/// u64) was answered with axum's plain-text "Invalid URL", not a SCIM error;
/// the dead-letter list's refusal spoke of `dryRun`.
#[tokio::test]
async fn dead_letter_ids_and_queries_get_scim_errors() {
    let server = TestServer::start().await;
    for id in ["abc", "-1", "99999999999999999999999", "1.5", "%20"] {
        for (method, path) in [
            (Method::DELETE, format!("/sync/dead-letters/{id}")),
            (Method::POST, format!("/sync/dead-letters/{id}/retry")),
        ] {
            let reply = server.admin(method.clone(), &path, None).await;
            refused(
                &format!("{method} {path}"),
                &reply,
                &["dead letter id"],
                &[],
            );
        }
    }
    let reply = server
        .admin(Method::GET, "/sync/dead-letters?targt=x", None)
        .await;
    refused("list", &reply, &["targt", "target"], &["dryRun"]);
    let missing = server
        .admin(
            Method::DELETE,
            "/sync/dead-letters/18446744073709551615",
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
}

/// Finding: a CSV target's directory could climb with `..`
/// (`/srv/exports/../../etc`), which hides where files really go.
#[tokio::test]
async fn csv_directories_do_not_climb() {
    let server = TestServer::start().await;
    let document = json!({"name": "files", "kind": "csv", "directory": "/srv/exports/../../etc"});
    let reply = server
        .admin(Method::PUT, "/targets/files", Some(document))
        .await;
    refused("..", &reply, &["directory", "'..'"], &[]);
}

/// Regression guard (no finding): a target that refuses a user leaves a
/// dead letter holding the request without its Authorization header; the
/// token is in no answer (target, dead letter, dry run, explain) and not in
/// the database files.
#[tokio::test]
async fn a_token_is_in_no_dead_letter_dry_run_or_database_file() {
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let mut document = scim_target("refuses", &target.base_url, json!(target.token));
    // The target refuses `active` as a string: every create is a 400.
    document["mappings"] = json!([
        {"target": "userName", "expression": "userName"},
        {"target": "active", "expression": "\"nope\""},
    ]);
    let put = source
        .admin(Method::PUT, "/targets/refuses", Some(document))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let created = source
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "refused"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let letters = loop {
        let letters = source.admin(Method::GET, "/sync/dead-letters", None).await;
        if letters.body["totalResults"].as_u64().unwrap_or(0) > 0 {
            break letters;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter: {}",
            letters.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let letter = &letters.body["Resources"][0];
    assert_eq!(letter["response"]["status"], 400, "{letter}");
    let dry = source
        .admin(
            Method::POST,
            "/users/refused/targets/refuses/provision?dryRun=true",
            None,
        )
        .await;
    let explain = source
        .admin(Method::GET, "/users/refused/targets/refuses", None)
        .await;
    let listed = source.admin(Method::GET, "/targets", None).await;
    for (what, reply) in [
        ("dead letters", &letters),
        ("dry run", &dry),
        ("explain", &explain),
        ("list", &listed),
        ("put", &put),
    ] {
        let text = reply.body.to_string();
        assert!(
            !text.contains(&target.token),
            "{what} holds the token: {text}"
        );
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "{what} holds a header: {text}"
        );
    }
    assert!(
        !source.stored_text().await.contains(&target.token),
        "the token is in the database files"
    );
}

/// Finding (muster-sync, not fixed here): `Targets::apply`, which
/// `muster target apply` calls without going through the admin API, still
/// keeps a stored secret when `baseUrl` moves to another host. The admin
/// API refuses it (see `a_kept_secret_does_not_follow_a_new_host`); the fix
/// is for `Targets::apply` to refuse `document.kept_secret_problems(&existing)`.
#[tokio::test]
async fn targets_apply_does_not_move_a_kept_secret_either() {
    use std::sync::Arc;

    use muster_store::{Actor, TenantId};
    use muster_targets::TargetDocument;

    let server = TestServer::start().await;
    let service = Arc::new(muster_core::Service::new(
        server.store.clone(),
        muster_server::ServerConfig::default().limits,
    ));
    let key = muster_sync::secrets::SecretKey::load_or_create(server.data_dir()).unwrap();
    let targets = muster_sync::Targets::new(service, key, server.data_dir().join("exports"));
    let tenant = TenantId::default_tenant();
    let actor = Actor {
        client: "cli".into(),
        request_id: String::new(),
    };
    let document = |base_url: &str, token: Value| {
        TargetDocument::from_value(scim_target("cli", base_url, token)).unwrap()
    };
    targets
        .apply(
            &tenant,
            &actor,
            None,
            document("https://cc.example.com/scim/v2", json!("Cli-Token-8")),
        )
        .await
        .unwrap();
    let moved = targets
        .apply(
            &tenant,
            &actor,
            None,
            document(
                "https://attacker.example.net/scim/v2",
                json!({"redacted": true}),
            ),
        )
        .await;
    assert!(moved.is_err(), "the stored token would go to the new host");
}

/// Finding: a CSV target could write anywhere the server user can
/// (`/etc`); it may only write under the export root (DATA_DIR/exports
/// here), a symbolic link out of it included.
#[tokio::test]
async fn csv_directories_stay_under_the_export_root() {
    let server = TestServer::start().await;
    let outside = tempfile::tempdir().unwrap();
    let root = server.data_dir().join("exports");
    std::fs::create_dir_all(&root).unwrap();
    let link = root.join("escape");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    for directory in [
        outside.path().display().to_string(),
        "/etc".to_owned(),
        link.join("sub").display().to_string(),
    ] {
        let document = json!({"name": "files", "kind": "csv", "directory": directory});
        let reply = server
            .admin(Method::PUT, "/targets/files", Some(document))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{directory}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("export root"), "{detail}");
    }
    let inside = json!({"name": "files", "kind": "csv", "directory": root.join("five9")});
    let reply = server
        .admin(Method::PUT, "/targets/files", Some(inside))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
