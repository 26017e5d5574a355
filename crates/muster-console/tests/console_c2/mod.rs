//! Support for the HTTP tests of the mapping, schemas, rules and targets
//! pages, over the console's shared test support (`tests/common`: a real
//! server with the console mounted, on SQLite or PostgreSQL): a browser
//! signed in with the admin token that keeps its session cookie and sends
//! forms with their CSRF token and `Origin`.

#![allow(
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test support: a failed set-up step must fail the test loudly; each test file uses a part"
)]

use std::sync::Arc;

use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_store::{Store, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common;

/// A server with the console, and a browser signed in to it.
pub struct Console {
    /// The server.
    pub server: common::Console,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// A token of the default tenant with every scope.
    pub token: String,
    /// The store behind the server.
    pub store: Arc<dyn Store>,
    /// The session cookie's value (`None`: signed out).
    cookie: Option<String>,
    /// The session's CSRF token.
    csrf: String,
}

/// An answer: status, `Location`, body text.
pub struct Page {
    /// The status.
    pub status: StatusCode,
    /// The `Location` header.
    pub location: Option<String>,
    /// The body.
    pub text: String,
}

impl From<common::Page> for Page {
    fn from(page: common::Page) -> Self {
        Page {
            status: page.status,
            location: page.header("location").map(str::to_owned),
            text: page.text,
        }
    }
}

impl Page {
    /// Fails unless the body holds `needle`.
    pub fn expect_text(&self, needle: &str) -> &Self {
        assert!(
            self.text.contains(needle),
            "expected {needle:?} in the page ({}):\n{}",
            self.status,
            self.text
        );
        self
    }
}

/// Mints a token of `tenant` with every scope.
pub async fn token_of(store: &Arc<dyn Store>, tenant: &TenantId, name: &str) -> String {
    common::mint(
        &**store,
        tenant,
        name,
        &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN],
    )
    .await
}

impl Console {
    /// Starts a server with the console and signs in with the admin token.
    pub async fn signed_in() -> Console {
        let server = common::Console::start().await;
        let cookie = server.sign_in().await;
        let page = server.get("/admin/rules", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        Console {
            root: server.root.clone(),
            token: server.token.clone(),
            store: Arc::clone(&server.store),
            csrf: page.csrf(),
            cookie: Some(cookie),
            server,
        }
    }

    /// `GET root + path` with the session (none when signed out).
    pub async fn get(&self, path: &str) -> Page {
        self.server
            .send(Method::GET, path, self.cookie.as_deref(), None, None)
            .await
            .into()
    }

    /// `POST root + path` as the page's form would: the fields, the CSRF
    /// token and this origin.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.post_without_csrf(path, &form).await
    }

    /// `POST` without adding the CSRF token (same origin, with the session).
    pub async fn post_without_csrf(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.server
            .send(
                Method::POST,
                path,
                self.cookie.as_deref(),
                Some(&self.root),
                Some(fields),
            )
            .await
            .into()
    }

    /// A JSON call with the admin token to `root + path` (`/scim/v2/...`,
    /// `/admin/v1/...`, `/t/{tenant}/...`).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.server.api(method, path, body).await
    }

    /// [`Console::api`] with another token.
    pub async fn api_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .server
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let answer = request.send().await.expect("request");
        let status = answer.status();
        let text = answer.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a user over SCIM from `body` and returns its id.
    pub async fn create_user(&self, body: Value) -> String {
        let (status, created) = self.api(Method::POST, "/scim/v2/Users", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().expect("id").to_owned()
    }
}

/// Asserts that `path` is a console page: `200` signed in, `303` to the
/// sign-in page signed out.
pub async fn check_page_needs_a_session(console: &mut Console, path: &str, heading: &str) {
    let page = console.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
    page.expect_text(heading);
    check_unique_ids(&page.text);
    let cookie = console.cookie.take();
    let page = console.get(path).await;
    console.cookie = cookie;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{path} signed out");
    assert!(
        page.location
            .as_deref()
            .is_some_and(|location| location.starts_with("/admin/sign-in")),
        "{path} signed out goes to the sign-in page: {:?}",
        page.location
    );
}

/// Asserts that a `POST` without the CSRF token is refused with `403`.
pub async fn check_post_needs_csrf(console: &Console, path: &str, fields: &[(&str, &str)]) {
    let page = console.post_without_csrf(path, fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.text);
}

/// The text of an HTML fragment with its tags removed and entities of
/// quotes decoded, for assertions on what a cell says.
pub fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' => in_tag = false,
            other if !in_tag => text.push(other),
            _ => {}
        }
    }
    text.replace("&quot;", "\"").replace("&amp;", "&")
}

/// Fails when two elements of a page share an `id` (labels, `aria-*`
/// references and browser tests would find the wrong one).
pub fn check_unique_ids(html: &str) {
    let mut seen = std::collections::BTreeSet::new();
    for part in html.split(" id=\"").skip(1) {
        let id = part.split('"').next().unwrap_or_default();
        assert!(seen.insert(id.to_owned()), "the id {id:?} is used twice");
    }
}
