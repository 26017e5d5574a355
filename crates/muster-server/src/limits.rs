//! Limits on what one client, one request, can take of the server: a rate
//! limit per client, the size and count of request headers, and a time
//! limit per request. (Body sizes are limited in [`crate::media`].)
//!
//! The rate limit is a GCRA limiter from `governor` per tenant, client
//! name (a bearer token's or an OAuth client's) and rate, allowing the client's rate
//! in requests per second with a burst of one second's worth. The rate is
//! the client's own (`muster client create --rate-limit`, `muster token
//! create --rate-limit`) or the server's default
//! (`serve --client-rate-limit`, [`DEFAULT_CLIENT_RATE_LIMIT`]); `0` means
//! none. Over it, a request is answered `429` with `Retry-After` (whole
//! seconds, at least 1) and a SCIM error body, before any handler runs.
//!
//! Architecture Invariant: limiters live in this process's memory. With `n`
//! replicas behind a load balancer a client can reach up to `n` times its
//! limit in all; size the limit per replica.
//!
//! `/healthz` and `/readyz` authenticate nobody and are never limited.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use muster_core::tokens::Client;
use muster_scim::ScimError;
use muster_store::TenantId;

use crate::media::SCIM_JSON;
use crate::AppState;

/// The rate limit of a client that names none: requests per second.
pub const DEFAULT_CLIENT_RATE_LIMIT: u32 = 1000;

/// The most request headers accepted.
pub const MAX_HEADER_COUNT: usize = 64;

/// The most bytes of request headers (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The longest a request may take before it is answered `503`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How the server limits clients and requests (`serve` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// How long an OAuth access token lives (`--access-token-ttl`).
    pub access_token_ttl: Duration,
    /// Requests per second of a client without a limit of its own
    /// (`--client-rate-limit`); `0`: no limit.
    pub default_rate_limit: u32,
    /// The longest a request may take (`--request-timeout`).
    pub request_timeout: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            access_token_ttl: muster_core::clients::DEFAULT_ACCESS_TOKEN_TTL,
            default_rate_limit: DEFAULT_CLIENT_RATE_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// One limiter per tenant, client name and rate.
///
/// The rate is part of the key: a bearer token and an OAuth client of one
/// name but different rates each keep their own count (two credentials of
/// one name and one rate share one), and no request ever finds a limiter
/// built afresh with a full burst because another credential's rate
/// differs. A client whose rate is changed starts a new count; the old
/// limiter stays, a few bytes per rate an administrator ever set.
#[derive(Default)]
pub struct RateLimits {
    limiters: RwLock<HashMap<(TenantId, String, u32), Arc<DefaultDirectRateLimiter>>>,
}

