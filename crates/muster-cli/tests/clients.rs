//! `muster client create|list|rotate|revoke` as an operator runs them,
//! against a running `muster serve` (another process: what a replica sees):
//! the secret printed once and never listed nor stored in clear, rotation
//! with a grace, revocation effective within a second; and the `--match`
//! and `--rate-limit` options of `muster token create`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{contains_bytes, create_token, files_under, muster, run, Server};
use reqwest::StatusCode;

fn cli(data_dir: &Path, args: &[&str]) -> common::Output {
    let mut command = muster();
    command.args(args).arg("--data-dir").arg(data_dir);
    run(&mut command)
}

/// The `client_id` and `client_secret` lines `client create` printed.
fn created(output: &common::Output) -> (String, String) {
    assert!(output.status.success(), "client create failed: {output}");
    let field = |name: &str| {
        output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {output}"))
            .to_owned()
    };
    (field("client_id"), field("client_secret"))
}

fn stored_anywhere(data_dir: &Path, secret: &str) -> bool {
    files_under(data_dir)
        .iter()
        .any(|file| contains_bytes(&std::fs::read(file).unwrap_or_default(), secret.as_bytes()))
}

async fn token_status(server: &Server, id: &str, secret: &str) -> (StatusCode, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", server.root))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["access_token"].as_str().map(str::to_owned))
}

