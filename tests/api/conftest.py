"""Fixtures for the service: a TestClient and a live server, each on a private store copy."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gridcore import app as gapp
from tests.conftest import BACKENDS, sample_copy_on

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=BACKENDS)
def store_copy(store_copy, request):
    """A private copy of the sample store: every API test runs on SQLite and on PostGIS."""
    yield from sample_copy_on(request.param, request, store_copy)


@pytest.fixture
def client(store_copy):
    """A TestClient on a private copy of the sample store."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    app = create_app(Settings(db=store_copy.url, warm_up=False))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_token(store_copy):
    """Create a bearer token in the test store: ``make_token("chief", "c1")``."""

    def make(role: str, name: str = "tester", subject: str | None = None) -> dict:
        token = gapp.issue_token(store_copy, role=role, name=name, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``gridcore serve`` in a subprocess on a real port, killable like production."""

    def __init__(self, db: str | Path, *, workers: int = 1, env: dict | None = None) -> None:
        self.db = db
        self.workers = workers
        self.env = env or {}  # more GRIDCORE_* settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        env = dict(os.environ, GRIDCORE_DB=str(self.db), PYTHONPATH=str(ROOT), **self.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridcore.cli", "serve", "--port", str(self.port),
             "--log-level", "warning", "--workers", str(self.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
            start_new_session=True)  # its own process group: workers die with it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not come up")

    def kill(self) -> None:
        """SIGKILL to the server and its workers: no shutdown hooks (what a crash does)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def live_server(store_copy):
    """A running ``gridcore serve`` on a private store copy."""
    server = LiveServer(store_copy.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Selenium (chromedriver from Debian too)."""
    import shutil
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        raise RuntimeError("install Debian's chromium and chromium-driver (see .ci/run)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="gc-chrome-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,900",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def js_errors(driver) -> list[str]:
    """Severe browser log entries that are not offline tile or favicon loads."""
    out = []
    for entry in driver.get_log("browser"):
        msg = entry.get("message", "")
        if entry.get("level") != "SEVERE":
            continue
        if "Failed to load resource" in msg or "favicon" in msg or "net::ERR_" in msg:
            continue  # tiles cannot load offline: images, not scripts
        out.append(msg)
    return out
