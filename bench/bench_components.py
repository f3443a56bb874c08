"""Components and locate: gridcore beside the plain geopandas way, same data, one run.

Prints medians and ratios for:
  1. bulk point -> cell of 1,000,000 points: CellLocator vs geopandas.sjoin
     (predicate "intersects", then the smallest code per point); answers must be identical
  2. CSV end to end (1,000,000 rows in, codes out): locate_csv vs pandas + sjoin
  3. single-point locate latency p50/p99 in process
  4. build time and memory of the indexes (CellLocator, ComponentIndex)
  5. ComponentIndex updates per second (insert, move, retire), with our rtree settings
     and with libspatialindex's defaults
  6. census generation time

Run from the repository root: python bench/bench_components.py [--points 1000000]
[--repeat 3] [--db PATH]
The sample city is read from the store (built first when the store is empty).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def _race(fns: dict, repeat: int) -> dict:
    """Median time and last result of each function, runs interleaved.

    Interleaving (a, b, c, a, b, c, ...) lets every contender see the same machine load,
    which matters on a shared 2-core box.
    """
    times: dict = {k: [] for k in fns}
    out: dict = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - t)
    return {k: (statistics.median(v), out[k]) for k, v in times.items()}


def _city_points(city, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over the city (the three districts), as 12345 positions would be."""
    import shapely

    area = shapely.union_all(city.divisions.districts.geometry.values)
    shapely.prepare(area)
    xmin, ymin, xmax, ymax = area.bounds
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < n:
        x, y = rng.uniform(xmin, xmax, 2 * n), rng.uniform(ymin, ymax, 2 * n)
        keep = shapely.contains_xy(area, x, y)
        lon, lat = np.concatenate([lon, x[keep]]), np.concatenate([lat, y[keep]])
    return lon[:n], lat[:n]


def _points(cells, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Stress mix: uniform over the grid's bounding box; 10 % on cell vertices and edges."""
    import shapely

    xmin, ymin, xmax, ymax = cells.total_bounds
    lon, lat = rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)
    co = shapely.get_coordinates(shapely.boundary(cells.geometry.values))
    m = n // 20
    i = rng.integers(0, len(co) - 1, 2 * m)
    lon[:m], lat[:m] = co[i[:m], 0], co[i[:m], 1]
    f = rng.uniform(0, 1, m)
    lon[m:2 * m] = co[i[m:], 0] * (1 - f) + co[i[m:] + 1, 0] * f
    lat[m:2 * m] = co[i[m:], 1] * (1 - f) + co[i[m:] + 1, 1] * f
    return lon, lat


def _sjoin_positions(cells, lon, lat) -> np.ndarray:
    """The plain way: points -> sjoin(intersects) -> smallest code per point."""
    import geopandas as gpd

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    j = gpd.sjoin(pts, cells[["code", "geometry"]], predicate="intersects", how="inner")
    # cells are sorted by code, so the smallest index_right is the smallest code
    best = j.groupby(level=0)["index_right"].min()
    out = np.full(len(lon), -1, dtype=np.int64)
    out[best.index.to_numpy()] = best.to_numpy()
    return out


def _sjoin_csv(cells, src: Path, dst: Path) -> None:
    """The same CSV job written with pandas + geopandas.sjoin."""
    import geopandas as gpd

    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(df["lon"].astype(float), df["lat"].astype(float)),
        crs="EPSG:4326")
    j = gpd.sjoin(pts, cells, predicate="intersects", how="inner")
    best = j.sort_values("code").groupby(level=0).first()
    for col, s in [("cell_code", "code"), ("community_code", "community_code"),
                   ("street_code", "street_code"), ("district_code", "district_code")]:
        df[col] = best[s].reindex(df.index).fillna("")
    df.to_csv(dst, index=False, lineterminator="\n")


