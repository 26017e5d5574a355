//! The configuration file of `muster serve` (`--config`, `MUSTER_CONFIG`):
//! precedence flags > environment > file > defaults on a real server,
//! `muster config check` (effective settings, sources, masked secrets),
//! refusals naming the file and key ("did you mean"), the first-run
//! guidance of a server without credentials, and the data directory a
//! serving process holds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on unexpected output"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{muster, run, Server};
use reqwest::StatusCode;
use serde_json::Value;

/// Writes `text` as `muster.toml` in `dir`.
fn config_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("muster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `Data directory: ...` line a server printed.
fn printed_data_dir(server: &Server) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    loop {
        lines.extend(server.more_stdout());
        if let Some(line) = lines
            .iter()
            .find(|line| line.starts_with("Data directory: "))
        {
            return line.trim_start_matches("Data directory: ").to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no data directory line in {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env, from_flag) = (
        dir.path().join("file-data"),
        dir.path().join("env-data"),
        dir.path().join("flag-data"),
    );
    let file = config_file(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = {:?}\nlog-format = \"json\"\nreaders = 3\n",
            from_file.to_str().unwrap()
        ),
    );

    // The file alone, named by MUSTER_CONFIG: its listen address, data
    // directory and log format are used.
    let server = Server::spawn(|command| {
        command.arg("serve").env("MUSTER_CONFIG", &file);
    });
    assert_eq!(printed_data_dir(&server), from_file.to_str().unwrap());
    let status = server.api(None).get_root("/healthz").await.status;
    assert_eq!(status, StatusCode::OK);
    let log = server.log();
    assert!(
        !log.is_empty()
            && log
                .lines()
                .all(|line| serde_json::from_str::<Value>(line).is_ok()),
        "log-format = \"json\" from the file: {log}"
    );
    drop(server);

    // The environment over the file.
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--config"])
            .arg(&file)
            .env("MUSTER_DATA_DIR", &from_env);
    });
    assert_eq!(printed_data_dir(&server), from_env.to_str().unwrap());
    drop(server);

    // A flag over both.
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--config"])
            .arg(&file)
            .arg("--data-dir")
            .arg(&from_flag)
            .args(["--log-format", "text"])
            .env("MUSTER_DATA_DIR", &from_env);
    });
    assert_eq!(printed_data_dir(&server), from_flag.to_str().unwrap());
    assert!(
        serde_json::from_str::<Value>(server.log().lines().next().unwrap_or("{}")).is_err(),
        "--log-format text wins over the file: {}",
        server.log()
    );
}

#[test]
fn config_check_prints_the_effective_settings_with_their_sources_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "listen = \"0.0.0.0:8443\"\n\
         database = \"postgres://muster:hunter2-secret@db.example.com/muster\"\n\
         readers = 4\n\
         trust-proxy-headers = true\n\
         otlp-endpoint = \"http://collector:s3cret-token@otel.example.com:4318\"\n",
    );
    let output = run(muster()
        .args(["config", "check"])
        .arg(&file)
        .env("MUSTER_REQUEST_TIMEOUT", "30s"));
    assert!(output.status.success(), "{output}");
    let settings = &output.stdout;
    for expected in [
        "listen = \"0.0.0.0:8443\"",
        "# from the file",
        "readers = 4",
        "trust-proxy-headers = true",
        "database = \"postgres://muster:****@db.example.com/muster\"",
        "request-timeout = \"30s\"",
        "# from MUSTER_REQUEST_TIMEOUT",
        "access-token-ttl = \"1h\"",
        "# default",
    ] {
        assert!(settings.contains(expected), "{expected}: {output}");
    }
    assert!(
        !settings.contains("hunter2-secret") && !settings.contains("s3cret-token"),
        "secrets must be masked: {output}"
    );
    // What it prints is itself a configuration file that checks.
    let printed = config_file(dir.path(), settings);
    let again = run(muster().args(["config", "check"]).arg(&printed));
    assert!(again.status.success(), "{again}");
}

