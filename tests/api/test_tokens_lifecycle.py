"""A token's life on a running 2-worker server: created and revoked with the CLI, as its
user does it, while the server runs; revoked answers 401 on the very next request, on
every worker. Runs on SQLite and on PostgreSQL/PostGIS (``store_copy``)."""

import os
import subprocess
import sys

import httpx

from tests.api.conftest import ROOT, LiveServer


def gridcore(db: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GRIDCORE_DB=str(db), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gridcore.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _get(server: LiveServer, token: str) -> httpx.Response:
    # a new connection each time, so the kernel spreads the requests over the workers
    return httpx.get(server.url + "/v1/departments", timeout=60,
                     headers={"Authorization": f"Bearer {token}", "Connection": "close"})


def test_a_revoked_token_answers_401_at_once_on_every_worker(store_copy):
    server = LiveServer(store_copy.url, workers=2)
    server.start()
    try:
        made = gridcore(store_copy.url, "token", "create", "--role", "supervisor",
                        "--name", "巡查员", "--expires", "30d")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        pids = set()
        for _ in range(30):
            r = _get(server, token)
            assert r.status_code == 200, r.text
            pids.add(httpx.get(server.url + "/health", timeout=60,
                               headers={"Connection": "close"}).json()["pid"])
        assert len(pids) == 2, "two worker processes answer"

        listed = gridcore(store_copy.url, "token", "list")
        assert listed.returncode == 0, listed.stderr
        (row,) = [line for line in listed.stdout.splitlines() if "巡查员" in line]
        token_id = row.split()[0]
        assert token not in listed.stdout
        # id role name subject, created, expires and last used (date and time each), and
        # revoked: not yet
        assert len(row.split()) == 4 + 3 * 2 + 1 and row.split()[-1] == "-"

        revoked = gridcore(store_copy.url, "token", "revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        first = _get(server, token)
        assert first.status_code == 401, first.text
        assert first.headers["content-type"].startswith("application/problem+json")
        assert all(_get(server, token).status_code == 401 for _ in range(20))
    finally:
        server.stop()
