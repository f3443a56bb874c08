"""Time hourly Gi* alerts for one month of ~1,000,000 events over the sample grid.

Stages (median of --repeat runs): events -> cells, queen weights, the scan (Gi* for every
cell and hour, exact Poisson p, Benjamini-Hochberg over all cell-hours, baselines) and
the alerts. Beside it, the peer: ``esda.G_Local(star=True, transform="B")`` hour by hour,
timed on --peer-hours hours of the same data and scaled to the month (per-hour median x
hours), with gridcore's vectorised Gi* on the same hours, and the largest difference
between the two z arrays.

Run: python bench/bench_heatmap.py [--repeat 3] [--events 1000000] [--peer-hours 24]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _median(f, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--peer-hours", type=int, default=24)
    args = ap.parse_args()

    import esda

    from gridcore.heatmap import (
        _hourly_matrix,
        cell_weights,
        events_to_cell_positions,
        gi_star,
        hotspot_alerts,
        scan_hotspots,
    )
    from gridcore.sample import build_sample_city
    from gridcore.sample_heatmap import _PROFILE, synthetic_ebike_positions
    from gridcore.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        city = build_sample_city(SQLiteStore(Path(tmp) / "bench.db"), progress=False)
    cells = city.cells
    n = len(cells)
    # background rate giving about --events sightings in March 2018 (lane and streets on top)
    rate = args.events / (n * _PROFILE.sum() * 31)
    # 15 March - 15 April 2018: the jam (from 1 April) falls in the month, after two
    # weeks that give the baselines.
    ev = synthetic_ebike_positions(cells, start="2018-03-15", end="2018-04-15",
                                   background_rate=rate)
    hours = pd.date_range("2018-03-15", "2018-04-15", freq="h", inclusive="left")
    print(f"sample grid: {n} cells; events: {len(ev):,} over {len(hours)} hours "
          "(15 March - 15 April 2018, synthetic)")

    from gridcore.sindex import CellLocator

    t_build, _ = _median(lambda: CellLocator(cells), args.repeat)
    events_to_cell_positions(ev["lon"][:1], ev["lat"][:1], cells)  # build the cached one
    t_loc, pos = _median(lambda: events_to_cell_positions(ev["lon"], ev["lat"], cells),
                         args.repeat)
    t_w, w = _median(lambda: cell_weights(cells), args.repeat)
    t_scan, scan = _median(lambda: scan_hotspots(ev, cells, weights=w), args.repeat)
    t_al, alerts = _median(lambda: hotspot_alerts(scan), args.repeat)
    print(f"CellLocator build (once per grid)  {t_build:8.2f} s")
    print(f"events -> cells (built locator)    {t_loc:8.2f} s")
    print(f"queen weights (STRtree -> libpysal W) {t_w:5.2f} s")
    print(f"scan: Gi*+p+BH+baselines, {len(hours)} h {t_scan:8.2f} s  (incl. events -> cells)")
    print(f"alerts                             {t_al:8.2f} s  -> {len(alerts)} alerts")
    print(f"total hourly alerts for the month  {t_scan + t_al:8.2f} s  (weights reusable)")

    # The peer on the busiest hours of the same data, one hour at a time.
    ev_h = ev.assign(count=1.0)
    x = _hourly_matrix(ev_h, pos, n, hours).toarray()
    busiest = np.argsort(-x.sum(1))[: args.peer_hours]
    xs = x[busiest]
    peer_times, zs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in xs:
            t = time.perf_counter()
            g = esda.G_Local(row, w, transform="B", star=True, permutations=0)
            peer_times.append(time.perf_counter() - t)
            zs.append(g.Zs)
    t_ours, ours = _median(lambda: gi_star(xs, w), args.repeat)
    diff = float(np.nanmax(np.abs(np.vstack(zs) - ours.z)))
    per_hour_peer = statistics.median(peer_times)
    per_hour_ours = t_ours / len(xs)
    print(f"\nGi* z only, {len(xs)} busiest hours (same data, same run):")
    print(f"  esda.G_Local per hour (median)   {per_hour_peer * 1e3:8.1f} ms"
          f"  -> month {per_hour_peer * len(hours):7.1f} s")
    print(f"  gridcore gi_star per hour        {per_hour_ours * 1e3:8.1f} ms"
          f"  -> month {per_hour_ours * len(hours):7.1f} s")
    print(f"  ratio esda / gridcore            {per_hour_peer / per_hour_ours:8.1f} x")
    print(f"  max |z_esda - z_gridcore|        {diff:8.1e}")


if __name__ == "__main__":
    main()
