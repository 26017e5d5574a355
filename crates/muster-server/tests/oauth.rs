//! `POST /oauth/token` (RFC 6749 section 4.4, client credentials) over real
//! HTTP: both ways a client authenticates, every error shape, rotation with
//! a grace period, revocation on every replica within a second, expiry, and
//! scope narrowing. Runs on SQLite and, with `MUSTER_TEST_BACKEND=postgres`,
//! on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::time::{Duration, Instant};

use base64::Engine;
use muster_core::clients::{mint_client, mint_client_secret, unix_now, unix_now_millis};
use muster_core::tokens::hash_secret;
use muster_server::limits::ClientLimits;
use muster_server::{AppState, ServerConfig};
use muster_store::clients::{ClientRecord, CredentialOptions};
use muster_store::TenantId;
use muster_testkit::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Creates a client of `tenant` directly in the store; returns its
/// `client_id` and secret.
async fn client_in(
    server: &TestServer,
    tenant: &TenantId,
    name: &str,
    scopes: &[&str],
) -> (String, String) {
    let new = mint_client().await.expect("mint a client");
    server
        .store
        .create_client(
            tenant,
            ClientRecord {
                name: name.to_owned(),
                client_id: new.client_id.clone(),
                secret_hash: new.secret_hash,
                previous_secret_hash: None,
                previous_valid_until: None,
                scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                options: CredentialOptions::default(),
                created: String::new(),
            },
        )
        .await
        .expect("create a client");
    (new.client_id, new.secret)
}

async fn client(server: &TestServer, name: &str, scopes: &[&str]) -> (String, String) {
    client_in(server, &TenantId::default_tenant(), name, scopes).await
}

