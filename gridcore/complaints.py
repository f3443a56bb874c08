"""Hotspots from complaint history (the Daxing leaking-roof case).

Live reports show where things go wrong now; the history of past complaints shows where
they will go wrong again. In 2018 Daxing searched two years of unresolved hotline
complaints for leaking roofs, found the households at risk before the rainy season and
fixed them by June. This module does the same on any case table:

1. :func:`search_cases`: keyword and class search over past cases (with status and
   date filters);
2. :func:`cluster_cases`: spatial clustering of the matches with DBSCAN on metric
   coordinates (EPSG:4548). DBSCAN rather than Gi* on cell counts because complaints
   about one compound are a few dozen points: a density radius in metres says directly
   "cases within 100 m of each other belong to one place", needs no grid, and leaves
   isolated cases as noise instead of smoothing them into their neighbours;
3. :func:`places_at_risk`: one row per cluster: how many cases and distinct households,
   where (centre, radius, the unit cells it touches), since when, how many unresolved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridcore.errors import DataFileError, InvalidCodeError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["cluster_cases", "places_at_risk", "search_cases"]

_REQUIRED = ("lon", "lat", "reported_at", "event_class", "description")


def _check_cases(cases: pd.DataFrame) -> None:
    if not isinstance(cases, pd.DataFrame):
        raise DataFileError(f"cases must be a pandas DataFrame; got {type(cases).__name__}")
    missing = [c for c in _REQUIRED if c not in cases.columns]
    if missing:
        raise DataFileError(
            f"cases lack column(s) {missing}; expected {list(_REQUIRED)}, got {list(cases.columns)}"
        )


def _check_classes(classes: Sequence[str]) -> list[str]:
    out = []
    for c in classes:
        c = str(c)
        if not re.fullmatch(r"\d{2}|\d{4}", c):
            raise InvalidCodeError(
                f"event class {c!r} is not a 2-digit major (e.g. '05') or a 4-digit class "
                "(e.g. '0506')"
            )
        out.append(c)
    return out


def search_cases(
    cases: pd.DataFrame,
    *,
    keywords: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    status: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Cases whose description holds any keyword and whose class is among ``classes``.

    Parameters
    ----------
    cases : DataFrame
        Columns ``lon``, ``lat`` (WGS84), ``reported_at``, ``event_class`` (4-digit
        str), ``description``; optionally ``status``, ``household``.
    keywords : sequence of str, optional
        Matched literally anywhere in the description (any of them).
    classes : sequence of str, optional
        4-digit classes, or 2-digit majors matching all their classes.
    start, end : timestamp-like, optional
        ``reported_at`` in ``[start, end)``.
    status : str or sequence of str, optional
        Keep only these statuses (e.g. ``"unresolved"``).

    Returns
    -------
    DataFrame
        The matching rows (original index kept).

    Raises
    ------
    DataFileError
        Missing columns.
    InvalidCodeError
        A class code that is not 2 or 4 digits.

    Examples
    --------
    ::

        leaks = search_cases(cases, keywords=["漏雨"], status="unresolved")
    """
    _check_cases(cases)
    keep = np.ones(len(cases), dtype=bool)
    if keywords is not None:
        kws = [str(k) for k in keywords if str(k)]
        if not kws:
            raise ValueError("keywords is empty; give at least one word, e.g. ['漏雨']")
        pattern = "|".join(re.escape(k) for k in kws)
        keep &= cases["description"].astype(str).str.contains(pattern, regex=True).to_numpy()
    if classes is not None:
        cls = _check_classes(classes)
        ec = cases["event_class"].astype(str)
        keep &= np.logical_or.reduce([ec.str.startswith(c).to_numpy() for c in cls])
    t = pd.to_datetime(cases["reported_at"])
    if start is not None:
        keep &= (t >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (t < pd.Timestamp(end)).to_numpy()
    if status is not None:
        if "status" not in cases.columns:
            raise DataFileError("cases have no 'status' column to filter on")
        wanted = [status] if isinstance(status, str) else list(status)
        keep &= cases["status"].isin(wanted).to_numpy()
    return cases[keep]


def cluster_cases(
    cases: pd.DataFrame, *, eps_m: float = 100.0, min_samples: int = 10
) -> np.ndarray:
    """DBSCAN cluster label of each case (-1: isolated), on EPSG:4548 metres.

    Parameters
    ----------
    cases : DataFrame
        With ``lon``, ``lat`` (WGS84).
    eps_m : float
        Neighbourhood radius in metres.
    min_samples : int
        Cases (the point included) within ``eps_m`` for a core case.

    Returns
    -------
    numpy.ndarray of int
        Labels numbered 0.. by decreasing cluster size.

    Examples
    --------
    ::

        labels = cluster_cases(leaks, eps_m=100, min_samples=10)
    """
    from sklearn.cluster import DBSCAN

    from gridcore.crs import validate_lonlat, wgs84_to_projected

    if eps_m <= 0 or min_samples < 1:
        raise ValueError(f"need eps_m > 0 and min_samples >= 1; got {eps_m}, {min_samples}")
    if len(cases) == 0:
        return np.empty(0, dtype=np.int64)
    lon, lat = cases["lon"].to_numpy(float), cases["lat"].to_numpy(float)
    validate_lonlat(lon, lat)
    x, y = wgs84_to_projected(lon, lat)
    raw = DBSCAN(eps=eps_m, min_samples=min_samples).fit_predict(np.column_stack([x, y]))
    # Renumber by size so that label 0 is the biggest place, whatever the input order.
    labels = np.full(len(raw), -1, dtype=np.int64)
    ids, sizes = np.unique(raw[raw >= 0], return_counts=True)
    for new, old in enumerate(ids[np.argsort(-sizes, kind="stable")]):
        labels[raw == old] = new
    return labels


def places_at_risk(
    cases: pd.DataFrame,
    cells: gpd.GeoDataFrame | None = None,
    *,
    keywords: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    status: Sequence[str] | str | None = None,
    eps_m: float = 100.0,
    min_samples: int = 10,
) -> pd.DataFrame:
    """List the places where matching complaints cluster, biggest first.

    Parameters
    ----------
    cases : DataFrame
        See :func:`search_cases`.
    cells : GeoDataFrame, optional
        The unit grid; when given, each place lists the cell codes its cases fall in.
    keywords, classes, start, end, status
        The search (see :func:`search_cases`).
    eps_m, min_samples
        The clustering (see :func:`cluster_cases`).

    Returns
    -------
    DataFrame
        ``place`` (0..), ``n_cases``, ``n_households`` (distinct ``household`` where
        known, else cases), ``n_unresolved``, ``lon``, ``lat`` (centre, WGS84),
        ``radius_m`` (95th percentile distance to the centre), ``first``, ``last``,
        ``cell_codes`` (list), ``example`` (a description).

    Examples
    --------
    ::

        places_at_risk(cases, city.cells, keywords=["漏雨", "漏水"], status="unresolved",
                           start="2016-05-01", end="2018-05-01")
    """
    from gridcore.crs import projected_to_wgs84, wgs84_to_projected

    hits = search_cases(
        cases, keywords=keywords, classes=classes, start=start, end=end, status=status
    )
    cols = [
        "place",
        "n_cases",
        "n_households",
        "n_unresolved",
        "lon",
        "lat",
        "radius_m",
        "first",
        "last",
        "cell_codes",
        "example",
    ]
    labels = cluster_cases(hits, eps_m=eps_m, min_samples=min_samples)
    if len(hits) == 0 or (labels < 0).all():
        return pd.DataFrame(columns=cols)
    hits = hits.assign(_label=labels)
    x, y = wgs84_to_projected(hits["lon"].to_numpy(float), hits["lat"].to_numpy(float))
    hits = hits.assign(_x=x, _y=y)
    if cells is not None:
        from gridcore.heatmap import events_to_cell_positions

        pos = events_to_cell_positions(hits["lon"], hits["lat"], cells)
        codes = np.where(pos >= 0, cells["code"].to_numpy()[np.maximum(pos, 0)], None)
        hits = hits.assign(_code=codes)
    rows = []
    for label, g in hits[hits["_label"] >= 0].groupby("_label"):
        cx, cy = g["_x"].mean(), g["_y"].mean()
        lon, lat = projected_to_wgs84(np.array([cx]), np.array([cy]))
        r = np.hypot(g["_x"] - cx, g["_y"] - cy)
        if "household" in g.columns and g["household"].notna().any():
            n_hh = int(g["household"].nunique()) + int(g["household"].isna().sum())
        else:
            n_hh = len(g)
        n_unres = int((g["status"] == "unresolved").sum()) if "status" in g.columns else 0
        t = pd.to_datetime(g["reported_at"])
        rows.append(
            {
                "place": int(label),
                "n_cases": len(g),
                "n_households": n_hh,
                "n_unresolved": n_unres,
                "lon": float(lon[0]),
                "lat": float(lat[0]),
                "radius_m": float(np.percentile(r, 95)),
                "first": t.min(),
                "last": t.max(),
                "cell_codes": sorted(set(g["_code"].dropna())) if "_code" in g.columns else [],
                "example": str(g["description"].iloc[0]),
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["n_households", "n_cases"], ascending=False).reset_index(drop=True)
