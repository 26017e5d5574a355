"""Fixtures of the real-browser suite: real `muster serve` processes and Debian's Chromium.

Nothing is built here: the suite runs `target/debug/muster` (or `$MUSTER_BIN`), which
`cargo build --bin muster` made. Each server gets a fresh data directory and a free port;
Chromium is `/usr/bin/chromium` (or `$MUSTER_CHROMIUM`), never a browser Playwright
downloads.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
MUSTER = Path(os.environ.get("MUSTER_BIN", REPO / "target" / "debug" / "muster"))
CHROMIUM = os.environ.get("MUSTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("MUSTER_SCREENSHOTS", REPO / "docs" / "screenshots"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "perf: pages at 100,000 users (set MUSTER_BROWSER_PERF=1 to run)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MUSTER_BROWSER_PERF") == "1":
        return
    skip = pytest.mark.skip(reason="the 100,000-user run needs MUSTER_BROWSER_PERF=1")
    for item in items:
        if "perf" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def muster(*args: str) -> str:
    """Runs a `muster` command and returns its standard output, stripped."""
    done = subprocess.run(
        [str(MUSTER), *args], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"muster {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Server:
    """A running `muster serve` on its own data directory."""

    data_dir: Path
    port: int
    process: subprocess.Popen
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, name: str, *scopes: str) -> str:
        """A token created with `muster token create` (cached by name)."""
        if name not in self.tokens:
            scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
            self.tokens[name] = muster(
                "token", "create", "--data-dir", str(self.data_dir), "--name", name, *scope_args
            )
        return self.tokens[name]

    def call(self, method: str, path: str, token: str, body: object | None = None,
             content_type: str = "application/scim+json") -> tuple[int, object]:
        """One HTTP request with a bearer token; returns the status and the JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, (json.loads(raw) if raw.strip() else None)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(data_dir: Path) -> Server:
    """Starts `muster serve` on `data_dir` and waits for `/healthz`."""
    port = free_port()
    log = data_dir.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MUSTER), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    server = Server(data_dir=data_dir, port=port, process=process, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"muster serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2):
                return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"muster serve did not answer in 60 s: {log.read_text()}")


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="muster-browser-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _server(workdir: Path, name: str):
    data_dir = workdir / name
    data_dir.mkdir()
    # Tokens are made before the server starts, as an operator would.
    server = start_server(data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def downstream(workdir: Path):
    """The second Muster: the SCIM target the console's Muster delivers to."""
    yield from _server(workdir, "downstream")


@pytest.fixture(scope="session")
def console_server(workdir: Path):
    """The Muster whose console is under test."""
    yield from _server(workdir, "console")


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Page, server: Server, token: str) -> None:
    """Signs in through the sign-in form with a bearer token holding `admin`."""
    page.goto(server.url + "/admin/sign-in")
    page.fill("#token", token)
    page.click("#sign-in-with-token")
    page.wait_for_selector("#sign-out")


def screenshot(page: Page, name: str) -> None:
    """Saves the page, its first 1,600 px at most, as docs/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = min(page.evaluate("document.documentElement.scrollHeight"), 1600)
    width = page.viewport_size["width"] if page.viewport_size else 1280
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})
