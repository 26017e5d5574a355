//! `muster-audit`: the pure half of Muster's audit trail.
//!
//! Every change Muster commits gets an audit entry in the same transaction
//! (the stores write them; `muster-store`'s `audit` module). This crate
//! decides what an entry says and how the entries of a tenant are chained,
//! with no I/O:
//!
//! - [`diff`]: the attribute-level before and after of two canonical
//!   resources, with secrets replaced by [`REDACTED`] ([`Redaction`]: the
//!   core `password` and every `returned: never` / `writeOnly` path);
//! - [`canonical`]: one text per JSON value (object keys sorted), so an
//!   entry hashes the same wherever it is serialised;
//! - [`chain`]: each entry is two canonical texts, a *skeleton* (who, when,
//!   what operation on which resource) and a *detail* (the attribute
//!   changes, which may hold personal data). The chain hash of entry `n`
//!   covers the chain hash of entry `n - 1`, `n`, the skeleton's hash and
//!   the detail's hash, so an edit, a deletion or a reordering breaks it
//!   from that entry on; [`chain::Verifier`] names the first bad entry.
//!   Purging a person's data drops the detail and keeps its hash: the chain
//!   still verifies and the skeleton stays checked.
//!
//! Architecture Invariant: no I/O, no clock, no randomness; the stores own
//! positions, time and storage.

pub mod canonical;
pub mod chain;
pub mod diff;
pub mod redact;

pub use canonical::canonical;
pub use chain::{digest, link_hash, Broken, Link, Problem, Verifier, GENESIS};
pub use diff::{diff, AttributeChange};
pub use redact::{Redaction, REDACTED};
