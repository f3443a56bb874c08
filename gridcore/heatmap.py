"""Heat maps that raise alerts: events binned by cell and hour, Gi* hotspots, FDR control.

A coloured heat layer is a picture; an alert must be a claim a statistician would sign.
This module turns events (reports, sensor or platform counts such as delivery e-bike
positions) into such claims in three steps:

1. **Aggregation**: each event (WGS84 lon/lat, a timestamp, optionally a count) is put in
   its unit grid cell and time bin (hour, hour of week, day). Where unit cells are too
   coarse or too unequal in area, the same events go to an H3 analysis layer. Hours and
   days are the city's wall-clock ones (meal peaks are local): aware timestamps are
   read in the city's time zone (``tz``, default `gridcore._time.city_tz`, Asia/Shanghai),
   naive ones are taken as already local.
2. **Where is it hot now?** Local Getis-Ord Gi* over the cells (binary queen contiguity,
   the cell itself included), one test per cell and hour, with the false discovery rate
   controlled by Benjamini-Hochberg over *all* cell-hours of the scan.
3. **Is it new?** A hot cell becomes an alert only if the count in its neighbourhood is
   well above its own baseline: the median at the same hour of week over the previous
   weeks. Recurrence (hot at the same hour of week in earlier weeks) is reported.

The scan above is the first method, kept for the 堂子胡同 notebook and the stored
sample alerts. Its null (every cell Poisson at the city mean of the hour) makes a
persistently busy cell "hot" at every peak. The alerts meant for a street office come
from the second half of this module: :func:`scan_surges` (each cell against its own
history, overdispersion measured, a recurrence interval per alert), :func:`chronic_hotspots`
(cells persistently above their neighbours, with an emerging hot-spot category) and
:func:`compare` (before/after as a difference in differences against chosen controls);
:func:`scan_alerts` runs the first two on events and a unit grid.

Choices, and why
----------------
*Weights*: binary queen contiguity over the cell polygons (touching polygons are
neighbours, found by intersection rather than libpysal's exact vertex matching, which
misses cells meeting at a community line; see :func:`cell_weights`). Unit cells tile the
city with no gap, so every cell has neighbours and no distance threshold has to be
tuned; on a regular 100 m lattice queen is the 3x3 block, and on irregular cells
(clipped at a community line, larger park cells) it still follows adjacency. A distance
band would leave large cells as islands or give small cells dozens of neighbours.

*Counts*: Gi* on counts treats cells as exchangeable, which holds for cells of about
equal area (the 100 m unit grid, bar slivers). Where cells are too coarse or too
unequal, scan the H3 layer instead (:func:`h3_cells_frame`, :func:`h3_weights`).

*z*: Gi* by the Getis-Ord (1995) formula, vectorised over all hours at once with a sparse
matrix product. It equals ``esda.G_Local(y, w, transform="B", star=True).Zs`` (the
tests check this on a lattice, and the bench times both).

*p*: the default ``pvalue="poisson"`` is the exact upper tail of the Gi* numerator (the
count summed over the cell and its neighbours) under the null that every cell's count in
that hour is Poisson with the city mean of that hour. Gi* is a monotone function of that
sum, so this is an exact p-value for the same statistic. The normal p-value (esda's
``p_norm``) is far too small for sparse counts: with a mean of 0.05 per cell-hour, a sum
of 6 over 9 cells has a normal p near 1e-8 but a true tail of 4e-4, so Benjamini-Hochberg
over millions of cell-hours would flag pure noise (a test shows it). Permutation
p-values cannot help: their floor 1/(permutations + 1) is far above any FDR threshold
over 40,000 cells. ``pvalue="normal"`` stays available for dense, continuous inputs.

*FDR*: our own Benjamini-Hochberg returning q-values (adjusted p), because an alert
reports its q; it agrees with ``esda.fdr`` (tested). One family per scan: per-hour
families would let false alerts accumulate over hundreds of hours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse, special

from gridcore._time import city_tz
from gridcore.errors import CoordinateError, DataFileError, GeometryError, InvalidValueError

if TYPE_CHECKING:  # pragma: no cover
    from zoneinfo import ZoneInfo

    import geopandas as gpd

__all__ = [
    "Alert",
    "BeforeAfter",
    "Contiguity",
    "MEAL_PEAK_HOURS",
    "HotspotScan",
    "PValue",
    "TimeBin",
    "AlertKind",
    "Baseline",
    "ScanAlert",
    "Trend",
    "aggregate_events",
    "alert_to_case",
    "aggregate_events_h3",
    "benjamini_hochberg",
    "chronic_hotspots",
    "Comparison",
    "compare",
    "compare_counts",
    "cell_weights",
    "compare_before_after",
    "counts_to_matrix",
    "events_to_cell_positions",
    "events_to_counts",
    "events_to_h3",
    "expected_counts",
    "gi_star",
    "h3_cells_frame",
    "h3_weights",
    "hotspot_alerts",
    "read_events_file",
    "recurring_hotspots",
    "scan_hotspots",
    "scan_alerts",
    "scan_surges",
    "times_to_bins",
]

HOURS_PER_WEEK = 168
_SCREEN_P = 0.05  # cell-hours with a larger p are not listed in a scan's table
_WEEKDAYS_ZH = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
_WEEKDAYS_EN = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class TimeBin(StrEnum):
    """How timestamps are binned."""

    HOUR = "hour"
    HOUR_OF_WEEK = "hour_of_week"
    DAY = "day"


class PValue(StrEnum):
    """How the p-value of a Gi* z is obtained (see the module notes)."""

    POISSON = "poisson"
    NORMAL = "normal"


def _enum(enum_cls: type[StrEnum], value: Any, name: str) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in enum_cls)
        raise ValueError(f"{name}={value!r} is not valid; use one of {valid}") from None


# --------------------------------------------------------------------------- validation


def _check_lonlat(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    from gridcore.crs import validate_lonlat

    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise CoordinateError(
            f"lon and lat must be 1-D arrays of one length; got shapes {lon.shape} and {lat.shape}"
        )
    validate_lonlat(lon, lat)
    return lon, lat


def _wall(t: Any, tz: str | ZoneInfo | None = None) -> pd.Timestamp:
    """Return a timestamp as the city's naive wall-clock time (aware ones converted)."""
    t = pd.Timestamp(t)
    return t.tz_convert(city_tz(tz)).tz_localize(None) if t.tzinfo is not None else t


def _check_events(
    events: pd.DataFrame, *, count: str | None = "count", crs: str = "wgs84",
    tz: str | ZoneInfo | None = None,
) -> pd.DataFrame:
    if not isinstance(events, pd.DataFrame):
        raise DataFileError(
            f"events must be a pandas DataFrame with columns lon, lat, time; got "
            f"{type(events).__name__}"
        )
    missing = [c for c in ("lon", "lat", "time") if c not in events.columns]
    if missing:
        raise DataFileError(
            f"events lack column(s) {missing}; expected lon, lat (WGS84 degrees), time "
            f"(timestamps) and optionally {count!r}; got {list(events.columns)}"
        )
    if len(events) == 0:
        raise DataFileError("events is empty; at least one event is needed to bin")
    lon, lat = _check_lonlat(events["lon"].to_numpy(), events["lat"].to_numpy())
    if crs != "wgs84":
        from gridcore.crs import to_wgs84

        lon, lat = to_wgs84(lon, lat, crs=crs)
    try:
        times = pd.to_datetime(events["time"])
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"events.time is not readable as timestamps: {exc}") from None
    if times.isna().any():
        raise DataFileError(
            f"events.time has {int(times.isna().sum())} missing timestamps; every event needs one"
        )
    if getattr(times.dt, "tz", None) is not None:
        # Local wall-clock hours (meal peaks) are what matter: keep city time, naive.
        times = times.dt.tz_convert(city_tz(tz)).dt.tz_localize(None)
    out = pd.DataFrame({"lon": lon, "lat": lat, "time": times.to_numpy()})
    if count is not None and count in events.columns:
        w = events[count].to_numpy(dtype=float)
        if not np.isfinite(w).all() or (w < 0).any():
            raise DataFileError(f"events.{count} must be finite and non-negative")
        out["count"] = w
    else:
        out["count"] = 1.0
    return out


# --------------------------------------------------------------------------- cells


def _strtree_locator(cells: gpd.GeoDataFrame) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Point -> cell position via a shapely STRtree (the seam for ``CellLocator``)."""
    import shapely

    geoms = np.asarray(cells.geometry.values)
    tree = shapely.STRtree(geoms)

    def locate(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        pts = shapely.points(lon, lat)
        src, tgt = tree.query(pts, predicate="intersects")
        out = np.full(len(lon), -1, dtype=np.int64)
        # A point on a shared edge touches two cells: take the lowest position, so the
        # answer does not depend on query order.
        order = np.lexsort((tgt, src))
        src, tgt = src[order], tgt[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        out[src[first]] = tgt[first]
        return out

    return locate


_LOCATORS: dict[int, tuple[Any, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {}


def _default_locator(cells: gpd.GeoDataFrame) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Return the fast raster locator of `gridcore.sindex`, built once per cells frame."""
    import weakref

    key = id(cells)
    hit = _LOCATORS.get(key)
    if hit is not None and hit[0]() is cells:
        return hit[1]
    try:
        from gridcore.sindex import CellLocator
    except ImportError:  # pragma: no cover - the seam kept for a grid without sindex
        locate = _strtree_locator(cells)
    else:
        locate = CellLocator(cells).locate
    _LOCATORS.clear()  # one grid at a time is the common case; keep memory flat
    _LOCATORS[key] = (weakref.ref(cells), locate)
    return locate


def _check_cells(cells: gpd.GeoDataFrame) -> None:
    if len(cells) == 0:
        raise GeometryError("cells is empty; pass the unit grid GeoDataFrame")
    if "code" not in cells.columns:
        raise DataFileError(f"cells lack a 'code' column; got {list(cells.columns)}")
    crs = getattr(cells, "crs", None)
    if crs is not None and crs.to_epsg() != 4326:
        raise GeometryError(f"cells must be in EPSG:4326 (WGS84); got {crs}")


