"""Coordinate systems: WGS84, GCJ-02, BD-09 and the metric CRS EPSG:4548.

Chinese phones and web maps report GCJ-02 (AMap/Gaode, Tencent) or BD-09 (Baidu)
positions, 500-600 m off WGS84 in Beijing. PROJ knows neither, so the conversions live
here, vectorised over numpy arrays. The forward WGS84 -> GCJ-02 formula is the public
one; every inverse is solved iteratively to below 1e-10 degrees (about 0.01 mm), not
with the common one-step approximation that is 1-3 m off.

Metric work (areas, 100 m cells, buffers) happens in EPSG:4548 (CGCS2000 /
3-degree Gauss-Kruger CM 117E), through pyproj. CGCS2000 and WGS84 agree to a few
centimetres, below what any input here resolves, so the datum shift is the null one.

Every public entry point takes the input CRS explicitly: there is no default.
"""

from __future__ import annotations

import math
from enum import StrEnum
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import CoordinateError, CRSError

PROJECTED_EPSG = 4548
GEOGRAPHIC_EPSG = 4326

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

# The rectangle where GCJ-02 applies and where gridcore accepts positions.
CHINA_BOUNDS = (73.66, 3.86, 135.05, 53.55)  # lon_min, lat_min, lon_max, lat_max
# A margin so GCJ-02/BD-09 positions of points near the rectangle's edge still pass.
_CHINA_WITH_MARGIN = tuple(np.add(CHINA_BOUNDS, (-0.2, -0.2, 0.2, 0.2)).tolist())

_INVERSE_TOL_DEG = 1e-10
_INVERSE_MAX_ITER = 30


class CRS(StrEnum):
    """Coordinate systems a position may arrive in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    @classmethod
    def parse(cls, value: str | CRS | None) -> CRS:
        """Return the CRS named by ``value`` or raise `CRSError` listing the valid names.

        Accepts the enum, its value in any case, and the aliases ``epsg:4326``/``4326``
        for WGS84.
        """
        if isinstance(value, CRS):
            return value
        if value is None:
            raise CRSError(
                "a CRS must be given explicitly: one of " + ", ".join(c.value for c in cls)
            )
        key = str(value).strip().lower().replace("-", "").replace("_", "")
        aliases = {"epsg:4326": cls.WGS84, "4326": cls.WGS84, "wgs": cls.WGS84}
        if key in aliases:
            return aliases[key]
        for c in cls:
            if c.value == key:
                return c
        raise CRSError(
            f"unknown CRS {value!r}: expected one of " + ", ".join(c.value for c in cls)
        )


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    if lon_a.shape != lat_a.shape:
        raise CoordinateError(f"lon and lat differ in shape: {lon_a.shape} vs {lat_a.shape}")
    return lon_a, lat_a


def validate_lonlat(lon: ArrayLike, lat: ArrayLike, *, region: str = "china") -> None:
    """Raise `CoordinateError` unless every position is a plausible lon/lat in China.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees.
    region : {"china", "world"}
        ``"china"`` (default) also requires the positions to lie in the rectangle where
        GCJ-02 applies; ``"world"`` only checks the ranges.

    Raises
    ------
    CoordinateError
        On NaN or infinite values, values out of range, positions outside China, or
        positions that would lie in China with lon and lat swapped; the message is
        `describe_lonlat`'s, naming the first bad position when there are several.

    Examples
    --------
    >>> validate_lonlat([116.39], [39.91])
    >>> validate_lonlat([116.39], [139.91])
    Traceback (most recent call last):
    ...
    gridcore.errors.CoordinateError: lat 139.91 is outside -90..90
    """
    lon_a, lat_a = _arrays(lon, lat)
    lon_f, lat_f = lon_a.ravel(), lat_a.ravel()
    bad = ~(np.isfinite(lon_f) & np.isfinite(lat_f))
    bad |= (np.abs(lon_f) > 180) | (np.abs(lat_f) > 90)
    if region == "china":
        x0, y0, x1, y1 = _CHINA_WITH_MARGIN
        bad |= ~((lon_f >= x0) & (lon_f <= x1) & (lat_f >= y0) & (lat_f <= y1))
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    words = describe_lonlat(float(lon_f[i]), float(lat_f[i]), region=region)
    if lon_f.size > 1:
        words = f"position {i}: {words}; {int(bad.sum())} of {lon_f.size} positions are unusable"
    raise CoordinateError(words)


def _num(value: float) -> str:
    """Write a coordinate as a person would: 116.3756, 200, NaN, inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.8f}".rstrip("0").rstrip(".")


