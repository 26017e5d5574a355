//! Attacks on the console that once worked, against a real server: a
//! session outliving its credential when a new one takes the name, a
//! session outliving a client secret rotated with no grace, and a sign-in
//! `next` a `Location` header cannot carry.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests")]

mod common;

use std::time::Duration;

use common::{mint, Console};
use muster_core::credentials::{create_client, revoke_token, rotate_client};
use muster_core::tokens::SCOPE_ADMIN;
use muster_store::clients::CredentialOptions;
use muster_store::{Actor, TenantId};
use reqwest::{Method, StatusCode};

fn cli() -> Actor {
    Actor {
        client: "cli".to_owned(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn a_revoked_tokens_session_stays_ended_when_a_new_token_takes_its_name() {
    let console = Console::start().await;
    let tenant = TenantId::default_tenant();
    let leaked = mint(&*console.store, &tenant, "entra", &[SCOPE_ADMIN]).await;
    let (_, cookie) = console.sign_in_at("", &leaked).await;
    let cookie = cookie.expect("cookie");
    assert_eq!(console.get("/admin", &cookie).await.status, StatusCode::OK);

    // The leak is found: the token is revoked and a new one made under the
    // same name, before the thief's session sends another request.
    revoke_token(&*console.store, &tenant, &cli(), "entra")
        .await
        .expect("revoke");
    mint(&*console.store, &tenant, "entra", &[SCOPE_ADMIN]).await;

    let after = console.get("/admin", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.text);
    assert!(after.location().starts_with("/admin/sign-in"));
}

#[tokio::test]
async fn rotating_a_clients_secret_with_no_grace_ends_its_sessions() {
    let console = Console::start().await;
    let tenant = TenantId::default_tenant();
    let client = create_client(
        &*console.store,
        &tenant,
        &cli(),
        "okta",
        &[SCOPE_ADMIN.to_owned()],
        CredentialOptions::default(),
    )
    .await
    .expect("client");
    let signed_in = console
        .send(
            Method::POST,
            "/admin/sign-in",
            None,
            Some(&console.root.clone()),
            Some(&[
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ]),
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );
    let cookie = common::session_cookie(&signed_in).expect("cookie");
    assert_eq!(console.get("/admin", &cookie).await.status, StatusCode::OK);

    rotate_client(&*console.store, &tenant, &cli(), "okta", Duration::ZERO)
        .await
        .expect("rotate");
    let after = console.get("/admin", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.text);
}

#[tokio::test]
async fn a_next_with_a_control_character_goes_to_the_dashboard() {
    let console = Console::start().await;
    for next in [
        "/admin/users\u{7f}",
        "/admin/users/\tx",
        "/admin/\r\nSet-Cookie: a=b",
    ] {
        let page = console
            .send(
                Method::POST,
                "/admin/sign-in",
                None,
                Some(&console.root.clone()),
                Some(&[("token", &console.token.clone()), ("next", next)]),
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{next:?}: {}",
            page.text
        );
        assert_eq!(page.location(), "/admin", "{next:?}");
    }
}
