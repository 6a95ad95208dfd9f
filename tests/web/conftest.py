"""Fixtures for the browser tests: the real server in a subprocess, Debian's headless Chromium via Playwright.

The server is started exactly as an operator would (``metropilot run``) in a temporary directory, on a
free port, with a small simulated metropolis (``METROPILOT_SEED_SCALE=0.2``) to keep start-up quick.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",  # WebGL for MapLibre through SwiftShader
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_PASSWORD = "browser-tests-admin-password"
SECRET_KEY = "browser-tests-signing-key-long-enough-for-hs256"
SEED_SCALE = "0.2"
START_TIMEOUT_S = 120.0


@dataclass
class LiveServer:
    """The running platform, with a small API client for the tests' own expectations."""

    base_url: str
    admin_password: str
    log_path: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str = "admin", password: str | None = None) -> str:
        if username not in self._tokens:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                data={"grant_type": "password", "username": username, "password": password or self.admin_password},
                timeout=30,
            )
            response.raise_for_status()
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    def get(self, path: str, username: str = "admin", **params: Any) -> Any:
        response = httpx.get(
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token(username)}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(
            f"{self.base_url}{path}", json=body, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metropilot_command() -> list[str]:
    """The console script of the environment running the tests (the project's venv, on CI too)."""
    beside = Path(sys.executable).with_name("metropilot")
    if beside.exists():
        return [str(beside), "run"]
    found = shutil.which("metropilot")
    if found:
        return [found, "run"]
    return [sys.executable, "-c", "from metropilot.cli import app; app()", "run"]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server output)"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("control-room-server")
    port = _free_port()
    env = {
        **os.environ,
        "METROPILOT_HOST": "127.0.0.1",
        "METROPILOT_PORT": str(port),
        "METROPILOT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "METROPILOT_SECRET_KEY": SECRET_KEY,
        "METROPILOT_SEED_SCALE": SEED_SCALE,
        "METROPILOT_SEED_ON_START": "true",
        "METROPILOT_DATABASE_URL": "",  # the embedded SQLite under ./var of the temporary directory
        "METROPILOT_VAR_DIR": str(workdir / "var"),
    }
    base_url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _metropilot_command(), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"metropilot run exited with code {process.returncode}:\n{_tail(log_path)}")
                try:
                    if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"metropilot run not ready after {START_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")
                time.sleep(0.25)
            yield LiveServer(base_url=base_url, admin_password=ADMIN_PASSWORD, log_path=log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian chromium is not installed (/usr/bin/chromium): install it with "
            "`apt-get install chromium` (or `make browser`) to run the control-room browser tests"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots land in test-artifacts/ at the project root (git-ignored) for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class BrowserPage:
    page: Page
    context: BrowserContext
    js_errors: list[str]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser_page(browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    """A fresh browsing context (empty sessionStorage) on a desktop control-room screen, in French.

    When the test fails, the page's screenshot and console log are saved to test-artifacts/.
    """
    context = browser.new_context(
        base_url=live_server.base_url,
        viewport={"width": 1440, "height": 900},
        locale="fr-FR",
        timezone_id="Europe/Paris",
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))

    def on_console(message: Any) -> None:
        console.append(f"[{message.type}] {message.text}")
        # HTTP errors the page handles (a wrong password, a route the test breaks) are logged by
        # Chromium as "Failed to load resource": expected. Anything else (CSP violations, bugs) is not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    try:
        yield BrowserPage(page=page, context=context, js_errors=errors)
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = f"failed-{request.node.name}"
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            (ARTIFACTS / f"{name}.log").write_text("\n".join([*errors, *console]) + "\n", encoding="utf-8")
    finally:
        context.close()