def _inside(lon: float, lat: float, bounds) -> bool:
    x0, y0, x1, y1 = bounds
    return x0 <= lon <= x1 and y0 <= lat <= y1


def describe_lonlat(lon: float, lat: float, *, region: str = "china",
                    city_bounds: tuple[float, float, float, float] | None = None) -> str | None:
    """Say in words what is wrong with one lon/lat position, or return None.

    The one wording of a bad position, used by `validate_lonlat` (so by every
    conversion and by the command line) and by the service for the ranges its schema
    declares.

    Parameters
    ----------
    lon, lat : float
        The position as given, degrees.
    region : {"china", "world"}
        ``"china"`` (default) also refuses positions outside China.
    city_bounds : (min_lon, min_lat, max_lon, max_lat), optional
        The city's extent, degrees: a swapped position inside it is said to be "in the
        city" (else "in China").

    Returns
    -------
    str or None
        What is wrong and what would be right; None for a usable position.

    Examples
    --------
    >>> describe_lonlat(39.9, 116.4)
    'lat 116.4 is outside -90..90; lon and lat look swapped (116.4, 39.9 would be in China)'
    >>> describe_lonlat(float("nan"), 39.9)
    'lon is NaN: coordinates must be finite numbers'
    >>> describe_lonlat(116.4, 39.9) is None
    True
    """
    lon, lat = float(lon), float(lat)
    not_finite = [(name, v) for name, v in (("lon", lon), ("lat", lat)) if not math.isfinite(v)]
    if not_finite:
        said = " and ".join(f"{name} is {_num(v)}" for name, v in not_finite)
        return f"{said}: coordinates must be finite numbers"
    swapped = _swap_hint(lon, lat, city_bounds)
    if abs(lat) > 90 or abs(lon) > 180:
        said = "; ".join(f"{name} {_num(v)} is outside -{limit}..{limit}"
                         for name, v, limit in (("lon", lon, 180), ("lat", lat, 90))
                         if abs(v) > limit)
        if abs(lon) > 360 and abs(lat) > 360:
            said += ("; these look like projected metres: send longitude and latitude in "
                     "degrees (wgs84, gcj02 or bd09)")
        return f"{said}; {swapped}" if swapped else said
    if region != "china" or _inside(lon, lat, _CHINA_WITH_MARGIN):
        return None
    where = f"lon {_num(lon)}, lat {_num(lat)} lies outside China"
    if swapped:
        return f"{where}; {swapped}"
    x0, y0, x1, y1 = CHINA_BOUNDS
    return (f"{where} (lon {_num(x0)}..{_num(x1)}, lat {_num(y0)}..{_num(y1)}); "
            "gridcore handles positions in China only")


def _swap_hint(lon: float, lat: float, city_bounds) -> str | None:
    """Return the "looks swapped" words when lat, lon would be a usable position."""
    if not _inside(lat, lon, _CHINA_WITH_MARGIN):
        return None
    # the city's extent with a margin for GCJ-02/BD-09 input (their offsets are < 0.01°)
    in_city = city_bounds is not None and _inside(
        lat, lon, np.add(city_bounds, (-0.02, -0.02, 0.02, 0.02)))
    return (f"lon and lat look swapped ({_num(lat)}, {_num(lon)} would be in "
            f"{'the city' if in_city else 'China'})")


# The formulas below run on numpy arrays (``m=np``) or, for one point, on Python floats
# (``m=_SCALAR``): one formula, and a single GCJ-02 position converts in microseconds
# instead of paying numpy's per-call overhead dozens of times per iteration.
_SCALAR = SimpleNamespace(sin=math.sin, cos=math.cos, sqrt=math.sqrt, abs=abs,
                          arctan2=math.atan2)
_PI = math.pi


