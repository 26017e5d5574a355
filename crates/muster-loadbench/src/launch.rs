//! Starting `muster serve` on a fresh database, and reading a process's
//! memory figures from `/proc`.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long `muster serve` may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `muster serve` child on a temporary data directory; killed (and the
/// directory removed) when dropped.
#[derive(Debug)]
pub struct MusterServer {
    /// The child process.
    child: Child,
    /// Data directory (removed on drop).
    data_dir: tempfile::TempDir,
    /// SCIM base URL, e.g. `http://127.0.0.1:41234/scim/v2`.
    pub base_url: String,
    /// Admin API base URL, e.g. `http://127.0.0.1:41234/admin/v1`.
    pub admin_url: String,
    /// The bearer token minted for the run, with the `admin` scope (which
    /// implies `scim.read` and `scim.write`), so the same token declares the
    /// custom extension and runs the SCIM phases; it has no rate limit.
    pub token: String,
}

impl MusterServer {
    /// Mints a token with `muster token create` and starts `muster serve`
    /// on a free loopback port, then waits until `/healthz` answers.
    pub async fn start(muster_bin: &Path) -> Result<Self> {
        if !muster_bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release --bin muster`, \
                 pass --muster-bin, or measure a running server with --target-url",
                muster_bin.display()
            );
        }
        let data_dir = tempfile::Builder::new()
            .prefix("muster-loadbench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let output = Command::new(muster_bin)
            .args(["token", "create", "--data-dir"])
            .arg(data_dir.path())
            // Without a rate limit: the server's default (1000 requests a
            // second per client) would cap what the benchmark measures.
            .args(["--name", "bench", "--scope", "admin", "--rate-limit", "off"])
            .env("MUSTER_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} token create", muster_bin.display()))?;
        if !output.status.success() {
            bail!(
                "`muster token create` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if token.is_empty() || token.contains(char::is_whitespace) {
            bail!("`muster token create` printed {token:?}, expected the token alone");
        }
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log_path = data_dir.path().join("serve.log");
        let log = File::create(&log_path).context("creating the server log file")?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let child = Command::new(muster_bin)
            .args(["serve", "--data-dir"])
            .arg(data_dir.path())
            .args(["--listen", &listen])
            .env("MUSTER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("starting {} serve", muster_bin.display()))?;
        let mut server = MusterServer {
            child,
            data_dir,
            base_url: format!("http://{listen}/scim/v2"),
            admin_url: format!("http://{listen}/admin/v1"),
            token,
        };
        server
            .wait_healthy(&format!("http://{listen}/healthz"), &log_path)
            .await?;
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory (for the report).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// Polls `health_url` until it answers 200, the child exits, or
    /// [`START_TIMEOUT`] passes.
    async fn wait_healthy(&mut self, health_url: &str, log_path: &Path) -> Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the health-check client")?;
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking the server process")?
            {
                bail!(
                    "`muster serve` exited with {status} before answering /healthz; its log:\n{}",
                    read_tail(log_path)
                );
            }
            if let Ok(response) = client.get(health_url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "`muster serve` did not answer {health_url} within {}s; its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    read_tail(log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MusterServer {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, for error messages.
fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    lines.get(start..).unwrap_or_default().join("\n")
}

/// A loopback TCP port free right now.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Current resident set size (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` when the process or the
/// fields cannot be read (not Linux, process gone, no permission).
pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

/// Extracts `VmRSS` and `VmHWM` (in KiB) from the text of a
/// `/proc/<pid>/status` file.
fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on
/// every mainstream Linux build).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time used so far (user + system, all threads) by `pid`, in
/// seconds; `None` when `/proc/<pid>/stat` cannot be read.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SEC)
}

/// `utime + stime` from the text of a `/proc/<pid>/stat` file (fields 14
/// and 15; the command name, field 2, may hold spaces and parentheses, so
/// counting starts after its last `)`).
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tmuster\nVmPeak:\t 9000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss_kib: 40960,
                peak_kib: 51200
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn reads_own_memory() {
        let memory = memory_of(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }

    #[test]
    fn parses_proc_stat() {
        let text = "1234 (a) b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0";
        assert_eq!(parse_stat_ticks(text), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
