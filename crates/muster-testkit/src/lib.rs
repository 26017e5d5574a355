//! Test support: a real Muster server on `127.0.0.1:0` over a fresh SQLite
//! file in a temporary directory, with an admin token and a small HTTP client.
//! With `MUSTER_TEST_BACKEND=postgres`, each server runs on a fresh
//! PostgreSQL database instead (created on the server `MUSTER_TEST_POSTGRES`
//! names, default `postgres://postgres@127.0.0.1:5432/postgres`, and dropped
//! with the server), so the same HTTP tests run on both backends.
//!
//! Used as a dev-dependency only; tests talk real HTTP to a real server.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed set-up step must fail the test loudly"
)]

use std::sync::Arc;

use muster_core::tokens::{mint_token, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_server::{AppState, ServerConfig};
use muster_store::postgres::{PostgresOptions, PostgresStore};
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
    pub store: Arc<dyn Store>,
    /// The HTTP client.
    pub http: reqwest::Client,
    data_dir: tempfile::TempDir,
    /// The PostgreSQL database the server runs on, when it does.
    database: Option<TestDatabase>,
}

/// The maintenance database of the PostgreSQL server tests use.
pub fn postgres_maintenance_url() -> String {
    std::env::var("MUSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether test servers run on PostgreSQL (`MUSTER_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("MUSTER_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

/// A fresh PostgreSQL database of one test, dropped (with whatever is still
/// connected to it) when the value is.
pub struct TestDatabase {
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses. A server
    /// that cannot be reached fails the test: it never skips.
    pub async fn create() -> TestDatabase {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "muster_http_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let maintenance = postgres_maintenance_url();
        run_on_maintenance(&maintenance, &format!("DROP DATABASE IF EXISTS {name}")).await;
        run_on_maintenance(&maintenance, &format!("CREATE DATABASE {name}")).await;
        let root = maintenance
            .rsplit_once('/')
            .map_or(maintenance.as_str(), |(root, _)| root);
        TestDatabase {
            url: format!("{root}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any runtime guarantee: a thread of its own with
        // a runtime of its own.
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(run_on_maintenance(&postgres_maintenance_url(), &statement));
        });
        let _ = dropping.join();
    }
}

/// Runs one statement on the maintenance database.
async fn run_on_maintenance(url: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!("PostgreSQL at {url} is needed by this test and cannot be reached: {error}")
        });
    let connection = tokio::spawn(connection);
    client
        .batch_execute(statement)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
    drop(client);
    let _ = connection.await;
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

    /// Starts a server with the given configuration, on SQLite or, with
    /// `MUSTER_TEST_BACKEND=postgres`, on a fresh PostgreSQL database.
    pub async fn start_with(config: ServerConfig) -> TestServer {
        if !on_postgres() {
            return Self::start_with_store(config, SqliteOptions::default()).await;
        }
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let database = TestDatabase::create().await;
        let options = PostgresOptions { max_connections: 8 };
        let store: Arc<dyn Store> = Arc::new(
            PostgresStore::connect(&database.url, &options)
                .await
                .expect("open the PostgreSQL store"),
        );
        Self::start_on(config, store, data_dir, Some(database)).await
    }

    /// Starts a server with the given configuration over a SQLite store
    /// opened with `options` (for example tiny queues), whatever
    /// `MUSTER_TEST_BACKEND` says.
    pub async fn start_with_store(config: ServerConfig, options: SqliteOptions) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open_with(data_dir.path(), &options).expect("open store"));
        Self::start_on(config, store, data_dir, None).await
    }

    /// Starts a server over `store`, with an admin token.
    async fn start_on(
        config: ServerConfig,
        store: Arc<dyn Store>,
        data_dir: tempfile::TempDir,
        database: Option<TestDatabase>,
    ) -> TestServer {
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
            database,
        }
    }

    /// The PostgreSQL database the server runs on, if it does.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// Starts a server on SQLite whatever `MUSTER_TEST_BACKEND` says: for
    /// tests that read or edit the database file itself.
    pub async fn start_sqlite() -> TestServer {
        Self::start_with_store(ServerConfig::default(), SqliteOptions::default()).await
    }

    /// Everything the store holds, as text: the bytes of the SQLite files
    /// (the database, its WAL and shared memory), or every row of every
    /// table of the PostgreSQL database as JSON. For checks that a value
    /// (a secret, a password) is stored nowhere.
    pub async fn stored_text(&self) -> String {
        let Some(database) = &self.database else {
            let mut text = String::new();
            for file in ["muster.db", "muster.db-wal", "muster.db-shm"] {
                if let Ok(bytes) = std::fs::read(self.data_dir().join(file)) {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            return text;
        };
        let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        let tables = client
            .query(
                "SELECT quote_ident(table_name) FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                &[],
            )
            .await
            .expect("list tables");
        let mut text = String::new();
        for table in tables {
            let name: String = table.get(0);
            let rows = client
                .query(
                    &format!("SELECT row_to_json(t)::text FROM {name} AS t"),
                    &[],
                )
                .await
                .expect("read a table");
            for row in rows {
                text.push_str(row.get::<_, &str>(0));
                text.push('\n');
            }
        }
        text
    }

    /// The directory holding the database.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Mints a token with the given scopes and returns its secret.
    pub async fn token_with(&self, name: &str, scopes: &[&str]) -> String {
        self.token_in(&TenantId::default_tenant(), name, scopes)
            .await
    }

    /// Mints a token of `tenant` with the given scopes and returns its
    /// secret.
    pub async fn token_in(&self, tenant: &TenantId, name: &str, scopes: &[&str]) -> String {
        mint_token_in(&*self.store, tenant, name, scopes).await
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

/// Stores a bearer token with `scopes` in `tenant` of `store`; returns its
/// secret.
pub async fn mint_token_in(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    scopes: &[&str],
) -> String {
    let token = mint_token();
    store
        .create_token(
            tenant,
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
