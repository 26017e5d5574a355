//! A real Muster server with the console mounted, and a browser-like
//! client: cookies by hand (so tests read their flags), no redirects
//! followed, `Origin` set on posts as a browser would.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test binary uses part of it; a failed set-up must fail loudly"
)]

use std::sync::Arc;

use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_server::{AppState, ServerConfig};
use muster_store::postgres::{PostgresOptions, PostgresStore};
use muster_store::sqlite::SqliteStore;
use muster_store::{Store, TenantId};
use muster_testkit::{on_postgres, TestDatabase};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};

/// A running server with the console.
pub struct Console {
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// An admin token of the default tenant.
    pub token: String,
    /// The store behind the server.
    pub store: Arc<dyn Store>,
    /// A client that follows no redirect.
    pub http: reqwest::Client,
    _data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// An answer: status, headers, body text.
pub struct Page {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub text: String,
}

impl Page {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of a hidden `csrf` field on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.text.find(marker).expect("a csrf field") + marker.len();
        let end = self.text[start..].find('"').expect("end of the csrf value");
        self.text[start..start + end].to_owned()
    }
}

impl Console {
    /// Starts a server on SQLite, or PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.
    pub async fn start() -> Console {
        Self::start_with(ServerConfig::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: ServerConfig) -> Console {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (store, database): (Arc<dyn Store>, _) = if on_postgres() {
            let database = TestDatabase::create().await;
            let store =
                PostgresStore::connect(&database.url, &PostgresOptions { max_connections: 8 })
                    .await
                    .expect("open the PostgreSQL store");
            (Arc::new(store), Some(database))
        } else {
            (
                Arc::new(SqliteStore::open(data_dir.path()).expect("open store")),
                None,
            )
        };
        let token = mint(
            &*store,
            &TenantId::default_tenant(),
            "console-admin",
            &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN],
        )
        .await;
        let key = muster_sync::secrets::SecretKey::load_or_create(data_dir.path()).expect("key");
        let state = AppState::new(Arc::clone(&store), config).with_sync(
            key,
            None,
            data_dir.path().join("exports"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            muster_server::serve_with(
                listener,
                state,
                muster_console::router(),
                std::future::pending(),
            )
            .await
            .expect("serve");
        });
        Console {
            root: format!("http://{address}"),
            token,
            store,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _data_dir: data_dir,
            _database: database,
        }
    }

    /// Sends a request; `cookie` is the session cookie's value.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let mut request = self.http.request(method, format!("{}{path}", self.root));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("muster_console={cookie}"));
        }
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(form) = form {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.expect("send");
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    /// GET with a session cookie.
    pub async fn get(&self, path: &str, cookie: &str) -> Page {
        self.send(Method::GET, path, Some(cookie), None, None).await
    }

    /// POST a form from this origin with a session cookie.
    pub async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
        self.send(
            Method::POST,
            path,
            Some(cookie),
            Some(&self.root.clone()),
            Some(form),
        )
        .await
    }

    /// Signs in with `token` at the console under `prefix` (`""` or
    /// `/t/{tenant}`): the sign-in answer and the session cookie's value.
    pub async fn sign_in_at(&self, prefix: &str, token: &str) -> (Page, Option<String>) {
        let page = self
            .send(
                Method::POST,
                &format!("{prefix}/admin/sign-in"),
                None,
                Some(&self.root.clone()),
                Some(&[("token", token)]),
            )
            .await;
        let cookie = session_cookie(&page);
        (page, cookie)
    }

    /// Signs in with the admin token: the session cookie's value.
    pub async fn sign_in(&self) -> String {
        let (page, cookie) = self.sign_in_at("", &self.token.clone()).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        cookie.expect("a session cookie")
    }

    /// A call to the JSON admin API or SCIM with a bearer token.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Creates a user over SCIM; returns its id.
    pub async fn create_user(&self, prefix_token: Option<(&str, &str)>, user_name: &str) -> String {
        let (prefix, token) = prefix_token.unwrap_or(("", &self.token));
        let response = self
            .http
            .post(format!("{}{prefix}/scim/v2/Users", self.root))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "displayName": format!("{user_name} display"),
                    "emails": [{"value": user_name, "primary": true}],
                    "active": true,
                })
                .to_string(),
            )
            .send()
            .await
            .expect("create user");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }
}

/// Stores a bearer token with `scopes` in `tenant`; returns its secret.
pub use muster_testkit::mint_token_in as mint;

/// The session cookie a response sets, if any (its value).
pub fn session_cookie(page: &Page) -> Option<String> {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("muster_console="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| !v.is_empty())
}

/// The `Set-Cookie` header of the session cookie.
pub fn set_cookie(page: &Page) -> String {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("muster_console="))
        .unwrap_or_default()
        .to_owned()
}