def _gcj_offset(lon, lat, m=np):
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS84 positions."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = m.sqrt(m.abs(x))
    common = (20.0 * m.sin(6.0 * x * _PI) + 20.0 * m.sin(2.0 * x * _PI)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += common
    dlat += (20.0 * m.sin(y * _PI) + 40.0 * m.sin(y / 3.0 * _PI)) * 2.0 / 3.0
    dlat += (160.0 * m.sin(y / 12.0 * _PI) + 320.0 * m.sin(y * _PI / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += common
    dlon += (20.0 * m.sin(x * _PI) + 40.0 * m.sin(x / 3.0 * _PI)) * 2.0 / 3.0
    dlon += (150.0 * m.sin(x / 12.0 * _PI) + 300.0 * m.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * _PI
    magic = 1.0 - _EE * m.sin(rad_lat) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * m.cos(rad_lat) * _PI)
    return dlon, dlat


def _wgs84_to_gcj02(lon, lat, m=np):
    dlon, dlat = _gcj_offset(lon, lat, m)
    return lon + dlon, lat + dlat


def _gcj02_to_bd09(lon, lat, m=np):
    z = m.sqrt(lon * lon + lat * lat) + 0.00002 * m.sin(lat * _X_PI)
    theta = m.arctan2(lat, lon) + 0.000003 * m.cos(lon * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def _invert(forward, lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    """Solve ``forward(x) == (lon, lat)`` by fixed-point iteration, vertex by vertex.

    Each forward map here is the identity plus a slowly varying shift (its Jacobian is
    within 1e-4 of the identity), so ``x <- x - (forward(x) - target)`` contracts by that
    factor per step: a handful of steps reach 1e-10 degrees. Each vertex stops on its own,
    so its result does not depend on the other vertices in the array (a border shared
    by two polygons converts to the same coordinates in both).
    """
    if lon.size == 1:
        return _invert_one(forward, lon, lat)
    x, y = lon.astype(np.float64, copy=True), lat.astype(np.float64, copy=True)
    xf, yf = x.reshape(-1), y.reshape(-1)
    tx, ty = lon.reshape(-1), lat.reshape(-1)
    active = np.arange(xf.size)
    for _ in range(_INVERSE_MAX_ITER):
        if not active.size:
            break
        fx, fy = forward(xf[active], yf[active])
        ex, ey = fx - tx[active], fy - ty[active]
        xf[active] -= ex
        yf[active] -= ey
        active = active[np.maximum(np.abs(ex), np.abs(ey)) >= _INVERSE_TOL_DEG]
    return x, y


def _invert_one(forward, lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    """`_invert` for one point, on Python floats (same steps, same stopping rule)."""
    tx, ty = float(lon.reshape(-1)[0]), float(lat.reshape(-1)[0])
    x, y = tx, ty
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y, _SCALAR)
        ex, ey = fx - tx, fy - ty
        x -= ex
        y -= ey
        if max(abs(ex), abs(ey)) < _INVERSE_TOL_DEG:
            break
    return np.full(lon.shape, x), np.full(lat.shape, y)


def _bd09_to_gcj02(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    return _invert(_gcj02_to_bd09, lon, lat)


def _gcj02_to_wgs84(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    return _invert(_wgs84_to_gcj02, lon, lat)


def _public(fn):
    """Wrap a private array transform with validation and scalar/array handling."""

    def wrapper(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
        lon_a, lat_a = _arrays(lon, lat)
        validate_lonlat(lon_a, lat_a)
        out_lon, out_lat = fn(lon_a, lat_a)
        return out_lon, out_lat

    wrapper.__name__ = fn.__name__.lstrip("_")
    wrapper.__qualname__ = wrapper.__name__
    wrapper.__doc__ = (
        f"Convert positions {wrapper.__name__.replace('_to_', ' -> ').upper()}.\n\n"
        "Parameters\n----------\nlon, lat : array_like\n    Degrees, any matching shape.\n\n"
        "Returns\n-------\n(lon, lat) : tuple of ndarray\n\n"
        "Raises\n------\nCoordinateError\n    NaN, out of range, outside China or swapped.\n"
    )
    return wrapper


wgs84_to_gcj02 = _public(_wgs84_to_gcj02)
gcj02_to_wgs84 = _public(_gcj02_to_wgs84)
gcj02_to_bd09 = _public(_gcj02_to_bd09)
bd09_to_gcj02 = _public(_bd09_to_gcj02)


def _wgs84_to_bd09(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


wgs84_to_bd09 = _public(_wgs84_to_bd09)
bd09_to_wgs84 = _public(_bd09_to_wgs84)

_TO_WGS84 = {CRS.WGS84: lambda x, y: (x, y), CRS.GCJ02: _gcj02_to_wgs84, CRS.BD09: _bd09_to_wgs84}
_FROM_WGS84 = {
    CRS.WGS84: lambda x, y: (x, y),
    CRS.GCJ02: _wgs84_to_gcj02,
    CRS.BD09: _wgs84_to_bd09,
}


def to_wgs84(lon: ArrayLike, lat: ArrayLike, *, crs: str | CRS) -> tuple[NDArray, NDArray]:
    """Convert positions given in ``crs`` to WGS84.

    Parameters
    ----------
    lon, lat : array_like
        Degrees in ``crs``.
    crs : {"wgs84", "gcj02", "bd09"}
        The CRS the positions are in. Required: a wrong guess moves a point ~550 m.

    Returns
    -------
    (lon, lat) : tuple of ndarray
        WGS84 degrees, same shape as the input.

    Raises
    ------
    CRSError
        Unknown CRS.
    CoordinateError
        NaN, out of range, outside China, or lat/lon likely swapped.

    Examples
    --------
    >>> lon, lat = to_wgs84(116.38404722455657, 39.91334545536069, crs="gcj02")
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.377817, 39.911954)
    """
    c = CRS.parse(crs)
    lon_a, lat_a = _arrays(lon, lat)
    validate_lonlat(lon_a, lat_a)
    return _TO_WGS84[c](lon_a, lat_a)


def wgs84_to(lon: ArrayLike, lat: ArrayLike, *, crs: str | CRS) -> tuple[NDArray, NDArray]:
    """Convert WGS84 positions to ``crs`` (the inverse of `to_wgs84`)."""
    c = CRS.parse(crs)
    lon_a, lat_a = _arrays(lon, lat)
    validate_lonlat(lon_a, lat_a)
    return _FROM_WGS84[c](lon_a, lat_a)


@lru_cache(maxsize=4)
def _transformer(src: int, dst: int):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def wgs84_to_projected(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Project WGS84 lon/lat to EPSG:4548 metres (x east, y north).

    Raises
    ------
    CoordinateError
        NaN, out of range, outside China, or lat/lon likely swapped.
    """
    lon_a, lat_a = _arrays(lon, lat)
    validate_lonlat(lon_a, lat_a)
    x, y = _transformer(GEOGRAPHIC_EPSG, PROJECTED_EPSG).transform(lon_a, lat_a)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def projected_to_wgs84(x: ArrayLike, y: ArrayLike) -> tuple[NDArray, NDArray]:
    """Unproject EPSG:4548 metres to WGS84 lon/lat degrees.

    Raises
    ------
    CoordinateError
        NaN or infinite input, or a result outside China.
    """
    x_a, y_a = _arrays(x, y)
    if not (np.isfinite(x_a).all() and np.isfinite(y_a).all()):
        raise CoordinateError("projected coordinates contain NaN or infinite values")
    lon, lat = _transformer(PROJECTED_EPSG, GEOGRAPHIC_EPSG).transform(x_a, y_a)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    validate_lonlat(lon, lat)
    return lon, lat


def transform_geometry(geom, *, src: str | CRS, dst: str | CRS = CRS.WGS84):
    """Convert a shapely geometry (or array of them) between WGS84, GCJ-02 and BD-09.

    Every vertex is moved exactly; the geometry type and topology are kept.

    Raises
    ------
    CRSError, CoordinateError
    """
    import shapely

    s, d = CRS.parse(src), CRS.parse(dst)
    if s == d:
        return geom

    def move(coords: NDArray) -> NDArray:
        lon, lat = coords[:, 0], coords[:, 1]
        validate_lonlat(lon, lat)
        lon, lat = _FROM_WGS84[d](*_TO_WGS84[s](lon, lat))
        return np.column_stack([lon, lat])

    return shapely.transform(geom, move)


def project_geometry(geom, *, inverse: bool = False):
    """Project shapely geometries WGS84 -> EPSG:4548 (or back with ``inverse=True``)."""
    import shapely

    src, dst = (PROJECTED_EPSG, GEOGRAPHIC_EPSG) if inverse else (GEOGRAPHIC_EPSG, PROJECTED_EPSG)
    tr = _transformer(src, dst)

    def move(coords: NDArray) -> NDArray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, move)
