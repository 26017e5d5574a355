//! `muster serve` mounts the admin console: a token the CLI minted signs in
//! at `/admin`, and the pages answer; signed out, they send to sign-in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use common::{create_token, Server};
use reqwest::StatusCode;

#[tokio::test]
async fn serve_mounts_the_console() {
    let data_dir = tempfile::tempdir().unwrap();
    let token = create_token(data_dir.path(), "ops", &["admin"]);
    let server = Server::start(data_dir.path());
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_out = http
        .get(format!("{}/admin/users", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    let form = http
        .get(format!("{}/admin/sign-in", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let signed_in = http
        .post(format!("{}/admin/sign-in", server.root))
        .header("origin", &server.root)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let dashboard = http
        .get(format!("{}/admin", server.root))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    assert!(dashboard.text().await.unwrap().contains("Dashboard"));
    // The API keeps its bearer authentication.
    let api = http
        .get(format!("{}/admin/v1/targets", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}
