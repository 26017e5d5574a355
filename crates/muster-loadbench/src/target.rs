//! A SCIM server under test: its base URL, bearer token, process id, and
//! one pooled HTTP client to reach it; for Muster, also its admin API.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method, StatusCode, Url};

/// The SCIM media type (RFC 7644 section 3.1).
const SCIM_JSON: &str = "application/scim+json";

/// Longest part of an error body quoted in a message.
const ERROR_EXCERPT: usize = 160;

/// The end of a Muster SCIM base URL (issue 4: `http://HOST:PORT/scim/v2`).
const MUSTER_SCIM_SUFFIX: &str = "/scim/v2";

/// Where Muster's admin API sits beside `/scim/v2`.
const MUSTER_ADMIN_SUFFIX: &str = "/admin/v1";

/// The parts of a ListResponse that [`Reply::expect_single`] checks.
#[derive(serde::Deserialize)]
struct ListIds {
    #[serde(rename = "totalResults")]
    total_results: Option<u64>,
    #[serde(rename = "Resources", default)]
    resources: Vec<IdOnly>,
}

/// The id of a resource in a ListResponse.
#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// One server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Short name shown in the tables.
    pub name: String,
    /// SCIM base URL without a trailing slash, e.g. `http://127.0.0.1:8080/scim/v2`.
    pub base: String,
    /// Server process id, for RSS figures.
    pub pid: Option<u32>,
    /// Muster's admin API base URL (e.g. `http://127.0.0.1:8080/admin/v1`),
    /// when the target is known to be Muster; `None` for other servers.
    admin_base: Option<String>,
    /// The pooled client; cheap to clone.
    client: Client,
}

/// A response: status and whole body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// `Ok(body length)` when the status is one of `expected`, else a short
    /// message naming the status and the start of the body.
    pub fn expect(&self, expected: &[StatusCode]) -> std::result::Result<usize, String> {
        if expected.contains(&self.status) {
            Ok(self.body.len())
        } else {
            Err(self.describe())
        }
    }

    /// The status and the start of the body, for messages.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let excerpt: String = text.chars().take(ERROR_EXCERPT).collect();
        format!("HTTP {}: {}", self.status.as_u16(), excerpt.trim())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("response is not JSON ({})", self.describe()))
    }

    /// `Ok(body length)` when this is a `200` ListResponse holding exactly
    /// one resource, `id`, and saying so in `totalResults`; else a message
    /// naming what came back.
    pub fn expect_single(&self, id: &str) -> std::result::Result<usize, String> {
        let size = self.expect(&[StatusCode::OK])?;
        // Only the total and the ids are read (serde skips the rest without
        // building it): the client shares the machine with the server, and
        // parsing whole resources would take CPU time from the measurement.
        let answer: ListIds = serde_json::from_slice(&self.body)
            .map_err(|e| format!("filter answer is not a ListResponse: {e}"))?;
        let total = answer.total_results;
        let ids: Vec<&str> = answer
            .resources
            .iter()
            .filter_map(|resource| resource.id.as_deref())
            .collect();
        if total == Some(1) && ids == [id] {
            Ok(size)
        } else {
            Err(format!(
                "filter returned totalResults {total:?} and {} resources (expected exactly {id})",
                ids.len()
            ))
        }
    }
}

/// The admin API base URL of a Muster whose SCIM base URL is `scim_base`
/// (`.../scim/v2` gives `.../admin/v1`); `None` for any other URL, which is
/// taken to be another SCIM server.
pub fn muster_admin_base(scim_base: &str) -> Option<String> {
    scim_base
        .trim_end_matches('/')
        .strip_suffix(MUSTER_SCIM_SUFFIX)
        .map(|root| format!("{root}{MUSTER_ADMIN_SUFFIX}"))
}

