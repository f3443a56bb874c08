"""Persistence: the `Store` interface and its embedded SQLite implementation.

Geometries are stored as WKB in EPSG:4326. The SQLite file runs in WAL mode and every
write is one transaction, so a failed import leaves nothing behind. A PostgreSQL/PostGIS
store implements the same `Store` protocol.

Sections below the divisions/grid core are owned by the domain they persist (components,
cases, disputes, alerts): each keeps its tables in `_SCHEMA` and its methods together.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .codes import validate_cell_code
from .crs import GEOGRAPHIC_EPSG
from .divisions import DIVISION_COLUMNS, Divisions
from .errors import CellNotFoundError, NotFoundError
from .grid import CELL_COLUMNS, GridVersion

DEFAULT_DB = "gridcore.db"


def default_db_path() -> Path:
    """Return the store path: ``$GRIDCORE_DB`` or ``./gridcore.db``."""
    return Path(os.environ.get("GRIDCORE_DB") or DEFAULT_DB)


@runtime_checkable
class Store(Protocol):
    """What gridcore needs from a store of divisions and grid versions."""

    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions."""

    def load_divisions(self) -> Divisions:
        """Return the stored divisions."""

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version and return its id."""

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions (id, valid_from, source, n_cells, created_at)."""

    def load_grid(self, version: int | None = None, *, on: date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a version (default: the one valid today)."""

    def get_cell(self, code: str, version: int | None = None) -> pd.Series:
        """Return one cell by code."""


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS divisions (
        code TEXT PRIMARY KEY,
        level TEXT NOT NULL CHECK (level IN ('district', 'street', 'community')),
        name TEXT NOT NULL,
        parent_code TEXT,
        synthetic INTEGER NOT NULL,
        geom BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS grid_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        valid_from TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cells (
        version_id INTEGER NOT NULL REFERENCES grid_versions(id),
        code TEXT NOT NULL,
        community_code TEXT NOT NULL,
        street_code TEXT NOT NULL,
        district_code TEXT NOT NULL,
        area_m2 REAL NOT NULL,
        geom BLOB NOT NULL,
        PRIMARY KEY (version_id, code))""",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """The embedded store: one SQLite file (WAL mode), geometries as WKB (EPSG:4326).

    Parameters
    ----------
    path : str or Path, optional
        The database file; default `default_db_path` (``$GRIDCORE_DB`` or ``./gridcore.db``).

    Examples
    --------
    >>> store = SQLiteStore(":memory:")
    >>> store.is_empty()
    True
    """

    schema: list[str] = _SCHEMA

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                     isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as c:
            for stmt in self.schema:
                c.execute(stmt)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction: all of it lands, or none."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a read query and return its rows."""
        return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def get_meta(self, key: str) -> str | None:
        """Return a value from the meta table."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the meta table."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ divisions/grid
    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""
        return not self.query("SELECT 1 FROM grid_versions LIMIT 1")

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions (one transaction)."""
        rows = []
        for level in ("district", "street", "community"):
            f = divisions.level(level)
            wkb = shapely.to_wkb(np.asarray(f.geometry.values))
            rows += [
                (code, level, name, parent, int(bool(syn)), blob)
                for code, name, parent, syn, blob in zip(
                    f["code"], f["name"], f["parent_code"], f["synthetic"], wkb, strict=True)
            ]
        with self.transaction() as c:
            c.execute("DELETE FROM divisions")
            c.executemany(
                "INSERT INTO divisions (code, level, name, parent_code, synthetic, geom) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)

    def load_divisions(self) -> Divisions:
        """Return the stored divisions.

        Raises
        ------
        NotFoundError
            The store holds no divisions.
        """
        frame = pd.read_sql_query(
            "SELECT code, level, name, parent_code, synthetic, geom FROM divisions "
            "ORDER BY code", self._conn)
        if frame.empty:
            raise NotFoundError("the store holds no divisions: run `gridcore build` first")
        frame["synthetic"] = frame["synthetic"].astype(bool)
        frame["parent_code"] = frame["parent_code"].astype(object).where(
            frame["parent_code"].notna(), None)
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"),
                               geometry=shapely.from_wkb(frame["geom"].to_numpy()),
                               crs=GEOGRAPHIC_EPSG)
        parts = [
            geo[geo["level"] == lvl][DIVISION_COLUMNS].reset_index(drop=True)
            for lvl in ("district", "street", "community")
        ]
        return Divisions(*parts)

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version in one transaction and return its id."""
        cells = version.cells
        wkb = shapely.to_wkb(np.asarray(cells.geometry.values))
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO grid_versions (valid_from, source, created_at) VALUES (?, ?, ?)",
                (version.valid_from.isoformat(), version.source, _now()))
            vid = int(cur.lastrowid)
            c.executemany(
                "INSERT INTO cells (version_id, code, community_code, street_code, "
                "district_code, area_m2, geom) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (vid, code, cc, sc, dc, float(a), blob)
                    for code, cc, sc, dc, a, blob in zip(
                        cells["code"], cells["community_code"], cells["street_code"],
                        cells["district_code"], cells["area_m2"], wkb, strict=True)
                ])
        return vid

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions: id, valid_from, source, n_cells, created_at."""
        return pd.read_sql_query(
            "SELECT v.id, v.valid_from, v.source, COUNT(c.code) AS n_cells, v.created_at "
            "FROM grid_versions v LEFT JOIN cells c ON c.version_id = v.id "
            "GROUP BY v.id ORDER BY v.valid_from, v.id", self._conn)

    def current_version(self, *, on: date | None = None) -> int:
        """Return the id of the version valid on ``on`` (default today).

        The latest version whose valid-from is on or before that day; among versions with
        the same valid-from, the one stored last.

        Raises
        ------
        NotFoundError
            No version is valid on that day.
        """
        day = (on or date.today()).isoformat()
        rows = self.query(
            "SELECT id FROM grid_versions WHERE valid_from <= ? "
            "ORDER BY valid_from DESC, id DESC LIMIT 1", (day,))
        if not rows:
            raise NotFoundError(f"no grid version is valid on {day}: run `gridcore build`")
        return int(rows[0]["id"])

    def _resolve(self, version: int | None, on: date | None) -> int:
        if version is None:
            return self.current_version(on=on)
        if not self.query("SELECT 1 FROM grid_versions WHERE id = ?", (int(version),)):
            raise NotFoundError(f"grid version {version} does not exist")
        return int(version)

    def load_grid(self, version: int | None = None, *, on: date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a grid version (default: the one valid today)."""
        vid = self._resolve(version, on)
        frame = pd.read_sql_query(
            "SELECT code, community_code, street_code, district_code, area_m2, geom "
            "FROM cells WHERE version_id = ? ORDER BY code", self._conn, params=(vid,))
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"),
                               geometry=shapely.from_wkb(frame["geom"].to_numpy()),
                               crs=GEOGRAPHIC_EPSG)
        geo.attrs["version_id"] = vid
        return geo[CELL_COLUMNS]

    def get_cell(self, code: str, version: int | None = None) -> pd.Series:
        """Return one cell (code, community/street/district codes, area_m2, geometry).

        Raises
        ------
        InvalidCodeError
            Not a well-formed 15-digit code.
        CellNotFoundError
            No such cell in the version.
        """
        code = validate_cell_code(code)
        vid = self._resolve(version, None)
        rows = self.query(
            "SELECT code, community_code, street_code, district_code, area_m2, geom "
            "FROM cells WHERE version_id = ? AND code = ?", (vid, code))
        if not rows:
            raise CellNotFoundError(f"no unit grid cell has code {code} in grid version {vid}")
        r = dict(rows[0])
        r["geometry"] = shapely.from_wkb(r.pop("geom"))
        return pd.Series(r)
