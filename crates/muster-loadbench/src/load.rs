//! The load engine: `C` tasks issue requests back to back until a request
//! count or a deadline is reached, each recording latencies in its own
//! histogram; the histograms are merged when the phase ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

/// Highest latency a histogram records, in microseconds (longer ones are
/// clamped to it); equal to the longest request timeout one can sensibly set.
const MAX_LATENCY_US: u64 = 600_000_000;

/// How many distinct error messages a phase keeps to show.
const KEPT_ERRORS: usize = 3;

/// The outcome of one request: the response size on success, a short
/// message on failure.
pub type Outcome = std::result::Result<usize, String>;

/// A boxed request future.
pub type RequestFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Makes the request number `seq` (0-based, in issue order), given a fresh
/// random number.
pub type RequestFn = Arc<dyn Fn(usize, u64) -> RequestFuture + Send + Sync>;

/// When a phase stops.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Stop after this many requests have been issued, if set.
    pub requests: Option<usize>,
    /// Stop issuing requests after this much time; in-flight ones finish.
    pub duration: Duration,
}

/// Figures for one phase against one target.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed (transport error or unexpected status).
    pub errors: u64,
    /// Wall-clock time of the phase.
    pub elapsed: Duration,
    /// Latencies of the successful requests, in microseconds.
    pub latency: Histogram<u64>,
    /// Total bytes of the successful responses' bodies.
    pub response_bytes: u64,
    /// A few distinct error messages.
    pub sample_errors: Vec<String>,
    /// Concurrency the phase ran with.
    pub concurrency: usize,
}

impl PhaseResult {
    /// Successful requests per second.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The latency at quantile `q` in milliseconds, if any request succeeded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.latency.is_empty() {
            None
        } else {
            Some(self.latency.value_at_quantile(q) as f64 / 1000.0)
        }
    }

    /// The largest latency in milliseconds, if any request succeeded.
    pub fn max_ms(&self) -> Option<f64> {
        if self.latency.is_empty() {
            None
        } else {
            Some(self.latency.max() as f64 / 1000.0)
        }
    }

    /// Mean response body size in bytes.
    pub fn mean_response_bytes(&self) -> u64 {
        self.response_bytes.checked_div(self.ok).unwrap_or(0)
    }
}

impl PhaseResult {
    /// Counts one request that took `took`.
    pub fn record(&mut self, outcome: Outcome, took: Duration) {
        match outcome {
            Ok(bytes) => {
                self.ok += 1;
                self.response_bytes += bytes as u64;
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                self.latency
                    .saturating_record(micros.clamp(1, MAX_LATENCY_US));
            }
            Err(message) => {
                self.errors += 1;
                self.keep_error(message);
            }
        }
    }

    /// Keeps `message` if it is new and there is room.
    fn keep_error(&mut self, message: String) {
        if self.sample_errors.len() < KEPT_ERRORS && !self.sample_errors.contains(&message) {
            self.sample_errors.push(message);
        }
    }

    /// Adds the counts and latencies of `other` (not its elapsed time).
    pub fn merge(&mut self, other: PhaseResult) -> Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        self.response_bytes += other.response_bytes;
        self.latency
            .add(&other.latency)
            .context("merging latency histograms")?;
        for message in other.sample_errors {
            self.keep_error(message);
        }
        Ok(())
    }
}

/// A new latency histogram (1 µs to [`MAX_LATENCY_US`], 3 significant digits).
fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("creating a latency histogram")
}

/// A result with nothing counted yet.
pub fn empty_result(concurrency: usize) -> Result<PhaseResult> {
    Ok(PhaseResult {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: new_histogram()?,
        response_bytes: 0,
        sample_errors: Vec::new(),
        concurrency,
    })
}

/// Runs one phase: `concurrency` tasks call `request` until `bound` is met.
pub async fn run(
    concurrency: usize,
    bound: Bound,
    seed: u64,
    request: RequestFn,
) -> Result<PhaseResult> {
    let concurrency = concurrency.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + bound.duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let next = Arc::clone(&next);
        let request = Arc::clone(&request);
        let mut rng =
            SplitMix64::new(seed ^ ((task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let mut stats = empty_result(1)?;
        tasks.push(tokio::spawn(async move {
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if bound.requests.is_some_and(|limit| seq >= limit) {
                    break;
                }
                let start = Instant::now();
                let outcome = request(seq, rng.next_u64()).await;
                stats.record(outcome, start.elapsed());
            }
            stats
        }));
    }
    let mut result = empty_result(concurrency)?;
    for task in tasks {
        result.merge(task.await.context("a load task failed")?)?;
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// A tiny, fast pseudo-random generator (SplitMix64); the benchmark needs
/// spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next random number.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Maps a random number onto `0..len` (`0` when `len` is 0).
pub fn pick(random: u64, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        // Multiply-shift keeps the result below `len` without a modulo bias worth noting.
        ((u128::from(random) * len as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for len in [1usize, 2, 3, 10, 1000] {
            for _ in 0..1000 {
                assert!(pick(rng.next_u64(), len) < len);
            }
        }
        assert_eq!(pick(u64::MAX, 0), 0);
    }

    #[tokio::test]
    async fn run_stops_at_request_count() {
        let request: RequestFn = Arc::new(|seq, _| {
            Box::pin(async move {
                if seq % 10 == 0 {
                    Err("boom".to_owned())
                } else {
                    Ok(5)
                }
            })
        });
        let bound = Bound {
            requests: Some(100),
            duration: Duration::from_secs(60),
        };
        let result = run(4, bound, 1, request).await.unwrap();
        assert_eq!(result.ok, 90);
        assert_eq!(result.errors, 10);
        assert_eq!(result.response_bytes, 450);
        assert_eq!(result.sample_errors, vec!["boom".to_owned()]);
        assert!(result.quantile_ms(0.5).is_some());
    }

    #[tokio::test]
    async fn run_stops_at_deadline() {
        let request: RequestFn = Arc::new(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(1)
            })
        });
        let bound = Bound {
            requests: None,
            duration: Duration::from_millis(100),
        };
        let result = run(2, bound, 1, request).await.unwrap();
        assert!(result.ok > 0);
        assert!(result.elapsed < Duration::from_secs(5));
    }
}
