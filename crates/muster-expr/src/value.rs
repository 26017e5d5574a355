//! Values during evaluation, their conversions and how they render.

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;

use crate::datetime;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Str(String),
    Bool(bool),
    Num(i64),
    /// Always UTC.
    Date(OffsetDateTime),
    List(Vec<Val>),
    Obj(Map<String, Value>),
}

impl Val {
    /// A source attribute's JSON value.
    pub(crate) fn from_json(value: &Value) -> Val {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Val::Num)
                .unwrap_or_else(|| Val::Str(n.to_string())),
            Value::String(s) => Val::Str(s.clone()),
            Value::Array(items) => Val::List(items.iter().map(Val::from_json).collect()),
            Value::Object(map) => Val::Obj(map.clone()),
        }
    }

    /// The JSON result: strings, booleans and numbers keep their type;
    /// DateTimes render as `M/d/yyyy h:mm:ss tt`.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Str(s) => Value::String(s),
            Val::Bool(b) => Value::Bool(b),
            Val::Num(n) => Value::Number(Number::from(n)),
            Val::Date(d) => Value::String(datetime::render_us(d)),
            Val::List(items) => Value::Array(items.into_iter().map(Val::into_json).collect()),
            Val::Obj(map) => Value::Object(map),
        }
    }

    /// Null, or the empty string.
    pub(crate) fn is_null_or_empty(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.is_empty(),
            Val::List(items) => items.is_empty(),
            _ => false,
        }
    }

    /// The value as text, if it is a scalar (null gives `None`).
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Val::Str(s) => Some(s.clone()),
            Val::Bool(b) => Some(render_bool(*b).to_owned()),
            Val::Num(n) => Some(n.to_string()),
            Val::Date(d) => Some(datetime::render_us(*d)),
            Val::Null | Val::List(_) | Val::Obj(_) => None,
        }
    }

    /// The value as text, null (and lists/objects) as `""`.
    pub(crate) fn text_or_empty(&self) -> String {
        self.text().unwrap_or_default()
    }

    /// The value as an integer: numbers and numeric strings.
    pub(crate) fn number(&self) -> Option<i64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The value as a boolean: booleans, `"True"`/`"False"` in any case, numbers (non-zero is true).
    pub(crate) fn boolean(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            Val::Num(n) => Some(*n != 0),
            Val::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Val::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Val::Str(s) => s.trim().parse::<i64>().ok().map(|n| n != 0),
            _ => None,
        }
    }

    /// Its values: a list's items, a scalar alone, nothing for null.
    pub(crate) fn values(self) -> Vec<Val> {
        match self {
            Val::Null => Vec::new(),
            Val::List(items) => items,
            other => vec![other],
        }
    }

    /// What the value is, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Str(_) => "a string",
            Val::Bool(_) => "a boolean",
            Val::Num(_) => "a number",
            Val::Date(_) => "a DateTime",
            Val::List(_) => "a list",
            Val::Obj(_) => "an object",
        }
    }
}

/// `True` / `False`, as Entra writes booleans.
pub(crate) fn render_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// How Entra writes a result value to a string attribute: strings as they are,
/// numbers in decimal, booleans as `True`/`False`; `None` for null, arrays and
/// objects.
pub fn entra_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(render_bool(*b).to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
