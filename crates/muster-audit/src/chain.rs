//! The per-tenant hash chain and its verification.
//!
//! Entry `n` (positions from 1, no gaps) stores its skeleton text, its
//! detail text (or none once redacted), the detail's hash and its chain
//! hash:
//!
//! ```text
//! chain(n) = sha256("muster-audit/1" | chain(n-1) | n | sha256(skeleton) | detail_hash)
//! chain(0) = GENESIS
//! ```
//!
//! So an edited skeleton, an edited detail (its hash no longer matches), a
//! deleted entry (a gap in the positions, or the chain hash of the next
//! entry no longer follows), two entries swapped (their hashes no longer
//! follow their positions) and an edited chain hash are all found, at the
//! first entry concerned. A truncated tail is found against the tenant's
//! recorded head ([`Verifier::finish`]). The hashes are not keyed: someone
//! who can rewrite the whole table can recompute every hash, so keep the
//! head [`Verifier::finish`] returns somewhere else to compare later.

use std::fmt;

use sha2::{Digest, Sha256};

/// The chain hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the chain hash is labelled with, so a hash of something else never
/// passes for one.
const DOMAIN: &str = "muster-audit/1";

/// Hex SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The chain hash of the entry at `position` after `previous`.
pub fn link_hash(previous: &str, position: u64, skeleton_hash: &str, detail_hash: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        DOMAIN,
        previous,
        &position.to_string(),
        skeleton_hash,
        detail_hash,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// One stored entry as the verifier reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its position in the tenant's chain.
    pub position: u64,
    /// The skeleton's canonical text.
    pub skeleton: String,
    /// The detail's canonical text; `None` once redacted.
    pub detail: Option<String>,
    /// The detail's hash, kept through a redaction.
    pub detail_hash: String,
    /// The stored chain hash.
    pub chain_hash: String,
}

impl Link {
    /// Builds the entry at `position` after the chain hash `previous`.
    pub fn seal(previous: &str, position: u64, skeleton: String, detail: String) -> Link {
        let detail_hash = digest(&detail);
        let chain_hash = link_hash(previous, position, &digest(&skeleton), &detail_hash);
        Link {
            position,
            skeleton,
            detail: Some(detail),
            detail_hash,
            chain_hash,
        }
    }
}

/// What is wrong at an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry at this position is missing (deleted); the next stored
    /// entry has the position given.
    Missing {
        /// The position found instead.
        found: u64,
    },
    /// An entry's position repeats or goes backwards.
    OutOfOrder {
        /// The position found.
        found: u64,
    },
    /// The detail does not match its hash (edited).
    DetailEdited,
    /// The chain hash does not follow (the skeleton was edited, the entry
    /// moved, or the hash itself edited).
    ChainBroken,
    /// Entries after this position were removed: the chain ends before
    /// the tenant's recorded head.
    Truncated {
        /// The head's position.
        head: u64,
    },
    /// The last entry's hash is not the recorded head's.
    HeadMismatch,
}

/// The first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The position of the entry that fails (for [`Problem::Missing`], the
    /// position expected).
    pub position: u64,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let position = self.position;
        match &self.problem {
            Problem::Missing { found } => write!(
                f,
                "entry {position} is missing (deleted): the next entry is {found}"
            ),
            Problem::OutOfOrder { found } => write!(
                f,
                "entry {found} appears where entry {position} was expected (reordered or duplicated)"
            ),
            Problem::DetailEdited => write!(
                f,
                "entry {position} was edited: its detail does not match its hash"
            ),
            Problem::ChainBroken => write!(
                f,
                "entry {position} was edited or moved: its chain hash does not follow entry {}",
                position.saturating_sub(1)
            ),
            Problem::Truncated { head } => write!(
                f,
                "entries {} to {head} are missing (deleted): the chain ends at entry {}",
                position + 1,
                position
            ),
            Problem::HeadMismatch => write!(
                f,
                "entry {position} does not match the recorded head of the chain"
            ),
        }
    }
}

impl std::error::Error for Broken {}

/// Checks a tenant's entries one by one, in position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    position: u64,
    previous: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            position: 0,
            previous: GENESIS.to_owned(),
        }
    }
}

impl Verifier {
    /// A verifier at the chain's start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next entry.
    pub fn check(&mut self, link: &Link) -> Result<(), Broken> {
        let expected = self.position + 1;
        if link.position != expected {
            let problem = if link.position > expected {
                Problem::Missing {
                    found: link.position,
                }
            } else {
                Problem::OutOfOrder {
                    found: link.position,
                }
            };
            return Err(Broken {
                position: expected,
                problem,
            });
        }
        if let Some(detail) = &link.detail {
            if digest(detail) != link.detail_hash {
                return Err(Broken {
                    position: expected,
                    problem: Problem::DetailEdited,
                });
            }
        }
        let chain = link_hash(
            &self.previous,
            expected,
            &digest(&link.skeleton),
            &link.detail_hash,
        );
        if chain != link.chain_hash {
            return Err(Broken {
                position: expected,
                problem: Problem::ChainBroken,
            });
        }
        self.position = expected;
        self.previous = chain;
        Ok(())
    }

    /// The position and chain hash checked last (0 and [`GENESIS`] before
    /// any).
    pub fn head(&self) -> (u64, &str) {
        (self.position, &self.previous)
    }

    /// Ends the check against the tenant's recorded head (position and
    /// chain hash of its last entry, `None` when it has none).
    pub fn finish(self, head: Option<(u64, &str)>) -> Result<(u64, String), Broken> {
        if let Some((position, hash)) = head {
            if position > self.position {
                return Err(Broken {
                    position: self.position,
                    problem: Problem::Truncated { head: position },
                });
            }
            if position == self.position && hash != self.previous {
                return Err(Broken {
                    position,
                    problem: Problem::HeadMismatch,
                });
            }
        }
        Ok((self.position, self.previous))
    }
}

#[cfg(test)]
mod tests {
    use super::{Link, Problem, Verifier, GENESIS};

    fn chain(count: u64) -> Vec<Link> {
        let mut previous = GENESIS.to_owned();
        (1..=count)
            .map(|position| {
                let link = Link::seal(
                    &previous,
                    position,
                    format!("{{\"n\":{position}}}"),
                    format!("{{\"d\":{position}}}"),
                );
                previous = link.chain_hash.clone();
                link
            })
            .collect()
    }

    fn verify(links: &[Link], head: Option<(u64, &str)>) -> Result<(u64, String), super::Broken> {
        let mut verifier = Verifier::new();
        for link in links {
            verifier.check(link)?;
        }
        verifier.finish(head)
    }

    #[test]
    fn intact_and_redacted_chains_verify() {
        let mut links = chain(5);
        let head = links
            .last()
            .map(|link| (link.position, link.chain_hash.clone()));
        let head = head.as_ref().map(|(p, h)| (*p, h.as_str()));
        assert!(verify(&links, head).is_ok());
        if let Some(link) = links.get_mut(2) {
            link.detail = None;
        }
        assert!(verify(&links, head).is_ok());
    }

    #[test]
    fn truncation_found_against_the_head() {
        let links = chain(4);
        let head = links
            .last()
            .map(|link| (link.position, link.chain_hash.clone()));
        let head = head.as_ref().map(|(p, h)| (*p, h.as_str()));
        let broken = verify(&links[..3], head).err();
        assert_eq!(
            broken.map(|broken| broken.problem),
            Some(Problem::Truncated { head: 4 })
        );
    }
}
