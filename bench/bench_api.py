"""Locate under concurrent load on loopback: requests/s and latency percentiles.

Starts ``gridcore serve`` (one uvicorn worker) on a copy of the store, then fires
``--requests`` GET /v1/locate calls at random positions in the city from ``--concurrency``
concurrent connections (httpx, asyncio) and prints throughput and p50/p90/p99. When
``wrk`` is installed (Debian package), it also runs wrk, a C load generator that takes
far less of the two cores from the server than a Python client does.
Run: python bench/bench_api.py [--db gridcore.db] [--requests 5000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(url: str, headers: dict, points: np.ndarray, concurrency: int) -> tuple:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for lon, lat in points:
        queue.put_nowait((lon, lat))

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            lon, lat = queue.get_nowait()
            t = time.perf_counter()
            r = await client.get("/v1/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"})
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return latencies, statuses, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=os.environ.get("GRIDCORE_DB", "gridcore.db"))
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from gridcore import app
    from gridcore.sample import load_sample_city
    from gridcore.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        if Path(args.db).exists():
            shutil.copy(args.db, db)
        store = SQLiteStore(db)
        city = load_sample_city(store)
        token = app.issue_token(store, role="supervisor", name="bench")
        store.close()
        rng = np.random.default_rng(0)
        cells = city.cells.sample(args.requests, replace=True, random_state=1)
        pts = np.array([(p.x, p.y) for p in cells.geometry.representative_point()])
        pts += rng.normal(0, 1e-5, pts.shape)

        port = _port()
        env = dict(os.environ, GRIDCORE_DB=str(db))
        proc = subprocess.Popen([sys.executable, "-m", "gridcore.cli", "serve", "--port",
                                 str(port), "--log-level", "warning"], env=env,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            headers = {"Authorization": f"Bearer {token}"}
            asyncio.run(_run(url, headers, pts[:200], args.concurrency))  # warm-up
            rps, p50, p90, p99 = [], [], [], []
            for _ in range(args.rounds):
                lat, statuses, elapsed = asyncio.run(_run(url, headers, pts,
                                                          args.concurrency))
                ms = np.array(lat) * 1000
                rps.append(len(lat) / elapsed)
                p50.append(np.percentile(ms, 50))
                p90.append(np.percentile(ms, 90))
                p99.append(np.percentile(ms, 99))
            if shutil.which("wrk"):
                lon, lat = pts[0]
                out = subprocess.run(
                    ["wrk", "-t1", f"-c{args.concurrency}", "-d10s", "--latency", "-H",
                     f"Authorization: Bearer {token}",
                     f"{url}/v1/locate?lon={lon}&lat={lat}&crs=wgs84"],
                    capture_output=True, text=True).stdout
                wrk_lines = [ln.strip() for ln in out.splitlines()
                             if ln.strip().startswith(("50%", "90%", "99%", "Requests/sec",
                                                       "Non-2xx", "Socket errors"))]
            else:
                wrk_lines = []
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"GET /v1/locate, {args.requests} requests x {args.rounds} rounds, "
          f"{args.concurrency} concurrent connections, loopback, 1 uvicorn worker")
    print(f"  statuses (last round): {statuses}")
    print(f"  requests/s  median {statistics.median(rps):8.0f}")
    print(f"  latency ms  p50 {statistics.median(p50):.2f}  p90 {statistics.median(p90):.2f}  "
          f"p99 {statistics.median(p99):.2f}  (medians over rounds)")
    if wrk_lines:
        print(f"wrk, 1 thread, {args.concurrency} connections, 10 s, one position:")
        for line in wrk_lines:
            print("  " + line)


if __name__ == "__main__":
    main()
