//! Splits expression text into tokens, each with its position.

use crate::error::{ExprError, Position};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    LParen,
    RParen,
    Comma,
    Attr(String),
    Str(String),
    Num(i64),
    Name(String),
    Cmp(CmpOp),
    End,
}

impl Token {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::LParen => "'('".to_owned(),
            Token::RParen => "')'".to_owned(),
            Token::Comma => "','".to_owned(),
            Token::Attr(name) => format!("attribute [{name}]"),
            Token::Str(_) => "a string".to_owned(),
            Token::Num(n) => format!("number {n}"),
            Token::Name(name) => format!("'{name}'"),
            Token::Cmp(op) => format!("'{}'", op.symbol()),
            Token::End => "the end of the expression".to_owned(),
        }
    }
}

/// Tokens of `text`, ending with [`Token::End`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<(Token, Position)>, ExprError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        index: 0,
        position: Position::START,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.position;
        let Some(c) = lexer.peek() else {
            tokens.push((Token::End, start));
            return Ok(tokens);
        };
        let token = match c {
            '(' => lexer.single(Token::LParen),
            ')' => lexer.single(Token::RParen),
            ',' => lexer.single(Token::Comma),
            '[' => lexer.attribute(start)?,
            '"' => lexer.string(start)?,
            '=' => lexer.single(Token::Cmp(CmpOp::Eq)),
            '<' | '>' => lexer.comparison(c),
            '&' => lexer.hex(start)?,
            '-' => lexer.decimal(start)?,
            c if c.is_ascii_digit() => lexer.decimal(start)?,
            c if c.is_alphabetic() || c == '_' => lexer.name(),
            other => {
                return Err(ExprError::new(
                    format!("unexpected character '{other}'"),
                    start,
                ))
            }
        };
        tokens.push((token, start));
    }
}

struct Lexer {
    chars: Vec<char>,
    index: usize,
    position: Position,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.index).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.index += 1;
        self.position.offset += 1;
        if c == '\n' {
            self.position.line += 1;
            self.position.column = 1;
        } else {
            self.position.column += 1;
        }
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn single(&mut self, token: Token) -> Token {
        self.bump();
        token
    }

    fn comparison(&mut self, first: char) -> Token {
        self.bump();
        let op = match (first, self.peek()) {
            ('<', Some('>')) => CmpOp::Ne,
            ('<', Some('=')) => CmpOp::Le,
            ('>', Some('=')) => CmpOp::Ge,
            ('<', _) => return Token::Cmp(CmpOp::Lt),
            _ => return Token::Cmp(CmpOp::Gt),
        };
        self.bump();
        Token::Cmp(op)
    }

    fn attribute(&mut self, start: Position) -> Result<Token, ExprError> {
        self.bump();
        let mut name = String::new();
        loop {
            match self.bump() {
                Some(']') => break,
                Some(c) => name.push(c),
                None => return Err(ExprError::new("unterminated attribute name", start)),
            }
        }
        if name.trim().is_empty() {
            return Err(ExprError::new("empty attribute name", start));
        }
        Ok(Token::Attr(name))
    }

    /// `"..."` with `\"` and `\\` escapes; other `\x` stay as written.
    fn string(&mut self, start: Position) -> Result<Token, ExprError> {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        value.push(c);
                    }
                    _ => value.push('\\'),
                },
                Some(c) => value.push(c),
                None => return Err(ExprError::new("malformed string literal", start)),
            }
        }
        // A quote followed straight by a name or another quote is almost
        // always an unescaped quote inside the string: `"abc, "x"`.
        if self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '"' || c == '_' || c == '[')
        {
            return Err(ExprError::new("malformed string literal", start));
        }
        Ok(Token::Str(value))
    }

    fn hex(&mut self, start: Position) -> Result<Token, ExprError> {
        self.bump();
        if !matches!(self.bump(), Some('H' | 'h')) {
            return Err(ExprError::new("malformed number: '&' must start &H", start));
        }
        let mut digits = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_hexdigit) {
            self.bump();
            digits.push(c);
        }
        i64::from_str_radix(&digits, 16)
            .map(Token::Num)
            .map_err(|_| ExprError::new("malformed hexadecimal number", start))
    }

    fn decimal(&mut self, start: Position) -> Result<Token, ExprError> {
        let mut digits = String::new();
        if self.peek() == Some('-') {
            self.bump();
            digits.push('-');
        }
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            self.bump();
            digits.push(c);
        }
        if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return Err(ExprError::new("malformed number", start));
        }
        digits
            .parse()
            .map(Token::Num)
            .map_err(|_| ExprError::new("malformed number", start))
    }

    fn name(&mut self) -> Token {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.bump();
            name.push(c);
        }
        Token::Name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[Token]) {
        let tokens: Vec<Token> = tokenize(text)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(tokens, expected, "{text}");
    }

    #[test]
    fn tokens() {
        use Token::*;
        check("Now()", &[Name("Now".into()), LParen, RParen, End]);
        check("[Cost Center]", &[Attr("Cost Center".into()), End]);
        check(r#""a\"b\\c\d""#, &[Str("a\"b\\c\\d".into()), End]);
        check("&HF7 -10", &[Num(247), Num(-10), End]);
        check(
            "<> <= >= < > =",
            &[
                Cmp(CmpOp::Ne),
                Cmp(CmpOp::Le),
                Cmp(CmpOp::Ge),
                Cmp(CmpOp::Lt),
                Cmp(CmpOp::Gt),
                Cmp(CmpOp::Eq),
                End,
            ],
        );
    }

    #[test]
    fn errors_name_position() {
        let error = tokenize(r#"Append("abc, "x")"#).unwrap_err();
        assert_eq!(error.position().column, 8);
        assert_eq!(error.to_string(), "malformed string literal at column 8");
        assert!(tokenize("\"abc").is_err());
        assert!(tokenize("[abc").is_err());
        assert!(tokenize("99999999999999999999").is_err());
        assert!(tokenize("&Q1").is_err());
    }
}
