//! What several pages read: the sync procedures of the server, and their
//! errors as pages; and the turn each read of every resource waits for.

use std::future::Future;

use axum::http::StatusCode;
use muster_server::AppState;
use muster_sync::{SyncError, Targets};
use tokio::sync::Semaphore;

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

/// The console's reads of every resource (the active and inactive counts,
/// the entitlement problems, the attribute explain table) take turns. The
/// store has a reader per CPU, so on a small server two such reads at once
/// hold every reader, and the page the admin opens next (whose reads take
/// milliseconds) would wait for them; one at a time leaves it a reader.
static FULL_READS: Semaphore = Semaphore::const_new(1);

/// Runs `work`, a read of every resource, in its turn (see [`FULL_READS`]).
/// A request given up while waiting starts nothing; once started, the read
/// runs to its end on its own task, keeping the turn until then (the
/// store's reader would go on reading anyway).
pub(crate) async fn full_read<T, F>(work: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PageError>> + Send + 'static,
{
    let turn = FULL_READS.acquire().await.map_err(|_| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
    })?;
    tokio::spawn(async move {
        let result = work.await;
        drop(turn);
        result
    })
    .await
    .map_err(|error| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("a read of every resource stopped: {error}"),
        )
    })?
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
