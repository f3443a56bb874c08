"""A report answered 2xx survives kill -9 of the server (real HTTP, real SQLite file)."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDCORE_DB": str(db), "GRIDCORE_BUILD_IF_EMPTY": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.api._cases_app:make_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


@pytest.fixture
def db(city_db, tmp_path):
    from gridcore.store import SQLiteStore

    dst = tmp_path / "durable.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(dst)
    token = store.create_token(role="supervisor", name="王监督员")
    store.close()
    return dst, token


def test_report_survives_kill_9(db):
    path, token = db
    port = _free_port()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "durable-1"}
    body = {"lon": 116.3755, "lat": 39.91105, "crs": "wgs84", "event_class": "0506",
            "description": "kill -9 之前的上报"}
    proc = _start(path, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/cases", json=body, headers=headers,
                       timeout=30)
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    proc = _start(path, port)
    try:
        got = httpx.get(f"http://127.0.0.1:{port}/v1/cases/{case_id}", headers=headers,
                        timeout=30)
        assert got.status_code == 200, got.text
        assert got.json()["description"] == "kill -9 之前的上报"
        # the idempotency key survived too: the retry finds the same case
        again = httpx.post(f"http://127.0.0.1:{port}/v1/cases", json=body, headers=headers,
                           timeout=30)
        assert again.status_code == 201 and again.json()["id"] == case_id
    finally:
        proc.terminate()
        proc.wait(timeout=30)
