//! Evaluates a checked tree against an [`AttributeSource`].

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::ast::{Node, NodeKind, Pattern};
use crate::datetime;
use crate::error::{ExprError, Position};
use crate::functions::Function;
use crate::lexer::CmpOp;
use crate::replace::{self, ReplaceArgs};
use crate::source::AttributeSource;
use crate::text;
use crate::value::Val;
use crate::{Outcome, MAX_TEXT_LENGTH};

/// Why evaluation stopped early.
enum Flow {
    Error(ExprError),
    /// IgnoreFlowIfNullOrEmpty fired.
    Skip,
}

impl From<ExprError> for Flow {
    fn from(error: ExprError) -> Self {
        Flow::Error(error)
    }
}

type Result<T> = std::result::Result<T, Flow>;

/// Evaluates `root`.
pub(crate) fn evaluate(
    root: &Node,
    source: &impl AttributeSource,
) -> std::result::Result<Outcome, ExprError> {
    match (Eval { source }).node(root) {
        Ok(value) => Ok(Outcome::Value(value.into_json())),
        Err(Flow::Skip) => Ok(Outcome::Skip),
        Err(Flow::Error(error)) => Err(error),
    }
}

fn fail(position: Position, message: impl Into<String>) -> Flow {
    Flow::Error(ExprError::new(message, position))
}

struct Eval<'a, S> {
    source: &'a S,
}

/// One call being evaluated: its function, arguments and position.
struct Call<'n> {
    function: Function,
    args: &'n [Option<Node>],
    position: Position,
}