def _percentiles(samples_ns: list[int]) -> str:
    a = np.asarray(samples_ns) / 1000
    return f"p50 {np.percentile(a, 50):6.1f} us   p99 {np.percentile(a, 99):6.1f} us"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default=None, help="store path (default $GRIDCORE_DB)")
    ap.add_argument("--census", type=int, default=500_000, help="census size")
    args = ap.parse_args()

    import os

    from gridcore.census import synthesise_components
    from gridcore.crs import wgs84_to_projected
    from gridcore.locate import Locator, locate_csv
    from gridcore.sample import load_sample_city
    from gridcore.sindex import CellLocator, ComponentIndex
    from gridcore.store import SQLiteStore

    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared; figures are "
          f"noisy under load, ratios come from interleaved runs)")
    city = load_sample_city(SQLiteStore(args.db), progress=True)
    cells = city.cells
    rng = np.random.default_rng(20040101)
    n = args.points
    lon, lat = _city_points(city, n, rng)
    slon, slat = _points(cells, n, rng)
    print(f"sample grid: {len(cells):,} cells; {n:,} points uniform over the city, and a "
          f"stress set of {n:,} over the bounding box with 10 % on cell vertices/edges")

    # ---- 4a. CellLocator build -------------------------------------------------------
    print("\n[build] CellLocator")
    locs = {}
    for px in (5.0, 2.5):
        rss = _rss_mb()
        t = time.perf_counter()
        locs[px] = CellLocator(cells, pixel_m=px)
        dt = time.perf_counter() - t
        loc = locs[px]
        print(f"  {px:3.1f} m pixels: build {dt:5.2f} s, raster {loc.shape[1]}x{loc.shape[0]}, "
              f"{loc.n_edge_pixels:,} edge pixels, arrays {loc.nbytes / 1e6:.0f} MB "
              f"(RSS +{_rss_mb() - rss:.0f} MB)")

    # ---- 1. bulk assignment ----------------------------------------------------------
    for label, (qlon, qlat) in [("uniform over the city", (lon, lat)),
                                ("stress: bbox, 10 % on edges", (slon, slat))]:
        print(f"\n[1] bulk point -> cell, {n:,} points, {label} (median of {args.repeat})")
        fns = {"sjoin": lambda a=qlon, b=qlat: _sjoin_positions(cells, a, b)}
        for px, loc in locs.items():
            fns[px] = lambda loc=loc, a=qlon, b=qlat: loc.locate(a, b)
        res = _race(fns, args.repeat)
        t_sj, exp = res.pop("sjoin")
        print(f"  geopandas.sjoin + smallest code   {t_sj:6.3f} s")
        for px, (t_gc, got) in res.items():
            same = np.array_equal(got, exp)
            print(f"  gridcore CellLocator {px:3.1f} m       {t_gc:6.3f} s   "
                  f"{t_sj / t_gc:5.1f}x faster   identical answers: {same}")
            if not same:
                raise SystemExit(f"answers differ on {(got != exp).sum()} points")
        print(f"  ({(exp >= 0).sum():,} inside, {(exp < 0).sum():,} outside)")
    exp = locs[5.0].locate(lon, lat)

    # ---- 2. CSV end to end -----------------------------------------------------------
    locator = Locator.from_city(city, cell_locator=locs[5.0])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        pd.DataFrame({"id": np.arange(n), "lon": lon.round(7), "lat": lat.round(7),
                      "kind": "12345"}).to_csv(src, index=False)
        ours, theirs = Path(tmp) / "ours.csv", Path(tmp) / "theirs.csv"
        print(f"\n[2] CSV end to end, {n:,} rows, {src.stat().st_size / 1e6:.0f} MB "
              f"(median of {args.repeat})")
        res = _race({
            "pandas": lambda: _sjoin_csv(cells, src, theirs),
            "gridcore": lambda: locate_csv(src, ours, crs="wgs84", locator=locator,
                                           progress=False),
        }, args.repeat)
        t_pd, t_gc = res["pandas"][0], res["gridcore"][0]
        same = ours.read_bytes() == theirs.read_bytes()
        print(f"  pandas + geopandas.sjoin          {t_pd:6.2f} s")
        print(f"  gridcore locate_csv               {t_gc:6.2f} s   {t_pd / t_gc:5.1f}x faster"
              f"   identical files: {same}")
        if not same:
            raise SystemExit("CSV outputs differ")

    # ---- census, ComponentIndex build ------------------------------------------------
    t = time.perf_counter()
    census = synthesise_components(cells, n=args.census)
    print(f"\n[6] census: {len(census):,} synthetic components in "
          f"{time.perf_counter() - t:.2f} s")
    rss = _rss_mb()
    t = time.perf_counter()
    full = Locator.from_city(city, components=census, cell_locator=locs[5.0])
    print(f"[build] ComponentIndex over the census: {time.perf_counter() - t:.2f} s "
          f"(incl. projection), RSS +{_rss_mb() - rss:.0f} MB")

    # ---- 3. single-point latency -----------------------------------------------------
    print("\n[3] single-point locate, in process")
    inside = np.flatnonzero(exp >= 0)[:20_000]
    qlon, qlat = lon[inside].tolist(), lat[inside].tolist()
    loc5 = locs[5.0]
    for label, fn in [
        ("CellLocator.locate_one (wgs84)", lambda a, b: loc5.locate_one(a, b)),
        ("Locator.cell_position (checks crs)", lambda a, b: full.cell_position(a, b, crs="wgs84")),
        ("Locator.locate k=0 (names)", lambda a, b: full.locate(a, b, crs="wgs84", k=0)),
        ("Locator.locate k=5 (+ components)", lambda a, b: full.locate(a, b, crs="wgs84", k=5)),
        ("Locator.locate gcj02 k=5", None),
    ]:
        if fn is None:
            from gridcore.crs import wgs84_to

            g = wgs84_to(np.array(qlon[:5000]), np.array(qlat[:5000]), crs="gcj02")
            pairs = list(zip(g[0].tolist(), g[1].tolist(), strict=True))
            fn = lambda a, b: full.locate(a, b, crs="gcj02", k=5)  # noqa: E731
        else:
            pairs = list(zip(qlon, qlat, strict=True))
        for a, b in pairs[:500]:  # warm up
            fn(a, b)
        samples = []
        for a, b in pairs:
            t0 = time.perf_counter_ns()
            fn(a, b)
            samples.append(time.perf_counter_ns() - t0)
        print(f"  {label:<38} {_percentiles(samples)}")

    # ---- 4b/5. ComponentIndex at 1M points: build, memory, updates --------------------
    print("\n[4,5] ComponentIndex, 1,000,000 points (EPSG:4548 m)")
    x, y = wgs84_to_projected(*_city_points(city, 1_000_000, np.random.default_rng(5)))
    classes = census["class_code"].to_numpy()[np.arange(1_000_000) % len(census)]
    statuses = np.full(1_000_000, "完好", dtype=object)
    for label, props in [("gridcore settings (R*, 32/32, fill 0.3)", None),
                         ("libspatialindex defaults (R*, 100/100, fill 0.7)", "default")]:
        import gridcore.sindex as si

        saved = (si._LEAF_CAPACITY, si._INDEX_CAPACITY, si._FILL_FACTOR)
        if props == "default":
            si._LEAF_CAPACITY, si._INDEX_CAPACITY, si._FILL_FACTOR = 100, 100, 0.7
        try:
            rss = _rss_mb()
            t = time.perf_counter()
            idx = ComponentIndex(x, y, classes=classes, statuses=statuses)
            build = time.perf_counter() - t
            mem = _rss_mb() - rss
        finally:
            si._LEAF_CAPACITY, si._INDEX_CAPACITY, si._FILL_FACTOR = saved
        m = 5000
        r = np.random.default_rng(1)
        ids = r.choice(1_000_000, m, replace=False)
        nx, ny = r.uniform(x.min(), x.max(), m), r.uniform(y.min(), y.max(), m)
        t = time.perf_counter()
        for k in range(m):
            idx.insert(1_000_000 + k, nx[k], ny[k], class_code="0101", status="完好")
        t_ins = (time.perf_counter() - t) / m
        t = time.perf_counter()
        for k, i in enumerate(ids):
            idx.move(int(i), nx[k], ny[k])
        t_mov = (time.perf_counter() - t) / m
        t = time.perf_counter()
        for i in ids:
            idx.retire(int(i))
        t_del = (time.perf_counter() - t) / m
        qs = r.uniform([x.min(), y.min()], [x.max(), y.max()], (2000, 2))
        t = time.perf_counter()
        for a, b in qs:
            idx.nearest(a, b, 5)
        t_nn = (time.perf_counter() - t) / len(qs)
        t = time.perf_counter()
        for a, b in qs:
            idx.nearest(a, b, 5, classes="0602")
        t_nn_rare = (time.perf_counter() - t) / len(qs)
        print(f"  {label}")
        print(f"    build {build:5.2f} s, RSS +{mem:.0f} MB")
        print(f"    insert {t_ins * 1e6:6.1f} us ({1 / t_ins:8,.0f}/s)   "
              f"move {t_mov * 1e6:6.1f} us ({1 / t_mov:8,.0f}/s)   "
              f"retire {t_del * 1e6:6.1f} us ({1 / t_del:8,.0f}/s)")
        print(f"    nearest k=5 {t_nn * 1e6:6.1f} us; k=5 of a rare class (0602) "
              f"{t_nn_rare * 1e6:6.1f} us")
        del idx


if __name__ == "__main__":
    main()
