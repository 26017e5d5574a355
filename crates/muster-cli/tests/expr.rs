//! `muster expr eval`: a good expression from a file and from standard input,
//! a skipped flow, and bad expressions (non-zero exit, the error names its
//! position).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test on unexpected output"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// Runs `muster expr eval EXPRESSION [--attributes ATTRIBUTES]`, feeding `stdin`.
fn eval(expression: &str, attributes: Option<&str>, stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_muster"));
    command.args(["expr", "eval", expression]);
    if let Some(attributes) = attributes {
        command.args(["--attributes", attributes]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run muster");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for muster")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn evaluates_against_a_file() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("user.json");
    std::fs::write(
        &file,
        r#"{"givenName": "Ana", "surname": "Silva", "telephoneNumber": "+1 555 123 4567"}"#,
    )
    .unwrap();
    let file = file.display().to_string();
    let output = eval(r#"Join(" ", [givenName], [surname])"#, Some(&file), "");
    assert_eq!(stdout_json(&output), json!("Ana Silva"));
    let output = eval(
        r#"Append("tel:", StripSpaces([telephoneNumber]))"#,
        Some(&file),
        "",
    );
    assert_eq!(stdout_json(&output), json!("tel:+15551234567"));
}

#[test]
fn reads_attributes_from_stdin() {
    let output = eval(
        "Split([roles], \",\")",
        Some("-"),
        r#"{"roles": "Agent,Supervisor"}"#,
    );
    assert_eq!(stdout_json(&output), json!(["Agent", "Supervisor"]));
    let output = eval("IgnoreFlowIfNullOrEmpty([department])", Some("-"), "{}");
    assert_eq!(stdout_json(&output), json!({"skipFlow": true}));
    let output = eval("IsNull([department])", None, "");
    assert_eq!(stdout_json(&output), json!(true));
}

#[test]
fn bad_expressions_fail_with_their_position() {
    for (expression, stdin, wanted) in [
        (
            r#"Append("abc, "x")"#,
            "{}",
            "malformed string literal at column 8",
        ),
        (
            "ToLower(Frob([mail]))",
            "{}",
            "unknown function 'Frob' at column 9",
        ),
        (
            "CDate([d])",
            r#"{"d": "soon"}"#,
            "cannot read 'soon' as a date at column 1",
        ),
        ("Now()", "[1]", "must hold a JSON object"),
    ] {
        let output = eval(expression, Some("-"), stdin);
        assert!(!output.status.success(), "{expression}");
        assert!(output.stdout.is_empty(), "{expression}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(wanted), "{expression}: {stderr}");
    }
}
