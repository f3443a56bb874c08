"""The service as its user runs it: locate and case reports, 1 and 2 workers, SQLite and PostGIS.

Prints, side by side from one run, the throughput (requests/s) and latency (p50, p99) of
``GET /v1/locate`` and ``POST /v1/cases`` (a supervisor's report) for each of

    {SQLite file, PostgreSQL/PostGIS} x {--workers 1, --workers 2} x {locate, report}

as medians over ``--repeat`` runs, and the ratios 2 workers / 1 worker and
PostGIS / SQLite.

How:

- The sample city is built once into a SQLite file and once into a PostgreSQL database
  (a throwaway cluster from ``tests/pgcluster.py``, or the server named by ``--pg-url``),
  with a supervisor token. Every run serves a fresh copy of it (a SQLite backup, a
  ``CREATE DATABASE ... TEMPLATE``), so every run's reports meet the same store.
- Each run starts ``gridcore serve --workers N --port P`` as a whole process with
  ``GRIDCORE_DB`` set to the copy, waits for ``/health`` and for a locate answered, then
  warms up with untimed locates until no answer is slow (the locator of every worker built),
  and times ``--locates`` locates then ``--reports`` reports, each phase from
  ``--concurrency`` keep-alive connections on 127.0.0.1, then stops the server.
- The load generator is a small asyncio HTTP/1.1 client in this process, so that it takes
  as little as possible of the cores it shares with the server; its CPU share is printed.
  Latency is from the request written to the whole answer read. Positions are the
  representative points of random cells of the city (WGS 84).
- Runs are interleaved (run 1 of every cell, then run 2, ...) so that a neighbour's burst
  on a shared machine spreads over the cells instead of spoiling one.
- Every answer that is not 2xx and every transport error is counted and printed.

Run: python bench/bench_service.py [--quick] [--repeat 3] [--locates 2000] [--reports 400]
     [--concurrency 8] [--pg-url postgresql://user@host:port/db] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2)
OPERATIONS = ("GET /v1/locate", "POST /v1/cases")
REPORT_CLASSES = ("0506", "0102", "0201", "0501", "0101")  # common street problems
SLOW_S = 1.0  # a warm-up answer slower than this means a locator is still being built


# --------------------------------------------------------------------------- the client

@dataclass
class Phase:
    """What one timed phase measured."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: list[float] = field(default_factory=list)  # per process, busiest first

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def non_2xx(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if not 200 <= s < 300}

    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else float("nan")

    def server_cores(self) -> float:
        """CPU seconds of the gridcore processes per second of the phase."""
        return sum(self.server_cpu) / self.elapsed if self.elapsed else float("nan")

    def busiest(self) -> float:
        """Share of the server's CPU taken by its busiest process (1: one did it all)."""
        total = sum(self.server_cpu)
        return self.server_cpu[0] / total if total else float("nan")

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def _get(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "\r\n").encode()


