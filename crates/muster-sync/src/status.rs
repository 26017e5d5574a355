//! What a target's worker knows of itself (last success, last error,
//! throttling, the deletion guard's window) and the Prometheus metrics of
//! every target.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muster_store::{Store, TenantId};
use muster_targets::DeletionGuard;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::client::Exchange;
use crate::deliver::now;
use crate::SyncError;

/// The labels of a target's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// The tenant.
    pub tenant: String,
    /// The target.
    pub target: String,
}

/// The labels of a delivery count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The tenant.
    pub tenant: String,
    /// The target.
    pub target: String,
    /// `created`, `updated`, `unchanged`, `deprovisioned`, `dead_letter`.
    pub outcome: String,
}

/// The labels of a request count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The tenant.
    pub tenant: String,
    /// The target.
    pub target: String,
    /// The HTTP status, or `error` when no answer came.
    pub status: String,
}

/// Every target's metrics, registered in one Prometheus registry.
pub struct Metrics {
    registry: Registry,
    /// Changes waiting per target.
    pub queue_depth: Family<TargetLabels, Gauge>,
    /// Deliveries by outcome.
    pub deliveries: Family<OutcomeLabels, Counter>,
    /// Requests by status.
    pub requests: Family<RequestLabels, Counter>,
    /// From a change's commit to its delivery, seconds.
    pub delivery_latency: Family<TargetLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("muster_sync");
        let queue_depth = Family::<TargetLabels, Gauge>::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let delivery_latency =
            Family::<TargetLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "queue_depth",
            "Changes committed and not yet delivered, per target",
            queue_depth.clone(),
        );
        registry.register(
            "deliveries",
            "Resources delivered, per target and outcome",
            deliveries.clone(),
        );
        registry.register(
            "requests",
            "Requests sent to targets, per status",
            requests.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "From a change's commit in Muster to the target's acknowledgement",
            delivery_latency.clone(),
        );
        Metrics {
            registry,
            queue_depth,
            deliveries,
            requests,
            delivery_latency,
        }
    }
}

impl Metrics {
    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// What a worker reports of itself (stored with the target, so every
/// process can show it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerState {
    /// When the target last acknowledged a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// The last failure, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last failure happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
    /// Requests that failed since the worker started.
    #[serde(default)]
    pub errors: u64,
    /// Until when the target asked Muster to wait (a `429` or `503` with
    /// `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_until: Option<String>,
    /// The sequence the worker has delivered up to.
    #[serde(default)]
    pub cursor: u64,
}

/// One target's live status.
pub struct TargetStatus {
    tenant: TenantId,
    target: String,
    metrics: Arc<Metrics>,
    state: Mutex<WorkerState>,
    guard: Option<DeletionGuard>,
    removals: Mutex<VecDeque<Instant>>,
    /// How many users the target holds (refreshed by the worker; the
    /// deletion guard's denominator).
    population: std::sync::atomic::AtomicU64,
    /// Whether the changes being delivered are ones an admin confirmed
    /// (set by the worker per batch): the guard lets their removals through.
    pub confirmed: std::sync::atomic::AtomicBool,
}

impl TargetStatus {
    /// A fresh status.
    pub fn new(
        tenant: TenantId,
        target: String,
        guard: Option<DeletionGuard>,
        metrics: Arc<Metrics>,
    ) -> Self {
        TargetStatus {
            tenant,
            target,
            metrics,
            state: Mutex::new(WorkerState::default()),
            guard,
            removals: Mutex::new(VecDeque::new()),
            population: std::sync::atomic::AtomicU64::new(0),
            confirmed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn labels(&self) -> TargetLabels {
        TargetLabels {
            tenant: self.tenant.0.clone(),
            target: self.target.clone(),
        }
    }

    /// A snapshot of the state.
    pub fn state(&self) -> WorkerState {
        self.state
            .lock()
            .map(|state| state.clone())
            .unwrap_or_default()
    }

    fn update(&self, change: impl FnOnce(&mut WorkerState)) {
        if let Ok(mut state) = self.state.lock() {
            change(&mut state);
        }
    }

    /// Counts a request and its answer.
    pub fn observe(&self, exchange: &Exchange, _took: Duration) {
        let status = exchange
            .status
            .map_or_else(|| "error".to_owned(), |status| status.as_u16().to_string());
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                tenant: self.tenant.0.clone(),
                target: self.target.clone(),
                status,
            })
            .inc();
        if exchange.succeeded() {
            self.update(|state| {
                state.last_success = Some(now());
                state.throttled_until = None;
            });
        }
    }

