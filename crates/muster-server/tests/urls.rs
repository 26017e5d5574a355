//! The URLs Muster names itself by (issue 9, "Errors and URLs"), over HTTP
//! against a real server on a real SQLite file: `Location`, `meta.location`
//! and `$ref`s come from the configured public URL; `Forwarded` /
//! `X-Forwarded-*` only when the proxy is trusted; otherwise the listen
//! address. A forged `Host` header is never used and never stored.
//!
//! The forged requests are written on a raw TCP connection, so the `Host`
//! header (and an absolute-form request target) reach the server exactly as
//! an attacker would send them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

use std::io::{Read, Write};

use muster_server::ServerConfig;
use muster_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true})
}

/// A response read off a raw connection.
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&bytes[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

/// Sends one HTTP/1.1 request on a fresh TCP connection with exactly the
/// given request target and headers (no `Host` is added), and reads the
/// answer.
async fn raw(
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> RawReply {
    let address = server.root.trim_start_matches("http://").to_owned();
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Authorization: Bearer {}\r\n", server.token));
    request.push_str("Connection: close\r\n");
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() {
        request.push_str("Content-Type: application/scim+json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let bytes = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    })
    .await
    .unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    RawReply {
        status,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// Every file of the data directory (database, WAL, shared memory), as
/// lower-cased bytes, concatenated.
fn stored_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap().to_ascii_lowercase());
        }
    }
    assert!(!all.is_empty());
    all
}

fn stored_contains(server: &TestServer, needle: &str) -> bool {
    let needle = needle.to_ascii_lowercase();
    stored_bytes(server)
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Creates a user with extra request headers through the normal client.
async fn create_with_headers(
    server: &TestServer,
    user_name: &str,
    headers: &[(&str, &str)],
) -> (String, String, Value) {
    let mut request = server
        .http
        .post(format!("{}/Users", server.base_url))
        .bearer_auth(&server.token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = server.send(request, Some(user(user_name))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let location = reply.header("location").unwrap().to_owned();
    assert_eq!(
        reply.body["meta"]["location"],
        location.as_str(),
        "{}",
        reply.body
    );
    (id, location, reply.body)
}

#[tokio::test]
async fn the_public_url_names_every_location() {
    for (public_url, base) in [
        (
            "https://muster.example.com",
            "https://muster.example.com/scim/v2",
        ),
        (
            "https://muster.example.com/",
            "https://muster.example.com/scim/v2",
        ),
        (
            "https://idm.example.com/muster",
            "https://idm.example.com/muster/scim/v2",
        ),
    ] {
        let server = TestServer::start_with(ServerConfig {
            public_url: Some(public_url.to_owned()),
            // Even a trusted proxy does not override the configured URL.
            trust_proxy_headers: true,
            ..ServerConfig::default()
        })
        .await;
        let (id, location, created) = create_with_headers(
            &server,
            "ann@x.test",
            &[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "proxy.example"),
            ],
        )
        .await;
        assert_eq!(location, format!("{base}/Users/{id}"), "{public_url}");
        assert!(!created.to_string().contains("proxy.example"), "{created}");

        let read = server.get(&format!("/Users/{id}")).await;
        assert_eq!(read.body["meta"]["location"], format!("{base}/Users/{id}"));
        let list = server.get("/Users").await;
        assert_eq!(
            list.body["Resources"][0]["meta"]["location"],
            format!("{base}/Users/{id}")
        );

        let group = server
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "Team", "members": [{"value": id}]}),
            )
            .await;
        assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
        let group_id = group.body["id"].as_str().unwrap();
        assert_eq!(
            group.header("location").unwrap(),
            format!("{base}/Groups/{group_id}")
        );
        assert_eq!(
            group.body["members"][0]["$ref"],
            format!("{base}/Users/{id}")
        );
        let member = server.get(&format!("/Users/{id}")).await;
        assert_eq!(
            member.body["groups"][0]["$ref"],
            format!("{base}/Groups/{group_id}")
        );

        let bulk = server
            .post(
                "/Bulk",
                json!({"schemas": [BULK_REQUEST], "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user("bulk@x.test")}]}),
            )
            .await;
        let bulk_location = bulk.body["Operations"][0]["location"].as_str().unwrap();
        assert!(
            bulk_location.starts_with(&format!("{base}/Users/")),
            "{bulk_location}"
        );

        let config = server.get("/ServiceProviderConfig").await;
        assert_eq!(
            config.body["meta"]["location"],
            format!("{base}/ServiceProviderConfig")
        );
        let schema = server.get(&format!("/Schemas/{USER}")).await;
        assert_eq!(
            schema.body["meta"]["location"],
            format!("{base}/Schemas/{USER}")
        );
    }
}

#[tokio::test]
async fn without_a_public_url_the_listen_address_is_used() {
    let server = TestServer::start().await;
    let (id, location, _) = create_with_headers(&server, "plain@x.test", &[]).await;
    assert!(
        server.root.starts_with("http://127.0.0.1:"),
        "{}",
        server.root
    );
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", server.root));
    let config = server.get("/ServiceProviderConfig").await;
    assert_eq!(
        config.body["meta"]["location"],
        format!("{}/scim/v2/ServiceProviderConfig", server.root)
    );
}

#[tokio::test]
async fn a_forged_host_is_never_used_nor_stored() {
    let server = TestServer::start().await;
    let listen = server.root.trim_start_matches("http://").to_owned();
    let base = format!("{}/scim/v2", server.root);
    let evil = [("Host", "evil.example")];

    // POST, with the forged Host and with an absolute-form target.
    let created = raw(
        &server,
        "POST",
        "/scim/v2/Users",
        &evil,
        Some(&user("host1@x.test")),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("{base}/Users/{id}").as_str())
    );
    assert_eq!(
        created.body["meta"]["location"],
        format!("{base}/Users/{id}")
    );
    let absolute = raw(
        &server,
        "POST",
        "http://evil2.example/scim/v2/Users",
        &[("Host", "evil2.example")],
        Some(&user("host2@x.test")),
    )
    .await;
    assert_eq!(absolute.status, 201, "{}", absolute.body);
    let id2 = absolute.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        absolute.header("location"),
        Some(format!("{base}/Users/{id2}").as_str())
    );

    // PUT, PATCH, a group with members, Bulk and a search with the forged
    // Host: nothing names it.
    let mut replacement = user("host1@x.test");
    replacement["displayName"] = json!("Host One");
    let put = raw(
        &server,
        "PUT",
        &format!("/scim/v2/Users/{id}"),
        &evil,
        Some(&replacement),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let patch = raw(
        &server,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        &evil,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Agent"}]})),
    )
    .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    let group = raw(
        &server,
        "POST",
        "/scim/v2/Groups",
        &evil,
        Some(&json!({"schemas": [GROUP], "displayName": "Hosts",
                     "members": [{"value": id}, {"value": id2}]})),
    )
    .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let bulk = raw(
        &server,
        "POST",
        "/scim/v2/Bulk",
        &evil,
        Some(&json!({"schemas": [BULK_REQUEST], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user("host3@x.test")}]})),
    )
    .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let list = raw(&server, "GET", "/scim/v2/Users", &evil, None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    for (what, reply) in [
        ("POST", &created),
        ("POST absolute-form", &absolute),
        ("PUT", &put),
        ("PATCH", &patch),
        ("POST group", &group),
        ("Bulk", &bulk),
        ("GET list", &list),
    ] {
        let text = format!("{:?} {}", reply.headers, reply.body);
        assert!(
            !text.contains("evil"),
            "{what} names the forged host: {text}"
        );
        assert!(
            text.contains(&listen),
            "{what} does not name {listen}: {text}"
        );
    }

    // Forwarded headers are not trusted by default either.
    let forwarded = raw(
        &server,
        "POST",
        "/scim/v2/Users",
        &[
            ("Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil-xfh.example"),
            (
                "Forwarded",
                "for=192.0.2.1;proto=https;host=evil-fwd.example",
            ),
        ],
        Some(&user("host4@x.test")),
    )
    .await;
    assert_eq!(forwarded.status, 201, "{}", forwarded.body);
    let id4 = forwarded.body["id"].as_str().unwrap();
    assert_eq!(
        forwarded.header("location"),
        Some(format!("{base}/Users/{id4}").as_str())
    );

    assert!(!stored_contains(&server, "evil"), "a forged host is stored");
}

#[tokio::test]
async fn proxy_headers_are_honoured_only_when_trusted() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "scim.example.com"),
            ],
            "https://scim.example.com",
        ),
        (
            &[("Forwarded", "for=192.0.2.1;proto=https;host=fw.example.com")],
            "https://fw.example.com",
        ),
        (
            &[(
                "Forwarded",
                "for=192.0.2.1; proto=https; host=\"fw2.example.com:8443\"",
            )],
            "https://fw2.example.com:8443",
        ),
        (&[], ""),
    ];
    for trusted in [false, true] {
        let server = TestServer::start_with(ServerConfig {
            trust_proxy_headers: trusted,
            ..ServerConfig::default()
        })
        .await;
        for (n, (headers, public)) in cases.iter().enumerate() {
            let expected = if trusted && !public.is_empty() {
                (*public).to_owned()
            } else {
                server.root.clone()
            };
            let reply = raw(
                &server,
                "POST",
                "/scim/v2/Users",
                &[&[("Host", "evil.example")][..], headers].concat(),
                Some(&user(&format!("proxy{n}@x.test"))),
            )
            .await;
            assert_eq!(reply.status, 201, "{headers:?}: {}", reply.body);
            let id = reply.body["id"].as_str().unwrap();
            let want = format!("{expected}/scim/v2/Users/{id}");
            assert_eq!(
                reply.header("location"),
                Some(want.as_str()),
                "trusted {trusted}, {headers:?}"
            );
            assert_eq!(
                reply.body["meta"]["location"], want,
                "trusted {trusted}, {headers:?}"
            );
        }

        // The location is rendered for each request, never stored: read
        // without proxy headers, the same user is at the listen address.
        let (id, _, _) = create_with_headers(
            &server,
            "rendered@x.test",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "once.example.com"),
            ],
        )
        .await;
        let read = server.get(&format!("/Users/{id}")).await;
        assert_eq!(
            read.body["meta"]["location"],
            format!("{}/scim/v2/Users/{id}", server.root)
        );
        assert!(
            !stored_contains(&server, "once.example.com"),
            "trusted {trusted}"
        );
        assert!(
            !stored_contains(&server, "scim.example.com"),
            "trusted {trusted}"
        );

        // Hostile values in trusted headers never reach a URL verbatim.
        for headers in [
            [
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "a.example/<script>"),
            ],
            [
                ("X-Forwarded-Proto", "javascript"),
                ("X-Forwarded-Host", "a.example"),
            ],
            [
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "a.example\" x=\""),
            ],
            [
                ("Forwarded", "proto=https;host=\"a.example/../x\""),
                ("X-Forwarded-Host", ""),
            ],
        ] {
            let reply = raw(
                &server,
                "POST",
                "/scim/v2/Users",
                &[&[("Host", "evil.example")][..], &headers[..]].concat(),
                Some(&user(&format!("hostile{}@x.test", headers[1].1.len()))),
            )
            .await;
            assert!(
                reply.status < 500,
                "{headers:?}: {} {}",
                reply.status,
                reply.body
            );
            if reply.status == 201 {
                let location = reply.header("location").unwrap();
                assert!(
                    location.starts_with(&server.root)
                        || location.starts_with("https://a.example/scim/v2/"),
                    "{headers:?}: {location}"
                );
                assert!(
                    !location.contains(['<', '"', ' '])
                        && !location.contains("javascript")
                        && !location.contains(".."),
                    "{headers:?}: {location}"
                );
            }
        }
    }
}
