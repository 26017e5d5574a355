//! OAuth 2.0 clients (RFC 6749 section 4.4, client credentials): minting
//! client ids and secrets, verifying a secret, and issuing access tokens.
//! No HTTP: the server maps [`GrantError`] to RFC 6749 section 5.2 bodies.
//!
//! A client secret is `mcs_` and 256 random bits, stored as an argon2id PHC
//! string (the same hashing as SCIM passwords). An access token is `mat_`
//! and 256 random bits, stored as its SHA-256 (like bearer tokens), with its
//! tenant, client, scopes and expiry.
//!
//! Verifying a secret costs tens of milliseconds of CPU: it runs on the
//! blocking pool, at most one per CPU at a time, and at most
//! [`MAX_WAITING_VERIFICATIONS`] more wait; beyond that a request is refused
//! at once ([`GrantError::Busy`]), so a flood of token requests cannot
//! starve the server.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use muster_store::clients::{AccessTokenRecord, ClientRecord, CredentialOptions};
use muster_store::{Store, StoreError, TenantId};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::tokens::{hash_secret, SCOPES};
use crate::Error;

/// How long an access token lives unless `serve --access-token-ttl` says.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The longest `muster client rotate --grace`: a leaked old secret must
/// not stay valid for months.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 86_400);

/// Secret verifications that may wait for a CPU before requests are
/// refused as busy.
pub const MAX_WAITING_VERIFICATIONS: usize = 64;

/// A new client's credentials: shown once, the secret never stored.
pub struct NewClient {
    /// The `client_id`.
    pub client_id: String,
    /// The clear-text secret.
    pub secret: String,
    /// Its argon2id PHC string (stored).
    pub secret_hash: String,
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    unix_now_millis() / 1000
}

/// The current Unix time in milliseconds (access token expiry).
pub fn unix_now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

fn random_text(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A fresh client secret and its argon2id hash.
pub async fn mint_client_secret() -> Result<(String, String), Error> {
    let secret = random_text("mcs_");
    let hash = crate::secrets::hash_password(secret.clone()).await?;
    Ok((secret, hash))
}

/// Fresh credentials for a new client: a random `client_id` (unique across
/// tenants) and secret.
pub async fn mint_client() -> Result<NewClient, Error> {
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let (secret, secret_hash) = mint_client_secret().await?;
    Ok(NewClient {
        client_id: format!("mcl_{}", hex::encode(id)),
        secret,
        secret_hash,
    })
}

/// Checks a list of scopes: each must be one Muster knows; duplicates are
/// dropped. Returns the text of the problem otherwise.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, String> {
    let mut checked: Vec<String> = Vec::new();
    for scope in scopes {
        if !SCOPES.contains(&scope.as_str()) {
            return Err(format!(
                "unknown scope '{scope}'; use one of {}",
                SCOPES.join(", ")
            ));
        }
        if !checked.contains(scope) {
            checked.push(scope.clone());
        }
    }
    Ok(checked)
}

/// Parses a rate limit option: requests per second, `0` or `off` for none.
pub fn parse_rate_limit(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    text.parse::<u32>().map_err(|_| {
        format!("rate limit '{text}' must be requests per second (a whole number) or 'off'")
    })
}

/// Parses a duration such as `30s`, `15m`, `24h`, `7d` (or plain seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((index, unit)) if unit.is_ascii_alphabetic() => (text.split_at(index).0, unit),
        _ => (text, 's'),
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("duration '{text}' must be a number and s, m, h or d, e.g. 24h"))?;
    let unit_seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("duration '{text}': unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(count.saturating_mul(unit_seconds)))
}

/// Why a token request is refused (RFC 6749 section 5.2, plus `Busy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    /// Unknown client, wrong secret, or a secret past its grace.
    InvalidClient,
    /// A scope the client does not hold, or one Muster does not know.
    InvalidScope(String),
    /// The client holds no scope at all: it may not use the grant.
    UnauthorizedClient,
    /// Too many secret verifications already waiting.
    Busy,
}

/// Admission of secret verifications: one per CPU runs, a bounded number
/// wait.
fn verification_permits() -> &'static (Semaphore, Semaphore) {
    static PERMITS: OnceLock<(Semaphore, Semaphore)> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        (
            Semaphore::new(cpus + MAX_WAITING_VERIFICATIONS),
            Semaphore::new(cpus),
        )
    })
}

