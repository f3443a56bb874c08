"""Cells and divisions as GeoJSON: by code and by bounding box.

``router`` (under /v1, token required) answers cells and divisions with their names;
``public`` serves the grid layer the public map page draws (the grid is public data).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Path, Query

from api.deps import CityDep, PrincipalDep, SettingsDep
from api.schemas import Feature, FeatureCollection
from gridcore.access import Permission, authorize
from gridcore.codes import Level, validate_cell_code, validate_division_code
from gridcore.crs import describe_lonlat, to_wgs84
from gridcore.errors import CellNotFoundError, CoordinateError, NotFoundError, OutsideCityError
from gridcore.grid import point_to_cell
from gridcore.maps import Basemap, geometry_to_basemap

router = APIRouter(prefix="/v1", tags=["grid"])
public = APIRouter(prefix="/grid", tags=["public grid layer"])

_NUM = r"-?[0-9]+(\.[0-9]+)?"
BBOX_PATTERN = rf"^{_NUM},{_NUM},{_NUM},{_NUM}$"
BboxQuery = Annotated[str, Query(
    description="min_lon,min_lat,max_lon,max_lat (WGS84, or the basemap's CRS on /grid)",
    pattern=BBOX_PATTERN,
    examples=["116.370,39.905,116.380,39.915"])]
CellCodePath = Annotated[str, Path(description="15-digit unit grid cell code (单元网格编码)",
                                   pattern=r"^[0-9]{15}$", examples=["110102001019033"])]


def _parse_bbox(text: str, *, crs: str = "wgs84") -> shapely.Polygon:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CoordinateError(f"bbox {text!r} must be four numbers: "
                              "min_lon,min_lat,max_lon,max_lat") from None
    if len(values) != 4:
        raise CoordinateError(f"bbox has {len(values)} numbers; it needs 4: "
                              "min_lon,min_lat,max_lon,max_lat")
    x0, y0, x1, y1 = values
    for corner, x, y in (("min_lon,min_lat", x0, y0), ("max_lon,max_lat", x1, y1)):
        words = describe_lonlat(x, y)
        if words:
            raise CoordinateError(f"bbox {corner}: {words}")
    lon, lat = to_wgs84([x0, x1], [y0, y1], crs=crs)  # validates: NaN, range, swapped
    if not (lon[0] < lon[1] and lat[0] < lat[1]):
        raise CoordinateError("bbox must read min_lon,min_lat,max_lon,max_lat with min < max")
    return shapely.box(lon[0], lat[0], lon[1], lat[1])


def _names(city, codes):
    return [city.divisions.name_of(c) for c in codes]


def _cells_collection(city, rows: np.ndarray, *, basemap: Basemap = Basemap.OSM) -> dict:
    cells = city.cells.iloc[rows]
    frame = cells[["code", "community_code", "street_code", "district_code", "area_m2",
                   "geometry"]].copy()
    frame["area_m2"] = frame["area_m2"].round(1)
    frame["community_name"] = _names(city, frame["community_code"])
    frame["street_name"] = _names(city, frame["street_code"])
    frame["district_name"] = _names(city, frame["district_code"])
    frame = geometry_to_basemap(frame, basemap=basemap)
    return frame.to_geo_dict(drop_id=True)


def _in_bbox(frame, box: shapely.Polygon, limit: int, what: str) -> np.ndarray:
    rows = np.sort(frame.sindex.query(box, predicate="intersects"))
    if len(rows) > limit:
        raise CoordinateError(
            f"the bbox holds {len(rows)} {what}, more than the limit of {limit}: "
            "ask for a smaller box")
    return rows


@router.get("/cells/{code}", response_model=Feature,
            summary="A unit grid cell (单元网格) by its 15-digit code")
def get_cell(code: CellCodePath, city: CityDep, principal: PrincipalDep) -> dict:
    """Return the cell as a GeoJSON Feature (WGS84) with its community, street, district."""
    authorize(principal, Permission.READ_GRID)
    code = validate_cell_code(code)
    pos = np.searchsorted(city.cells["code"].to_numpy(), code)
    if pos >= len(city.cells) or city.cells["code"].iloc[pos] != code:
        raise CellNotFoundError(f"no unit grid cell has code {code}")
    return _cells_collection(city, np.array([pos]))["features"][0]


@router.get("/cells", response_model=FeatureCollection,
            summary="Unit grid cells in a bounding box")
def cells_in_bbox(bbox: BboxQuery, city: CityDep, settings: SettingsDep,
                  principal: PrincipalDep) -> dict:
    """Return the cells intersecting ``bbox`` (WGS84) as a FeatureCollection."""
    authorize(principal, Permission.READ_GRID)
    rows = _in_bbox(city.cells, _parse_bbox(bbox), settings.max_features, "cells")
    return _cells_collection(city, rows)


def _division_frame(city, level: Level):
    return city.divisions.level(level)


@router.get("/divisions/{code}", response_model=Feature,
            summary="A district (区), street (街道) or community (社区) by code")
def get_division(
    code: Annotated[str, Path(description="6-, 9- or 12-digit division code",
                              pattern=r"^[0-9]{6}([0-9]{3}){0,2}$", examples=["110102001"])],
    city: CityDep, principal: PrincipalDep,
) -> dict:
    """Return the division polygon (WGS84) with code, name, parent and synthetic flag."""
    authorize(principal, Permission.READ_GRID)
    code = validate_division_code(code)
    level = Level(
        {6: Level.DISTRICT, 9: Level.STREET, 12: Level.COMMUNITY}.get(len(code), Level.CELL))
    if level is Level.CELL:
        raise NotFoundError("cells are under /v1/cells/{code}")
    frame = _division_frame(city, level)
    hit = frame[frame["code"] == code]
    if hit.empty:
        raise NotFoundError(f"no {level.value} has code {code}")
    feature = hit.to_geo_dict(drop_id=True)["features"][0]
    feature["properties"]["level"] = level.value
    return feature


@router.get("/divisions", response_model=FeatureCollection,
            summary="Divisions of one level, optionally in a bounding box")
def list_divisions(
    city: CityDep, settings: SettingsDep, principal: PrincipalDep,
    level: Annotated[Literal["district", "street", "community"],
                     Query(description="district, street or community")],
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat",
                                      pattern=BBOX_PATTERN)] = None,
) -> dict:
    """Return the division polygons of ``level`` (WGS84) with code and name."""
    authorize(principal, Permission.READ_GRID)
    frame = _division_frame(city, Level(level))
    if bbox is not None:
        frame = frame.iloc[_in_bbox(frame, _parse_bbox(bbox), settings.max_features,
                                    "divisions")]
    return frame.to_geo_dict(drop_id=True)


# --------------------------------------------------------------------------- public layer

BasemapQuery = Annotated[Basemap, Query(
    description="osm (WGS84) or gaode (geometries and bbox in GCJ-02)")]


@public.get("/cells.geojson", response_model=FeatureCollection,
            summary="Public grid layer: cells in a bounding box (no token)")
def public_cells(bbox: BboxQuery, city: CityDep, settings: SettingsDep,
                 basemap: BasemapQuery = Basemap.OSM) -> dict:
    """Return the cells in ``bbox`` for the map page, in the basemap's CRS."""
    crs = "gcj02" if basemap is Basemap.GAODE else "wgs84"
    box = _parse_bbox(bbox, crs=crs).buffer(0.0005)  # GCJ-02 corners: a margin suffices
    rows = _in_bbox(city.cells, box, settings.max_features, "cells")
    return _cells_collection(city, rows, basemap=basemap)


