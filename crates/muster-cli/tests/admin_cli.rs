//! Issue 17, points 3 and 6: `muster --help` speaks to admins,
//! `muster --version` names the commit, `muster completions` prints scripts
//! the shells accept. (Every command's own help and examples are checked
//! in `src/help.rs`, over clap's command tree.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::run_muster;

/// Commands the completion scripts must offer.
const COMMANDS: [&str; 6] = ["serve", "token", "backup", "restore", "completions", "sync"];

#[test]
fn help_opens_with_what_muster_is_for() {
    let help = run_muster(&["--help"]);
    assert!(help.status.success(), "{help}");
    let first = help.stdout.lines().next().unwrap_or_default();
    assert!(first.contains("identity provider"), "{help}");
    assert!(!help.stdout.contains("glue"), "{help}");
    for step in ["muster token create", "muster serve", "Test Connection"] {
        assert!(help.stdout.contains(step), "no '{step}' in: {help}");
    }
}

#[test]
fn version_names_the_release_and_the_commit() {
    let version = run_muster(&["--version"]);
    assert!(version.status.success(), "{version}");
    let git = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8(output.stdout).unwrap().trim().to_owned());
    let commit = std::env::var("MUSTER_COMMIT")
        .ok()
        .or(git)
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        version.stdout.trim(),
        format!("muster {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs `shell ARGS` with `script` on standard input; `None` when the shell
/// is not installed.
fn check_with(shell: &str, args: &[&str], script: &str) -> Option<std::process::Output> {
    let mut child = Command::new(shell)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn completion_scripts_parse_and_name_the_commands() {
    // bash is everywhere CI runs (`.ci/run` is a bash script); zsh and fish
    // are checked when installed.
    for (shell, parse, required) in [
        ("bash", &["-n"][..], true),
        ("zsh", &["-n"][..], false),
        ("fish", &["--no-execute"][..], false),
    ] {
        let output = run_muster(&["completions", shell]);
        assert!(output.status.success(), "{output}");
        let script = &output.stdout;
        assert!(script.len() > 1000, "{shell}: a short script: {script}");
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: '{command}' not offered");
        }
        match check_with(shell, parse, script) {
            Some(checked) => assert!(
                checked.status.success(),
                "{shell} refuses the script: {}",
                String::from_utf8_lossy(&checked.stderr)
            ),
            None => assert!(!required, "{shell} is not installed"),
        }
    }
    let unknown = run_muster(&["completions", "tcsh"]);
    assert!(!unknown.status.success(), "{unknown}");
    assert!(unknown.stderr.contains("bash"), "{unknown}");
}