/// The PHC string `secret` matches, if one does, verified on the blocking
/// pool under the admission limits.
async fn verify_secret(secret: &str, hashes: Vec<String>) -> Result<Option<String>, GrantOutcome> {
    let (admission, running) = verification_permits();
    let Ok(_admitted) = admission.try_acquire() else {
        return Err(GrantOutcome::Refused(GrantError::Busy));
    };
    let _running = running
        .acquire()
        .await
        .map_err(|error| GrantOutcome::Failed(Error::Internal(format!("verification: {error}"))))?;
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        hashes.into_iter().find(|hash| {
            PasswordHash::new(hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
        })
    })
    .await
    .map_err(|error| GrantOutcome::Failed(Error::Internal(format!("verification task: {error}"))))
}

/// A refused grant or a failure of Muster.
#[derive(Debug)]
pub enum GrantOutcome {
    /// The client's fault (RFC 6749 section 5.2).
    Refused(GrantError),
    /// Storage or internal failure.
    Failed(Error),
}

impl From<StoreError> for GrantOutcome {
    fn from(error: StoreError) -> Self {
        GrantOutcome::Failed(Error::Store(error))
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The token (shown once to the client).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The scopes it grants, space-separated.
    pub scope: String,
    /// The client's name.
    pub client: String,
    /// The client's tenant.
    pub tenant: TenantId,
}

/// The client a `client_id` names, when it may be used at `tenant` (`None`:
/// any tenant, for the plain `/oauth/token`).
pub async fn find_client(
    store: &dyn Store,
    client_id: &str,
    tenant: Option<&TenantId>,
) -> Result<Option<(TenantId, ClientRecord)>, StoreError> {
    let found = store.find_client(client_id).await?;
    Ok(found.filter(|(owner, _)| tenant.is_none_or(|tenant| tenant == owner)))
}

/// The client credentials grant: verifies the client's secret
/// ([`verify_client_secret`]) and issues a token
/// ([`issue_verified_access_token`]).
pub async fn issue_access_token(
    store: &dyn Store,
    tenant: &TenantId,
    client: &ClientRecord,
    secret: &str,
    requested_scope: Option<&str>,
    ttl: Duration,
) -> Result<Issued, GrantOutcome> {
    let verified = verify_client_secret(client, secret).await?;
    issue_verified_access_token(store, tenant, client, &verified, requested_scope, ttl).await
}

/// A client secret that verified: the PHC string it matched.
#[derive(Debug, Clone)]
pub struct VerifiedSecret(String);

/// Verifies a client's secret: its current one, or its previous one during
/// the rotation grace. A wrong secret is [`GrantError::InvalidClient`]; too
/// many verifications already waiting (of any client) is
/// [`GrantError::Busy`]. Nothing is counted against the client: a caller
/// that knows only its `client_id` must not spend its budgets.
pub async fn verify_client_secret(
    client: &ClientRecord,
    secret: &str,
) -> Result<VerifiedSecret, GrantOutcome> {
    let now = unix_now();
    let mut hashes = vec![client.secret_hash.clone()];
    if let (Some(previous), Some(until)) =
        (&client.previous_secret_hash, client.previous_valid_until)
    {
        if now < until {
            hashes.push(previous.clone());
        }
    }
    verify_secret(secret, hashes)
        .await?
        .map(VerifiedSecret)
        .ok_or(GrantOutcome::Refused(GrantError::InvalidClient))
}

/// Issues an access token to a client whose secret was verified: narrows
/// the scopes to those requested (`None`: all of the client's) and stores a
/// new access token living `ttl`, while the client still accepts the
/// secret that verified (a rotation without grace in between refuses it as
/// [`GrantError::InvalidClient`]).
pub async fn issue_verified_access_token(
    store: &dyn Store,
    tenant: &TenantId,
    client: &ClientRecord,
    verified: &VerifiedSecret,
    requested_scope: Option<&str>,
    ttl: Duration,
) -> Result<Issued, GrantOutcome> {
    if client.scopes.is_empty() {
        return Err(GrantOutcome::Refused(GrantError::UnauthorizedClient));
    }
    let scopes = narrow_scopes(&client.scopes, requested_scope).map_err(GrantOutcome::Refused)?;
    let access_token = random_text("mat_");
    let expires_in = ttl.as_secs().max(1);
    let now_millis = unix_now_millis();
    let lifetime_millis = i64::try_from(expires_in.saturating_mul(1000)).unwrap_or(i64::MAX);
    store
        .issue_access_token(
            tenant,
            AccessTokenRecord {
                secret_hash: hash_secret(&access_token),
                client_id: client.client_id.clone(),
                scopes: scopes.clone(),
                expires_at: now_millis.saturating_add(lifetime_millis),
                verified_with: verified.0.clone(),
            },
            now_millis,
        )
        .await
        .map_err(|error| match error {
            // Revoked, or rotated without grace, between the verification
            // and the issue.
            StoreError::NotFound(_) => GrantOutcome::Refused(GrantError::InvalidClient),
            other => GrantOutcome::Failed(Error::Store(other)),
        })?;
    Ok(Issued {
        access_token,
        expires_in,
        scope: scopes.join(" "),
        client: client.name.clone(),
        tenant: tenant.clone(),
    })
}

/// The scopes of a token: those requested (space-separated, RFC 6749
/// section 3.3), each of which the client must hold, directly or through a
/// wider one it holds (`scim.write` implies `scim.read`, `admin` both, as
/// [`crate::tokens::Client::allows`] says); exactly what was requested is
/// granted. All of the client's when none are requested.
pub fn narrow_scopes(held: &[String], requested: Option<&str>) -> Result<Vec<String>, GrantError> {
    let Some(requested) = requested.filter(|text| !text.trim().is_empty()) else {
        return Ok(held.to_vec());
    };
    let holder = crate::tokens::Client {
        name: String::new(),
        tenant: TenantId::default_tenant(),
        scopes: held.to_vec(),
        matching: crate::matching::MatchPolicy::none(),
        rate_limit: None,
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|scope| !scope.is_empty()) {
        if !SCOPES.contains(&scope) {
            return Err(GrantError::InvalidScope(format!(
                "unknown scope '{scope}'; Muster's scopes are {}",
                SCOPES.join(", ")
            )));
        }
        if !holder.allows(scope) {
            return Err(GrantError::InvalidScope(format!(
                "scope '{scope}' is not granted to this client"
            )));
        }
        if !scopes.iter().any(|taken| taken == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// Options as stored, from a matching policy's text and a rate limit.
pub fn credential_options(
    matching: Option<&str>,
    rate_limit: Option<&str>,
) -> Result<CredentialOptions, String> {
    let policy = match matching {
        Some(text) => crate::matching::MatchPolicy::parse(text)?,
        None => crate::matching::MatchPolicy::none(),
    };
    Ok(CredentialOptions {
        matching: policy
            .attributes()
            .iter()
            .map(|attribute| attribute.as_str().to_owned())
            .collect(),
        rate_limit: rate_limit.map(parse_rate_limit).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|scope| (*scope).to_owned()).collect()
    }

    #[test]
    fn scopes_narrow_to_what_the_client_holds() {
        let held = owned(&["scim.read", "scim.write"]);
        let check = |requested: Option<&str>, expected: Result<&[&str], ()>| {
            let got = narrow_scopes(&held, requested).map_err(|_| ());
            assert_eq!(got, expected.map(owned), "requested {requested:?}");
        };
        check(None, Ok(&["scim.read", "scim.write"]));
        check(Some(""), Ok(&["scim.read", "scim.write"]));
        check(Some("scim.read"), Ok(&["scim.read"]));
        check(Some("scim.read  scim.read"), Ok(&["scim.read"]));
        check(Some("admin"), Err(()));
        check(Some("scim.read bogus"), Err(()));
        // A scope a held one implies is granted, exactly as requested.
        let wide = owned(&["scim.write", "admin"]);
        assert_eq!(
            narrow_scopes(&wide, Some("scim.read")),
            Ok(owned(&["scim.read"]))
        );
        let write = owned(&["scim.write"]);
        assert_eq!(
            narrow_scopes(&write, Some("scim.read")),
            Ok(owned(&["scim.read"]))
        );
        assert!(narrow_scopes(&write, Some("admin")).is_err());
        let read = owned(&["scim.read"]);
        assert!(narrow_scopes(&read, Some("scim.write")).is_err());
    }

    #[test]
    fn durations_and_rate_limits_parse() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("3w").is_err());
        assert_eq!(parse_rate_limit("off"), Ok(0));
        assert_eq!(parse_rate_limit("250"), Ok(250));
        assert!(parse_rate_limit("-1").is_err());
    }

    #[tokio::test]
    async fn secrets_verify_against_their_hash_only() {
        let new = mint_client().await.expect("mint");
        assert!(new.client_id.starts_with("mcl_"));
        assert!(new.secret_hash.starts_with("$argon2id$"));
        assert!(!new.secret_hash.contains(&new.secret));
        assert!(matches!(
            verify_secret(&new.secret, vec!["x".to_owned(), new.secret_hash.clone()]).await,
            Ok(Some(hash)) if hash == new.secret_hash
        ));
        assert!(matches!(
            verify_secret("mcs_wrong", vec![new.secret_hash.clone()]).await,
            Ok(None)
        ));
        assert!(matches!(
            verify_secret(&new.secret, vec!["not a hash".to_owned()]).await,
            Ok(None)
        ));
    }
}
