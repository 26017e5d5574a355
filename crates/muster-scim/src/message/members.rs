//! Reading request messages: members found case-insensitively, with errors
//! that name the member and what was expected.

use serde_json::Value;

use crate::error::ScimError;

/// The JSON type of a value, for error details.
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The non-null members of a request message, found case-insensitively
/// under their canonical names. Unknown and repeated members are
/// `400 invalidSyntax`.
pub(super) struct Members<'v> {
    found: Vec<(&'static str, &'v Value)>,
}

impl<'v> Members<'v> {
    pub(super) fn read(
        value: &'v Value,
        message: &str,
        allowed: &[&'static str],
    ) -> Result<Members<'v>, ScimError> {
        let object = value.as_object().ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "{message} must be a JSON object, got {}",
                json_kind(value)
            ))
        })?;
        let mut found: Vec<(&'static str, &'v Value)> = Vec::with_capacity(object.len());
        let mut seen: Vec<&'static str> = Vec::with_capacity(object.len());
        for (key, value) in object {
            let Some(name) = allowed.iter().find(|name| name.eq_ignore_ascii_case(key)) else {
                return Err(ScimError::invalid_syntax(format!(
                    "{message}: unknown member '{key}'; expected one of {}",
                    allowed.join(", ")
                )));
            };
            if seen.contains(name) {
                return Err(ScimError::invalid_syntax(format!(
                    "{message}: member '{name}' appears twice (member names are case-insensitive)"
                )));
            }
            seen.push(name);
            if !value.is_null() {
                found.push((name, value));
            }
        }
        Ok(Members { found })
    }

    pub(super) fn get(&self, name: &str) -> Option<&'v Value> {
        self.found
            .iter()
            .find(|(found, _)| *found == name)
            .map(|(_, value)| *value)
    }

    /// An optional string member.
    pub(super) fn string(&self, name: &str) -> Result<Option<String>, ScimError> {
        self.get(name)
            .map(|value| match value {
                Value::String(text) => Ok(text.clone()),
                other => Err(ScimError::invalid_value(format!(
                    "{name} must be a string, got {}",
                    json_kind(other)
                ))),
            })
            .transpose()
    }

    /// An optional list of strings; a single (comma-separated) string is
    /// accepted for the convenience of clients that copy the query form.
    pub(super) fn string_list(&self, name: &str) -> Result<Vec<String>, ScimError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(vec![text.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(ScimError::invalid_value(format!(
                        "{name}[{index}] must be a string, got {}",
                        json_kind(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(ScimError::invalid_value(format!(
                "{name} must be an array of strings, got {}",
                json_kind(other)
            ))),
        }
    }

    /// Checks `schemas`, when present, lists `urn`. An absent `schemas` is
    /// tolerated: the message type is already known from the endpoint.
    pub(super) fn check_schemas(&self, message: &str, urn: &str) -> Result<(), ScimError> {
        let Some(value) = self.get("schemas") else {
            return Ok(());
        };
        let lists_urn = value.as_array().is_some_and(|schemas| {
            schemas
                .iter()
                .any(|schema| schema.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
        });
        if lists_urn {
            Ok(())
        } else {
            Err(ScimError::invalid_syntax(format!(
                "{message}: schemas must be an array listing '{urn}', got {value}"
            )))
        }
    }
}