    /// Notes a failed request about to be retried after `wait`.
    pub fn note_retry(&self, exchange: &Exchange, wait: Duration) {
        let throttled = exchange.retry_after.is_some();
        tracing::warn!(
            tenant = %self.tenant.0,
            target = %self.target,
            answer = %exchange.summary(),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "delivery will be retried"
        );
        self.update(|state| {
            state.errors += 1;
            state.last_error = Some(exchange.summary());
            state.last_error_at = Some(now());
            if throttled {
                let until = time::OffsetDateTime::now_utc() + wait;
                state.throttled_until = until
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok();
            }
        });
    }

    /// Notes a dead letter.
    pub fn note_dead_letter(&self, reason: &str) {
        tracing::warn!(tenant = %self.tenant.0, target = %self.target, reason, "dead letter");
        self.update(|state| {
            state.errors += 1;
            state.last_error = Some(reason.to_owned());
            state.last_error_at = Some(now());
        });
    }

    /// Notes mappings that failed on a resource.
    pub fn note_mapping_errors(&self, errors: &[(String, String)]) {
        for (target, error) in errors {
            tracing::warn!(tenant = %self.tenant.0, target = %self.target, attribute = %target, error, "mapping failed");
        }
    }

    /// Counts a delivery.
    pub fn count(&self, outcome: &str) {
        self.metrics
            .deliveries
            .get_or_create(&OutcomeLabels {
                tenant: self.tenant.0.clone(),
                target: self.target.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Observes the time from a change's commit to its delivery.
    pub fn observe_latency(&self, seconds: f64) {
        self.metrics
            .delivery_latency
            .get_or_create(&self.labels())
            .observe(seconds);
    }

    /// Sets the queue depth and the cursor.
    pub fn set_queue(&self, depth: u64, cursor: u64) {
        self.metrics
            .queue_depth
            .get_or_create(&self.labels())
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.update(|state| state.cursor = cursor);
    }

    /// Sets how many users the target holds, the guard's denominator. While
    /// removals are counted in the window, the denominator never shrinks:
    /// the share is of the users held when the removals began.
    pub fn set_population(&self, held: u64) {
        let counting = self
            .removals
            .lock()
            .map(|removals| !removals.is_empty())
            .unwrap_or(false);
        if counting {
            self.population
                .fetch_max(held, std::sync::atomic::Ordering::Relaxed);
        } else {
            self.population
                .store(held, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts one user about to be deactivated or deleted; when that puts
    /// the window over the guard's share, pauses the target (stored, so it
    /// holds across restarts) and refuses.
    pub async fn guard_removal(
        &self,
        store: &Arc<dyn Store>,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), SyncError> {
        let Some(guard) = self.guard else {
            return Ok(());
        };
        if self.confirmed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let population = self
            .population
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        let (count, allowed) = {
            let Ok(mut removals) = self.removals.lock() else {
                return Ok(());
            };
            let window = Duration::from_secs(guard.window_seconds);
            while removals.front().is_some_and(|at| at.elapsed() > window) {
                removals.pop_front();
            }
            let count = u64::try_from(removals.len()).unwrap_or(u64::MAX) + 1;
            // The share is of the users the target holds; a handful is always allowed.
            #[allow(clippy::cast_precision_loss)]
            let share = count as f64 / population as f64;
            let allowed = count <= guard.minimum || share <= guard.max_share;
            if allowed {
                removals.push_back(Instant::now());
            }
            (count, allowed)
        };
        if allowed {
            return Ok(());
        }
        let reason = format!(
            "deletion guard: {count} of {population} users would be removed within {} s \
             (more than {:.0}%); check the change, then `muster sync resume {name}`",
            guard.window_seconds,
            guard.max_share * 100.0
        );
        store.set_target_paused(tenant, name, Some(&reason)).await?;
        tracing::warn!(tenant = %tenant.0, target = name, reason, "target paused");
        Err(SyncError::Paused {
            target: name.to_owned(),
            reason,
        })
    }
}