/// How a token request authenticates.
enum Auth<'a> {
    None,
    /// HTTP Basic over the raw `id:secret` text (encoded as given).
    BasicRaw(&'a str),
    /// HTTP Basic, each part form-urlencoded first (RFC 6749 2.3.1).
    Basic(&'a str, &'a str),
    /// Another `Authorization` header.
    Header(&'a str),
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

async fn token_request(server: &TestServer, path: &str, auth: Auth<'_>, body: String) -> Reply {
    let mut request = server
        .http
        .post(format!("{}{path}", server.root))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let basic = |raw: String| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    request = match auth {
        Auth::None => request,
        Auth::BasicRaw(raw) => request.header("authorization", basic(raw.to_owned())),
        Auth::Basic(id, secret) => {
            let encode = |part: &str| form(&[("x", part)]).trim_start_matches("x=").to_owned();
            request.header(
                "authorization",
                basic(format!("{}:{}", encode(id), encode(secret))),
            )
        }
        Auth::Header(value) => request.header("authorization", value.to_owned()),
    };
    server.send(request, None).await
}

/// A token for `id`/`secret` by HTTP Basic, asking for `scope` when given.
async fn access_token(server: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> String {
    let mut fields = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        fields.push(("scope", scope));
    }
    let reply = token_request(
        server,
        "/oauth/token",
        Auth::Basic(id, secret),
        form(&fields),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn list_users(server: &TestServer, root: &str, token: &str) -> StatusCode {
    server
        .http
        .get(format!("{root}/scim/v2/Users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn basic_and_form_credentials_get_tokens_that_work() {
    let server = TestServer::start().await;
    let (id, secret) = client(&server, "okta", &["scim.read", "scim.write"]).await;
    let body = form(&[("grant_type", "client_credentials")]);
    for auth in [Auth::Basic(&id, &secret), Auth::None] {
        let form_credentials = matches!(auth, Auth::None);
        let body = if form_credentials {
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ])
        } else {
            body.clone()
        };
        let reply = token_request(&server, "/oauth/token", auth, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert!(reply
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")));
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["expires_in"], 3600);
        assert_eq!(reply.body["scope"], "scim.read scim.write");
        let token = reply.body["access_token"].as_str().unwrap();
        assert!(token.starts_with("mat_") && token.len() > 40);
        // The token works, with the client's name as the actor.
        assert_eq!(
            list_users(&server, &server.root, token).await,
            StatusCode::OK
        );
        let created = server
            .call_as(
                token,
                Method::POST,
                "/scim/v2/Users",
                Some(json!({"schemas": [USER], "userName": format!("okta-{form_credentials}")})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    // Neither the secret nor an access token is stored in clear.
    let token = access_token(&server, &id, &secret, None).await;
    let stored = server.stored_text().await;
    assert!(
        !stored.contains(&secret),
        "the client secret is stored in clear"
    );
    assert!(
        !stored.contains(&token),
        "an access token is stored in clear"
    );
    assert!(stored.contains(&hash_secret(&token)));
}

/// Expected: status, `error`, whether `WWW-Authenticate: Basic` is sent.
fn check(reply: &Reply, status: StatusCode, error: &str, basic_challenge: bool, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    assert_eq!(reply.body["error"], error, "{what}: {}", reply.body);
    assert!(
        reply.body["error_description"].is_string(),
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        reply
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Basic")),
        basic_challenge,
        "{what}: {:?}",
        reply.header("www-authenticate")
    );
}

#[tokio::test]
async fn errors_are_rfc_6749_bodies() {
    let server = TestServer::start().await;
    let (id, secret) = client(&server, "okta", &["scim.read", "scim.write"]).await;
    let grant = form(&[("grant_type", "client_credentials")]);
    let post = |auth: Auth<'static>, body: String| {
        let server = &server;
        async move { token_request(server, "/oauth/token", auth, body).await }
    };
    let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
    let (sid, ssecret) = (leak(&id), leak(&secret));

    let wrong = post(Auth::Basic(sid, "mcs_wrong"), grant.clone()).await;
    check(
        &wrong,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "wrong secret, Basic",
    );
    let wrong_form = post(
        Auth::None,
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sid),
            ("client_secret", "mcs_wrong"),
        ]),
    )
    .await;
    check(
        &wrong_form,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        false,
        "wrong secret, form",
    );
    let unknown = post(Auth::Basic("mcl_nobody", ssecret), grant.clone()).await;
    check(
        &unknown,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "unknown client",
    );
    assert_eq!(
        unknown.body, wrong.body,
        "an unknown client reads as a wrong secret"
    );
    let none = post(Auth::None, grant.clone()).await;
    check(
        &none,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "no credentials",
    );

    let both = post(
        Auth::Basic(sid, ssecret),
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sid),
            ("client_secret", ssecret),
        ]),
    )
    .await;
    check(
        &both,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "Basic and form at once",
    );
    let half = post(
        Auth::None,
        form(&[("grant_type", "client_credentials"), ("client_id", sid)]),
    )
    .await;
    check(
        &half,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "client_id alone",
    );
    let bearer = post(Auth::Header("Bearer mst_x"), grant.clone()).await;
    check(
        &bearer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "Bearer at the token endpoint",
    );
    let missing = post(Auth::Basic(sid, ssecret), String::new()).await;
    check(
        &missing,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "no grant_type",
    );
    let twice = post(
        Auth::Basic(sid, ssecret),
        "grant_type=client_credentials&grant_type=client_credentials".to_owned(),
    )
    .await;
    check(
        &twice,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "grant_type twice",
    );
    let password = post(
        Auth::Basic(sid, ssecret),
        form(&[("grant_type", "password")]),
    )
    .await;
    check(
        &password,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        false,
        "password grant",
    );
    for scope in ["admin", "scim.read admin", "bogus", "scim.read \"x\"\u{e9}"] {
        let reply = post(
            Auth::Basic(sid, ssecret),
            form(&[("grant_type", "client_credentials"), ("scope", scope)]),
        )
        .await;
        check(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            false,
            scope,
        );
        let description = reply.body["error_description"].as_str().unwrap();
        assert!(
            description
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "{description}"
        );
    }
    let huge = post(
        Auth::Basic(sid, ssecret),
        format!(
            "grant_type=client_credentials&scope={}",
            "a".repeat(100_000)
        ),
    )
    .await;
    check(
        &huge,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "a 100 KB body",
    );
    let json_body = server
        .send(
            server
                .http
                .post(format!("{}/oauth/token", server.root))
                .basic_auth(&id, Some(&secret)),
            Some(json!({"grant_type": "client_credentials"})),
        )
        .await;
    check(
        &json_body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        false,
        "a JSON body",
    );
    // Basic: a colon in the secret part is part of the secret (the split is
    // at the first colon), and it is not this client's secret.
    let colon = post(
        Auth::BasicRaw(leak(&format!("{id}:{secret}:x"))),
        grant.clone(),
    )
    .await;
    check(
        &colon,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "a colon in the secret",
    );
    let garbage = post(Auth::Header("Basic %%%"), grant.clone()).await;
    check(
        &garbage,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "undecodable Basic",
    );

    // A client holding no scope may not use the grant (its secret checked
    // first: a guesser learns nothing).
    let (none_id, none_secret) = client(&server, "scopeless", &[]).await;
    let scopeless = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&none_id, &none_secret),
        grant.clone(),
    )
    .await;
    check(
        &scopeless,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        false,
        "no scope",
    );
    let guessed = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&none_id, "mcs_wrong"),
        grant.clone(),
    )
    .await;
    check(
        &guessed,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "no scope, wrong secret",
    );

    // RFC 6749 2.3.1: the parts are form-urlencoded; every byte encoded
    // still authenticates.
    let encoded: String = secret.bytes().map(|byte| format!("%{byte:02X}")).collect();
    let reply = post(
        Auth::BasicRaw(leak(&format!("{id}:{encoded}"))),
        grant.clone(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "percent-encoded Basic: {}",
        reply.body
    );
    // The token endpoint needs no bearer token, and other methods are not
    // served there.
    let get = server
        .http
        .get(format!("{}/oauth/token", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn scopes_narrow_to_those_requested() {
    let server = TestServer::start().await;
    let (id, secret) = client(&server, "okta", &["scim.read", "scim.write"]).await;
    let reader = access_token(&server, &id, &secret, Some("scim.read")).await;
    assert_eq!(
        list_users(&server, &server.root, &reader).await,
        StatusCode::OK
    );
    let refused = server
        .call_as(
            &reader,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"schemas": [USER], "userName": "narrow"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let admin = server
        .call_as(&reader, Method::GET, "/admin/v1/settings", None)
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_scope_a_held_one_implies_is_granted_as_requested() {
    let server = TestServer::start().await;
    // scim.write implies scim.read, admin implies both: a client holding
    // the wider scope gets exactly the narrower one it asks for.
    let (id, secret) = client(&server, "okta", &["scim.write", "admin"]).await;
    let reply = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&id, &secret),
        form(&[("grant_type", "client_credentials"), ("scope", "scim.read")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["scope"], "scim.read");
    let reader = reply.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        list_users(&server, &server.root, &reader).await,
        StatusCode::OK
    );
    let write = server
        .call_as(
            &reader,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"schemas": [USER], "userName": "implied"})),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.body);
    let (admin_id, admin_secret) = client(&server, "admin-only", &["admin"]).await;
    let both = access_token(
        &server,
        &admin_id,
        &admin_secret,
        Some("scim.read scim.write"),
    )
    .await;
    let created = server
        .call_as(
            &both,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"schemas": [USER], "userName": "implied"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Nothing wider than held: scim.write does not imply admin.
    let (writer_id, writer_secret) = client(&server, "writer", &["scim.write"]).await;
    let wider = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&writer_id, &writer_secret),
        form(&[
            ("grant_type", "client_credentials"),
            ("scope", "scim.read admin"),
        ]),
    )
    .await;
    check(
        &wider,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        false,
        "admin from scim.write",
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_its_grace_only() {
    let server = TestServer::start().await;
    let tenant = TenantId::default_tenant();
    let (id, old) = client(&server, "okta", &["scim.read"]).await;
    let grant = form(&[("grant_type", "client_credentials")]);
    let status = |secret: String| {
        let (server, id, grant) = (&server, id.clone(), grant.clone());
        async move {
            token_request(server, "/oauth/token", Auth::Basic(&id, &secret), grant)
                .await
                .status
        }
    };
    // Rotated with a grace: both secrets work.
    let (new, hash) = mint_client_secret().await.unwrap();
    server
        .store
        .rotate_client_secret(&tenant, "okta", hash, Some(unix_now() + 3600))
        .await
        .unwrap();
    assert_eq!(status(old.clone()).await, StatusCode::OK);
    assert_eq!(status(new.clone()).await, StatusCode::OK);
    // Rotated again, the grace already over: only the newest works (the
    // first secret is gone for good, the second is past its grace).
    let (newest, hash) = mint_client_secret().await.unwrap();
    server
        .store
        .rotate_client_secret(&tenant, "okta", hash, Some(unix_now() - 1))
        .await
        .unwrap();
    assert_eq!(status(old.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(new.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(newest.clone()).await, StatusCode::OK);
    // Without a grace, the previous secret stops at once.
    let (last, hash) = mint_client_secret().await.unwrap();
    server
        .store
        .rotate_client_secret(&tenant, "okta", hash, None)
        .await
        .unwrap();
    assert_eq!(status(newest).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(last).await, StatusCode::OK);
}

/// A second server (a replica: its own token cache and rate limiters) over
/// the same store; returns its root URL.
async fn replica(server: &TestServer) -> String {
    let state = AppState::new(server.store.clone(), ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        muster_server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    format!("http://{address}")
}

#[tokio::test]
async fn revocation_ends_access_tokens_within_a_second_on_every_replica() {
    let server = TestServer::start().await;
    let other = replica(&server).await;
    let (id, secret) = client(&server, "okta", &["scim.read"]).await;
    let token = access_token(&server, &id, &secret, None).await;
    let bearer = server.token_with("entra", &["scim.read"]).await;
    // Both replicas have the credentials cached.
    for root in [server.root.clone(), other.clone()] {
        assert_eq!(list_users(&server, &root, &token).await, StatusCode::OK);
        assert_eq!(list_users(&server, &root, &bearer).await, StatusCode::OK);
    }
    let tenant = TenantId::default_tenant();
    server.store.revoke_client(&tenant, "okta").await.unwrap();
    server.store.revoke_token(&tenant, "entra").await.unwrap();
    let revoked = Instant::now();
    let mut refused_after = Vec::new();
    for root in [server.root.clone(), other.clone()] {
        for credential in [&token, &bearer] {
            loop {
                let status = list_users(&server, &root, credential).await;
                if status == StatusCode::UNAUTHORIZED {
                    refused_after.push(revoked.elapsed());
                    break;
                }
                assert_eq!(status, StatusCode::OK);
                assert!(
                    revoked.elapsed() < Duration::from_secs(1),
                    "still accepted {:?} after revocation at {root}",
                    revoked.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(refused_after
        .iter()
        .all(|after| *after < Duration::from_secs(1)));
    // The revoked client cannot get another token either.
    let reply = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&id, &secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    check(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "a revoked client",
    );
    // A client re-created under the same name does not revive old tokens.
    let _ = client(&server, "okta", &["scim.read"]).await;
    assert_eq!(
        list_users(&server, &server.root, &token).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rotation_without_grace_ends_access_tokens_within_a_second_on_every_replica() {
    let server = TestServer::start().await;
    let other = replica(&server).await;
    let tenant = TenantId::default_tenant();
    let (id, old) = client(&server, "okta", &["scim.read"]).await;
    let (keep_id, keep_secret) = client(&server, "entra", &["scim.read"]).await;
    let token = access_token(&server, &id, &old, None).await;
    let kept = access_token(&server, &keep_id, &keep_secret, None).await;
    // With a grace, tokens got with the old secret keep working.
    let (graced, hash) = mint_client_secret().await.unwrap();
    server
        .store
        .rotate_client_secret(&tenant, "okta", hash, Some(unix_now() + 3600))
        .await
        .unwrap();
    let graced_token = access_token(&server, &id, &old, None).await;
    for root in [server.root.clone(), other.clone()] {
        for credential in [&token, &graced_token, &kept] {
            assert_eq!(list_users(&server, &root, credential).await, StatusCode::OK);
        }
    }
    // Without one (the old secret leaked), every token of the client ends
    // within a second on every replica, as on revocation; another client's
    // do not.
    let (new, hash) = mint_client_secret().await.unwrap();
    server
        .store
        .rotate_client_secret(&tenant, "okta", hash, None)
        .await
        .unwrap();
    let rotated = Instant::now();
    for root in [server.root.clone(), other.clone()] {
        for credential in [&token, &graced_token] {
            loop {
                let status = list_users(&server, &root, credential).await;
                if status == StatusCode::UNAUTHORIZED {
                    break;
                }
                assert_eq!(status, StatusCode::OK);
                assert!(
                    rotated.elapsed() < Duration::from_secs(1),
                    "still accepted {:?} after the rotation at {root}",
                    rotated.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(list_users(&server, &root, &kept).await, StatusCode::OK);
    }
    for secret in [&old, &graced] {
        let refused = token_request(
            &server,
            "/oauth/token",
            Auth::Basic(&id, secret),
            form(&[("grant_type", "client_credentials")]),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    }
    let fresh = access_token(&server, &id, &new, None).await;
    assert_eq!(list_users(&server, &other, &fresh).await, StatusCode::OK);
}

#[tokio::test]
async fn the_tenant_segment_is_matched_as_written() {
    let server = TestServer::start().await;
    let b = TenantId("b".to_owned());
    server.store.create_tenant(&b).await.unwrap();
    let (id, secret) = client_in(&server, &b, "okta", &["scim.read"]).await;
    let grant = form(&[("grant_type", "client_credentials")]);
    let reply = token_request(
        &server,
        "/t/b/oauth/token",
        Auth::Basic(&id, &secret),
        grant.clone(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Other spellings of b, or no tenant name at all, are no endpoint: 404
    // like the SCIM routes, and no token.
    for path in [
        "/t/%62/oauth/token",
        "/t/B/oauth/token",
        "/t//oauth/token",
        "/t/a%2F/oauth/token",
        "/t/b%2F/oauth/token",
    ] {
        let reply = token_request(&server, path, Auth::Basic(&id, &secret), grant.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert!(
            reply.body.get("access_token").is_none(),
            "{path}: {}",
            reply.body
        );
        let scim_path = path.replace("/oauth/token", "/scim/v2/Users");
        let scim = server
            .call_as(&server.token, Method::GET, &scim_path, None)
            .await;
        assert_eq!(
            scim.status,
            StatusCode::NOT_FOUND,
            "{scim_path}: {}",
            scim.body
        );
        assert_eq!(reply.body["status"], scim.body["status"], "{path}");
    }
    // A well-formed name that is no tenant's is an unknown client.
    let nowhere = token_request(
        &server,
        "/t/nowhere/oauth/token",
        Auth::Basic(&id, &secret),
        grant,
    )
    .await;
    check(
        &nowhere,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "a tenant that does not exist",
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_and_swept() {
    let server = TestServer::start_with(ServerConfig {
        clients: ClientLimits {
            access_token_ttl: Duration::from_secs(1),
            ..ClientLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (id, secret) = client(&server, "okta", &["scim.read"]).await;
    let reply = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&id, &secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(reply.body["expires_in"], 1, "{}", reply.body);
    let token = reply.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        list_users(&server, &server.root, &token).await,
        StatusCode::OK
    );
    // Kept in the cache by use until it expires, then refused.
    let started = Instant::now();
    loop {
        let status = list_users(&server, &server.root, &token).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = server
        .call_as(&token, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["status"], "401");
    // The next issue sweeps the expired token's row: nothing is left to
    // sweep after it.
    let _ = access_token(&server, &id, &secret, None).await;
    let left = server
        .store
        .sweep_access_tokens(unix_now_millis())
        .await
        .unwrap();
    assert_eq!(left, 0, "the expired token was not swept");
}

#[tokio::test]
async fn a_client_of_another_tenant_is_an_unknown_client() {
    let server = TestServer::start().await;
    let acme = TenantId("acme".to_owned());
    server.store.create_tenant(&acme).await.unwrap();
    let (id, secret) = client_in(&server, &acme, "okta", &["scim.read"]).await;
    let (default_id, default_secret) = client(&server, "okta", &["scim.read"]).await;
    // At the default tenant's token endpoint, acme's client is unknown.
    let foreign = token_request(
        &server,
        "/oauth/token",
        Auth::Basic(&id, &secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    let unknown = token_request(
        &server,
        "/oauth/token",
        Auth::Basic("mcl_nobody", &secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    check(
        &foreign,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "another tenant's client",
    );
    assert_eq!(foreign.body, unknown.body);
    // At its own tenant's endpoint it gets a token, which works at its
    // tenant's URL and nowhere else.
    let reply = token_request(
        &server,
        "/t/acme/oauth/token",
        Auth::Basic(&id, &secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.body["access_token"].as_str().unwrap();
    let own = server
        .call_as(token, Method::GET, "/t/acme/scim/v2/Users", None)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let default = server
        .call_as(token, Method::GET, "/scim/v2/Users", None)
        .await;
    let nobody = server
        .call_as("mat_nobody", Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(default.status, StatusCode::UNAUTHORIZED);
    assert_eq!(default.body, nobody.body, "{}", default.body);
    // The default tenant's client (same name) gets nothing at acme's
    // endpoint.
    let reply = token_request(
        &server,
        "/t/acme/oauth/token",
        Auth::Basic(&default_id, &default_secret),
        form(&[("grant_type", "client_credentials")]),
    )
    .await;
    check(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        true,
        "the default tenant's client at acme",
    );
    assert_eq!(reply.body, unknown.body);
}
