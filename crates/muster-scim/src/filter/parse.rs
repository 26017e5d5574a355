//! The filter parser: RFC 7644 section 3.4.2.2 by recursive descent.
//!
//! ```text
//! filter     = or-expr
//! or-expr    = and-expr *( "or" and-expr )          ; one n-ary Or node
//! and-expr   = unary *( "and" unary )                ; one n-ary And node
//! unary      = "not" "(" filter ")" / "(" filter ")" / attr-expr
//! attr-expr  = attrPath "pr" / attrPath compareOp compValue
//!            / attrPath "[" filter "]"                ; value path, not nested
//!            / attrPath "[" filter "]" "." subAttr ( "pr" / compareOp compValue )
//! ```
//!
//! The last form is not in RFC 7644's grammar: it is the PATCH-style value
//! path Entra ID sends when it matches users on `mail`
//! (`emails[type eq "work"].value eq "a@b.c"`). It is read as exactly
//! `attr[filter and subAttr op value]`: a [`Filter::ValuePath`] whose filter
//! is an `And` of the bracketed filter (its operands, when it is itself an
//! `and` chain) and the comparison. The `.` must follow the `]` directly.
//! The limits apply to the text and to that normalised form, which is what
//! the printer writes: when the bracketed filter is an `or`, the normalised
//! form puts it in parentheses, one level deeper.
//!
//! Keywords and operators are case-insensitive. A word at the start of a
//! `unary` is a path unless it is `not` followed by `(`, so attributes named
//! `and`, `or` or `not` still parse.
//!
//! Architecture Invariant: parsing takes time linear in the input and stack
//! proportional to the nesting depth, which is bounded by
//! [`FilterLimits::max_depth`] (and never more than [`MAX_DEPTH_CEILING`]):
//! only parentheses, `not` and value paths recurse; chains of `and`/`or` loop.

use std::str::FromStr;

use super::ast::{CompareOp, Filter, FilterLimits, FilterValue};
use super::lex::{quote, Lexer, Token, TokenKind};
use super::print::printed_depth;
use crate::error::ScimError;
use crate::path::{is_name_char, AttrPath};

/// The deepest nesting the parser accepts whatever the limits say, so a
/// misconfigured [`FilterLimits::max_depth`] cannot let a tree deep enough to
/// overflow the stack (here, or when it is printed, evaluated or dropped).
const MAX_DEPTH_CEILING: usize = 256;

const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

impl Filter {
    /// Parses a filter with the default [`FilterLimits`].
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        Self::parse_with(text, &FilterLimits::default())
    }

    /// Parses a filter, refusing input beyond `limits` with `400 invalidFilter`.
    ///
    /// Parentheses, `not (...)` and value paths each count as one nesting
    /// level; the depth limit is capped at 256 whatever `limits` says.
    /// Comparisons and `pr` count as clauses. Every error detail says what was
    /// expected and at which 0-based byte position.
    pub fn parse_with(text: &str, limits: &FilterLimits) -> Result<Filter, ScimError> {
        if text.len() > limits.max_length {
            return Err(ScimError::invalid_filter(format!(
                "expected a filter of at most {} bytes, found {} bytes (the limit is passed at position {})",
                limits.max_length,
                text.len(),
                limits.max_length
            )));
        }
        let mut parser = Parser {
            lexer: Lexer::new(text),
            peeked: None,
            max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
            max_clauses: limits.max_clauses,
            depth: 0,
            clauses: 0,
            in_value_path: false,
            parenthesised_or: None,
        };
        let filter = parser.or_expression()?;
        let token = parser.next()?;
        if token.kind != TokenKind::End {
            return Err(parser.expected("'and', 'or' or the end of the filter", &token));
        }
        if let Some(position) = parser.parenthesised_or {
            parser.check_normalised_depth(&filter, position)?;
        }
        Ok(filter)
    }
}

impl FromStr for Filter {
    type Err = ScimError;

    /// Same as [`Filter::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Filter::parse(text)
    }
}

impl CompareOp {
    /// The operator for a keyword such as `eq` or `GE`, case-insensitively.
    /// `pr` is not a comparison operator (it takes no value), so it is `None`.
    pub fn parse(keyword: &str) -> Option<CompareOp> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(keyword))
    }
}

