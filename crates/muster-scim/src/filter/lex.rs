//! The filter tokenizer: splits filter text into punctuation, JSON strings and
//! words, each with its 0-based byte position.
//!
//! Words are maximal runs of anything that is not whitespace, a parenthesis, a
//! bracket or a quote. Whether a word is an attribute path, an operator, a
//! keyword or a literal depends on where it stands, so the parser classifies
//! it; that also lets errors quote the whole offending word (`found 'eqq'`).
//!
//! Architecture Invariant: every byte is looked at a bounded number of times
//! (the parser peeks at most one token ahead), and every position handed out
//! sits on an ASCII byte, so slicing the text there cannot split a character.

use crate::error::ScimError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind<'a> {
    /// `(`
    Open,
    /// `)`
    Close,
    /// `[`
    OpenBracket,
    /// `]`
    CloseBracket,
    /// A JSON string literal, unescaped.
    String(String),
    /// A run of other characters: a path, an operator, a keyword or a literal.
    Word(&'a str),
    /// The end of the text.
    End,
}

/// A token and the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind<'a>,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// Longest excerpt of the input quoted in an error detail.
const MAX_QUOTE: usize = 40;

/// Splits filter text into tokens on demand.
#[derive(Debug)]
pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    /// The next token, skipping whitespace before it.
    pub fn next_token(&mut self) -> Result<Token<'a>, ScimError> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.pos).is_some_and(|b| is_space(*b)) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&byte) = bytes.get(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let punctuation = match byte {
            b'(' => Some(TokenKind::Open),
            b')' => Some(TokenKind::Close),
            b'[' => Some(TokenKind::OpenBracket),
            b']' => Some(TokenKind::CloseBracket),
            _ => None,
        };
        if let Some(kind) = punctuation {
            self.pos += 1;
            return Ok(Token {
                kind,
                start,
                end: self.pos,
            });
        }
        if byte == b'"' {
            let value = self.string(start)?;
            return Ok(Token {
                kind: TokenKind::String(value),
                start,
                end: self.pos,
            });
        }
        while bytes.get(self.pos).is_some_and(|b| !is_delimiter(*b)) {
            self.pos += 1;
        }
        Ok(Token {
            kind: TokenKind::Word(self.slice(start, self.pos)),
            start,
            end: self.pos,
        })
    }

    /// How an error detail names `token`: `'eqq'`, `'('`, `the string "x"`,
    /// `the end of the filter`; long excerpts are shortened.
    pub fn describe(&self, token: &Token<'_>) -> String {
        match token.kind {
            TokenKind::End => "the end of the filter".to_owned(),
            TokenKind::String(_) => {
                format!("the string {}", quote(self.slice(token.start, token.end)))
            }
            TokenKind::Open
            | TokenKind::Close
            | TokenKind::OpenBracket
            | TokenKind::CloseBracket
            | TokenKind::Word(_) => {
                format!("'{}'", quote(self.slice(token.start, token.end)))
            }
        }
    }

    /// `text[start..end]`, or "" should the range ever be off a boundary.
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or_default()
    }

    /// Reads the JSON string whose opening quote is at `start`, leaving the
    /// lexer after its closing quote.
    fn string(&mut self, start: usize) -> Result<String, ScimError> {
        let bytes = self.text.as_bytes();
        let mut value = String::new();
        let mut index = start + 1;
        let mut run_start = index;
        loop {
            match bytes.get(index) {
                None => {
                    return Err(ScimError::invalid_filter(format!(
                        "expected a closing '\"' for the string that starts at position {start}, found the end of the filter"
                    )))
                }
                Some(b'"') => {
                    value.push_str(self.slice(run_start, index));
                    self.pos = index + 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    value.push_str(self.slice(run_start, index));
                    index = self.escape(index, &mut value)?;
                    run_start = index;
                }
                Some(&control) if control < 0x20 => {
                    return Err(ScimError::invalid_filter(format!(
                        "expected a string character at position {index}, found the control character U+{control:04X}; write it as an escape such as \\u{control:04x}"
                    )))
                }
                Some(_) => index += 1,
            }
        }
    }

    /// Decodes the escape whose backslash is at `index` into `value`;
    /// returns the position after it.
    fn escape(&self, index: usize, value: &mut String) -> Result<usize, ScimError> {
        let bytes = self.text.as_bytes();
        let simple = match bytes.get(index + 1) {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'u') => None,
            Some(_) | None => {
                let found = match self.text.get(index..).and_then(|rest| rest.chars().nth(1)) {
                    Some(c) => format!("'\\{c}'"),
                    None => "the end of the filter".to_owned(),
                };
                return Err(ScimError::invalid_filter(format!(
                    "expected an escape (\\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\uXXXX) at position {index}, found {found}"
                )));
            }
        };
        if let Some(c) = simple {
            value.push(c);
            return Ok(index + 2);
        }
        let unit = self.hex4(index)?;
        let (code, next) = match unit {
            0xD800..=0xDBFF => {
                let low_at = index + 6;
                let low = if bytes.get(low_at) == Some(&b'\\') && bytes.get(low_at + 1) == Some(&b'u')
                {
                    Some(self.hex4(low_at)?)
                } else {
                    None
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), low_at + 6)
                    }
                    Some(_) | None => {
                        return Err(ScimError::invalid_filter(format!(
                            "expected a low surrogate escape (\\uDC00 to \\uDFFF) at position {low_at}, after the high surrogate \\u{unit:04X} at position {index}"
                        )))
                    }
                }
            }
            0xDC00..=0xDFFF => {
                return Err(ScimError::invalid_filter(format!(
                    "expected a character escape at position {index}, found the lone low surrogate \\u{unit:04X}; a low surrogate must follow a high surrogate (\\uD800 to \\uDBFF)"
                )))
            }
            _ => (unit, index + 6),
        };
        match char::from_u32(code) {
            Some(c) => {
                value.push(c);
                Ok(next)
            }
            None => Err(ScimError::invalid_filter(format!(
                "expected a Unicode scalar value in the escape at position {index}"
            ))),
        }
    }

    /// The four hex digits after the `\u` at `index`.
    fn hex4(&self, index: usize) -> Result<u32, ScimError> {
        let digits = self
            .text
            .get(index + 2..index + 6)
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
        match digits.and_then(|digits| u32::from_str_radix(digits, 16).ok()) {
            Some(unit) => Ok(unit),
            None => {
                let rest = self.text.get(index..).unwrap_or_default();
                let found: String = rest.chars().take(6).collect();
                Err(ScimError::invalid_filter(format!(
                    "expected four hex digits after '\\u' at position {index}, found '{found}'"
                )))
            }
        }
    }
}

