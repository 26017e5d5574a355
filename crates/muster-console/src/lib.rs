//! `muster-console`: the admin console, server-rendered HTML under
//! `/admin` (and `/t/{tenant}/admin` for a tenant), merged into the
//! application by `muster serve` ([`router`], given to
//! [`muster_server::serve_with`]).
//!
//! Pages are rendered on the server with maud (escaped by default); htmx
//! (vendored, `assets/`) only enhances them, so every page works with
//! plain links and forms. A page module holds the routes of one area of the
//! console (`routes()`) and calls the same `muster-core` and store
//! procedures the admin API's handlers call: the console adds no second
//! source of truth.
//!
//! The framework every page uses:
//! - [`session`]: signing in, the [`session::Admin`] extractor (a request
//!   without a live session is sent to the sign-in page) and
//!   [`session::CsrfForm`] for every `POST`;
//! - [`layout`]: the page frame, the error page, pagers and notices;
//! - [`assets`]: the embedded stylesheet and scripts.
//!
//! Depends on `muster-server` (its state, its credential verification),
//! `muster-core` and `muster-store`; nothing depends on it but the CLI.

use axum::{Extension, Router};
use muster_server::AppState;

pub mod assets;
mod audit;
mod clients;
mod dashboard;
pub mod data;
pub mod layout;
mod mapping;
mod rules;
mod schemas;
pub mod session;
mod sign_in;
mod targets;
mod tenants;
mod users;

/// Every page of the console, for [`muster_server::serve_with`].
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(assets::routes())
        .merge(sign_in::routes())
        .merge(dashboard::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(clients::routes())
        .merge(tenants::routes())
        .merge(mapping::routes())
        .merge(schemas::routes())
        .merge(rules::routes())
        .merge(targets::routes())
        .layer(Extension(session::SignInThrottle::default()))
}