def _post(path: str, token: str, body: dict) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode() + data


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> tuple[int, bool]:
    """Send one request, read its whole answer; return (status, server closes)."""
    writer.write(raw)
    await writer.drain()
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("connection closed before the status line")
    status = int(line.split(None, 2)[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = b"close" in value
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status, close


async def _load(port: int, requests: list[bytes], concurrency: int, timeout: float) -> Phase:
    """Send ``requests`` from ``concurrency`` keep-alive connections; time each one."""
    phase = Phase()
    todo = iter(requests)

    async def connection() -> None:
        reader = writer = None
        for raw in todo:  # one shared iterator: each request is sent once
            t = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    status, close = await _exchange(reader, writer, raw)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                name = type(e).__name__
                phase.errors[name] = phase.errors.get(name, 0) + 1
                close = True
            else:
                phase.latencies.append(time.perf_counter() - t)
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    cpu, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - t0
    phase.client_cpu = time.process_time() - cpu
    return phase


def load(port: int, requests: list[bytes], concurrency: int, timeout: float = 60) -> Phase:
    """Run `_load` in a fresh event loop."""
    return asyncio.run(_load(port, requests, concurrency, timeout))


# --------------------------------------------------------------------------- the data

def _positions(city, n: int, seed: int) -> np.ndarray:
    """``n`` WGS 84 positions inside random cells of ``city``."""
    cells = city.cells.sample(n, replace=True, random_state=seed)
    pts = cells.geometry.representative_point()
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def locate_requests(city, n: int, token: str, seed: int) -> list[bytes]:
    return [_get(f"/v1/locate?lon={lon:.7f}&lat={lat:.7f}&crs=wgs84", token)
            for lon, lat in _positions(city, n, seed)]


def report_requests(city, n: int, token: str, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    where = zip(_positions(city, n, seed), rng.choice(REPORT_CLASSES, n), strict=True)
    return [_post("/v1/cases", token, {
        "event_class": str(code), "lon": round(float(lon), 7), "lat": round(float(lat), 7),
        "crs": "wgs84", "description": f"压测上报 {i}: 外卖电动车堵塞胡同"})
        for i, ((lon, lat), code) in enumerate(where)]


class Backend:
    """A store holding the sample city, copied afresh for every run."""

    name: str

    def copy(self, run: str) -> str:
        """Return the ``GRIDCORE_DB`` of a fresh copy of the built store."""
        raise NotImplementedError

    def drop(self, db: str) -> None:
        """Remove a copy made by `copy`."""

    def close(self) -> None:
        """Remove everything this backend made."""


def _build(db: str) -> tuple[object, str]:
    """Build the sample city into ``db``; return (city, supervisor token)."""
    from gridcore import app
    from gridcore.sample import build_sample_city
    from gridcore.store import open_store

    store = open_store(db)
    try:
        city = build_sample_city(store, progress=False)
        token = app.issue_token(store, role="supervisor", name="bench")
    finally:
        store.close()
    return city, token


class SQLiteBackend(Backend):
    name = "SQLite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.base = tmp / "city.db"
        self.city, self.token = _build(str(self.base))

    def copy(self, run: str) -> str:
        dst = self.tmp / f"{run}.db"
        src = sqlite3.connect(self.base)
        try:
            with sqlite3.connect(dst) as out:
                src.backup(out)
            out.close()
        finally:
            src.close()
        return str(dst)

    def drop(self, db: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(db + suffix).unlink(missing_ok=True)


class PostgresBackend(Backend):
    name = "PostGIS"

    def __init__(self, pg_url: str | None) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        import pgcluster

        self.cluster = (pgcluster.Cluster(url=pg_url) if pg_url
                        else pgcluster.start_cluster())
        self.base = self.cluster.new_database("gridcore_bench")
        self.made = [self.base]
        try:
            self.city, self.token = _build(self.base)
        except BaseException:
            self.close()
            raise

    def copy(self, run: str) -> str:
        import psycopg

        base = self.base.rsplit("/", 1)[1]
        url = self.base.rsplit("/", 1)[0] + f"/{base}_{run}"
        with psycopg.connect(self.cluster.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{base}_{run}" TEMPLATE "{base}"')
        self.made.append(url)
        return url

    def drop(self, db: str) -> None:
        self.cluster.drop_database(db)
        self.made.remove(db)

    def close(self) -> None:
        for db in list(self.made):
            try:
                self.cluster.drop_database(db)
            except Exception as e:  # the cluster may be gone already; say so, go on
                print(f"  could not drop {db.rsplit('/', 1)[1]}: {e}", file=sys.stderr)
        self.made.clear()
        self.cluster.stop()


# --------------------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command() -> list[str]:
    """``gridcore`` as installed beside this Python, else its module."""
    script = Path(sys.executable).parent / "gridcore"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gridcore.cli"]


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc; just ``pid`` elsewhere)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for c in children for p in _process_tree(int(c)))]


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``pid`` and each of its descendants."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


@contextmanager
def serving(db: str, workers: int, token: str, log: Path, timeout: float):
    """Run ``gridcore serve --workers N`` on ``db`` until the block ends; yield its port."""
    port = _free_port()
    env = dict(os.environ, GRIDCORE_DB=db, GRIDCORE_WARM_UP="true",
               GRIDCORE_BUILD_IF_EMPTY="false")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*_command(), "serve", "--workers", str(workers), "--port", str(port),
             "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, port, token, timeout, log)
        yield port, proc.pid
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen, port: int, token: str, timeout: float,
                log: Path) -> None:
    """Wait for /health 200, then for a locate answered 200."""
    import httpx

    deadline = time.monotonic() + timeout
    for path, want in (("/health", "health"), ("/v1/locate?lon=116.3755&lat=39.91105"
                                               "&crs=wgs84", "locate")):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gridcore serve exited with {proc.returncode}:\n"
                                   f"{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gridcore serve: no {want} answer in {timeout:.0f} s:\n"
                                   f"{_tail(log)}")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout,
                              headers={"Authorization": f"Bearer {token}"})
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # uvicorn stops its workers and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this bench started
            proc.wait(timeout=10)


