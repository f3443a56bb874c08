"""A synthetic component census (部件普查) for the sample city.

No real component inventory is public, so the sample city gets a deterministic synthetic
one, labelled ``synthetic=True`` on every row. Its shape follows the published figures:
Dongcheng's 2004 census held about 168,000 components in 42 km² (4,000 per km²); the
old city (Dongcheng, Xicheng) is dense, and density falls off with distance from
Tian'anmen across Fengtai. The class mix is our reading: manhole covers and street trees
dominate, old-city hutongs have more public toilets and ancient trees, Fengtai more
building sites and car parks.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from gridcore.components import (
    COMPONENT_COLUMNS,
    ClassTable,
    CodeLayout,
    ComponentSource,
    ComponentStatus,
    assign_component_codes,
    legacy_class_table,
    load_departments,
)
from gridcore.crs import wgs84_to_projected

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["CLASS_MIX", "DEFAULT_SIZE", "MAX_SIZE", "synthesise_components"]

DEFAULT_SIZE = 500_000
MAX_SIZE = 5_000_000

# Share of each legacy class (percent, before the zone factors), our reading.
CLASS_MIX: dict[str, float] = {
    "0101": 10, "0102": 10, "0103": 8, "0104": 10, "0105": 6, "0107": 8, "0110": 4,
    "0111": 4, "0113": 2, "0118": 8, "0121": 0.3, "0123": 0.2,
    "0201": 0.5, "0203": 0.5, "0209": 3, "0210": 1, "0211": 3, "0212": 1.5, "0213": 2,
    "0301": 0.3, "0304": 0.3, "0305": 4, "0307": 4,
    "0401": 0.4, "0402": 12, "0406": 0.1, "0407": 1,
    "0501": 1, "0602": 0.1,
}
_OLD_CITY = ("110101", "110102")
_OLD_CITY_FACTOR = {"0301": 2.0, "0401": 3.0, "0602": 0.3, "0201": 0.6}
_OUTER_FACTOR = {"0602": 3.0, "0201": 1.5, "0401": 0.3}
_STATUS_SHARE = {
    ComponentStatus.INTACT: 0.92, ComponentStatus.DAMAGED: 0.04, ComponentStatus.LOST: 0.01,
    ComponentStatus.ABANDONED: 0.02, ComponentStatus.REMOVED: 0.01,
}
_SOURCE_SHARE = {
    ComponentSource.SURVEYED: 0.80, ComponentSource.TOPOGRAPHIC_MAP: 0.15,
    ComponentSource.OTHER: 0.05,
}
_ACCURACY_M = {  # uniform range of positional accuracy by source
    ComponentSource.SURVEYED: (0.05, 0.5),
    ComponentSource.TOPOGRAPHIC_MAP: (0.5, 2.5),
    ComponentSource.OTHER: (2.0, 10.0),
}
_FIRST_CENSUS_YEAR = {"110101": 2004, "110102": 2005}  # others: 2006
_CENTRE_WGS84 = (116.3975, 39.9087)  # Tian'anmen
_LAST_DAY = _dt.date(2026, 6, 30)


def _cell_density(cells: gpd.GeoDataFrame) -> np.ndarray:
    """Relative components per km² of each cell: flat to 5 km from the centre, then falling.

    Tuned so that the default 500,000 components put about 170,000 in Dongcheng's
    42 km², the 2004 census figure (168,000).
    """
    rp = shapely.point_on_surface(cells.geometry.values)
    x, y = wgs84_to_projected(shapely.get_x(rp), shapely.get_y(rp))
    cx, cy = wgs84_to_projected([_CENTRE_WGS84[0]], [_CENTRE_WGS84[1]])
    r_km = np.hypot(x - cx[0], y - cy[0]) / 1000
    return 4500 * np.exp(-np.maximum(r_km - 5, 0) / 2.5) + 120


def synthesise_components(
    cells: gpd.GeoDataFrame,
    *,
    n: int = DEFAULT_SIZE,
    seed: int = 2004,
    table: ClassTable | None = None,
) -> gpd.GeoDataFrame:
    """Generate a deterministic synthetic component census over a grid.

    Parameters
    ----------
    cells : geopandas.GeoDataFrame
        Unit grid cells (EPSG:4326) with ``code``, ``district_code`` and ``area_m2``
        (computed in EPSG:4548 when missing).
    n : int
        Number of components, 1..5,000,000 (default 500,000).
    seed : int
        Random seed; the same seed, grid and ``n`` give the same census.
    table : ClassTable, optional
        Class table of the codes: the legacy table (16-digit IDs, default) or the
        GB/T 47678.5 table (17-digit IDs, classes mapped via ``legacy_class_code``).

    Returns
    -------
    geopandas.GeoDataFrame
        Components in the schema :data:`gridcore.components.COMPONENT_COLUMNS`, Points in
        EPSG:4326, ``synthetic`` True, sorted by code. Each point lies strictly inside
        its cell.

    Raises
    ------
    ValueError
        ``n`` outside 1..5,000,000, or cells without ``code``/``district_code``.

    Examples
    --------
    ::

        census = synthesise_components(city.cells, n=300_000)
    """
    import geopandas as gpd

    if not 1 <= n <= MAX_SIZE:
        raise ValueError(f"n must be 1..{MAX_SIZE:,} components, got {n}")
    for col in ("code", "district_code"):
        if col not in cells.columns:
            raise ValueError(f"cells need a {col!r} column")
    table = table or legacy_class_table()
    rng = np.random.default_rng(seed)
    geoms = np.asarray(cells.geometry.values, dtype=object)
    area = (cells["area_m2"].to_numpy(dtype=np.float64) if "area_m2" in cells.columns
            else cells.to_crs(4548).area.to_numpy())
    district = cells["district_code"].astype(str).to_numpy(dtype=object)

    # how many per cell: density x area, multinomial
    weight = _cell_density(cells) * area
    per_cell = rng.multinomial(n, weight / weight.sum())
    cell = np.repeat(np.arange(len(cells)), per_cell)
    lon, lat = _points_in_cells(geoms, cell, rng)

    # class by zone
    legacy = np.array(list(CLASS_MIX), dtype=object)
    old = np.isin(district[cell], _OLD_CITY)
    cls = np.empty(n, dtype=object)
    for zone, factor in ((old, _OLD_CITY_FACTOR), (~old, _OUTER_FACTOR)):
        p = np.array([CLASS_MIX[c] * factor.get(c, 1.0) for c in legacy])
        cls[zone] = legacy[rng.choice(len(legacy), zone.sum(), p=p / p.sum())]
    if table.layout is CodeLayout.GBT17:
        to_new = pd.Series(table.classes.index.to_numpy(),
                           index=table.classes["legacy_class_code"].to_numpy())
        cls = to_new.reindex(cls).to_numpy(dtype=object)

    # rows in code order: by district, class, then a stable spatial order (cell, north
    # to south, west to east), which is also the order serials are numbered in
    d_idx = pd.factorize(district, sort=True)[0][cell]
    c_idx = pd.factorize(cls, sort=True)[0]
    order = np.lexsort((lon, -lat, cell, c_idx, d_idx))
    cell, cls, lon, lat = cell[order], cls[order], lon[order], lat[order]
    codes = assign_component_codes(district[cell], cls, table=table)

    status = _choose(rng, _STATUS_SHARE, n)
    source = _choose(rng, _SOURCE_SHARE, n)
    accuracy = np.empty(n)
    for s, (lo, hi) in _ACCURACY_M.items():
        m = source == s.value
        accuracy[m] = np.round(rng.uniform(lo, hi, m.sum()), 2)
    first, change = _dates(rng, district[cell])

    depts = load_departments()
    dept_code = table.classes["dept_code"].reindex(cls).to_numpy(dtype=object)
    dept_name = depts["dept_name"].reindex(dept_code).to_numpy(dtype=object)
    frame = {
        "code": codes,
        "name": table.classes["name"].reindex(cls).to_numpy(dtype=object),
        "class_code": cls,
        "dept_code": dept_code,
        "dept_name": dept_name,
        "owner": dept_name,
        "maintainer": dept_name + "养护所",
        "cell_code": cells["code"].astype(str).to_numpy(dtype=object)[cell],
        "status": status,
        "first_survey_date": first,
        "change_date": change,
        "source": source,
        "accuracy_m": accuracy,
        "synthetic": np.ones(n, dtype=bool),
    }
    assert list(frame) == list(COMPONENT_COLUMNS)
    return gpd.GeoDataFrame(frame, geometry=shapely.points(lon, lat), crs="EPSG:4326")


def _choose(rng: np.random.Generator, shares: dict, n: int) -> np.ndarray:
    labels = np.array([k.value for k in shares], dtype=object)
    p = np.array(list(shares.values()))
    return labels[rng.choice(len(labels), n, p=p / p.sum())]


def _dates(rng: np.random.Generator, district: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    start_year = pd.Series(district).map(_FIRST_CENSUS_YEAR).fillna(2006).to_numpy(dtype=int)
    start = (start_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    last = np.datetime64(_LAST_DAY, "D")
    # most components entered at the district's first census, the rest since
    span = (last - start).astype(np.int64)
    at_census = rng.uniform(size=len(district)) < 0.7
    offset = np.where(at_census, rng.integers(0, 365, len(district)),
                      (rng.uniform(size=len(district)) * span).astype(np.int64))
    first = start + offset.astype("timedelta64[D]")
    changed = rng.uniform(size=len(district)) < 0.3
    later = (rng.uniform(size=len(district)) * (last - first).astype(np.int64)).astype(np.int64)
    change = first + np.where(changed, later, 0).astype("timedelta64[D]")
    return first.astype("datetime64[s]"), change.astype("datetime64[s]")


def _points_in_cells(
    geoms: np.ndarray, cell: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points strictly inside each given cell, by vectorised rejection."""
    bounds = shapely.bounds(geoms)
    shapely.prepare(geoms)
    lon = np.empty(len(cell))
    lat = np.empty(len(cell))
    todo = np.arange(len(cell))
    for _ in range(200):
        if len(todo) == 0:
            break
        b = bounds[cell[todo]]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        ok = shapely.contains_xy(geoms[cell[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    if len(todo):  # pathological slivers: fall back to a point on the surface
        rp = shapely.point_on_surface(geoms[cell[todo]])
        lon[todo], lat[todo] = shapely.get_x(rp), shapely.get_y(rp)
    return lon, lat