def events_to_cell_positions(
    lon: Any,
    lat: Any,
    cells: gpd.GeoDataFrame,
    *,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Integer position of the cell holding each WGS84 point, -1 outside every cell.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 degrees.
    cells : GeoDataFrame
        Unit grid cells in EPSG:4326.
    locator : callable, optional
        ``locator(lon, lat) -> positions``; by default a spatial index over ``cells``.

    Returns
    -------
    numpy.ndarray of int64

    Raises
    ------
    CoordinateError
        NaN, out-of-range or swapped coordinates.

    Examples
    --------
    ::

        events_to_cell_positions([116.3756], [39.911], cells)
        # array([1234])
    """
    lon, lat = _check_lonlat(lon, lat)
    _check_cells(cells)
    locate = locator or _default_locator(cells)
    return np.asarray(locate(lon, lat), dtype=np.int64)


def times_to_bins(times: Any, time_bin: TimeBin | str = TimeBin.HOUR) -> np.ndarray:
    """Bin timestamps: hour start, hour of week (0 = Monday 00h .. 167) or day start.

    Parameters
    ----------
    times : array_like of datetime64
    time_bin : {"hour", "hour_of_week", "day"}

    Returns
    -------
    numpy.ndarray
        datetime64[ns] for hour/day, int64 for hour_of_week.

    Examples
    --------
    >>> times_to_bins(pd.to_datetime(["2018-04-02 11:40"]), "hour_of_week")
    array([11])
    """
    tb = _enum(TimeBin, time_bin, "time_bin")
    t = pd.DatetimeIndex(pd.to_datetime(times))
    if tb is TimeBin.HOUR:
        return t.floor("h").to_numpy("datetime64[ns]")
    if tb is TimeBin.DAY:
        return t.floor("D").to_numpy("datetime64[ns]")
    return (t.day_of_week.to_numpy() * 24 + t.hour.to_numpy()).astype(np.int64)


def aggregate_events(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    time_bin: TimeBin | str = TimeBin.HOUR,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    crs: str = "wgs84",
    tz: str | ZoneInfo | None = None,
) -> pd.DataFrame:
    """Count events by unit grid cell and time bin.

    Parameters
    ----------
    events : DataFrame
        Columns ``lon``, ``lat`` (WGS84), ``time``; optional ``count`` (e.g. bikes seen
        at one position by a platform snapshot), else each row counts 1.
    cells : GeoDataFrame
        The unit grid in EPSG:4326 with a ``code`` column.
    time_bin : {"hour", "hour_of_week", "day"}
    locator : callable, optional
        ``locator(lon, lat) -> cell positions``.
    crs : {"wgs84", "gcj02", "bd09"}
        CRS of the event positions (converted to WGS84 first).
    tz : str or ZoneInfo, optional
        The city's time zone, whose hours and days the bins are (default `city_tz`).

    Returns
    -------
    DataFrame
        One row per non-empty (cell, bin): ``cell`` (position), ``code``, ``bin``,
        ``count`` (summed), ``n_events``; sorted by bin then cell. Events outside every
        cell are dropped; ``df.attrs["n_outside"]`` says how many.

    Raises
    ------
    DataFileError
        Empty events, missing columns, unreadable times.
    CoordinateError
        Bad coordinates.

    Examples
    --------
    ::

        aggregate_events(events, cells, time_bin="hour").head()
    """
    ev = _check_events(events, crs=crs, tz=tz)
    pos = events_to_cell_positions(ev["lon"], ev["lat"], cells, locator=locator)
    bins = times_to_bins(ev["time"], time_bin)
    inside = pos >= 0
    df = pd.DataFrame(
        {"cell": pos[inside], "bin": bins[inside], "count": ev["count"].to_numpy()[inside]}
    )
    out = (
        df.groupby(["bin", "cell"], sort=True)["count"]
        .agg(["sum", "size"])
        .reset_index()
        .rename(columns={"sum": "count", "size": "n_events"})
    )
    out.insert(1, "code", cells["code"].to_numpy()[out["cell"].to_numpy()])
    out = out[["cell", "code", "bin", "count", "n_events"]]
    out.attrs["n_outside"] = int((~inside).sum())
    out.attrs["time_bin"] = str(_enum(TimeBin, time_bin, "time_bin"))
    return out


def events_to_h3(lon: Any, lat: Any, *, resolution: int = 10) -> np.ndarray:
    """H3 cell (uint64) of each WGS84 point, for the fine analysis layer.

    Resolution 10 cells are about 15,000 m² (edge ~66 m), resolution 11 about 2,100 m².

    Examples
    --------
    ::

        hex(int(events_to_h3([116.3756], [39.911], resolution=10)[0]))
    """
    import h3

    if not isinstance(resolution, int | np.integer) or not 0 <= resolution <= 15:
        raise ValueError(
            f"resolution must be an integer 0..15 (10 or 11 suit lanes); got {resolution!r}"
        )
    lon, lat = _check_lonlat(lon, lat)
    # h3-py has no array call; rounding to ~1 cm and deduplicating keeps it fast on dense
    # platform data where many rows share a position.
    key = np.round(lat, 7) + 1j * np.round(lon, 7)
    uniq, inv = np.unique(key, return_inverse=True)
    cells = np.fromiter(
        (h3.str_to_int(h3.latlng_to_cell(z.real, z.imag, resolution)) for z in uniq),
        dtype=np.uint64,
        count=len(uniq),
    )
    return cells[inv]


def aggregate_events_h3(
    events: pd.DataFrame,
    *,
    resolution: int = 10,
    time_bin: TimeBin | str = TimeBin.HOUR,
    tz: str | ZoneInfo | None = None,
) -> pd.DataFrame:
    """Count events by H3 cell and time bin (the city's hours and days, see ``tz``).

    Returns a DataFrame with ``h3`` (hex str), ``bin``, ``count``, ``n_events``.

    Examples
    --------
    ::

        aggregate_events_h3(events, resolution=11, time_bin="day")
    """
    import h3

    ev = _check_events(events, tz=tz)
    hx = events_to_h3(ev["lon"], ev["lat"], resolution=resolution)
    df = pd.DataFrame({"h": hx, "bin": times_to_bins(ev["time"], time_bin), "count": ev["count"]})
    out = (
        df.groupby(["bin", "h"], sort=True)["count"]
        .agg(["sum", "size"])
        .reset_index()
        .rename(columns={"sum": "count", "size": "n_events"})
    )
    out.insert(0, "h3", [h3.int_to_str(int(v)) for v in out.pop("h")])
    return out


def counts_to_matrix(
    counts: pd.DataFrame, n_cells: int, bins: Sequence[Any] | np.ndarray
) -> sparse.csr_matrix:
    """Sparse (len(bins) x n_cells) matrix of counts from :func:`aggregate_events` output.

    Rows follow ``bins``; counts in bins not listed are ignored.
    """
    bins = np.asarray(bins)
    row = pd.Index(bins).get_indexer(counts["bin"].to_numpy())
    keep = row >= 0
    return sparse.csr_matrix(
        (counts["count"].to_numpy(float)[keep], (row[keep], counts["cell"].to_numpy()[keep])),
        shape=(len(bins), n_cells),
    )


# --------------------------------------------------------------------------- weights


class Contiguity(StrEnum):
    """How cell neighbours are found (see :func:`cell_weights`)."""

    INTERSECTS = "intersects"
    VERTEX = "vertex"


def cell_weights(
    cells: gpd.GeoDataFrame, *, contiguity: Contiguity | str = Contiguity.INTERSECTS
) -> Any:
    """Binary queen-contiguity weights (libpysal ``W``) over the cell polygons, by position.

    Cells whose closed polygons touch (an edge or a corner) are neighbours.

    Parameters
    ----------
    cells : GeoDataFrame
        The unit grid.
    contiguity : {"intersects", "vertex"}
        ``intersects`` (default) pairs the polygons that intersect, found with a shapely
        STRtree; ``vertex`` is libpysal's ``Queen.from_dataframe``, which pairs polygons
        sharing a vertex coordinate exactly. On the sample city the two differ on 627
        pairs across community lines, where clipped cells meet without identical vertex
        coordinates (a T-junction, or a float-level sliver of under 0.02 m²): vertex
        matching would cut Gi*'s neighbourhoods at every community line.

    Returns
    -------
    libpysal.weights.W
        Binary (``transform="B"``), ids 0..n-1 = positions in ``cells``.

    Examples
    --------
    ::

        w = cell_weights(city.cells)
    """
    import warnings

    from libpysal.weights import W

    how = _enum(Contiguity, contiguity, "contiguity")
    _check_cells(cells)
    with warnings.catch_warnings():  # islands are legal (a cell cut off by a river)
        warnings.simplefilter("ignore")
        if how is Contiguity.VERTEX:
            from libpysal.weights import Queen

            w = Queen.from_dataframe(
                cells.reset_index(drop=True), use_index=False, silence_warnings=True
            )
        else:
            import shapely

            geoms = np.asarray(cells.geometry.values)
            i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
            off = i != j
            n = len(geoms)
            a = sparse.csr_matrix((np.ones(int(off.sum())), (i[off], j[off])), shape=(n, n))
            w = W.from_sparse(a)
    w.transform = "B"
    return w


def h3_weights(h3_cells: Sequence[str]) -> Any:
    """Binary weights (libpysal ``W``) linking H3 cells that are grid neighbours (k = 1)."""
    import h3
    from libpysal.weights import W

    cells = list(h3_cells)
    if not cells:
        raise ValueError("h3_cells is empty")
    index = {c: i for i, c in enumerate(cells)}
    neighbours = {
        i: [index[n] for n in h3.grid_disk(c, 1) if n != c and n in index]
        for i, c in enumerate(cells)
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return W(neighbours, silence_warnings=True)


def h3_cells_frame(events: pd.DataFrame, *, resolution: int = 11, ring: int = 1) -> Any:
    """Build the H3 analysis layer of some events: a cells frame for :func:`scan_hotspots`.

    Every H3 cell holding an event, plus ``ring`` rings around each, as a GeoDataFrame
    (EPSG:4326) with ``code`` (the H3 index, hex) sorted, like the unit grid's frame.
    Scan it with ``weights=h3_weights(frame["code"])``. Equal-area hexagons suit Gi*
    on counts where unit cells are too coarse (a 100 m cell holds a whole lane) or too
    unequal in area.

    Examples
    --------
    ::

        fine = h3_cells_frame(events, resolution=11)
        scan = scan_hotspots(events, fine, weights=h3_weights(fine["code"]))
    """
    import geopandas as gpd
    import h3
    import shapely

    if ring < 0:
        raise ValueError(f"ring must be >= 0; got {ring}")
    ev = _check_events(events)
    used = {
        h3.int_to_str(int(v))
        for v in np.unique(events_to_h3(ev["lon"], ev["lat"], resolution=resolution))
    }
    codes = sorted({n for c in used for n in h3.grid_disk(c, ring)})
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in codes]
    return gpd.GeoDataFrame({"code": codes}, geometry=polys, crs="EPSG:4326")


def _star_matrix(w: Any) -> sparse.csr_matrix:
    """Binary adjacency with the diagonal set to 1 (Gi* counts the cell itself)."""
    if sparse.issparse(w):
        a = sparse.csr_matrix(w, dtype=float)
    else:
        a = sparse.csr_matrix(w.sparse, dtype=float)
    a = (a != 0).astype(float).tolil()
    a.setdiag(1.0)
    return a.tocsr()


# --------------------------------------------------------------------------- statistics


def _moments(x_sum: np.ndarray, x2_sum: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = x_sum / n
    var = np.maximum(x2_sum / n - mean**2, 0.0)
    return mean, np.sqrt(var)


def _z(s: np.ndarray, mean: np.ndarray, sd: np.ndarray, wi: np.ndarray, n: int) -> np.ndarray:
    denom = sd * np.sqrt((n * wi - wi**2) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s - mean * wi) / denom
    return np.where(denom > 0, z, 0.0)  # a constant hour has no hotspot


def _p(s: np.ndarray, z: np.ndarray, mu: np.ndarray, how: PValue) -> np.ndarray:
    if how is PValue.NORMAL:
        return special.ndtr(-z)
    # P(Poisson(mu) >= s) = pdtrc(s - 1, mu); s = 0 gives 1.
    s_int = np.rint(s)
    with np.errstate(invalid="ignore"):
        p = special.pdtrc(s_int - 1, mu)
    return np.where(s_int <= 0, 1.0, np.where(mu > 0, p, np.where(s_int > 0, 0.0, 1.0)))


@dataclass(frozen=True)
class GiStar:
    """Gi* per cell (and per time bin if 2-D): z, one-sided upper p, neighbourhood sum."""

    z: np.ndarray
    p: np.ndarray
    neighbourhood_sum: np.ndarray


def gi_star(values: Any, w: Any, *, pvalue: PValue | str = PValue.POISSON) -> GiStar:
    """Local Getis-Ord Gi* with the cell itself in its neighbourhood.

    Parameters
    ----------
    values : array_like
        ``(n,)`` one value per cell, or ``(t, n)`` one row per time bin (vectorised).
    w : libpysal W or scipy sparse matrix
        Neighbours of each cell (binary; the diagonal is set to 1 here).
    pvalue : {"poisson", "normal"}
        ``poisson`` needs non-negative integer counts (see the module notes).

    Returns
    -------
    GiStar
        ``z`` equals ``esda.G_Local(values, w, transform="B", star=True).Zs``; ``p`` is
        one-sided (hot spots).

    Raises
    ------
    ValueError
        Empty or mismatched input, NaN, or non-count values with ``pvalue="poisson"``.

    Examples
    --------
    >>> from libpysal.weights import lat2W
    >>> y = np.zeros(25); y[12] = 9; y[[7, 11, 13, 17]] = 3
    >>> round(float(gi_star(y, lat2W(5, 5, rook=False)).z[12]), 2)
    2.75
    """
    how = _enum(PValue, pvalue, "pvalue")
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("values is empty; Gi* needs one value per cell")
    if x.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D (cells) or 2-D (bins x cells); got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("values contain NaN or infinity; fill or drop those cells first")
    a = _star_matrix(w)
    n = a.shape[0]
    if x.shape[-1] != n:
        raise ValueError(f"values have {x.shape[-1]} cells but the weights have {n}")
    if n < 3:
        raise ValueError(f"Gi* needs at least 3 cells; got {n}")
    if how is PValue.POISSON and ((x < 0).any() or (np.abs(x - np.rint(x)) > 1e-9).any()):
        raise ValueError('pvalue="poisson" needs non-negative integer counts; use pvalue="normal"')
    x2 = np.atleast_2d(x)
    s = np.asarray(a @ x2.T).T  # a is symmetric for contiguity weights
    wi = np.asarray(a.sum(axis=1)).ravel()
    mean, sd = _moments(x2.sum(1), (x2**2).sum(1), n)
    z = _z(s, mean[:, None], sd[:, None], wi[None, :], n)
    p = _p(s, z, mean[:, None] * wi[None, :], how)
    if x.ndim == 1:
        return GiStar(z[0], p[0], s[0])
    return GiStar(z, p, s)


def benjamini_hochberg(p: Any, *, m: int | None = None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same shape as ``p``.

    Parameters
    ----------
    p : array_like
        p-values in [0, 1].
    m : int, optional
        Number of tests in the family when ``p`` lists only some of them (the others
        being p = 1); defaults to ``p.size``.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    array([0.04      , 0.05333333, 0.05333333, 0.5       ])
    """
    arr = np.asarray(p, dtype=float)
    if arr.size == 0:
        return arr.copy()
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise ValueError("p-values must lie in [0, 1] with no NaN")
    flat = arr.ravel()
    m = flat.size if m is None else int(m)
    if m < flat.size:
        raise ValueError(f"m={m} is smaller than the {flat.size} p-values given")
    order = np.argsort(flat, kind="stable")
    ranked = flat[order] * m / np.arange(1, flat.size + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(flat)
    q[order] = np.minimum(q_sorted, 1.0)
    return q.reshape(arr.shape)


# --------------------------------------------------------------------------- scan


@dataclass
class HotspotScan:
    """Gi* over every cell and hour of a period, with FDR-controlled hot cell-hours.

    ``table`` has one row per tested cell-hour with p <= max(fdr, 0.05) (the others
    cannot be significant; ``m`` counts every tested cell-hour for the FDR), columns
    ``cell``, ``code``, ``time``, ``hour_of_week``, ``count`` (the cell), ``nsum`` (cell +
    neighbours), ``baseline`` (median ``nsum`` at that hour of week in the previous
    weeks, NaN without enough history), ``z``, ``p``, ``q``, ``hot`` (q <= fdr),
    ``recurrence`` (earlier weeks in the baseline window hot at that hour of week).
    """

    table: pd.DataFrame
    hours: pd.DatetimeIndex
    fdr: float
    m: int
    pvalue: str
    baseline_weeks: int
    codes: np.ndarray = field(repr=False)
    adjacency: sparse.csr_matrix = field(repr=False)


def _hourly_matrix(
    ev: pd.DataFrame, pos: np.ndarray, n: int, hours: pd.DatetimeIndex
) -> sparse.csr_matrix:
    t = pd.DatetimeIndex(ev["time"]).floor("h")
    row = hours.get_indexer(t)
    keep = (row >= 0) & (pos >= 0)
    return sparse.csr_matrix(
        (ev["count"].to_numpy()[keep], (row[keep], pos[keep])), shape=(len(hours), n)
    )


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Look up values at keys in a sparse (sorted key -> value) table, 0 where absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys))
    i = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[i] == keys, values[i], 0.0)


