//! `muster-core`: Muster's procedures over a [`Store`], with no HTTP.
//!
//! The SCIM server, the CLI, and the coming rules and sync engines all act
//! on Muster's data through this crate: resource operations (create,
//! replace, patch, delete, search) with member translation and password
//! hashing ([`Session`]), Bulk ([`bulk`]), schema changes and the attribute
//! explain table ([`schemas`], [`explain`]), contact-center entitlement
//! rules ([`rules`]), each tenant's view of its schemas and rules
//! ([`tenant`]) and bearer-token minting ([`tokens`]).
//!
//! It decides what a request means; it never knows how the request arrived.
//! Errors are [`Error`]: SCIM errors carry their RFC 7644 status as data, and
//! the server alone turns them into HTTP responses.
//!
//! Depends on `muster-scim`, `muster-rules` and `muster-store`; never on axum, the server or
//! the CLI.

use std::sync::Arc;

use muster_scim::FilterLimits;
use muster_store::{Actor, Store, TenantId};

pub mod audit;
pub mod bulk;
pub mod clients;
pub mod credentials;
mod error;
pub mod explain;
pub mod lifecycle;
pub mod matching;
mod members;
pub mod offboard;
pub mod origin;
mod rendered;
mod resources;
pub mod rules;
pub mod schemas;
mod search;
mod secrets;
pub mod settings;
pub mod tenant;
pub mod tokens;
pub mod transfer;

pub use error::{Error, INTERNAL_DETAIL};
pub use resources::{
    etag, parse_etag, precondition_from_text, Imported, Rendered, RenderedJson, Session,
};
pub use secrets::hash_password;

/// How often a procedure runs again when the tenant's schemas changed
/// between its reads and its write (`StoreError::StaleSchema`).
pub(crate) const STALE_RETRIES: usize = 3;

/// Runs `attempt` again, up to [`STALE_RETRIES`] times, while the store says
/// it was computed from schemas that are no longer the stored ones: each
/// attempt reads them afresh.
pub(crate) async fn retry_when_stale<T, F, Fut>(mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(Error::Store(muster_store::StoreError::StaleSchema { .. }))
                if retries < STALE_RETRIES =>
            {
                retries += 1;
            }
            result => return result,
        }
    }
}

/// Limits and defaults the protocol operations enforce (and the server
/// advertises in `/ServiceProviderConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most operations in one bulk request (`bulk.maxOperations`).
    pub max_bulk_operations: usize,
    /// Page size when the client gives no `count`.
    pub default_page_size: u64,
    /// Largest page returned (`filter.maxResults`, `pagination.maxPageSize`).
    pub max_page_size: u64,
    /// Limits on filters and PATCH value filters.
    pub filter_limits: FilterLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_operations: 1000,
            default_page_size: 100,
            max_page_size: 1000,
            filter_limits: FilterLimits::default(),
        }
    }
}

/// Muster over one store: the tenant views it caches and the limits it
/// enforces. One per process, shared by every request.
pub struct Service {
    store: Arc<dyn Store>,
    views: tenant::TenantViews,
    limits: Limits,
    rendered: rendered::RenderedResources,
}

impl Service {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Service {
            store,
            views: tenant::TenantViews::default(),
            limits,
            rendered: rendered::RenderedResources::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The store, shared (for tasks that outlive a request).
    pub fn store_arc(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The tenant's current view (cached up to [`tenant::TENANT_VIEW_TTL`]).
    pub async fn view(&self, tenant: &TenantId) -> Result<Arc<tenant::TenantView>, Error> {
        Ok(self.views.get(self.store(), tenant).await?)
    }

    /// Forgets the tenant's cached view after an admin change, so the next
    /// request reads the store.
    pub fn invalidate(&self, tenant: &TenantId) {
        self.views.invalidate(tenant);
    }

    /// A session of `actor` in `tenant`, with `base` (the absolute SCIM base
    /// URL, e.g. `https://muster.example.com/scim/v2`) for `meta.location`.
    pub async fn session(
        &self,
        tenant: TenantId,
        actor: Actor,
        base: String,
    ) -> Result<Session<'_>, Error> {
        let view = self.view(&tenant).await?;
        Ok(Session::new(self, tenant, actor, base, view))
    }
}
