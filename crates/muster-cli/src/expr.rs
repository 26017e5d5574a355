//! `muster expr eval 'EXPRESSION' --attributes FILE.json`: evaluates an Entra
//! attribute-mapping expression ([`muster_expr`]) against a JSON object of
//! source attributes and prints the result as JSON.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use muster_expr::{Attributes, Expression, Outcome};
use serde_json::{json, Map, Value};

use crate::say;

#[derive(Subcommand)]
pub(crate) enum ExprCommand {
    /// Evaluate an expression and print its value as JSON.
    ///
    /// Prints `{"skipFlow": true}` when IgnoreFlowIfNullOrEmpty leaves the
    /// attribute out.
    #[command(after_help = "Examples:\n  \
        muster expr eval 'Join(\" \", [givenName], [surname])' --attributes user.json\n  \
        echo '{\"mail\": \"A@Contoso.com\"}' | muster expr eval 'ToLower([mail])' --attributes -")]
    Eval {
        /// The expression, e.g. `Append("tel:", StripSpaces([telephoneNumber]))`.
        expression: String,
        /// A JSON object of source attribute names to values; `-` reads standard input.
        /// Without it, every attribute is absent.
        #[arg(long)]
        attributes: Option<PathBuf>,
    },
}

/// Runs `muster expr ...`.
pub(crate) fn expr(command: ExprCommand) -> Result<()> {
    let ExprCommand::Eval {
        expression,
        attributes,
    } = command;
    let attributes = match attributes {
        Some(path) => read_attributes(&path)?,
        None => Map::new(),
    };
    let parsed = Expression::parse(&expression).context("parsing the expression")?;
    for warning in parsed.warnings() {
        eprintln!("warning: {warning}");
    }
    let outcome = parsed
        .evaluate(&Attributes::new(attributes))
        .context("evaluating the expression")?;
    let printed = match outcome {
        Outcome::Value(value) => value,
        Outcome::Skip => json!({"skipFlow": true}),
    };
    say(serde_json::to_string_pretty(&printed)?)
}

fn read_attributes(path: &PathBuf) -> Result<Map<String, Value>> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading attributes from standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    match serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))? {
        Value::Object(map) => Ok(map),
        other => bail!("{} must hold a JSON object, not {other}", path.display()),
    }
}