@public.get("/cell.geojson", response_model=Feature,
            summary="Public grid layer: the cell at a position (no token)")
def public_cell_at(
    city: CityDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude, basemap's CRS")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude, basemap's CRS")],
    basemap: BasemapQuery = Basemap.OSM,
) -> dict:
    """Return the cell covering a clicked position, geometry in the basemap's CRS.

    The lookup is exact (the edge rule of `gridcore.grid.point_to_cell`), unlike a
    browser's hit test on simplified, pixel-rounded SVG paths.
    """
    crs = "gcj02" if basemap is Basemap.GAODE else "wgs84"
    wlon, wlat = to_wgs84([lon], [lat], crs=crs)
    pos = point_to_cell(city.cells, wlon, wlat)[0]
    if pos < 0:
        raise OutsideCityError(f"lon {lon}, lat {lat} ({crs}) lies in no unit grid cell")
    return _cells_collection(city, np.array([pos]), basemap=basemap)["features"][0]


@public.get("/divisions.geojson", response_model=FeatureCollection,
            summary="Public division outlines of one level (no token)")
def public_divisions(
    city: CityDep,
    level: Annotated[Literal["district", "street"],
                     Query(description="district or street")] = "street",
    basemap: BasemapQuery = Basemap.OSM,
) -> dict:
    """Return district or street outlines for the map page, in the basemap's CRS."""
    frame = geometry_to_basemap(_division_frame(city, Level(level)), basemap=basemap)
    return frame.to_geo_dict(drop_id=True)
