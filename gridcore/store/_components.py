"""Component records: one row per code ever issued.

Removed components keep their row with status 移除, so their codes are never reissued.
Validation, cells and code issuing happen in the application layer
(`gridcore.app.register_components`); this module only persists.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..crs import GEOGRAPHIC_EPSG
from ..errors import ConflictError, NotFoundError
from ._base import bump_counter, chunks, from_wkb, to_day, wkb

_COUNTER = "components_version"
_VIEW_COLUMNS = ["code", "name", "class_code", "dept_code", "dept_name", "status", "cell_code"]


class ComponentsMixin:
    """`gridcore.store.ComponentStore` over SQL."""

    def _component_rows(self, frame: gpd.GeoDataFrame) -> list[tuple]:
        from ..components import COMPONENT_COLUMNS

        cols = []
        for col in COMPONENT_COLUMNS:
            v = frame[col]
            if col in ("first_survey_date", "change_date"):
                v = [self.dialect.day(d.date()) for d in pd.to_datetime(v)]
            elif col == "synthetic":
                v = v.astype(int).tolist()
            elif col == "accuracy_m":
                v = [None if pd.isna(x) else float(x) for x in v]
            else:
                v = v.tolist()
            cols.append(v)
        cols.append(wkb(frame.geometry.values))
        return list(zip(*cols, strict=True))

    def add_components(self, components: gpd.GeoDataFrame) -> int:
        """Store new component records in one transaction; return how many.

        Raises
        ------
        ConflictError
            A code that is already stored (nothing is written).
        """
        from ..components import COMPONENT_COLUMNS

        rows = self._component_rows(components)
        if not rows:
            return 0
        try:
            with self._begin() as tx:
                self.dialect.bulk_insert(tx, "components", [*list(COMPONENT_COLUMNS), "geom"], rows,
                                         geom_columns=["geom"])
                bump_counter(tx, _COUNTER)
        except self.dialect.integrity_errors as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConflictError(
                f"a component code is already stored ({first}); codes are issued once: "
                "register new components, or update stored ones") from None
        return len(rows)

    def update_components(self, components: gpd.GeoDataFrame) -> int:
        """Replace stored components by code (edits, moves, retirements), one transaction.

        Raises
        ------
        NotFoundError
            A code that is not stored (nothing is written).
        """
        from ..components import COMPONENT_COLUMNS

        rows = self._component_rows(components)
        if not rows:
            return 0
        columns = list(COMPONENT_COLUMNS)
        assert columns[0] == "code"
        sets = ", ".join(f"{c} = ?" for c in columns[1:])
        with self._begin() as tx:
            codes = [r[0] for r in rows]
            known: set[str] = set()
            for part in chunks(codes, 900):
                clause, p = self.dialect.in_values("code", part)
                known |= {r["code"] for r in tx.rows(
                    f"SELECT code FROM components WHERE {clause}{self.dialect.for_update}", p)}
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise NotFoundError(
                    f"no stored component has code {unknown[0]}; register it first")
            tx.executemany(
                f"UPDATE components SET {sets}, geom = {self.dialect.geom_in()} WHERE code = ?",
                [(*r[1:], r[0]) for r in rows])
            bump_counter(tx, _COUNTER)
        return len(rows)

    def component_codes(self) -> list[str]:
        """Return every code ever issued (removed components included)."""
        return [r["code"] for r in self._rows("SELECT code FROM components")]

    def count_components(self) -> int:
        """Return how many component records are stored."""
        return int(self._scalar("SELECT COUNT(*) FROM components"))

    def components_version(self) -> int:
        """Return a counter that changes with every write to the components."""
        return int(self.get_meta(_COUNTER) or 0)

    def components_in_cells(self, cell_codes: Sequence[str]) -> pd.DataFrame:
        """Return the components in the given cells: code, class, status, cell, lon/lat.

        A light read for views and maps (a few columns, no validation pass).
        """
        codes = list(dict.fromkeys(cell_codes))
        frames = []
        with self._reading() as tx:
            for part in chunks(codes, 500):
                clause, p = self.dialect.in_values("cell_code", part)
                frames.append(tx.frame(
                    f"SELECT {', '.join(_VIEW_COLUMNS)}, {self.dialect.geom_out('geom')} "
                    f"FROM components WHERE {clause} ORDER BY code", p))
        if not frames:
            return pd.DataFrame(columns=[*_VIEW_COLUMNS, "lon", "lat"])
        frame = pd.concat(frames, ignore_index=True).sort_values("code", ignore_index=True)
        pts = from_wkb(frame.pop("geom"))
        frame["lon"], frame["lat"] = shapely.get_x(pts), shapely.get_y(pts)
        return frame

    def components_near(self, lon: float, lat: float, *, radius_m: float,
                        limit: int = 10) -> pd.DataFrame:
        """Return components within ``radius_m`` of a WGS84 point, nearest first.

        Columns as `components_in_cells` plus ``distance_m``. On PostGIS the GiST index
        answers (geography distance); on SQLite a degree box is read and measured.
        """
        cols = ", ".join(_VIEW_COLUMNS)
        if self.dialect.spatial_indexes:
            frame = self._frame(
                f"SELECT {cols}, {self.dialect.geom_out('geom')}, "
                "ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography) "
                "AS distance_m FROM components "
                "WHERE ST_DWithin(geom::geography, "
                "                 ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography, ?) "
                "ORDER BY distance_m, code LIMIT ?",
                (lon, lat, lon, lat, float(radius_m), int(limit)))
            pts = from_wkb(frame.pop("geom"))
            frame["lon"], frame["lat"] = shapely.get_x(pts), shapely.get_y(pts)
            frame["distance_m"] = frame["distance_m"].astype(float)
            return frame
        everything = self._frame(f"SELECT {cols}, {self.dialect.geom_out('geom')} "
                                 "FROM components")
        pts = from_wkb(everything.pop("geom"))
        everything["lon"], everything["lat"] = shapely.get_x(pts), shapely.get_y(pts)
        everything["distance_m"] = _haversine_m(lon, lat, everything["lon"].to_numpy(),
                                                everything["lat"].to_numpy())
        near = everything[everything["distance_m"] <= radius_m]
        return near.sort_values(["distance_m", "code"]).head(limit).reset_index(drop=True)

    def load_components(self, *, district: str | None = None,
                        cell_code: str | None = None) -> gpd.GeoDataFrame:
        """Return stored components (all, or one district's, or one cell's), by code."""
        from ..components import COMPONENT_COLUMNS, empty_components, validate_components

        where, params = [], []
        if district is not None:
            where.append("code LIKE ?")
            params.append(f"{district}%")
        if cell_code is not None:
            where.append("cell_code = ?")
            params.append(cell_code)
        sql = (f"SELECT {', '.join(COMPONENT_COLUMNS)}, {self.dialect.geom_out('geom')} "
               "FROM components" + (" WHERE " + " AND ".join(where) if where else ""))
        frame = self._frame(sql + " ORDER BY code", params)
        if frame.empty:
            return empty_components()
        return validate_components(_components_frame(frame), table=_layout_table(frame))

    def get_component(self, code: str):
        """Return one component as a `gridcore.components.Component`.

        Raises
        ------
        InvalidCodeError
            A malformed code.
        NotFoundError
            No stored component has this code.
        """
        from ..components import COMPONENT_COLUMNS, Component, parse_component_code

        parse_component_code(code)
        frame = self._frame(f"SELECT {', '.join(COMPONENT_COLUMNS)}, "
                            f"{self.dialect.geom_out('geom')} FROM components WHERE code = ?",
                            (code,))
        if frame.empty:
            raise NotFoundError(f"no component has code {code}")
        return Component.from_row(_components_frame(frame).iloc[0])


def _components_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    frame["synthetic"] = frame["synthetic"].astype(bool)
    frame["accuracy_m"] = frame["accuracy_m"].astype(float)
    for col in ("first_survey_date", "change_date"):
        frame[col] = [to_day(v).isoformat() for v in frame[col]]
    geom = frame.pop("geom")
    return gpd.GeoDataFrame(frame, geometry=from_wkb(geom), crs=GEOGRAPHIC_EPSG)


def _haversine_m(lon, lat, lons, lats):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon, lat, lons, lats))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def _layout_table(frame: pd.DataFrame):
    if frame["code"].str.len().iloc[0] == 17:
        from ..components import gbt47678_class_table

        return gbt47678_class_table()
    return None
