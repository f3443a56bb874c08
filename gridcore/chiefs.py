"""Street-and-alley chiefs (街巷长) and the grids they answer for.

Since 2017 each named street or alley in Beijing's old city has a chief, a street-office
or community leader who patrols it and follows its problems. A chief's *assigned grids*
are the unit grid cells their streets and alleys run through.

Three tables, all plain data:

- chiefs: ``id``, ``name``, ``title``;
- alleys (街巷): ``name``, ``geometry`` (LineString, WGS84), ``synthetic``;
- assignments: ``chief_id``, ``alley``, ``valid_from`` (date). A row reads "from this
  date on, this alley is this chief's": the row in force for an alley on a day is its
  latest row with ``valid_from`` on or before that day, so a handover is a new row, not
  an edit, and history stays answerable.

The alley-to-cell join is spatial (:func:`alleys_to_cells`) and computed once per grid
version; :func:`cells_of_chief` then answers from tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridcore._data import read_data_csv
from gridcore._time import Clock, city_date, default_clock
from gridcore.errors import DataFileError, NotFoundError

__all__ = [
    "ChiefRoster",
    "alleys_to_cells",
    "assignments_on",
    "chief_record",
    "cells_of_chief",
    "chiefs_of_cells",
    "load_sample_roster",
    "validate_assignments",
]


@dataclass(frozen=True)
class ChiefRoster:
    """Chiefs, their alleys and who had which alley from when."""

    chiefs: pd.DataFrame  # id, name, title
    alleys: gpd.GeoDataFrame  # name, synthetic, geometry (EPSG:4326)
    assignments: pd.DataFrame  # chief_id, alley, valid_from (datetime64 date)


def _as_date(on: dt.date | str | None, clock: Clock | None = None) -> pd.Timestamp:
    """Return the day asked about: ``on`` (an instant: its city date), else the city's today."""
    clock = clock or default_clock()
    if on is None:
        on = clock.today()
    elif isinstance(on, dt.datetime):
        on = city_date(on, clock.tz)  # 07:00 in Beijing on the 1st is the 1st
    try:
        return pd.Timestamp(on).normalize()
    except (ValueError, TypeError):
        raise ValueError(f"{on!r} is not a date; give a date or 'YYYY-MM-DD'") from None


