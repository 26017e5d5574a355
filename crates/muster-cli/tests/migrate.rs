//! `muster migrate`: a dry run prints every pending step with its SQL and
//! touches nothing; a run applies them; then nothing is pending.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use common::run_muster;

#[test]
fn a_dry_run_prints_the_steps_and_a_run_applies_them() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let data_dir = data.display().to_string();

    let dry = run_muster(&["migrate", "--data-dir", &data_dir, "--dry-run"]);
    assert!(dry.status.success(), "{dry}");
    assert!(
        dry.stdout.contains("-- migration 1: initial schema"),
        "{dry}"
    );
    assert!(dry.stdout.contains("CREATE TABLE"), "{dry}");
    assert!(dry.stdout.contains("nothing was applied"), "{dry}");
    assert!(!data.exists(), "a dry run creates nothing");
    let steps = dry.stdout.matches("-- migration ").count();
    assert!(steps >= 7, "{dry}");

    let run = run_muster(&["migrate", "--data-dir", &data_dir]);
    assert!(run.status.success(), "{run}");
    assert_eq!(
        run.stdout.matches("applied migration ").count(),
        steps,
        "{run}"
    );

    let again = run_muster(&["migrate", "--data-dir", &data_dir, "--dry-run"]);
    assert!(again.status.success(), "{again}");
    assert!(again.stdout.contains("up to date"), "{again}");
}
