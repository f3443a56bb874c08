"""A report answered 2xx survives kill -9 of ``gridcore serve`` (real HTTP, real SQLite)."""

import signal

import httpx

from gridcore import app as gapp
from tests.api.conftest import LiveServer


def test_report_survives_kill_9(store_copy):
    token = gapp.issue_token(store_copy, role="supervisor", name="王监督员")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "durable-1"}
    body = {"lon": 116.3755, "lat": 39.91105, "crs": "wgs84", "event_class": "0506",
            "description": "kill -9 之前的上报"}
    server = LiveServer(store_copy.url)
    server.start()
    try:
        r = httpx.post(server.url + "/v1/cases", json=body, headers=headers, timeout=30)
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
    finally:
        server.kill()  # SIGKILL: no shutdown, no checkpoint
    assert server.proc.returncode == -signal.SIGKILL
    server.start()
    try:
        got = httpx.get(f"{server.url}/v1/cases/{case_id}", headers=headers, timeout=30)
        assert got.status_code == 200, got.text
        assert got.json()["description"] == "kill -9 之前的上报"
        # the idempotency key survived too: the retry finds the same case
        again = httpx.post(server.url + "/v1/cases", json=body, headers=headers, timeout=30)
        assert again.status_code == 201 and again.json()["id"] == case_id
    finally:
        server.stop()