#[test]
fn config_check_masks_database_passwords_in_every_spelling() {
    let dir = tempfile::tempdir().unwrap();
    for database in [
        "postgres://db.example.com/muster?password=hunter2-a&sslmode=require",
        "postgres://db/m?user=x&Password=hunter2-b",
        "postgres://db/m?sslpassword=hunter2-c",
        "host=db password='hunter2 d' dbname=m",
        "host=db password = hunter2-e dbname=m",
    ] {
        let file = config_file(dir.path(), &format!("database = {database:?}\n"));
        let output = run(muster().args(["config", "check"]).arg(&file));
        assert!(output.status.success(), "{output}");
        assert!(output.stdout.contains("****"), "{database}: {output}");
        assert!(!output.stdout.contains("hunter2"), "{database}: {output}");
    }
}

#[test]
fn bad_files_are_refused_naming_the_file_the_key_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str, expected: &[&str]| {
        let file = config_file(dir.path(), text);
        for args in [
            vec!["config", "check", file.to_str().unwrap()],
            vec!["serve", "--config", file.to_str().unwrap()],
        ] {
            let output = run(muster().args(&args));
            assert!(!output.status.success(), "{text}: {output}");
            assert!(output.stdout.is_empty(), "{text}: {output}");
            for expected in expected {
                assert!(output.stderr.contains(expected), "{expected}: {output}");
            }
            assert!(
                output.stderr.contains(file.to_str().unwrap()),
                "the file is named: {output}"
            );
        }
    };
    check(
        "lisen = \"127.0.0.1:9000\"\n",
        &["unknown key 'lisen'", "did you mean 'listen'?"],
    );
    check(
        "data_dir = \"/tmp/x\"\n",
        &["unknown key 'data_dir'", "did you mean 'data-dir'?"],
    );
    check("listen = \"nowhere\"\n", &["'listen'", "socket address"]);
    check("readers = 0\n", &["'readers' = 0"]);
    check(
        "log-format = \"xml\"\n",
        &["'log-format'", "expected one of text, json"],
    );
    check(
        "public-url = \"muster.example.com\"\n",
        &["'public-url'", "not an http:// or https:// URL"],
    );
    check(
        "readers = [1, 2]\n",
        &["'readers' must be a string, a whole number or true/false"],
    );
    check("listen = \n", &["not valid TOML"]);

    // A setting that needs another is refused whichever source gave it.
    let file = config_file(dir.path(), "tls-cert = \"/nonexistent/cert.pem\"\n");
    let output = run(muster().args(["config", "check"]).arg(&file));
    assert!(!output.status.success(), "{output}");
    assert!(
        output.stderr.contains("--tls-cert needs --tls-key"),
        "{output}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let output = run(muster().args(["serve", "--config", "/nonexistent/muster.toml"]));
    assert!(!output.status.success(), "{output}");
    assert!(
        output
            .stderr
            .contains("reading the configuration file /nonexistent/muster.toml"),
        "{output}"
    );
}

#[tokio::test]
async fn a_first_run_says_how_to_make_a_token_and_where_the_console_and_scim_are() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh data");
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data);
    });
    let log = server.log();
    let quoted = format!("'{}'", data.to_str().unwrap());
    let command =
        format!("muster token create --data-dir {quoted} --name entra --scope scim.write");
    assert!(log.contains(&command), "{command}: {log}");
    assert!(
        log.contains(&format!("admin console: {}/admin", server.root)),
        "{log}"
    );
    assert!(log.contains(&server.base_url), "{log}");
    drop(server);

    // The printed command works as printed, through a shell.
    let output = run(std::process::Command::new("sh").arg("-c").arg(format!(
        "'{}' {}",
        env!("CARGO_BIN_EXE_muster"),
        command.trim_start_matches("muster ")
    )));
    assert!(output.status.success(), "{output}");
    assert!(output.stdout.starts_with("mst_"), "{output}");

    // With a credential, the guidance is not repeated.
    let server = Server::spawn(|command| {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data);
    });
    assert!(!server.log().contains("no token"), "{}", server.log());
}

#[test]
fn a_served_data_directory_is_refused_to_a_second_server_and_to_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let backup = dir.path().join("backup.db");
    let output = run(muster()
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg(&backup));
    assert!(output.status.success(), "{output}");

    let second = run(muster()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data));
    assert!(!second.status.success(), "{second}");
    assert!(second.stderr.contains("is in use"), "{second}");
    let restore = run(muster()
        .arg("restore")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&data));
    assert!(!restore.status.success(), "{restore}");
    assert!(restore.stderr.contains("live database"), "{restore}");

    // Once the server stops, the lock is gone with it.
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let restore = run(muster()
        .arg("restore")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&data));
    assert!(restore.status.success(), "{restore}");
}