def _tail(log: Path, n: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def warm_up(port: int, city, token: str, concurrency: int, deadline_s: float) -> int:
    """Untimed locates (fresh connections each round) until none is slow; return how many."""
    sent = 0
    deadline = time.monotonic() + deadline_s
    for seed in range(1000):
        reqs = locate_requests(city, 20 * concurrency, token, seed=10_000 + seed)
        phase = load(port, reqs, concurrency)
        sent += len(reqs)
        settled = (phase.ok == len(reqs) and max(phase.latencies) < SLOW_S)
        if (settled and seed >= 1) or time.monotonic() > deadline:
            break
    reports = report_requests(city, 2 * concurrency, token, seed=20_000)
    load(port, reports, concurrency)
    return sent + len(reports)


# --------------------------------------------------------------------------- the table

def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _counts(phases: list[Phase]) -> str:
    bad: dict[str, int] = {}
    for p in phases:
        for s, n in p.non_2xx.items():
            bad[str(s)] = bad.get(str(s), 0) + n
        for e, n in p.errors.items():
            bad[e] = bad.get(e, 0) + n
    return ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "0"


def print_table(results: dict, backends: list[str], args, cpu_share: float) -> None:
    print()
    print(f"gridcore serve on loopback; {os.cpu_count()} cores on this machine (shared with "
          f"the load generator); load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.concurrency} keep-alive connections; per run {args.locates} locates then "
          f"{args.reports} reports; medians over {args.repeat} run(s), each on a fresh copy "
          f"of the sample city; load generator CPU ~{cpu_share:.0%} of one core")
    print("srv cores: CPU seconds of the gridcore serve processes per second (PostgreSQL's "
          "own processes not counted); busiest: the busiest process's share of them (with "
          "2 workers, 100% means every keep-alive connection landed on one worker)")
    head = (f"{'backend':8} {'workers':>7}  {'operation':15} {'req/s':>8} {'(min-max)':>13} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'srv cores':>9} {'busiest':>7}  "
            f"{'not 2xx / errors (all runs)'}")
    print()
    print(head)
    print("-" * len(head))
    for b in backends:
        for w in WORKERS:
            for op in OPERATIONS:
                phases = results.get((b, w, op), [])
                rps = [p.rps() for p in phases]
                lo_hi = f"({min(rps):.0f}-{max(rps):.0f})" if rps else ""
                print(f"{b:8} {w:>7}  {op:15} {_median(rps):8.0f} {lo_hi:>13} "
                      f"{_median([p.pct(50) for p in phases]):8.2f} "
                      f"{_median([p.pct(99) for p in phases]):8.2f} "
                      f"{_median([p.server_cores() for p in phases]):9.2f} "
                      f"{_median([p.busiest() for p in phases]):7.0%}  {_counts(phases)}")

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    def med(b, w, op, what):
        phases = results.get((b, w, op), [])
        return _median([p.rps() if what == "rps" else p.pct(99) for p in phases])

    print()
    print("ratios of the medians (req/s ratio > 1: faster; p99 ratio < 1: lower latency)")
    print(f"{'':29} {'req/s':>8} {'p99':>8}")
    for b in backends:
        for op in OPERATIONS:
            print(f"{b + ' 2 workers / 1 worker':29} "
                  f"{ratio(med(b, 2, op, 'rps'), med(b, 1, op, 'rps')):8.2f} "
                  f"{ratio(med(b, 2, op, 'p99'), med(b, 1, op, 'p99')):8.2f}   {op}")
    if len(backends) == 2:
        for w in WORKERS:
            for op in OPERATIONS:
                label = f"PostGIS / SQLite, {w} worker{'s' if w > 1 else ''}"
                print(f"{label:29} "
                      f"{ratio(med('PostGIS', w, op, 'rps'), med('SQLite', w, op, 'rps')):8.2f} "
                      f"{ratio(med('PostGIS', w, op, 'p99'), med('SQLite', w, op, 'p99')):8.2f}"
                      f"   {op}")


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locates", type=int, default=2000, help="timed locates per run")
    ap.add_argument("--reports", type=int, default=400, help="timed reports per run")
    ap.add_argument("--concurrency", type=int, default=8, help="client connections")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell of the table")
    ap.add_argument("--pg-url", help="a PostgreSQL/PostGIS server to use instead of a "
                                     "throwaway cluster: URL of a database from which the "
                                     "bench may CREATE and DROP its own databases")
    ap.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL/PostGIS")
    ap.add_argument("--start-timeout", type=float, default=300,
                    help="seconds a server may take to answer its first locate")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 200 locates, 40 reports, 1 run")
    args = ap.parse_args(argv)
    if args.quick:
        args.locates, args.reports, args.repeat = 200, 40, 1
    if min(args.locates, args.reports, args.concurrency, args.repeat) < 1:
        ap.error("--locates, --reports, --concurrency and --repeat must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="gridcore-bench-"))
    backends: list[Backend] = []
    results: dict[tuple, list[Phase]] = {}
    cpu = wall = 0.0
    try:
        t = time.perf_counter()
        print("building the sample city into SQLite ...", file=sys.stderr, flush=True)
        backends.append(SQLiteBackend(tmp))
        print(f"  {time.perf_counter() - t:.0f} s", file=sys.stderr)
        if not args.sqlite_only:
            t = time.perf_counter()
            print("building the sample city into PostgreSQL/PostGIS ...", file=sys.stderr,
                  flush=True)
            backends.append(PostgresBackend(args.pg_url))
            print(f"  {time.perf_counter() - t:.0f} s", file=sys.stderr)

        for r in range(args.repeat):
            for backend in backends:
                city, token = backend.city, backend.token
                locates = locate_requests(city, args.locates, token, seed=r)
                reports = report_requests(city, args.reports, token, seed=100 + r)
                for w in WORKERS:
                    run = f"r{r}_w{w}"
                    db = backend.copy(run)
                    log = tmp / f"serve_{backend.name}_{run}.log"
                    try:
                        with serving(db, w, token, log, args.start_timeout) as (port, pid):
                            warm_up(port, city, token, args.concurrency, args.start_timeout)
                            for op, reqs in zip(OPERATIONS, (locates, reports), strict=True):
                                before = process_cpu(pid)
                                phase = load(port, reqs, args.concurrency)
                                after = process_cpu(pid)
                                phase.server_cpu = sorted(
                                    (after[p] - before.get(p, 0.0) for p in after),
                                    reverse=True)
                                results.setdefault((backend.name, w, op), []).append(phase)
                                cpu += phase.client_cpu
                                wall += phase.elapsed
                                print(f"run {r + 1}/{args.repeat} {backend.name:7} "
                                      f"{w} worker(s) {op:15} {phase.rps():7.0f} req/s  "
                                      f"p99 {phase.pct(99):7.2f} ms  "
                                      f"not 2xx/errors: {_counts([phase])}  "
                                      f"server CPU s per process "
                                      f"{' '.join(f'{c:.2f}' for c in phase.server_cpu)}",
                                      file=sys.stderr, flush=True)
                    finally:
                        backend.drop(db)
                    text = log.read_text(errors="replace")
                    if "Traceback" in text or "ERROR" in text:
                        print(f"  the server logged errors ({text.count('Traceback')} "
                              f"tracebacks); its log ends:\n{_tail(log, 15)}",
                              file=sys.stderr)
        print_table(results, [b.name for b in backends], args,
                    cpu / wall if wall else 0)
    finally:
        for backend in backends:
            backend.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
