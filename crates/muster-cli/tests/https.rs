//! `muster serve --tls-cert --tls-key`: HTTPS with HTTP/1.1 and HTTP/2
//! (ALPN), locations under `https://`, a renewed certificate served without
//! a restart, refusals of incomplete or unusable TLS settings, and the
//! warning of plain HTTP beyond loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{create_token, muster, run, user_body, Server};
use reqwest::{StatusCode, Version};

/// A self-signed certificate for `127.0.0.1` and `localhost`: (certificate
/// PEM, key PEM, certificate DER).
fn certificate() -> (String, String, Vec<u8>) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().to_vec(),
    )
}

/// A client trusting `roots` (PEM), each connection new (no pool), that
/// reports the certificate the server presented; HTTP/1.1 only if asked.
fn client(roots: &[&str], http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    for root in roots {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap());
    }
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// The DER certificate a response's connection presented.
fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS connection")
        .to_vec()
}

/// `muster serve` over HTTPS; its base URL, read from its first line.
struct HttpsServer {
    child: Child,
    base_url: String,
    log: std::path::PathBuf,
    _log_dir: tempfile::TempDir,
}

impl HttpsServer {
    fn start(data_dir: &Path, cert: &Path, key: &Path) -> HttpsServer {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("server.log");
        let mut child = muster()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let base_url = first_line
            .split_whitespace()
            .find(|word| word.starts_with("https://"))
            .unwrap_or_else(|| {
                panic!(
                    "no https URL in {first_line:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        HttpsServer {
            child,
            base_url,
            log,
            _log_dir: log_dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn https_speaks_http1_and_http2_and_serves_a_renewed_certificate_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (first_cert, first_key, first_der) = certificate();
    let (second_cert, second_key, second_der) = certificate();
    std::fs::write(&cert_path, &first_cert).unwrap();
    std::fs::write(&key_path, &first_key).unwrap();
    let token = create_token(&data, "writer", &["scim.write"]);
    let server = HttpsServer::start(&data, &cert_path, &key_path);
    assert!(server.base_url.ends_with("/scim/v2"), "{}", server.base_url);

    for (http1_only, version) in [(true, Version::HTTP_11), (false, Version::HTTP_2)] {
        let response = client(&[&first_cert], http1_only)
            .get(format!("{}/Users", server.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{version:?}");
        assert_eq!(response.version(), version, "ALPN must offer {version:?}");
        assert_eq!(peer_certificate(&response), first_der);
    }

    // Without --public-url, locations name the listen address over https.
    let created = client(&[&first_cert], false)
        .post(format!("{}/Users", server.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user_body("tls.user@example.com", 0).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/Users/", server.base_url)),
        "{location}"
    );

    // A renewal writes the key, then the certificate (a moment where the
    // pair does not match), as certbot and friends do.
    std::fs::write(&key_path, &second_key).unwrap();
    std::fs::write(&cert_path, &second_cert).unwrap();
    let both = client(&[&first_cert, &second_cert], false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = both
            .get(format!("{}/Users", server.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        if peer_certificate(&response) == second_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        server.log().contains("reloaded the TLS certificate"),
        "{}",
        server.log()
    );
    // Only the new certificate is trusted now: still served.
    let renewed = client(&[&second_cert], false)
        .get(format!("{}/Users", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
}

#[test]
fn incomplete_or_unusable_tls_settings_are_refused_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let (_, other_key, _) = certificate();
    let other_key_path = dir.path().join("other-key.pem");
    std::fs::write(&other_key_path, other_key).unwrap();
    let data = dir.path().join("data");

    let check = |args: &[&std::ffi::OsStr], expected: &str| {
        let output = run(muster()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(args));
        assert!(!output.status.success(), "{output}");
        assert!(output.stderr.contains(expected), "{expected}: {output}");
    };
    check(
        &["--tls-cert".as_ref(), cert_path.as_os_str()],
        "--tls-cert needs --tls-key",
    );
    check(
        &["--tls-key".as_ref(), key_path.as_os_str()],
        "--tls-key needs --tls-cert",
    );
    check(
        &[
            "--tls-cert".as_ref(),
            key_path.as_os_str(),
            "--tls-key".as_ref(),
            key_path.as_os_str(),
        ],
        "must hold a PEM certificate chain and its private key",
    );
    check(
        &[
            "--tls-cert".as_ref(),
            cert_path.as_os_str(),
            "--tls-key".as_ref(),
            other_key_path.as_os_str(),
        ],
        "must hold a PEM certificate chain and its private key",
    );
    check(
        &[
            "--tls-cert".as_ref(),
            dir.path().join("missing.pem").as_os_str(),
            "--tls-key".as_ref(),
            key_path.as_os_str(),
        ],
        "reading --tls-cert",
    );
}

#[tokio::test]
async fn plain_http_beyond_loopback_is_warned_about() {
    const WARNING: &str = "serving plain HTTP beyond loopback";
    let dir = tempfile::tempdir().unwrap();
    let loopback = Server::start(dir.path());
    let everywhere = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path().join("other"));
    });
    // Behind a TLS proxy the warning stays, about the hop to the proxy.
    let proxied = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "0.0.0.0:0"])
            .args(["--trust-proxy-headers", "--data-dir"])
            .arg(dir.path().join("proxied"));
    });
    assert!(everywhere.log().contains(WARNING), "{}", everywhere.log());
    assert!(!loopback.log().contains(WARNING), "{}", loopback.log());
    assert!(
        proxied.log().contains(WARNING) && proxied.log().contains("behind a TLS proxy"),
        "{}",
        proxied.log()
    );
}
