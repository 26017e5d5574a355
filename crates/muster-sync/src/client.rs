//! Calls to a SCIM target: authentication (a bearer token, or OAuth client
//! credentials with the access token cached until shortly before it
//! expires), the target's token bucket, and an account of every exchange
//! that the engine records (secrets left out).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use url::Url;

use muster_targets::{Auth, CompiledTarget, RateLimit};

use crate::secrets::SecretKey;
use crate::SyncError;

/// How long one call may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The SCIM media type.
const SCIM_JSON: &str = "application/scim+json";

/// Most bytes of an answer's body kept in an exchange.
const MAX_KEPT_BODY: usize = 4096;

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The method.
    pub method: Method,
    /// The URL called.
    pub url: String,
    /// The body sent.
    pub body: Option<Value>,
    /// The status, when an answer came.
    pub status: Option<StatusCode>,
    /// The answer's body (JSON, or a string holding the start of the text).
    pub answer: Value,
    /// What `Retry-After` asked for.
    pub retry_after: Option<Duration>,
    /// The transport error, when no answer came.
    pub error: Option<String>,
}

impl Exchange {
    /// The request, as kept in a dead letter or shown by a dry run.
    pub fn request_json(&self) -> Value {
        json!({"method": self.method.as_str(), "url": self.url, "body": self.body})
    }

    /// The answer, as kept in a dead letter.
    pub fn response_json(&self) -> Value {
        match (&self.status, &self.error) {
            (Some(status), _) => json!({"status": status.as_u16(), "body": self.answer}),
            (None, Some(error)) => json!({"error": error}),
            (None, None) => Value::Null,
        }
    }

    /// A one-line account of the answer.
    pub fn summary(&self) -> String {
        match (&self.status, &self.error) {
            (Some(status), _) => {
                let detail = self
                    .answer
                    .get("detail")
                    .and_then(Value::as_str)
                    .map(|detail| format!(": {detail}"))
                    .unwrap_or_default();
                format!("{} {}{detail}", self.method, status)
            }
            (None, Some(error)) => format!("{} failed: {error}", self.method),
            (None, None) => format!("{} not sent", self.method),
        }
    }

    /// Whether the target accepted the request.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.is_success())
    }
}

enum Credentials {
    Bearer(String),
    OAuth(Box<ClientCredentials>),
    AccessKey(Box<AccessKey>),
}

/// A NICE CXone access key and the access token it last gave.
struct AccessKey {
    token_url: Url,
    key_id: String,
    key_secret: String,
    cached: Mutex<Option<(String, Instant)>>,
}

/// OAuth client credentials and the access token they last gave.
struct ClientCredentials {
    token_url: Url,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    cached: Mutex<Option<(String, Instant)>>,
}

/// A client of one SCIM target.
pub struct ScimClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// The token bucket of a rate limit.
pub fn limiter(rate: RateLimit) -> DefaultDirectRateLimiter {
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs_f64(1.0 / rate.requests_per_second.max(0.0001));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}

