//! Target secrets at rest: sealed with a key kept beside the database
//! (ChaCha20-Poly1305), so `muster.db` alone never holds a target's token
//! in clear. A secret given as `{"env": "VAR"}` is read from the
//! environment when used and never stored.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use muster_targets::Secret;

use crate::SyncError;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";

/// The environment variable that gives the key instead of the file
/// (base64 of 32 bytes; for deployments whose data directory is not
/// private, and for PostgreSQL).
pub const KEY_VARIABLE: &str = "MUSTER_SECRETS_KEY";

const NONCE_LENGTH: usize = 12;

/// The key that seals target secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// The key from [`KEY_VARIABLE`], else from `dir/`[`KEY_FILE`], made
    /// (readable by its owner only) when absent.
    pub fn load_or_create(dir: &Path) -> Result<SecretKey, SyncError> {
        if let Ok(text) = std::env::var(KEY_VARIABLE) {
            return Self::from_base64(text.trim())
                .map_err(|reason| SyncError::Config(format!("{KEY_VARIABLE}: {reason}")));
        }
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(text.trim())
                .map_err(|reason| SyncError::Config(format!("{}: {reason}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                write_private(&path, STANDARD.encode(key).as_bytes()).map_err(|error| {
                    SyncError::Config(format!("cannot write {}: {error}", path.display()))
                })?;
                Ok(SecretKey {
                    cipher: ChaCha20Poly1305::new(&key),
                })
            }
            Err(error) => Err(SyncError::Config(format!(
                "cannot read {}: {error}",
                path.display()
            ))),
        }
    }

    /// A key from base64 text.
    pub fn from_base64(text: &str) -> Result<SecretKey, String> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| "the key is not base64".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("the key is {} bytes; expected 32", bytes.len()));
        }
        Ok(SecretKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// The stored form of a secret: a value sealed, anything else as it is.
    pub fn seal(&self, secret: &Secret) -> Result<Secret, SyncError> {
        match secret {
            Secret::Value(text) => {
                let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
                let sealed = self
                    .cipher
                    .encrypt(&nonce, text.as_bytes())
                    .map_err(|_| SyncError::Config("a secret could not be sealed".into()))?;
                let mut bytes = nonce.to_vec();
                bytes.extend(sealed);
                Ok(Secret::Sealed {
                    sealed: STANDARD.encode(bytes),
                })
            }
            other => Ok(other.clone()),
        }
    }

    /// The secret's value, for use: opened, or read from the environment.
    pub fn reveal(&self, secret: &Secret) -> Result<String, SyncError> {
        match secret {
            Secret::Value(text) => Ok(text.clone()),
            Secret::Env { env } => std::env::var(env).map_err(|_| {
                SyncError::Config(format!("the environment variable {env} is not set"))
            }),
            Secret::Sealed { sealed } => {
                let bytes = STANDARD
                    .decode(sealed)
                    .map_err(|_| SyncError::Config("a sealed secret is not base64".into()))?;
                let (nonce, body) = bytes
                    .split_at_checked(NONCE_LENGTH)
                    .ok_or_else(|| SyncError::Config("a sealed secret is truncated".into()))?;
                let plain = self
                    .cipher
                    .decrypt(Nonce::from_slice(nonce), body)
                    .map_err(|_| {
                        SyncError::Config(
                            "a sealed secret does not open with this key (was secrets.key \
                             replaced?); put the target again with its secret"
                                .into(),
                        )
                    })?;
                String::from_utf8(plain)
                    .map_err(|_| SyncError::Config("a sealed secret is not text".into()))
            }
            Secret::Redacted { .. } => Err(SyncError::Config(
                "the secret was never given (only its redacted form)".into(),
            )),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_hold_no_clear_text() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = SecretKey::load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let sealed = key
            .seal(&Secret::Value("s3cr3t-token".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let text = serde_json::to_string(&sealed).unwrap_or_default();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(key.reveal(&sealed).ok().as_deref(), Some("s3cr3t-token"));
        let again = SecretKey::load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.reveal(&sealed).ok().as_deref(), Some("s3cr3t-token"));
        let other =
            SecretKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.reveal(&sealed).is_err());
    }
}
