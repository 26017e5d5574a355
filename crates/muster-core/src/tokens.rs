//! Bearer tokens and the scopes they grant.
//!
//! A token is `mst_` followed by 256 random bits, so a single SHA-256 is a
//! safe way to store it (a slow password hash is for low-entropy secrets).
//! The secret is printed once by `muster token create` and never stored,
//! logged or echoed; only its hash reaches the database.

use base64::Engine;
use muster_store::clients::Credential;
use muster_store::TenantId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::matching::MatchPolicy;

/// Read SCIM resources.
pub const SCOPE_READ: &str = "scim.read";
/// Create, change and delete SCIM resources (implies read).
pub const SCOPE_WRITE: &str = "scim.write";
/// Administer Muster: schemas, settings (implies read and write).
pub const SCOPE_ADMIN: &str = "admin";
/// Every scope a token may carry.
pub const SCOPES: [&str; 3] = [SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The token name, used in logs and change records.
    pub name: String,
    /// The tenant the token belongs to.
    pub tenant: TenantId,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// What its `POST` of an existing user does (default: none, `409`).
    pub matching: MatchPolicy,
    /// Its rate limit in requests per second: `None` for the server's
    /// default, `Some(0)` for none.
    pub rate_limit: Option<u32>,
}

impl Client {
    /// The client a stored credential authenticates. A stored matching
    /// policy Muster no longer reads is logged and treated as none.
    pub fn from_credential(credential: Credential) -> Client {
        let matching = MatchPolicy::parse(&credential.options.matching.join(","))
            .unwrap_or_else(|problem| {
                tracing::warn!(client = %credential.name, %problem, "stored matching policy ignored");
                MatchPolicy::none()
            });
        Client {
            name: credential.name,
            tenant: credential.tenant,
            scopes: credential.scopes,
            matching,
            rate_limit: credential.options.rate_limit,
        }
    }
}

impl Client {
    /// Whether the client holds `scope`, directly or through a wider one.
    pub fn allows(&self, scope: &str) -> bool {
        let implied: &[&str] = match scope {
            SCOPE_READ => &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN],
            SCOPE_WRITE => &[SCOPE_WRITE, SCOPE_ADMIN],
            _ => &[SCOPE_ADMIN],
        };
        self.scopes
            .iter()
            .any(|held| implied.contains(&held.as_str()))
    }
}

/// A freshly minted token: the secret (shown once) and its hash (stored).
pub struct NewToken {
    /// The bearer secret to hand to the identity provider.
    pub secret: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
}

/// Mints a new random bearer token.
pub fn mint_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!(
        "mst_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let secret_hash = hash_secret(&secret);
    NewToken {
        secret,
        secret_hash,
    }
}

/// The stored form of a bearer secret: hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_their_digest() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("mst_") && a.secret.len() > 40);
        // The stored form is the hex SHA-256 of the secret (FIPS 180-2
        // test vector), never the secret itself.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(a.secret_hash, hash_secret(&a.secret));
        assert_ne!(a.secret_hash, a.secret);
        assert_ne!(a.secret_hash, b.secret_hash);
    }

    #[test]
    fn scopes_imply_narrower_ones() {
        let client = |scopes: &[&str]| Client {
            name: "t".into(),
            tenant: TenantId::default_tenant(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            matching: MatchPolicy::none(),
            rate_limit: None,
        };
        assert!(client(&[SCOPE_WRITE]).allows(SCOPE_READ));
        assert!(!client(&[SCOPE_READ]).allows(SCOPE_WRITE));
        assert!(client(&[SCOPE_ADMIN]).allows(SCOPE_WRITE));
        assert!(!client(&[SCOPE_WRITE]).allows(SCOPE_ADMIN));
        assert!(!client(&[]).allows(SCOPE_READ));
    }
}
