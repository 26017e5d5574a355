//! `muster completions SHELL`: the shell completion script of every
//! command and flag, generated from the same definitions as the parser.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;

/// `muster completions SHELL`.
#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script of `command` for the shell asked.
pub(crate) fn completions(args: &CompletionsArgs, mut command: clap::Command) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "muster", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("writing the completion script to standard output")
}
