"""Divisions and grid versions: persisted, and the spatial questions asked of them."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..codes import validate_cell_code
from ..crs import GEOGRAPHIC_EPSG
from ..divisions import DIVISION_COLUMNS, Divisions
from ..errors import CellNotFoundError, NotFoundError
from ..grid import CELL_COLUMNS, GridVersion
from ._base import from_wkb, to_day, wkb

_CELL_SELECT = "code, community_code, street_code, district_code, area_m2"
_LEVELS = ("district", "street", "community")


class GridMixin:
    """`gridcore.store.GridStore` over SQL."""

    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""
        return self._scalar("SELECT COUNT(*) FROM grid_versions") == 0

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions (one transaction)."""
        rows = []
        for level in _LEVELS:
            f = divisions.level(level)
            rows += [
                (code, level, name, parent, int(bool(syn)), blob)
                for code, name, parent, syn, blob in zip(
                    f["code"], f["name"], f["parent_code"], f["synthetic"],
                    wkb(f.geometry.values), strict=True)
            ]
        with self._begin() as tx:
            tx.execute("DELETE FROM divisions")
            self.dialect.bulk_insert(
                tx, "divisions", ["code", "level", "name", "parent_code", "synthetic", "geom"],
                rows, geom_columns=["geom"])

    def load_divisions(self) -> Divisions:
        """Return the stored divisions.

        Raises
        ------
        NotFoundError
            The store holds no divisions.
        """
        frame = self._frame(
            "SELECT code, level, name, parent_code, synthetic, "
            f"{self.dialect.geom_out('geom')} FROM divisions ORDER BY code")
        if frame.empty:
            raise NotFoundError("the store holds no divisions: run `gridcore build` first")
        frame["synthetic"] = frame["synthetic"].astype(bool)
        frame["parent_code"] = frame["parent_code"].astype(object).where(
            frame["parent_code"].notna(), None)
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"), geometry=from_wkb(frame["geom"]),
                               crs=GEOGRAPHIC_EPSG)
        parts = [geo[geo["level"] == lvl][DIVISION_COLUMNS].reset_index(drop=True)
                 for lvl in _LEVELS]
        return Divisions(*parts)

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version in one transaction and return its id."""
        cells = version.cells
        with self._begin() as tx:
            vid = tx.insert_id(
                "INSERT INTO grid_versions (valid_from, source, created_at) VALUES (?, ?, ?)",
                (self.dialect.day(version.valid_from), version.source,
                 self.dialect.instant(self._now())))
            self.dialect.bulk_insert(
                tx, "cells", ["version_id", "code", "community_code", "street_code",
                              "district_code", "area_m2", "geom"],
                ((vid, code, cc, sc, dc, float(a), blob) for code, cc, sc, dc, a, blob in zip(
                    cells["code"], cells["community_code"], cells["street_code"],
                    cells["district_code"], cells["area_m2"], wkb(cells.geometry.values),
                    strict=True)),
                geom_columns=["geom"])
        return vid

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions: id, valid_from (ISO date), source, n_cells, created_at."""
        frame = self._frame(
            "SELECT v.id, v.valid_from, v.source, COUNT(c.code) AS n_cells, v.created_at "
            "FROM grid_versions v LEFT JOIN cells c ON c.version_id = v.id "
            "GROUP BY v.id, v.valid_from, v.source, v.created_at ORDER BY v.valid_from, v.id")
        frame["id"] = frame["id"].astype(int)
        frame["n_cells"] = frame["n_cells"].astype(int)
        frame["valid_from"] = [to_day(v).isoformat() for v in frame["valid_from"]]
        frame["created_at"] = [_iso(v) for v in frame["created_at"]]
        return frame

    def current_version(self, *, on: dt.date | None = None) -> int:
        """Return the id of the version valid on ``on`` (default: the city's today).

        The latest version whose valid-from is on or before that day; among versions with
        the same valid-from, the one stored last.

        Raises
        ------
        NotFoundError
            No version is valid on that day.
        """
        day = on or self.clock.today()
        vid = self._scalar(
            "SELECT id FROM grid_versions WHERE valid_from <= ? "
            "ORDER BY valid_from DESC, id DESC LIMIT 1", (self.dialect.day(day),))
        if vid is None:
            raise NotFoundError(f"no grid version is valid on {day}: run `gridcore build`")
        return int(vid)

    def _resolve(self, version: int | None, on: dt.date | None) -> int:
        if version is None:
            return self.current_version(on=on)
        if not self._scalar("SELECT COUNT(*) FROM grid_versions WHERE id = ?", (int(version),)):
            raise NotFoundError(f"grid version {version} does not exist")
        return int(version)

    def load_grid(self, version: int | None = None, *, on: dt.date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a grid version (default: the one valid today)."""
        vid = self._resolve(version, on)
        frame = self._frame(
            f"SELECT {_CELL_SELECT}, {self.dialect.geom_out('geom')} FROM cells "
            "WHERE version_id = ? ORDER BY code", (vid,))
        geo = _cells_frame(frame)
        geo.attrs["version_id"] = vid
        return geo

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
        rows = self._rows(
            f"SELECT {_CELL_SELECT}, {self.dialect.geom_out('geom')} FROM cells "
            "WHERE version_id = ? AND code = ?", (vid, code))
        if not rows:
            raise CellNotFoundError(f"no unit grid cell has code {code} in grid version {vid}")
        r = rows[0]
        r["geometry"] = shapely.from_wkb(bytes(r.pop("geom")))
        return pd.Series(r)

    def cells_in_bbox(self, bbox: tuple[float, float, float, float], *,
                      version: int | None = None, limit: int | None = None
                      ) -> gpd.GeoDataFrame:
        """Return the cells of a version that intersect a lon/lat box, by code.

        On PostGIS the GiST index answers; on SQLite the version's cells are read and
        filtered with a shapely tree.
        """
        vid = self._resolve(version, None)
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        if self.dialect.spatial_indexes:
            sql = (f"SELECT {_CELL_SELECT}, {self.dialect.geom_out('geom')} FROM cells "
                   "WHERE version_id = ? AND geom && ST_MakeEnvelope(?, ?, ?, ?, 4326) "
                   "AND ST_Intersects(geom, ST_MakeEnvelope(?, ?, ?, ?, 4326)) ORDER BY code")
            params: list = [vid, minx, miny, maxx, maxy, minx, miny, maxx, maxy]
            if limit is not None:
                sql += " LIMIT ?"
                params.append(int(limit))
            geo = _cells_frame(self._frame(sql, params))
        else:
            cells = self.load_grid(vid)
            hits = np.sort(cells.sindex.query(shapely.box(minx, miny, maxx, maxy),
                                              predicate="intersects"))
            geo = cells.iloc[hits[:limit] if limit is not None else hits].reset_index(drop=True)
        geo.attrs["version_id"] = vid
        return geo


def _cells_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    geom = frame.pop("geom") if "geom" in frame else pd.Series([], dtype=object)
    frame["area_m2"] = frame["area_m2"].astype(float)
    geo = gpd.GeoDataFrame(frame, geometry=from_wkb(geom), crs=GEOGRAPHIC_EPSG)
    return geo[CELL_COLUMNS]


def _iso(value) -> str | None:
    from .._time import decode_instant

    t = decode_instant(value)
    return None if t is None else t.isoformat()
