//! Secrets in SCIM writes: a `password` is hashed with argon2id before it
//! goes anywhere, and only the hash is stored.

use std::sync::OnceLock;

use muster_scim::patch::{targets, PatchOperation};
use muster_scim::ScimError;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::Error;

/// The permits for concurrent password hashes: one per CPU.
fn hashing_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)))
}

/// Replaces the clear-text `password` of a canonical resource (as
/// [`muster_scim::normalize_with`] makes it, so the key is exactly
/// `password` whatever the client wrote) with its argon2 hash.
pub(crate) async fn hash_resource_password(mut resource: Value) -> Result<Value, Error> {
    let slot = resource
        .as_object_mut()
        .and_then(|object| object.get_mut("password"));
    if let Some(Value::String(password)) = slot {
        *password = hash_password(std::mem::take(password)).await?;
    }
    Ok(resource)
}

/// Replaces the clear-text value of every operation on `password` with its
/// argon2 hash. The operations must be canonical
/// ([`muster_scim::canonical_operations`]), so that the path `password` is
/// every spelling of it.
pub(crate) async fn hash_patch_passwords(
    operations: Vec<PatchOperation>,
) -> Result<Vec<PatchOperation>, Error> {
    let setting = operations
        .iter()
        .filter(|operation| targets(operation, "password"))
        .count();
    if setting > 1 {
        return Err(Error::Scim(ScimError::invalid_value(format!(
            "attribute 'password' is set by {setting} operations; a request sets it at most once"
        ))));
    }
    let mut hashed = Vec::with_capacity(operations.len());
    for mut operation in operations {
        if targets(&operation, "password") {
            // Only a clear text is hashed; any other value is left as sent,
            // for the operation's own checks to refuse (never dropped).
            if let Some(Value::String(password)) = &mut operation.value {
                if !password.is_empty() {
                    *password = hash_password(std::mem::take(password)).await?;
                }
            }
        }
        hashed.push(operation);
    }
    Ok(hashed)
}

/// Hashes a clear-text password with argon2id (a fresh random salt) on a
/// blocking thread; the PHC string is what gets stored.
pub async fn hash_password(password: String) -> Result<String, Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    // Each hash takes about 20 ms and 19 MiB: at most one per CPU at a
    // time, so a burst of requests queues instead of exhausting memory.
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|error| Error::Internal(format!("password hashing: {error}")))?;
    let hashed = tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await;
    match hashed {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(error)) => Err(Error::Internal(format!("password hashing failed: {error}"))),
        Err(error) => Err(Error::Internal(format!(
            "password hashing task failed: {error}"
        ))),
    }
}
