"""Time building the sample city: divisions, unit grid, validation and the SQLite store.

Prints the median of several runs for each stage, the grid's figures, and one run of the
whole sample build (components, chiefs and alerts included), as `gridcore build` does.
Run: python bench/bench_build.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from gridcore.divisions import synthesise_divisions
    from gridcore.grid import GridVersion, generate_grid, validate_grid
    from gridcore.sample import SAMPLE_VALID_FROM
    from gridcore.store import SQLiteStore

    times: dict[str, list[float]] = {k: [] for k in
                                     ("divisions", "grid", "validate", "store", "load")}
    for _ in range(args.repeat):
        t = time.perf_counter()
        d = synthesise_divisions()
        times["divisions"].append(time.perf_counter() - t)
        t = time.perf_counter()
        cells = generate_grid(d.communities)
        times["grid"].append(time.perf_counter() - t)
        t = time.perf_counter()
        report = validate_grid(cells, communities=d.communities, districts=d.districts)
        times["validate"].append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            t = time.perf_counter()
            s = SQLiteStore(path)
            s.save_divisions(d)
            s.add_grid_version(GridVersion(SAMPLE_VALID_FROM, cells, "bench"))
            times["store"].append(time.perf_counter() - t)
            t = time.perf_counter()
            s.load_grid()
            s.load_divisions()
            times["load"].append(time.perf_counter() - t)
            size = path.stat().st_size
            s.close()

    print(f"sample city: {len(d.districts)} districts, {len(d.streets)} streets, "
          f"{len(d.communities)} communities, {len(cells)} cells; store {size / 1e6:.1f} MB")
    print(report.summary())
    print(f"\nmedian of {args.repeat} runs (s):")
    for k, v in times.items():
        print(f"  {k:<10} {statistics.median(v):7.2f}")
    total = sum(statistics.median(v) for k, v in times.items() if k != "load")
    print(f"  {'build':<10} {total:7.2f}   (divisions + grid + validate + store)")
    from gridcore.sample import SAMPLE_COMPONENTS, build_sample_city

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = SQLiteStore(Path(tmp) / "full.db")
        build_sample_city(s, progress=False)
        full = time.perf_counter() - t
        size = (Path(tmp) / "full.db").stat().st_size
        s.close()
    print(f"  full sample city {full:6.1f}   (one run: the above plus {SAMPLE_COMPONENTS:,} "
          f"components, chiefs and the 堂子胡同 alerts; store {size / 1e6:.0f} MB)")
    area = cells["area_m2"].to_numpy()
    print(f"  cells/s    {len(cells) / statistics.median(times['grid']):7.0f}   "
          f"median cell {np.median(area):.0f} m²")


if __name__ == "__main__":
    main()
