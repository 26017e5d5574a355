//! `muster-server`: the SCIM 2.0 service provider over HTTP.
//!
//! [`router`] builds the whole axum application from an [`AppState`], so tests
//! can drive it with or without a socket. Handlers stay thin: they extract
//! the path, query, headers and body, call `muster-core` (a [`Session`] of
//! the caller in its tenant), and map the result to a response. Routing,
//! authentication, scopes, the SCIM media type and status codes live here;
//! what a request means lives in `muster-core`. [`error::ApiError`] is the
//! one place errors become responses.
//!
//! Depends on `muster-core`, `muster-scim`, `muster-store` and, for the
//! sync admin API and the engine it runs, `muster-sync`; never on the CLI.
//!
//! [`Session`]: muster_core::Session

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderMap;
use axum::Router;
use muster_core::{Limits, Service};
use muster_store::{Store, TenantId};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub mod admin;
mod audit;
pub mod auth;
mod bulk;
mod discovery;
pub mod error;
mod expressions;
mod health;
mod lifecycle;
pub mod limits;
pub mod media;
mod oauth;
pub mod offboard;
mod resources;
pub mod routes;
mod rules;
mod targets;
pub mod tenants;

/// Limits and defaults the server advertises in `/ServiceProviderConfig` and
/// enforces, and how it names itself in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (`bulk.maxPayloadSize`).
    pub max_payload_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a JSON body.
    pub max_json_depth: usize,
    /// What the protocol operations enforce.
    pub limits: Limits,
    /// The URL clients reach Muster at (`--public-url`), e.g.
    /// `https://muster.example.com`; `Location` and `meta.location` are
    /// built from it. Without it: the `Forwarded` / `X-Forwarded-*` headers
    /// when `trust_proxy_headers`, else the listen address.
    pub public_url: Option<String>,
    /// Whether `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host` name
    /// the public URL (only behind a proxy that sets them).
    pub trust_proxy_headers: bool,
    /// Access token lifetime, client rate limits, request time limit.
    pub clients: limits::ClientLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_payload_bytes: 1024 * 1024,
            max_json_depth: 64,
            limits: Limits::default(),
            public_url: None,
            trust_proxy_headers: false,
            clients: limits::ClientLimits::default(),
        }
    }
}

/// What every handler shares: one reference-counted [`Shared`], so that
/// the clones each request makes (one per extractor and middleware) touch
/// one counter, not one per field (issue 15: the counters' cache lines
/// moving between the cores showed in profiles of GET by id).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state behind [`AppState`].
#[derive(Clone)]
pub struct Shared {
    /// Muster's procedures over the store.
    pub service: Arc<Service>,
    /// Limits and defaults.
    pub config: Arc<ServerConfig>,
    /// The address the server listens on (the last resort for URLs).
    listen: Option<SocketAddr>,
    /// Recently verified tokens.
    tokens: Arc<auth::TokenCache>,
    /// The sync engine and its procedures, when enabled.
    pub sync: Option<Arc<SyncHandle>>,
}

/// The sync engine of a server and the procedures of its admin API.
pub struct SyncHandle {
    /// The procedures.
    pub targets: muster_sync::Targets,
    /// The engine [`serve`] runs.
    pub engine: Arc<muster_sync::SyncEngine>,
}