def scan_hotspots(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    start: Any = None,
    end: Any = None,
    fdr: float = 0.05,
    pvalue: PValue | str = PValue.POISSON,
    baseline_weeks: int = 4,
    min_history_weeks: int = 2,
    weights: Any = None,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    crs: str = "wgs84",
    tz: str | ZoneInfo | None = None,
) -> HotspotScan:
    """Hourly Gi* for every cell from ``start`` to ``end`` with BH-FDR over all cell-hours.

    Events before ``start`` (up to ``baseline_weeks`` weeks) serve only as baseline.

    Parameters
    ----------
    events : DataFrame
        ``lon``, ``lat`` (WGS84), ``time``, optional integer ``count``.
    cells : GeoDataFrame
        Unit grid (EPSG:4326, ``code``).
    start, end : timestamp-like, optional
        Hours tested, ``[start, end)``, in city time (aware ones are converted); default
        the span of the events.
    fdr : float
        False discovery rate over all tested cell-hours.
    pvalue : {"poisson", "normal"}
    baseline_weeks, min_history_weeks : int
        The baseline of an hour is the median of the same hour of week over the previous
        ``baseline_weeks`` weeks that lie in the data; with fewer than
        ``min_history_weeks`` of them it is NaN (no alert can fire: warm-up).
    weights : libpysal W or sparse matrix, optional
        Default :func:`cell_weights` (queen).
    locator : callable, optional
    crs : {"wgs84", "gcj02", "bd09"}
        CRS of the event positions.
    tz : str or ZoneInfo, optional
        The city's time zone (default `city_tz`): hours and hours of week are its own.

    Returns
    -------
    HotspotScan

    Raises
    ------
    DataFileError, CoordinateError, ValueError
        Bad events, an empty period, a bad ``fdr``.

    Examples
    --------
    ::

        scan = scan_hotspots(events, cells, start="2018-03-15")
        scan.table[scan.table.hot].head()
    """
    how = _enum(PValue, pvalue, "pvalue")
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1), e.g. 0.05; got {fdr!r}")
    if baseline_weeks < 1 or not 1 <= min_history_weeks <= baseline_weeks:
        raise ValueError("need baseline_weeks >= 1 and 1 <= min_history_weeks <= baseline_weeks")
    ev = _check_events(events, crs=crs, tz=tz)
    _check_cells(cells)
    if how is PValue.POISSON and (np.abs(ev["count"] - np.rint(ev["count"])) > 1e-9).any():
        raise ValueError('pvalue="poisson" needs integer counts; use pvalue="normal"')
    t_min, t_max = ev["time"].min(), ev["time"].max()
    start = _wall(start, tz).floor("h") if start is not None else t_min.floor("h")
    end = _wall(end, tz).ceil("h") if end is not None else t_max.floor("h") + pd.Timedelta("1h")
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    hist_start = max(start - pd.Timedelta(weeks=baseline_weeks), t_min.floor("h"))
    hist_start = min(hist_start, start)
    hours = pd.date_range(hist_start, end, freq="h", inclusive="left")
    n = len(cells)
    pos = events_to_cell_positions(ev["lon"], ev["lat"], cells, locator=locator)
    x = _hourly_matrix(ev, pos, n, hours)
    a = _star_matrix(weights if weights is not None else cell_weights(cells))
    if a.shape != (n, n):
        raise ValueError(f"weights are {a.shape[0]} x {a.shape[1]} but there are {n} cells")
    wi = np.asarray(a.sum(axis=1)).ravel()
    s_csr = (x @ a).tocsr()  # neighbourhood sums, non-zero only where something happened
    s_csr.sort_indices()
    s = s_csr.tocoo()  # row-major order: (row, col) keys ascending
    mean, sd = _moments(np.asarray(x.sum(1)).ravel(), np.asarray(x.multiply(x).sum(1)).ravel(), n)
    r, c, sv = s.row, s.col, s.data
    z = _z(sv, mean[r], sd[r], wi[c], n)
    p = _p(sv, z, mean[r] * wi[c], how)

    first_tested = int(hours.get_indexer([start])[0]) if start in hours else 0
    m = (len(hours) - first_tested) * n
    # BH over all m cell-hours of the tested period. Only cell-hours with p <= screen
    # (>= fdr) are ranked: every other one has p > screen, so it can neither be rejected
    # nor lower the q-value of one that is (each of its BH terms p*m/j exceeds screen).
    # Unranked cell-hours (and cell-hours with no event nearby, p = 1) are not listed.
    screen = max(fdr, _SCREEN_P)
    keep = (r >= first_tested) & (p <= screen)
    rs, cs, svs, zs, ps = r[keep], c[keep], sv[keep], z[keep], p[keep]
    q = benjamini_hochberg(ps, m=m)
    hot = q <= fdr

    # Baselines and recurrence: look back k weeks at the same cell.
    all_keys = r.astype(np.int64) * n + c  # ascending (row-major)
    hot_keys = (rs.astype(np.int64) * n + cs)[hot]  # ascending too
    back = np.full((baseline_weeks, len(rs)), np.nan)
    back_hot = np.zeros(len(rs), dtype=np.int64)
    for k in range(1, baseline_weeks + 1):
        rr = rs - k * HOURS_PER_WEEK
        ok = rr >= 0
        if ok.any():
            keys = rr[ok].astype(np.int64) * n + cs[ok]
            back[k - 1, ok] = _lookup(all_keys, sv, keys)
            back_hot[ok] += _lookup(hot_keys, np.ones(len(hot_keys)), keys).astype(np.int64)
    n_hist = np.isfinite(back).sum(0)
    import warnings

    with warnings.catch_warnings():  # all-NaN columns: no history yet
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = np.nanmedian(back, axis=0) if len(rs) else np.empty(0)
    baseline = np.where(n_hist >= min_history_weeks, baseline, np.nan)
    r, c, sv, z, p = rs, cs, svs, zs, ps

    times = hours[r]
    codes = cells["code"].to_numpy()
    xc = x.tocsr()
    cell_count = np.asarray(xc[r, c]).ravel()
    table = pd.DataFrame(
        {
            "cell": c.astype(np.int64),
            "code": codes[c],
            "time": times,
            "hour_of_week": times.day_of_week * 24 + times.hour,
            "count": cell_count,
            "nsum": sv,
            "expected": mean[r] * wi[c],
            "baseline": baseline,
            "z": z,
            "p": p,
            "q": q,
            "hot": hot,
            "hot_weeks": back_hot,
        }
    )
    table = table.sort_values(["time", "cell"], kind="stable").reset_index(drop=True)
    return HotspotScan(
        table=table,
        hours=hours[first_tested:],
        fdr=fdr,
        m=m,
        pvalue=str(how),
        baseline_weeks=baseline_weeks,
        codes=codes,
        adjacency=a,
    )


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class Alert:
    """A hotspot worth a street office's attention, with the evidence for it.

    One alert is one hotspot: alerting cell-hours joined when their cells are adjacent in
    the same hour or one cell alerts in consecutive hours. ``cell_code`` is the peak cell
    (largest z), ``cell_codes`` all cells of the hotspot (peak first); ``start``/``end``
    bound its window ``[start, end)``; the figures are those of the peak cell-hour.
    ``count`` is the events in the cell and its neighbours, ``baseline`` the median of
    that sum at the same hour of week over the previous weeks; ``recurrence`` how many
    of those weeks alerted on this cell at this hour of week (0: new).
    """

    cell_code: str
    cell_codes: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    hour_of_week: int
    cell_count: float
    count: float
    baseline: float
    expected: float
    z: float
    p: float
    q: float
    fdr: float
    recurrence: int
    reason_zh: str
    reason_en: str

    @property
    def ratio(self) -> float:
        """Count over baseline (the baseline floored at the city-wide expectation)."""
        return self.count / max(self.baseline, self.expected, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (ISO timestamps)."""
        d = asdict(self)
        for k in ("start", "end", "peak"):
            d[k] = d[k].isoformat()
        d["cell_codes"] = list(d["cell_codes"])
        d["ratio"] = self.ratio
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        """Rebuild an alert from :meth:`to_dict` output or a stored row (extra keys ignored)."""
        kw = {f: d[f] for f in cls.__dataclass_fields__}
        for k in ("start", "end", "peak"):
            kw[k] = pd.Timestamp(kw[k])
        kw["cell_codes"] = tuple(kw["cell_codes"])
        return cls(**kw)


def _reason(
    row: pd.Series, window: tuple[pd.Timestamp, pd.Timestamp], fdr: float, rec: int, weeks: int
) -> tuple[str, str]:
    s, e = window
    dow = s.day_of_week
    span = f"{s:%Y-%m-%d} {s:%H}:00–{e:%H}:00"
    base = max(row.baseline, row.expected)
    zh = (
        f"{span}（{_WEEKDAYS_ZH[dow]}）单元网格 {row.code} 及相邻网格共 {row.nsum:.0f} 起，"
        f"为同时段近几周基线 {row.baseline:.1f} 的 {row.nsum / max(base, 1e-9):.1f} 倍；"
        f"Gi* z={row.z:.1f}，p={row.p:.1e}，FDR q={row.q:.1e} ≤ {fdr}，属统计显著热点。"
    )
    en = (
        f"{span} ({_WEEKDAYS_EN[dow]}): cell {row.code} and its neighbours had {row.nsum:.0f} "
        f"events, {row.nsum / max(base, 1e-9):.1f}x the baseline of {row.baseline:.1f} for these "
        f"hours in recent weeks; Gi* z={row.z:.1f}, p={row.p:.1e}, FDR q={row.q:.1e} <= {fdr}: "
        "a significant hotspot."
    )
    if rec:
        zh += f" 过去 {weeks} 周中有 {rec} 周同一时段已报警（反复出现）。"
        en += f" Alerted at these hours in {rec} of the previous {weeks} weeks (recurring)."
    else:
        zh += " 近几周同一时段未报警（新出现）。"
        en += " No alert at these hours in recent weeks (new)."
    return zh, en


def hotspot_alerts(
    scan_or_events: HotspotScan | pd.DataFrame,
    cells: gpd.GeoDataFrame | None = None,
    *,
    min_ratio: float = 3.0,
    min_count: float = 20,
    alpha_baseline: float = 1e-6,
    **scan_options: Any,
) -> list[Alert]:
    """Alerts: hot cell-hours (FDR) well above their own baseline, merged into windows.

    A hot cell-hour alerts when its neighbourhood count ``nsum`` is at least
    ``min_count``, at least ``min_ratio`` times its baseline (floored at the city-wide
    expectation), and improbable under a Poisson with the baseline as mean
    (``p < alpha_baseline``). Alerting cell-hours that touch in space (same hour) or time
    (same cell, next hour) form one alert. The defaults call for a jam a street office
    would act on (20+ in the neighbourhood, 3x its usual level); they filter the
    FDR-controlled hot set, so they cannot add false discoveries.

    Parameters
    ----------
    scan_or_events : HotspotScan or DataFrame
        A scan, or events to scan with ``cells`` and ``scan_options``
        (see :func:`scan_hotspots`).
    cells : GeoDataFrame, optional
        Needed with events.
    min_ratio, min_count, alpha_baseline : float

    Returns
    -------
    list of Alert
        Sorted by start time, then by z descending.

    Examples
    --------
    ::

        alerts = hotspot_alerts(events, city.cells, start="2018-03-15")
        alerts[0].reason_en
    """
    if isinstance(scan_or_events, HotspotScan):
        scan = scan_or_events
    else:
        if cells is None:
            raise ValueError("pass cells with events (or pass a HotspotScan)")
        scan = scan_hotspots(scan_or_events, cells, **scan_options)
    t = scan.table
    base = np.maximum(t["baseline"].to_numpy(), t["expected"].to_numpy())
    with np.errstate(invalid="ignore"):
        p_base = special.pdtrc(np.rint(t["nsum"].to_numpy()) - 1, base)
    ok = (
        t["hot"].to_numpy()
        & np.isfinite(t["baseline"].to_numpy())
        & (t["nsum"].to_numpy() >= min_count)
        & (t["nsum"].to_numpy() >= min_ratio * base)
        & (p_base < alpha_baseline)
    )
    sel = t[ok].reset_index(drop=True)
    if sel.empty:
        return []
    # Recurrence: earlier weeks in which this cell alerted at the same hour of week.
    alerted = set(zip(sel["time"], sel["cell"], strict=True))
    rec = np.zeros(len(sel), dtype=np.int64)
    for k in range(1, scan.baseline_weeks + 1):
        back = sel["time"] - pd.Timedelta(weeks=k)
        rec += np.fromiter(
            ((tt, cc) in alerted for tt, cc in zip(back, sel["cell"], strict=True)),
            dtype=bool,
            count=len(sel),
        )
    sel["recurrence"] = rec
    alerts: list[Alert] = []
    for rows in _alert_components(sel, scan.adjacency):
        w = sel.iloc[rows]
        peak = w.loc[w["z"].idxmax()]
        s, e = w["time"].min(), w["time"].max() + pd.Timedelta("1h")
        others = sorted(set(w["code"]) - {peak.code})
        zh, en = _reason(peak, (s, e), scan.fdr, int(peak.recurrence), scan.baseline_weeks)
        if others:
            zh += f" 同一热点还包括 {len(others)} 个相邻网格。"
            en += f" The same hotspot covers {len(others)} adjacent cell(s)."
        alerts.append(
            Alert(
                cell_code=str(peak.code),
                cell_codes=(str(peak.code), *map(str, others)),
                start=s,
                end=e,
                peak=peak.time,
                hour_of_week=int(peak.hour_of_week),
                cell_count=float(peak["count"]),
                count=float(peak.nsum),
                baseline=float(peak.baseline),
                expected=float(peak.expected),
                z=float(peak.z),
                p=float(peak.p),
                q=float(peak.q),
                fdr=scan.fdr,
                recurrence=int(peak.recurrence),
                reason_zh=zh,
                reason_en=en,
            )
        )
    alerts.sort(key=lambda a: (a.start, -a.z))
    return alerts


def _alert_components(sel: pd.DataFrame, adjacency: sparse.csr_matrix) -> list[np.ndarray]:
    """Group alerting cell-hours: adjacent cells in one hour, or one cell in consecutive hours."""
    from scipy.sparse.csgraph import connected_components

    key = {(tt, cc): k for k, (tt, cc) in enumerate(zip(sel["time"], sel["cell"], strict=True))}
    src, dst = [], []
    hour = pd.Timedelta("1h")
    for k, (tt, cc) in enumerate(zip(sel["time"], sel["cell"], strict=True)):
        for j in adjacency.indices[adjacency.indptr[cc] : adjacency.indptr[cc + 1]]:
            other = key.get((tt, int(j)))
            if other is not None and other != k:
                src.append(k)
                dst.append(other)
        prev = key.get((tt - hour, cc))
        if prev is not None:
            src.append(k)
            dst.append(prev)
    m = len(sel)
    g = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(m, m))
    _, label = connected_components(g, directed=False)
    return [np.flatnonzero(label == lab) for lab in np.unique(label)]


def recurring_hotspots(scan: HotspotScan, *, min_weeks: int = 3) -> pd.DataFrame:
    """Cells hot at the same hour of week in at least ``min_weeks`` distinct weeks.

    Returns
    -------
    DataFrame
        ``code``, ``hour_of_week``, ``weeks`` (count), ``first``, ``last`` (times),
        ``max_z``; most weeks first.
    """
    if min_weeks < 1:
        raise ValueError(f"min_weeks must be >= 1; got {min_weeks}")
    h = scan.table[scan.table["hot"]].copy()
    if h.empty:
        return pd.DataFrame(columns=["code", "hour_of_week", "weeks", "first", "last", "max_z"])
    h["week"] = h["time"].dt.to_period("W-SUN")
    g = (
        h.groupby(["code", "hour_of_week"])
        .agg(
            weeks=("week", "nunique"),
            first=("time", "min"),
            last=("time", "max"),
            max_z=("z", "max"),
        )
        .reset_index()
    )
    g = g[g["weeks"] >= min_weeks]
    return g.sort_values(["weeks", "max_z"], ascending=[False, False]).reset_index(drop=True)


# --------------------------------------------------------------------------- before/after


#: Meal-peak hours of the day (11-13h, 17-19h), the default comparison window.
MEAL_PEAK_HOURS = (11, 12, 17, 18)


@dataclass(frozen=True)
class BeforeAfter:
    """Before/after comparison of hourly counts at one place and time window.

    The decision rests on a two-sided Mann-Whitney U test over hour bins matched by
    hour of week (``p``). Effect sizes: ``rate_ratio`` (mean after / mean before, with
    a bootstrap 95 % interval), ``change_pct`` and the rank-biserial correlation
    (-1: every after-hour below every before-hour). ``p_poisson`` (exact conditional test
    of two Poisson rates) is given for reference only: bikes present in one hour are not
    independent events, so it is far too confident.
    """

    cell_codes: tuple[str, ...]
    measure_date: pd.Timestamp
    hours_of_week: tuple[int, ...]
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    rate_ratio: float
    rate_ratio_ci: tuple[float, float]
    change_pct: float
    rank_biserial: float
    u: float
    p: float
    p_poisson: float
    alpha: float
    significant: bool
    summary_zh: str
    summary_en: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        d = asdict(self)
        d["measure_date"] = self.measure_date.isoformat()
        d["cell_codes"] = list(self.cell_codes)
        d["hours_of_week"] = list(self.hours_of_week)
        d["rate_ratio_ci"] = list(self.rate_ratio_ci)
        return d


def compare_before_after(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    cell_codes: Sequence[str],
    measure_date: Any,
    before: Any = "9D",
    after: Any = "21D",
    hours: Sequence[int] = MEAL_PEAK_HOURS,
    alpha: float = 0.05,
    seed: int = 0,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tz: str | ZoneInfo | None = None,
) -> BeforeAfter:
    """Test whether counts at a place changed after a measure (e.g. the 10 April parking).

    Hourly counts summed over ``cell_codes`` are taken in ``hours`` of the day, in
    ``[measure_date - before, measure_date)`` and ``[measure_date, measure_date + after)``;
    only hours of week present on both sides are kept (matched bins), so weekday/weekend
    and lunch/dinner mixes are alike on both sides.

    Why Mann-Whitney: bike counts are overdispersed and autocorrelated within a day, so
    a Poisson rate test (which assumes independent events) overstates significance; the
    rank test assumes neither a distribution nor equal variances, and matching by hour of
    week removes the rhythm that would otherwise dominate the ranks.

    Parameters
    ----------
    events : DataFrame
        ``lon``, ``lat``, ``time``, optional ``count``.
    cells : GeoDataFrame
    cell_codes : sequence of str
        The place (e.g. the cells of an alert).
    measure_date : timestamp-like
        When the measure took effect.
    before, after : timedelta-like
        Window lengths.
    hours : sequence of int
        Hours of the day compared (default the meal peaks).
    alpha : float
        Significance level of the decision.
    seed : int
        Seed of the bootstrap interval of the rate ratio.

    Returns
    -------
    BeforeAfter

    Raises
    ------
    CellNotFoundError
        A code is not in ``cells``.
    ValueError
        No matched hour bins on one side.

    Examples
    --------
    ::

        r = compare_before_after(ev, cells, cell_codes=alert.cell_codes,
                                     measure_date="2018-04-10")
        r.significant, round(r.change_pct)
        # (True, -88)
    """
    from scipy import stats

    from gridcore.errors import CellNotFoundError

    codes = [str(c) for c in cell_codes]
    if not codes:
        raise ValueError("cell_codes is empty; name the cells of the place")
    known = pd.Index(cells["code"].astype(str))
    pos = known.get_indexer(codes)
    if (pos < 0).any():
        bad = [c for c, p in zip(codes, pos, strict=True) if p < 0]
        raise CellNotFoundError(f"cell code(s) {bad} are not in the grid")
    hrs = sorted({int(h) for h in hours})
    if not hrs or any(not 0 <= h <= 23 for h in hrs):
        raise ValueError(f"hours must be hours of the day 0..23; got {list(hours)}")
    t0 = _wall(measure_date, tz)
    b0, a1 = t0 - pd.Timedelta(before), t0 + pd.Timedelta(after)
    if not (b0 < t0 < a1):
        raise ValueError("before and after must be positive durations")
    ev = _check_events(events, tz=tz)
    ev = ev[(ev["time"] >= b0) & (ev["time"] < a1)]
    p_ev = events_to_cell_positions(ev["lon"], ev["lat"], cells, locator=locator)
    in_place = np.isin(p_ev, pos)
    grid = pd.date_range(b0.floor("h"), a1, freq="h", inclusive="left")
    grid = grid[grid.hour.isin(hrs)]
    per_hour = (
        pd.Series(
            ev["count"].to_numpy()[in_place],
            index=pd.DatetimeIndex(ev["time"])[in_place].floor("h"),
        )
        .groupby(level=0)
        .sum()
        .reindex(grid, fill_value=0.0)
    )
    how = grid.day_of_week * 24 + grid.hour
    is_after = grid >= t0
    common = sorted(set(how[~is_after]) & set(how[is_after]))
    keep = how.isin(common)
    x_b = per_hour.to_numpy()[keep & ~is_after]
    x_a = per_hour.to_numpy()[keep & is_after]
    if len(x_b) == 0 or len(x_a) == 0:
        raise ValueError(
            f"no matched hour bins before and after {t0}: widen before/after or the hours"
        )
    u, p = stats.mannwhitneyu(x_a, x_b, alternative="two-sided")
    rb = 2 * u / (len(x_a) * len(x_b)) - 1
    mb, ma = float(x_b.mean()), float(x_a.mean())
    rr = ma / mb if mb > 0 else float("inf")
    rng = np.random.default_rng(seed)
    boot_b = rng.choice(x_b, (2000, len(x_b))).mean(1)
    boot_a = rng.choice(x_a, (2000, len(x_a))).mean(1)
    if (boot_b > 0).all():
        lo, hi = np.percentile(boot_a / boot_b, [2.5, 97.5])
    else:  # no events before in some resamples: the ratio is unbounded
        lo, hi = float("nan"), float("nan")
    pp = stats.poisson_means_test(
        int(round(x_a.sum())), len(x_a), int(round(x_b.sum())), len(x_b)
    ).pvalue
    sig = bool(p < alpha)
    change = (rr - 1) * 100
    verdict_zh = "变化显著" if sig else "变化不显著"
    verdict_en = "significant" if sig else "not significant"
    zh = (
        f"{t0:%Y-%m-%d} 措施前后对比（{len(codes)} 个网格，每日 {','.join(map(str, hrs))} 时）："
        f"每小时平均 {mb:.1f} → {ma:.1f}（{change:+.0f}%，比值 {rr:.2f}，"
        f"95% 区间 {lo:.2f}–{hi:.2f}）；"
        f"Mann-Whitney U 检验 p={p:.1e}，{verdict_zh}（α={alpha}）。"
    )
    en = (
        f"Before/after {t0:%Y-%m-%d} ({len(codes)} cells, hours {hrs}): mean per hour "
        f"{mb:.1f} -> {ma:.1f} ({change:+.0f}%, ratio {rr:.2f}, 95% CI {lo:.2f}-{hi:.2f}); "
        f"Mann-Whitney U p={p:.1e}: {verdict_en} at alpha={alpha}."
    )
    return BeforeAfter(
        cell_codes=tuple(codes),
        measure_date=t0,
        hours_of_week=tuple(int(h) for h in common),
        n_before=len(x_b),
        n_after=len(x_a),
        mean_before=mb,
        mean_after=ma,
        rate_ratio=rr,
        rate_ratio_ci=(float(lo), float(hi)),
        change_pct=change,
        rank_biserial=float(rb),
        u=float(u),
        p=float(p),
        p_poisson=float(pp),
        alpha=alpha,
        significant=sig,
        summary_zh=zh,
        summary_en=en,
    )


# --------------------------------------------------------------------------- alert -> case


def alert_to_case(
    alert: Alert,
    cells: gpd.GeoDataFrame,
    *,
    event_class: str = "0506",
    reporter: str = "热力图报警 heat-map alert",
    at: Any = None,
    tz: str | ZoneInfo | None = None,
) -> Any:
    """Open a case (上报) for the street of an alert's peak cell, through `gridcore.cases`.

    The case sits at the peak cell's centroid, carries the cell and street codes and the
    alert's reason as its description; the command centre then files and dispatches it
    to the departments concerned like any other case.

    Parameters
    ----------
    alert : Alert
    cells : GeoDataFrame
        The grid the alert was computed on.
    event_class : str
        4-digit legacy class, e.g. ``"0506"`` 非机动车乱停放 for the e-bike jam.
    reporter : str
    at : datetime, optional
        Report time (default the end of the alert window); a naive one is city time.
    tz : str or ZoneInfo, optional
        The city's time zone, in which the alert's window is written (default
        `city_tz`).

    Returns
    -------
    gridcore.cases.Case
        In state ``reported``.

    Raises
    ------
    CellNotFoundError
        The alert's cell is not in ``cells``.

    Examples
    --------
    ::

        case = alert_to_case(alerts[0], city.cells)
    """
    import datetime as dt

    import shapely

    from gridcore.auth import Role
    from gridcore.cases import report_case
    from gridcore.errors import CellNotFoundError

    pos = pd.Index(cells["code"]).get_indexer([alert.cell_code])[0]
    if pos < 0:
        raise CellNotFoundError(f"alert cell {alert.cell_code} is not in the grid given")
    row = cells.iloc[pos]
    c = shapely.centroid(row.geometry)
    when = pd.Timestamp(at) if at is not None else alert.end
    if when.tzinfo is None:
        when = when.tz_localize(city_tz(tz))
    street = row["street_code"] if "street_code" in cells.columns else None
    return report_case(
        event_class=event_class,
        lon=float(c.x),
        lat=float(c.y),
        description=alert.reason_zh,
        reporter=reporter,
        role=Role.DISPATCHER,
        at=when.to_pydatetime().astimezone(dt.UTC),
        cell_code=alert.cell_code,
        street_code=street,
        note=f"z={alert.z:.1f} p={alert.p:.1e} q={alert.q:.1e} cells={','.join(alert.cell_codes)}",
    )


# --------------------------------------------------------------------------- surge detector
#
# The Gi* scan above asks "is this cell-hour hot against the city in that hour?", which a
# persistently busy cell answers yes at every peak. The detector below asks instead "is
# this count improbable given what this place usually does at this hour of the week, on
# a day this busy?", and states the answer as a recurrence interval.
#
# Null model, for cell i at hour t (hour of week h, day d):
#     E[y] = m[i, h] * b[d]
#   m[i, h]  the cell's own mean at that hour of week over the history weeks (counts
#            deflated by each day's busyness), shrunk toward a prior: the cell's overall
#            level (itself shrunk toward its neighbours' level, or the city's when the
#            cell has no history) times its neighbourhood's hour-of-week profile (shrunk
#            toward the city's profile where the neighbourhood is sparse);
#   b[d]     the city's busyness that day: events seen over events expected city-wide.
# Overdispersion is estimated from the data, for every window shape tested, from the
# week-to-week variance at the same hour of week (so day shocks, regional shocks and
# within-day correlation the model knows nothing about widen the null instead of raising
# alerts), in bands of the expected count; the estimation error of m widens it further.
# Windows tested: one cell or the cell with its queen neighbours (spatial pooling), over
# the last 1, 2 or 3 hours. A window's p-value is the negative binomial upper tail; the
# scan tests n_cells x 24 x n_windows windows a day, so a window with p-value p would be
# matched by chance once every 1 / (p x tests per day) days: its recurrence interval.
# Alerting only above ``min_recurrence_days`` bounds the false alerts per day of scanning
# by 1 / min_recurrence_days (Bonferroni over every cell, hour and window shape: a
# family-wise bound per day, whatever the size of the city).


class AlertKind(StrEnum):
    """What an alert from :func:`scan_surges` / :func:`chronic_hotspots` claims."""

    SURGE = "surge"
    CHRONIC = "chronic"


class Trend(StrEnum):
    """Emerging hot-spot categories of a chronic hotspot (over the days of a window)."""

    NEW = "new"
    CONSECUTIVE = "consecutive"
    INTENSIFYING = "intensifying"
    PERSISTENT = "persistent"
    DIMINISHING = "diminishing"
    SPORADIC = "sporadic"
    OSCILLATING = "oscillating"
    HISTORICAL = "historical"


_TREND_ZH = {
    Trend.NEW: "新出现（仅最后一天）",
    Trend.CONSECUTIVE: "连续出现（最近连续数天）",
    Trend.INTENSIFYING: "持续且加剧",
    Trend.PERSISTENT: "持续存在",
    Trend.DIMINISHING: "持续但减弱",
    Trend.SPORADIC: "时有时无",
    Trend.OSCILLATING: "冷热交替",
    Trend.HISTORICAL: "曾长期存在，最近一天未见",
}

_MAX_RECURRENCE_DAYS = 1e12  # p underflows to 0 for overwhelming counts: say "at least"


@dataclass(frozen=True)
class ScanAlert:
    """A surge or a chronic hotspot, with the evidence a street office can weigh.

    ``start``/``end`` bound the window ``[start, end)`` (aware, in the city's offset);
    ``observed`` is the count in the window's cells and hours, ``expected`` its expected
    value under the null (surge: the cells' own history at those hours, scaled by the
    day's busyness; chronic: ``min_ratio`` times the neighbours' level, the level the
    cell would have to exceed). ``recurrence_days``: chance alone would produce an alert
    this strong somewhere in the scanned city once every that many days. ``p`` is the
    window's own upper-tail p-value. ``trend`` is the emerging hot-spot category of a
    chronic hotspot.
    """

    kind: str
    cell_codes: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    observed: float
    expected: float
    recurrence_days: float
    p: float
    why: str
    why_en: str
    trend: str | None = None

    @property
    def ratio(self) -> float:
        """Observed over expected."""
        return self.observed / max(self.expected, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: ISO 8601 times with the city's offset."""
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        d["cell_codes"] = list(self.cell_codes)
        d["ratio"] = self.ratio
        return d


@dataclass(frozen=True)
class Baseline:
    """The null of :func:`expected_counts`: the expected count of every cell-hour.

    ``mu`` is ``(hours, cells)``; ``busyness`` one factor per day of ``days``; ``m`` the
    ``(168, cells)`` hour-of-week means; ``inflation`` the factor by which the estimation
    error of ``m`` widens the variance of a count around it; ``history_weeks`` the weeks
    of own history the estimate is worth (its own weeks and the prior's); ``mu_loo`` the expected
    count of each history hour estimated without that hour's week.
    """

    mu: np.ndarray
    m: np.ndarray
    busyness: np.ndarray
    days: pd.DatetimeIndex
    inflation: float
    history_weeks: float
    first_scanned: int
    mu_loo: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 0)))