impl ScimClient {
    /// A client for a compiled `scim` target, its secrets opened with `key`.
    pub fn new(target: &CompiledTarget, key: &SecretKey) -> Result<ScimClient, SyncError> {
        let base = target
            .base_url
            .as_ref()
            .ok_or_else(|| SyncError::Config("the target has no baseUrl".into()))?
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let credentials = match &target.document.auth {
            Some(Auth::Bearer { token }) => Credentials::Bearer(key.reveal(token)?),
            Some(Auth::OauthClientCredentials {
                client_id,
                client_secret,
                scope,
                ..
            }) => Credentials::OAuth(Box::new(ClientCredentials {
                token_url: target
                    .token_url
                    .clone()
                    .ok_or_else(|| SyncError::Config("the target has no tokenUrl".into()))?,
                client_id: client_id.clone(),
                client_secret: key.reveal(client_secret)?,
                scope: scope.clone(),
                cached: Mutex::new(None),
            })),
            Some(Auth::AccessKey {
                access_key_id,
                access_key_secret,
                ..
            }) => Credentials::AccessKey(Box::new(AccessKey {
                token_url: target
                    .token_url
                    .clone()
                    .ok_or_else(|| SyncError::Config("the target has no tokenUrl".into()))?,
                key_id: access_key_id.clone(),
                key_secret: key.reveal(access_key_secret)?,
                cached: Mutex::new(None),
            })),
            Some(Auth::Basic { .. }) | None => {
                return Err(SyncError::Config(
                    "the target has no bearer, OAuth or access-key auth".into(),
                ))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| SyncError::Config(format!("HTTP client: {error}")))?;
        Ok(ScimClient {
            http,
            base,
            credentials,
            limiter: Arc::new(limiter(target.rate_limit)),
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls an absolute URL of the same service (a platform API beside its
    /// SCIM endpoint), with the same credentials and token bucket.
    /// Sends `If-Match: if_match` when given (the version a write expects
    /// the target to hold).
    pub async fn call_url(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Exchange {
        self.limiter.until_ready().await;
        let mut exchange = Exchange {
            method: method.clone(),
            url: url.clone(),
            body: body.clone(),
            status: None,
            answer: Value::Null,
            retry_after: None,
            error: None,
        };
        let token = match self.token(false).await {
            Ok(token) => token,
            Err(error) => {
                exchange.error = Some(error);
                return exchange;
            }
        };
        let mut answer = self
            .send(&method, &url, body.as_ref(), &token, if_match)
            .await;
        if matches!(&answer, Ok(response) if response.status() == StatusCode::UNAUTHORIZED)
            && matches!(
                self.credentials,
                Credentials::OAuth(_) | Credentials::AccessKey(_)
            )
        {
            // The access token may have been revoked early: fetch a new one once.
            match self.token(true).await {
                Ok(token) => {
                    answer = self
                        .send(&method, &url, body.as_ref(), &token, if_match)
                        .await;
                }
                Err(error) => {
                    exchange.error = Some(error);
                    return exchange;
                }
            }
        }
        match answer {
            Ok(response) => {
                exchange.status = Some(response.status());
                exchange.retry_after = retry_after(response.headers());
                let bytes = response.bytes().await.unwrap_or_default();
                exchange.answer = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    let text = String::from_utf8_lossy(&bytes);
                    Value::String(text.chars().take(MAX_KEPT_BODY).collect())
                });
            }
            Err(error) => exchange.error = Some(describe(&error)),
        }
        exchange
    }

    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        token: &str,
        if_match: Option<&str>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, SCIM_JSON);
        if let Some(version) = if_match {
            request = request.header(reqwest::header::IF_MATCH, version);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                .body(body.to_string());
        }
        request.send().await
    }

    /// The HTTP client (for a platform API beside the SCIM endpoint).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn token(&self, renew: bool) -> Result<String, String> {
        match &self.credentials {
            Credentials::Bearer(token) => Ok(token.clone()),
            Credentials::AccessKey(access) => {
                let mut cached = access.cached.lock().await;
                if let Some((token, until)) = cached.as_ref() {
                    if !renew && Instant::now() < *until {
                        return Ok(token.clone());
                    }
                }
                let body = serde_json::json!({
                    "accessKeyId": access.key_id,
                    "accessKeySecret": access.key_secret,
                });
                let response = self
                    .http
                    .post(access.token_url.clone())
                    .json(&body)
                    .send()
                    .await
                    .map_err(|error| format!("token endpoint: {}", describe(&error)))?;
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                if !status.is_success() {
                    return Err(format!("the access-key token endpoint answered {status}"));
                }
                let token = answer
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or("the token endpoint's answer has no access_token")?
                    .to_owned();
                let lifetime = answer
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(3600);
                let until =
                    Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
                *cached = Some((token.clone(), until));
                Ok(token)
            }
            Credentials::OAuth(credentials) => {
                let ClientCredentials {
                    token_url,
                    client_id,
                    client_secret,
                    scope,
                    cached,
                } = credentials.as_ref();
                let mut cached = cached.lock().await;
                if let Some((token, until)) = cached.as_ref() {
                    if !renew && Instant::now() < *until {
                        return Ok(token.clone());
                    }
                }
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(scope) = scope {
                    form.push(("scope", scope));
                }
                let response = self
                    .http
                    .post(token_url.clone())
                    .basic_auth(client_id, Some(client_secret))
                    .form(&form)
                    .send()
                    .await
                    .map_err(|error| format!("token endpoint: {}", describe(&error)))?;
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if !status.is_success() {
                    let error = body.get("error").and_then(Value::as_str).unwrap_or("");
                    return Err(format!("token endpoint answered {status} {error}"));
                }
                let token = body
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or("the token endpoint's answer has no access_token")?
                    .to_owned();
                let lifetime = body
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(300);
                // Renew a little early, so no request carries an expiring token.
                let until =
                    Instant::now() + Duration::from_secs(lifetime.saturating_sub(30).max(1));
                *cached = Some((token.clone(), until));
                Ok(token)
            }
        }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc2822)
            .ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs_f64(wait.as_seconds_f64().max(0.0)))
}

/// A transport error in one line, without the URL's query.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
