//! The packaging files hold what they promise: the systemd unit runs
//! `muster serve --config FILE` (the arguments this binary accepts: a
//! server starts with them) under a dedicated user with the hardening
//! options, and the Dockerfile's runtime image is non-root, keeps its data
//! in a volume and checks its health. (`scripts/docker-smoke.sh` builds and
//! runs the image where a Docker engine is available.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap, expect or panic is a failed test"
)]

mod common;

use std::path::PathBuf;

use common::Server;

fn repository_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The values of `key=` lines of a unit file.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_systemd_unit_runs_muster_serve_hardened() {
    let unit = repository_file("packaging/muster.service");
    for (key, value) in [
        ("User", "muster"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "muster"),
        ("UMask", "0077"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key} in the unit");
    }
    let exec = unit_values(&unit, "ExecStart");
    let [exec] = exec.as_slice() else {
        panic!("one ExecStart: {exec:?}")
    };
    let arguments: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(arguments[..2], ["serve", "--config"], "{exec}");

    // The same command line, with a configuration of the test's own, starts
    // a server.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muster.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = {:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let server = Server::spawn(|command| {
        command.args(&arguments[..2]).arg(&config);
    });
    assert!(server.base_url.ends_with("/scim/v2"), "{}", server.base_url);
}

#[test]
fn the_docker_image_runs_as_a_user_with_a_data_volume_and_a_health_check() {
    let dockerfile = repository_file("Dockerfile");
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage Dockerfile");
    for expected in [
        "VOLUME [\"/data\"]",
        "HEALTHCHECK",
        "/healthz",
        "ENTRYPOINT [\"muster\"]",
    ] {
        assert!(
            runtime.contains(expected),
            "{expected} in the runtime stage"
        );
    }
    let user = runtime
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "USER {user}"
    );
}
