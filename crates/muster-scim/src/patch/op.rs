//! The PatchOp wire message (RFC 7644 section 3.5.2), parsed at the edge so
//! that [`super::apply_patch`] only sees typed operations.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::FilterLimits;
use crate::path::PatchPath;
use crate::resource::describe;

/// URN of the PatchOp message.
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most operations one PatchOp may hold: each runs inside the store's
/// single writer, so one request must not hold every other write for long.
pub const MAX_PATCH_OPERATIONS: usize = 1000;

/// A PATCH request body: `{"schemas": [PATCH_OP_URN], "Operations": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// The operations, applied in order, all or nothing.
    pub operations: Vec<PatchOperation>,
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// `add`, `remove` or `replace`.
    pub op: PatchOpKind,
    /// The target; `None` for a path-less `add`/`replace`, whose value's
    /// keys are themselves attribute paths.
    pub path: Option<PatchPath>,
    /// The value. `Some(Value::Null)` (like `""` and `[]`) clears the target;
    /// `None` only for `remove`, which usually has no value.
    pub value: Option<Value>,
}

/// The operation names of RFC 7644 section 3.5.2 (case-insensitive on input:
/// Entra ID sends `"Add"`, `"Replace"`, `"Remove"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// Add values (merge into multi-valued attributes).
    Add,
    /// Remove the target, or the listed values of a multi-valued target.
    Remove,
    /// Replace the target's value.
    Replace,
}

impl PatchOpKind {
    /// The name as RFC 7644 writes it, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }

    /// Parses an operation name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PatchOp {
    /// Parses a PatchOp message with the default [`FilterLimits`] for
    /// value filters in paths.
    pub fn from_json(body: &Value) -> Result<PatchOp, ScimError> {
        Self::from_json_with(body, &FilterLimits::default())
    }

    /// Parses a PatchOp message. Member names are case-insensitive
    /// (`operations`, `PATH`); `schemas` must list [`PATCH_OP_URN`]. A
    /// malformed message is `400 invalidSyntax`, a malformed path `400
    /// invalidPath`; details start with `Operations[i]` for the operation
    /// at fault.
    pub fn from_json_with(body: &Value, limits: &FilterLimits) -> Result<PatchOp, ScimError> {
        let Value::Object(object) = body else {
            return Err(ScimError::invalid_syntax(format!(
                "a PATCH body must be a PatchOp object, got {}",
                describe(body)
            )));
        };
        let mut schemas = None;
        let mut operations = None;
        for (key, value) in object {
            if key.eq_ignore_ascii_case("schemas") {
                schemas = Some(value);
            } else if key.eq_ignore_ascii_case("Operations") {
                operations = Some(value);
            } else {
                return Err(ScimError::invalid_syntax(format!(
                    "unknown PatchOp member '{}': a PatchOp holds 'schemas' and 'Operations'",
                    crate::resource::truncate_text(key)
                )));
            }
        }
        let lists_patch_op = match schemas {
            Some(Value::Array(items)) => items.iter().any(
                |item| matches!(item, Value::String(urn) if urn.eq_ignore_ascii_case(PATCH_OP_URN)),
            ),
            Some(Value::String(urn)) => urn.eq_ignore_ascii_case(PATCH_OP_URN),
            Some(_) | None => false,
        };
        if !lists_patch_op {
            return Err(ScimError::invalid_syntax(format!(
                "a PatchOp's 'schemas' must be [\"{PATCH_OP_URN}\"]"
            )));
        }
        let items = match operations {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => {
                return Err(ScimError::invalid_syntax(
                    "'Operations' is empty; a PatchOp holds at least one operation",
                ))
            }
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "'Operations' must be a list of operations, got {}",
                    describe(other)
                )))
            }
            None => {
                return Err(ScimError::invalid_syntax(
                    "a PatchOp needs 'Operations', a list of operations",
                ))
            }
        };
        if items.len() > MAX_PATCH_OPERATIONS {
            return Err(ScimError::status(
                413,
                format!(
                    "the PatchOp has {} operations; at most {MAX_PATCH_OPERATIONS} are taken in one request",
                    items.len()
                ),
            ));
        }
        let operations = items
            .iter()
            .enumerate()
            .map(|(index, item)| PatchOperation::from_json(index, item, limits))
            .collect::<Result<_, _>>()?;
        Ok(PatchOp { operations })
    }

    /// The message as JSON, with canonical member names.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "schemas".to_owned(),
            Value::Array(vec![Value::String(PATCH_OP_URN.to_owned())]),
        );
        object.insert(
            "Operations".to_owned(),
            Value::Array(
                self.operations
                    .iter()
                    .map(PatchOperation::to_json)
                    .collect(),
            ),
        );
        Value::Object(object)
    }
}

impl PatchOperation {
    /// Parses element `index` of `Operations`.
    fn from_json(index: usize, item: &Value, limits: &FilterLimits) -> Result<Self, ScimError> {
        let Value::Object(object) = item else {
            return Err(ScimError::invalid_syntax(format!(
                "an operation must be an object with 'op', 'path' and 'value', got {}",
                describe(item)
            ))
            .context(format!("Operations[{index}]")));
        };
        let mut op = None;
        let mut path = None;
        let mut value = None;
        for (key, member) in object {
            if key.eq_ignore_ascii_case("op") {
                op = Some(member);
            } else if key.eq_ignore_ascii_case("path") {
                path = Some(member);
            } else if key.eq_ignore_ascii_case("value") {
                value = Some(member);
            } else {
                return Err(ScimError::invalid_syntax(format!(
                    "unknown operation member '{}': an operation holds 'op', 'path' and 'value'",
                    crate::resource::truncate_text(key)
                ))
                .context(format!("Operations[{index}]")));
            }
        }
        let op = match op {
            Some(Value::String(name)) => PatchOpKind::parse(name),
            Some(_) | None => None,
        }
        .ok_or_else(|| {
            let got = op.map_or_else(|| "nothing".to_owned(), describe);
            ScimError::invalid_syntax(format!(
                "'op' must be \"add\", \"remove\" or \"replace\", got {got}"
            ))
            .context(format!("Operations[{index}]"))
        })?;
        let context = |error: ScimError| error.context(format!("Operations[{index}] ({op})"));
        let path = match path {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(Value::String(text)) => {
                Some(PatchPath::parse_with(text, limits).map_err(context)?)
            }
            Some(other) => {
                return Err(context(ScimError::invalid_path(format!(
                    "'path' must be a string, got {}",
                    describe(other)
                ))))
            }
        };
        if value.is_none() && op != PatchOpKind::Remove {
            return Err(context(ScimError::invalid_value(format!(
                "'value' is required for {op} (null, \"\" or [] clears the target)"
            ))));
        }
        Ok(PatchOperation {
            op,
            path,
            value: value.cloned(),
        })
    }

    /// The operation as JSON.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("op".to_owned(), Value::String(self.op.as_str().to_owned()));
        if let Some(path) = &self.path {
            object.insert("path".to_owned(), Value::String(path.to_string()));
        }
        if let Some(value) = &self.value {
            object.insert("value".to_owned(), value.clone());
        }
        Value::Object(object)
    }

    /// How error details name this operation: `Operations[2] (replace,
    /// emails[type eq "work"].value)`.
    pub fn context(&self, index: usize) -> String {
        match &self.path {
            Some(path) => format!("Operations[{index}] ({}, {path})", self.op),
            None => format!("Operations[{index}] ({})", self.op),
        }
    }
}
