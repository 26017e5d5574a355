//! Recursive-descent parser: tokens to a checked tree.
//!
//! Checks done here, so that a mapping is validated once: known function
//! names, argument counts, Switch pairs, SelectUniqueValue placement,
//! `vbTextCompare` only inside InStr, literal regexes of Replace compile.

use crate::ast::{Node, NodeKind, Pattern};
use crate::error::{ExprError, Position, Warning};
use crate::functions::{Function, Lookup};
use crate::lexer::{tokenize, Token};

/// Deepest nesting accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 64;

/// Parses `text` into its tree and lint warnings.
pub(crate) fn parse(text: &str) -> Result<(Node, Vec<Warning>), ExprError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        index: 0,
        warnings: Vec::new(),
    };
    let root = parser.expr(0)?;
    let (token, position) = parser.peek();
    if *token != Token::End {
        return Err(ExprError::new(
            format!("unexpected {} after the expression", token.describe()),
            position,
        ));
    }
    Ok((root, parser.warnings))
}

struct Parser {
    tokens: Vec<(Token, Position)>,
    index: usize,
    warnings: Vec<Warning>,
}

impl Parser {
    fn peek(&self) -> (&Token, Position) {
        match self.tokens.get(self.index).or(self.tokens.last()) {
            Some((token, position)) => (token, *position),
            None => (&Token::End, Position::START),
        }
    }

    fn next(&mut self) -> (Token, Position) {
        let (token, position) = self.peek();
        let token = token.clone();
        self.index += 1;
        (token, position)
    }

    /// `primary [cmp primary]`
    fn expr(&mut self, depth: usize) -> Result<Node, ExprError> {
        let left = self.primary(depth)?;
        let Token::Cmp(op) = *self.peek().0 else {
            return Ok(left);
        };
        self.next();
        let right = self.primary(depth + 1)?;
        if let (Token::Cmp(_), position) = self.peek() {
            return Err(ExprError::new(
                "comparisons cannot be chained; nest IIF instead",
                position,
            ));
        }
        reject_nested_select(&left)?;
        reject_nested_select(&right)?;
        Ok(Node {
            position: left.position,
            kind: NodeKind::Compare {
                op,
                left: Box::new(left),
                right: Box::new(right),
            },
        })
    }

    fn primary(&mut self, depth: usize) -> Result<Node, ExprError> {
        let (token, position) = self.next();
        if depth > MAX_DEPTH {
            return Err(ExprError::new(
                format!("expression nested more than {MAX_DEPTH} deep"),
                position,
            ));
        }
        let kind = match token {
            Token::Attr(name) => NodeKind::Attr(name),
            Token::Str(text) => NodeKind::Str(text),
            Token::Num(n) => NodeKind::Num(n),
            Token::Name(name) => return self.name(name, position, depth),
            other => {
                return Err(ExprError::new(
                    format!("expected a value but found {}", other.describe()),
                    position,
                ))
            }
        };
        Ok(Node { kind, position })
    }

    fn name(&mut self, name: String, position: Position, depth: usize) -> Result<Node, ExprError> {
        if *self.peek().0 != Token::LParen {
            let kind = match name.as_str() {
                "vbTextCompare" => NodeKind::TextCompare(true),
                "vbBinaryCompare" => NodeKind::TextCompare(false),
                _ => {
                    return Err(ExprError::new(
                        format!("unknown name '{name}' (a function call needs '(')"),
                        position,
                    ))
                }
            };
            return Ok(Node { kind, position });
        }
        let function = match Function::lookup(&name) {
            Lookup::Exact(function) => function,
            Lookup::OtherCase(function) => {
                self.warnings.push(Warning {
                    message: format!("function '{name}' is documented as '{}'", function.name()),
                    position,
                });
                function
            }
            Lookup::Unknown => {
                let hint = Function::closest(&name)
                    .map(|f| format!(" (did you mean '{}'?)", f.name()))
                    .unwrap_or_default();
                return Err(ExprError::new(
                    format!("unknown function '{name}'{hint}"),
                    position,
                ));
            }
        };
        self.next();
        let args = self.arguments(depth)?;
        let mut node = Node {
            kind: NodeKind::Call { function, args },
            position,
        };
        check_call(&mut node)?;
        Ok(node)
    }

    /// After `(`: arguments up to and including `)`.
    fn arguments(&mut self, depth: usize) -> Result<Vec<Option<Node>>, ExprError> {
        let mut args = Vec::new();
        if *self.peek().0 == Token::RParen {
            self.next();
            return Ok(args);
        }
        loop {
            let arg = match self.peek().0 {
                Token::Comma | Token::RParen => None,
                _ => Some(self.expr(depth + 1)?),
            };
            args.push(arg);
            match self.next() {
                (Token::Comma, _) => {}
                (Token::RParen, _) => return Ok(args),
                (other, position) => {
                    return Err(ExprError::new(
                        format!("expected ',' or ')' but found {}", other.describe()),
                        position,
                    ))
                }
            }
        }
    }
}