impl<S: AttributeSource> Eval<'_, S> {
    fn node(&self, node: &Node) -> Result<Val> {
        match &node.kind {
            NodeKind::Attr(name) => Ok(self
                .source
                .attribute(name)
                .map_or(Val::Null, Val::from_json)),
            NodeKind::Str(s) | NodeKind::Pattern(Pattern { text: s, .. }) => {
                Ok(Val::Str(s.clone()))
            }
            NodeKind::Num(n) => Ok(Val::Num(*n)),
            NodeKind::TextCompare(_) => Ok(Val::Null),
            NodeKind::Compare { op, left, right } => {
                let (left, right) = (self.node(left)?, self.node(right)?);
                Ok(Val::Bool(compare(*op, &left, &right)))
            }
            NodeKind::Call { function, args } => {
                let call = Call {
                    function: *function,
                    args,
                    position: node.position,
                };
                let value = self.call(&call)?;
                if let Val::Str(text) = &value {
                    within_limit(&call, text.len())?;
                }
                Ok(value)
            }
        }
    }

    /// Argument `i`, null when empty or absent.
    fn arg(&self, call: &Call<'_>, i: usize) -> Result<Val> {
        match call.args.get(i) {
            Some(Some(node)) => self.node(node),
            _ => Ok(Val::Null),
        }
    }

    /// Argument `i` as text (null as `""`), or `None` when it was not given.
    fn given_text(&self, call: &Call<'_>, i: usize) -> Result<Option<String>> {
        match call.args.get(i) {
            Some(Some(node)) => Ok(Some(self.node(node)?.text_or_empty())),
            _ => Ok(None),
        }
    }

    fn text(&self, call: &Call<'_>, i: usize) -> Result<String> {
        Ok(self.arg(call, i)?.text_or_empty())
    }

    fn number(&self, call: &Call<'_>, i: usize) -> Result<i64> {
        let value = self.arg(call, i)?;
        value.number().ok_or_else(|| {
            fail(
                call.position,
                format!(
                    "{} needs a number as argument {}, not {}",
                    call.function.name(),
                    i + 1,
                    value.kind()
                ),
            )
        })
    }

    /// Argument `i` as a DateTime (strings are read as CDate does); `None` for null.
    fn date(&self, call: &Call<'_>, i: usize) -> Result<Option<OffsetDateTime>> {
        to_date(self.arg(call, i)?, call)
    }

    /// Applies `f` to argument 0 as text; null stays null.
    fn map_text(&self, call: &Call<'_>, f: impl FnOnce(&str) -> String) -> Result<Val> {
        Ok(match self.arg(call, 0)?.text() {
            Some(s) => Val::Str(f(&s)),
            None => Val::Null,
        })
    }

    fn call(&self, call: &Call<'_>) -> Result<Val> {
        use Function as F;
        let position = call.position;
        match call.function {
            F::Append => {
                let (a, b) = (self.arg(call, 0)?.text(), self.arg(call, 1)?.text());
                Ok(match (a, b) {
                    (None, None) => Val::Null,
                    (a, b) => Val::Str(a.unwrap_or_default() + &b.unwrap_or_default()),
                })
            }
            F::AppRoleAssignmentsComplex => self.roles(call, "displayName"),
            F::AssertiveAppRoleAssignmentsComplex => self.roles(call, "display"),
            F::BitAnd => Ok(Val::Num(self.number(call, 0)? & self.number(call, 1)?)),
            F::CBool => {
                let value = self.arg(call, 0)?;
                value.boolean().map(Val::Bool).ok_or_else(|| {
                    fail(
                        position,
                        format!("CBool cannot read {} as a boolean", value.kind()),
                    )
                })
            }
            F::CDate => Ok(self.date(call, 0)?.map_or(Val::Null, Val::Date)),
            F::Coalesce => {
                for i in 0..call.args.len() {
                    let value = self.arg(call, i)?;
                    if value != Val::Null {
                        return Ok(value);
                    }
                }
                Ok(Val::Null)
            }
            F::ConvertToBase64 => self.map_text(call, text::base64_utf16),
            F::ConvertToUtf8Hex => self.map_text(call, text::utf8_hex),
            F::Count => {
                let count = self.arg(call, 0)?.values().len();
                Ok(Val::Num(i64::try_from(count).unwrap_or(i64::MAX)))
            }
            F::CStr => Ok(self.arg(call, 0)?.text().map_or(Val::Null, Val::Str)),
            F::DateAdd => {
                let interval = self.text(call, 0)?;
                let n = self.number(call, 1)?;
                let Some(date) = self.date(call, 2)? else {
                    return Ok(Val::Null);
                };
                datetime::add(&interval, n, date)
                    .map(Val::Date)
                    .ok_or_else(|| {
                        fail(
                            position,
                            format!("DateAdd: unknown interval '{interval}' or date out of range"),
                        )
                    })
            }
            F::DateDiff => {
                let interval = self.text(call, 0)?;
                let (Some(d1), Some(d2)) = (self.date(call, 1)?, self.date(call, 2)?) else {
                    return Ok(Val::Null);
                };
                datetime::diff(&interval, d1, d2)
                    .map(Val::Num)
                    .ok_or_else(|| {
                        fail(position, format!("DateDiff: unknown interval '{interval}'"))
                    })
            }
            F::DateFromNum => {
                if self.arg(call, 0)? == Val::Null {
                    return Ok(Val::Null);
                }
                let ticks = self.number(call, 0)?;
                datetime::from_filetime(ticks)
                    .map(Val::Date)
                    .ok_or_else(|| fail(position, "DateFromNum: value out of range"))
            }
            F::FormatDateTime => self.format_date_time(call),
            F::Guid => Ok(Val::Str(uuid::Uuid::new_v4().to_string())),
            F::IgnoreFlowIfNullOrEmpty => {
                let value = self.arg(call, 0)?;
                if value.is_null_or_empty() {
                    Err(Flow::Skip)
                } else {
                    Ok(value)
                }
            }
            F::Iif => {
                let condition = self.arg(call, 0)?;
                let chosen = match condition {
                    Val::Null => false,
                    other => other.boolean().ok_or_else(|| {
                        fail(
                            position,
                            format!("IIF needs a boolean condition, not {}", other.kind()),
                        )
                    })?,
                };
                self.arg(call, if chosen { 1 } else { 2 })
            }
            F::InStr => self.instr(call),
            F::IsNull => Ok(Val::Bool(self.arg(call, 0)? == Val::Null)),
            F::IsNullOrEmpty => Ok(Val::Bool(self.arg(call, 0)?.is_null_or_empty())),
            F::IsPresent => Ok(Val::Bool(!self.arg(call, 0)?.is_null_or_empty())),
            F::IsString => Ok(Val::Bool(self.arg(call, 0)?.text().is_some())),
            F::Item => {
                let values = self.arg(call, 0)?.values();
                let index = self.number(call, 1)?;
                Ok(usize::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| values.into_iter().nth(i))
                    .unwrap_or(Val::Null))
            }
            F::Join => {
                let separator = self.text(call, 0)?;
                let mut parts = Vec::new();
                for i in 1..call.args.len() {
                    for value in self.arg(call, i)?.values() {
                        if let Some(s) = value.text().filter(|s| !s.is_empty()) {
                            parts.push(s);
                        }
                    }
                }
                let length = parts
                    .iter()
                    .try_fold(0_usize, |sum, part| {
                        sum.checked_add(part.len())?.checked_add(separator.len())
                    })
                    .unwrap_or(usize::MAX);
                within_limit(call, length)?;
                Ok(Val::Str(parts.join(&separator)))
            }
            F::Left => {
                let s = self.text(call, 0)?;
                let n = self.number(call, 1)?;
                Ok(Val::Str(match usize::try_from(n) {
                    Ok(n) => s.chars().take(n).collect(),
                    Err(_) => s,
                }))
            }
            F::Mid => {
                let Some(s) = self.arg(call, 0)?.text() else {
                    return Ok(Val::Null);
                };
                let start = usize::try_from(self.number(call, 1)?.max(1) - 1).unwrap_or(0);
                let len = usize::try_from(self.number(call, 2)?.max(0)).unwrap_or(0);
                Ok(Val::Str(s.chars().skip(start).take(len).collect()))
            }
            F::NormalizeDiacritics => self.map_text(call, text::normalize_diacritics),
            F::Not => Ok(Val::Bool(self.arg(call, 0)?.boolean() != Some(true))),
            F::Now => Ok(Val::Date(self.source.now().to_offset(time::UtcOffset::UTC))),
            F::NumFromDate => match self.date(call, 0)? {
                None => Ok(Val::Null),
                Some(date) => datetime::to_filetime(date)
                    .map(Val::Num)
                    .ok_or_else(|| fail(position, "NumFromDate: date out of range")),
            },
            F::PCase => {
                let seps = self.given_text(call, 1)?;
                self.map_text(call, |s| text::pcase(s, seps.as_deref()))
            }
            F::RandomString => {
                let size = |i| -> Result<usize> {
                    usize::try_from(self.number(call, i)?)
                        .map_err(|_| fail(position, "RandomString needs counts of 0 or more"))
                };
                let mins = [size(1)?, size(2)?, size(3)?, size(4)?];
                let avoid = self.text(call, 5)?;
                text::random_string(size(0)?, mins, &avoid)
                    .map(Val::Str)
                    .map_err(|message| fail(position, message))
            }
            F::Redact => self.arg(call, 0),
            F::RemoveDuplicates => {
                let mut unique: Vec<Val> = Vec::new();
                for value in self.arg(call, 0)?.values() {
                    if !unique.contains(&value) {
                        unique.push(value);
                    }
                }
                Ok(Val::List(unique))
            }
            F::Replace => self.replace(call),
            F::SelectUniqueValue => {
                for i in 0..call.args.len() {
                    if let Some(value) = self.arg(call, i)?.text() {
                        if !self.source.taken_in_target(&value) {
                            return Ok(Val::Str(value));
                        }
                    }
                }
                Err(fail(
                    position,
                    "SelectUniqueValue: all values exist in target; entry escrowed",
                ))
            }
            F::SingleAppRoleAssignment => Ok(self
                .arg(call, 0)?
                .values()
                .into_iter()
                .find_map(|role| match role {
                    Val::Obj(map) => map.get("value").map(Val::from_json),
                    _ => None,
                })
                .unwrap_or(Val::Null)),
            F::Split => {
                let Some(s) = self.arg(call, 0)?.text() else {
                    return Ok(Val::Null);
                };
                let delimiter = self.text(call, 1)?;
                if delimiter.is_empty() {
                    return Ok(Val::List(vec![Val::Str(s)]));
                }
                Ok(Val::List(
                    s.split(delimiter.as_str())
                        .map(|p| Val::Str(p.to_owned()))
                        .collect(),
                ))
            }
            F::StripSpaces => self.map_text(call, |s| s.replace(' ', "")),
            F::Switch => {
                let source = self.text(call, 0)?;
                for pair in (2..call.args.len()).step_by(2) {
                    if self.text(call, pair)? == source {
                        return self.arg(call, pair + 1);
                    }
                }
                self.arg(call, 1)
            }
            F::ToLower => {
                let culture = self.given_text(call, 1)?;
                self.map_text(call, |s| text::to_lower(s, culture.as_deref()))
            }
            F::ToUpper => {
                let culture = self.given_text(call, 1)?;
                self.map_text(call, |s| text::to_upper(s, culture.as_deref()))
            }
            F::Word => {
                let s = self.text(call, 0)?;
                let n = self.number(call, 1)?;
                let delimiters = self.text(call, 2)?;
                Ok(Val::Str(text::word(&s, n, &delimiters)))
            }
        }
    }

    /// AppRoleAssignmentsComplex and its assertive twin (`name_key` differs).
    fn roles(&self, call: &Call<'_>, name_key: &str) -> Result<Val> {
        let mut roles = Vec::new();
        for role in self.arg(call, 0)?.values() {
            let Val::Obj(map) = role else {
                return Err(fail(
                    call.position,
                    format!(
                        "{} needs app role assignment objects, not {}",
                        call.function.name(),
                        role.kind()
                    ),
                ));
            };
            let mut out = Map::new();
            out.insert("primary".to_owned(), Value::Bool(false));
            out.insert(
                "type".to_owned(),
                Value::from("WindowsAzureActiveDirectoryRole"),
            );
            out.insert(
                name_key.to_owned(),
                map.get("displayName").cloned().unwrap_or(Value::Null),
            );
            out.insert(
                "value".to_owned(),
                map.get("value").cloned().unwrap_or(Value::Null),
            );
            roles.push(Val::Obj(out));
        }
        Ok(Val::List(roles))
    }

    fn format_date_time(&self, call: &Call<'_>) -> Result<Val> {
        let source = self.arg(call, 0)?;
        let input_format = self.text(call, 2)?;
        let output_format = self.text(call, 3)?;
        let date = match source {
            Val::Null => return Ok(Val::Null),
            Val::Date(date) => date,
            other => {
                let text = other.text_or_empty();
                datetime::parse_exact(&text, &input_format).ok_or_else(|| {
                    fail(
                        call.position,
                        format!(
                            "FormatDateTime: '{text}' does not match the format '{input_format}'"
                        ),
                    )
                })?
            }
        };
        Ok(Val::Str(datetime::format(date, &output_format)))
    }

    fn instr(&self, call: &Call<'_>) -> Result<Val> {
        let Some(s) = self.arg(call, 0)?.text() else {
            return Ok(Val::Null);
        };
        let find = self.text(call, 1)?;
        let mut start = 1;
        let mut ignore_case = false;
        for i in 2..call.args.len() {
            match call.args.get(i) {
                Some(Some(Node {
                    kind: NodeKind::TextCompare(text),
                    ..
                })) => ignore_case = *text,
                Some(Some(_)) if i == 2 => start = self.number(call, i)?,
                Some(Some(_)) => ignore_case = self.number(call, i)? == 1,
                _ => {}
            }
        }
        Ok(Val::Num(text::instr(&s, &find, start, ignore_case)))
    }

    fn replace(&self, call: &Call<'_>) -> Result<Val> {
        let src = self.arg(call, 0)?.text();
        let regex = match call.args.get(2) {
            Some(Some(Node {
                kind: NodeKind::Pattern(pattern),
                ..
            })) => Some(pattern.regex.clone()),
            Some(Some(node)) => {
                let pattern = self.node(node)?.text_or_empty();
                Some(replace::compile(&pattern, node.position)?)
            }
            _ => None,
        };
        let args = ReplaceArgs {
            old: self.given_text(call, 1)?,
            regex,
            group: self.given_text(call, 3)?,
            repl: self.given_text(call, 4)?,
            repl_attr: self.given_text(call, 5)?,
            template: self.given_text(call, 6)?,
        };
        replace::apply(src, args)
            .map(|out| out.map_or(Val::Null, Val::Str))
            .map_err(|message| fail(call.position, message))
    }
}