/// Parser state: one token of look-ahead and the running limit counters.
struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    max_depth: usize,
    max_clauses: usize,
    depth: usize,
    clauses: usize,
    /// Inside `attr[...]`, where another value path is not allowed.
    in_value_path: bool,
    /// Where the first `attr[... or ...].sub` suffix starts, if any: its
    /// normalised form `attr[(... or ...) and sub ...]` nests one level
    /// deeper than the text, so the depth is checked again on the tree.
    parenthesised_or: Option<usize>,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<Token<'a>, ScimError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Token<'a>, ScimError> {
        let token = self.next()?;
        Ok(self.peeked.insert(token))
    }

    /// Consumes the next token if it is the keyword `keyword`.
    fn eat_keyword(&mut self, keyword: &str) -> Result<bool, ScimError> {
        let found = matches!(
            &self.peek()?.kind,
            TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword)
        );
        if found {
            self.peeked = None;
        }
        Ok(found)
    }

    fn expected(&self, what: &str, token: &Token<'_>) -> ScimError {
        self.expected_with(what, token, "")
    }

    /// "expected `what` at position P, found `token`" followed by `note`.
    fn expected_with(&self, what: &str, token: &Token<'_>, note: &str) -> ScimError {
        ScimError::invalid_filter(format!(
            "expected {what} at position {}, found {}{note}",
            token.start,
            self.lexer.describe(token)
        ))
    }

    fn or_expression(&mut self) -> Result<Filter, ScimError> {
        let first = self.and_expression()?;
        if !self.eat_keyword("or")? {
            return Ok(first);
        }
        let mut operands = vec![first, self.and_expression()?];
        while self.eat_keyword("or")? {
            operands.push(self.and_expression()?);
        }
        Ok(Filter::Or(operands))
    }

    fn and_expression(&mut self) -> Result<Filter, ScimError> {
        let first = self.unary()?;
        if !self.eat_keyword("and")? {
            return Ok(first);
        }
        let mut operands = vec![first, self.unary()?];
        while self.eat_keyword("and")? {
            operands.push(self.unary()?);
        }
        Ok(Filter::And(operands))
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Open => self.group(token.start),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("not") => {
                if matches!(self.peek()?.kind, TokenKind::Open) {
                    let open = self.next()?;
                    Ok(Filter::Not(Box::new(self.group(open.start)?)))
                } else {
                    self.attribute_expression(word, &token)
                }
            }
            TokenKind::Word(word) => self.attribute_expression(word, &token),
            TokenKind::Close
            | TokenKind::OpenBracket
            | TokenKind::CloseBracket
            | TokenKind::String(_)
            | TokenKind::End => Err(self.expected("an attribute path, 'not (' or '('", &token)),
        }
    }

    /// The rest of a parenthesised filter whose `(` is at `open`.
    fn group(&mut self, open: usize) -> Result<Filter, ScimError> {
        self.enter(open)?;
        let filter = self.or_expression()?;
        let token = self.next()?;
        if token.kind != TokenKind::Close {
            return Err(self.expected_with(
                "'and', 'or' or ')'",
                &token,
                &format!("; the '(' at position {open} is still open"),
            ));
        }
        self.depth -= 1;
        Ok(filter)
    }

    /// Counts one nesting level opened at `position`.
    fn enter(&mut self, position: usize) -> Result<(), ScimError> {
        if self.depth >= self.max_depth {
            return Err(ScimError::invalid_filter(format!(
                "expected at most {} levels of nesting (parentheses, 'not' and value paths), found level {} at position {position}",
                self.max_depth,
                self.depth + 1
            )));
        }
        self.depth += 1;
        Ok(())
    }

    /// Counts one comparison or presence clause starting at `position`.
    fn count_clause(&mut self, position: usize) -> Result<(), ScimError> {
        if self.clauses >= self.max_clauses {
            return Err(ScimError::invalid_filter(format!(
                "expected at most {} comparison and presence clauses, found clause {} at position {position}",
                self.max_clauses,
                self.clauses + 1
            )));
        }
        self.clauses += 1;
        Ok(())
    }

    /// `path pr`, `path op value` or `path[filter]`, the path being `word`.
    fn attribute_expression(&mut self, word: &str, token: &Token<'_>) -> Result<Filter, ScimError> {
        let path = self.attribute_path(word, token)?;
        let next = self.peek()?;
        if next.kind == TokenKind::OpenBracket && next.start == token.end {
            return self.value_path(path);
        }
        let note = if word.eq_ignore_ascii_case("not") {
            "; 'not' takes a filter in parentheses: not (...)"
        } else {
            ""
        };
        self.condition(path, token.start, note)
    }

    /// The `pr` or `op value` after `path`, whose clause starts at `start`;
    /// `note` is added to the error when no operator follows.
    fn condition(&mut self, path: AttrPath, start: usize, note: &str) -> Result<Filter, ScimError> {
        let operator = self.next()?;
        let op = match operator.kind {
            TokenKind::Word(keyword) if keyword.eq_ignore_ascii_case("pr") => {
                self.count_clause(start)?;
                return Ok(Filter::Present(path));
            }
            TokenKind::Word(keyword) => CompareOp::parse(keyword),
            TokenKind::Open
            | TokenKind::Close
            | TokenKind::OpenBracket
            | TokenKind::CloseBracket
            | TokenKind::String(_)
            | TokenKind::End => None,
        };
        let Some(op) = op else {
            return Err(self.expected_with(
                &format!("a comparison operator ({OPERATORS})"),
                &operator,
                note,
            ));
        };
        let value_token = self.next()?;
        let value = self.value(value_token)?;
        self.count_clause(start)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// The rest of `path[filter]`, the `[` being next.
    fn value_path(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let open = self.next()?;
        if self.in_value_path {
            return Err(ScimError::invalid_filter(format!(
                "expected a comparison operator ({OPERATORS}) at position {}, found '['; value paths cannot be nested",
                open.start
            )));
        }
        if path.sub_attribute.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "expected a comparison operator ({OPERATORS}) at position {}, found '['; a value path applies to an attribute, not to a sub-attribute such as '{}'",
                open.start,
                quote(&path.to_string())
            )));
        }
        self.enter(open.start)?;
        self.in_value_path = true;
        let filter = self.or_expression()?;
        self.in_value_path = false;
        let close = self.next()?;
        if close.kind != TokenKind::CloseBracket {
            return Err(self.expected_with(
                "'and', 'or' or ']'",
                &close,
                &format!("; the '[' at position {} is still open", open.start),
            ));
        }
        self.depth -= 1;
        let filter = match self.sub_attribute_after(&close)? {
            None => filter,
            Some((sub, start)) => {
                if matches!(filter, Filter::Or(_)) && self.parenthesised_or.is_none() {
                    self.parenthesised_or = Some(start);
                }
                let condition = self.condition(AttrPath::new(sub), start, "")?;
                match filter {
                    Filter::And(mut operands) => {
                        operands.push(condition);
                        Filter::And(operands)
                    }
                    other => Filter::And(vec![other, condition]),
                }
            }
        };
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(filter),
        })
    }

    /// The `.sub` right after the `]` of a value path (Entra ID's
    /// `emails[type eq "work"].value eq "x"`), consumed, with its position;
    /// `None` when the next token is not a word starting with `.` that
    /// touches the `]`.
    fn sub_attribute_after(
        &mut self,
        close: &Token<'_>,
    ) -> Result<Option<(&'a str, usize)>, ScimError> {
        let next = self.peek()?;
        let (word, start) = match next.kind {
            TokenKind::Word(word) if next.start == close.end && word.starts_with('.') => {
                (word, next.start)
            }
            _ => return Ok(None),
        };
        let token = self.next()?;
        let sub = word.get(1..).unwrap_or_default();
        let mut chars = sub.chars();
        let valid = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '$')
            && chars.all(is_name_char);
        if !valid {
            return Err(self.expected_with(
                "a sub-attribute name after '].'",
                &token,
                " (a letter, then letters, digits, '-', '_' or '$')",
            ));
        }
        Ok(Some((sub, start)))
    }

    /// Checks the depth of `filter` as printed (its normalised form) when an
    /// `attr[... or ...].sub` suffix at `position` put an `or` in parentheses.
    fn check_normalised_depth(&self, filter: &Filter, position: usize) -> Result<(), ScimError> {
        let depth = printed_depth(filter);
        if depth > self.max_depth {
            return Err(ScimError::invalid_filter(format!(
                "expected at most {} levels of nesting (parentheses, 'not' and value paths), found level {depth} once 'attr[... or ...].sub' (the first at position {position}) is read as 'attr[(... or ...) and sub ...]'",
                self.max_depth
            )));
        }
        Ok(())
    }

    /// Checks a word is an attribute path and parses it.
    fn attribute_path(&self, word: &str, token: &Token<'_>) -> Result<AttrPath, ScimError> {
        let path_chars = word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$' | b'.' | b':'));
        if !path_chars {
            return Err(self.expected(
                "an attribute path (letters, digits, '-', '_', '$', '.' and ':')",
                token,
            ));
        }
        AttrPath::parse(word).map_err(|error| {
            let reason = error
                .detail
                .split_once("is not an attribute path: ")
                .map_or(error.detail.as_str(), |(_, reason)| reason);
            ScimError::invalid_filter(format!(
                "expected an attribute path at position {}, found {}: {reason}",
                token.start,
                self.lexer.describe(token)
            ))
        })
    }

    /// A comparison value: a JSON string, number, `true`, `false` or `null`.
    fn value(&self, token: Token<'_>) -> Result<FilterValue, ScimError> {
        const EXPECTED: &str = "a value (a JSON string, a number, true, false or null)";
        let word = match token.kind {
            TokenKind::String(text) => return Ok(FilterValue::String(text)),
            TokenKind::Word(word) => word,
            TokenKind::Open
            | TokenKind::Close
            | TokenKind::OpenBracket
            | TokenKind::CloseBracket
            | TokenKind::End => return Err(self.expected(EXPECTED, &token)),
        };
        if word.eq_ignore_ascii_case("true") {
            return Ok(FilterValue::Boolean(true));
        }
        if word.eq_ignore_ascii_case("false") {
            return Ok(FilterValue::Boolean(false));
        }
        if word.eq_ignore_ascii_case("null") {
            return Ok(FilterValue::Null);
        }
        if !is_json_number(word) {
            let note = if word.starts_with('\'') {
                "; strings take double quotes"
            } else {
                ""
            };
            return Err(self.expected_with(EXPECTED, &token, note));
        }
        json_number(word).map(FilterValue::Number).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "expected a number within the range of a 64-bit float at position {}, found {}",
                token.start,
                self.lexer.describe(&token)
            ))
        })
    }
}

