//! `muster-server`: the SCIM 2.0 service provider over HTTP.
//!
//! [`router`] builds the whole axum application from an [`AppState`], so tests
//! can drive it with or without a socket. Handlers stay thin: they parse at the
//! edge (`Filter`, `PatchOp`, projections), call the protocol core and the
//! [`Store`], and map results to responses. Only this crate knows HTTP status
//! codes and headers; [`error::ApiError`] is the one place errors become
//! responses.
//!
//! Depends on `muster-scim` and `muster-store`; never on the CLI or the sync
//! engine.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use muster_scim::FilterLimits;
use muster_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub mod admin;
pub mod auth;
mod bulk;
mod discovery;
pub mod error;
mod health;
pub mod media;
mod resources;
pub mod tenant;

/// Limits and defaults the server advertises in `/ServiceProviderConfig` and
/// enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (`bulk.maxPayloadSize`).
    pub max_payload_bytes: usize,
    /// Most operations in one bulk request (`bulk.maxOperations`).
    pub max_bulk_operations: usize,
    /// Page size when the client gives no `count`.
    pub default_page_size: u64,
    /// Largest page returned (`filter.maxResults`, `pagination.maxPageSize`).
    pub max_page_size: u64,
    /// Limits on filters and PATCH value filters.
    pub filter_limits: FilterLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_payload_bytes: 1024 * 1024,
            max_bulk_operations: 1000,
            default_page_size: 100,
            max_page_size: 1000,
            filter_limits: FilterLimits::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// Each tenant's schemas and policies, cached briefly.
    tenants: Arc<tenant::TenantViews>,
    /// Limits and defaults.
    pub config: Arc<ServerConfig>,
    /// Recently verified tokens.
    tokens: Arc<auth::TokenCache>,
}

impl AppState {
    /// State over a store; each tenant's schemas are read from it.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        AppState {
            store,
            tenants: Arc::default(),
            config: Arc::new(config),
            tokens: Arc::default(),
        }
    }
}

impl FromRef<AppState> for Arc<ServerConfig> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.config)
    }
}

/// The whole application: SCIM endpoints under `/scim/v2`, health checks,
/// auth and request logging.
pub fn router(state: AppState) -> Router {
    let scim = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Bulk", post(bulk::bulk))
        .route("/.search", post(resources::search_root))
        .route("/{endpoint}", get(resources::list).post(resources::create))
        .route("/{endpoint}/.search", post(resources::search))
        .route(
            "/{endpoint}/{id}",
            get(resources::get)
                .put(resources::replace)
                .patch(resources::patch)
                .delete(resources::delete),
        );
    let admin = Router::new()
        .route("/schemas", get(admin::list_schemas))
        .route(
            "/schemas/{urn}",
            get(admin::get_schema)
                .put(admin::put_schema)
                .delete(admin::delete_schema),
        )
        .route("/attributes", get(admin::attributes))
        .route(
            "/settings",
            get(admin::get_settings).put(admin::put_settings),
        )
        .route("/resources/{endpoint}/{id}", get(admin::stored_resource));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/scim/v2", scim)
        .nest("/admin/v1", admin)
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_and_log,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
