//! OAuth 2.0 clients (RFC 6749 section 4.4, client credentials), the access
//! tokens issued to them, and the options every credential carries (its
//! conflict matching policy and its rate limit).
//!
//! The store keeps hashes only: a client secret as the argon2id PHC string
//! the caller computed, an access token as the hex SHA-256 of its value.
//! It never sees a secret in clear and does not verify one.
//!
//! Architecture Invariant: an access token is valid only while its client
//! exists (looked up by its `client_id`, never by name), so revoking a client
//! ends every token issued to it at once, including a token whose issue
//! raced the revocation, and a client re-created under the same name never
//! revives the tokens of the old one. Likewise a rotation without grace
//! deletes the client's tokens, and a token is stored only while the client
//! still accepts the secret its request verified, so none outlives the
//! dropped secret.

use async_trait::async_trait;

use crate::{StoreError, TenantId};

/// What a credential (a bearer token or an OAuth client) carries beyond its
/// scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialOptions {
    /// The attributes a create may match an existing account on (the
    /// conflict matching policy, `muster_core::matching`), in order; empty:
    /// none (a taken userName is a `409 uniqueness`).
    pub matching: Vec<String>,
    /// Requests per second: `None` takes the server's default, `Some(0)`
    /// means unlimited.
    pub rate_limit: Option<u32>,
}

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Its unique name within the tenant (the client in logs and change
    /// records).
    pub name: String,
    /// The `client_id` it authenticates with, unique across tenants.
    pub client_id: String,
    /// The argon2id PHC string of its current secret.
    pub secret_hash: String,
    /// The PHC string of the secret it had before its last rotation, while
    /// that secret is still accepted.
    pub previous_secret_hash: Option<String>,
    /// Until when (Unix seconds) the previous secret is accepted.
    pub previous_valid_until: Option<i64>,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// Its matching policy and rate limit.
    pub options: CredentialOptions,
    /// When it was created, RFC 3339 (filled by the store when empty).
    pub created: String,
}

/// An access token as stored (its value is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// Hex SHA-256 of the token.
    pub secret_hash: String,
    /// The `client_id` of the client it was issued to.
    pub client_id: String,
    /// The scopes it grants (a subset of the client's).
    pub scopes: Vec<String>,
    /// When it expires, Unix milliseconds.
    pub expires_at: i64,
    /// The PHC string of the client secret the request was verified with
    /// (not stored): the token is stored only while the client still
    /// accepts that secret, as its current or previous one, so an issue
    /// that raced a rotation without grace gets no token.
    pub verified_with: String,
}

/// A valid credential found by the hash of its secret: a bearer token or
/// an unexpired access token of an existing client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The token's or the client's name.
    pub name: String,
    /// The scopes it grants.
    pub scopes: Vec<String>,
    /// Its matching policy and rate limit (an access token's are its
    /// client's, as they stand now).
    pub options: CredentialOptions,
    /// When it expires (Unix milliseconds); `None` for a bearer token.
    pub expires_at: Option<i64>,
}

/// Storage of OAuth clients, access tokens and credential options.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a new client: a name taken in the tenant, or a `client_id`
    /// taken anywhere, is a conflict; an unknown tenant is `NotFound`.
    async fn create_client(
        &self,
        tenant: &TenantId,
        client: ClientRecord,
    ) -> Result<(), StoreError>;

    /// The tenant's clients by name (hashes only).
    async fn list_clients(&self, tenant: &TenantId) -> Result<Vec<ClientRecord>, StoreError>;

    /// The client a `client_id` names, in any tenant.
    async fn find_client(
        &self,
        client_id: &str,
    ) -> Result<Option<(TenantId, ClientRecord)>, StoreError>;

    /// Replaces a client's secret with `secret_hash`; the current one stays
    /// accepted until `previous_valid_until` (Unix seconds), or is dropped
    /// at once with `None`, and then every access token issued to the
    /// client is deleted in the same transaction (tokens got with an old,
    /// perhaps leaked, secret end with it). Returns the client as now
    /// stored.
    async fn rotate_client_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        secret_hash: String,
        previous_valid_until: Option<i64>,
    ) -> Result<ClientRecord, StoreError>;

    /// Deletes a client and every access token issued to it.
    async fn revoke_client(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError>;

    /// Stores an access token for an existing client of the tenant that
    /// still accepts the secret in `token.verified_with` (`NotFound` when it
    /// no longer exists or no longer accepts it), and deletes the tokens
    /// that expired by `now` (Unix milliseconds).
    async fn issue_access_token(
        &self,
        tenant: &TenantId,
        token: AccessTokenRecord,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The valid credential whose secret hashes to `secret_hash`: a bearer
    /// token, or an access token expiring after `now` (Unix milliseconds)
    /// whose client exists.
    async fn find_credential(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<Credential>, StoreError>;

    /// Sets the options of a bearer token (`NotFound` when there is none of
    /// that name).
    async fn set_token_options(
        &self,
        tenant: &TenantId,
        name: &str,
        options: CredentialOptions,
    ) -> Result<(), StoreError>;

    /// The options of every bearer token of the tenant, by token name.
    async fn token_options(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, CredentialOptions)>, StoreError>;

    /// Deletes the access tokens (of every tenant) expired by `now` (Unix
    /// milliseconds); returns how many.
    async fn sweep_access_tokens(&self, now: i64) -> Result<u64, StoreError>;
}

/// Parses a stored JSON array of strings (scopes, matching attributes).
pub(crate) fn string_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Database(format!("stored {what} are not valid JSON: {error}")))
}

/// Serialises a list of strings for storage.
pub(crate) fn string_list_text(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list)
        .map_err(|error| StoreError::Database(format!("cannot serialise a list: {error}")))
}

/// A stored rate limit (`NULL` for the default) as the API's.
pub(crate) fn rate_limit(stored: Option<i64>) -> Option<u32> {
    stored.map(|limit| u32::try_from(limit).unwrap_or(u32::MAX))
}