async fn users_status(server: &Server, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn clients_are_created_listed_rotated_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let output = cli(
        &data_dir,
        &[
            "client",
            "create",
            "--name",
            "okta",
            "--scope",
            "scim.read",
            "--scope",
            "scim.write",
            "--match",
            "externalId,userName",
            "--rate-limit",
            "50",
        ],
    );
    let (id, secret) = created(&output);
    assert!(
        id.starts_with("mcl_") && secret.starts_with("mcs_"),
        "{output}"
    );
    assert!(!output.stderr.contains(&secret));

    let listing = cli(&data_dir, &["client", "list"]);
    assert!(listing.status.success(), "{listing}");
    let line = listing
        .stdout
        .lines()
        .find(|line| line.starts_with("okta\t"))
        .unwrap_or_else(|| panic!("okta not listed: {listing}"));
    assert!(line.contains(&id), "{line}");
    assert!(line.contains("scim.read,scim.write"), "{line}");
    assert!(line.contains("match=externalId,userName"), "{line}");
    assert!(line.contains("rate-limit=50/s"), "{line}");
    assert!(!listing.stdout.contains(&secret), "list shows a secret");
    assert!(
        !stored_anywhere(&data_dir, &secret),
        "the secret is stored in clear"
    );

    // Refusals: a taken name, an unknown scope, a bad option.
    for (args, expected) in [
        (vec!["client", "create", "--name", "okta"], "already exists"),
        (
            vec!["client", "create", "--name", "x", "--scope", "root"],
            "unknown scope",
        ),
        (
            vec!["client", "create", "--name", "x", "--rate-limit", "fast"],
            "rate limit",
        ),
        (
            vec!["client", "create", "--name", "x", "--match", "phone"],
            "phone",
        ),
        (vec!["client", "rotate", "nobody"], "nobody"),
        (
            vec!["client", "rotate", "okta", "--grace", "soon"],
            "--grace",
        ),
        // A grace is at most 30 days (a refused rotation changes nothing:
        // the first secret still gets a token below).
        (
            vec!["client", "rotate", "okta", "--grace", "99999d"],
            "at most 30 days",
        ),
        (
            vec!["client", "rotate", "okta", "--grace", "721h"],
            "at most 30 days",
        ),
        (vec!["client", "revoke", "nobody"], "nobody"),
    ] {
        let refused = cli(&data_dir, &args);
        assert!(!refused.status.success(), "{args:?} succeeded: {refused}");
        assert!(refused.stderr.contains(expected), "{args:?}: {refused}");
    }

    let server = Server::start(&data_dir);
    let (status, token) = token_status(&server, &id, &secret).await;
    assert_eq!(status, StatusCode::OK);
    let token = token.unwrap();
    assert_eq!(users_status(&server, &token).await, StatusCode::OK);

    // Rotation with a grace (30 days, the most): the new secret alone on
    // stdout; both work.
    let rotated = cli(&data_dir, &["client", "rotate", "okta", "--grace", "30d"]);
    assert!(rotated.status.success(), "{rotated}");
    let new_secret = rotated.stdout.trim_end().to_owned();
    assert!(
        new_secret.starts_with("mcs_") && !new_secret.contains('\n'),
        "{rotated}"
    );
    assert_eq!(token_status(&server, &id, &secret).await.0, StatusCode::OK);
    assert_eq!(
        token_status(&server, &id, &new_secret).await.0,
        StatusCode::OK
    );
    assert!(cli(&data_dir, &["client", "list"])
        .stdout
        .contains("previous secret valid"));
    // Without a grace, the previous secret stops at once, and so, within
    // a second, do the access tokens issued before (perhaps with a leaked
    // secret).
    assert_eq!(users_status(&server, &token).await, StatusCode::OK);
    let rotated = cli(&data_dir, &["client", "rotate", "okta", "--grace", "0s"]);
    assert!(rotated.status.success(), "{rotated}");
    assert!(rotated.stderr.contains("access tokens"), "{rotated}");
    let at = Instant::now();
    let newest = rotated.stdout.trim_end().to_owned();
    assert_eq!(
        token_status(&server, &id, &new_secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    while users_status(&server, &token).await != StatusCode::UNAUTHORIZED {
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "a token of the old secret still accepted a second after the rotation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, token) = token_status(&server, &id, &newest).await;
    assert_eq!(status, StatusCode::OK);
    let token = token.unwrap();
    for secret in [&secret, &new_secret, &newest] {
        assert!(
            !stored_anywhere(&data_dir, secret),
            "a secret is stored in clear"
        );
    }

    // Revocation by another process: the running server refuses the
    // client's access token within a second.
    assert_eq!(users_status(&server, &token).await, StatusCode::OK);
    let revoked = cli(&data_dir, &["client", "revoke", "okta"]);
    assert!(revoked.status.success(), "{revoked}");
    let at = Instant::now();
    while users_status(&server, &token).await != StatusCode::UNAUTHORIZED {
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "still accepted after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!cli(&data_dir, &["client", "list"]).stdout.contains("okta"));
}

#[tokio::test]
async fn tokens_take_a_matching_policy_and_a_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let _ = create_token(&data_dir, "plain", &["scim.read"]);
    let created = cli(
        &data_dir,
        &[
            "token",
            "create",
            "--name",
            "bench",
            "--rate-limit",
            "off",
            "--match",
            "emails",
        ],
    );
    assert!(created.status.success(), "{created}");
    let refused = cli(
        &data_dir,
        &["token", "create", "--name", "x", "--rate-limit", "-5"],
    );
    assert!(!refused.status.success(), "{refused}");
    assert!(
        !cli(&data_dir, &["token", "list"]).stdout.contains("\tx\t"),
        "a refused token must not be created"
    );
    let listing = cli(&data_dir, &["token", "list"]).stdout;
    let line = |name: &str| {
        listing
            .lines()
            .find(|line| line.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not listed: {listing}"))
            .to_owned()
    };
    assert!(
        line("bench").ends_with("\tmatch=emails\trate-limit=off"),
        "{listing}"
    );
    assert!(
        line("plain").ends_with("\tmatch=none\trate-limit=default"),
        "{listing}"
    );
    // A limit of 1 a second: the second request at once is refused.
    let limited = cli(
        &data_dir,
        &["token", "create", "--name", "slow", "--rate-limit", "1"],
    );
    assert!(limited.status.success(), "{limited}");
    let slow = limited.stdout.trim_end().to_owned();
    let server = Server::start(&data_dir);
    assert_eq!(users_status(&server, &slow).await, StatusCode::OK);
    let response = reqwest::Client::new()
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(&slow)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // Unlimited: never refused.
    let bench = created.stdout.trim_end().to_owned();
    for _ in 0..20 {
        assert_eq!(users_status(&server, &bench).await, StatusCode::OK);
    }
}
