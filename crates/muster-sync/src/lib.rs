//! `muster-sync`: Muster's sync engine.
//!
//! Every change Muster commits is in the tenant's change feed. For each
//! downstream target ([`muster_targets::TargetDocument`]), a worker inside
//! `muster serve` ([`SyncEngine`]) reads the feed from its own cursor,
//! maps each touched user and group through the target's expressions, and
//! sends the target only what differs from what it holds, within the
//! target's rate limit, retrying what retrying can fix and keeping what it
//! cannot as a dead letter. [`Targets`] holds the procedures the CLI and the
//! admin API share: apply and show targets (secrets sealed with
//! [`secrets::SecretKey`], never returned), status, dead letters,
//! provision on demand, reconcile and the end-to-end explain.

mod client;
pub mod csv_target;
mod deliver;
mod engine;
pub mod five9;
mod five9_target;
mod genesys;
pub mod nice;
mod retry;
pub mod secrets;
mod status;
mod targets;

pub use engine::{SyncEngine, BATCH, DEFAULT_RETENTION, POLL};
pub use status::{Metrics, WorkerState};
pub use targets::{
    consumer_name, Delivered, ExplainRow, Explanation, Reconciled, TargetView, Targets,
};

use muster_store::StoreError;
use muster_targets::DocumentError;

/// Why a sync operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The configuration (a key, a secret, a document) is unusable.
    #[error("{0}")]
    Config(String),
    /// The target document was refused.
    #[error("{0}")]
    Document(#[from] DocumentError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A procedure of muster-core failed.
    #[error(transparent)]
    Core(#[from] muster_core::Error),
    /// No such target, user or dead letter.
    #[error("{0}")]
    NotFound(String),
    /// The target is paused (the deletion guard tripped, or an admin).
    #[error("target {target} is paused: {reason}")]
    Paused {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
}
