//! [`Error`]: what a procedure reports.

use muster_scim::ScimError;
use muster_store::StoreError;

/// The detail of every `500`: the cause is in the server log, never in
/// the answer.
pub const INTERNAL_DETAIL: &str = "internal error; the cause is in the server log";

/// A procedure's failure: a SCIM error for the client (its status is data,
/// RFC 7644 section 3.12), a storage failure, or a fault of Muster itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks SCIM rules or names what does not exist.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Muster itself failed (for example, hashing a password); the text is
    /// for the log, never for the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The SCIM error a client is answered with (RFC 7644 section 3.12).
    ///
    /// Storage and internal failures are logged here with their cause and
    /// become a generic `500` whose detail says nothing of the internals.
    pub fn into_scim(self) -> ScimError {
        match self {
            Error::Scim(error) => error,
            Error::Store(StoreError::NotFound(detail)) => ScimError::status(404, detail),
            Error::Store(StoreError::Conflict(detail)) => ScimError::uniqueness(detail),
            Error::Store(StoreError::PreconditionFailed { current }) => ScimError::status(
                412,
                format!(
                    "If-Match does not match the current version W/\"{current}\"; read the resource again and retry"
                ),
            ),
            Error::Store(StoreError::Scim(error)) => error,
            Error::Store(StoreError::StaleSchema { .. }) => ScimError::status(
                503,
                "the tenant's schemas changed while this request was validated, again and again; retry",
            ),
            Error::Store(StoreError::Busy(queue)) => {
                tracing::warn!(%queue, "store busy; request refused");
                ScimError::status(503, format!("Muster is busy ({queue}); retry shortly"))
            }
            Error::Store(StoreError::Contention(cause)) => {
                tracing::warn!(%cause, "write collided with a concurrent one; request refused");
                ScimError::status(
                    503,
                    "the resource was being changed by a concurrent request; retry",
                )
            }
            Error::Store(StoreError::Refused(cause)) => {
                tracing::error!(%cause, "the store refused a write Muster should never make");
                ScimError::status(500, INTERNAL_DETAIL)
            }
            Error::Store(StoreError::Database(cause)) => {
                tracing::error!(%cause, "storage failure");
                ScimError::status(500, INTERNAL_DETAIL)
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal failure");
                ScimError::status(500, INTERNAL_DETAIL)
            }
        }
    }

    /// `404` naming what was not found.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::Scim(ScimError::status(404, detail))
    }
}
