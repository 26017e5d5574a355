//! Emergency offboarding over the admin API (`admin` scope):
//! `POST /admin/v1/users/{id}/offboard` and `POST /admin/v1/users/{id}/unlock`.
//!
//! Offboarding deactivates and locks the user in one write
//! ([`muster_core::Session::offboard`]), then, before answering, delivers
//! the user to every target of the tenant at once through
//! [`muster_sync::Targets::deliver_one`] (the path of provision on demand),
//! all targets concurrently, and answers with what each target said. The
//! sync workers' own pass over the same change later is a no-op: delivery
//! is state-based. A target that cannot take a delivery on demand (a CSV
//! target, a paused one) or does not answer within [`DELIVERY_BUDGET`] is
//! reported as such; its worker delivers the change from the feed, where
//! offboarding changes go first in a batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Extension;
use muster_core::tokens::Client;
use muster_scim::ScimError;
use muster_sync::SyncError;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::media::ScimResponse;
use crate::resources::session;
use crate::{AppState, SyncHandle};

/// How long the offboarding call waits for one target's answer before it
/// reports the delivery as left to the target's worker.
pub const DELIVERY_BUDGET: Duration = Duration::from_secs(10);

/// Longest `reason` kept, in characters.
const MAX_REASON: usize = 1000;

/// The optional body `{"reason": "..."}`: an empty body gives no reason.
fn reason(body: &Bytes) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let expected = "expected an empty body or {\"reason\": \"<text>\"}";
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ScimError::invalid_syntax(format!("offboard body: {error}; {expected}"))
    })?;
    let Value::Object(fields) = value else {
        return Err(ScimError::invalid_syntax(format!(
            "offboard body is not a JSON object; {expected}"
        ))
        .into());
    };
    let mut reason = String::new();
    for (key, value) in fields {
        match (key.to_ascii_lowercase().as_str(), value) {
            ("reason", Value::String(text)) => {
                if text.chars().count() > MAX_REASON {
                    return Err(ScimError::invalid_value(format!(
                        "reason: at most {MAX_REASON} characters"
                    ))
                    .into());
                }
                reason = text;
            }
            ("reason", Value::Null) => {}
            ("reason", other) => {
                return Err(ScimError::invalid_value(format!(
                    "reason: expected a string, got {other}"
                ))
                .into())
            }
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "offboard body: unknown field '{}'; {expected}",
                    key.chars().take(64).collect::<String>()
                ))
                .into())
            }
        }
    }
    Ok(reason)
}

/// `POST /admin/v1/users/{id}/offboard` (`{id}` is an id or a userName),
/// optional body `{"reason": "..."}`: `200` with the user's state, its
/// lock and what every target answered.
pub async fn offboard(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<ScimResponse, ApiError> {
    let reason = reason(&body)?;
    let started = Instant::now();
    let session = session(&state, &client, &headers).await?;
    let id = session.find_user(&user).await?;
    let offboarded = session.offboard(&id.0, &reason).await?;
    let written = started.elapsed();
    let targets = match &state.sync {
        Some(sync) => deliver_everywhere(state.store(), Arc::clone(sync), &client, &id).await,
        None => Vec::new(),
    };
    let mut answer = offboarded.to_json();
    if let Some(object) = answer.as_object_mut() {
        object.insert("targets".to_owned(), Value::Array(targets));
        object.insert(
            "timings".to_owned(),
            json!({
                "writtenMs": millis(written),
                "deliveredMs": millis(started.elapsed()),
            }),
        );
    }
    tracing::warn!(
        tenant = %client.tenant.0,
        client = %client.name,
        user = %offboarded.id,
        "user offboarded: deactivated and locked"
    );
    Ok(ScimResponse::ok(answer))
}

/// `POST /admin/v1/users/{id}/unlock` (`{id}` is an id or a userName):
/// removes the lock; `active` stays false until the identity provider (or
/// an admin) sets it again.
pub async fn unlock(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let session = session(&state, &client, &headers).await?;
    let id = session.find_user(&user).await?;
    let unlocked = session.unlock(&id.0).await?;
    tracing::info!(
        tenant = %client.tenant.0,
        client = %client.name,
        user = %unlocked.id,
        changed = unlocked.changed,
        "user unlocked"
    );
    Ok(ScimResponse::ok(unlocked.to_json()))
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Delivers the user to every target of the client's tenant at once, all
/// targets concurrently; one entry per target, in name order (`target`,
/// `delivered`, and `outcome` or `error`). Shared with the admin console's
/// offboarding.
pub async fn deliver_everywhere(
    state_store: &dyn muster_store::Store,
    sync: Arc<SyncHandle>,
    client: &Client,
    id: &muster_store::ResourceId,
) -> Vec<Value> {
    // The stored records alone: a target's view (its backlog, its state)
    // is not needed to deliver, and costs a read of the feed.
    let records = match state_store.targets(&client.tenant).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(%error, "offboarding: the targets could not be listed");
            return vec![json!({
                "target": null,
                "delivered": false,
                "error": "the targets could not be listed (see the server log)",
            })];
        }
    };
    let mut deliveries = tokio::task::JoinSet::new();
    for record in records {
        let name = record.name;
        let sync = Arc::clone(&sync);
        let tenant = client.tenant.clone();
        let id = id.clone();
        deliveries.spawn(async move {
            let started = Instant::now();
            let delivered = tokio::time::timeout(
                DELIVERY_BUDGET,
                sync.targets.deliver_one(&tenant, &name, "User", &id, false),
            )
            .await;
            let elapsed = millis(started.elapsed());
            match delivered {
                // A delivery the target refused is a dead letter, reported
                // as `failed: ...` (see `muster sync dead-letters`).
                Ok(Ok(delivered)) => json!({
                    "target": name,
                    "delivered": !delivered.outcome.starts_with("failed"),
                    "outcome": delivered.outcome,
                    "ms": elapsed,
                }),
                Ok(Err(error)) => json!({
                    "target": name,
                    "delivered": false,
                    "error": describe(&error),
                    "ms": elapsed,
                    "then": "the target's sync worker delivers the change from the feed",
                }),
                Err(_) => json!({
                    "target": name,
                    "delivered": false,
                    "error": format!("no answer within {} s", DELIVERY_BUDGET.as_secs()),
                    "ms": elapsed,
                    "then": "the target's sync worker delivers the change from the feed",
                }),
            }
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = deliveries.join_next().await {
        match answer {
            Ok(answer) => answers.push(answer),
            Err(error) => answers.push(json!({
                "target": null,
                "delivered": false,
                "error": format!("the delivery task failed: {error}"),
            })),
        }
    }
    answers.sort_by(|a, b| {
        let name = |value: &Value| {
            value
                .get("target")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        name(a).cmp(&name(b))
    });
    answers
}

/// A sync error in words, without internals of the store.
fn describe(error: &SyncError) -> String {
    match error {
        SyncError::Store(_) | SyncError::Core(_) => {
            tracing::warn!(%error, "offboarding delivery failed");
            "the delivery failed (see the server log)".to_owned()
        }
        other => other.to_string(),
    }
}
