//! What several pages read: the sync procedures of the server, and their
//! errors as pages.

use axum::http::StatusCode;
use muster_server::AppState;
use muster_sync::{SyncError, Targets};

use crate::layout::PageError;

/// The server's sync procedures (`501` page when the engine is off).
pub fn targets(state: &AppState) -> Result<&Targets, PageError> {
    state
        .sync
        .as_ref()
        .map(|sync| &sync.targets)
        .ok_or_else(|| {
            PageError::new(
                StatusCode::NOT_IMPLEMENTED,
                "the sync engine is not enabled on this server",
            )
        })
}

impl From<SyncError> for PageError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Document(refused) => {
                PageError::bad_request(format!("the target document was refused: {refused}"))
            }
            SyncError::NotFound(detail) => PageError::not_found(detail),
            SyncError::Store(error) => error.into(),
            SyncError::Core(error) => error.into(),
            SyncError::Config(detail) => PageError::bad_request(detail),
            SyncError::Paused { target, reason } => PageError::new(
                StatusCode::CONFLICT,
                format!("target {target} is paused: {reason}"),
            ),
        }
    }
}
