"""Cross-boundary cases (跨区吹哨, 街乡吹哨) and the joint tasks they become.

A case at a jurisdiction line must not bounce between the sides ("it belongs to the other
district"). This module does two things, on plain data and without any store or web:

**Detection.** :class:`DisputeScreener` takes an incident (a point with a position
accuracy in metres, a line, or a polygon; a shapely geometry or a GeoJSON mapping; in an
explicit CRS: ``wgs84``, ``gcj02`` or ``bd09``) and finds every jurisdiction it touches at
one level (``district`` for 跨区吹哨, ``street`` for 街乡吹哨, ``community``) with each side's
share of the incident's *footprint*:

- a polygon's footprint is the polygon, shares are by area;
- a line's footprint is the line, shares are by length;
- a point's footprint is its accuracy disc, of radius ``max(accuracy_m, point_epsilon_m)``,
  shares are by the disc's overlap area. A point exactly on a line with accuracy 0 is
  therefore split by a disc of ``point_epsilon_m`` (10 cm by default): about half and half
  on a straight line, by the angle at a corner. We chose the disc over an equal split
  because it is one rule for every point, it is continuous as the point moves off the
  line, and it reflects the real shape of the line at corners.

All metric work happens in EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E). Parts of
a footprint outside every division are reported as ``outside_share`` and left out of the
split; the shares of the parties always sum to 1.

Responsibility overrides (:class:`Override`: "the market belongs to 西城") are data with
validity dates and the names of those who agreed. They are applied before the split: the
part of the footprint inside a valid override's area is given to the override's code,
the rest is split by jurisdiction, and the :class:`Screening` lists every override
applied with the share it moved. An incident wholly inside an override area goes wholly to
one side. Where valid overrides overlap, the most recent agreement (latest
``valid_from``, then the later id) wins the overlap.

**The joint task.** :class:`JointTask` is the one task every side shares: parties with
roles (接诉方, the receiving side that whistles; 被吹哨方, the whistled sides), the lead,
departments called to report (部门报到), joint meetings (联席会议), the agreed division
of labour with one shared deadline, each side's check-in and reports, and the joint
closure, which is only possible once every side has reported its part done. Every step
is in :attr:`JointTask.history`. :func:`open_or_join` makes opening idempotent: the same
footprint (same normalised WKB hash, or overlapping by at least ``min_overlap``) with the
same event class reported again within ``window`` joins the open task.

The lead is chosen by a fixed rule, recorded in :attr:`JointTask.lead_rule`:

1. ``receiving``: the receiving side (接诉方) when it is a party: it blew the whistle;
2. ``largest_share``: else the party with the largest share, when it is ahead of the
   next by more than 1e-9;
3. ``territorial`` (属地兜底): else the party whose jurisdiction holds the incident's
   representative point (the point itself, or a point on the surface of a line or
   polygon); on a line that point lies in several, and the lowest code among them leads:
   a fixed documented order, not a coin toss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from gridcore._time import Clock, city_date, default_clock, to_utc
from gridcore.codes import CODE_LENGTH, Level
from gridcore.crs import CRS, project_geometry, projected_to_wgs84, to_wgs84, validate_lonlat
from gridcore.errors import (
    CoordinateError,
    CRSError,
    GeometryError,
    InvalidCodeError,
    OutsideCityError,
    PermissionDeniedError,
    TransitionError,
)
from gridcore.geojson import geojson_to_geometry, polygon_problem

__all__ = [
    "Level",
    "IncidentKind",
    "OutsidePolicy",
    "ScreenLimits",
    "Override",
    "Party",
    "AppliedOverride",
    "Screening",
    "DisputeScreener",
    "screen_incident",
    "geojson_to_geometry",
    "shared_border",
    "footprint_key",
    "footprint_overlap",
    "PartyRole",
    "TaskStatus",
    "LeadRule",
    "StepAction",
    "TaskParty",
    "Department",
    "Meeting",
    "Step",
    "JointTask",
    "open_joint_task",
    "find_open_duplicate",
    "open_or_join",
]


# --------------------------------------------------------------------------- enums


class _Enum(StrEnum):
    """A string enum whose error lists the valid values."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        valid = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; use one of {valid}")


_SCREEN_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY)


def _as_level(level: Level | str) -> Level:
    valid = ", ".join(repr(v.value) for v in _SCREEN_LEVELS)
    try:
        lvl = Level.parse(level)
    except InvalidCodeError:
        lvl = None
    if lvl not in _SCREEN_LEVELS:
        raise InvalidCodeError(
            f"cases are screened between divisions: level must be one of {valid}"
        )
    return lvl


class OutsidePolicy(_Enum):
    """What screening does with an incident that touches no division of the city."""

    RAISE = "raise"  # OutsideCityError
    NONE = "none"  # None in its place


class IncidentKind(_Enum):
    """What an incident geometry is, which decides how shares are measured."""

    POINT = "point"  # share by overlap area of the accuracy disc
    LINE = "line"  # share by length
    POLYGON = "polygon"  # share by area


_SNAP_M = 1e-6  # lines within this of a division count as on it (borders agree to ~1e-8 m)
_DUST_M2 = 1e-4  # areas (m²) and lengths (m) below these are float dust, not a share
_DUST_M = 1e-4

_TYPE_KIND = {
    0: IncidentKind.POINT,  # Point
    1: IncidentKind.LINE,  # LineString
    2: IncidentKind.LINE,  # LinearRing
    3: IncidentKind.POLYGON,  # Polygon
    4: IncidentKind.POINT,  # MultiPoint
    5: IncidentKind.LINE,  # MultiLineString
    6: IncidentKind.POLYGON,  # MultiPolygon
}


# --------------------------------------------------------------------------- detection data


@dataclass(frozen=True)
class ScreenLimits:
    """Bounds on what an incident geometry may be.

    Parameters
    ----------
    max_area_m2 : float
        Largest polygon area accepted (default 1 km²): a case, not a district.
    max_length_m : float
        Longest line accepted (default 10 km).
    max_accuracy_m : float
        Largest position accuracy accepted for a point (default 1 km).
    point_epsilon_m : float
        Smallest disc radius for a point (default 0.1 m), so that a point exactly on a
        line with accuracy 0 is split by the shape of the line, not by a coin toss.
    quad_segs : int
        Segments per quarter circle of an accuracy disc (default 16: area within 0.7 %).
    """

    max_area_m2: float = 1_000_000.0
    max_length_m: float = 10_000.0
    max_accuracy_m: float = 1_000.0
    point_epsilon_m: float = 0.1
    quad_segs: int = 16


