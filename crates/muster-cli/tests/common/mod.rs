//! Shared support for the `muster` binary tests: running the CLI, starting
//! `muster serve` as a real child process on `127.0.0.1:0`, a small HTTP
//! client, and the ledger of acknowledged writes the durability tests check.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// How long a server may take to print its URL and answer `/healthz`.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `muster` binary with an environment that cannot leak in from the
/// caller: no `MUSTER_*` settings, no backtraces in error output.
pub fn muster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_muster"));
    for variable in [
        "MUSTER_LISTEN",
        "MUSTER_DATA_DIR",
        "MUSTER_DATABASE_URL",
        "MUSTER_SECRETS_KEY",
        "MUSTER_LOG",
        "MUSTER_READERS",
        "MUSTER_TENANT",
        "MUSTER_CONFIG",
        "MUSTER_LOG_FORMAT",
        "MUSTER_OTLP_ENDPOINT",
        "MUSTER_TLS_CERT",
        "MUSTER_TLS_KEY",
        "NO_COLOR",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
    ] {
        command.env_remove(variable);
    }
    command.stdin(Stdio::null());
    command
}

/// What a finished CLI command printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a prepared command to completion.
pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run the muster binary");
    Output {
        status: output.status,
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `muster ARGS` to completion.
pub fn run_muster(args: &[&str]) -> Output {
    run(muster().args(args))
}

/// `muster token create --data-dir DIR --name NAME [--scope S]...`, which
/// must succeed; returns the secret it printed.
pub fn create_token(data_dir: &Path, name: &str, scopes: &[&str]) -> String {
    let mut command = muster();
    command
        .args(["token", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--name", name]);
    for scope in scopes {
        command.args(["--scope", scope]);
    }
    let output = run(&mut command);
    assert!(output.status.success(), "token create failed: {output}");
    let secret = output
        .stdout
        .strip_suffix('\n')
        .expect("the token ends with a newline");
    assert!(
        !secret.is_empty() && !secret.contains(char::is_whitespace),
        "stdout must be the token alone on one line: {:?}",
        output.stdout
    );
    secret.to_owned()
}

/// A running `muster serve` child process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// `http://127.0.0.1:PORT/scim/v2`, as printed by the server.
    pub base_url: String,
    /// The first line the server printed on standard output.
    pub first_line: String,
    stdout: mpsc::Receiver<String>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// `muster serve --listen 127.0.0.1:0 --data-dir DIR`.
    pub fn start(data_dir: &Path) -> Server {
        Server::spawn(|command| {
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(data_dir);
        })
    }

    /// Starts `muster` with arguments and environment set by `configure`,
    /// waits for it to print its base URL and to answer `/healthz`.
    pub fn spawn(configure: impl FnOnce(&mut Command)) -> Server {
        let log_dir = tempfile::tempdir().expect("log directory");
        let log = log_dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = muster();
        configure(&mut command);
        command.stdout(Stdio::piped()).stderr(log_file);
        let mut child = command.spawn().expect("spawn muster serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_in, lines_out) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_in.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let first_line = match lines_out.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "muster serve printed nothing on stdout ({error}); exit: {status:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let base_url = first_line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the first stdout line: {first_line:?}"))
            .to_owned();
        let root = base_url
            .strip_suffix("/scim/v2")
            .unwrap_or_else(|| panic!("the printed URL is not a /scim/v2 base URL: {base_url}"))
            .to_owned();
        let server = Server {
            child,
            root,
            base_url,
            first_line,
            stdout: lines_out,
            log,
            _log_dir: log_dir,
        };
        server.wait_until_healthy(started + START_DEADLINE);
        server
    }

    /// Polls `GET /healthz` (plain HTTP/1.1 over a socket, so that this works
    /// outside an async runtime) until it answers 200.
    fn wait_until_healthy(&self, deadline: Instant) {
        let address = self
            .root
            .strip_prefix("http://")
            .expect("http root")
            .to_owned();
        loop {
            let answer = TcpStream::connect(&address).and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(
                    format!(
                        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )?;
                let mut response = String::new();
                stream.read_to_string(&mut response)?;
                Ok(response)
            });
            if answer.is_ok_and(|response| response.starts_with("HTTP/1.1 200")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "muster serve at {address} did not answer /healthz in time; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port the server listens on, from the printed URL.
    pub fn port(&self) -> u16 {
        self.root
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.root))
    }

    /// A client for the SCIM API with `token` (or none).
    pub fn api(&self, token: Option<&str>) -> Api {
        Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            root: self.root.clone(),
            base_url: self.base_url.clone(),
            token: token.map(str::to_owned),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to standard error (its log) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines printed on standard output after the first one, so far.
    pub fn more_stdout(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// SIGKILL: the process dies at once, wherever it is.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// SIGTERM, then waits for the exit; fails the test if the server is
    /// still running after `deadline`.
    pub fn terminate(mut self, deadline: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM failed: {sent}");
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "muster serve still running {deadline:?} after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A response: status, headers and the JSON body (`Value::Null` if none or
/// not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A SCIM client bound to one server and one token.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub root: String,
    pub base_url: String,
    pub token: Option<String>,
}

impl Api {
    /// Sends a request to `base_url + path`; transport errors (such as the
    /// server being killed mid-request) are returned, not raised.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `send`, failing the test on a transport error.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let description = format!("{method} {path}");
        self.send(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{description}: {error}"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `GET root + path` without any token (health checks).
    pub async fn get_root(&self, path: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.root))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: Value::Null,
        }
    }

    /// Every resource of `resource_type` (`Users`, `Groups`), page by page.
    pub async fn list_all(&self, resource_type: &str) -> Vec<Value> {
        let mut resources: Vec<Value> = Vec::new();
        loop {
            let page = self
                .get(&format!(
                    "/{resource_type}?startIndex={}&count=1000",
                    resources.len() + 1
                ))
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let total = page.body["totalResults"].as_u64().expect("totalResults") as usize;
            let items = page.body["Resources"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let empty = items.is_empty();
            resources.extend(items);
            if resources.len() >= total {
                assert_eq!(resources.len(), total, "paging returned too many resources");
                return resources;
            }
            assert!(!empty, "page ended before totalResults {total}");
        }
    }
}

/// A user whose three "step" attributes (`name.givenName`, `title`,
/// `name.familyName`) all carry `step`; a PATCH moves all three together.
pub fn user_body(user_name: &str, step: u64) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "active": true,
        "name": {"givenName": format!("g{step}"), "familyName": format!("f{step}")},
        "title": format!("t{step}"),
        "emails": [{"value": user_name, "type": "work", "primary": true}],
    })
}

/// A PatchOp that sets the three step attributes to `step` in one request.
pub fn patch_body(step: u64) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "name.givenName", "value": format!("g{step}")},
        {"op": "replace", "path": "title", "value": format!("t{step}")},
        {"op": "replace", "path": "name.familyName", "value": format!("f{step}")},
    ]})
}

