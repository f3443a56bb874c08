"""Synthetic sample data for the heat-map alerts (labelled synthetic everywhere).

Nothing here is measured data. The 堂子胡同 story (Xicheng, near 西单, 2018) is told with
made-up delivery e-bike sightings: one row per bike seen in one hour by a (fictional)
platform snapshot. The lane position is real (about 39.911 N, 116.3756 E, WGS84); the
lane's course, the nearby street segments, every count and every hotline case are
invented, deterministically from a seed. Every frame carries ``synthetic=True`` and
every case id starts with ``SYN-``.

The story the e-bike data tells:

* 1 March - 31 March 2018: the lane is an ordinary side street (a few bikes at meal
  peaks), like the streets around 西单; background activity over the whole city.
* 1 April - 9 April: delivery bikes pile into the lane at meal peaks (11-13h, 17-19h),
  60-90 at weekday peaks and 100+ at weekend peaks.
* 10 April: dedicated e-bike parking is painted (:data:`TANGZI_MEASURE`); from then on
  the lane holds a handful of bikes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = [
    "HOTLINE_CLASSES",
    "TANGZI_HUTONG",
    "TANGZI_MEASURE",
    "Measure",
    "SAMPLE_ALERTS_DATASET",
    "SimulatedCounts",
    "lattice_adjacency",
    "realistic_counts",
    "synthetic_box_grid",
    "synthetic_ebike_positions",
    "synthetic_hotline_cases",
    "synthetic_noise_events",
    "sample_alerts",
    "seed_sample_alerts",
]

#: 堂子胡同, WGS84 (lon, lat), ±100 m.
TANGZI_HUTONG = (116.3756, 39.911)

#: The lane's course used by the synthetic data: an east-west lane of ~240 m through
#: the point above (invented; the real lane's shape is not in any offline data set).
_LANE = ((116.3742, 39.9110), (116.3770, 39.9110))

#: Synthetic street segments near 西单 (approximate courses, invented activity).
_XIDAN_STREETS = {
    "西单北大街(synthetic)": ((116.3735, 39.9060), (116.3735, 39.9160)),
    "西长安街(synthetic)": ((116.3650, 39.9065), (116.3850, 39.9065)),
    "灵境胡同(synthetic)": ((116.3740, 39.9138), (116.3830, 39.9138)),
    "西绒线胡同(synthetic)": ((116.3740, 39.9080), (116.3830, 39.9080)),
}


@dataclass(frozen=True)
class Measure:
    """A recorded measure at a place (e.g. painted e-bike parking)."""

    name: str
    lon: float
    lat: float
    date: pd.Timestamp
    description_zh: str
    description_en: str


#: The 10 April 2018 measure of the story.
TANGZI_MEASURE = Measure(
    name="堂子胡同电动自行车停放区",
    lon=TANGZI_HUTONG[0],
    lat=TANGZI_HUTONG[1],
    date=pd.Timestamp("2018-04-10"),
    description_zh="施划外卖电动自行车专用停放区",
    description_en="dedicated parking painted for delivery e-bikes",
)

# Share of the peak level seen in each hour of the day (meal peaks 11-13h, 17-19h).
_PROFILE = np.array(
    [
        0.02,
        0.01,
        0.01,
        0.01,
        0.01,
        0.02,
        0.05,
        0.08,
        0.10,
        0.10,
        0.20,
        1.00,
        1.00,
        0.35,
        0.10,
        0.10,
        0.20,
        1.00,
        1.00,
        0.35,
        0.15,
        0.10,
        0.05,
        0.03,
    ]
)


def _metres_per_degree(lat: float) -> tuple[float, float]:
    return 111_320.0 * np.cos(np.radians(lat)), 110_574.0


def synthetic_box_grid(
    *,
    center: tuple[float, float] = TANGZI_HUTONG,
    nx: int = 40,
    ny: int = 40,
    size_m: float = 100.0,
) -> gpd.GeoDataFrame:
    """Build a small synthetic unit grid of ``size_m`` boxes around ``center`` (EPSG:4326).

    Columns follow the grid contract (``code``, ``community_code``, ``street_code``,
    ``district_code``, ``area_m2``, ``geometry``) plus ``synthetic=True``; communities
    are blocks of 10 x 10 cells under street 110102001, codes numbered west to east,
    north to south. For tests and demos before the sample city is at hand.
    """
    import geopandas as gpd
    import shapely

    if nx < 1 or ny < 1 or size_m <= 0:
        raise ValueError("nx, ny must be >= 1 and size_m > 0")
    mx, my = _metres_per_degree(center[1])
    dx, dy = size_m / mx, size_m / my
    x0 = center[0] - nx / 2 * dx
    y1 = center[1] + ny / 2 * dy
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny))  # jj: row from the north
    ii, jj = ii.ravel(), jj.ravel()
    geoms = shapely.box(x0 + ii * dx, y1 - (jj + 1) * dy, x0 + (ii + 1) * dx, y1 - jj * dy)
    comm = (jj // 10) * ((nx + 9) // 10) + ii // 10 + 1
    df = pd.DataFrame({"comm": comm, "row": jj, "col": ii})
    df["seq"] = df.sort_values(["comm", "row", "col"]).groupby("comm").cumcount() + 1
    community = np.array([f"110102001{c:03d}" for c in comm])
    codes = np.array([f"{c}{s:03d}" for c, s in zip(community, df["seq"], strict=True)])
    gdf = gpd.GeoDataFrame(
        {
            "code": codes,
            "community_code": community,
            "street_code": "110102001",
            "district_code": "110102",
            "area_m2": float(size_m * size_m),
            "synthetic": True,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    return gdf.sort_values("code").reset_index(drop=True)


def _points_in_cells(
    cells: gpd.GeoDataFrame, idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points inside the cells ``idx`` (rejection within the bounds)."""
    import shapely

    geoms = np.asarray(cells.geometry.values)
    b = shapely.bounds(geoms)
    lon = np.empty(len(idx))
    lat = np.empty(len(idx))
    todo = np.arange(len(idx))
    for _ in range(8):
        if len(todo) == 0:
            break
        bb = b[idx[todo]]
        x = rng.uniform(bb[:, 0], bb[:, 2])
        y = rng.uniform(bb[:, 1], bb[:, 3])
        ok = shapely.contains_xy(geoms[idx[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    if len(todo):  # slivers: fall back on a point surely inside
        rp = shapely.point_on_surface(geoms[idx[todo]])
        lon[todo], lat[todo] = shapely.get_x(rp), shapely.get_y(rp)
    return lon, lat


def _hours(start: Any, end: Any) -> pd.DatetimeIndex:
    hours = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="h", inclusive="left")
    if len(hours) == 0:
        raise ValueError(f"empty period: start={start!r} must be before end={end!r}")
    return hours


def _along(seg: tuple, n: int, rng: np.random.Generator, spread_m: float) -> tuple:
    (x0, y0), (x1, y1) = seg
    t = rng.uniform(0, 1, n)
    mx, my = _metres_per_degree(y0)
    return (
        x0 + t * (x1 - x0) + rng.normal(0, spread_m / mx, n),
        y0 + t * (y1 - y0) + rng.normal(0, spread_m / my, n),
    )


def synthetic_ebike_positions(
    cells: gpd.GeoDataFrame,
    *,
    seed: int = 20180410,
    start: Any = "2018-03-01",
    end: Any = "2018-06-01",
    background_rate: float = 0.01,
    street_rate: float = 2.0,
    lane_jam_weekday: float = 75.0,
    lane_jam_weekend: float = 115.0,
    lane_normal: float = 4.0,
    jam_start: Any = "2018-04-01",
    measure: Measure = TANGZI_MEASURE,
) -> pd.DataFrame:
    """Synthetic delivery e-bike sightings: one row per bike seen in one hour.

    Parameters
    ----------
    cells : GeoDataFrame
        The unit grid (EPSG:4326); background activity covers all of it.
    seed : int
    start, end : timestamp-like
        Period ``[start, end)``.
    background_rate : float
        Mean sightings per cell per hour at a meal peak, everywhere.
    street_rate : float
        Mean sightings per 100 m of the streets near 西单 per peak hour.
    lane_jam_weekday, lane_jam_weekend, lane_normal : float
        Mean bikes in 堂子胡同 per peak hour during the jam (weekday, weekend) and
        otherwise.
    jam_start : timestamp-like
        When the jam begins; it ends on ``measure.date``.

    Returns
    -------
    DataFrame
        ``lon``, ``lat`` (WGS84), ``time`` (naive Beijing wall-clock time, as
        `gridcore.heatmap` reads naive times: local), ``count`` (=1), ``source``
        ("lane", "street", "background"), ``synthetic`` (True); sorted by time.

    Examples
    --------
    ::

        ev = synthetic_ebike_positions(synthetic_box_grid())
    """
    rng = np.random.default_rng(seed)
    hours = _hours(start, end)
    prof = _PROFILE[hours.hour]
    weekend = hours.day_of_week >= 5
    jam = (hours >= pd.Timestamp(jam_start)) & (hours < measure.date)
    parts = []

    # The lane.
    level = np.where(jam, np.where(weekend, lane_jam_weekend, lane_jam_weekday), lane_normal)
    n_lane = rng.poisson(level * prof)
    lon, lat = _along(_LANE, int(n_lane.sum()), rng, spread_m=6.0)
    parts.append(
        pd.DataFrame({"lon": lon, "lat": lat, "time": np.repeat(hours, n_lane), "source": "lane"})
    )

    # Streets near 西单: steady, with meal peaks, busier at weekends.
    for seg in _XIDAN_STREETS.values():
        mx, my = _metres_per_degree(seg[0][1])
        length = np.hypot((seg[1][0] - seg[0][0]) * mx, (seg[1][1] - seg[0][1]) * my)
        mean = street_rate * length / 100 * prof * np.where(weekend, 1.3, 1.0)
        k = rng.poisson(mean)
        lon, lat = _along(seg, int(k.sum()), rng, spread_m=10.0)
        parts.append(
            pd.DataFrame({"lon": lon, "lat": lat, "time": np.repeat(hours, k), "source": "street"})
        )

    # Background everywhere.
    n_cells = len(cells)
    k = rng.poisson(background_rate * n_cells * prof)
    idx = rng.integers(0, n_cells, int(k.sum()))
    lon, lat = _points_in_cells(cells, idx, rng)
    parts.append(
        pd.DataFrame({"lon": lon, "lat": lat, "time": np.repeat(hours, k), "source": "background"})
    )

    out = pd.concat(parts, ignore_index=True)
    # Seconds within the hour, so times look like snapshots, not bin starts.
    out["time"] = out["time"] + pd.to_timedelta(rng.integers(0, 3600, len(out)), unit="s")
    out["count"] = 1
    out["synthetic"] = True
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def synthetic_noise_events(
    cells: gpd.GeoDataFrame,
    *,
    seed: int = 7,
    start: Any = "2018-03-01",
    end: Any = "2018-05-01",
    rate: float = 0.05,
) -> pd.DataFrame:
    """Pure-noise control: every cell-hour Poisson(``rate``), independent, no structure.

    The null hypothesis of the hotspot test holds exactly, so an alert on this set is a
    false alarm. Columns as :func:`synthetic_ebike_positions` (``source="noise"``).
    """
    rng = np.random.default_rng(seed)
    hours = _hours(start, end)
    n = len(cells)
    k = rng.poisson(rate * n, len(hours))  # total per hour, then cells uniformly
    idx = rng.integers(0, n, int(k.sum()))
    lon, lat = _points_in_cells(cells, idx, rng)
    t = np.repeat(hours, k) + pd.to_timedelta(rng.integers(0, 3600, int(k.sum())), unit="s")
    return pd.DataFrame(
        {"lon": lon, "lat": lat, "time": t, "count": 1, "source": "noise", "synthetic": True}
    )


#: Event classes of the synthetic hotline cases: legacy 4-digit codes with names.
#: 9001 is a synthetic code for hotline housing complaints (no legacy grid class).
HOTLINE_CLASSES = {
    "0101": "私搭乱建",
    "0102": "暴露垃圾",
    "0104": "道路不洁",
    "0107": "废弃车辆",
    "0201": "非法小广告",
    "0301": "施工扰民",
    "0302": "工地扬尘",
    "0401": "路面塌陷",
    "0404": "下水道堵塞",
    "0501": "无照经营游商",
    "0504": "店外经营",
    "0505": "机动车乱停放",
    "0506": "非机动车乱停放",
    "0508": "商业噪音",
    "9001": "房屋修缮（热线，合成类别）",
}

_TEMPLATES = {
    "0101": ["{p}有人私搭乱建彩钢房", "{p}院内违章搭建棚子"],
    "0102": ["{p}路边垃圾堆放多日无人清理", "{p}垃圾桶满溢暴露垃圾"],
    "0104": ["{p}路面脏乱有油污", "{p}人行道落叶垃圾未清扫"],
    "0107": ["{p}有废弃自行车长期占道", "{p}僵尸车停放多月"],
    "0201": ["{p}墙上贴满小广告", "{p}电线杆上有办证小广告"],
    "0301": ["{p}工地夜间施工噪音扰民", "{p}凌晨施工影响休息"],
    "0302": ["{p}工地扬尘大未覆盖", "{p}渣土车遗撒扬尘"],
    "0401": ["{p}路面出现塌陷坑", "{p}井盖周边路面下沉"],
    "0404": ["{p}下水道堵塞污水外溢", "{p}雨水篦子堵塞积水"],
    "0501": ["{p}有流动摊贩占道经营", "{p}夜间游商聚集"],
    "0504": ["{p}商户店外摆摊经营", "{p}饭馆占道摆桌"],
    "0505": ["{p}机动车乱停占用消防通道", "{p}路口机动车违停"],
    "0506": ["{p}外卖电动车乱停堵塞胡同", "{p}共享单车乱停放"],
    "0508": ["{p}商铺外放音响噪音大", "{p}广场舞音响扰民"],
}
_LEAK = [
    "{p}{b}号楼{u}单元{r}室顶层屋顶漏雨，雨天屋内渗水",
    "{p}{b}号楼{u}单元{r}室反映房顶漏水，墙面发霉",
    "{p}{b}号楼{u}单元{r}室平房屋面漏雨，请求修缮",
    "{p}{b}号楼{u}单元{r}室卫生间渗水至楼下",  # a leak, but not the roof
]


def synthetic_hotline_cases(
    cells: gpd.GeoDataFrame,
    *,
    seed: int = 12345,
    start: Any = "2017-05-01",
    end: Any = "2018-05-01",
    n_cases: int = 20_000,
    n_old_compounds: int = 6,
    leak_share: float = 0.08,
) -> pd.DataFrame:
    """Generate a year of synthetic hotline (12345) cases for the whole city.

    Most cases are street-order and environment classes spread over the city. Leaking
    roofs (class 9001, descriptions with 漏雨/漏水/渗水) concentrate in a few old
    compounds, mostly in the rainy months (June-September), with repeat complaints from
    the same household; some are scattered.

    Returns
    -------
    DataFrame
        ``case_id`` (``SYN-...``), ``reported_at`` (naive Beijing wall-clock time, which
        `gridcore.cases` also reads naive times as), ``lon``, ``lat`` (WGS84),
        ``event_class`` (4-digit str), ``class_name``, ``description`` (Chinese),
        ``household`` (str or None), ``status`` ("resolved"/"unresolved"),
        ``place`` (synthetic compound name or None), ``synthetic`` (True).

    Examples
    --------
    ::

        cases = synthetic_hotline_cases(synthetic_box_grid())
    """
    import shapely

    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    if t1 <= t0 or n_cases < 1:
        raise ValueError("need start < end and n_cases >= 1")
    span = (t1 - t0).total_seconds()
    n_leak = int(round(n_cases * leak_share))
    n_other = n_cases - n_leak
    n_cells = len(cells)

    # Ordinary cases, uniformly over cells and time.
    classes = [c for c in _TEMPLATES]
    cls = rng.choice(classes, n_other)
    lon, lat = _points_in_cells(cells, rng.integers(0, n_cells, n_other), rng)
    desc = [rng.choice(_TEMPLATES[c]).format(p="") for c in cls]
    other = pd.DataFrame(
        {
            "reported_at": t0 + pd.to_timedelta(rng.uniform(0, span, n_other), unit="s"),
            "lon": lon,
            "lat": lat,
            "event_class": cls,
            "description": desc,
            "household": None,
            "place": None,
        }
    )

    # Old compounds (centres inside random cells) where the roofs leak.
    cen = rng.choice(n_cells, n_old_compounds, replace=False)
    reps = shapely.point_on_surface(np.asarray(cells.geometry.values)[cen])
    cx, cy = shapely.get_x(reps), shapely.get_y(reps)
    names = [f"合成老旧小区{i + 1}" for i in range(n_old_compounds)]
    in_compound = rng.uniform(size=n_leak) < 0.85
    comp = rng.integers(0, n_old_compounds, n_leak)
    mx, my = _metres_per_degree(float(np.mean(cy)))
    # Households: a limited pool per compound, so households repeat complaints.
    bld = rng.integers(1, 9, n_leak)
    unit = rng.integers(1, 4, n_leak)
    room = rng.choice([501, 502, 601, 602, 101, 102], n_leak)
    llon = np.where(in_compound, cx[comp] + rng.normal(0, 40, n_leak) / mx, np.nan)
    llat = np.where(in_compound, cy[comp] + rng.normal(0, 40, n_leak) / my, np.nan)
    scattered = ~in_compound
    slon, slat = _points_in_cells(cells, rng.integers(0, n_cells, int(scattered.sum())), rng)
    llon[scattered], llat[scattered] = slon, slat
    place = np.where(in_compound, np.array(names)[comp], None)
    pname = np.where(in_compound, np.array(names)[comp], "某小区")
    tmpl = rng.choice(len(_LEAK), n_leak, p=[0.45, 0.3, 0.15, 0.1])
    ldesc = [
        _LEAK[k].format(p=p, b=b, u=u, r=r)
        for k, p, b, u, r in zip(tmpl, pname, bld, unit, room, strict=True)
    ]
    hh = [
        f"{p}-{b}-{u}-{r}" if c else None
        for c, p, b, u, r in zip(in_compound, pname, bld, unit, room, strict=True)
    ]
    # Rainy months get most leak complaints.
    days = pd.date_range(t0, t1, freq="D", inclusive="left")
    wet = np.where(days.month.isin([6, 7, 8, 9]), 6.0, 1.0)
    day = rng.choice(len(days), n_leak, p=wet / wet.sum())
    leak = pd.DataFrame(
        {
            "reported_at": days[day] + pd.to_timedelta(rng.uniform(0, 86400, n_leak), unit="s"),
            "lon": llon,
            "lat": llat,
            "event_class": "9001",
            "description": ldesc,
            "household": hh,
            "place": place,
        }
    )

    out = pd.concat([other, leak], ignore_index=True)
    out = out.sort_values("reported_at", kind="stable").reset_index(drop=True)
    out.insert(0, "case_id", [f"SYN-{t:%Y%m%d}-{i:06d}" for i, t in enumerate(out["reported_at"])])
    out["class_name"] = out["event_class"].map(HOTLINE_CLASSES)
    # Leaks in old compounds go unresolved more often (the Daxing backlog).
    p_unres = np.where(out["event_class"] == "9001", 0.6, 0.1)
    out["status"] = np.where(rng.uniform(size=len(out)) < p_unres, "unresolved", "resolved")
    out["synthetic"] = True
    return out[
        [
            "case_id",
            "reported_at",
            "lon",
            "lat",
            "event_class",
            "class_name",
            "description",
            "household",
            "place",
            "status",
            "synthetic",
        ]
    ]


#: Name under which the synthetic e-bike sample's alerts are stored.
SAMPLE_ALERTS_DATASET = "synthetic-ebikes-2018"


_ALERTS_CACHE: dict[tuple, list] = {}


def _grid_key(cells: gpd.GeoDataFrame) -> tuple:
    import hashlib

    codes = "\n".join(cells["code"].astype(str)).encode()
    return (len(cells), hashlib.sha1(codes).hexdigest(), tuple(np.round(cells.total_bounds, 7)))


def sample_alerts(cells: gpd.GeoDataFrame, *, seed: int = 20180410) -> list:
    """Return the alerts of the synthetic e-bike sample on ``cells`` (memoised per grid).

    Generates :func:`synthetic_ebike_positions` on ``cells`` (March-May 2018) and scans
    from 15 March (two weeks of history for the baselines). The first call on a grid
    takes seconds (locator, weights, scan); later calls on the same grid (by codes and
    bounds) in the process return the same alerts at once.
    """
    from gridcore.heatmap import hotspot_alerts, scan_hotspots

    key = (*_grid_key(cells), seed)
    if key not in _ALERTS_CACHE:
        events = synthetic_ebike_positions(cells, seed=seed)
        _ALERTS_CACHE.clear()
        _ALERTS_CACHE[key] = hotspot_alerts(scan_hotspots(events, cells, start="2018-03-15"))
    return list(_ALERTS_CACHE[key])


def seed_sample_alerts(store: Any, cells: gpd.GeoDataFrame, *, seed: int = 20180410) -> int:
    """Store the alerts of the synthetic e-bike sample (:func:`sample_alerts`); return how many.

    Replaces the stored alerts of :data:`SAMPLE_ALERTS_DATASET`.

    Parameters
    ----------
    store : SQLiteStore
        Anything with ``replace_heat_alerts(dataset, alerts)``.
    cells : GeoDataFrame
        The current unit grid.
    seed : int
    """
    return store.replace_heat_alerts(SAMPLE_ALERTS_DATASET, sample_alerts(cells, seed=seed))


# --------------------------------------------------------------------------- realistic counts
#
# A simulator of hourly counts closer to a real city than the story above, for calibrating
# the surge detector (`gridcore.heatmap.scan_surges`) and measuring its power. It is
# deliberately *not* the detector's own model: cell rhythms differ (a mix of a meal-peak
# and a commute profile per cell), busyness moves by day city-wide *and* by region, cells
# drift slowly from week to week, counts in one cell on one day share a random effect,
# and the noise per cell-hour is negative binomial.


@dataclass(frozen=True)
class SimulatedCounts:
    """Hourly counts on a lattice of cells (synthetic), with what was planted in them.

    ``counts`` is ``(hours, cells)`` int; ``mean`` the rate each cell-hour was drawn from
    (rhythm, shocks, drift and planted effects, before the negative binomial noise);
    ``level`` each cell's persistent effect (mean events per hour over a week);
    ``adjacency`` the queen neighbours (sparse, no diagonal); ``hours`` the city's
    wall-clock hours (naive); ``surges`` the planted surges as ``(cell, first hour
    position, hours, factor)``; ``chronic`` the cells held above their neighbours.
    """

    counts: np.ndarray
    mean: np.ndarray
    level: np.ndarray
    adjacency: Any
    hours: pd.DatetimeIndex
    nrows: int
    ncols: int
    shape: float
    surges: tuple[tuple[int, int, int, float], ...]
    chronic: tuple[int, ...]

    @property
    def codes(self) -> np.ndarray:
        """Synthetic 15-digit cell codes, one per lattice cell (row-major)."""
        return np.array([f"110102001{1 + i // 1000:03d}{i % 1000:03d}"
                         for i in range(self.nrows * self.ncols)])


def lattice_adjacency(nrows: int, ncols: int) -> Any:
    """Queen adjacency (8 neighbours, no diagonal) of a ``nrows x ncols`` lattice, row-major.

    Examples
    --------
    >>> int(lattice_adjacency(3, 3)[4].sum())
    8
    """
    from scipy import sparse

    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1; got {nrows} x {ncols}")
    r, c = np.divmod(np.arange(nrows * ncols), ncols)
    src, dst = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            rr, cc = r + dr, c + dc
            ok = (rr >= 0) & (rr < nrows) & (cc >= 0) & (cc < ncols)
            src.append(np.flatnonzero(ok))
            dst.append((rr * ncols + cc)[ok])
    i, j = np.concatenate(src), np.concatenate(dst)
    n = nrows * ncols
    return sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))


