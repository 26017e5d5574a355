//! Test support: a real Muster server on `127.0.0.1:0` over a fresh SQLite
//! file in a temporary directory, with an admin token and a small HTTP client.
//!
//! Used as a dev-dependency only; tests talk real HTTP to a real server.

#![allow(
    clippy::expect_used,
    reason = "test support: a failed set-up step must fail the test loudly"
)]

use std::sync::Arc;

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_server::{AppState, ServerConfig};
use muster_store::sqlite::{SqliteOptions, SqliteStore};
use muster_store::{Store, TenantId, TokenRecord};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A running server and a client for it.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// `http://127.0.0.1:PORT/scim/v2`.
    pub base_url: String,
    /// A token with every scope.
    pub token: String,
    /// The store behind the server, for minting more tokens.
    pub store: Arc<SqliteStore>,
    /// The HTTP client.
    pub http: reqwest::Client,
    data_dir: tempfile::TempDir,
}

/// A response: status, headers and the JSON body (`Value::Null` if none).
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The parsed body.
    pub body: Value,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub async fn start() -> TestServer {
        Self::start_with(ServerConfig::default()).await
    }

    /// Starts a server with the given configuration.
    pub async fn start_with(config: ServerConfig) -> TestServer {
        Self::start_with_store(config, SqliteOptions::default()).await
    }

    /// Starts a server with the given configuration over a store opened
    /// with `options` (for example tiny queues).
    pub async fn start_with_store(config: ServerConfig, options: SqliteOptions) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let store =
            Arc::new(SqliteStore::open_with(data_dir.path(), &options).expect("open store"));
        let token = mint_token();
        store
            .create_token(
                &TenantId::default_tenant(),
                TokenRecord {
                    name: "test-admin".to_owned(),
                    secret_hash: token.secret_hash,
                    scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into(), SCOPE_ADMIN.into()],
                    created: String::new(),
                },
            )
            .await
            .expect("create token");
        let key =
            muster_sync::secrets::SecretKey::load_or_create(data_dir.path()).expect("secrets key");
        let state = AppState::new(store.clone(), config).with_sync(
            key,
            Some(muster_sync::DEFAULT_RETENTION),
            data_dir.path().join("exports"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            muster_server::serve(listener, state, std::future::pending())
                .await
                .expect("serve");
        });
        let root = format!("http://{address}");
        TestServer {
            base_url: format!("{root}/scim/v2"),
            root,
            token: token.secret,
            store,
            http: reqwest::Client::new(),
            data_dir,
        }
    }

    /// The directory holding the database.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Mints a token with the given scopes and returns its secret.
    pub async fn token_with(&self, name: &str, scopes: &[&str]) -> String {
        let token = mint_token();
        self.store
            .create_token(
                &TenantId::default_tenant(),
                TokenRecord {
                    name: name.to_owned(),
                    secret_hash: token.secret_hash,
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    created: String::new(),
                },
            )
            .await
            .expect("create token");
        token.secret
    }

    /// Sends a request to `base_url + path` with the admin token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        self.send(request, body).await
    }

    /// Sends a request to `root + path` (for example `/admin/v1/schemas`)
    /// with `token`: for endpoints outside `/scim/v2`, or to act as another
    /// client.
    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let request = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(token);
        self.send(request, body).await
    }

    /// Sends a request to the admin API, `root + /admin/v1 + path`, with the
    /// admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.token, method, &format!("/admin/v1{path}"), body)
            .await
    }

    /// Sends a prepared request with an optional JSON body as
    /// `application/scim+json`.
    pub async fn send(&self, request: reqwest::RequestBuilder, body: Option<Value>) -> Reply {
        let request = match body {
            Some(body) => request
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
            None => request,
        };
        let response = request.send().await.expect("send request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET with the admin token.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    /// POST with the admin token.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PUT with the admin token.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// PATCH with the admin token.
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// DELETE with the admin token.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }
}
