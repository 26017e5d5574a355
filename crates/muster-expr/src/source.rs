//! Where evaluation gets attribute values, the current time and target look-ups.

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// What an expression is evaluated against.
pub trait AttributeSource {
    /// The value of a source attribute by exact name; `None` when absent.
    fn attribute(&self, name: &str) -> Option<&Value>;

    /// The time `Now()` gives (UTC). Defaults to the clock.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Whether `value` is already held in the target, for SelectUniqueValue.
    /// Defaults to `false`: uniqueness is then the target's concern, and
    /// SelectUniqueValue gives its first rule's value.
    fn taken_in_target(&self, _value: &str) -> bool {
        false
    }
}

impl AttributeSource for Map<String, Value> {
    fn attribute(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// A simple [`AttributeSource`]: a JSON object of attributes, an optional fixed
/// `Now()` and the values already taken in the target.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    values: Map<String, Value>,
    now: Option<OffsetDateTime>,
    taken: Vec<String>,
}

impl Attributes {
    /// Attributes from a JSON object.
    pub fn new(values: Map<String, Value>) -> Self {
        Self {
            values,
            ..Self::default()
        }
    }

    /// Fixes what `Now()` gives.
    pub fn with_now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Declares values already held in the target.
    pub fn with_taken(mut self, taken: impl IntoIterator<Item = String>) -> Self {
        self.taken.extend(taken);
        self
    }
}

impl AttributeSource for Attributes {
    fn attribute(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    fn taken_in_target(&self, value: &str) -> bool {
        self.taken.iter().any(|taken| taken == value)
    }
}