/// Fails when a function would make text longer than [`MAX_TEXT_LENGTH`].
fn within_limit(call: &Call<'_>, length: usize) -> Result<()> {
    if length > MAX_TEXT_LENGTH {
        return Err(fail(
            call.position,
            format!(
                "{} would make text longer than {MAX_TEXT_LENGTH} bytes (the most any function \
                 may make)",
                call.function.name()
            ),
        ));
    }
    Ok(())
}

fn to_date(value: Val, call: &Call<'_>) -> Result<Option<OffsetDateTime>> {
    match value {
        Val::Null => Ok(None),
        Val::Date(date) => Ok(Some(date)),
        other => {
            let text = other.text_or_empty();
            datetime::parse_loose(&text).map(Some).ok_or_else(|| {
                fail(
                    call.position,
                    format!("{} cannot read '{text}' as a date", call.function.name()),
                )
            })
        }
    }
}

/// Dates compare as dates; when either side is a number, numerically if both
/// can be; otherwise ordinally as text, null as `""`.
fn compare(op: CmpOp, left: &Val, right: &Val) -> bool {
    let ordering = match (left, right) {
        (Val::Date(a), Val::Date(b)) => a.cmp(b),
        (Val::Num(_), _) | (_, Val::Num(_)) => match (left.number(), right.number()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => left.text_or_empty().cmp(&right.text_or_empty()),
        },
        _ => left.text_or_empty().cmp(&right.text_or_empty()),
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
    }
}