impl RateLimits {
    /// Counts one request of `client` in `tenant` against `rate` requests
    /// per second (`0`: unlimited): `Err` with the wait until the next
    /// request is allowed when over.
    pub fn check(&self, tenant: &TenantId, name: &str, rate: u32) -> Result<(), Duration> {
        let Some(per_second) = NonZeroU32::new(rate) else {
            return Ok(());
        };
        let limiter = self.limiter(tenant, name, per_second);
        // The limiter's own clock: building one calibrates it (microseconds).
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    fn limiter(
        &self,
        tenant: &TenantId,
        name: &str,
        per_second: NonZeroU32,
    ) -> Arc<DefaultDirectRateLimiter> {
        let key = (tenant.clone(), name.to_owned(), per_second.get());
        if let Ok(limiters) = self.limiters.read() {
            if let Some(limiter) = limiters.get(&key) {
                return Arc::clone(limiter);
            }
        }
        let built = || {
            Arc::new(RateLimiter::direct(
                Quota::per_second(per_second).allow_burst(per_second),
            ))
        };
        match self.limiters.write() {
            // Another request may have built it meanwhile: the first one
            // built is kept.
            Ok(mut limiters) => Arc::clone(limiters.entry(key).or_insert_with(built)),
            // A poisoned map (a panic while writing) still limits: a
            // limiter kept in the map it cannot reach would not, so the
            // entry is taken from the inner map.
            Err(poisoned) => Arc::clone(poisoned.into_inner().entry(key).or_insert_with(built)),
        }
    }

    /// Counts one request of an authenticated client: the refusal when it
    /// is over its limit.
    pub fn admit(&self, client: &Client, default_rate: u32) -> Result<(), OverLimit> {
        let rate = client.rate_limit.unwrap_or(default_rate);
        self.check(&client.tenant, &client.name, rate)
            .map_err(|wait| OverLimit {
                name: client.name.clone(),
                rate,
                wait,
            })
    }
}

/// A request refused by its client's rate limit; answered
/// [`too_many_requests`].
#[derive(Debug)]
pub struct OverLimit {
    name: String,
    rate: u32,
    wait: Duration,
}

impl IntoResponse for OverLimit {
    fn into_response(self) -> Response {
        too_many_requests(&self.name, self.rate, self.wait)
    }
}

/// `429 Too Many Requests` with `Retry-After` (whole seconds, at least 1)
/// and a SCIM error body.
pub fn too_many_requests(name: &str, rate: u32, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let error = ScimError::status(
        429,
        format!(
            "client '{name}' is over its rate limit of {rate} requests per second; retry after {seconds} s"
        ),
    );
    let mut response = scim_response(StatusCode::TOO_MANY_REQUESTS, &error);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn scim_response(status: StatusCode, error: &ScimError) -> Response {
    let body = serde_json::to_vec(&error.to_response()).unwrap_or_default();
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// Refuses a request with too many or too large headers: `431` with a SCIM
/// error body.
pub async fn header_limits(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        let error = ScimError::status(
            431,
            format!(
                "request headers too large: {} headers, {bytes} bytes; at most {MAX_HEADER_COUNT} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        );
        return scim_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &error);
    }
    next.run(request).await
}

/// Answers a request that takes longer than the configured time `503`
/// with `Retry-After` and a SCIM error body, rather than letting it hang.
///
/// A write already handed to the store when the time runs out may still
/// commit: the client learns nothing either way, and retries under its own
/// preconditions (ETags) or idempotent semantics.
pub async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.clients.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            let error = ScimError::status(
                503,
                format!(
                    "the request took longer than {} s and was abandoned; retry",
                    limit.as_secs_f64()
                ),
            );
            let mut response = scim_response(StatusCode::SERVICE_UNAVAILABLE, &error);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let limits = RateLimits::default();
        let tenant = TenantId::default_tenant();
        for _ in 0..5 {
            assert!(limits.check(&tenant, "a", 5).is_ok());
        }
        let wait = limits.check(&tenant, "a", 5).err();
        assert!(wait.is_some_and(|wait| wait <= Duration::from_millis(200)));
        // Another client, another tenant: their own buckets.
        assert!(limits.check(&tenant, "b", 5).is_ok());
        assert!(limits.check(&TenantId("other".to_owned()), "a", 5).is_ok());
        // No limit.
        for _ in 0..100 {
            assert!(limits.check(&tenant, "c", 0).is_ok());
        }
    }

    #[test]
    fn two_rates_of_one_name_keep_their_own_counts() {
        // A bearer token and an OAuth client named alike, limited to 2 and
        // 20: alternating them never rebuilds a limiter with a full burst.
        let limits = RateLimits::default();
        let tenant = TenantId::default_tenant();
        let admitted = (0..200)
            .filter(|turn| {
                let rate = if turn % 2 == 0 { 2 } else { 20 };
                limits.check(&tenant, "okta", rate).is_ok()
            })
            .count();
        assert!(admitted <= 22 + 2, "{admitted} admitted");
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        let check = |wait: Duration, expected: &str| {
            let response = too_many_requests("a", 5, wait);
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok()),
                Some(expected)
            );
        };
        check(Duration::ZERO, "1");
        check(Duration::from_millis(3), "1");
        check(Duration::from_millis(1500), "2");
        check(Duration::from_secs(2), "2");
    }
}