# Hour-of-day shapes of two kinds of place (relative; normalised below).
_MEAL = np.array([.05, .03, .02, .02, .02, .04, .10, .25, .35, .35, .60, 1.9, 2.0, .9,
                  .45, .40, .55, 1.8, 2.0, 1.0, .60, .40, .20, .10])
_COMMUTE = np.array([.10, .05, .04, .04, .08, .20, .60, 1.4, 1.6, .90, .70, .80, .90, .80,
                     .70, .70, .90, 1.4, 1.6, 1.2, 1.0, .80, .50, .25])


def realistic_counts(
    nrows: int = 50,
    ncols: int = 50,
    *,
    days: int = 35,
    start: Any = "2018-03-05",
    shape: float = 10.0,
    seed: int = 0,
    median_level: float = 0.3,
    level_sigma: float = 1.35,
    day_shock_sd: float = 0.15,
    region_shock_sd: float = 0.06,
    drift_sd: float = 0.04,
    cell_day_shape: float = 100.0,
    surges: Any = (),
    chronic: Any = (),
    chronic_factor: float = 6.0,
) -> SimulatedCounts:
    """Simulate hourly event counts on a lattice of cells (synthetic, deterministic by seed).

    Parameters
    ----------
    nrows, ncols : int
        The lattice (cells are row-major; queen neighbours).
    days : int
        Length, from ``start`` (a city wall-clock midnight).
    shape : float
        Negative binomial shape per cell-hour (variance ``mu + mu**2 / shape``); ~10 is
        ordinary, 2 heavy.
    seed : int
    median_level, level_sigma : float
        Persistent cell effects: lognormal, median ``median_level`` events per hour (week
        average), log-sd ``level_sigma``, mildly smoothed in space. With the defaults a
        few percent of cells reach 10+ events an hour at meal peaks.
    day_shock_sd, region_shock_sd : float
        Log-sd of a city-wide factor per day and of a factor per day in each of four
        quadrants.
    drift_sd : float
        Log-sd of each cell's linear drift per week.
    cell_day_shape : float
        Gamma shape of a factor shared by a cell's hours in one day.
    surges : sequence of (cell, first_hour, hours, factor)
        Planted surges: the rate of ``cell`` multiplied by ``factor`` for ``hours``
        hours from hour position ``first_hour``.
    chronic : sequence of int
        Cells whose level is ``chronic_factor`` times their neighbours' mean level,
        all the time.

    Returns
    -------
    SimulatedCounts

    Examples
    --------
    ::

        sim = realistic_counts(40, 40, days=35, shape=2, seed=1)
        sim.counts.shape
        # (840, 1600)
    """
    if shape <= 0 or days < 1:
        raise ValueError(f"shape must be > 0 and days >= 1; got shape={shape}, days={days}")
    rng = np.random.default_rng(seed)
    n = nrows * ncols
    adj = lattice_adjacency(nrows, ncols)
    deg = np.asarray(adj.sum(1)).ravel()
    z = rng.standard_normal(n)
    z = z + 0.6 * (adj @ z) / deg
    z = (z - z.mean()) / z.std()
    level = median_level * np.exp(level_sigma * z)
    chronic = tuple(int(c) for c in chronic)
    for c in chronic:
        nb = adj.indices[adj.indptr[c]:adj.indptr[c + 1]]
        level[c] = chronic_factor * level[nb].mean()

    hours = pd.date_range(pd.Timestamp(start).normalize(), periods=days * 24, freq="h")
    hod = hours.hour.to_numpy()
    weekend = hours.day_of_week.to_numpy() >= 5
    meal = np.where(weekend, 1.3, 1.0)[:, None] * _MEAL[hod][:, None]
    commute = np.where(weekend, 0.75, 1.0)[:, None] * _COMMUTE[hod][:, None]
    mix = rng.beta(2, 2, n)[None, :]
    rhythm = mix * meal / _MEAL.mean() + (1 - mix) * commute / _COMMUTE.mean()

    day = (np.arange(len(hours)) // 24)
    city = np.exp(rng.normal(0, day_shock_sd, days))[day]
    r, c = np.divmod(np.arange(n), ncols)
    quad = (r >= nrows / 2).astype(int) * 2 + (c >= ncols / 2).astype(int)
    region = np.exp(rng.normal(0, region_shock_sd, (days, 4)))[day][:, quad]
    week = np.arange(len(hours)) / (24 * 7)
    drift = np.exp(np.outer(week - week.mean(), rng.normal(0, drift_sd, n)))
    cell_day = rng.gamma(cell_day_shape, 1 / cell_day_shape, (days, n))[day]
    mean = level[None, :] * rhythm * city[:, None] * region * drift * cell_day

    planted = []
    for cell, first, length, factor in surges:
        cell, first, length = int(cell), int(first), int(length)
        if not (0 <= cell < n and 0 <= first and first + length <= len(hours)):
            raise ValueError(f"surge {(cell, first, length)} lies outside the lattice or days")
        mean[first:first + length, cell] *= float(factor)
        planted.append((cell, first, length, float(factor)))
    counts = rng.poisson(mean * rng.gamma(shape, 1 / shape, mean.shape)).astype(np.int32)
    return SimulatedCounts(counts=counts, mean=mean, level=level, adjacency=adj, hours=hours,
                           nrows=nrows, ncols=ncols, shape=float(shape), surges=tuple(planted),
                           chronic=chronic)
