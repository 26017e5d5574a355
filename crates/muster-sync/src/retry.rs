//! Which failed requests are worth sending again, and how long to wait.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

use crate::client::Exchange;

/// How many times a request answered `500` is sent before it becomes a
/// dead letter (a target's fault for one resource should not hold up the
/// others forever).
pub const SERVER_ERROR_ATTEMPTS: u32 = 5;

/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The first wait.
const BASE_BACKOFF: Duration = Duration::from_millis(250);

/// What to do after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The answer stands (a success, or a refusal the caller handles).
    Final,
    /// The target is unavailable, throttling or refusing the credentials:
    /// send again after `after` (the target's `Retry-After`) or a backoff,
    /// for as long as it takes.
    Retry {
        /// What the target asked for.
        after: Option<std::time::Duration>,
    },
    /// An internal server error: send again a few times.
    RetrySome,
}

impl Verdict {
    /// The verdict on an exchange.
    pub fn of(exchange: &Exchange) -> Verdict {
        let Some(status) = exchange.status else {
            return Verdict::Retry { after: None };
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN => Verdict::Retry {
                after: exchange.retry_after,
            },
            status if status.is_server_error() => Verdict::RetrySome,
            _ => Verdict::Final,
        }
    }
}

/// Exponential backoff with full jitter: a random wait up to
/// `BASE * 2^(attempt-1)`, capped at [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(MAX_BACKOFF);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BASE_BACKOFF);
        assert!(backoff(4) >= BASE_BACKOFF * 4);
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
