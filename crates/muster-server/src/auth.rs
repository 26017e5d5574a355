//! Bearer tokens: minting, hashing, checking scopes, and the middleware that
//! authenticates each request and writes its one log line.
//!
//! A token is `mst_` followed by 256 random bits, so a single SHA-256 is a safe
//! way to store it (a slow password hash is for low-entropy secrets). The
//! secret is printed once by `muster token create` and never stored, logged or
//! echoed; only its hash reaches the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use muster_store::{TenantId, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

/// Read SCIM resources.
pub const SCOPE_READ: &str = "scim.read";
/// Create, change and delete SCIM resources (implies read).
pub const SCOPE_WRITE: &str = "scim.write";
/// Administer Muster: schemas, tokens (implies read and write).
pub const SCOPE_ADMIN: &str = "admin";
/// Every scope a token may carry.
pub const SCOPES: [&str; 3] = [SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];

/// How long a verified token stays cached; a revoked token stops working
/// within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The token name, used in logs and change records.
    pub name: String,
    /// The tenant the token belongs to.
    pub tenant: TenantId,
    /// Granted scopes.
    pub scopes: Vec<String>,
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

/// The stored form of a bearer secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Verified tokens by hash, kept briefly to spare a database read per request.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Client, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Client> {
        let entries = self.entries.lock().ok()?;
        let (client, at) = entries.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| client.clone())
    }

    fn put(&self, hash: String, client: Client) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(hash, (client, Instant::now()));
        }
    }
}

/// The scope a request needs, from its method and path.
fn required_scope(method: &Method, path: &str) -> &'static str {
    if path.starts_with("/admin/") {
        SCOPE_ADMIN
    } else if method == Method::GET || method == Method::HEAD || path.ends_with("/.search") {
        SCOPE_READ
    } else {
        SCOPE_WRITE
    }
}

async fn authenticate(state: &AppState, authorization: Option<&str>) -> Result<Client, ApiError> {
    let header_value = authorization
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let secret = Some(header_value)
        .and_then(|value| {
            let (scheme, secret) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
        })
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be 'Bearer <token>'"))?;
    let hash = hash_secret(secret);
    if let Some(client) = state.tokens.get(&hash) {
        return Ok(client);
    }
    let (tenant, TokenRecord { name, scopes, .. }) = state
        .store
        .find_token(&hash)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked bearer token"))?;
    let client = Client {
        name,
        tenant,
        scopes,
    };
    state.tokens.put(hash, client.clone());
    Ok(client)
}

/// Authenticates `/scim/v2` and `/admin` requests, enforces the scope, and
/// logs one line per request: method, path, status, latency, client and
/// request id. Never logs headers or bodies.
pub async fn authenticate_and_log(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let needs_auth = path.starts_with("/scim/") || path.starts_with("/admin/");
    let mut client_name = String::from("-");
    let response = if needs_auth {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default().to_owned());
        match authenticate(&state, authorization.as_deref()).await {
            Ok(client) => {
                client_name.clone_from(&client.name);
                let scope = required_scope(&method, &path);
                if client.allows(scope) {
                    request.extensions_mut().insert(client);
                    next.run(request).await
                } else {
                    ApiError::forbidden(format!(
                        "token '{}' lacks the '{scope}' scope this request needs",
                        client.name
                    ))
                    .into_response()
                }
            }
            Err(error) => error.into_response(),
        }
    } else {
        next.run(request).await
    };
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        client = client_name,
        request_id,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("mst_") && a.secret.len() > 40);
        assert_eq!(a.secret_hash, hash_secret(&a.secret));
        assert!(!a.secret_hash.contains(&a.secret));
    }

    #[test]
    fn scopes_imply_narrower_ones() {
        let client = |scopes: &[&str]| Client {
            name: "t".into(),
            tenant: TenantId::default_tenant(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert!(client(&[SCOPE_WRITE]).allows(SCOPE_READ));
        assert!(!client(&[SCOPE_READ]).allows(SCOPE_WRITE));
        assert!(client(&[SCOPE_ADMIN]).allows(SCOPE_WRITE));
        assert!(!client(&[SCOPE_WRITE]).allows(SCOPE_ADMIN));
        assert_eq!(
            required_scope(&Method::POST, "/scim/v2/Users/.search"),
            SCOPE_READ
        );
        assert_eq!(
            required_scope(&Method::PATCH, "/scim/v2/Users/x"),
            SCOPE_WRITE
        );
        assert_eq!(
            required_scope(&Method::GET, "/admin/v1/schemas"),
            SCOPE_ADMIN
        );
    }
}
