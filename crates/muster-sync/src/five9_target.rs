//! A `five9` target in the engine: each touched user delivered through the
//! SOAP Admin Web Service ([`crate::five9`]), what Five9 holds recorded
//! like any target's, refusals kept as dead letters, the operations limit
//! waited out.

use std::sync::Arc;

use muster_scim::SchemaRegistry;
use muster_store::sync::{DeliveredObject, NewDeadLetter};
use muster_store::{ResourceId, Store, StoreError, TenantId};
use muster_targets::{Auth, CompiledTarget};
use serde_json::{json, Value};

use crate::deliver::{now, Outcome};
use crate::five9::{Five9Action, Five9Config, Five9Delivery, Five9Error, SkillLevelScale};
use crate::secrets::SecretKey;
use crate::status::TargetStatus;
use crate::SyncError;

/// Five9's level for Muster's proficiency 5 and 0 when the document gives
/// no `skillScale` (level 1 is taken as the best; unverified).
const DEFAULT_SCALE: (u8, u8) = (1, 6);

/// A compiled `five9` target with its SOAP client.
pub struct Five9Target {
    /// The tenant.
    pub tenant: TenantId,
    /// The target's name.
    pub name: String,
    /// The compiled document.
    pub target: CompiledTarget,
    delivery: Five9Delivery,
    store: Arc<dyn Store>,
    status: Arc<TargetStatus>,
    max_attempts: Option<u32>,
}

impl Five9Target {
    /// A target over `store`, its password opened with `key`.
    pub fn new(
        tenant: TenantId,
        target: CompiledTarget,
        key: &SecretKey,
        store: Arc<dyn Store>,
        status: Arc<TargetStatus>,
        max_attempts: Option<u32>,
    ) -> Result<Self, SyncError> {
        let Some(Auth::Basic { username, password }) = &target.document.auth else {
            return Err(SyncError::Config("a five9 target needs basic auth".into()));
        };
        let endpoint = target
            .base_url
            .as_ref()
            .map(|url| url.as_str().to_owned())
            .ok_or_else(|| SyncError::Config("the five9 target has no endpoint".into()))?;
        let mut config = Five9Config::new(&endpoint, username, &key.reveal(password)?);
        let (best, worst) = target
            .document
            .skill_scale
            .map_or(DEFAULT_SCALE, |scale| (scale.best, scale.worst));
        config.skill_level = linear_levels(best, worst);
        let delivery = Five9Delivery::new(config, Some(target.rate_limit))?;
        Ok(Five9Target {
            tenant,
            name: target.document.name.clone(),
            target,
            delivery,
            store,
            status,
            max_attempts,
        })
    }

    /// Brings Five9 in line with one Muster user.
    pub async fn sync_user(
        &self,
        registry: &SchemaRegistry,
        id: &ResourceId,
    ) -> Result<Outcome, SyncError> {
        let current = match self.store.get(&self.tenant, "User", id, false).await {
            Ok(stored) => Some(stored.resource),
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let user = current.filter(|user| self.target.user_in_scope(user, registry));
        let known = self
            .store
            .delivered(&self.tenant, &self.name, "User", id)
            .await?;
        let mut attempt = 0u32;
        loop {
            let previous = known.as_ref().map(|known| &known.sent);
            match self.delivery.deliver_user(user.as_ref(), previous).await {
                Ok(outcome) => {
                    let Some(delivered) = outcome.delivered else {
                        self.store
                            .forget_delivery(&self.tenant, &self.name, "User", id)
                            .await?;
                        return Ok(Outcome::Skipped);
                    };
                    let not_delivered: Vec<String> = outcome
                        .not_delivered
                        .iter()
                        .map(|item| format!("{}: {}", item.attribute, item.reason))
                        .collect();
                    let remote = delivered
                        .get("userName")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let mut sent = delivered;
                    if let Some(fields) = sent.as_object_mut() {
                        fields.insert("notDelivered".into(), json!(outcome.not_delivered));
                    }
                    let deprovisioned = outcome.action == Five9Action::Deactivated;
                    self.store
                        .record_delivery(
                            &self.tenant,
                            &self.name,
                            DeliveredObject {
                                resource_type: "User".into(),
                                resource_id: id.clone(),
                                remote_id: remote,
                                sent,
                                delivered: now(),
                                status: Some(200),
                                answer: Some(if not_delivered.is_empty() {
                                    outcome.operations.join(", ")
                                } else {
                                    format!("not delivered: {}", not_delivered.join("; "))
                                }),
                                deprovisioned,
                            },
                        )
                        .await?;
                    return Ok(match outcome.action {
                        Five9Action::Created | Five9Action::Matched => Outcome::Created,
                        Five9Action::Updated => Outcome::Updated,
                        Five9Action::Unchanged => Outcome::Unchanged,
                        Five9Action::Deactivated => Outcome::Deprovisioned,
                        Five9Action::Absent => Outcome::Skipped,
                    });
                }
                Err(Five9Error::Retry { after, reason }) => {
                    attempt += 1;
                    if self.max_attempts.is_some_and(|most| attempt >= most) {
                        return Err(SyncError::Config(format!("Five9: {reason}")));
                    }
                    self.status
                        .note_dead_letter(&format!("will retry: {reason}"));
                    tokio::time::sleep(after).await;
                }
                Err(Five9Error::Unauthorized { status }) => {
                    return Err(SyncError::Config(format!(
                        "Five9 refused the credentials (HTTP {status}); fix auth and put the target again"
                    )));
                }
                Err(Five9Error::Refused {
                    operation,
                    request,
                    fault,
                }) => {
                    let reason = format!("Five9 refused {operation}: {fault}");
                    self.status.note_dead_letter(&reason);
                    self.store
                        .add_dead_letter(
                            &self.tenant,
                            &self.name,
                            NewDeadLetter {
                                resource_type: "User".into(),
                                resource_id: id.clone(),
                                request: json!({"operation": operation, "envelope": request}),
                                response: json!({"fault": fault}),
                                reason: reason.clone(),
                            },
                        )
                        .await?;
                    return Ok(Outcome::DeadLettered(reason));
                }
            }
        }
    }
}

/// Five9 levels for Muster's proficiency 0 to 5, linear from `worst` (0)
/// to `best` (5), rounded.
fn linear_levels(best: u8, worst: u8) -> SkillLevelScale {
    let mut levels = [0i64; 6];
    for (proficiency, level) in levels.iter_mut().enumerate() {
        let step = f64::from(i32::from(best) - i32::from(worst)) / 5.0;
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let value = (f64::from(worst) + step * proficiency as f64).round() as i64;
        *level = value;
    }
    SkillLevelScale { levels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scale_is_six_minus_proficiency() {
        assert_eq!(linear_levels(1, 6).levels, [6, 5, 4, 3, 2, 1]);
        assert_eq!(linear_levels(5, 1).levels, [1, 2, 3, 3, 4, 5]);
    }
}