def _check_counts(counts: Any, hours: Any, adjacency: Any) -> tuple[np.ndarray, pd.DatetimeIndex,
                                                                    sparse.csr_matrix]:
    y = np.asarray(counts)
    if y.ndim != 2 or y.size == 0:
        raise InvalidValueError(
            f"counts must be a non-empty (hours, cells) array; got shape {y.shape}")
    if not np.isfinite(y).all() or (y < 0).any():
        raise InvalidValueError("counts must be finite and non-negative")
    if (np.abs(y - np.rint(y)) > 1e-9).any():
        raise InvalidValueError("counts must be whole numbers of events")
    h = pd.DatetimeIndex(hours)
    if h.tz is not None:
        h = h.tz_convert(city_tz()).tz_localize(None)
    if len(h) != y.shape[0]:
        raise InvalidValueError(f"{len(h)} hours for {y.shape[0]} rows of counts")
    if len(h) > 1 and not (np.diff(h.values) == np.timedelta64(1, "h")).all():
        raise InvalidValueError("hours must be consecutive whole hours (one row per hour)")
    a = sparse.csr_matrix(adjacency, dtype=float)
    if a.shape != (y.shape[1], y.shape[1]):
        raise InvalidValueError(f"adjacency is {a.shape} but there are {y.shape[1]} cells")
    a = (a != 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return y.astype(np.float64), h, a.tocsr()


def _start_index(hours: pd.DatetimeIndex, start: Any, tz: Any) -> int:
    s = _wall(start, tz).floor("h")
    i = int(hours.searchsorted(s))
    if i >= len(hours):
        raise InvalidValueError(f"start {s} is after the last hour of the data ({hours[-1]})")
    return i


def _how(hours: pd.DatetimeIndex) -> np.ndarray:
    return (hours.day_of_week.to_numpy() * 24 + hours.hour.to_numpy()).astype(np.int64)


# Hour of week -> slot: hour of day on a weekday (0-23) or a weekend day (24-47).
_SLOT = ((np.arange(HOURS_PER_WEEK) // 24 >= 5).astype(np.int64) * 24
         + np.arange(HOURS_PER_WEEK) % 24)


def _day_index(hours: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Return the days the hours fall in, and each hour's position among them."""
    day_of = hours.normalize()
    days = day_of.unique()
    return days, days.get_indexer(day_of)


def _group_sum(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the rows of ``values`` by group label (rows -> one row per group)."""
    g = sparse.csr_matrix((np.ones(len(groups)), (groups, np.arange(len(groups)))),
                          shape=(n_groups, len(groups)))
    return np.asarray(g @ values)


def expected_counts(
    counts: Any,
    hours: Any,
    adjacency: Any,
    *,
    start: Any,
    shrinkage_weeks: float = 4.0,
    min_history_days: int = 14,
    tz: str | ZoneInfo | None = None,
) -> Baseline:
    """Estimate the expected count of every cell-hour from the history before ``start``.

    Parameters
    ----------
    counts : array_like
        ``(hours, cells)`` whole counts, one row per consecutive hour.
    hours : DatetimeIndex
        The hour each row starts (city wall time, or aware and converted).
    adjacency : sparse matrix or array
        Queen neighbours of the cells (non-zero = neighbours).
    start : timestamp-like
        First hour scanned; the hours before it are the history.
    shrinkage_weeks : float
        Weight of the prior, in weeks of the cell's own history at that hour of week.
    min_history_days : int
        At least this much history before ``start``.

    Returns
    -------
    Baseline

    Raises
    ------
    ValueError
        Too little history, no events in it, malformed counts.
    """
    y, h, a = _check_counts(counts, hours, adjacency)
    s = _start_index(h, start, tz)
    if s < min_history_days * 24:
        raise InvalidValueError(f"need at least {min_history_days} days of history before {h[s]}; "
                         f"the data start at {h[0]} ({s} hours before)")
    if y[:s].sum() == 0:
        raise InvalidValueError("the history before start holds no events: nothing to expect from")
    how = _how(h)
    days, day = _day_index(h)
    deg = np.maximum(np.asarray(a.sum(1)).ravel(), 1.0)
    star = a + sparse.identity(a.shape[0], format="csr")
    n_h = np.bincount(how[:s], minlength=HOURS_PER_WEEK).astype(float)
    seen = n_h > 0
    b = np.ones(len(days))
    k = float(shrinkage_weeks)
    for _ in range(3):  # busyness and the means depend on each other; this settles fast
        yd = y[:s] / b[day[:s], None]
        ssum = _group_sum(yd, how[:s], HOURS_PER_WEEK)  # (168, n)
        total = ssum.sum(0)
        n_all = n_h.sum()
        l_city = total.sum() / (n_all * y.shape[1])
        l_nbr = (a @ total) / deg / n_all
        l_prior = np.where(l_nbr > 0, l_nbr, l_city)
        level = (total + 1.0) / (n_all + 1.0 / l_prior)  # gamma prior: one pseudo-event
        q = np.asarray((star @ ssum.T).T)  # neighbourhood sums per hour of week
        p_city = np.where(seen, ssum.sum(1) / np.maximum(n_h, 1), 0.0)
        p_city = p_city / p_city[seen].mean()
        rate = (q + 5.0 * p_city[:, None] * np.maximum(n_h, 1)[:, None] / n_h[seen].mean()
                ) / np.maximum(n_h, 1)[:, None]
        mean_rate = rate[seen].mean(0)
        profile = rate / np.where(mean_rate > 0, mean_rate, 1.0)
        nbr_prior = level[None, :] * profile
        # The cell's own hour of day on days of the same kind (weekday or weekend) holds
        # five (or two) times the history of one hour of week: the prior to shrink to,
        # itself shrunk toward the neighbourhood's shape.
        n_slot = np.bincount(_SLOT, weights=n_h, minlength=48)
        slot_sum = _group_sum(ssum, _SLOT, 48)
        slot_nbr = _group_sum(nbr_prior * n_h[:, None], _SLOT, 48) / np.maximum(n_slot, 1)[:, None]
        own = ((slot_sum + 2.0 * slot_nbr) / (n_slot[:, None] + 2.0))[_SLOT]
        prior = own
        m = (ssum + k * prior) / (n_h[:, None] + k)
        m[~seen] = prior[~seen]
        expect_day = np.bincount(day, weights=m.sum(1)[how], minlength=len(days))
        seen_day = np.bincount(day, weights=y.sum(1), minlength=len(days))
        b = np.where(expect_day > 0, seen_day / np.where(expect_day > 0, expect_day, 1), 1.0)
        b = np.maximum(b, 1e-3)
    # Cells drift (a shop opens, a season turns): scale each cell by how its last two
    # weeks of history compare with what the whole history expected of them, shrunk by
    # a pseudo-count so a quiet cell is not rescaled by a handful of events.
    recent = slice(max(s - 14 * 24, 0), s)
    y_r = y[recent].sum(0)
    m_r = (m[how[recent]] * b[day[recent], None]).sum(0)
    tau = 20.0
    drift = (y_r + tau) / (m_r + tau)
    m = m * drift[None, :]
    # Weeks of history the estimate is worth: n own weeks plus a prior of k weeks that
    # rests on n_slot days, Var(m) = var(y) (n + k**2 / n_slot) / (n + k)**2.
    n_sl = n_slot[_SLOT][seen]
    w = float(np.min((n_h[seen] + k) ** 2 / (n_h[seen] + k**2 / np.maximum(n_sl, 1))))
    # Each history hour predicted without its own week (same prior and busyness): the
    # out-of-sample error the scan's expected counts make, measured instead of assumed.
    hh = how[:s]
    bh = b[day[:s], None]
    loo = (ssum[hh] - y[:s] / bh + k * prior[hh]) / (n_h[hh, None] - 1.0 + k) * bh
    return Baseline(mu=m[how] * b[day, None], m=m, busyness=b, days=days,
                    inflation=1.0 + 1.0 / w, history_weeks=w, first_scanned=s,
                    mu_loo=loo)


def _rolling(x: np.ndarray, d: int) -> np.ndarray:
    """Sum over the last ``d`` rows (row t: rows t-d+1..t); rows before d-1 are NaN."""
    if d == 1:
        return x.copy()
    c = np.cumsum(x, axis=0)
    out = np.full_like(x, np.nan)
    out[d - 1] = c[d - 1]
    out[d:] = c[d:] - c[:-d]
    return out


_BANDS = np.array([0.0, 0.5, 2.0, 8.0, 32.0, np.inf])


def _band(mu: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(_BANDS, mu, side="right") - 1, 0, len(_BANDS) - 2)


def _dispersion(values: np.ndarray, means: np.ndarray, excess: np.ndarray,
                groups: np.ndarray, n_groups: int) -> np.ndarray:
    """How much the spread within groups exceeds Poisson, relative to ``excess``, by band.

    ``values`` (rows x units) are observations deflated to a common scale, ``means`` the
    model's expectation at the same places and ``excess`` the variance beyond Poisson
    that a reference model predicts there; rows in one group (same hour of week) are
    repeated draws of one unit's count. For each (group, unit) the sample variance
    around the sample mean estimates ``mean + kappa * excess``; kappa is the ratio of
    sums of (variance - mean) to sums of ``excess`` in each band of the model's mean
    (the whole table's where a band has too few units). With ``excess = mean**2``,
    kappa is 1/theta of a negative binomial.
    """
    ok = np.isfinite(values).all(1)
    v, g = values[ok], groups[ok]
    n = np.bincount(g, minlength=n_groups).astype(float)
    s1 = _group_sum(v, g, n_groups)
    s2 = _group_sum(v * v, g, n_groups)
    keep = n >= 2
    n, s1, s2 = n[keep, None], s1[keep], s2[keep]
    mean = s1 / n
    var = (s2 - n * mean**2) / (n - 1)
    model = _group_sum(means[ok], g, n_groups)[keep] / n
    ref = _group_sum(excess[ok], g, n_groups)[keep] / n
    nb = len(_BANDS) - 1
    band = np.clip(np.searchsorted(_BANDS, model, side="right") - 1, 0, nb - 1).ravel()
    over = np.bincount(band, weights=(var - mean).ravel(), minlength=nb)
    sq = np.bincount(band, weights=ref.ravel(), minlength=nb)
    total = max(over.sum(), 0.0) / max(sq.sum(), 1e-12)
    cnt = np.bincount(band, minlength=nb)
    kappa = np.where((cnt >= 50) & (sq > 0), over / np.where(sq > 0, sq, 1.0), total)
    return np.maximum(kappa, 0.0)


def _nb_sf(y: np.ndarray, mu: np.ndarray, inv_theta: np.ndarray) -> np.ndarray:
    """P(Y >= y) for Y negative binomial with mean mu and variance mu + mu**2 * inv_theta."""
    y = np.asarray(y, float)
    mu = np.asarray(mu, float)
    inv_theta = np.maximum(np.asarray(inv_theta, float), 1e-8)
    theta = 1.0 / inv_theta
    with np.errstate(invalid="ignore", divide="ignore"):
        p = special.betainc(np.maximum(y, 1e-300), theta, mu / (mu + theta))
    return np.where(y <= 0, 1.0, np.where(mu > 0, p, 0.0))


def _estimation_error(y: np.ndarray, mu_loo: np.ndarray, mu: np.ndarray, excess: np.ndarray,
                      kappa: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """Relative variance of the expected count's error, by band, from leave-one-week-out.

    E[(y - mu_loo)**2] = mu + (noise excess) + mu**2 * rel: what the out-of-sample
    squared error holds beyond the count's own variance is the error of its expected
    value (estimation and model bias together).
    """
    ok = np.isfinite(y) & np.isfinite(mu_loo) & (mu_loo > 0)
    band = _band(mu)[ok]
    nb = len(_BANDS) - 1
    own = (kappa[band] * excess[ok]) if noise is None else excess[ok]
    err = (y[ok] - mu_loo[ok]) ** 2 - mu_loo[ok] - own
    num = np.bincount(band, weights=err, minlength=nb)
    den = np.bincount(band, weights=mu_loo[ok] ** 2, minlength=nb)
    cnt = np.bincount(band, minlength=nb)
    overall = max(num.sum(), 0.0) / max(den.sum(), 1e-12)
    rel = np.where((cnt >= 200) & (den > 0), num / np.where(den > 0, den, 1.0), overall)
    return np.maximum(rel, 0.0)


# Quantile levels at which the error of an expected count is evaluated: dense in the
# lower tail of the gamma variate (the upper tail of the true mean), where it matters.
_U = np.concatenate([np.logspace(-14, -1, 40), np.linspace(0.11, 0.99, 20)])
_U_W = np.gradient(np.concatenate([[0.0], _U, [1.0]]))[1:-1]
_U_W = _U_W / _U_W.sum()


def _predictive_sf(y: np.ndarray, mu: np.ndarray, inv_theta: np.ndarray,
                   rel_var: np.ndarray) -> np.ndarray:
    """P(Y >= y) when the expected count is itself estimated, with relative variance rel_var.

    A moment-matched negative binomial gets the variance right but not the far tail,
    which is where a scan over millions of windows decides. A mean estimated from a few
    weeks of gamma-mixed counts leaves the true mean inverse-gamma distributed around the
    estimate (a long upper tail: the history may have been unusually quiet), so the
    estimate is mixed over an inverse gamma factor of mean 1 and that relative variance,
    by quadrature over its quantiles.
    """
    rel = np.maximum(np.asarray(rel_var, float), 1e-6)
    a = 2.0 + 1.0 / rel  # inverse gamma with shape a, scale a - 1: mean 1, variance rel
    out = np.zeros(np.shape(mu))
    for u, wu in zip(_U, _U_W, strict=True):
        factor = (a - 1.0) / special.gammaincinv(a, u)  # the factor exceeded with chance u
        out += wu * _nb_sf(y, mu * factor, inv_theta)
    return np.minimum(out, 1.0)


@dataclass(frozen=True)
class _Window:
    pooled: bool  # the cell with its neighbours
    hours: int


def _windows(durations: Sequence[int], pooled: bool) -> list[_Window]:
    ds = sorted({int(d) for d in durations})
    if not ds or ds[0] < 1 or ds[-1] > 24:
        raise InvalidValueError(f"durations must be hours 1..24; got {list(durations)}")
    return [_Window(p, d) for p in ((False, True) if pooled else (False,)) for d in ds]


def scan_surges(
    counts: Any,
    hours: Any,
    adjacency: Any,
    codes: Sequence[str],
    *,
    start: Any,
    end: Any = None,
    durations: Sequence[int] = (1, 2, 3),
    pooled: bool = True,
    min_recurrence_days: float = 30.0,
    min_count: float = 5,
    min_ratio: float = 1.5,
    baseline: Baseline | None = None,
    tz: str | ZoneInfo | None = None,
) -> list[ScanAlert]:
    """Surge alerts over ``[start, end)``, each with its recurrence interval (see the notes).

    Parameters
    ----------
    counts, hours, adjacency :
        As for :func:`expected_counts`; rows from ``start`` on are scanned.
    codes : sequence of str
        The cell codes, one per column.
    start, end : timestamp-like
        The scanned hours (a window is scanned at the hour it ends); default ``end`` the
        end of the data. Hours past the data are never scanned.
    durations : sequence of int
        Window lengths in hours.
    pooled : bool
        Also test each cell pooled with its queen neighbours.
    min_recurrence_days : float
        Alert only on windows chance would match less often than once in this many days
        over the whole scan (the family-wise bound on false alerts per day is its inverse).
    min_count, min_ratio : float
        A window must also hold ``min_count`` events and ``min_ratio`` times its expected
        count: a street office does not act on 3 bikes where 1 was expected.
    baseline : Baseline, optional
        Precomputed :func:`expected_counts`.
    tz : str or ZoneInfo, optional
        The city's time zone (default `city_tz`).

    Returns
    -------
    list of ScanAlert
        Kind ``surge``; windows that overlap in time and touch in space are one alert,
        reported by its strongest window. Sorted by start.

    Raises
    ------
    ValueError
        Malformed counts, too little history, bad options.

    Examples
    --------
    ::

        sim = realistic_counts(50, 50, surges=[(1234, 700, 3, 4.0)])
        scan_surges(sim.counts, sim.hours, sim.adjacency, sim.codes, start=sim.hours[672])
    """
    y, h, a = _check_counts(counts, hours, adjacency)
    codes = np.asarray([str(c) for c in codes])
    if len(codes) != y.shape[1]:
        raise InvalidValueError(f"{len(codes)} codes for {y.shape[1]} cells")
    if min_recurrence_days <= 0:
        raise InvalidValueError(f"min_recurrence_days must be > 0; got {min_recurrence_days}")
    base = baseline or expected_counts(y, h, a, start=start, tz=tz)
    s = base.first_scanned
    e = len(h) if end is None else int(h.searchsorted(_wall(end, tz).ceil("h")))
    if e <= s:
        raise InvalidValueError(f"end must be after start ({h[s]})")
    wins = _windows(durations, pooled)
    n = y.shape[1]
    tests_per_day = n * 24 * len(wins)
    p_max = 1.0 / (min_recurrence_days * tests_per_day)
    star = (a + sparse.identity(n, format="csr")).tocsr()
    how = _how(h)
    day = _day_index(h)[1]
    bday = base.busyness[day]
    hits = []
    inv1 = None
    for win in wins:  # the 1-hour single-cell window comes first: the others refer to it
        ys = np.asarray((star @ y.T).T) if win.pooled else y
        ms = np.asarray((star @ base.mu.T).T) if win.pooled else base.mu
        yr, mr = _rolling(ys, win.hours), _rolling(ms, win.hours)
        hist = slice(win.hours - 1, s)
        dh = bday[hist, None]
        if inv1 is None:
            inv1 = _dispersion(yr[hist] / dh, mr[hist] / dh, (mr[hist] / dh) ** 2,
                               how[hist], HOURS_PER_WEEK)
            # A quieter band is never taken as less dispersed than a busier one (fewer
            # data there, and the Poisson part dominates a small mean anyway).
            inv1 = np.maximum.accumulate(inv1[::-1])[::-1]
            er = base.mu**2 * inv1[_band(base.mu)]
        else:
            ex = np.asarray((star @ er.T).T) if win.pooled else er
            ex = _rolling(ex, win.hours)
        kappa = (np.ones(len(_BANDS) - 1) if win == wins[0] else
                 np.maximum(_dispersion(yr[hist] / dh, mr[hist] / dh, ex[hist] / dh**2,
                                        how[hist], HOURS_PER_WEEK), 1.0))
        exw = None if win == wins[0] else ex[s:e]
        # the expected count's own error, measured out of sample on the history
        ml = _rolling(np.asarray((star @ base.mu_loo.T).T) if win.pooled else base.mu_loo,
                      win.hours)[hist]
        noise = (np.broadcast_to(inv1, (len(_BANDS) - 1,)) if win == wins[0] else None)
        rel = _estimation_error(yr[hist], ml, mr[hist], ex[hist] if exw is not None
                                else mr[hist] ** 2 * inv1[_band(mr[hist])], kappa, noise)
        yw, mw = yr[s:e], mr[s:e]
        cand = (yw >= min_count) & (yw >= min_ratio * mw) & (yw > mw)
        t_i, c_i = np.nonzero(cand)
        if len(t_i) == 0:
            continue
        obs, mu = yw[t_i, c_i], mw[t_i, c_i]
        band = _band(mu)
        # 1/theta of this window's count: kappa (measured) times the excess variance
        # independent cell-hours would have, over the squared mean
        inv = (inv1[band] if exw is None else
               kappa[band] * exw[t_i, c_i] / np.maximum(mu, 1e-12) ** 2)
        p = _nb_sf(obs, mu, inv)  # the mean taken as known: a lower bound
        sure = p <= p_max
        t_i, c_i, obs, mu, inv = t_i[sure], c_i[sure], obs[sure], mu[sure], inv[sure]
        rel_var = np.maximum(rel[_band(mu)], (1.0 / mu + inv) / base.history_weeks)
        p = _predictive_sf(obs, mu, inv, rel_var)
        ok = p <= p_max
        for t, cell, o, m_, pv in zip(t_i[ok] + s, c_i[ok], obs[ok], mu[ok], p[ok],
                                      strict=True):
            hits.append((int(t), int(cell), win, float(o), float(m_), float(pv)))
    return _surge_alerts(hits, h, a, star, codes, tests_per_day, tz)


def _surge_alerts(hits: list, h: pd.DatetimeIndex, a: sparse.csr_matrix,
                  star: sparse.csr_matrix, codes: np.ndarray, tests_per_day: float,
                  tz: Any) -> list[ScanAlert]:
    """Join hits that overlap in time and touch in space; one alert per group."""
    from scipy.sparse.csgraph import connected_components

    if not hits:
        return []
    t = np.array([x[0] for x in hits])
    cell = np.array([x[1] for x in hits])
    first = t - np.array([x[2].hours for x in hits]) + 1
    pooled = np.array([x[2].pooled for x in hits])
    pv = np.array([x[5] for x in hits])
    reach = (star @ star).tocsr()  # pooled windows of cells two apart share a cell
    near1 = np.asarray(star[cell][:, cell].todense()) > 0
    near2 = np.asarray(reach[cell][:, cell].todense()) > 0
    touch_space = np.where(pooled[:, None] | pooled[None, :], near2, near1)
    touch_time = (first[:, None] <= t[None, :] + 1) & (first[None, :] <= t[:, None] + 1)
    _, label = connected_components(sparse.csr_matrix(touch_space & touch_time),
                                    directed=False)
    zone = city_tz(tz)
    alerts = []
    for lab in np.unique(label):
        rows = np.flatnonzero(label == lab)
        best = rows[np.lexsort((-np.array([hits[r][3] for r in rows]), pv[rows]))[0]]
        tt, cc, win, obs, mu, p = hits[best]
        members = [cc]
        if win.pooled:
            members += [int(j) for j in a.indices[a.indptr[cc]:a.indptr[cc + 1]]]
        start = h[tt - win.hours + 1].tz_localize(zone)
        end = (h[tt] + pd.Timedelta("1h")).tz_localize(zone)
        rec = min(1.0 / max(p * tests_per_day, 1e-300), _MAX_RECURRENCE_DAYS)
        zh, en = _surge_why(codes[cc], len(members) - 1, start, end, obs, mu, rec)
        alerts.append(ScanAlert(kind=AlertKind.SURGE.value,
                                cell_codes=tuple(str(codes[m]) for m in members),
                                start=start, end=end, observed=obs, expected=mu,
                                recurrence_days=rec, p=p, why=zh, why_en=en))
    alerts.sort(key=lambda x: (x.start, x.cell_codes))
    return alerts


def _every(days: float) -> tuple[str, str]:
    if days >= _MAX_RECURRENCE_DAYS:
        return "远超一万年", "far more than 10,000 years"
    if days >= 3650:
        return f"{days / 365.25:,.0f} 年", f"{days / 365.25:,.0f} years"
    return f"{days:,.0f} 天", f"{days:,.0f} days"


def _surge_why(code: str, n_nbrs: int, start: pd.Timestamp, end: pd.Timestamp, obs: float,
               mu: float, rec: float) -> tuple[str, str]:
    where_zh = f"单元网格 {code}" + (f"及相邻 {n_nbrs} 个网格" if n_nbrs else "")
    where_en = f"cell {code}" + (f" and its {n_nbrs} neighbours" if n_nbrs else "")
    span = f"{start:%Y-%m-%d %H}:00–{end:%H}:00"
    every_zh, every_en = _every(rec)
    zh = (f"{span}（{_WEEKDAYS_ZH[start.day_of_week]}）{where_zh}共 {obs:.0f} 起，"
          f"按其近几周同一时段的水平和当天全市忙闲程度，预期约 {mu:.1f} 起（{obs / mu:.1f} 倍）。"
          f"全城按此强度的偶然报警约每 {every_zh}才出现一次。")
    en = (f"{span} ({_WEEKDAYS_EN[start.day_of_week]}): {where_en} had {obs:.0f} events where "
          f"{mu:.1f} were expected from recent weeks at these hours and the city's busyness "
          f"that day ({obs / mu:.1f}x); chance would raise an alert this strong anywhere in "
          f"the city once every {every_en}.")
    return zh, en


# --------------------------------------------------------------------------- chronic hotspots


def _trend_category(hot: np.ndarray, cold: np.ndarray, slope_sign: int) -> Trend | None:
    """Emerging hot-spot category of one cell's daily hot/cold series (ESRI's rules)."""
    n = len(hot)
    share = hot.mean()
    if not hot[-1]:
        return Trend.HISTORICAL if hot[:-1].mean() >= 0.9 and n > 1 else None
    if share >= 0.9:
        return {1: Trend.INTENSIFYING, -1: Trend.DIMINISHING}.get(slope_sign, Trend.PERSISTENT)
    if hot[:-1].sum() == 0:
        return Trend.NEW
    run = n - np.flatnonzero(~hot)[-1] - 1  # the hot run that ends on the last day
    if hot[: n - run].sum() == 0:
        return Trend.CONSECUTIVE
    return Trend.OSCILLATING if cold.any() else Trend.SPORADIC


def chronic_hotspots(
    counts: Any,
    hours: Any,
    adjacency: Any,
    codes: Sequence[str],
    *,
    start: Any = None,
    end: Any = None,
    min_ratio: float = 2.0,
    alpha: float = 0.05,
    tz: str | ZoneInfo | None = None,
) -> list[ScanAlert]:
    """Cells persistently far above their neighbours over ``[start, end)``, once each.

    Each day of the window, a cell is *hot* when its day total is significantly above
    ``min_ratio`` times its queen neighbours' mean (negative binomial upper tail, its
    dispersion measured on the window's own day totals, Bonferroni over the cells: at
    most ``alpha`` false hot cells a day), *cold* when significantly below the neighbours'
    mean over ``min_ratio``. The daily series gives the emerging hot-spot category
    (:class:`Trend`; a Mann-Kendall test on the cell-to-neighbours ratio tells
    intensifying from persistent from diminishing). Every categorised cell is one
    ``chronic`` alert for the window, not a surge each peak.

    Parameters
    ----------
    counts, hours, adjacency, codes :
        As for :func:`scan_surges`.
    start, end : timestamp-like, optional
        The window (default all the data), in city time; only hours in the data count.
    min_ratio : float
        How far above its neighbours a cell must be.
    alpha : float
        Family-wise error per day over the cells.

    Returns
    -------
    list of ScanAlert
        Kind ``chronic`` with ``trend``; ``observed`` the window total in the cell,
        ``expected`` ``min_ratio`` times its neighbours' mean total.

    Examples
    --------
    ::

        chronic_hotspots(sim.counts, sim.hours, sim.adjacency, sim.codes)
    """
    from scipy import stats

    y, h, a = _check_counts(counts, hours, adjacency)
    codes = np.asarray([str(c) for c in codes])
    if len(codes) != y.shape[1]:
        raise InvalidValueError(f"{len(codes)} codes for {y.shape[1]} cells")
    if min_ratio < 1 or not 0 < alpha < 1:
        raise InvalidValueError(f"need min_ratio >= 1 and 0 < alpha < 1; got {min_ratio}, {alpha}")
    s = 0 if start is None else _start_index(h, start, tz)
    e = len(h) if end is None else int(h.searchsorted(_wall(end, tz).ceil("h")))
    if e <= s:
        raise InvalidValueError("the window holds no hour of the data")
    hw = h[s:e]
    days, day = _day_index(hw)
    d_tot = _group_sum(y[s:e], day, len(days))  # (days, cells)
    n = y.shape[1]
    deg = np.maximum(np.asarray(a.sum(1)).ravel(), 1.0)
    nbr = np.maximum(np.asarray((a @ d_tot.T).T) / deg, 1.0)  # at least one event a day
    # The day-to-day spread of a cell, once its neighbours' own ups and downs (weekday,
    # weather, regional shocks) are divided out, measures the dispersion of its day total.
    dfl = d_tot / (nbr / nbr.mean(0))
    mean, var = dfl.mean(0), dfl.var(0, ddof=1) if len(days) > 1 else np.zeros(n)
    inv = max(float((var - mean).sum() / max((mean**2).sum(), 1e-12)), 0.01)
    level = alpha / n
    hot = _nb_sf(d_tot, min_ratio * nbr, np.full(d_tot.shape, inv)) < level
    low = nbr / min_ratio
    cold = (1.0 - _nb_sf(d_tot + 1, low, np.full(d_tot.shape, inv))) < level
    ratio = np.log((d_tot + 0.5) / (nbr + 0.5))
    zone = city_tz(tz)
    w_start = hw[0].tz_localize(zone)
    w_end = (hw[-1] + pd.Timedelta("1h")).tz_localize(zone)
    alerts = []
    for c in np.flatnonzero(hot.any(0)):
        sign = 0
        if len(days) >= 4:
            tau = stats.kendalltau(np.arange(len(days)), ratio[:, c])
            if tau.pvalue < 0.05:
                sign = 1 if tau.statistic > 0 else -1
        trend = _trend_category(hot[:, c], cold[:, c], sign)
        if trend is None:
            continue
        obs, exp = float(d_tot[:, c].sum()), float(min_ratio * nbr[:, c].sum())
        p = float(_nb_sf(np.array([obs]), np.array([exp]), np.array([inv / len(days)]))[0])
        rec = min(len(days) / max(p * n, 1e-300), _MAX_RECURRENCE_DAYS)
        k = int(hot[:, c].sum())
        times = obs / max(nbr[:, c].sum(), 1e-9)
        every_zh, every_en = _every(rec)
        zh = (f"{w_start:%Y-%m-%d} 至 {w_end - pd.Timedelta('1h'):%Y-%m-%d}，单元网格 "
              f"{codes[c]} 有 {k}/{len(days)} 天显著高于相邻网格（共 {obs:.0f} 起，为相邻网格"
              f"平均的 {times:.1f} 倍）；趋势：{_TREND_ZH[trend]}。这是常发热点，不是一次突发；"
              f"偶然出现这样的网格约每 {every_zh}一次。")
        en = (f"{w_start:%Y-%m-%d} to {w_end - pd.Timedelta('1h'):%Y-%m-%d}: cell {codes[c]} "
              f"was significantly above its neighbours on {k} of {len(days)} days ({obs:.0f} "
              f"events, {times:.1f}x the neighbours' mean); trend: {trend.value}. A chronic "
              f"hotspot, not a surge; chance would produce such a cell once every {every_en}.")
        alerts.append(ScanAlert(kind=AlertKind.CHRONIC.value, cell_codes=(str(codes[c]),),
                                start=w_start, end=w_end, observed=obs, expected=exp,
                                recurrence_days=rec, p=p, why=zh, why_en=en,
                                trend=trend.value))
    alerts.sort(key=lambda x: -x.ratio)
    return alerts


# --------------------------------------------------------------------------- before/after


@dataclass(frozen=True)
class Comparison:
    """A before/after change at some cells against control cells (difference in differences).

    ``ratio`` is (after / before in the treated cells) over (after / before in the
    controls); ``ci_low``/``ci_high`` its confidence interval and ``p_value`` the
    two-sided test of ``ratio = 1``; ``controls`` the control cells' codes; ``method``
    says how. ``days_before``/``days_after`` count the days of data used.
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    controls: tuple[str, ...]
    method: str
    days_before: int
    days_after: int
    why: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        d = asdict(self)
        d["controls"] = list(self.controls)
        return d


_DID_METHOD = ("difference in differences of day totals (Poisson ratio of ratios, days "
               "weighted so both periods have the same weekday/weekend mix), delete-one-day "
               "jackknife errors (days as clusters), t with the shorter period's days - 1 "
               "degrees of freedom; "
               "controls: the cells nearest the treated ones in pre-period level, "
               "trend and weekend share, excluding the treated cells and {rings} "
               "ring(s) around them")


def _did_log_ratio(treated: np.ndarray, control: np.ndarray, after: np.ndarray,
                   dow: np.ndarray, keep: np.ndarray, t0: pd.Timestamp) -> float:
    """Log of (after/before treated) / (after/before controls) over the kept days.

    Days are weighted so both periods count each kind of day (``dow``: weekday or
    weekend) they share equally.
    """
    shared = np.intersect1d(dow[after & keep], dow[~after & keep])
    log_r = 0.0
    for side, sign in ((after & keep, 1.0), (~after & keep, -1.0)):
        tt = cc = 0.0
        for d in shared:
            sel = side & (dow == d)
            tt += treated[sel].sum() / sel.sum()
            cc += control[sel].sum() / sel.sum()
        if tt <= 0 or cc <= 0:
            which = "treated cells" if tt <= 0 else "control cells"
            when = "after" if sign > 0 else "before"
            raise InvalidValueError(f"no events in the {which} {when} {t0:%Y-%m-%d}: no ratio")
        log_r += sign * (np.log(tt) - np.log(cc))
    return float(log_r)


def _pre_features(daily: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Level, trend and weekend share of each column of pre-period day totals."""
    lg = np.log(daily + 0.5)
    t = np.arange(len(daily)) - (len(daily) - 1) / 2
    slope = (t @ (lg - lg.mean(0))) / max((t**2).sum(), 1e-12)
    tot = np.maximum(daily.sum(0), 1e-12)
    wk = daily[weekend].sum(0) / tot if weekend.any() else np.zeros(daily.shape[1])
    return np.vstack([lg.mean(0), slope * 7, wk * 4]).T  # weights: one unit ~ one "feature"


def compare_counts(
    counts: Any,
    hours: Any,
    adjacency: Any,
    codes: Sequence[str],
    *,
    cells: Sequence[str],
    change: Any,
    n_controls: int = 20,
    exclude_rings: int = 2,
    hours_of_day: Sequence[int] | None = None,
    alpha: float = 0.05,
    tz: str | ZoneInfo | None = None,
) -> Comparison:
    """Estimate the change at ``cells`` from ``change`` on, against chosen control cells.

    Only the hours in ``counts`` count: give the hours the data cover, never zeros past
    them. Day totals (of ``hours_of_day`` if given) of the treated cells and of the
    controls give the ratio of ratios; days are the clusters of the uncertainty, so a
    busy or a quiet day moves all its hours together, and city-wide day shocks cancel in
    the ratio.

    Parameters
    ----------
    counts, hours, adjacency, codes :
        As for :func:`scan_surges`.
    cells : sequence of str
        The treated cells' codes.
    change : timestamp-like
        When the measure took effect (city time).
    n_controls : int
        How many control cells to pick.
    exclude_rings : int
        Rings of neighbours around the treated cells never used as controls (spill-over:
        bikes moved from a lane park in the next street).
    hours_of_day : sequence of int, optional
        Only these hours of the day (e.g. the meal peaks).
    alpha : float
        1 - confidence of the interval.

    Returns
    -------
    Comparison

    Raises
    ------
    CellNotFoundError
        An unknown cell code.
    ValueError
        No data on one side of ``change``, no events in the treated cells before it, too
        few candidate controls.

    Examples
    --------
    ::

        r = compare_counts(sim.counts, sim.hours, sim.adjacency, sim.codes,
                           cells=[sim.codes[820]], change=sim.hours[480])
        r.ratio, r.p_value
    """
    from scipy import stats

    from gridcore.errors import CellNotFoundError

    y, h, a = _check_counts(counts, hours, adjacency)
    codes = np.asarray([str(c) for c in codes])
    pos = pd.Index(codes).get_indexer([str(c) for c in cells])
    if len(pos) == 0 or (pos < 0).any():
        bad = [c for c, p in zip(cells, pos, strict=True) if p < 0]
        raise CellNotFoundError(f"cell code(s) {bad or '(none)'} are not in the grid")
    if hours_of_day is not None:
        hod = sorted({int(x) for x in hours_of_day})
        if not hod or hod[0] < 0 or hod[-1] > 23:
            raise InvalidValueError(f"hours_of_day must be hours 0..23; got {list(hours_of_day)}")
        keep = h.hour.isin(hod)
        y, h = y[keep], h[keep]
    t0 = _wall(change, tz)
    days, day = _day_index(h)
    daily = _group_sum(y, day, len(days))
    after = days >= t0.normalize()
    if t0 != t0.normalize():
        raise InvalidValueError(f"change must be a day (midnight, city time); got {t0}")
    if after.all() or not after.any():
        raise InvalidValueError(f"the data ({h[0]} to {h[-1]}) do not cover both sides of {t0}")
    treated = daily[:, pos].sum(1)
    # controls: outside the treated cells' rings, nearest in pre-period features
    n = y.shape[1]
    star = (a + sparse.identity(n, format="csr")).tocsr()
    near = np.zeros(n, dtype=bool)
    near[pos] = True
    for _ in range(max(int(exclude_rings), 0)):
        near = np.asarray(star @ near.astype(float)).ravel() > 0
    pre = daily[~after]
    weekend = days[~after].day_of_week.to_numpy() >= 5
    feats = _pre_features(pre, weekend)
    target = _pre_features(pre[:, pos].mean(1, keepdims=True), weekend)[0]
    cand = np.flatnonzero(~near & (pre.sum(0) > 0))
    if len(cand) < n_controls:
        raise InvalidValueError(f"only {len(cand)} candidate control cells outside the treated "
                         f"area; {n_controls} are needed")
    dist = np.linalg.norm(feats[cand] - target, axis=1)
    ctrl = cand[np.argsort(dist, kind="stable")[:n_controls]]
    control = daily[:, ctrl].sum(1)
    dow = (days.day_of_week.to_numpy() >= 5).astype(np.int64)  # weekday 0, weekend 1
    log_r = _did_log_ratio(treated, control, after, dow, np.ones(len(days), dtype=bool), t0)
    # Uncertainty: the delete-one-day jackknife. Days are the clusters (a busy or quiet
    # day moves all its hours); with a few weeks of days the jackknife is the honest
    # small-sample choice where the plain clustered sandwich runs anti-conservative.
    shared = np.intersect1d(dow[after], dow[~after])
    used = np.flatnonzero(np.isin(dow, shared))
    reps = []
    for d in used:
        keep = np.ones(len(days), dtype=bool)
        keep[d] = False
        try:
            reps.append(_did_log_ratio(treated, control, after, dow, keep, t0))
        except InvalidValueError:  # dropping this day empties a side: it carries it all
            reps.append(np.inf)
    reps = np.asarray(reps)
    n_b, n_a = int((~after)[used].sum()), int(after[used].sum())
    k = len(reps)
    se = (float(np.sqrt((k - 1) / k * ((reps - reps.mean()) ** 2).sum()))
          if np.isfinite(reps).all() and k > 1 else float("inf"))
    # the shorter period's days carry most of the variance: as many degrees of freedom
    # as it has days less one (Welch's spirit; the pooled n - 2 ran anti-conservative)
    dof = max(min(n_b, n_a) - 1, 1)
    tq = stats.t.ppf(1 - alpha / 2, dof)
    p = float(2 * stats.t.sf(abs(log_r) / se, dof)) if se > 0 else float(log_r == 0)
    ratio = float(np.exp(log_r))
    lo, hi = float(np.exp(log_r - tq * se)), float(np.exp(log_r + tq * se))
    verdict = "变化显著" if p < alpha else "变化不显著"
    why = (f"{t0:%Y-%m-%d} 前后对比：{len(pos)} 个网格相对 {len(ctrl)} 个对照网格的变化为 "
           f"{(ratio - 1) * 100:+.0f}%（比值 {ratio:.2f}，{(1 - alpha) * 100:.0f}% 区间 "
           f"{lo:.2f}–{hi:.2f}，p={p:.2g}，前 {n_b} 天、后 {n_a} 天）：{verdict}。")
    return Comparison(ratio=ratio, ci_low=lo, ci_high=hi, p_value=p,
                      controls=tuple(str(codes[c]) for c in ctrl),
                      method=_DID_METHOD.format(rings=int(exclude_rings)),
                      days_before=n_b, days_after=n_a, why=why)


# --------------------------------------------------------------------------- events in, alerts out


def events_to_counts(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    start: Any = None,
    end: Any = None,
    history_weeks: float = 4,
    crs: str = "wgs84",
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tz: str | ZoneInfo | None = None,
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Hourly counts ``(hours, cells)`` of events, over the hours the data cover.

    The hours run from ``history_weeks`` before ``start`` (or the first event's hour, if
    later) to ``end`` (or the hour after the last event, if earlier): hours past the
    data are never filled with zeros. Events outside every cell are dropped.

    Returns
    -------
    counts : numpy.ndarray of float
    hours : DatetimeIndex (city wall time)
    """
    ev = _check_events(events, crs=crs, tz=tz)
    t_min = ev["time"].min().floor("h")
    t_max = ev["time"].max().floor("h") + pd.Timedelta("1h")
    lo = t_min if start is None else max(_wall(start, tz).floor("h")
                                         - pd.Timedelta(weeks=history_weeks), t_min)
    hi = t_max if end is None else min(_wall(end, tz).ceil("h"), t_max)
    if hi <= lo:
        raise DataFileError(f"the events ({t_min} to {t_max}) do not cover the period asked")
    hours = pd.date_range(lo, hi, freq="h", inclusive="left")
    pos = events_to_cell_positions(ev["lon"], ev["lat"], cells, locator=locator)
    return _hourly_matrix(ev, pos, len(cells), hours).toarray(), hours


def _adjacency(cells: gpd.GeoDataFrame, weights: Any) -> sparse.csr_matrix:
    w = weights if weights is not None else cell_weights(cells)
    return sparse.csr_matrix(w if sparse.issparse(w) else w.sparse)


def _active(a: sparse.csr_matrix, y: np.ndarray, codes: np.ndarray,
            keep: Any = ()) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Keep the cells with events and their neighbours (and ``keep``): no other can alert.

    A cell with no event in the whole period has no count to test and adds nothing to a
    neighbour's pooled window; dropping them keeps a city of 43,000 cells with events in
    a few districts in memory. The scan's tests per day are counted over the cells kept.
    """
    busy = y.sum(0) > 0
    busy[np.asarray(keep, dtype=np.int64)] = True
    star = a + sparse.identity(a.shape[0], format="csr")
    on = np.flatnonzero(np.asarray(star @ busy.astype(float)).ravel() > 0)
    return a[on][:, on].tocsr(), y[:, on], codes[on]


def scan_alerts(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    start: Any,
    end: Any = None,
    history_weeks: float = 8,
    min_recurrence_days: float = 30.0,
    chronic: bool = True,
    crs: str = "wgs84",
    weights: Any = None,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    tz: str | ZoneInfo | None = None,
) -> list[ScanAlert]:
    """Surge and chronic alerts of events over ``[start, end)`` on a unit grid.

    Events before ``start`` (up to ``history_weeks``) are the history. See
    :func:`scan_surges` and :func:`chronic_hotspots`.

    Parameters
    ----------
    events : DataFrame
        ``lon``, ``lat``, ``time`` (aware, or naive city time), optional ``count``.
    cells : GeoDataFrame
        The unit grid (EPSG:4326, ``code``).
    start, end : timestamp-like
    history_weeks : float
    min_recurrence_days : float
    chronic : bool
        Also report chronic hotspots over the window.
    crs : {"wgs84", "gcj02", "bd09"}
    weights : libpysal W or sparse matrix, optional
        Cell neighbours (default :func:`cell_weights`).
    progress : callable, optional
        Called with the name of each step as it starts.

    Returns
    -------
    list of ScanAlert
        Surges by start, then chronic hotspots.

    Examples
    --------
    ::

        alerts = scan_alerts(events, city.cells, start="2018-04-01", end="2018-04-10")
    """
    say = progress or (lambda _step: None)
    say("binning events by cell and hour")
    y, hours = events_to_counts(events, cells, start=start, end=end,
                                history_weeks=history_weeks, crs=crs, locator=locator, tz=tz)
    say("neighbours")
    a, y, codes = _active(_adjacency(cells, weights), y, cells["code"].astype(str).to_numpy())
    say("surges")
    out = scan_surges(y, hours, a, codes, start=start, end=end,
                      min_recurrence_days=min_recurrence_days, tz=tz)
    if chronic:
        say("chronic hotspots")
        out += chronic_hotspots(y, hours, a, codes, start=start, end=end, tz=tz)
    return out


def compare(
    events: pd.DataFrame,
    cells: gpd.GeoDataFrame,
    *,
    cell_codes: Sequence[str],
    change: Any,
    crs: str = "wgs84",
    weights: Any = None,
    locator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tz: str | ZoneInfo | None = None,
    **options: Any,
) -> Comparison:
    """Before/after at ``cell_codes`` from ``change`` on, against controls (see `compare_counts`).

    Only the hours the events cover count (from the first event's hour to the hour
    after the last one). ``options`` go to :func:`compare_counts` (``n_controls``,
    ``exclude_rings``, ``hours_of_day``, ``alpha``).

    Examples
    --------
    ::

        r = compare(events, city.cells, cell_codes=alert.cell_codes, change="2018-04-10")
        r.ratio, r.ci_low, r.ci_high, r.p_value
    """
    from gridcore.errors import CellNotFoundError

    codes = cells["code"].astype(str).to_numpy()
    unknown = sorted(set(map(str, cell_codes)) - set(codes))
    if unknown:
        raise CellNotFoundError(f"cell code(s) {unknown} are not in the grid")
    y, hours = events_to_counts(events, cells, crs=crs, locator=locator, tz=tz)
    a, y, codes = _active(_adjacency(cells, weights), y, codes,
                          keep=pd.Index(codes).get_indexer(list(map(str, cell_codes))))
    return compare_counts(y, hours, a, codes, cells=cell_codes, change=change, tz=tz,
                          **options)


_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def read_events_file(path: str) -> pd.DataFrame:
    """Read events from CSV or Parquet: ``time`` ISO 8601 with its offset, ``lon``, ``lat``.

    Optional ``count``. Times are returned aware (UTC); binning reads them in the city's
    time.

    Raises
    ------
    DataFileError
        Unknown format, missing columns, a time without offset or unreadable.
    """
    import os

    ext = os.path.splitext(str(path))[1].lower()
    if ext in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise DataFileError("reading Parquet needs pyarrow, which is not installed; "
                                "install it or give the events as CSV") from None
    elif ext in (".csv", ".txt"):
        try:
            df = pd.read_csv(path, dtype={"time": str})
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataFileError(f"{path}: not a readable CSV ({exc})") from None
    else:
        raise DataFileError(f"{path}: events must be .csv or .parquet; got {ext or 'no suffix'}")
    missing = [c for c in ("time", "lon", "lat") if c not in df.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {missing}; need time (ISO 8601 with "
                            f"offset), lon, lat; got {list(df.columns)}")
    if len(df) == 0:
        raise DataFileError(f"{path}: holds no events")
    t = df["time"]
    if not isinstance(t.dtype, pd.DatetimeTZDtype):
        text = t.astype(str).str.strip()
        bad = ~text.str.contains(_OFFSET, regex=True)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFileError(f"{path}: row {i + 1}: time {text.iloc[i]!r} has no UTC "
                                "offset; write it like 2018-04-05T12:00:00+08:00")
        try:
            t = pd.to_datetime(text, format="ISO8601", utc=True)
        except (ValueError, TypeError) as exc:
            raise DataFileError(f"{path}: time is not ISO 8601 ({exc})") from None
    for col in ("lon", "lat"):
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise DataFileError(f"{path}: {col} must be numbers (degrees)")
    out = pd.DataFrame({"time": t, "lon": df["lon"].astype(float),
                        "lat": df["lat"].astype(float)})
    if "count" in df.columns:
        out["count"] = df["count"]
    return out
