//! The entitlement-rules admin API (`/admin/v1/rules`, `admin` scope): the
//! rule set in force and its history, apply with a dry run or a rollback,
//! coverage, and why a user holds what it holds. The procedures are
//! [`muster_core::rules`], shared with `muster rules ...`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use muster_core::rules::{
    apply_rules, explain_user, roll_back, rule_set_record, rules_stats, ApplyRules, RulesDocument,
};
use muster_core::tokens::Client;
use muster_scim::ScimError;
use muster_store::RuleSetRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::media::{RulesText, ScimResponse};
use crate::resources::actor;
use crate::AppState;

/// Query parameters of `GET /admin/v1/rules`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ShowOptions {
    /// A version other than the one in force.
    version: Option<u64>,
}

/// Query parameters of `PUT /admin/v1/rules`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ApplyOptions {
    /// Only report what would change.
    dry_run: bool,
    /// Show this user's before and after (`userName` or id).
    user: Option<String>,
    /// Apply this earlier version again (a rollback); the body is ignored.
    version: Option<u64>,
}

fn record_json(record: &RuleSetRecord) -> Value {
    json!({
        "version": record.version,
        "format": record.format,
        "note": record.note,
        "applied": record.applied,
        "appliedBy": record.client,
        "document": record.document,
    })
}

fn options<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(options)| options).map_err(|rejection| {
        ScimError::invalid_value(format!(
            "query parameters: {}; dryRun takes true or false, version a number, user a userName or id",
            rejection.body_text()
        ))
        .into()
    })
}

/// `GET /admin/v1/rules[?version=N]`: the rule set in force (or version N)
/// as applied.
pub async fn get_rules(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    query: Result<Query<ShowOptions>, QueryRejection>,
) -> Result<ScimResponse, ApiError> {
    let options = options(query)?;
    let record = rule_set_record(state.store(), &client.tenant, options.version).await?;
    Ok(ScimResponse::ok(record_json(&record)))
}

/// `PUT /admin/v1/rules[?dryRun=true][&user=U]` with a TOML or JSON rule
/// set, or `PUT /admin/v1/rules?version=N` to apply version N again: `201`
/// with the report when stored, `200` on a dry run.
pub async fn put_rules(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    query: Result<Query<ApplyOptions>, QueryRejection>,
    RulesText(text): RulesText,
) -> Result<ScimResponse, ApiError> {
    let options = options(query)?;
    let actor = actor(&client, &headers);
    let apply = ApplyRules {
        dry_run: options.dry_run,
        user: options.user,
        ..ApplyRules::default()
    };
    let report = match (options.version, text.trim().is_empty()) {
        (Some(version), _) => {
            roll_back(state.store(), &client.tenant, &actor, version, &apply).await?
        }
        (None, false) => {
            let document = RulesDocument {
                text: &text,
                files: None,
            };
            apply_rules(state.store(), &client.tenant, &actor, &document, &apply).await?
        }
        (None, true) => {
            return Err(ScimError::invalid_syntax(
                "send a rule set (application/toml or application/json), or ?version=N to apply an earlier one again",
            )
            .into())
        }
    };
    if report.applied {
        state.service.invalidate(&client.tenant);
    }
    let body = serde_json::to_value(&report)
        .map_err(|error| muster_core::Error::Internal(format!("rules report: {error}")))?;
    Ok(ScimResponse {
        status: if report.applied {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        ..ScimResponse::ok(body)
    })
}

/// `GET /admin/v1/rules/history`: every version, newest last (documents
/// left out; `GET /admin/v1/rules?version=N` shows one).
pub async fn rules_history(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    let history = state.store().rule_set_history(&client.tenant).await?;
    let items: Vec<Value> = history
        .iter()
        .map(|record| {
            let mut item = record_json(record);
            if let Some(object) = item.as_object_mut() {
                object.remove("document");
            }
            item
        })
        .collect();
    Ok(ScimResponse::ok(json!({
        "totalResults": items.len(),
        "Resources": items,
    })))
}

/// `GET /admin/v1/rules/stats`: per rule, how many users it matches; the
/// users with problems.
pub async fn get_rules_stats(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<ScimResponse, ApiError> {
    Ok(ScimResponse::ok(
        rules_stats(state.store(), &client.tenant).await?,
    ))
}

/// `GET /admin/v1/users/{id}/entitlements/explain` (`{id}` may also be a
/// `userName`).
pub async fn explain(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(user): Path<String>,
) -> Result<ScimResponse, ApiError> {
    let (version, explanation) = explain_user(state.store(), &client.tenant, &user).await?;
    let mut body = serde_json::to_value(&explanation)
        .map_err(|error| muster_core::Error::Internal(format!("explanation: {error}")))?;
    if let Some(object) = body.as_object_mut() {
        object.insert("ruleSetVersion".to_owned(), json!(version));
    }
    Ok(ScimResponse::ok(body))
}
