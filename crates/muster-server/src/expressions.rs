//! `POST /admin/v1/expressions/evaluate` (`admin` scope): evaluates an Entra
//! attribute-mapping expression ([`muster_expr`]) against attributes given in
//! the body, to try a mapping before it is used.
//!
//! Body: `{"expression": "...", "attributes": {...}}` (`attributes` may be
//! left out: every attribute is then absent; `now` may fix `Now()` as an
//! RFC 3339 time). Answers `200 {"value": ...}` (plus `"warnings"` when there
//! are any), `200 {"skipFlow": true}` when IgnoreFlowIfNullOrEmpty leaves the
//! attribute out, or `400` `invalidValue` whose `detail` names the problem and
//! its position.

use muster_expr::{Attributes, Expression, Outcome};
use muster_scim::ScimError;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};

/// `POST /admin/v1/expressions/evaluate`.
pub async fn evaluate(ScimJson(body): ScimJson) -> Result<ScimResponse, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(invalid(
            "the body must be a JSON object with \"expression\" and \"attributes\"",
        )
        .into());
    };
    let text = match body.remove("expression") {
        Some(Value::String(text)) => text,
        Some(_) => return Err(invalid("\"expression\" must be a string").into()),
        None => return Err(invalid("the body has no \"expression\"").into()),
    };
    let attributes = match body.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(attributes)) => attributes,
        Some(_) => {
            return Err(
                invalid("\"attributes\" must be an object of attribute names to values").into(),
            )
        }
    };
    let mut source = Attributes::new(attributes);
    match body.remove("now") {
        None | Some(Value::Null) => {}
        Some(Value::String(now)) => {
            let now = OffsetDateTime::parse(&now, &Rfc3339)
                .map_err(|_| invalid("\"now\" must be an RFC 3339 time"))?;
            source = source.with_now(now);
        }
        Some(_) => return Err(invalid("\"now\" must be an RFC 3339 time").into()),
    }
    if let Some(key) = body.keys().next() {
        return Err(invalid(format!(
            "unknown member \"{key}\"; the body takes \"expression\", \"attributes\" and \"now\""
        ))
        .into());
    }
    let expression =
        Expression::parse(&text).map_err(|error| invalid(format!("expression: {error}")))?;
    let outcome = expression
        .evaluate(&source)
        .map_err(|error| invalid(format!("expression: {error}")))?;
    let mut answer = match outcome {
        Outcome::Value(value) => json!({ "value": value }),
        Outcome::Skip => json!({ "skipFlow": true }),
    };
    let warnings: Vec<String> = expression
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    if !warnings.is_empty() {
        answer["warnings"] = json!(warnings);
    }
    Ok(ScimResponse::ok(answer))
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail)
}