impl AppState {
    /// State over a store; each tenant's schemas are read from it.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        AppState(Arc::new(Shared {
            service: Arc::new(Service::new(store, config.limits.clone())),
            config: Arc::new(config),
            listen: None,
            tokens: Arc::default(),
            sync: None,
        }))
    }

    /// Enables the sync engine (target secrets sealed with `key`; change
    /// records every target has passed pruned after `retention`, or kept
    /// with `None`; CSV targets writing only under `export_root`): its
    /// admin API answers, and [`serve`] runs its workers.
    pub fn with_sync(
        mut self,
        key: muster_sync::secrets::SecretKey,
        retention: Option<std::time::Duration>,
        export_root: std::path::PathBuf,
    ) -> Self {
        let shared = Arc::make_mut(&mut self.0);
        shared.sync = Some(Arc::new(SyncHandle {
            targets: muster_sync::Targets::new(
                Arc::clone(&shared.service),
                key.clone(),
                export_root,
            ),
            engine: muster_sync::SyncEngine::with_retention(
                Arc::clone(&shared.service),
                key,
                retention,
            ),
        }));
        self
    }

    /// The state of a server listening on `address`.
    pub fn listening_on(mut self, address: SocketAddr) -> Self {
        Arc::make_mut(&mut self.0).listen = Some(address);
        self
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.service.store()
    }

    /// The absolute SCIM base URL of `tenant` for `Location` and
    /// `meta.location`: `.../scim/v2` for the default tenant,
    /// `.../t/{tenant}/scim/v2` for any other, after the configured public
    /// URL, else the proxy's headers when trusted, else the listen address.
    /// The `Host` header alone is never trusted.
    pub fn scim_base(&self, headers: &HeaderMap, tenant: &TenantId) -> String {
        if *tenant == TenantId::default_tenant() {
            format!("{}/scim/v2", self.public_base(headers))
        } else {
            format!("{}/t/{}/scim/v2", self.public_base(headers), tenant.0)
        }
    }

    fn public_base(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        if self.config.trust_proxy_headers {
            if let Some(base) = forwarded_base(headers) {
                return base;
            }
        }
        match self.listen {
            Some(address) => format!("http://{address}"),
            None => "http://localhost".to_owned(),
        }
    }
}

/// The public scheme and host a trusted proxy names: RFC 7239 `Forwarded`
/// (`proto=`, `host=`), else `X-Forwarded-Proto` and `X-Forwarded-Host`.
fn forwarded_base(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let mut proto = None;
    let mut host = None;
    if let Some(forwarded) = header("forwarded") {
        // The first element is the one the client-facing proxy added.
        let first = forwarded.split(',').next().unwrap_or_default();
        for pair in first.split(';') {
            if let Some((key, value)) = pair.trim().split_once('=') {
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "proto" => proto = Some(value.to_owned()),
                    "host" => host = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
    }
    let proto = proto.or_else(|| {
        header("x-forwarded-proto")
            .map(|p| p.split(',').next().unwrap_or_default().trim().to_owned())
    })?;
    let host = host.or_else(|| {
        header("x-forwarded-host")
            .map(|h| h.split(',').next().unwrap_or_default().trim().to_owned())
    })?;
    let valid_proto = proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("http");
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    (valid_proto && valid_host).then(|| format!("{}://{host}", proto.to_ascii_lowercase()))
}

impl FromRef<AppState> for Arc<ServerConfig> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.config)
    }
}

/// The whole application: SCIM endpoints under `/scim/v2`, the admin API
/// under `/admin/v1`, health checks, auth and request logging; the same
/// SCIM and admin routes for each tenant under `/t/{tenant}`
/// ([`tenants::tenant_urls`]).
///
/// Every route, its scope and its handler are in the tables of [`routes`]
/// (which also give `/openapi.json`); the outer middleware authenticates.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with `pages` added: routes outside `/scim/v2` and `/admin/v1`
/// (the admin console's, `muster-console`) that authenticate themselves,
/// served at the root and under `/t/{tenant}` like the others, behind the
/// same request ids, time limit and request log.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let app = routes::build(routes::root_routes())
        .merge(pages)
        .nest("/scim/v2", routes::build(routes::scim_routes()))
        .nest("/admin/v1", routes::build(routes::admin_routes()))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_and_log,
        ))
        .layer(axum::middleware::from_fn(limits::header_limits))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(auth::sanitize_request_id))
        .with_state(state);
    tenants::tenant_urls(app)
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with `pages` added to the application ([`router_with`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    pages: Router<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = match listener.local_addr() {
        Ok(address) => state.listening_on(address),
        Err(_) => state,
    };
    let engine = state
        .sync
        .as_ref()
        .map(|sync| tokio::spawn(Arc::clone(&sync.engine).run()));
    let served = axum::serve(listener, router_with(state, pages))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(engine) = engine {
        engine.abort();
    }
    served
}
