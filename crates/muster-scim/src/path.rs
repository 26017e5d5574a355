//! Attribute paths (`[URN ":"] attr ["." sub]`) and PATCH paths
//! (`attrPath`, `attrPath[valFilter]`, `attrPath[valFilter].sub`), parsed at the
//! edge so inner code only sees typed paths (RFC 7644 sections 3.4.2.2, 3.5.2).
//!
//! Parsing here is purely syntactic. Whether a name exists, and whether
//! `urn:...:User` names a whole extension rather than an attribute, is decided
//! by [`crate::SchemaRegistry::resolve`].

use std::fmt;

use crate::error::ScimError;
use crate::filter::{Filter, FilterLimits};

/// The longest attribute path accepted (URN included): far beyond any
/// declared name, and a bound on the work a "did you mean" does.
pub const MAX_PATH_LENGTH: usize = 512;

/// An attribute path: optional schema URN, attribute name, optional sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, as written (e.g. `urn:...:enterprise:2.0:User`).
    pub schema: Option<String>,
    /// The attribute name, as written.
    pub attribute: String,
    /// The sub-attribute name, as written.
    pub sub_attribute: Option<String>,
}

impl AttrPath {
    /// A path to a top-level attribute with no URN prefix.
    pub fn new(attribute: &str) -> Self {
        AttrPath {
            schema: None,
            attribute: attribute.to_owned(),
            sub_attribute: None,
        }
    }

    /// A path to a sub-attribute with no URN prefix.
    pub fn with_sub(attribute: &str, sub_attribute: &str) -> Self {
        AttrPath {
            schema: None,
            attribute: attribute.to_owned(),
            sub_attribute: Some(sub_attribute.to_owned()),
        }
    }

    /// Parses `[URN ":"] ATTRNAME ["." ATTRNAME]`.
    ///
    /// The URN is everything up to the last `:`; a URN such as
    /// `urn:...:2.0:User` may itself contain dots, which is why the
    /// sub-attribute split happens only after the last colon.
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_PATH_LENGTH {
            return Err(ScimError::invalid_path(format!(
                "an attribute path is at most {MAX_PATH_LENGTH} bytes long; got one of {} bytes",
                text.len()
            )));
        }
        let (schema, rest) = match text.rfind(':') {
            Some(colon) => {
                let schema = &text[..colon];
                if !is_urn(schema) {
                    return Err(ScimError::invalid_path(format!(
                        "'{text}' is not an attribute path: a prefix before ':' must be a schema URN starting with 'urn:'"
                    )));
                }
                (Some(schema.to_owned()), &text[colon + 1..])
            }
            None => (None, text),
        };
        let mut parts = rest.split('.');
        let attribute = parts.next().unwrap_or_default();
        let sub_attribute = parts.next();
        if parts.next().is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{text}' is not an attribute path: at most one sub-attribute ('attr.sub') is allowed"
            )));
        }
        check_name(text, attribute)?;
        if let Some(sub) = sub_attribute {
            check_name(text, sub)?;
        }
        Ok(AttrPath {
            schema,
            attribute: attribute.to_owned(),
            sub_attribute: sub_attribute.map(str::to_owned),
        })
    }

    /// The same path without its sub-attribute.
    pub fn parent(&self) -> AttrPath {
        AttrPath {
            schema: self.schema.clone(),
            attribute: self.attribute.clone(),
            sub_attribute: None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.attribute)?;
        if let Some(sub) = &self.sub_attribute {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

fn is_urn(text: &str) -> bool {
    text.len() > 4
        && text
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"))
}

/// Whether `c` may appear in an attribute name (`ALPHA / DIGIT / "-" / "_"`,
/// plus `$` for `$ref`).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$'
}

fn check_name(path: &str, name: &str) -> Result<(), ScimError> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(first) => (first.is_ascii_alphabetic() || first == '$') && chars.all(is_name_char),
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ScimError::invalid_path(format!(
            "'{path}' is not an attribute path: '{name}' must start with a letter and hold only letters, digits, '-' and '_'"
        )))
    }
}

