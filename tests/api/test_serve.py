"""``gridcore serve``: N uvicorn workers on one store, started from an import string.

That ``gridcore`` imports nothing from ``api`` is checked on the import graph in
``tests/test_layers.py``; durability under two workers in ``test_workers.py``.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.api.conftest import LiveServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_answer_and_all_stop_cleanly_on_sigterm(store_copy):
    server = LiveServer(store_copy.url, workers=2, env={"GRIDCORE_WARM_UP": "false"})
    server.start()
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            # a new connection each time: the kernel hands each to one worker's accept
            body = httpx.get(server.url + "/health", timeout=10).json()
            assert body["status"] == "ok" and body["cells"] > 0
            pids.add(body["pid"])
        assert len(pids) == 2, f"only worker(s) {pids} answered"
        assert server.proc.pid not in pids  # the parent supervises, the workers serve
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        stderr = server.proc.stderr.read().decode()
        assert "Traceback" not in stderr, stderr[-3000:]
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "a worker outlived the server"
    finally:
        server.stop()


def test_workers_must_be_a_positive_number(capsys):
    from gridcore.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--workers", "0"])
    assert exit_.value.code == 2
    assert "at least 1" in capsys.readouterr().err


def test_serve_builds_an_empty_store_before_the_workers_start(tmp_path, monkeypatch):
    """The parent builds; the workers find the city (none of them builds it again)."""
    import gridcore.cli as cli

    monkeypatch.setenv("GRIDCORE_DB", "restored after the test")
    calls = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: calls.append((a, kw)))
    built = []
    monkeypatch.setattr(cli, "_city", lambda args, store: built.append(store.is_empty()))
    db = tmp_path / "new.db"
    assert cli.main(["--db", str(db), "serve", "--workers", "3", "--port", "8123"]) == 0
    assert built == [True]
    [(args, kwargs)] = calls
    assert args == ("api.main:create_app",) and kwargs["factory"] is True
    assert kwargs["workers"] == 3 and kwargs["port"] == 8123
    assert os.environ["GRIDCORE_DB"] == str(db.resolve())