def validate_assignments(
    assignments: pd.DataFrame,
    *,
    chiefs: pd.DataFrame | None = None,
    alleys: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Check an assignment table and return it normalised.

    Parameters
    ----------
    assignments : pandas.DataFrame
        Columns ``chief_id``, ``alley``, ``valid_from``.
    chiefs, alleys : pandas.DataFrame, optional
        When given, every ``chief_id`` must be a chief ``id`` and every ``alley`` an alley
        ``name``.

    Returns
    -------
    pandas.DataFrame
        ``valid_from`` as datetime64 (midnight), ``chief_id`` and ``alley`` as str,
        sorted by alley then date.

    Raises
    ------
    DataFileError
        Missing columns, unparsable dates, two rows for one alley on one date, or
        unknown chiefs or alleys.
    """
    needed = {"chief_id", "alley", "valid_from"}
    missing = needed - set(assignments.columns)
    if missing:
        raise DataFileError(
            f"assignments lack columns {sorted(missing)}; need chief_id, alley, valid_from"
        )
    out = assignments[["chief_id", "alley", "valid_from"]].copy()
    out["chief_id"] = out["chief_id"].astype(str)
    out["alley"] = out["alley"].astype(str)
    try:
        out["valid_from"] = pd.to_datetime(out["valid_from"], format="ISO8601").dt.normalize()
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"assignment valid_from is not a date (YYYY-MM-DD): {exc}") from None
    clash = out.duplicated(["alley", "valid_from"], keep=False)
    if clash.any():
        first = out[clash].iloc[0]
        raise DataFileError(
            f"alley {first['alley']!r} has two assignments from "
            f"{first['valid_from'].date()}; one alley has one chief at a time"
        )
    if chiefs is not None:
        unknown = sorted(set(out["chief_id"]) - set(chiefs["id"].astype(str)))
        if unknown:
            raise DataFileError(f"assignments name unknown chiefs {unknown}")
    if alleys is not None:
        unknown = sorted(set(out["alley"]) - set(alleys["name"].astype(str)))
        if unknown:
            raise DataFileError(f"assignments name unknown alleys {unknown}")
    return out.sort_values(["alley", "valid_from"], kind="stable").reset_index(drop=True)


def assignments_on(
    assignments: pd.DataFrame,
    *,
    on: dt.date | str | None = None,
    clock: Clock | None = None,
) -> pd.DataFrame:
    """Return the assignment in force for each alley on a day.

    Parameters
    ----------
    assignments : pandas.DataFrame
        Columns ``chief_id``, ``alley``, ``valid_from``.
    on : date, str or datetime, optional
        The day asked about (a datetime: its date in the city); default the city's
        today from ``clock``.
    clock : Clock, optional
        The city's clock (default `gridcore._time.default_clock`).

    Returns
    -------
    pandas.DataFrame
        One row per alley that has a chief on that day: ``alley``, ``chief_id``,
        ``valid_from``.
    """
    table = validate_assignments(assignments)
    day = _as_date(on, clock)
    live = table[table["valid_from"] <= day]
    # sorted by alley then date: the last row of each alley is the one in force
    return live.drop_duplicates("alley", keep="last").reset_index(drop=True)[
        ["alley", "chief_id", "valid_from"]
    ]


def alleys_to_cells(alleys: gpd.GeoDataFrame, cells: gpd.GeoDataFrame) -> pd.DataFrame:
    """Join alleys to the cells they run through.

    A cell belongs to an alley when the alley's line runs inside it or along its edge
    for some length; touching a corner at one point does not count.

    Parameters
    ----------
    alleys : geopandas.GeoDataFrame
        Columns ``name`` and ``geometry`` (lines), any CRS.
    cells : geopandas.GeoDataFrame
        Columns ``code`` and ``geometry`` (polygons), same CRS as ``alleys``.

    Returns
    -------
    pandas.DataFrame
        Columns ``alley``, ``cell_code``, ``cell_pos`` (integer position into ``cells``),
        sorted by alley then cell code.

    Raises
    ------
    ValueError
        If the two frames are in different CRSs.
    """
    if alleys.crs != cells.crs:
        raise ValueError(
            f"alleys are in {alleys.crs} but cells in {cells.crs}; convert one first"
        )
    lines = alleys.geometry.to_numpy()
    polys = cells.geometry.to_numpy()
    line_pos, cell_pos = cells.sindex.query(lines, predicate="intersects")
    overlap = shapely.length(shapely.intersection(lines[line_pos], polys[cell_pos]))
    keep = overlap > 0
    out = pd.DataFrame({
        "alley": alleys["name"].to_numpy()[line_pos[keep]].astype(str),
        "cell_code": cells["code"].to_numpy()[cell_pos[keep]].astype(str),
        "cell_pos": cell_pos[keep].astype(np.intp),
    })
    out = out.drop_duplicates(["alley", "cell_code"])
    return out.sort_values(["alley", "cell_code"], kind="stable").reset_index(drop=True)


def cells_of_chief(
    chief_id: str,
    assignments: pd.DataFrame,
    *,
    alley_cells: pd.DataFrame,
    on: dt.date | str | None = None,
    clock: Clock | None = None,
) -> np.ndarray:
    """List the cells a chief answers for on a day.

    Parameters
    ----------
    chief_id : str
    assignments : pandas.DataFrame
        Columns ``chief_id``, ``alley``, ``valid_from``.
    alley_cells : pandas.DataFrame
        Columns ``alley`` and ``cell_code``, as made by :func:`alleys_to_cells`.
    on : date, str or datetime, optional
        The day asked about; default the city's today (not the server's).
    clock : Clock, optional
        The city's clock (default `gridcore._time.default_clock`).

    Returns
    -------
    numpy.ndarray of str
        Sorted unique 15-digit cell codes; empty when the chief has no alley that day.

    Example
    -------
    >>> a = pd.DataFrame({"chief_id": ["c1"], "alley": ["堂子胡同"],
    ...                   "valid_from": ["2017-06-01"]})
    >>> ac = pd.DataFrame({"alley": ["堂子胡同"], "cell_code": ["110102001001001"]})
    >>> cells_of_chief("c1", a, alley_cells=ac, on="2018-04-10").tolist()
    ['110102001001001']
    """
    live = assignments_on(assignments, on=on, clock=clock)
    alleys = live.loc[live["chief_id"] == str(chief_id), "alley"]
    codes = alley_cells.loc[alley_cells["alley"].isin(alleys), "cell_code"].astype(str)
    return np.unique(codes.to_numpy()).astype(object)


def chiefs_of_cells(
    cell_codes,
    assignments: pd.DataFrame,
    *,
    alley_cells: pd.DataFrame,
    on: dt.date | str | None = None,
    clock: Clock | None = None,
) -> pd.DataFrame:
    """Find who answers for each of some cells on a day.

    Parameters
    ----------
    cell_codes : array-like of str
    assignments, alley_cells, on, clock
        As for :func:`cells_of_chief`.

    Returns
    -------
    pandas.DataFrame
        Columns ``pos`` (integer position into ``cell_codes``), ``cell_code``, ``alley``,
        ``chief_id``; a cell crossed by several alleys appears once per alley, a cell
        with no chief not at all.
    """
    codes = np.asarray(cell_codes, dtype=object).astype(str)
    live = assignments_on(assignments, on=on, clock=clock)
    joined = alley_cells[["alley", "cell_code"]].merge(live[["alley", "chief_id"]], on="alley")
    wanted = pd.DataFrame({"pos": np.arange(codes.size, dtype=np.intp), "cell_code": codes})
    out = wanted.merge(joined, on="cell_code", how="inner")
    return out.sort_values(["pos", "alley"], kind="stable").reset_index(drop=True)[
        ["pos", "cell_code", "alley", "chief_id"]
    ]


def load_sample_roster() -> ChiefRoster:
    """Load the sample chiefs, alleys and assignments shipped with gridcore.

    The alley names are real Beijing hutongs and streets; their lines are drawn by us
    from approximate positions (``synthetic`` is true), and the chiefs are invented.

    Returns
    -------
    ChiefRoster
    """
    chiefs = read_data_csv("sample_chiefs.csv")
    raw = read_data_csv("sample_alleys.csv")
    try:
        geometry = shapely.from_wkt(raw["wkt"].to_numpy())
    except shapely.errors.GEOSException as exc:
        raise DataFileError(f"sample_alleys.csv has a bad WKT line: {exc}") from None
    alleys = gpd.GeoDataFrame(
        {"name": raw["name"], "synthetic": raw["synthetic"].str.lower() == "true",
         "note": raw["note"]},
        geometry=geometry, crs="EPSG:4326",
    )
    assignments = validate_assignments(
        read_data_csv("sample_chief_assignments.csv"), chiefs=chiefs, alleys=alleys
    )
    return ChiefRoster(chiefs=chiefs, alleys=alleys, assignments=assignments)


def chief_record(roster: ChiefRoster, chief_id: str) -> dict:
    """Return one chief's row as a dict.

    Raises
    ------
    NotFoundError
        If no chief has this id.
    """
    rows = roster.chiefs[roster.chiefs["id"].astype(str) == str(chief_id)]
    if rows.empty:
        raise NotFoundError(
            f"no chief with id {chief_id!r}; known ids: {', '.join(roster.chiefs['id'])}"
        )
    return rows.iloc[0].to_dict()
