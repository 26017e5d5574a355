//! The one error type of the crate: what is wrong with a rule-set document,
//! where, and what was probably meant.
//!
//! Loading collects every error it can find rather than stopping at the
//! first, so an admin fixes a file in one round; [`RuleErrors`] is that list.

use std::fmt;

/// Where in a document an error sits: 1-based line and column (in
/// characters), and the file when it is not the rule-set document itself (a
/// CSV file a table reads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The file, when the error is in a file the document names (CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// What kind of mistake an error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The text is not TOML or JSON (or is too large).
    Syntax,
    /// A key the layout does not have (a misspelt `priority`, ...).
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type or out of range.
    InvalidValue,
    /// Two catalog items, rules or table rows with the same name or key.
    Duplicate,
    /// A name the catalog does not have (role, division, skill, ...).
    UnknownName,
    /// A `when` that does not parse as a SCIM filter, or that the schemas
    /// refuse.
    Filter,
    /// An attribute path no schema declares, or one rules may not read.
    UnknownAttribute,
    /// A group named in a `when` that does not exist.
    UnknownGroup,
    /// A CSV file that cannot be read or parsed.
    Csv,
    /// More rules, rows or items than the limits allow.
    Limit,
}

/// One thing wrong with a rule-set document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    /// What kind of mistake.
    pub kind: ErrorKind,
    /// The id of the rule or table it is in, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where in the document (line and column: TOML only; JSON and parsed
    /// values carry none), or in the CSV file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The key path in the document, e.g. `rules[2].grants[0].role`.
    pub field: String,
    /// What is wrong, with a "did you mean" when a known name is close.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule '{rule}': ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

/// Every error found in a document, in document order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct RuleErrors(pub Vec<RuleError>);

impl RuleErrors {
    /// The errors.
    pub fn errors(&self) -> &[RuleError] {
        &self.0
    }
}

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} error{} in the rule set",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

/// The "did you mean" suffix for `wanted` among `candidates`, or nothing.
///
/// Compares case-insensitively (names are case-insensitive everywhere in
/// the document), and proposes only names close enough to be a typo.
pub(crate) fn did_you_mean<'c>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    match closest(wanted, candidates) {
        Some(candidate) => format!("; did you mean '{candidate}'?"),
        None => String::new(),
    }
}

/// The candidate closest to `wanted`, if one is close enough.
pub(crate) fn closest<'c>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let wanted = wanted.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let mut score = strsim::normalized_damerau_levenshtein(&wanted, &lower);
            // A name cut short or run on ("Manila" for "Manila Voice").
            let shorter = wanted.chars().count().min(lower.chars().count());
            if shorter >= 4 && (lower.starts_with(&wanted) || wanted.starts_with(&lower)) {
                score = score.max(0.65);
            }
            (score >= 0.6).then_some((score, candidate))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let check = |wanted: &str, expected: Option<&str>| {
            let candidates = ["Agent", "Quality Evaluator", "Supervisor"];
            assert_eq!(closest(wanted, candidates), expected, "{wanted}");
        };
        check("Agnet", Some("Agent"));
        check("agent", Some("Agent"));
        check("Quality Evaluater", Some("Quality Evaluator"));
        check("Admin", None);
        check("Quality", Some("Quality Evaluator"));
        check("Sup", None);
        check("", None);
    }

    #[test]
    fn display_names_location_rule_and_field() {
        let error = RuleError {
            kind: ErrorKind::UnknownName,
            rule: Some("tier1".to_owned()),
            location: Some(Location {
                file: None,
                line: 4,
                column: 9,
            }),
            field: "rules[0].grants[0].role".to_owned(),
            message: "unknown role 'Agnet'; did you mean 'Agent'?".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "line 4, column 9: rule 'tier1': rules[0].grants[0].role: unknown role 'Agnet'; did you mean 'Agent'?"
        );
    }
}