/// Argument-count and placement checks of one call.
fn check_call(node: &mut Node) -> Result<(), ExprError> {
    let position = node.position;
    let NodeKind::Call { function, args } = &mut node.kind else {
        return Ok(());
    };
    let (min, max) = function.arity();
    let name = function.name();
    if args.len() < min || args.len() > max {
        let wanted = match (min, max) {
            (min, max) if min == max => format!("{min}"),
            (min, usize::MAX) => format!("at least {min}"),
            (min, max) => format!("{min} to {max}"),
        };
        return Err(ExprError::new(
            format!("{name} takes {wanted} argument(s), not {}", args.len()),
            position,
        ));
    }
    for (i, arg) in args.iter().enumerate() {
        let Some(arg) = arg else { continue };
        reject_nested_select(arg)?;
        if matches!(arg.kind, NodeKind::TextCompare(_)) && !(*function == Function::InStr && i >= 2)
        {
            return Err(ExprError::new(
                "vbTextCompare/vbBinaryCompare is only an argument of InStr",
                arg.position,
            ));
        }
    }
    match function {
        Function::Switch if args.len() % 2 != 0 => {
            Err(ExprError::new("Switch has a key without value", position))
        }
        Function::SelectUniqueValue if args.len() < 2 => Err(ExprError::new(
            "SelectUniqueValue needs at least two rules",
            position,
        )),
        Function::Replace => compile_pattern(args.get_mut(2)),
        _ => Ok(()),
    }
}

fn reject_nested_select(node: &Node) -> Result<(), ExprError> {
    match &node.kind {
        NodeKind::Call {
            function: Function::SelectUniqueValue,
            ..
        } => Err(ExprError::new(
            "SelectUniqueValue must be top-level",
            node.position,
        )),
        _ => Ok(()),
    }
}

/// A literal regex of Replace is compiled here, once (and its errors are
/// parse errors).
fn compile_pattern(arg: Option<&mut Option<Node>>) -> Result<(), ExprError> {
    if let Some(Some(node)) = arg {
        if let NodeKind::Str(text) = &node.kind {
            let regex = crate::replace::compile(text, node.position)?;
            node.kind = NodeKind::Pattern(Pattern {
                text: text.clone(),
                regex,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&str, &str>) {
        match (parse(text), expected) {
            (Ok((node, _)), Ok(printed)) => assert_eq!(node.to_string(), printed, "{text}"),
            (Err(error), Err(wanted)) => {
                assert!(error.to_string().contains(wanted), "{text}: {error}")
            }
            (got, wanted) => panic!("{text}: got {got:?}, wanted {wanted:?}"),
        }
    }

    #[test]
    fn parses_and_prints() {
        check("Now()", Ok("Now()"));
        check(
            "switch([a],,\"x\",\"y\")",
            Ok("Switch([a], , \"x\", \"y\")"),
        );
        check("IIF([c]=\"USA\",1,2)", Ok("IIF([c] = \"USA\", 1, 2)"));
        check("[Cost Center Code]", Ok("[Cost Center Code]"));
        check(
            "InStr(\"a\",\"b\",,vbTextCompare)",
            Ok("InStr(\"a\", \"b\", , vbTextCompare)"),
        );
    }

    #[test]
    fn errors() {
        check(
            "Frobnicate([x])",
            Err("unknown function 'Frobnicate' at column 1"),
        );
        check(
            "Append([x])",
            Err("Append takes 2 argument(s), not 1 at column 1"),
        );
        check(
            "Append([x], \"a\"",
            Err("expected ',' or ')' but found the end"),
        );
        check("Switch([s], \"d\", \"k\")", Err("key without value"));
        check(
            "ToLower(SelectUniqueValue([a],[b]))",
            Err("must be top-level at column 9"),
        );
        check("Left(vbTextCompare, 1)", Err("only an argument of InStr"));
        check("[a] = [b] = [c]", Err("cannot be chained"));
        check(
            "Replace([x], , \"(\", , \"\", , )",
            Err("regular expression"),
        );
        check("Coalesce([a]) [b]", Err("unexpected attribute [b]"));
        check(&"Not(".repeat(100), Err("nested more than"));
        check("Append(\"a\",\n  Frob())", Err("at line 2, column 3"));
    }

    #[test]
    fn other_casing_warns() {
        let (_, warnings) = parse("toLower([a])").unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("ToLower"));
    }
}
