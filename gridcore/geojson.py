"""GeoJSON geometries from clients, read strictly and refused in words.

``shapely.geometry.shape`` reads what it can: on malformed input it raises whatever
numpy or GEOS raised (``gufunc core with signature (d),()->()...``), and some mistakes it
does not see at all (an open ring is closed silently, a list of positions read as a
Point). Geometry that a person or another system sent is read here instead: each problem
is a `GeometryError` naming the place in the JSON (``coordinates[0][2]``) and what would
be right; a `CoordinateError` for a position that is not a number lon/lat could be.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .crs import describe_lonlat, validate_lonlat
from .errors import CoordinateError, GeometryError

#: list levels above a position, per GeoJSON geometry type (RFC 7946 §3.1)
DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
         "MultiPolygon": 3}

_SHAPES = {0: "one position [lon, lat]", 1: "a list of positions",
           2: "a list of lists of positions", 3: "a list of lists of lists of positions"}
_READ_AS = {0: "a Point", 1: "a LineString or MultiPoint", 2: "a Polygon or MultiLineString",
            3: "a MultiPolygon"}
_P, _L = "[116.37, 39.91]", "[[116.37, 39.91], [116.38, 39.92]]"
_R = "[[116.37, 39.91], [116.38, 39.91], [116.38, 39.92], [116.37, 39.91]]"
_EXAMPLES = {"Point": _P, "MultiPoint": f"[{_P}]", "LineString": _L,
             "MultiLineString": f"[{_L}]", "Polygon": f"[{_R}]", "MultiPolygon": f"[[{_R}]]"}


def _example(kind: str = "Polygon") -> str:
    return f'{{"type": "{kind}", "coordinates": {_EXAMPLES[kind]}}}'


def geojson_to_geometry(obj: Any, *, what: str = "geometry", check_valid: bool = True,
                        lonlat: bool = True) -> BaseGeometry:
    """Return the shapely geometry of a GeoJSON geometry (or Feature) mapping.

    Parameters
    ----------
    obj : mapping
        ``{"type": "Polygon", "coordinates": [...]}`` or a Feature holding one.
    what : str
        How messages name the geometry, e.g. ``"incident 3"``.
    check_valid : bool
        Also refuse a (Multi)Polygon whose rings cross or touch themselves or each
        other, naming where: areas measured on it would be wrong.
    lonlat : bool
        The coordinates are degrees (WGS84, GCJ-02 or BD-09): check each position as
        `gridcore.crs.validate_lonlat` does.

    Returns
    -------
    shapely geometry
        Empty when the coordinates are an empty list (the caller decides).

    Raises
    ------
    GeometryError
        Not a mapping, no or unknown type, coordinates nested wrongly, too few
        positions, an open ring, an invalid polygon: the message says which and where.
    CoordinateError
        A position that is not finite, or (with ``lonlat``) not a lon/lat in China, or
        swapped: `gridcore.crs.describe_lonlat`'s words, with the position's place.

    Examples
    --------
    >>> geojson_to_geometry({"type": "Point", "coordinates": [116.3756, 39.911]}).wkt
    'POINT (116.3756 39.911)'
    >>> geojson_to_geometry({"type": "LineString", "coordinates": [[116.37, 39.91]]})
    Traceback (most recent call last):
    ...
    gridcore.errors.GeometryError: geometry: a LineString needs at least 2 positions, got 1
    """
    kind, coordinates = _type_and_coordinates(obj, what)
    _check_nesting(coordinates, DEPTH[kind], kind, what, "coordinates")
    _check_parts(coordinates, kind, what)
    try:
        geom = shape({"type": kind, "coordinates": coordinates})
    except Exception as exc:  # checked above; what is left is said without internals
        raise GeometryError(f"{what}: these coordinates do not make a {kind}; send e.g. "
                            f"{_example(kind)}") from exc
    if lonlat:
        _check_lonlat(geom, coordinates, DEPTH[kind], what)
    if check_valid and kind in ("Polygon", "MultiPolygon"):
        problem = polygon_problem(geom)
        if problem:
            raise GeometryError(f"{what}: {problem}")
    return geom


def _type_and_coordinates(obj: Any, what: str) -> tuple[str, Any]:
    if not isinstance(obj, Mapping):
        raise GeometryError(f"{what} must be a GeoJSON object like {_example()}, "
                            f"not {type(obj).__name__}")
    if obj.get("type") == "Feature":
        obj = obj.get("geometry")
        if not isinstance(obj, Mapping):
            raise GeometryError(f"{what} is a Feature without a geometry object")
    kind = obj.get("type")
    if kind not in DEPTH:
        valid = ", ".join(DEPTH)
        if kind == "GeometryCollection":
            raise GeometryError(f"{what}: a GeometryCollection is not accepted; send one "
                                f"geometry of type {valid}")
        given = "no \"type\"" if kind is None else f"type {kind!r}"
        raise GeometryError(f"{what} has {given}: a GeoJSON geometry type is one of {valid}")
    if "coordinates" not in obj:
        raise GeometryError(f"{what}: a {kind} needs \"coordinates\" ({_SHAPES[DEPTH[kind]]})")
    return kind, obj["coordinates"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _depth(value: Any) -> int | None:
    """List levels above a position, read along first elements (None: no number found)."""
    if _is_number(value):
        return -1
    if not isinstance(value, list | tuple) or not value:
        return None  # an empty list fits any level; other things are named by the walk
    inner = _depth(value[0])
    return None if inner is None else inner + 1


def _check_nesting(value: Any, want: int, kind: str, what: str, path: str) -> None:
    """Every element of ``value`` at its expected level, positions of 2 or 3 numbers."""
    if want == 0:
        _check_position(value, kind, what, path)
        return
    if not isinstance(value, list | tuple):
        raise GeometryError(f"{what}: {path} of a {kind} must be {_SHAPES[want]}, "
                            f"not {_shown(value)}")
    got = _depth(value)
    if got is not None and got != want:
        off = got - want
        how = (f"{abs(off)} level{'s' if abs(off) > 1 else ''} too "
               f"{'deep' if off > 0 else 'shallow'}")
        raise GeometryError(
            f"{what}: {path} of a {kind} must be {_SHAPES[want]}; these are nested {how} "
            f"(they read as {_READ_AS.get(got, 'no geometry')}); send e.g. {_example(kind)}")
    for i, item in enumerate(value):
        _check_nesting(item, want - 1, kind, what, f"{path}[{i}]")


def _check_position(value: Any, kind: str, what: str, path: str) -> None:
    if not isinstance(value, list | tuple):
        raise GeometryError(f"{what}: {path} must be a position [lon, lat], not "
                            f"{_shown(value)}")
    if any(isinstance(v, list | tuple) for v in value):
        raise GeometryError(f"{what}: {path} of a {kind} must be a position [lon, lat] but "
                            "holds lists: nested one level too deep")
    if not value and path == "coordinates":
        return  # an empty Point, as RFC 7946 allows: the caller decides
    if len(value) not in (2, 3):
        raise GeometryError(f"{what}: {path} has {len(value)} number"
                            f"{'' if len(value) == 1 else 's'}; a position is [lon, lat] "
                            "(a height may follow as a third)")
    for v in value:
        if not _is_number(v):
            raise GeometryError(f"{what}: {path} holds {_shown(v)}; a position is two "
                                "numbers [lon, lat]")
    if not all(math.isfinite(v) for v in value[:2]):
        raise CoordinateError(f"{what}: {path}: {describe_lonlat(value[0], value[1])}")


def _check_lonlat(geom: BaseGeometry, coordinates: list, depth: int, what: str) -> None:
    xy = shapely.get_coordinates(geom)
    try:
        validate_lonlat(xy[:, 0], xy[:, 1])
    except CoordinateError:
        i = int(np.flatnonzero(~_usable(xy))[0])
        path = next(p for k, p in enumerate(_paths(coordinates, depth, "coordinates")) if k == i)
        raise CoordinateError(f"{what}: {path}: {describe_lonlat(*xy[i])}") from None


def _usable(xy: np.ndarray) -> np.ndarray:
    return np.array([describe_lonlat(x, y) is None for x, y in xy], dtype=bool)


def _paths(value: list, depth: int, path: str):
    """Yield the JSON path of each position, in the order shapely keeps them."""
    if depth == 0:
        yield path
        return
    for i, item in enumerate(value):
        yield from _paths(item, depth - 1, f"{path}[{i}]")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_parts(coordinates: list, kind: str, what: str) -> None:
    """Enough positions in each line and ring, every ring closed."""
    if kind == "LineString":
        _check_line(coordinates, "a LineString", what)
    elif kind == "MultiLineString":
        for i, line in enumerate(coordinates):
            _check_line(line, f"line {i} of the MultiLineString", what)
    elif kind == "Polygon":
        _check_rings(coordinates, "the Polygon", what)
    elif kind == "MultiPolygon":
        for i, rings in enumerate(coordinates):
            _check_rings(rings, f"polygon {i} of the MultiPolygon", what)


def _check_line(positions: list, name: str, what: str) -> None:
    if 0 < len(positions) < 2:
        raise GeometryError(f"{what}: {name} needs at least 2 positions, got {len(positions)}")


def _check_rings(rings: list, name: str, what: str) -> None:
    for j, ring in enumerate(rings):
        label = f"{'outer ring' if j == 0 else f'hole {j}'} of {name}"
        if len(ring) < 4:
            raise GeometryError(
                f"{what}: the {label} has {len(ring)} position{'' if len(ring) == 1 else 's'}; "
                "a ring needs at least 4: 3 corners and the first repeated at the end")
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise GeometryError(
                f"{what}: the {label} is not closed: it starts at {_at(ring[0])} and ends at "
                f"{_at(ring[-1])}; repeat the first position at the end")


def _at(position) -> str:
    return f"({_round(position[0])}, {_round(position[1])})"


# GEOS's reasons (shapely.is_valid_reason), said for a person
_REASONS = {
    "Self-intersection": "its boundary crosses itself or another of its rings",
    "Ring Self-intersection": "a ring touches itself",
    "Hole lies outside shell": "a hole lies outside the outer ring",
    "Holes are nested": "a hole lies inside another hole",
    "Interior is disconnected": "its holes cut the interior into pieces",
    "Nested shells": "one polygon of the MultiPolygon lies inside another",
    "Duplicate Rings": "two of its rings are the same",
    "Too few distinct points in geometry component": "a ring has fewer than 3 distinct corners",
    "Invalid Coordinate": "a coordinate is not a finite number",
}
_REASON = re.compile(r"^(?P<what>[^\[]+?)\s*(\[(?P<x>\S+) (?P<y>\S+)\])?$")


def polygon_problem(geom: BaseGeometry, *, to_lonlat=None) -> str | None:
    """Say in words why a polygon is invalid, and where; None when it is valid.

    Parameters
    ----------
    geom : shapely geometry
        A (Multi)Polygon.
    to_lonlat : callable, optional
        ``(x, y) -> (lon, lat)`` for a geometry held in other units (metres), so the
        place is said in degrees.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from shapely.geometry import Polygon
    >>> polygon_problem(Polygon([(0, 0), (2, 2), (2, 0), (0, 2)]))[:70]
    'not a valid polygon: its boundary crosses itself or another of its rin'
    """
    if shapely.is_valid(geom):
        return None
    reason = shapely.is_valid_reason(geom)
    m = _REASON.match(reason)
    words, where = reason, ""
    if m:
        words = _REASONS.get(m["what"], m["what"].lower())
        if m["x"] is not None:
            x, y = float(m["x"]), float(m["y"])
            if to_lonlat is not None:
                x, y = to_lonlat(x, y)
            where = f" near ({_round(x)}, {_round(y)})"
    return (f"not a valid polygon: {words}{where}; send rings that neither cross nor touch "
            "themselves or each other")


def _round(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".")
