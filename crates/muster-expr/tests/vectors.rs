//! The Entra reference test vectors (copied from the shared reference so that a
//! clean clone can run them).

use muster_expr::{entra_string, Attributes, Expression, Outcome};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const CASES: &str = include_str!("entra-expressions-cases.json");

/// Runs one vector; `Err` explains a failure.
fn check(case: &Value) -> Result<(), String> {
    let text = case["expr"].as_str().ok_or("no expr")?;
    let expect = &case["expect"];
    let attributes = case["attributes"].as_object().cloned().unwrap_or_default();
    let mut source = Attributes::new(attributes);
    if let Some(now) = case.get("now").and_then(Value::as_str) {
        source = source.with_now(OffsetDateTime::parse(now, &Rfc3339).map_err(|e| e.to_string())?);
    }
    if let Some(taken) = case.get("target_existing").and_then(Value::as_array) {
        source = source.with_taken(taken.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    let outcome = Expression::parse(text).and_then(|e| e.evaluate(&source));
    if let Some(why) = expect.get("error") {
        return match outcome {
            Err(error) => {
                let why = why.as_str().unwrap_or_default().to_lowercase();
                if error.to_string().to_lowercase().contains(&why) {
                    Ok(())
                } else {
                    Err(format!("error '{error}' does not contain '{why}'"))
                }
            }
            Ok(outcome) => Err(format!("expected an error, got {outcome:?}")),
        };
    }
    let outcome = outcome.map_err(|e| format!("error: {e}"))?;
    let got = match (&outcome, expect) {
        (Outcome::Skip, _) => {
            return (expect.get("skip_flow") == Some(&Value::Bool(true)))
                .then_some(())
                .ok_or("skipped".to_owned())
        }
        (Outcome::Value(value), _) => value,
    };
    let ok = match expect {
        Value::String(s) => entra_string(got).as_deref() == Some(s.as_str()),
        Value::Null => got.is_null(),
        Value::Array(items) if case.get("unordered") == Some(&Value::Bool(true)) => {
            let got = got.as_array().cloned().unwrap_or_default();
            got.len() == items.len() && items.iter().all(|i| got.contains(i))
        }
        Value::Array(_) => got == expect,
        Value::Object(map) if map.contains_key("matches") => {
            let pattern = map["matches"].as_str().unwrap_or_default();
            let regex = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
            entra_string(got).is_some_and(|s| regex.is_match(&s))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("got {got}, expected {expect}"))
    }
}

#[test]
fn every_vector_passes() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(case).err().map(|why| {
                format!(
                    "{} `{}`: {why}",
                    case["fn"],
                    case["expr"].as_str().unwrap_or_default()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 122);
}
