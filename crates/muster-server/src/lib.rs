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
use axum::handler::Handler;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::Router;
use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_core::{Limits, Service};
use muster_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub mod admin;
pub mod auth;
mod bulk;
mod discovery;
pub mod error;
mod expressions;
mod health;
pub mod media;
mod resources;
mod rules;
mod targets;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_payload_bytes: 1024 * 1024,
            max_json_depth: 64,
            limits: Limits::default(),
            public_url: None,
            trust_proxy_headers: false,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
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
        AppState {
            service: Arc::new(Service::new(store, config.limits.clone())),
            config: Arc::new(config),
            listen: None,
            tokens: Arc::default(),
            sync: None,
        }
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
        self.sync = Some(Arc::new(SyncHandle {
            targets: muster_sync::Targets::new(Arc::clone(&self.service), key.clone(), export_root),
            engine: muster_sync::SyncEngine::with_retention(
                Arc::clone(&self.service),
                key,
                retention,
            ),
        }));
        self
    }

    /// The state of a server listening on `address`.
    pub fn listening_on(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.service.store()
    }

    /// The absolute SCIM base URL (`.../scim/v2`) for `Location` and
    /// `meta.location`: the configured public URL, else the proxy's headers
    /// when trusted, else the listen address. The `Host` header alone is
    /// never trusted.
    pub fn scim_base(&self, headers: &HeaderMap) -> String {
        format!("{}/scim/v2", self.public_base(headers))
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
/// under `/admin/v1`, health checks, auth and request logging.
///
/// Every route names the scope it needs next to its handler
/// ([`auth::require_scope`]); the outer middleware authenticates.
pub fn router(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    let read = || from_fn_with_state(SCOPE_READ, auth::require_scope);
    let write = || from_fn_with_state(SCOPE_WRITE, auth::require_scope);
    let admin = || from_fn_with_state(SCOPE_ADMIN, auth::require_scope);
    let scim = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config.layer(read())),
        )
        .route("/Schemas", get(discovery::schemas.layer(read())))
        .route("/Schemas/{id}", get(discovery::schema.layer(read())))
        .route(
            "/ResourceTypes",
            get(discovery::resource_types.layer(read())),
        )
        .route(
            "/ResourceTypes/{id}",
            get(discovery::resource_type.layer(read())),
        )
        .route("/Bulk", post(bulk::bulk.layer(write())))
        .route("/.search", post(resources::search_root.layer(read())))
        .route(
            "/{endpoint}",
            get(resources::list.layer(read())).post(resources::create.layer(write())),
        )
        .route("/{endpoint}/.search", post(resources::search.layer(read())))
        .route(
            "/{endpoint}/{id}",
            get(resources::get.layer(read()))
                .put(resources::replace.layer(write()))
                .patch(resources::patch.layer(write()))
                .delete(resources::delete.layer(write())),
        );
    let admin_api = Router::new()
        .route("/schemas", get(admin::list_schemas.layer(admin())))
        .route(
            "/schemas/{urn}",
            get(admin::get_schema.layer(admin()))
                .put(admin::put_schema.layer(admin()))
                .delete(admin::delete_schema.layer(admin())),
        )
        .route("/attributes", get(admin::attributes.layer(admin())))
        .route(
            "/settings",
            get(admin::get_settings.layer(admin())).put(admin::put_settings.layer(admin())),
        )
        .route(
            "/resources/{endpoint}/{id}",
            get(admin::stored_resource.layer(admin())),
        )
        .route(
            "/rules",
            get(rules::get_rules.layer(admin())).put(rules::put_rules.layer(admin())),
        )
        .route("/rules/history", get(rules::rules_history.layer(admin())))
        .route("/rules/stats", get(rules::get_rules_stats.layer(admin())))
        .route(
            "/users/{id}/entitlements/explain",
            get(rules::explain.layer(admin())),
        )
        .route(
            "/expressions/evaluate",
            post(expressions::evaluate.layer(admin())),
        )
        .route("/targets", get(targets::list_targets.layer(admin())))
        .route(
            "/targets/{name}",
            get(targets::get_target.layer(admin()))
                .put(targets::put_target.layer(admin()))
                .delete(targets::delete_target.layer(admin())),
        )
        .route(
            "/targets/{name}/resume",
            post(targets::resume_target.layer(admin())),
        )
        .route(
            "/sync/dead-letters",
            get(targets::dead_letters.layer(admin())),
        )
        .route(
            "/sync/dead-letters/{id}",
            delete(targets::discard_dead_letter.layer(admin())),
        )
        .route(
            "/sync/dead-letters/{id}/retry",
            post(targets::retry_dead_letter.layer(admin())),
        )
        .route(
            "/users/{id}/targets/{name}",
            get(targets::explain_user.layer(admin())),
        )
        .route(
            "/users/{id}/targets/{name}/provision",
            post(targets::provision_user.layer(admin())),
        );
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(targets::metrics.layer(admin())))
        .nest("/scim/v2", scim)
        .nest("/admin/v1", admin_api)
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_and_log,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(auth::sanitize_request_id))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
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
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(engine) = engine {
        engine.abort();
    }
    served
}
