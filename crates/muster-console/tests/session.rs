//! Signing in and out of the console against a real server: the session
//! cookie's flags, CSRF refusals, every page signed in and out, and
//! tenants kept apart.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

mod common;

use common::{mint, session_cookie, set_cookie, Console};
use muster_core::tokens::{SCOPE_ADMIN, SCOPE_WRITE};
use muster_store::TenantId;
use reqwest::{Method, StatusCode};

/// Every page of the console (C1's and C2's), below `/admin`.
const PAGES: [&str; 9] = [
    "", "/users", "/mapping", "/schemas", "/rules", "/targets", "/audit", "/clients", "/tenants",
];

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session() {
    let console = Console::start().await;
    let form = console
        .send(Method::GET, "/admin/sign-in", None, None, None)
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("id=\"token\""), "{}", form.text);

    let (page, cookie) = console.sign_in_at("", &console.token.clone()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/admin");
    let flags = set_cookie(&page);
    assert!(flags.contains("HttpOnly"), "{flags}");
    assert!(flags.contains("SameSite=Strict"), "{flags}");
    assert!(flags.contains("Path=/"), "{flags}");
    assert!(!flags.contains("Secure"), "plain HTTP on loopback: {flags}");
    let cookie = cookie.expect("cookie");
    // Only the hash is stored.
    let dashboard = console.get("/admin", &cookie).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text);
    assert!(dashboard.text.contains("console-admin"));
    assert_eq!(dashboard.header("cache-control"), Some("no-store"));

    let csrf = dashboard.csrf();
    let out = console
        .post("/admin/sign-out", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text);
    assert_eq!(out.location(), "/admin/sign-in");
    assert!(set_cookie(&out).contains("Max-Age=0"));
    // The old cookie no longer signs anyone in.
    let after = console.get("/admin", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/admin/sign-in"));
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let console = Console::start_with(muster_server::ServerConfig {
        public_url: Some("https://muster.example.com".to_owned()),
        ..muster_server::ServerConfig::default()
    })
    .await;
    let page = console
        .send(
            Method::POST,
            "/admin/sign-in",
            None,
            Some("https://muster.example.com"),
            Some(&[("token", &console.token.clone())]),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert!(
        set_cookie(&page).contains("; Secure"),
        "{}",
        set_cookie(&page)
    );
}

#[tokio::test]
async fn refused_credentials_get_one_answer_and_no_cookie() {
    let console = Console::start().await;
    let writer = mint(
        &*console.store,
        &TenantId::default_tenant(),
        "writer",
        &[SCOPE_WRITE],
    )
    .await;
    for token in ["mst_not-a-token", writer.as_str()] {
        let (page, cookie) = console.sign_in_at("", token).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(cookie.is_none());
        assert!(page.text.contains("Sign-in failed"));
        assert!(!page.text.contains(token), "the page never echoes a secret");
    }
    // A sign-in from another site is refused before any credential is read.
    let page = console
        .send(
            Method::POST,
            "/admin/sign-in",
            None,
            Some("https://evil.example"),
            Some(&[("token", &console.token.clone())]),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(session_cookie(&page).is_none());
}

#[tokio::test]
async fn sign_in_with_an_oauth_client_holding_the_admin_scope() {
    let console = Console::start().await;
    let new = muster_core::clients::mint_client().await.expect("client");
    console
        .store
        .create_client(
            &TenantId::default_tenant(),
            muster_store::clients::ClientRecord {
                name: "okta-admin".to_owned(),
                client_id: new.client_id.clone(),
                secret_hash: new.secret_hash.clone(),
                previous_secret_hash: None,
                previous_valid_until: None,
                scopes: vec![SCOPE_ADMIN.to_owned()],
                options: muster_store::clients::CredentialOptions::default(),
                created: String::new(),
            },
        )
        .await
        .expect("create client");
    let root = console.root.clone();
    let wrong = console
        .send(
            Method::POST,
            "/admin/sign-in",
            None,
            Some(&root),
            Some(&[("client_id", &new.client_id), ("client_secret", "wrong")]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = console
        .send(
            Method::POST,
            "/admin/sign-in",
            None,
            Some(&root),
            Some(&[
                ("client_id", &new.client_id),
                ("client_secret", &new.secret),
            ]),
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.text);
    let cookie = session_cookie(&right).expect("cookie");
    let page = console.get("/admin", &cookie).await;
    assert!(page.text.contains("okta-admin"));
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_origin_are_refused() {
    let console = Console::start().await;
    let cookie = console.sign_in().await;
    let csrf = console.get("/admin", &cookie).await.csrf();
    let root = console.root.clone();
    // Missing token.
    let missing = console.post("/admin/sign-out", &cookie, &[]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text);
    // Wrong token.
    let wrong = console
        .post("/admin/sign-out", &cookie, &[("csrf", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Right token, another origin.
    let cross = console
        .send(
            Method::POST,
            "/admin/sign-out",
            Some(&cookie),
            Some("https://evil.example"),
            Some(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    // Right token, no Origin and no Sec-Fetch-Site.
    let bare = console
        .send(
            Method::POST,
            "/admin/sign-out",
            Some(&cookie),
            None,
            Some(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    // A browser's cross-site fetch metadata, even with our Origin.
    let mut request = console
        .http
        .post(format!("{root}/admin/sign-out"))
        .header("cookie", format!("muster_console={cookie}"))
        .header("origin", &root)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"));
    let response = request.send().await.expect("send");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The session survived every refusal: the right form still works.
    request = console
        .http
        .post(format!("{root}/admin/sign-out"))
        .header("cookie", format!("muster_console={cookie}"))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"));
    assert_eq!(
        request.send().await.expect("send").status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_page_answers_signed_in_and_redirects_signed_out() {
    let console = Console::start().await;
    let cookie = console.sign_in().await;
    for page in PAGES {
        let path = format!("/admin{page}");
        let signed_in = console.get(&path, &cookie).await;
        assert_eq!(
            signed_in.status,
            StatusCode::OK,
            "{path}: {}",
            signed_in.text
        );
        assert!(signed_in.text.contains("<html lang=\"en\">"), "{path}");
        assert!(signed_in.text.contains("id=\"main\""), "{path}");
        let signed_out = console.send(Method::GET, &path, None, None, None).await;
        assert_eq!(signed_out.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            signed_out.location().starts_with("/admin/sign-in"),
            "{path}"
        );
        let forged = console.get(&path, "not-a-session").await;
        assert_eq!(forged.status, StatusCode::SEE_OTHER, "{path}");
    }
    // The sign-in page sends the administrator back where they were going.
    let asked = console
        .send(Method::GET, "/admin/users?q=x", None, None, None)
        .await;
    assert_eq!(
        asked.location(),
        "/admin/sign-in?next=%2Fadmin%2Fusers%3Fq%3Dx"
    );
}

#[tokio::test]
async fn assets_are_served_with_a_long_cache_and_an_etag() {
    let console = Console::start().await;
    let cookie = console.sign_in().await;
    let page = console.get("/admin", &cookie).await;
    let start = page
        .text
        .find("/admin/assets/console.css?v=")
        .expect("stylesheet link");
    let link: String = page.text[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let css = console.send(Method::GET, &link, None, None, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/css"));
    assert!(css
        .header("cache-control")
        .unwrap_or_default()
        .contains("immutable"));
    let etag = css.header("etag").expect("etag").to_owned();
    let again = console
        .http
        .get(format!("{}{link}", console.root))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let htmx = console
        .send(Method::GET, "/admin/assets/htmx.min.js", None, None, None)
        .await;
    assert_eq!(htmx.status, StatusCode::OK);
}

#[tokio::test]
async fn tenants_are_kept_apart() {
    let console = Console::start().await;
    let acme = TenantId("acme".to_owned());
    console.store.create_tenant(&acme).await.expect("tenant");
    let acme_token = mint(&*console.store, &acme, "acme-admin", &[SCOPE_ADMIN]).await;
    let default_user = console.create_user(None, "ada@example.com").await;
    let acme_user = console
        .create_user(Some(("/t/acme", &acme_token)), "bob@acme.example")
        .await;

    // A default-tenant token does not sign in at acme, and vice versa.
    let (page, cookie) = console.sign_in_at("/t/acme", &console.token.clone()).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let (page, acme_cookie) = console.sign_in_at("/t/acme", &acme_token).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    assert_eq!(page.location(), "/t/acme/admin");
    let acme_cookie = acme_cookie.expect("cookie");

    // acme's session sees acme's user, with links under its prefix...
    let own = console
        .get(&format!("/t/acme/admin/users/{acme_user}"), &acme_cookie)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert!(own.text.contains("href=\"/t/acme/admin/users\""));
    // ...not the default tenant's, which is answered as unknown.
    let foreign = console
        .get(&format!("/t/acme/admin/users/{default_user}"), &acme_cookie)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    // And the session does not work at the default tenant's console.
    let elsewhere = console.get("/admin", &acme_cookie).await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);

    let cookie = console.sign_in().await;
    let foreign = console
        .get(&format!("/admin/users/{acme_user}"), &cookie)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let own = console
        .get(&format!("/admin/users/{default_user}"), &cookie)
        .await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_ends_with_its_credential() {
    let console = Console::start().await;
    let ops = mint(
        &*console.store,
        &TenantId::default_tenant(),
        "ops",
        &[SCOPE_ADMIN],
    )
    .await;
    let (_, cookie) = console.sign_in_at("", &ops).await;
    let cookie = cookie.expect("cookie");
    assert_eq!(console.get("/admin", &cookie).await.status, StatusCode::OK);
    console
        .store
        .revoke_token(&TenantId::default_tenant(), "ops")
        .await
        .expect("revoke");
    let after = console.get("/admin", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    // The session is gone, not just refused once.
    assert_eq!(
        console.get("/admin", &cookie).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_or_too_old() {
    use muster_store::console::{ConsoleSession, SessionLifetime};
    let console = Console::start().await;
    let lifetime = SessionLifetime {
        idle_millis: 1_000_000,
        absolute_millis: 5_000_000,
    };
    let session = |id: &str, at: i64| ConsoleSession {
        id_hash: id.to_owned(),
        tenant: TenantId::default_tenant(),
        actor: "console-admin".to_owned(),
        csrf: "token".to_owned(),
        created: at,
        last_seen: at,
    };
    let store = &console.store;
    store
        .create_console_session(session("idle", 0), lifetime)
        .await
        .expect("create");
    // Used within its idle time: alive, and its last use recorded.
    let touched = store
        .touch_console_session("idle", 900_000, lifetime)
        .await
        .expect("touch");
    assert_eq!(touched.map(|s| s.last_seen), Some(900_000));
    // Idle longer than allowed since: gone, for good.
    assert!(store
        .touch_console_session("idle", 1_900_001, lifetime)
        .await
        .expect("touch")
        .is_none());
    assert!(store
        .touch_console_session("idle", 900_001, lifetime)
        .await
        .expect("touch")
        .is_none());
    // Busy but older than the absolute lifetime: gone.
    store
        .create_console_session(session("old", 0), lifetime)
        .await
        .expect("create");
    for now in (500_000..5_000_000).step_by(500_000) {
        assert!(store
            .touch_console_session("old", now, lifetime)
            .await
            .expect("touch")
            .is_some());
    }
    assert!(store
        .touch_console_session("old", 5_000_001, lifetime)
        .await
        .expect("touch")
        .is_none());
    // A sign-in sweeps the expired sessions of everyone.
    store
        .create_console_session(session("stale", 0), lifetime)
        .await
        .expect("create");
    store
        .create_console_session(session("fresh", 10_000_000), lifetime)
        .await
        .expect("create");
    assert!(store
        .touch_console_session("stale", 0, lifetime)
        .await
        .expect("touch")
        .is_none());
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_nowhere_else() {
    let console = Console::start().await;
    let root = console.root.clone();
    let token = console.token.clone();
    for (next, expected) in [
        ("/admin/users?q=x", "/admin/users?q=x"),
        ("https://evil.example/admin", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("/admin/../scim/v2/Users", "/admin"),
        ("/admin/sign-out", "/admin"),
        ("/adminx", "/admin"),
    ] {
        let page = console
            .send(
                Method::POST,
                "/admin/sign-in",
                None,
                Some(&root),
                Some(&[("token", &token), ("next", next)]),
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location(), expected, "{next}");
    }
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_tenant() {
    let console = Console::start().await;
    for _ in 0..muster_console::session::FAILED_SIGN_INS_PER_MINUTE {
        let (page, _) = console.sign_in_at("", "mst_wrong").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Past the limit, wrong guesses wait...
    let (page, cookie) = console.sign_in_at("", "mst_wrong").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.header("retry-after").is_some());
    assert!(cookie.is_none());
    // ...but the right admin token still signs in: a flood of guesses does
    // not lock the tenant's admins out.
    let (page, cookie) = console.sign_in_at("", &console.token.clone()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
    // Another tenant is not held up.
    let acme = TenantId("acme".to_owned());
    console.store.create_tenant(&acme).await.expect("tenant");
    let token = mint(&*console.store, &acme, "acme-admin", &[SCOPE_ADMIN]).await;
    let (page, _) = console.sign_in_at("/t/acme", &token).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}
