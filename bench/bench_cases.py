"""Cases: duplicate hint and metrics in memory, reports over HTTP on loopback.

1. ``find_duplicates`` (numpy, vectorised) against a plain-Python loop with the same
   haversine formula, over N open cases; same answer checked, medians and ratio printed.
2. ``case_metrics`` (pandas groupby) against a plain-Python accumulation of the same
   definitions, over N cases; same numbers checked.
3. POST /v1/cases from concurrent connections to ``gridcore serve`` on a copy of the
   store: reports/s and p50/p99 latency (each report is one fsync'd SQLite transaction).

Run: python bench/bench_cases.py [--db gridcore.db] [--n 100000] [--reports 500]
     [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridcore.cases import (  # noqa: E402
    EARTH_RADIUS_M,
    SATISFACTION_WEIGHTS,
    Satisfaction,
    case_metrics,
    find_duplicates,
)

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _median_time(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _open_cases(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({
        "lon": 116.30 + rng.uniform(0, 0.15, n),
        "lat": 39.85 + rng.uniform(0, 0.10, n),
        "event_class": rng.choice(["0506", "0505", "0102", "0101"], n),
        "reported_at": T0 + pd.to_timedelta(rng.uniform(0, 72, n), "h"),
    })


def _python_duplicates(lon, lat, klass, at, frame, radius_m, window_h):
    hits = []
    rows = zip(frame["lon"], frame["lat"], frame["event_class"], frame["reported_at"],
               strict=True)
    for i, (x, y, k, t) in enumerate(rows):
        if k != klass or abs((t - at).total_seconds()) / 3600 > window_h:
            continue
        p1, p2 = math.radians(lat), math.radians(y)
        a = (math.sin((p2 - p1) / 2) ** 2
             + math.cos(p1) * math.cos(p2) * math.sin(math.radians(x - lon) / 2) ** 2)
        d = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))
        if d <= radius_m:
            hits.append((d, i))
    return [i for _, i in sorted(hits)]


def bench_duplicates(n: int) -> None:
    rng = np.random.default_rng(1)
    frame = _open_cases(n, rng)
    at = pd.Timestamp(T0 + dt.timedelta(hours=36))
    args = (116.37, 39.90, "0506", at)
    ours = find_duplicates(*args, frame, radius_m=300, window_hours=24)
    peer = _python_duplicates(*args, frame, 300, 24)
    assert ours.tolist() == peer, "find_duplicates disagrees with the Python loop"
    t_ours = _median_time(lambda: find_duplicates(*args, frame, radius_m=300,
                                                  window_hours=24))
    t_peer = _median_time(lambda: _python_duplicates(*args, frame, 300, 24), repeat=3)
    print(f"duplicates over {n:,} open cases ({len(ours)} hits): gridcore "
          f"{t_ours * 1e3:.1f} ms, Python loop {t_peer * 1e3:.1f} ms, "
          f"ratio {t_peer / t_ours:.0f}x")


def _cases_frame(n: int, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    states = rng.choice(["reported", "filed", "dispatched", "handled", "closed", "rejected"],
                        n, p=[0.05, 0.05, 0.1, 0.1, 0.65, 0.05])
    reported = T0 + pd.to_timedelta(rng.uniform(0, 24 * 60, n), "h")
    limit = rng.choice([4.0, 24.0, 168.0], n)
    closed = pd.Series(reported + pd.to_timedelta(rng.uniform(0, 2, n) * limit, "h"))
    closed[states != "closed"] = pd.NaT
    frame = pd.DataFrame({
        "id": np.arange(1, n + 1), "event_class": "0506", "state": states,
        "street_code": rng.choice([f"110102{i:03d}" for i in range(1, 16)], n),
        "department": rng.choice(["JD", "CGZF", "CGW"], n), "reported_at": reported,
        "closed_at": closed, "time_limit_hours": limit,
        "rework_count": rng.poisson(0.2, n), "handled_count": rng.integers(0, 3, n),
    })
    ids = rng.choice(frame["id"].to_numpy(), n // 2, replace=False)
    followups = pd.DataFrame({
        "case_id": ids, "at": T0 + dt.timedelta(days=90),
        "responded": rng.random(len(ids)) < 0.9, "resolved": rng.random(len(ids)) < 0.7,
        "satisfaction": rng.choice(["满意", "基本满意", "不满意"], len(ids)),
    })
    return frame, followups


def _python_metrics(frame: pd.DataFrame, followups: pd.DataFrame, now) -> dict:
    fu = {r.case_id: r for r in followups.itertuples(index=False)}
    acc: dict = {}
    for r in frame.itertuples(index=False):
        g = acc.setdefault(r.street_code, [0] * 9)
        filed = r.state not in ("reported", "rejected")
        closed = r.state == "closed"
        deadline = r.reported_at + pd.Timedelta(hours=r.time_limit_hours)
        g[0] += filed
        g[1] += closed
        g[2] += filed and (closed or deadline < now)
        g[3] += closed and r.closed_at <= deadline
        g[4] += r.handled_count > 0
        g[5] += r.rework_count > 0
        if r.id in fu:
            f = fu[r.id]
            g[6] += 1
            g[7] += f.resolved
            g[8] += SATISFACTION_WEIGHTS[Satisfaction(f.satisfaction)]
    return {k: (g[1] / g[0], g[3] / g[2], g[5] / g[4], g[7] / g[6], g[8] / g[6])
            for k, g in acc.items()}


def bench_metrics(n: int) -> None:
    rng = np.random.default_rng(2)
    frame, followups = _cases_frame(n, rng)
    now = pd.Timestamp(T0 + dt.timedelta(days=70))
    ours = case_metrics(frame, followups, by="street", now=now)
    peer = _python_metrics(frame, followups, now)
    for key, rates in peer.items():
        got = ours.loc[key, ["closure_rate", "on_time_rate", "rework_rate",
                             "resolution_rate", "satisfaction_rate"]].to_numpy(float)
        assert np.allclose(got, rates), f"metrics disagree for {key}"
    t_ours = _median_time(lambda: case_metrics(frame, followups, by="street", now=now))
    t_peer = _median_time(lambda: _python_metrics(frame, followups, now), repeat=3)
    print(f"metrics over {n:,} cases by street: gridcore {t_ours * 1e3:.0f} ms, "
          f"Python loop {t_peer * 1e3:.0f} ms, ratio {t_peer / t_ours:.1f}x")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _post_reports(url, token, n, concurrency, rng):
    import httpx

    latencies, statuses = [], {}
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client):
        while not queue.empty():
            i = queue.get_nowait()
            body = {"lon": 116.3755 + rng.uniform(-0.01, 0.01),
                    "lat": 39.911 + rng.uniform(-0.01, 0.01), "crs": "wgs84",
                    "event_class": "0506", "description": f"bench {i}"}
            t = time.perf_counter()
            r = await client.post("/v1/cases", json=body,
                                  headers={"Idempotency-Key": f"bench-{i}"})
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                 limits=httpx.Limits(max_connections=concurrency),
                                 timeout=60) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return latencies, statuses, elapsed


def bench_reports(db: Path, n: int, concurrency: int) -> None:
    import httpx

    from gridcore import app
    from gridcore.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.db"
        src = sqlite3.connect(db)
        with sqlite3.connect(copy) as out:
            src.backup(out)
        src.close()
        store = SQLiteStore(copy)
        token = app.issue_token(store, role="supervisor", name="bench")
        store.close()
        port = _port()
        env = dict(os.environ, GRIDCORE_DB=str(copy), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridcore.cli", "serve", "--port", str(port),
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            rng = np.random.default_rng(3)
            lat, statuses, elapsed = asyncio.run(
                _post_reports(url, token, n, concurrency, rng))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    q = np.quantile(np.array(lat) * 1e3, [0.5, 0.99])
    print(f"POST /v1/cases x{n} from {concurrency} connections: {n / elapsed:.0f} reports/s, "
          f"p50 {q[0]:.1f} ms, p99 {q[1]:.1f} ms, statuses {statuses}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=os.environ.get("GRIDCORE_DB", "gridcore.db"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--reports", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    bench_duplicates(args.n)
    bench_metrics(args.n)
    if args.reports > 0 and Path(args.db).exists():
        bench_reports(Path(args.db), args.reports, args.concurrency)
    else:
        print(f"no store at {args.db}: build one with `gridcore build` for the HTTP part")


if __name__ == "__main__":
    main()