@dataclass(frozen=True)
class Override:
    """An agreement that an area belongs to one side, whatever the admin lines say.

    Parameters
    ----------
    id : str
        Stable identifier of the agreement, quoted in every screening it changes.
    geometry : shapely geometry
        The area (polygon) or feature (a road as a line is buffered by ``buffer_m``) the
        agreement covers, WGS84 longitude/latitude.
    level : Level
        The level the agreement is between (e.g. two districts).
    assigned_code : str
        The division code the area belongs to.
    valid_from, valid_to : date
        First and last day the agreement holds (``valid_to=None``: still in force).
    agreed_by : tuple of str
        Who agreed (e.g. the two street offices).
    name : str
        What it covers, e.g. "湾子农贸市场".
    buffer_m : float
        Half-width given to a line or point override (a road), metres.
    """

    id: str
    geometry: BaseGeometry
    level: Level
    assigned_code: str
    valid_from: date
    valid_to: date | None = None
    agreed_by: tuple[str, ...] = ()
    name: str = ""
    buffer_m: float = 10.0

    def is_valid_on(self, day: date) -> bool:
        """Return whether the agreement holds on ``day``."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Party:
    """One side of an incident: a division and its share of the footprint."""

    code: str
    name: str
    share: float
    measure: float  # m² (polygons, point discs) or m (lines) of the footprint it holds


@dataclass(frozen=True)
class AppliedOverride:
    """An override that changed a screening, for the audit trail."""

    id: str
    name: str
    assigned_code: str
    share: float  # fraction of the footprint inside the city it moved to assigned_code
    agreed_by: tuple[str, ...]
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class Screening:
    """The answer to "whose is this incident?".

    Attributes
    ----------
    level : Level
    kind : IncidentKind
    parties : tuple of Party
        Sorted by share (largest first), then code. Shares sum to 1.
    measure_unit : str
        ``"m2"`` or ``"m"``.
    total_measure : float
        Footprint measure inside the city.
    outside_share : float
        Fraction of the footprint outside every division (left out of the split).
    overrides : tuple of AppliedOverride
    geometry : shapely geometry
        The incident in WGS84.
    footprint : shapely geometry
        The footprint in WGS84 (a point's accuracy disc).
    accuracy_m : float
    territorial_code : str
        The party holding the representative point (属地), see the module docstring.
    key : str
        :func:`footprint_key` of the footprint, for idempotent opening.
    """

    level: Level
    kind: IncidentKind
    parties: tuple[Party, ...]
    measure_unit: str
    total_measure: float
    outside_share: float
    overrides: tuple[AppliedOverride, ...]
    geometry: BaseGeometry
    footprint: BaseGeometry
    accuracy_m: float
    territorial_code: str
    key: str

    @property
    def joint(self) -> bool:
        """Whether more than one side holds a part: a joint (cross-boundary) case."""
        return len(self.parties) > 1

    @property
    def codes(self) -> tuple[str, ...]:
        """Party codes, largest share first."""
        return tuple(p.code for p in self.parties)

    def share_of(self, code: str) -> float:
        """Return the share of ``code`` (0.0 when it is not a party)."""
        return next((p.share for p in self.parties if p.code == code), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (geometry as GeoJSON)."""
        return {
            "joint": self.joint,
            "level": self.level.value,
            "kind": self.kind.value,
            "parties": [
                {"code": p.code, "name": p.name, "share": p.share, "measure": p.measure}
                for p in self.parties
            ],
            "measure_unit": self.measure_unit,
            "total_measure": self.total_measure,
            "outside_share": self.outside_share,
            "overrides": [
                {
                    "id": o.id,
                    "name": o.name,
                    "assigned_code": o.assigned_code,
                    "share": o.share,
                    "agreed_by": list(o.agreed_by),
                    "valid_from": o.valid_from.isoformat(),
                    "valid_to": o.valid_to.isoformat() if o.valid_to else None,
                }
                for o in self.overrides
            ],
            "accuracy_m": self.accuracy_m,
            "territorial_code": self.territorial_code,
            "geometry": mapping(self.geometry),
        }


# --------------------------------------------------------------------------- helpers


def _project(geoms: Any) -> Any:
    """WGS84 lon/lat geometries → EPSG:4548 metres."""
    return project_geometry(geoms)


def _lonlat(x: float, y: float) -> tuple[float, float]:
    """One EPSG:4548 position in WGS84 degrees (for messages)."""
    lon, lat = projected_to_wgs84([x], [y])
    return float(lon[0]), float(lat[0])


def _unproject(geoms: Any) -> Any:
    """EPSG:4548 metres → WGS84 lon/lat geometries."""
    return project_geometry(geoms, inverse=True)


def _as_geometry(obj: Any, index: int | None = None) -> BaseGeometry:
    """Return a shapely geometry from a shapely geometry or a GeoJSON mapping."""
    if isinstance(obj, BaseGeometry):
        return obj
    what = "geometry" if index is None else f"incident {index}"
    if isinstance(obj, Mapping):
        return geojson_to_geometry(obj, what=what)  # refused in words, see gridcore.geojson
    raise GeometryError(
        f"{what}: an incident geometry must be a shapely geometry or a GeoJSON mapping, "
        f"not {type(obj).__name__}"
    )


def _as_crs(crs: Any) -> CRS:
    if isinstance(crs, CRS):
        return crs
    return CRS.parse(crs)


def _check_coordinates(geoms: np.ndarray, crs: CRS) -> None:
    """Raise CRSError/CoordinateError for coordinates that cannot be lon/lat in China."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    if len(coords) == 0:
        return
    x, y = coords[:, 0], coords[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        i = int(idx[np.argmin(finite)])
        raise CoordinateError(f"incident {i} has a NaN or infinite coordinate; send finite lon/lat")
    big = (np.abs(x) > 360) | (np.abs(y) > 360)
    if big.any():
        k = int(np.argmax(big))
        raise CRSError(
            f"incident {int(idx[k])} has coordinates ({x[k]:.1f}, {y[k]:.1f}) that look like "
            f"projected metres, but crs is {crs.value!r}: send longitude/latitude degrees in "
            f"one of {', '.join(c.value for c in CRS)}"
        )
    try:
        validate_lonlat(x, y)
    except CoordinateError as exc:
        bad = (x < 73) | (x > 136) | (y < 3) | (y > 54)
        which = f"incident {int(idx[np.argmax(bad)])}: " if bad.any() else ""
        raise CoordinateError(f"{which}{exc}") from exc


def _footprint_keys(footprints_wgs84: np.ndarray) -> list[str]:
    # round to 1e-7° (about 1 cm) and normalise (ring start, orientation, part order)
    g = shapely.normalize(shapely.transform(footprints_wgs84, lambda xy: np.round(xy, 7)))
    return [hashlib.sha256(w).hexdigest() for w in shapely.to_wkb(g, output_dimension=2)]


def footprint_key(footprint_wgs84: BaseGeometry) -> str:
    """Hash a footprint: SHA-256 of its normalised WKB at 1e-7° (about 1 cm).

    Two reports of the same geometry, whatever their vertex order or ring start, give the
    same key.

    Parameters
    ----------
    footprint_wgs84 : shapely geometry
        The footprint in WGS84 (a point's accuracy disc, a line, a polygon).

    Returns
    -------
    str
        64 hex digits.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> footprint_key(box(116.35, 39.87, 116.351, 39.871)) == footprint_key(
    ...     box(116.351, 39.871, 116.35, 39.87))
    True
    """
    return _footprint_keys(np.array([footprint_wgs84], dtype=object))[0]


def footprint_overlap(
    a_wgs84: BaseGeometry, b_wgs84: BaseGeometry, *, line_buffer_m: float = 1.0
) -> float:
    """Return the overlap of two footprints: intersection over union of their areas.

    Lines are compared as corridors of ``line_buffer_m`` on each side.

    Parameters
    ----------
    a_wgs84, b_wgs84 : shapely geometry
        Footprints in WGS84.
    line_buffer_m : float
        Half-width of the corridor a line is compared as.

    Returns
    -------
    float
        In [0, 1]; 1 for the same footprint.
    """
    a, b = _project(np.array([a_wgs84, b_wgs84], dtype=object))
    a = a if shapely.area(a) > 0 else shapely.buffer(a, line_buffer_m)
    b = b if shapely.area(b) > 0 else shapely.buffer(b, line_buffer_m)
    union = shapely.area(shapely.union(a, b))
    return float(shapely.area(shapely.intersection(a, b)) / union) if union > 0 else 0.0


# --------------------------------------------------------------------------- the screener


class DisputeScreener:
    """Screen incidents for cross-boundary cases against one level of divisions.

    Built once (projects the divisions to EPSG:4548 and builds an STRtree over them and
    over the overrides), then screens any number of incidents, vectorised.

    Parameters
    ----------
    divisions : GeoDataFrame or Divisions
        Either a GeoDataFrame with columns ``code``, ``name``, ``geometry`` (EPSG:4326;
        rows of other levels, told by code length, are ignored), or an object with
        ``districts``/``streets``/``communities`` GeoDataFrames.
    level : Level or str
        ``"district"``, ``"street"`` or ``"community"``.
    overrides : iterable of Override
        Responsibility agreements; those of another level are ignored.
    limits : ScreenLimits
        Size limits and the point epsilon.

    Raises
    ------
    ValueError
        For an unknown level (the message lists the valid ones).
    InvalidCodeError
        If an override assigns a code that is not a division of this level.
    CRSError
        If the GeoDataFrame is not in EPSG:4326.
    """

    def __init__(
        self,
        divisions: Any,
        *,
        level: Level | str = Level.DISTRICT,
        overrides: Iterable[Override] = (),
        limits: ScreenLimits | None = None,
    ) -> None:
        self.level = _as_level(level)
        self.limits = limits or ScreenLimits()
        frame = self._select_level(divisions)
        n = CODE_LENGTH[self.level]
        frame = frame[frame["code"].astype(str).str.len() == n]
        if len(frame) == 0:
            raise InvalidCodeError(
                f"no {self.level.value} divisions (codes of {n} digits) in the divisions given"
            )
        self.codes = frame["code"].astype(str).to_numpy()
        self.names = frame["name"].astype(str).to_numpy()
        self._name_of = dict(zip(self.codes, self.names, strict=True))
        self.geoms_wgs84 = np.asarray(frame.geometry.values, dtype=object)
        self.geoms = _project(self.geoms_wgs84)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        # Neighbouring divisions may share a border only to ~1e-8 m (each converted from
        # GCJ-02 on its own). Lines are measured against divisions grown by _SNAP_M so a
        # line lying on the border counts for both sides, not for whichever float won.
        self._geoms_for_lines = shapely.buffer(self.geoms, _SNAP_M)
        shapely.prepare(self._geoms_for_lines)
        self.city = shapely.union_all(self._geoms_for_lines)
        shapely.prepare(self.city)
        ovs = [o for o in overrides if Level.parse(o.level) is self.level]
        for o in ovs:
            if shapely.is_empty(o.geometry) or not shapely.is_valid(o.geometry):
                raise GeometryError(
                    f"override {o.id!r} has an empty or invalid geometry; "
                    "give the area (or road line) the agreement covers"
                )
        for o in ovs:
            if o.assigned_code not in self._name_of:
                raise InvalidCodeError(
                    f"override {o.id!r} assigns {o.assigned_code!r}, which is not a "
                    f"{self.level.value} of this city"
                )
        # newest agreement first: it wins where agreements overlap
        self.overrides = sorted(ovs, key=lambda o: (o.valid_from, o.id), reverse=True)
        og = _project(np.array([o.geometry for o in self.overrides], dtype=object))
        if len(og):
            line_like = shapely.area(og) <= 0
            widths = np.array([o.buffer_m for o in self.overrides], dtype=float)
            og[line_like] = shapely.buffer(og[line_like], widths[line_like])
        self._override_geoms = og

    def _select_level(self, divisions: Any) -> Any:
        if hasattr(divisions, "districts") and not hasattr(divisions, "geometry"):
            attr = {
                Level.DISTRICT: "districts",
                Level.STREET: "streets",
                Level.COMMUNITY: "communities",
            }
            divisions = getattr(divisions, attr[self.level])
        crs = getattr(divisions, "crs", None)
        if crs is not None and crs.to_epsg() != 4326:
            raise CRSError(
                f"divisions must be in EPSG:4326, not {crs.to_string()}; use .to_crs(4326)"
            )
        missing = {"code", "name", "geometry"} - set(divisions.columns)
        if missing:
            raise InvalidCodeError(f"divisions lack the columns {sorted(missing)}")
        return divisions

    def name_of(self, code: str) -> str:
        """Return the name of a division of this level."""
        try:
            return self._name_of[code]
        except KeyError:
            raise InvalidCodeError(f"{code!r} is not a {self.level.value} of this city") from None

    # ---- validate

    def _prepare(
        self, geometries: Sequence[Any], crs: CRS | str, accuracy_m: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        crs_ = _as_crs(crs)
        geoms = np.empty(len(geometries), dtype=object)
        geoms[:] = [_as_geometry(g, i) for i, g in enumerate(geometries)]
        if len(geoms) == 0:
            return geoms, geoms, np.zeros(0), np.zeros(0, dtype=int)
        empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
        if empty.any():
            raise GeometryError(
                f"incident {int(np.argmax(empty))} is an empty geometry; "
                "send a point, line or polygon"
            )
        tid = shapely.get_type_id(geoms)
        collection = tid == 7
        if collection.any():
            raise GeometryError(
                f"incident {int(np.argmax(collection))} is a GeometryCollection; send one "
                "(Multi)Point, (Multi)LineString or (Multi)Polygon"
            )
        kinds = np.array([list(IncidentKind).index(_TYPE_KIND[int(t)]) for t in tid])
        acc = np.broadcast_to(np.asarray(accuracy_m, dtype=float), (len(geoms),)).copy()
        if not np.isfinite(acc).all() or (acc < 0).any():
            raise GeometryError("accuracy_m must be a finite number of metres ≥ 0")
        _check_coordinates(geoms, crs_)
        # to WGS84, then to metres
        if crs_ is not CRS.WGS84:
            geoms = shapely.transform(
                geoms, lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], crs=crs_))
            )
        proj = _project(geoms)
        area_like = kinds == 2
        bad = area_like & ~shapely.is_valid(proj)
        if bad.any():
            i = int(np.argmax(bad))
            raise GeometryError(f"incident {i}: {polygon_problem(proj[i], to_lonlat=_lonlat)}")
        lim = self.limits
        area = np.where(area_like, shapely.area(proj), 0.0)
        length = np.where(kinds == 1, shapely.length(proj), 0.0)
        for mask, value, limit, what in (
            (area_like, area, lim.max_area_m2, "area {:.0f} m² exceeds the limit of {:.0f} m²"),
            (kinds == 1, length, lim.max_length_m, "length {:.0f} m exceeds the limit of {:.0f} m"),
            (
                kinds == 0,
                acc,
                lim.max_accuracy_m,
                "accuracy {:.0f} m exceeds the limit of {:.0f} m",
            ),
        ):
            over = mask & (value > limit)
            if over.any():
                i = int(np.argmax(over))
                raise GeometryError(
                    f"incident {i}: {what.format(value[i], limit)}; "
                    "split it or screen a smaller part"
                )
        degenerate = (area_like & (area <= 0)) | ((kinds == 1) & (length <= 0))
        if degenerate.any():
            raise GeometryError(f"incident {int(np.argmax(degenerate))} has zero area or length")
        return geoms, proj, acc, kinds

    # ---- compute

    def screen(
        self,
        geometries: Sequence[Any],
        *,
        crs: CRS | str,
        accuracy_m: float | Sequence[float] = 0.0,
        on: date | None = None,
        outside: OutsidePolicy | str = "raise",
        clock: Clock | None = None,
    ) -> list[Screening | None]:
        """Screen many incidents at once.

        Parameters
        ----------
        geometries : sequence of shapely geometries or GeoJSON mappings
        crs : CRS or str
            The CRS of every input coordinate: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
        accuracy_m : float or sequence of float
            Position accuracy of point incidents, metres (ignored for lines and polygons).
        on : date, optional
            The day whose overrides apply (default: the city's today, from ``clock``;
            an aware datetime counts as the city's date at that instant).
        outside : {"raise", "none"}
            For an incident that touches no division: raise OutsideCityError (default),
            or give None in its place (screening a file of many incidents).
        clock : Clock, optional
            The city's clock (default `default_clock`); gives today when ``on`` is not
            given.

        Returns
        -------
        list of Screening (or None)
            One per incident, in input order.

        Raises
        ------
        GeometryError
            Empty, collection, self-intersecting, zero-size or over-limit geometry.
        CRSError
            Unknown CRS, or coordinates that look projected.
        CoordinateError
            NaN, out-of-range, outside-China or swapped coordinates.
        OutsideCityError
            An incident touches no division of the city.
        """
        raise_outside = OutsidePolicy(outside) is OutsidePolicy.RAISE
        geoms, proj, acc, kinds = self._prepare(geometries, crs, accuracy_m)
        n = len(geoms)
        if n == 0:
            return []
        lim = self.limits
        radius = np.maximum(acc, lim.point_epsilon_m)
        foot = proj.copy()
        pts = kinds == 0
        if pts.any():
            foot[pts] = shapely.buffer(proj[pts], radius[pts], quad_segs=lim.quad_segs)
        by_length = kinds == 1

        def measure(g: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.where(by_length[idx], shapely.length(g), shapely.area(g))

        all_idx = np.arange(n)
        total = measure(foot, all_idx)
        rest = foot.copy()

        # overrides: the part inside a valid agreement's area goes to its code
        ov_parts: list[tuple[int, int, float]] = []  # (incident, override, measure)
        clock = clock or default_clock()
        day = city_date(on, clock.tz) if on is not None else clock.today()
        valid = np.array([o.is_valid_on(day) for o in self.overrides], dtype=bool)
        if valid.any():
            otree = shapely.STRtree(np.where(valid, self._override_geoms, None))
            inc, ovr = otree.query(foot, predicate="intersects")
            for i, j in sorted(zip(inc.tolist(), ovr.tolist(), strict=True)):
                piece = shapely.intersection(rest[i], self._override_geoms[j])
                m = float(measure(np.array([piece]), np.array([i]))[0])
                if m > 0:
                    ov_parts.append((i, j, m))
                    rest[i] = shapely.difference(rest[i], self._override_geoms[j])

        # fast path: a footprint within exactly one division is wholly that division's
        # (bounding-box candidates, then the prepared divisions: faster than predicate="within")
        c_inc, c_div = self.tree.query(rest)
        held = shapely.contains_properly(self.geoms[c_div], rest[c_inc])
        w_inc, w_div = c_inc[held], c_div[held]
        single = np.bincount(w_inc, minlength=n) == 1
        one = single[w_inc]
        s_inc, s_div = w_inc[one], w_div[one]
        # the rest: STRtree candidates, then vectorised intersections
        slow = np.flatnonzero(~single & ~shapely.is_empty(rest))
        inc, div = self.tree.query(rest[slow], predicate="intersects")
        inc = slow[inc]
        against = np.where(by_length[inc], self._geoms_for_lines[div], self.geoms[div])
        m = measure(shapely.intersection(rest[inc], against), inc)
        # the divisions tile the city, so a positive measure below this is float dust
        dust = np.where(by_length[inc], _DUST_M, _DUST_M2)
        keep = m > np.maximum(1e-9 * total[inc], dust)
        inc = np.concatenate([s_inc, inc[keep]])
        div = np.concatenate([s_div, div[keep]])
        m = np.concatenate([measure(rest[s_inc], s_inc), m[keep]])

        # representative point for the territorial rule (属地兜底), where it can matter
        rep = np.where(
            pts[slow], shapely.centroid(proj[slow]), shapely.point_on_surface(proj[slow])
        )
        r_inc, r_div = self.tree.query(rep, predicate="intersects")
        r_inc = slow[r_inc]

        # outside share of lines, measured directly: a line on a border is counted twice
        outside = np.zeros(n)
        lines = slow[by_length[slow]]
        lines = lines[~shapely.covers(self.city, foot[lines])]
        if len(lines):
            outside[lines] = (
                shapely.length(shapely.difference(foot[lines], self.city)) / total[lines]
            )

        order = np.argsort(inc, kind="stable")
        inc, div, m = inc[order], div[order], m[order]
        starts = np.searchsorted(inc, all_idx)
        ends = np.searchsorted(inc, all_idx, side="right")
        ov_by_inc: dict[int, list[tuple[int, float]]] = {}
        for i, j, mm in ov_parts:
            ov_by_inc.setdefault(i, []).append((j, mm))
        rep_by_inc: dict[int, list[str]] = {}
        for i, d in zip(r_inc.tolist(), r_div.tolist(), strict=True):
            rep_by_inc.setdefault(i, []).append(str(self.codes[d]))
        foot_wgs = _unproject(foot)
        keys = _footprint_keys(foot_wgs)
        kind_of = list(IncidentKind)
        codes = self.codes.tolist()
        div_l, m_l = div.tolist(), m.tolist()
        out = []
        for i in range(n):
            acc_measure: dict[str, float] = {}
            for k in range(starts[i], ends[i]):
                code = codes[div_l[k]]
                acc_measure[code] = acc_measure.get(code, 0.0) + m_l[k]
            applied = []
            for j, mm in ov_by_inc.get(i, []):
                o = self.overrides[j]
                acc_measure[o.assigned_code] = acc_measure.get(o.assigned_code, 0.0) + mm
                applied.append((o, mm))
            inside = sum(acc_measure.values())
            if inside <= 0 and not raise_outside:
                out.append(None)
                continue
            if inside <= 0:
                raise OutsideCityError(
                    f"incident {i} lies outside every {self.level.value} of the city; "
                    "check the coordinates and their crs"
                )
            parties = tuple(
                Party(code=c, name=self._name_of[c], share=v / inside, measure=v)
                for c, v in sorted(acc_measure.items(), key=lambda cv: (-cv[1], cv[0]))
            )
            if by_length[i]:
                out_share = float(outside[i])
                inside_measure = float(total[i]) * (1.0 - out_share)
            else:
                out_share = max(0.0, 1.0 - inside / float(total[i]))
                inside_measure = inside
            holders = [c for c in rep_by_inc.get(i, []) if c in acc_measure]
            territorial = min(holders) if holders else parties[0].code
            out.append(
                Screening(
                    level=self.level,
                    kind=kind_of[kinds[i]],
                    parties=parties,
                    measure_unit="m" if by_length[i] else "m2",
                    total_measure=inside_measure,
                    outside_share=min(out_share, 1.0),
                    overrides=tuple(
                        AppliedOverride(
                            id=o.id,
                            name=o.name,
                            assigned_code=o.assigned_code,
                            share=mm / inside,
                            agreed_by=tuple(o.agreed_by),
                            valid_from=o.valid_from,
                            valid_to=o.valid_to,
                        )
                        for o, mm in applied
                    ),
                    geometry=geoms[i],
                    footprint=foot_wgs[i],
                    accuracy_m=float(acc[i]),
                    territorial_code=territorial,
                    key=keys[i],
                )
            )
        return out

    def screen_one(
        self,
        geometry: Any,
        *,
        crs: CRS | str,
        accuracy_m: float = 0.0,
        on: date | None = None,
        clock: Clock | None = None,
    ) -> Screening:
        """Screen one incident (see :meth:`screen`)."""
        result = self.screen([geometry], crs=crs, accuracy_m=accuracy_m, on=on,
                             clock=clock)[0]
        assert result is not None  # outside="raise"
        return result

    def joint_mask(
        self,
        geometries: Sequence[Any],
        *,
        crs: CRS | str,
        accuracy_m: float | Sequence[float] = 0.0,
        on: date | None = None,
        clock: Clock | None = None,
    ) -> np.ndarray:
        """Return a boolean array: which incidents are joint (cross-boundary) cases."""
        found = self.screen(geometries, crs=crs, accuracy_m=accuracy_m, on=on, clock=clock)
        return np.array([s is not None and s.joint for s in found], dtype=bool)

    def screen_frame(
        self,
        incidents: Any,
        *,
        crs: CRS | str,
        accuracy_column: str | None = None,
        on: date | None = None,
        clock: Clock | None = None,
    ) -> Any:
        """Screen a GeoDataFrame of incidents; return one row of answers per incident.

        Parameters
        ----------
        incidents : GeoDataFrame
            One incident per row. Its ``.crs`` must be EPSG:4326 or unset when ``crs`` is
            ``"gcj02"``/``"bd09"`` (GDAL cannot label those).
        crs : CRS or str
            The CRS of the coordinates.
        accuracy_column : str, optional
            Column holding each point's accuracy in metres (default 0).
        on : date, optional
            The day whose overrides apply (default the city's today).
        clock : Clock, optional
            The city's clock (default `default_clock`).

        Returns
        -------
        pandas.DataFrame
            Same index, columns ``joint`` (bool), ``outside_city`` (bool), ``codes``
            (";"-joined, largest share first), ``names``, ``shares`` (";"-joined),
            ``overrides`` (";"-joined ids).
        """
        import pandas as pd

        frame_crs = getattr(incidents, "crs", None)
        if frame_crs is not None and frame_crs.to_epsg() != 4326:
            raise CRSError(
                f"incidents are in {frame_crs.to_string()}; give lon/lat (EPSG:4326, or "
                "GCJ-02/BD-09 coordinates with crs='gcj02'/'bd09')"
            )
        acc = incidents[accuracy_column].to_numpy(float) if accuracy_column else 0.0
        found = self.screen(
            list(incidents.geometry.values), crs=crs, accuracy_m=acc, on=on, outside="none",
            clock=clock,
        )
        rows = [
            {
                "joint": False,
                "outside_city": True,
                "codes": "",
                "names": "",
                "shares": "",
                "overrides": "",
            }
            if s is None
            else {
                "joint": s.joint,
                "outside_city": False,
                "codes": ";".join(p.code for p in s.parties),
                "names": ";".join(p.name for p in s.parties),
                "shares": ";".join(f"{p.share:.6f}" for p in s.parties),
                "overrides": ";".join(o.id for o in s.overrides),
            }
            for s in found
        ]
        return pd.DataFrame(rows, index=incidents.index)

    def shared_border(self, codes: Sequence[str], *, tolerance_m: float = 0.01) -> BaseGeometry:
        """Return the border the given divisions share, as WGS84 lines.

        Parameters
        ----------
        codes : sequence of str
            Two or more division codes of this level.
        tolerance_m : float
            How far apart two boundaries may run and still be one border (default 1 cm).

        Returns
        -------
        shapely geometry
            (Multi)LineString in WGS84; empty when they share no border.
        """
        codes = list(codes)
        if len(set(codes)) != len(codes) or len(codes) < 2:
            raise InvalidCodeError(f"give two or more different division codes, not {codes}")
        idx = []
        for c in codes:
            self.name_of(c)
            idx.append(int(np.flatnonzero(self.codes == c)[0]))
        lines = []
        for a_pos, a in enumerate(idx):
            for b in idx[a_pos + 1 :]:
                ga, gb = self.geoms[a], self.geoms[b]
                # a's boundary where it runs within tolerance of b: the shared border, even
                # where the two were digitised (or converted) apart by float noise
                near = shapely.intersection(shapely.boundary(ga), shapely.buffer(gb, tolerance_m))
                # keep the linework; lone touching points are not a border
                lines.extend(g for g in shapely.get_parts(near) if shapely.get_type_id(g) in (1, 5))
        if not lines:
            return shapely.MultiLineString()
        merged = shapely.line_merge(shapely.union_all(lines))
        return _unproject(merged)


def screen_incident(
    geometry: Any,
    divisions: Any,
    *,
    crs: CRS | str,
    accuracy_m: float = 0.0,
    level: Level | str = Level.DISTRICT,
    overrides: Iterable[Override] = (),
    on: date | None = None,
    limits: ScreenLimits | None = None,
    clock: Clock | None = None,
) -> Screening:
    """Find every jurisdiction one incident touches and each side's share.

    A thin wrapper over :class:`DisputeScreener` (build one screener to screen many).

    Parameters
    ----------
    geometry : shapely geometry or GeoJSON mapping
        A point (with ``accuracy_m``), a line or a polygon.
    divisions : GeoDataFrame or Divisions
        See :class:`DisputeScreener`.
    crs : CRS or str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``: the CRS must be explicit.
    accuracy_m : float
        Position accuracy of a point, metres.
    level : Level or str
        ``"district"``, ``"street"`` or ``"community"``.
    overrides : iterable of Override
    on : date, optional
        The day whose overrides apply (default the city's today).
    limits : ScreenLimits, optional
    clock : Clock, optional
        The city's clock (default `default_clock`).

    Returns
    -------
    Screening

    Raises
    ------
    GeometryError, CRSError, CoordinateError, OutsideCityError
        See :meth:`DisputeScreener.screen`.

    Examples
    --------
    Two neighbouring districts meeting at longitude 116.35, and a phone position 5 m
    east of their line with a 20 m accuracy:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> divisions = gpd.GeoDataFrame(
    ...     {"code": ["110102", "110106"], "name": ["西城区", "丰台区"]},
    ...     geometry=[box(116.34, 39.86, 116.35, 39.88), box(116.35, 39.86, 116.36, 39.88)],
    ...     crs=4326)
    >>> s = screen_incident({"type": "Point", "coordinates": [116.350059, 39.87]}, divisions,
    ...                     crs="wgs84", accuracy_m=20)
    >>> s.joint, [(p.code, round(p.share, 2)) for p in s.parties]
    (True, [('110106', 0.66), ('110102', 0.34)])
    """
    screener = DisputeScreener(divisions, level=level, overrides=overrides, limits=limits)
    return screener.screen_one(geometry, crs=crs, accuracy_m=accuracy_m, on=on, clock=clock)


def shared_border(
    divisions: Any, codes: Sequence[str], *, level: Level | str = Level.DISTRICT
) -> BaseGeometry:
    """Return the border the divisions share, WGS84 (see `DisputeScreener.shared_border`)."""
    return DisputeScreener(divisions, level=level).shared_border(codes)


# --------------------------------------------------------------------------- the joint task


class PartyRole(_Enum):
    """A party's role in a joint task."""

    RECEIVING = "receiving"  # 接诉方: received the report and blows the whistle
    WHISTLED = "whistled"  # 被吹哨方: called in by the whistle


class TaskStatus(_Enum):
    """Where a joint task stands."""

    OPEN = "open"  # whistle blown, sides checking in, meetings
    IN_PROGRESS = "in_progress"  # division of labour and deadline agreed, sides acting
    CLOSED = "closed"  # every side reported done and the lead closed it jointly


class LeadRule(_Enum):
    """Why the lead party leads."""

    RECEIVING = "receiving"
    LARGEST_SHARE = "largest_share"
    TERRITORIAL = "territorial"  # 属地兜底


class StepAction(_Enum):
    """What a history step did."""

    OPEN = "open"
    JOIN = "join"  # the same incident reported again joined this task
    CHECK_IN = "check_in"
    CALL_DEPARTMENT = "call_department"  # 吹哨
    DEPARTMENT_REPORT = "department_report"  # 报到
    MEETING = "meeting"  # 联席会议
    AGREE = "agree"  # division of labour and deadline
    REPORT = "report"
    CLOSE = "close"


@dataclass
class TaskParty:
    """One side of a joint task."""

    code: str
    name: str
    share: float
    role: PartyRole
    checked_in_at: datetime | None = None
    part: str = ""  # its agreed part of the work
    done_at: datetime | None = None


@dataclass
class Department:
    """A department called to report (部门报到) by a party."""

    code: str
    name: str
    called_by: str
    called_at: datetime
    reported_at: datetime | None = None


@dataclass
class Meeting:
    """A joint meeting (联席会议)."""

    at: datetime
    place: str
    convened_by: str
    attendees: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Step:
    """One entry of a task's history: who did what, when."""

    at: datetime
    actor: str
    party_code: str | None
    action: StepAction
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class JointTask:
    """One task shared by every side of a cross-boundary case.

    Build it with :func:`open_joint_task` or :func:`open_or_join`; change it only through
    its methods, each of which checks who may act and appends a :class:`Step`.
    """

    id: str | None
    level: Level
    event_class: str
    description: str
    parties: list[TaskParty]
    lead_code: str
    lead_rule: LeadRule
    geometry: BaseGeometry  # WGS84
    footprint: BaseGeometry  # WGS84
    footprint_key: str
    accuracy_m: float
    opened_at: datetime
    opened_by: str
    status: TaskStatus = TaskStatus.OPEN
    deadline: datetime | None = None
    departments: list[Department] = field(default_factory=list)
    meetings: list[Meeting] = field(default_factory=list)
    overrides: tuple[AppliedOverride, ...] = ()
    history: list[Step] = field(default_factory=list)
    closed_at: datetime | None = None

    # ---- reading

    @property
    def party_codes(self) -> tuple[str, ...]:
        """Codes of every party."""
        return tuple(p.code for p in self.parties)

    @property
    def receiving_code(self) -> str | None:
        """The receiving side (接诉方), if any."""
        return next((p.code for p in self.parties if p.role is PartyRole.RECEIVING), None)

    def party(self, code: str) -> TaskParty:
        """Return the party ``code`` or raise PermissionDeniedError for a non-party."""
        for p in self.parties:
            if p.code == code:
                return p
        raise PermissionDeniedError(
            f"{code} is not a party to this joint task; "
            f"its parties are {', '.join(self.party_codes)}"
        )

    @property
    def all_done(self) -> bool:
        """Whether every side has reported its part done."""
        return all(p.done_at is not None for p in self.parties)

    def is_overdue(self, now: datetime | None = None, *, clock: Clock | None = None) -> bool:
        """Whether the shared deadline has passed without closure at ``now``.

        ``now`` defaults to the clock's (`default_clock` when no clock is given).
        """
        clock = clock or default_clock()
        now = clock.now_utc() if now is None else now
        # as instants: a naive time is the city's wall-clock time
        return (
            self.deadline is not None
            and self.status is not TaskStatus.CLOSED
            and to_utc(now, clock.tz) > to_utc(self.deadline, clock.tz)
        )

    # ---- acting

    def _step(
        self, at: datetime, actor: str, party_code: str | None, action: StepAction, **detail: Any
    ) -> Step:
        if self.history and at < self.history[-1].at:
            raise TransitionError(
                f"a step at {at.isoformat()} would precede the last step at "
                f"{self.history[-1].at.isoformat()}; history is kept in time order"
            )
        step = Step(at=at, actor=actor, party_code=party_code, action=action, detail=detail)
        self.history.append(step)
        return step

    def _require_not_closed(self, what: str) -> None:
        if self.status is TaskStatus.CLOSED:
            raise TransitionError(f"cannot {what}: the joint task was closed at {self.closed_at}")

    def join(self, *, reported_by: str, at: datetime, note: str = "") -> Step:
        """Record that the same incident was reported again (idempotent opening)."""
        self._require_not_closed("join it")
        return self._step(at, reported_by, None, StepAction.JOIN, note=note)

    def check_in(self, party_code: str, *, actor: str, at: datetime) -> Step:
        """Check a side in: it acknowledges the whistle and joins the work (接哨)."""
        party = self.party(party_code)
        self._require_not_closed(f"check in {party_code}")
        if party.checked_in_at is not None:
            raise TransitionError(
                f"{party_code} already checked in at {party.checked_in_at.isoformat()}"
            )
        party.checked_in_at = at
        return self._step(at, actor, party_code, StepAction.CHECK_IN)

    def call_department(
        self,
        party_code: str,
        department_code: str,
        department_name: str,
        *,
        actor: str,
        at: datetime,
    ) -> Step:
        """Whistle a department on behalf of a side; it must then report (报到)."""
        self.party(party_code)
        self._require_not_closed("call a department")
        if any(d.code == department_code for d in self.departments):
            raise TransitionError(f"department {department_code} was already called to this task")
        self.departments.append(Department(department_code, department_name, party_code, at))
        return self._step(
            at,
            actor,
            party_code,
            StepAction.CALL_DEPARTMENT,
            department_code=department_code,
            department_name=department_name,
        )

    def department_report(self, department_code: str, *, actor: str, at: datetime) -> Step:
        """Record that a called department reported in (报到)."""
        self._require_not_closed("report a department in")
        dep = next((d for d in self.departments if d.code == department_code), None)
        if dep is None:
            raise PermissionDeniedError(f"department {department_code} was not called to this task")
        if dep.reported_at is not None:
            raise TransitionError(
                f"department {department_code} already reported at {dep.reported_at.isoformat()}"
            )
        dep.reported_at = at
        return self._step(
            at, actor, dep.called_by, StepAction.DEPARTMENT_REPORT, department_code=department_code
        )

    def hold_meeting(
        self,
        party_code: str,
        *,
        meeting_at: datetime,
        place: str,
        attendees: Sequence[str] = (),
        notes: str = "",
        actor: str,
        at: datetime,
    ) -> Step:
        """Record a joint meeting (联席会议) convened by a side: its time and place."""
        self.party(party_code)
        self._require_not_closed("hold a meeting")
        if not place.strip():
            raise TransitionError("a joint meeting needs a place")
        self.meetings.append(Meeting(meeting_at, place, party_code, tuple(attendees), notes))
        return self._step(
            at,
            actor,
            party_code,
            StepAction.MEETING,
            meeting_at=meeting_at.isoformat(),
            place=place,
            attendees=list(attendees),
            notes=notes,
        )

    def agree(
        self,
        party_code: str,
        *,
        division_of_labour: Mapping[str, str],
        deadline: datetime,
        actor: str,
        at: datetime,
    ) -> Step:
        """Record the agreed division of labour and the one shared deadline (by the lead)."""
        self.party(party_code)
        self._require_not_closed("agree a division of labour")
        if party_code != self.lead_code:
            raise PermissionDeniedError(
                f"only the lead {self.lead_code} records the agreement, not {party_code}"
            )
        waiting = [p.code for p in self.parties if p.checked_in_at is None]
        if waiting:
            raise TransitionError(
                f"every side must check in before the agreement; waiting for {', '.join(waiting)}"
            )
        unknown = set(division_of_labour) - set(self.party_codes)
        missing = set(self.party_codes) - {
            c for c, t in division_of_labour.items() if t and t.strip()
        }
        if unknown or missing:
            raise TransitionError(
                "the division of labour must give each party, and only the parties, a part: "
                f"unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        if deadline <= at:
            raise TransitionError(
                f"the deadline {deadline.isoformat()} must be after "
                f"the agreement at {at.isoformat()}"
            )
        for p in self.parties:
            p.part = division_of_labour[p.code]
        self.deadline = deadline
        self.status = TaskStatus.IN_PROGRESS
        return self._step(
            at,
            actor,
            party_code,
            StepAction.AGREE,
            division_of_labour=dict(division_of_labour),
            deadline=deadline.isoformat(),
        )

    def report(
        self, party_code: str, *, text: str, done: bool = False, actor: str, at: datetime
    ) -> Step:
        """Record a side's report on its part; ``done=True`` says its part is finished."""
        party = self.party(party_code)
        self._require_not_closed("report")
        if self.status is not TaskStatus.IN_PROGRESS:
            raise TransitionError(
                "a side reports on its part only after the division of labour is agreed"
            )
        if party.done_at is not None:
            raise TransitionError(
                f"{party_code} already reported its part done at {party.done_at.isoformat()}"
            )
        if done:
            party.done_at = at
        return self._step(at, actor, party_code, StepAction.REPORT, text=text, done=done)

    def close(self, party_code: str, *, actor: str, at: datetime, note: str = "") -> Step:
        """Close the task jointly: by the lead, once every side has reported done."""
        self.party(party_code)
        self._require_not_closed("close it again")
        if party_code != self.lead_code:
            raise PermissionDeniedError(
                f"only the lead {self.lead_code} closes the joint task, not {party_code}"
            )
        waiting = [p.code for p in self.parties if p.done_at is None]
        if self.status is not TaskStatus.IN_PROGRESS or waiting:
            raise TransitionError(
                "the joint task closes only when every side has reported done; "
                f"waiting for {', '.join(waiting) or 'the agreement'}"
            )
        self.status = TaskStatus.CLOSED
        self.closed_at = at
        return self._step(at, actor, party_code, StepAction.CLOSE, note=note)


def _choose_lead(screening: Screening, receiving_code: str | None) -> tuple[str, LeadRule]:
    parties = screening.parties
    if receiving_code is not None and receiving_code in screening.codes:
        return receiving_code, LeadRule.RECEIVING
    if len(parties) == 1 or parties[0].share - parties[1].share > 1e-9:
        return parties[0].code, LeadRule.LARGEST_SHARE
    return screening.territorial_code, LeadRule.TERRITORIAL


def open_joint_task(
    screening: Screening,
    *,
    event_class: str,
    description: str,
    opened_by: str,
    at: datetime,
    receiving_code: str | None = None,
    task_id: str | None = None,
) -> JointTask:
    """Open one joint task for every side of a cross-boundary case.

    Parameters
    ----------
    screening : Screening
        From :class:`DisputeScreener`; must be joint.
    event_class : str
        The case class (e.g. ``"0101"`` 私搭乱建).
    description : str
    opened_by : str
        Who opened it.
    at : datetime
    receiving_code : str, optional
        The receiving side (接诉方), which must be a party; it leads.
    task_id : str, optional

    Returns
    -------
    JointTask

    Raises
    ------
    TransitionError
        If the incident is not a joint case (one side holds all of it).
    InvalidCodeError
        If ``receiving_code`` is not a party.
    """
    if not screening.joint:
        only = screening.parties[0]
        raise TransitionError(
            f"not a cross-boundary case: the incident lies wholly in {only.code} {only.name}; "
            "report it as an ordinary case"
        )
    if receiving_code is not None and receiving_code not in screening.codes:
        raise InvalidCodeError(
            f"the receiving side {receiving_code} is not a party; "
            f"the parties are {', '.join(screening.codes)}"
        )
    lead, rule = _choose_lead(screening, receiving_code)
    parties = [
        TaskParty(
            code=p.code,
            name=p.name,
            share=p.share,
            role=PartyRole.RECEIVING if p.code == receiving_code else PartyRole.WHISTLED,
        )
        for p in screening.parties
    ]
    task = JointTask(
        id=task_id,
        level=screening.level,
        event_class=event_class,
        description=description,
        parties=parties,
        lead_code=lead,
        lead_rule=rule,
        geometry=screening.geometry,
        footprint=screening.footprint,
        footprint_key=screening.key,
        accuracy_m=screening.accuracy_m,
        opened_at=at,
        opened_by=opened_by,
        overrides=screening.overrides,
    )
    task._step(
        at,
        opened_by,
        receiving_code,
        StepAction.OPEN,
        parties={p.code: p.share for p in screening.parties},
        lead=lead,
        lead_rule=rule.value,
        overrides=[o.id for o in screening.overrides],
    )
    return task


def find_open_duplicate(
    tasks: Iterable[JointTask],
    screening: Screening,
    event_class: str,
    *,
    at: datetime,
    window: timedelta = timedelta(days=3),
    min_overlap: float = 0.8,
) -> JointTask | None:
    """Return the open task the incident repeats, if any.

    A task matches when it is not closed, has the same event class and level, was opened
    within ``window`` before ``at``, and its footprint has the same key or overlaps the
    new one by at least ``min_overlap`` (intersection over union).

    Parameters
    ----------
    tasks : iterable of JointTask
    screening : Screening
    event_class : str
    at : datetime
    window : timedelta
    min_overlap : float

    Returns
    -------
    JointTask or None
        The earliest matching task.
    """
    best = None
    for t in tasks:
        if (
            t.status is TaskStatus.CLOSED
            or t.event_class != event_class
            or t.level is not screening.level
        ):
            continue
        if not (timedelta(0) <= at - t.opened_at <= window):
            continue
        same = t.footprint_key == screening.key
        if not same and not shapely.intersects(t.footprint, screening.footprint):
            continue
        if same or footprint_overlap(t.footprint, screening.footprint) >= min_overlap:
            if best is None or t.opened_at < best.opened_at:
                best = t
    return best


def open_or_join(
    screening: Screening,
    *,
    existing: Iterable[JointTask],
    event_class: str,
    description: str,
    opened_by: str,
    at: datetime,
    receiving_code: str | None = None,
    task_id: str | None = None,
    window: timedelta = timedelta(days=3),
    min_overlap: float = 0.8,
) -> tuple[JointTask, bool]:
    """Open a joint task, or join the open one the same incident already has.

    Returns
    -------
    (JointTask, bool)
        The task, and ``True`` when it was newly opened (``False``: joined).

    See Also
    --------
    open_joint_task, find_open_duplicate
    """
    dup = find_open_duplicate(
        existing, screening, event_class, at=at, window=window, min_overlap=min_overlap
    )
    if dup is not None:
        dup.join(
            reported_by=opened_by,
            at=max(at, dup.history[-1].at) if dup.history else at,
            note=description,
        )
        return dup, False
    task = open_joint_task(
        screening,
        event_class=event_class,
        description=description,
        opened_by=opened_by,
        at=at,
        receiving_code=receiving_code,
        task_id=task_id,
    )
    return task, True