/// A PATCH operation's `path` (RFC 7644 section 3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute addressed. When `value_filter` is set this has no
    /// sub-attribute; the sub-attribute after `]` is in `sub_attribute`.
    pub attribute: AttrPath,
    /// The value selection filter in `attr[filter]`, relative to the elements.
    pub value_filter: Option<Filter>,
    /// The sub-attribute in `attr[filter].sub`.
    pub sub_attribute: Option<String>,
}

impl PatchPath {
    /// Parses a PATCH path with the default filter limits.
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        Self::parse_with(text, &FilterLimits::default())
    }

    /// Parses a PATCH path, applying `limits` to a value selection filter.
    pub fn parse_with(text: &str, limits: &FilterLimits) -> Result<Self, ScimError> {
        let text = text.trim();
        if text.len() > limits.max_length {
            return Err(ScimError::invalid_path(format!(
                "path is {} bytes long; the limit is {}",
                text.len(),
                limits.max_length
            )));
        }
        let Some(open) = text.find('[') else {
            return Ok(PatchPath {
                attribute: AttrPath::parse(text)?,
                value_filter: None,
                sub_attribute: None,
            });
        };
        let close = matching_bracket(text, open).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "'{text}': the '[' at position {open} is never closed"
            ))
        })?;
        let attribute = AttrPath::parse(&text[..open])?;
        if attribute.sub_attribute.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{text}': a value filter applies to a multi-valued attribute, not to a sub-attribute"
            )));
        }
        let filter_text = &text[open + 1..close];
        let value_filter = Filter::parse_with(filter_text, limits).map_err(|error| {
            ScimError::invalid_path(format!("'{text}': value filter: {}", error.detail))
        })?;
        let rest = &text[close + 1..];
        let sub_attribute = if rest.is_empty() {
            None
        } else if let Some(sub) = rest.strip_prefix('.') {
            check_name(text, sub)?;
            Some(sub.to_owned())
        } else {
            return Err(ScimError::invalid_path(format!(
                "'{text}': expected '.subAttribute' or the end after ']' at position {close}"
            )));
        };
        Ok(PatchPath {
            attribute,
            value_filter: Some(value_filter),
            sub_attribute,
        })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attribute)?;
        if let Some(filter) = &self.value_filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attribute {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// The index of the `]` closing the `[` at `open`, skipping quoted strings.
fn matching_bracket(text: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (index, c) in text.char_indices().skip_while(|(i, _)| *i <= open) {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, ']') => return Some(index),
            (false, _, _) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, schema: Option<&str>, attribute: &str, sub: Option<&str>) {
        let path = AttrPath::parse(text).unwrap();
        assert_eq!(path.schema.as_deref(), schema, "{text}");
        assert_eq!(path.attribute, attribute, "{text}");
        assert_eq!(path.sub_attribute.as_deref(), sub, "{text}");
        assert_eq!(path.to_string(), text);
    }

    #[test]
    fn attribute_paths() {
        check("userName", None, "userName", None);
        check("name.givenName", None, "name", Some("givenName"));
        check("members.$ref", None, "members", Some("$ref"));
        check(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            "manager",
            Some("value"),
        );
        check(
            "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:customFields.BPO_Vendor_ID",
            Some("urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"),
            "customFields",
            Some("BPO_Vendor_ID"),
        );
    }

    #[test]
    fn bad_attribute_paths() {
        for text in ["", "a.b.c", "1abc", "na me", "foo:bar", "name.", ".name"] {
            let error = AttrPath::parse(text).unwrap_err();
            assert_eq!(
                error.scim_type,
                Some(crate::ScimType::InvalidPath),
                "{text}"
            );
        }
    }

    #[test]
    fn patch_paths() {
        let path = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(path.attribute, AttrPath::new("emails"));
        assert!(path.value_filter.is_some());
        assert_eq!(path.sub_attribute.as_deref(), Some("value"));
        assert_eq!(path.to_string(), r#"emails[type eq "work"].value"#);

        let path = PatchPath::parse(r#"members[value eq "a]b"]"#).unwrap();
        assert_eq!(path.sub_attribute, None);

        for bad in [
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]x"#,
            r#"name.givenName[type eq "x"]"#,
        ] {
            let error = PatchPath::parse(bad).unwrap_err();
            assert_eq!(error.scim_type, Some(crate::ScimType::InvalidPath), "{bad}");
        }
    }
}
