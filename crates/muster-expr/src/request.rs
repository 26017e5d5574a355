//! An evaluation asked for by an admin trying a mapping before it is used:
//! the body of the admin API's `POST /admin/v1/expressions/evaluate` and of
//! the console's expression tester, one procedure for both.
//!
//! Body: `{"expression": "...", "attributes": {...}, "now": "..."}`
//! (`attributes` may be left out: every attribute is then absent; `now`
//! fixes `Now()` as an RFC 3339 time). The answer is `{"value": ...}` (plus
//! `"warnings"` when there are any), or `{"skipFlow": true}` when
//! IgnoreFlowIfNullOrEmpty leaves the attribute out.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{Attributes, Expression, Outcome};

/// Evaluates the expression `body` names against the attributes it gives.
/// The error is a sentence naming the member at fault and what was
/// expected, or the expression's problem and its position.
pub fn evaluate_request(body: Value) -> Result<Value, String> {
    let Value::Object(mut body) = body else {
        return Err(
            "the body must be a JSON object with \"expression\" and \"attributes\"".to_owned(),
        );
    };
    let text = match body.remove("expression") {
        Some(Value::String(text)) => text,
        Some(_) => return Err("\"expression\" must be a string".to_owned()),
        None => return Err("the body has no \"expression\"".to_owned()),
    };
    let attributes = match body.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(attributes)) => attributes,
        Some(_) => {
            return Err("\"attributes\" must be an object of attribute names to values".to_owned())
        }
    };
    let mut source = Attributes::new(attributes);
    match body.remove("now") {
        None | Some(Value::Null) => {}
        Some(Value::String(now)) => {
            let now = OffsetDateTime::parse(&now, &Rfc3339)
                .map_err(|_| "\"now\" must be an RFC 3339 time".to_owned())?;
            source = source.with_now(now);
        }
        Some(_) => return Err("\"now\" must be an RFC 3339 time".to_owned()),
    }
    if let Some(key) = body.keys().next() {
        return Err(format!(
            "unknown member \"{key}\"; the body takes \"expression\", \"attributes\" and \"now\""
        ));
    }
    let expression = Expression::parse(&text).map_err(|error| format!("expression: {error}"))?;
    let outcome = expression
        .evaluate(&source)
        .map_err(|error| format!("expression: {error}"))?;
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
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value, expected: Result<Value, &str>) {
        assert_eq!(evaluate_request(body), expected.map_err(str::to_owned));
    }

    #[test]
    fn evaluates_or_names_the_member_at_fault() {
        check(
            json!({"expression": "Join(\" \", [a], [b])", "attributes": {"a": "x", "b": "y"}}),
            Ok(json!({"value": "x y"})),
        );
        check(
            json!({"expression": "IgnoreFlowIfNullOrEmpty([a])"}),
            Ok(json!({"skipFlow": true})),
        );
        check(
            json!({"expression": "Now()", "now": "2021-07-02T15:33:38Z"}),
            Ok(json!({"value": "7/2/2021 3:33:38 PM"})),
        );
        check(
            json!([]),
            Err("the body must be a JSON object with \"expression\" and \"attributes\""),
        );
        check(
            json!({"expression": 1}),
            Err("\"expression\" must be a string"),
        );
        check(
            json!({"expression": "[a]", "attributes": []}),
            Err("\"attributes\" must be an object of attribute names to values"),
        );
        check(
            json!({"expression": "[a]", "now": "yesterday"}),
            Err("\"now\" must be an RFC 3339 time"),
        );
        check(
            json!({"expression": "[a]", "extra": 1}),
            Err("unknown member \"extra\"; the body takes \"expression\", \"attributes\" and \"now\""),
        );
    }
}