/// The step a stored user is at; fails the test if its three step
/// attributes disagree (a half-applied write).
pub fn step_of(user: &Value) -> u64 {
    let number = |value: &Value, prefix: char| -> Option<u64> {
        value.as_str()?.strip_prefix(prefix)?.parse().ok()
    };
    let given = number(&user["name"]["givenName"], 'g');
    let title = number(&user["title"], 't');
    let family = number(&user["name"]["familyName"], 'f');
    match (given, title, family) {
        (Some(g), Some(t), Some(f)) if g == t && t == f => g,
        _ => panic!("half-applied or damaged user: {user}"),
    }
}

/// `meta.version` (`W/"N"`) as a number.
pub fn version_of(resource: &Value) -> u64 {
    parse_etag(resource["meta"]["version"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("no W/\"N\" meta.version in {resource}"))
}

/// `W/"N"` as N.
pub fn parse_etag(etag: &str) -> Option<u64> {
    etag.strip_prefix("W/\"")?.strip_suffix('"')?.parse().ok()
}

/// The last acknowledged state of one user.
#[derive(Debug, Clone)]
pub struct Ack {
    pub user_name: String,
    pub step: u64,
    pub version: u64,
}

/// Every write the server acknowledged with a 2xx, by resource id.
#[derive(Default)]
pub struct Ledger {
    acks: Mutex<HashMap<String, Ack>>,
    count: AtomicUsize,
}

impl Ledger {
    /// Records an acknowledged write of user `id`.
    pub fn record(&self, id: &str, ack: Ack) {
        self.count.fetch_add(1, Ordering::SeqCst);
        let mut acks = self.acks.lock().expect("ledger lock");
        let newer = match acks.get(id) {
            Some(known) => known.step <= ack.step,
            None => true,
        };
        if newer {
            acks.insert(id.to_owned(), ack);
        }
    }

    /// How many acknowledgements were recorded (all users, all steps).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// How many users have an acknowledged write.
    pub fn users(&self) -> usize {
        self.acks.lock().expect("ledger lock").len()
    }

    /// Checks the users read back after a restart: no user is half-applied,
    /// userNames are unique, every acknowledged user exists with its
    /// acknowledged step and version or the one write after it (which may
    /// have committed without its response reaching the client).
    pub fn verify(&self, users: &[Value]) {
        let mut by_id = HashMap::new();
        let mut names = HashSet::new();
        for user in users {
            step_of(user);
            let id = user["id"].as_str().expect("user id");
            assert!(by_id.insert(id, user).is_none(), "duplicate id {id}");
            let name = user["userName"].as_str().expect("userName");
            assert!(
                names.insert(name.to_lowercase()),
                "duplicate userName {name}"
            );
        }
        let acks = self.acks.lock().expect("ledger lock");
        for (id, ack) in acks.iter() {
            let user = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged user {id} ({ack:?}) is lost"));
            assert_eq!(user["userName"], ack.user_name.as_str(), "{user}");
            let step = step_of(user);
            let version = version_of(user);
            assert!(
                step == ack.step || step == ack.step + 1,
                "user {id} is at step {step}, acknowledged {ack:?}: {user}"
            );
            assert!(
                version >= ack.version,
                "user {id} went back to version {version}, acknowledged {ack:?}"
            );
            if step == ack.step + 1 {
                assert!(version > ack.version, "a newer step kept the old version");
            }
        }
    }
}

/// One writer of the load: POSTs users named `PREFIX-nN@durable.test`, then
/// PATCHes each twice, recording every 2xx in `ledger`. Returns the number
/// of users it created once a request fails at the transport level (the
/// server was killed or stopped); a non-2xx answer is an error.
pub async fn write_load(
    api: Api,
    ledger: std::sync::Arc<Ledger>,
    prefix: String,
) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0.. {
        if Instant::now() > deadline {
            return Err(format!("{prefix}: load ran past its deadline"));
        }
        let user_name = format!("{prefix}-n{n}@durable.test");
        let Ok(reply) = api
            .send(Method::POST, "/Users", Some(&user_body(&user_name, 0)))
            .await
        else {
            return Ok(n);
        };
        if reply.status != StatusCode::CREATED {
            return Err(format!("POST {user_name}: {} {}", reply.status, reply.body));
        }
        let id = reply.body["id"].as_str().ok_or("no id")?.to_owned();
        ledger.record(
            &id,
            Ack {
                user_name: user_name.clone(),
                step: 0,
                version: version_of(&reply.body),
            },
        );
        for step in 1..=2 {
            let Ok(reply) = api
                .send(
                    Method::PATCH,
                    &format!("/Users/{id}"),
                    Some(&patch_body(step)),
                )
                .await
            else {
                return Ok(n + 1);
            };
            if reply.status != StatusCode::OK {
                return Err(format!(
                    "PATCH {user_name}: {} {}",
                    reply.status, reply.body
                ));
            }
            if step_of(&reply.body) != step {
                return Err(format!("PATCH answered the wrong state: {}", reply.body));
            }
            ledger.record(
                &id,
                Ack {
                    user_name: user_name.clone(),
                    step,
                    version: version_of(&reply.body),
                },
            );
        }
    }
    Ok(0)
}

/// Waits (asynchronously) until `ready` holds, failing the test after
/// `deadline`.
pub async fn wait_for(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