/// Whitespace between tokens: space, tab, carriage return, line feed.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes that end a word.
fn is_delimiter(byte: u8) -> bool {
    is_space(byte) || matches!(byte, b'(' | b')' | b'[' | b']' | b'"')
}

/// `text`, cut to at most [`MAX_QUOTE`] bytes on a character boundary, with
/// `...` when it was cut.
pub(super) fn quote(text: &str) -> String {
    if text.len() <= MAX_QUOTE {
        return text.to_owned();
    }
    let mut cut = MAX_QUOTE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", text.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<TokenKind<'_>> {
        let mut lexer = Lexer::new(text);
        let mut kinds = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::End {
                return kinds;
            }
            kinds.push(token.kind);
        }
    }

    #[test]
    fn splits_words_strings_and_punctuation() {
        use TokenKind::*;
        assert_eq!(
            tokens("emails[type eq \"w\\\"k\"] and(not\t(x pr))"),
            vec![
                Word("emails"),
                OpenBracket,
                Word("type"),
                Word("eq"),
                String("w\"k".to_owned()),
                CloseBracket,
                Word("and"),
                Open,
                Word("not"),
                Open,
                Word("x"),
                Word("pr"),
                Close,
                Close,
            ]
        );
    }

    #[test]
    fn quote_cuts_on_a_char_boundary() {
        let long = "é".repeat(30);
        let quoted = quote(&long);
        assert!(quoted.ends_with("..."));
        assert_eq!(quoted.len(), 40 + 3);
    }
}
