//! `Replace(src, old, regex, group, repl, replAttr, template)` and its five modes.

use regex::{Regex, RegexBuilder};

use crate::error::{ExprError, Position};
use crate::MAX_TEXT_LENGTH;

/// Compiles a regex argument (.NET named groups `(?<name>...)` are supported).
pub(crate) fn compile(pattern: &str, position: Position) -> Result<Regex, ExprError> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|error| {
            let first = error.to_string();
            let reason = first.lines().last().unwrap_or_default().trim().to_owned();
            ExprError::new(format!("invalid regular expression ({reason})"), position)
        })
}

/// The arguments of Replace that were given (empty ones are `None`).
pub(crate) struct ReplaceArgs {
    pub(crate) old: Option<String>,
    pub(crate) regex: Option<Regex>,
    pub(crate) group: Option<String>,
    pub(crate) repl: Option<String>,
    pub(crate) repl_attr: Option<String>,
    pub(crate) template: Option<String>,
}

/// Applies Replace to `src` (`None` when null). `Err` names a missing argument combination.
pub(crate) fn apply(src: Option<String>, args: ReplaceArgs) -> Result<Option<String>, String> {
    match args {
        // (b) old + template: src in place of every old inside the template.
        ReplaceArgs {
            old: Some(old),
            template: Some(template),
            ..
        } if !old.is_empty() => {
            let src = src.unwrap_or_default();
            replaced_length(&template, &old, &src)?;
            Ok(Some(template.replace(&old, &src)))
        }
        // (a) old + repl: replace every old.
        ReplaceArgs {
            old: Some(old),
            regex: None,
            ..
        } => match src {
            Some(s) if !old.is_empty() => {
                let repl = args.repl.unwrap_or_default();
                replaced_length(&s, &old, &repl)?;
                Ok(Some(s.replace(&old, &repl)))
            }
            other => Ok(other),
        },
        // (e) regex + group + replAttr: src if non-empty, else the group's match in replAttr.
        ReplaceArgs {
            regex: Some(regex),
            group: Some(group),
            repl: None,
            repl_attr: Some(attr),
            ..
        } => match src.filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(s)),
            None => Ok(Some(
                regex
                    .captures(&attr)
                    .and_then(|c| c.name(&group).map(|m| m.as_str().to_owned()))
                    .unwrap_or(attr),
            )),
        },
        // (d) regex + group + repl: replace only what the group matched.
        ReplaceArgs {
            regex: Some(regex),
            group: Some(group),
            ..
        } => src
            .map(|s| replace_group(&regex, &group, &s, &args.repl.unwrap_or_default()))
            .transpose(),
        // (c) regex + repl: replace-all with `$1` / `${name}` expansion.
        ReplaceArgs {
            regex: Some(regex), ..
        } => src
            .map(|s| replace_all(&regex, &s, &args.repl.unwrap_or_default()))
            .transpose(),
        ReplaceArgs { .. } => Err("Replace needs oldValue or regexPattern".to_owned()),
    }
}

/// Why Replace stopped: its result would pass [`MAX_TEXT_LENGTH`].
fn too_long() -> String {
    format!("Replace would make text longer than {MAX_TEXT_LENGTH} bytes (the most any function may make)")
}

/// Fails when replacing every `old` in `text` by `new` passes the limit.
fn replaced_length(text: &str, old: &str, new: &str) -> Result<(), String> {
    let count = text.matches(old).count();
    let length = count.checked_mul(new.len()).and_then(|added| {
        text.len()
            .saturating_sub(count.saturating_mul(old.len()))
            .checked_add(added)
    });
    match length {
        Some(length) if length <= MAX_TEXT_LENGTH => Ok(()),
        _ => Err(too_long()),
    }
}

/// `regex.replace_all` with `$1` / `${name}` expansion, stopping at the limit.
fn replace_all(regex: &Regex, text: &str, repl: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for captures in regex.captures_iter(text) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        out.push_str(text.get(last..whole.start()).unwrap_or_default());
        captures.expand(repl, &mut out);
        last = whole.end();
        if out.len() > MAX_TEXT_LENGTH {
            return Err(too_long());
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    if out.len() > MAX_TEXT_LENGTH {
        return Err(too_long());
    }
    Ok(out)
}

fn replace_group(regex: &Regex, group: &str, text: &str, repl: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for captures in regex.captures_iter(text) {
        let Some(m) = captures.name(group) else {
            continue;
        };
        if m.start() < last {
            continue;
        }
        out.push_str(text.get(last..m.start()).unwrap_or_default());
        out.push_str(repl);
        last = m.end();
        if out.len() > MAX_TEXT_LENGTH {
            return Err(too_long());
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    Ok(out)
}