/// The value of a word that follows the JSON number grammar: an integer when
/// it has no fraction or exponent and fits 64 bits (as serde_json reads it,
/// `-0` being the float -0.0), else the nearest float; `None` beyond `f64`.
///
/// Floats go through `f64::from_str`, which rounds correctly, rather than
/// serde_json's fast parser, which may be one unit in the last place off: the
/// printer writes the shortest text that reads back exactly, so printing and
/// parsing round-trips only with a correctly rounded reader.
fn json_number(word: &str) -> Option<serde_json::Number> {
    let integral = !word.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integral {
        if let Ok(unsigned) = word.parse::<u64>() {
            return Some(unsigned.into());
        }
        if let Ok(signed) = word.parse::<i64>() {
            if signed != 0 {
                return Some(signed.into());
            }
        }
    }
    word.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// Whether `word` follows the JSON number grammar
/// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
fn is_json_number(word: &str) -> bool {
    let bytes = word.as_bytes();
    let digits_from = |mut index: usize| {
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        index
    };
    let mut index = usize::from(bytes.first() == Some(&b'-'));
    index = match bytes.get(index) {
        Some(b'0') => index + 1,
        Some(b'1'..=b'9') => digits_from(index + 1),
        _ => return false,
    };
    if bytes.get(index) == Some(&b'.') {
        let end = digits_from(index + 1);
        if end == index + 1 {
            return false;
        }
        index = end;
    }
    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(bytes.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let end = digits_from(index);
        if end == index {
            return false;
        }
        index = end;
    }
    index == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        for good in ["0", "-0", "12", "-1.5", "1e5", "1E+5", "2.5e-3"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1x", "0x10", "--1",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them_but_rounded_correctly() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "18446744073709551615",
            "-9223372036854775808",
            "18446744073709551616",
            "1.5",
            "-2.5e-3",
            "1E2",
            "1e-400",
        ] {
            let ours = json_number(text);
            let serde: Option<serde_json::Number> = serde_json::from_str(text).ok();
            assert_eq!(ours, serde, "{text}");
        }
        let nearest = json_number("1.2925160879523823e-129").and_then(|n| n.as_f64());
        assert_eq!(nearest, Some(1.2925160879523823e-129));
        assert_eq!(json_number("1e400"), None);
    }

    #[test]
    fn operators_parse_case_insensitively() {
        assert_eq!(CompareOp::parse("GE"), Some(CompareOp::Ge));
        assert_eq!(CompareOp::parse("pr"), None);
    }
}
