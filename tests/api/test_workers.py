"""Many workers on one store: 200 concurrent reports stored exactly once, kill -9, restart.

Runs on SQLite and on PostgreSQL/PostGIS (the ``store_copy`` of tests/api/conftest.py),
with ``gridcore serve --workers 2`` as its user starts it.
"""

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx

from gridcore import app as gapp
from tests.api.conftest import LiveServer

REPORTS = 200
CONNECTIONS = 8


def _body(i: int) -> dict:
    # spread over 堂子胡同's neighbourhood, a few metres apart
    return {"lon": 116.3740 + (i % 20) * 0.00012, "lat": 39.9105 + (i // 20) * 0.0001,
            "crs": "wgs84", "event_class": "0506", "description": f"并发上报 {i}"}


def test_two_workers_store_every_report_exactly_once_and_survive_kill_9(store_copy):
    token = gapp.issue_token(store_copy, role="supervisor", name="并发监督员")
    auth = {"Authorization": f"Bearer {token}"}
    before = store_copy.count_cases()
    server = LiveServer(store_copy.url, workers=2)
    server.start()
    try:
        pids = set()
        for _ in range(60):  # a new connection each time: the kernel spreads them
            pids.add(httpx.get(server.url + "/health", timeout=60,
                               headers={"Connection": "close"}).json()["pid"])
        assert len(pids) == 2, "two worker processes answer"

        def send(i: int) -> tuple[int, int]:
            # every report is sent twice with its key, as a client retrying a lost reply
            headers = {**auth, "Idempotency-Key": f"burst-{i}"}
            with httpx.Client(base_url=server.url, timeout=60) as c:
                first = c.post("/v1/cases", json=_body(i), headers=headers)
                again = c.post("/v1/cases", json=_body(i), headers=headers)
            assert first.status_code == 201, first.text
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed")
            assert again.json()["id"] == first.json()["id"]
            return i, first.json()["id"]

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            ids = dict(pool.map(send, range(REPORTS)))
    finally:
        server.kill()  # SIGKILL to the parent and both workers
    assert server.proc.returncode == -signal.SIGKILL
    assert len(set(ids.values())) == REPORTS  # one case per report
    assert store_copy.count_cases() == before + REPORTS  # and nothing twice

    server = LiveServer(store_copy.url, workers=1)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60, headers=auth) as c:
            for i in (0, 57, 123, REPORTS - 1):
                got = c.get(f"/v1/cases/{ids[i]}")
                assert got.status_code == 200, got.text
                assert got.json()["description"] == f"并发上报 {i}"
            listed = c.get("/v1/cases", params={"limit": 500}).json()
        assert {case["id"] for case in listed} >= set(ids.values())
    finally:
        server.stop()