impl Target {
    /// A target at `base` (must be a loopback http URL). The client keeps up
    /// to `pool` idle connections so `pool` concurrent tasks reuse them.
    pub fn new(
        name: &str,
        base: &str,
        token: Option<&str>,
        pid: Option<u32>,
        pool: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        ensure_loopback(&base)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(SCIM_JSON));
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = Client::builder()
            .default_headers(headers)
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        Ok(Target {
            name: name.to_owned(),
            base,
            pid,
            admin_base: None,
            client,
        })
    }

    /// The same target, with Muster's admin API at `admin_base` (a loopback
    /// http URL such as `http://127.0.0.1:8080/admin/v1`), or without one.
    pub fn with_admin(mut self, admin_base: Option<String>) -> Result<Self> {
        if let Some(admin) = &admin_base {
            ensure_loopback(admin)?;
        }
        self.admin_base = admin_base.map(|a| a.trim_end_matches('/').to_owned());
        Ok(self)
    }

    /// Whether the target has Muster's admin API.
    pub fn has_admin(&self) -> bool {
        self.admin_base.is_some()
    }

    /// PUT `body` to `admin base + path` (Muster's admin API).
    pub async fn admin_put(&self, path: &str, body: Bytes) -> std::result::Result<Reply, String> {
        let Some(admin) = &self.admin_base else {
            return Err(format!("{} has no admin API", self.name));
        };
        self.send_to(Method::PUT, format!("{admin}{path}"), Some(body))
            .await
    }

    /// Sends `method` to `base + path` (path starts with `/`, may carry a
    /// query) with an optional SCIM JSON body, and reads the whole response.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> std::result::Result<Reply, String> {
        self.send_to(method, format!("{}{}", self.base, path), body)
            .await
    }

    /// Sends `method` to the absolute `url` with an optional SCIM JSON body,
    /// and reads the whole response.
    async fn send_to(
        &self,
        method: Method,
        url: String,
        body: Option<Bytes>,
    ) -> std::result::Result<Reply, String> {
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))
                .body(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        Ok(Reply { status, body })
    }

    /// Waits until the server answers `GET /ServiceProviderConfig` with any
    /// HTTP status (so an auth error still counts as up), for at most
    /// `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            match self.get("/ServiceProviderConfig").await {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() > timeout => {
                    bail!(
                        "{} ({}) did not answer within {timeout:?}: {e}",
                        self.name,
                        self.base
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> std::result::Result<Reply, String> {
        self.send(Method::GET, path, None).await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: Bytes) -> std::result::Result<Reply, String> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// PATCH `path` with `body`.
    pub async fn patch(&self, path: &str, body: Bytes) -> std::result::Result<Reply, String> {
        self.send(Method::PATCH, path, Some(body)).await
    }
}

/// A short description of a transport error, with its cause chain.
fn transport_error(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timeout".to_owned()
    } else if error.is_connect() {
        "connect error".to_owned()
    } else {
        "transport error".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    message
}

/// Refuses any URL that is not plain http on a loopback address: the
/// benchmark only ever loads servers on this machine.
pub fn ensure_loopback(base: &str) -> Result<()> {
    let url = Url::parse(base).with_context(|| format!("{base:?} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("{base}: only http:// loopback URLs are allowed");
    }
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{base}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, allowed: bool) {
        assert_eq!(ensure_loopback(url).is_ok(), allowed, "{url}");
    }

    #[test]
    fn only_loopback_is_allowed() {
        for (url, allowed) in [
            ("http://127.0.0.1:8080/scim/v2", true),
            ("http://127.1.2.3:9/v2", true),
            ("http://localhost:8080", true),
            ("http://[::1]:8080/scim/v2", true),
            ("http://10.0.0.1:8080/scim/v2", false),
            ("http://example.com/scim/v2", false),
            ("https://127.0.0.1:8080/scim/v2", false),
            ("not a url", false),
        ] {
            check(url, allowed);
        }
    }

    #[test]
    fn admin_base_is_derived_only_from_muster_urls() {
        for (scim, admin) in [
            (
                "http://127.0.0.1:8080/scim/v2",
                Some("http://127.0.0.1:8080/admin/v1"),
            ),
            (
                "http://127.0.0.1:8080/scim/v2/",
                Some("http://127.0.0.1:8080/admin/v1"),
            ),
            ("http://127.0.0.1:9000/v2", None),
        ] {
            assert_eq!(muster_admin_base(scim).as_deref(), admin, "{scim}");
        }
    }

    fn reply(status: StatusCode, body: &str) -> Reply {
        Reply {
            status,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn expect_single_wants_exactly_that_resource() {
        let one = r#"{"totalResults":1,"Resources":[{"id":"a"}]}"#;
        let two = r#"{"totalResults":2,"Resources":[{"id":"a"},{"id":"b"}]}"#;
        let none = r#"{"totalResults":0,"Resources":[]}"#;
        for (status, body, id, ok) in [
            (StatusCode::OK, one, "a", true),
            (StatusCode::OK, one, "b", false),
            (StatusCode::OK, two, "a", false),
            (StatusCode::OK, none, "a", false),
            (StatusCode::OK, "not json", "a", false),
            (StatusCode::BAD_REQUEST, one, "a", false),
        ] {
            assert_eq!(
                reply(status, body).expect_single(id).is_ok(),
                ok,
                "{body} {id}"
            );
        }
    }
}
