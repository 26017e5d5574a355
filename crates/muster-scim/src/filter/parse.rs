//! The filter parser. (Being written: see the filter work item.)

use super::ast::{Filter, FilterLimits};
use crate::error::ScimError;

impl Filter {
    /// Parses a filter with the default [`FilterLimits`].
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        Self::parse_with(text, &FilterLimits::default())
    }

    /// Parses a filter, refusing input beyond `limits` with `400 invalidFilter`.
    pub fn parse_with(text: &str, limits: &FilterLimits) -> Result<Filter, ScimError> {
        let _ = limits;
        Err(ScimError::invalid_filter(format!(
            "not yet implemented: {text}"
        )))
    }
}
